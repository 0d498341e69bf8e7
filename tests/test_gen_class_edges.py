"""The generator's edge classes (issue 16): TLV option areas at their edges, truncation around every header
boundary, if-condition comparisons at the constant and next to it on every path, and action arguments at full
width. Expected results are the oracle's; the tests check that the vectors carry the bytes or values the class
is about and that the oracle's verdict is the one the spec gives."""

from __future__ import annotations

from functools import cache

from c3po_compiler import ir, load_program
from conformance.gen_classes import CLASSES
from conformance.generate import Generated, generate
from conformance.model import Vector
from conformance.vector_io import dumps_jsonl

from .conftest import ROOT

SUITE = ROOT / "conformance" / "suite"
EXAMPLES = ROOT / "spec" / "examples"


@cache
def program(path: str) -> ir.Program:
    return load_program(ROOT / path).program


@cache
def generated(path: str) -> Generated:
    return generate(program(path), seed=0)


def tagged(path: str, tag: str) -> dict[str, Vector]:
    return {v.name: v for v in generated(path).vectors if tag in v.tags}


def tcp_area(v: Vector) -> tuple[bytes, int]:
    """The TCP option area of the vector's packet (Ethernet, IPv4, TCP) and where it ends."""
    data = v.packets[0].data
    tcp = 14 + (data[14] & 0x0F) * 4
    end = tcp + (data[tcp + 12] >> 4) * 4
    return data[tcp + 20:end], end


TLV = "conformance/suite/tlv.yaml"
TLV_PARSER = "spec/examples/tlv_parser.yaml"


def test_the_edge_classes_are_reported() -> None:
    cov = generated(TLV).coverage
    for name in ("tlv_edges", "condition_edges", "full_width", "truncation_edges"):
        assert name in CLASSES
        assert cov[name]["class"] is True and cov[name]["uncovered"] == []


def test_an_option_last_in_the_area_ends_the_frame() -> None:
    """MSS (kind 2, length 4) last: the area ends on it and the frame ends with the area; one byte shorter is
    a truncated frame."""
    vs = tagged(TLV, "tlv_edge")
    last = [v for n, v in vs.items() if n.startswith("tlv.tcp.mss:last_ends_frame.")]
    assert last
    for v in last:
        area, end = tcp_area(v)
        assert end == len(v.packets[0].data), "nothing after the TCP header"
        assert area[-4:-2] == b"\x02\x04", "the area's last option is the MSS"
        assert v.expected[0].observations["parser_error"] is None
    short = [v for n, v in vs.items() if n.startswith("tlv.tcp.mss:last_one_byte_short.")]
    assert short and all(v.expected[0].observations["parser_error"] == "truncated" for v in short)


def test_an_option_first_and_option_sizes_around_its_fields() -> None:
    vs = tagged(TLV, "tlv_edge")
    first = next(v for n, v in vs.items() if n.startswith("tlv.tcp.wscale:first."))
    assert tcp_area(first)[0][:2] == b"\x03\x03", "window scale first"
    shorter = next(v for n, v in vs.items() if n.startswith("tlv.tcp.mss:shorter_than_fields."))
    assert shorter.expected[0].observations["parser_error"] == "bad_length"
    assert tcp_area(shorter)[0][:2] == b"\x02\x03", "an MSS of length 3 cannot hold its 2-byte value"
    longer = next(v for n, v in vs.items() if n.startswith("tlv.tcp.mss:longer_than_fields."))
    assert longer.expected[0].observations["parser_error"] is None
    assert tcp_area(longer)[0][:2] == b"\x02\x05"
    # an option the program never reads, shorter than its declared fields: skipped like an unknown one (p4 had
    # refused tlv_parser's 9-byte timestamps as bad_length)
    unread = [v for n, v in tagged(TLV_PARSER, "tlv_edge").items()
              if n.startswith("tlv.tcp.timestamps(not read):shorter_than_fields.")]
    assert len(unread) == 1 and unread[0].expected[0].observations["parser_error"] is None
    assert tcp_area(unread[0])[0][:2] == b"\x08\x09", "timestamps declares 8 bytes of fields: 9 is one short"


def test_malformed_and_maximal_areas() -> None:
    vs = tagged(TLV, "tlv_edge")

    def one(prefix: str) -> Vector:
        return next(v for n, v in vs.items() if n.startswith(prefix))

    assert one("tlv.tcp.option_below_header_size.").expected[0].observations["parser_error"] == "bad_length"
    assert one("tlv.tcp.option_runs_past_area.").expected[0].observations["parser_error"] == "bad_length"
    at_max = one("tlv.tcp.area_at_max.")
    assert len(tcp_area(at_max)[0]) == 40 and at_max.expected[0].observations["parser_error"] is None
    forty = one("tlv.tcp.max_options(40).")
    assert tcp_area(forty)[0] == b"\x01" * 40, "40 no-ops: the most options allowed"
    assert forty.expected[0].observations["parser_error"] is None
    after = one("tlv.tcp.bytes_after_end.")
    assert b"\x00\xff" in tcp_area(after)[0] and after.expected[0].observations["parser_error"] is None
    inf = {x["item"]: x["reason"] for x in generated(TLV).coverage["tlv_edges"]["infeasible"]}
    assert "41 options do not fit in 40 bytes" in inf["tcp:max_options+1(41)"]


