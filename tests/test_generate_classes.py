"""The generator's gap classes (issue 16): vectors that hit each constant entry and the keys around it, vary
each table's default, sit next to select cases, at varlen length edges, on checksum sums of 0, and the
coverage the generator reports per class. Expected results are the oracle's, so the tests check that the
vectors exist, carry the values the class is about, and that the oracle's verdict on them is the one the spec
gives."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from conformance.gen_classes import CLASSES
from conformance.generate import Generated, generate
from conformance.model import Vector
from conformance.reports import write_html
from conformance.runner import RunReport
from conformance.vector_io import dumps_jsonl, read_coverage, save_vectors

from .conftest import ROOT

SUITE = ROOT / "conformance" / "suite"
CLASS_PROGRAMS = [
    "const_entries",
    "match_range",
    "select_range",
    "select_mask",
    "varlen",
    "tlv",
    "checksum_verify",
    "match_ternary",
    "match_lpm",
]


@cache
def program(name: str) -> ir.Program:
    return load_program(SUITE / f"{name}.yaml").program


@cache
def generated(name: str) -> Generated:
    return generate(program(name), seed=0)


def by_name(name: str) -> dict[str, Vector]:
    return {v.name: v for v in generated(name).vectors}


def field_value(prog: ir.Program, v: Vector, instance: str, field: str) -> int:
    """A field of the vector's packet, read at the offset the oracle found the header at."""
    off = v.expected[0].observations["offsets"][instance]
    f = prog.instances[instance].type.field(field)
    assert f is not None
    bits = int.from_bytes(v.packets[0].data, "big")
    total = len(v.packets[0].data) * 8
    start = off * 8 + f.offset
    return (bits >> (total - start - f.width)) & ((1 << f.width) - 1)


@pytest.mark.parametrize("name", ["const_entries", "match_range", "match_ternary", "match_lpm"])
def test_every_constant_entry_is_hit_by_a_vector(name: str) -> None:
    prog = program(name)
    vectors = by_name(name)
    for t in prog.tables.values():
        for i, entry in enumerate(t.entries):
            v = vectors[f"const.{t.name}.e{i}"]
            assert "const_entry" in v.tags
            obs = v.expected[0].observations
            assert obs["hit"][t.name] is True, f"{t.name} entry {i} must be hit"
            assert obs["tables"][t.name] == entry.action.action


def test_range_edges_lo_hi_and_their_neighbours() -> None:
    """The entry 1000 .. 1999: 1000 and 1999 hit it, 999 and 2000 miss (the spec default, to_host)."""
    prog = program("match_range")
    vectors = by_name("match_range")
    for label, port, hit in (("lo", 1000, True), ("hi", 1999, True), ("lo-1", 999, False), ("hi+1", 2000, False)):
        v = vectors[f"const.t.e0.udp.dst_port.{label}"]
        assert "const_entry_edge" in v.tags
        assert field_value(prog, v, "udp", "dst_port") == port
        exp = v.expected[0]
        assert exp.observations["hit"]["t"] is hit, label
        assert exp.verdict == ("forward" if hit else "to_host"), label


def test_ternary_edges_flip_one_masked_and_one_unmasked_bit() -> None:
    """Entry 0 is 10.0.0.0 &&& 255.0.0.0 -> forward, entry 1 protocol 17 -> drop (higher priority): a source
    with a bit of the first octet flipped leaves entry 0, a flipped host bit stays in it; protocol 16 leaves
    entry 1."""
    prog = program("match_ternary")
    vectors = by_name("match_ternary")
    out = vectors["const.t.e0.ipv4.src.masked_bit_flipped"]
    assert field_value(prog, out, "ipv4", "src") >> 24 == 10 ^ 1
    assert out.expected[0].observations["hit"]["t"] is False
    inside = vectors["const.t.e0.ipv4.src.unmasked_bit_flipped"]
    assert field_value(prog, inside, "ipv4", "src") >> 24 == 10
    assert inside.expected[0].observations["tables"]["t"] == "forward"
    proto = vectors["const.t.e1.ipv4.protocol.masked_bit_flipped"]
    assert field_value(prog, proto, "ipv4", "protocol") == 16
    assert proto.expected[0].observations["tables"]["t"] != "drop"
    inf = {x["item"]: x["reason"] for x in generated("match_ternary").coverage["const_entry_edges"]["infeasible"]}
    assert "all ones" in inf["t#1.ipv4.protocol:unmasked_bit_flipped"]


@pytest.mark.parametrize("name", ["const_entries", "match_range", "match_ternary", "match_lpm"])
def test_each_default_is_varied_under_a_miss(name: str) -> None:
    """The language has no constant defaults: every other action (and the default's own action with other
    arguments) is installed as the default, and the vector misses every entry."""
    prog = program(name)
    vectors = generated(name).vectors
    for t in prog.tables.values():
        for a in t.actions:
            if a == t.default.action and not prog.actions[a].params:
                continue
            varied = [
                v
                for v in vectors
                if "default_varied" in v.tags
                and any(d[0] == t.name and d[1] == a and (a != t.default.action or list(d[2]) != t.default.args)
                        for d in v.control.defaults)
            ]
            assert varied, f"{t.name}: no vector with default {a}"
            obs = varied[0].expected[0].observations
            assert obs["hit"][t.name] is False
            assert obs["tables"][t.name] == a


