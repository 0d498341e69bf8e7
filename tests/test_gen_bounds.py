"""gen_bounds (issue 16, found by the differential hunt of nic survivors): frames cut inside a variable-length
part at its maximum length, and table keys with their top bit set against installed entries that end at the
key's maximum."""

from __future__ import annotations

from conformance.checksums import ones_sum
from conformance.gen_bounds import _cuts
from conformance.generate import generate

from .test_gen_class_edges import generated, program, tagged

ROUTER = "spec/examples/router.yaml"
TLV = "spec/examples/tlv_parser.yaml"


def test_cuts_are_both_ends_then_each_four_byte_step() -> None:
    assert _cuts(40) == [0, 39, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    assert _cuts(1) == [0]
    assert _cuts(0) == []
    assert _cuts(252) == [0, 251, 4, 8, 124, 248]  # a large area: its first, middle and last steps


def test_router_ipv4_ihl15_cut_inside_its_options() -> None:
    """router nic: `cur += 20u` made `-=` read on past a frame ending inside IPv4 options. Frames with IHL 15
    end right after the fixed part, at every 4-byte step and one byte short; the bytes cut off are zero and the
    checksum covers them, so a parser reading a zeroed buffer past the frame finds the header valid."""
    vs = list(tagged(ROUTER, "varlen_truncation").values())
    ihl15 = [v.packets[0].data for v in vs if v.packets[0].data[12:14] == b"\x08\x00"
             and v.packets[0].data[14] & 0xF == 15]
    assert sorted(len(d) - 34 for d in ihl15) == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 39]
    for d in ihl15:
        header = d[14:].ljust(60, b"\0")
        assert d[14] >> 4 == 4
        assert ones_sum(header) == 0xFFFF  # valid over the whole header, the zeroed tail included
    for v in vs:
        assert v.expected[0].observations["parser_error"] == "truncated"
        assert v.expected[0].verdict == "drop"
    cov = generated(ROUTER).coverage["varlen_truncation"]
    assert cov["uncovered"] == [] and cov["covered"] == cov["total"] == 12


def test_tlv_parser_mss_top_bit_against_full_ranges() -> None:
    """tlv_parser nic: mss_policy's range hi decoded with 15 bits. An entry 0 .. 0xffff must be hit by an MSS
    of 0x8000 or more, one 0x8000 .. 0xffff too, and missed by 0x7fff."""
    vs = tagged(TLV, "key_top_bit")
    got = {}
    for name, v in vs.items():
        if not name.startswith("topbit.mss_policy."):
            continue
        entry = v.control.entries[-1]
        obs = v.expected[0].observations
        got[name.rsplit(".", 1)[-1] if not name.endswith("below") else "below"] = (
            entry.match[0].a, entry.match[0].b, obs["hit"]["mss_policy"], obs["tables"]["mss_policy"])
    assert got["range_full"] == (0, 0xFFFF, True, entry.action)
    assert got["range_top_lo"] == (0x8000, 0xFFFF, True, entry.action)
    assert got["below"][:3] == (0x8000, 0xFFFF, False)
    cov = generated(TLV).coverage["key_top_bit"]
    assert cov["uncovered"] == [] and cov["covered"] == cov["total"] == 7


def test_key_top_bit_items_name_what_is_infeasible() -> None:
    """router: nexthops is keyed by metadata the program computes; the item says so rather than vanishing."""
    cov = generated(ROUTER).coverage["key_top_bit"]
    assert [d["item"] for d in cov["infeasible"]] == ["nexthops.meta.nexthop:top_bit"]
    assert "computed by the program" in cov["infeasible"][0]["reason"]


def test_deterministic() -> None:
    again = generate(program(ROUTER), seed=0)
    mine = {"varlen_truncation", "key_top_bit"}
    a = [(v.name, v.packets[0].data, v.control) for v in generated(ROUTER).vectors if mine & set(v.tags)]
    b = [(v.name, v.packets[0].data, v.control) for v in again.vectors if mine & set(v.tags)]
    assert a == b and a


def test_acl_metadata_port_ranges_steered_through_their_sources() -> None:
    """acl_firewall: meta.src_port / meta.dst_port (range keys) are assigned from tcp|udp ports; the packets the
    steering pool holds carry neither, so a generated TCP/UDP vector's port is rewritten in place."""
    vs = tagged("spec/examples/acl_firewall.yaml", "key_top_bit")
    for t in ("acl_v4", "acl_v6"):
        for i in (5, 6):
            v = vs[f"topbit.{t}.{i}.range_full"]
            assert v.control.entries[-1].match[i].a == 0 and v.control.entries[-1].match[i].b == 0xFFFF
            assert v.expected[0].observations["hit"][t] is True
    assert generated("spec/examples/acl_firewall.yaml").coverage["key_top_bit"]["infeasible"] == []