def test_geneve_options_at_the_area_maximum_and_past_max_options() -> None:
    vs = tagged(TLV_PARSER, "tlv_edge")
    prog = program(TLV_PARSER)
    assert vs
    for name, v in vs.items():
        if not name.startswith("tlv.geneve."):
            continue
        off = v.expected[0].observations["offsets"].get("geneve")
        if name.startswith("tlv.geneve.area_at_max"):
            assert off is not None and v.packets[0].data[off] & 0x3F == 63, "opt_len 63: 252 bytes of options"
            assert v.expected[0].observations["parser_error"] is None
        if name.startswith("tlv.geneve.max_options+1(17)"):
            assert v.expected[0].observations["parser_error"] == "bad_length"
    assert "geneve" in prog.instances
    names = set(vs)
    for label in ("area_at_max", "max_options+1(17)", "ovn:last_ends_frame", "ovn:last_one_byte_short"):
        assert any(n.startswith(f"tlv.geneve.{label}.") for n in names), label


def test_truncation_around_the_last_header() -> None:
    """ethernet/ipv4/tcp: the frame ending one byte before, at and after the TCP header's end, around the end
    of its fixed 20 bytes, and with no options at all ending the frame (accepted)."""
    vs = [v for v in generated(TLV).vectors if "truncation_edge" in v.tags and v.provenance["path"] == 2]
    by_len = {len(v.packets[0].data): v.expected[0].observations["parser_error"] for v in vs}
    tcp_start = 34
    assert by_len[tcp_start + 20] is None or by_len[tcp_start + 20] == "truncated"
    assert {tcp_start + 19, tcp_start + 21} <= set(by_len)
    minimal = [v for v in vs if len(v.packets[0].data) == tcp_start + 20 and v.expected[0].observations[
        "parser_error"] is None]
    assert minimal, "a TCP header without options ending the frame"
    assert minimal[0].packets[0].data[tcp_start + 12] >> 4 == 5
    ends = sorted(by_len)
    assert by_len[ends[-2]] is None and by_len[ends[-3]] == "truncated", "at the end and one byte before it"


def test_condition_edges_take_both_sides_of_the_constant() -> None:
    """`tcp.mss.value < 536`: 535 drops, 536 and 537 forward (the window scale is set so its own condition
    does not hide the verdict); `tcp.wscale.shift > 14`: 15 goes to the host."""
    vs = tagged(TLV, "condition_edge")
    verdicts = {n.split(".p")[0]: v.expected[0].verdict for n, v in vs.items()}
    assert verdicts["cond.tcp.mss.value.<536-1"] == "drop"
    assert verdicts["cond.tcp.mss.value.<536"] == "forward"
    assert verdicts["cond.tcp.mss.value.<536+1"] == "forward"
    assert verdicts["cond.tcp.wscale.shift.>14+1"] == "to_host"
    assert verdicts["cond.tcp.wscale.shift.>14"] != "to_host"


def test_condition_edges_on_every_path_that_reaches_them() -> None:
    """router: `ipv4.ttl <= 1` on its IPv4 paths with TTL 0, 1 and 2; `ipv6.hop_limit <= 1` likewise."""
    vs = tagged("spec/examples/router.yaml", "condition_edge")
    for field in ("ipv4.ttl", "ipv6.hop_limit"):
        for label in ("<=1-1", "<=1", "<=1+1"):
            assert any(n.startswith(f"cond.{field}.{label}.p") for n in vs), (field, label)
    ttl2 = next(v for n, v in vs.items() if n.startswith("cond.ipv4.ttl.<=1+1."))
    ttl1 = next(v for n, v in vs.items() if n.startswith("cond.ipv4.ttl.<=1."))
    assert ttl1.expected[0].verdict == "to_host" and ttl2.expected[0].verdict != "to_host"


def test_action_arguments_at_full_width() -> None:
    prog = program("spec/examples/router.yaml")
    vs = tagged("spec/examples/router.yaml", "full_width")
    assert vs
    for name, v in vs.items():
        _w, table, action, label, _pid = name.split(".")
        if label == "fields_top_bit":
            continue
        params = prog.actions[action].params
        entries = [e for e in v.control.entries if e.table == table and e.action == action]
        assert entries
        for e in entries:
            for x, p in zip(e.args, params, strict=True):
                if "port" in p.name:
                    continue
                assert x == ((1 << p.width) - 1 if label == "all_ones" else 1 << (p.width - 1))
        assert v.expected[0].observations["tables"][table] == action


def test_deterministic() -> None:
    prog = program(TLV)
    assert dumps_jsonl(generate(prog, seed=5).vectors, prog) == dumps_jsonl(generate(prog, seed=5).vectors, prog)