def test_select_neighbours_do_not_take_the_case() -> None:
    """select_range: 0 .. 1500 -> reject, 0x0800 .. 0x0806 -> accept. 1501 and 0x0807 take the default,
    0x07ff too; 0 - 1 does not exist and is named infeasible."""
    prog = program("select_range")
    vectors = by_name("select_range")
    want = {"case0.0.hi+1": 1501, "case1.0.lo-1": 0x07FF, "case1.0.hi+1": 0x0807}
    for label, value in want.items():
        v = vectors[f"select.ethernet.{label}"]
        assert field_value(prog, v, "ethernet", "ethertype") == value
        assert v.expected[0].observations["parser_error"] is None
        assert v.expected[0].verdict == "forward"
    inf = {x["item"]: x["reason"] for x in generated("select_range").coverage["select_edges"]["infeasible"]}
    assert "outside" in inf["ethernet#case0[0]:lo-1"]


def test_select_mask_neighbour_flips_a_masked_bit() -> None:
    vectors = [v for v in generated("select_mask").vectors if "select_edge" in v.tags]
    assert vectors
    assert all(v.name.endswith("masked_bit_flipped") for v in vectors)


def test_varlen_lengths_min_mid_max_and_over_max() -> None:
    prog = program("varlen")
    vectors = by_name("varlen")
    ihl = {label: field_value(prog, vectors[f"length.ipv4.{label}"], "ipv4", "ihl") for label in ("min", "mid", "max")}
    assert ihl["min"] == 5 and ihl["max"] == 15 and 5 < ihl["mid"] < 15
    over = vectors["length.ipv4.over_max"].expected[0]
    assert over.observations["parser_error"] == "bad_length"
    assert over.verdict == "to_host"  # on_error: {bad_length: to_host}
    assert vectors["length.ipv4.max"].expected[0].verdict == "to_host"  # ihl > 5


def test_tlv_area_ending_on_an_option_without_data() -> None:
    v = by_name("tlv")["length.tcp.tlv_ends_on_empty_option"]
    exp = v.expected[0]
    assert exp.observations["parser_error"] is None
    data = v.packets[0].data
    tcp = exp.observations["offsets"]["tcp"]
    end = tcp + (data[tcp + 12] >> 4) * 4
    kind, length = data[end - 2], data[end - 1]
    assert length == 2 and kind not in (0, 1), "the area ends on an option of kind, length 2 and no data"


def test_verified_checksum_with_a_zero_sum() -> None:
    """The rest of the header sums to 0xffff: the checksum field is 0x0000, or 0xffff (the same sum)."""
    prog = program("checksum_verify")
    vectors = by_name("checksum_verify")
    for value in (0x0000, 0xFFFF):
        v = vectors[f"checksum.ipv4.verify_{value:#06x}"]
        assert field_value(prog, v, "ipv4", "checksum") == value
        assert v.expected[0].observations["parser_error"] is None, "both forms of the sum are valid"


def test_truncation_at_14_bytes() -> None:
    vectors = generated("checksum_verify").vectors
    assert any(len(v.packets[0].data) == 14 and "truncated" in v.tags for v in vectors)


@pytest.mark.parametrize("name", CLASS_PROGRAMS)
def test_class_coverage_is_complete_or_named(name: str) -> None:
    cov = generated(name).coverage
    for cls in CLASSES:
        c = cov[cls]
        assert c["class"] is True
        assert c["uncovered"] == [], f"{name}: {cls}: {c['uncovered']}"
        assert c["percent"] == 100.0
        for inf in c["infeasible"]:
            assert inf["item"] and inf["reason"], inf


def test_generation_is_deterministic_with_the_classes() -> None:
    prog = program("match_range")
    a = dumps_jsonl(generate(prog, seed=3).vectors, prog)
    b = dumps_jsonl(generate(prog, seed=3).vectors, prog)
    assert a == b


def test_vector_file_and_report_carry_the_class_coverage(tmp_path: Path) -> None:
    prog = program("match_range")
    g = generated("match_range")
    out = tmp_path / "v.jsonl"
    save_vectors(out, g.vectors, prog, "match_range.yaml", g.coverage)
    cov = read_coverage(out)
    assert cov is not None
    assert cov["const_entry_edges"]["covered"] == g.coverage["const_entry_edges"]["covered"] == 4
    report = RunReport("match_range.yaml", "match_range", [], [], [], cov)
    html = tmp_path / "r.html"
    write_html([report], html)
    text = html.read_text()
    assert "const entry edges" in text and "gap class" in text


def test_lookahead_select_neighbours() -> None:
    """gre_tunnel's classify_ipv4 reads lookahead(0, 8) (version/IHL) and lookahead(72, 8) (protocol) of the
    next header: 0x44/0x46 and protocol 46/48 next to the case 0x45, 47 go to plain ipv4."""
    prog = load_program(ROOT / "spec" / "examples" / "gre_tunnel.yaml").program
    vectors = {v.name: v for v in generate(prog).vectors}
    want = {"0.value-1": (0x44, 47), "0.value+1": (0x46, 47), "1.value-1": (0x45, 46), "1.value+1": (0x45, 48)}
    for label, (vihl, proto) in want.items():
        v = vectors[f"select.classify_ipv4.case0.{label}"]
        obs = v.expected[0].observations
        start = obs["offsets"]["ethernet"] + 14
        data = v.packets[0].data
        assert (data[start], data[start + 9]) == (vihl, proto), label
        assert "outer_ipv4" not in obs["path"], "the neighbour must not take the case"


def test_metadata_select_neighbours() -> None:
    """classifier's chain state selects on meta.proto, copied from ipv6.next_hdr: its neighbours (42 and 44
    around the Routing header's 43) are made by rewriting that field."""
    prog = load_program(ROOT / "spec" / "examples" / "classifier.yaml").program
    vectors = {v.name: v for v in generate(prog).vectors}
    for label, value in (("value-1", 42), ("value+1", 44)):
        v = vectors[f"select.chain.case1.0.{label}"]
        assert field_value(prog, v, "ipv6", "next_hdr") == value
        assert "chain" in v.expected[0].observations["path"]
