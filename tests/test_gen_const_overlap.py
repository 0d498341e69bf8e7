"""Generator classes for constant entries bit by bit and bit-vector ranks (issue 16): every constant entry hit
with its don't-care key bits all 1 and all 0 (const_dont_care), every pair of constant entries one key matches
hit by such a key (const_overlaps), and the winning entry of a bit-vector table at ranks across the 64-bit
match word (bitvec_ranks). Expected results are the oracle's; the tests check the vectors carry the key values
the class is about and that the oracle's result is the entry the spec says wins."""

from __future__ import annotations

from conformance.gen_classes import CLASSES
from conformance.gen_structures import BITVEC_CLASS, bitvec_ranks
from conformance.generate import generate
from conformance.model import Vector
from conformance.vector_io import dumps_jsonl

from .conftest import ROOT
from .test_gen_class_edges import generated, program
from .test_generate_classes import field_value

SUITE = ROOT / "conformance" / "suite"


def vectors(path: str, prefix: str) -> dict[str, Vector]:
    return {v.name: v for v in generated(path).vectors if v.name.startswith(prefix)}


TERNARY = "conformance/suite/match_ternary.yaml"  # t: #0 ipv4.src 10/8 (priority 1), #1 protocol 17 (priority 2)


def test_the_new_classes_are_reported() -> None:
    assert {"const_dont_care", "const_overlaps"} <= set(CLASSES)
    cov = generated(TERNARY).coverage
    for cls in ("const_dont_care", "const_overlaps"):
        assert cov[cls]["class"] is True and cov[cls]["uncovered"] == []


def test_dont_care_bits_all_ones_and_all_zeros() -> None:
    prog = program(TERNARY)
    vs = vectors(TERNARY, "const_dc.t.e0.")
    ones, zeros = vs["const_dc.t.e0.ones"], vs["const_dc.t.e0.zeros"]
    # entry 0 cares for the top byte of the source only: its host bits and the whole protocol set, then clear
    assert field_value(prog, ones, "ipv4", "src") == 0x0AFFFFFF
    assert field_value(prog, ones, "ipv4", "protocol") == 0xFF
    assert field_value(prog, zeros, "ipv4", "src") == 0x0A000000
    assert field_value(prog, zeros, "ipv4", "protocol") == 0
    for v in (ones, zeros):
        assert v.expected[0].verdict == "forward" and v.expected[0].port == 1
    cov = generated(TERNARY).coverage["const_dont_care"]
    assert cov["covered"] == cov["total"] == 6  # (#0: src, protocol; #1: src) x (ones, zeros)


def test_overlapping_entries_hit_by_one_key() -> None:
    prog = program(TERNARY)
    (v,) = vectors(TERNARY, "const_overlap.t.e0.e1").values()
    assert field_value(prog, v, "ipv4", "src") >> 24 == 10
    assert field_value(prog, v, "ipv4", "protocol") == 17
    assert v.expected[0].verdict == "drop"  # entry 1's priority is the higher
    assert generated(TERNARY).coverage["const_overlaps"]["covered"] == 1


def test_every_acl_entry_is_hit_with_its_wildcards_set() -> None:
    """acl_firewall: the steering prefers packets that already give a computed key (meta.l4_proto = 6 under
    valid(tcp)) its value, so every constant entry is hit; what stays infeasible is a key that no packet can
    carry together with the entry's others (an established bit on UDP or ICMP, ports on ICMP) or where another
    entry wins."""
    path = "spec/examples/acl_firewall.yaml"
    cov = generated(path).coverage
    assert cov["const_entries"]["covered"] == cov["const_entries"]["total"] == 15
    dc = cov["const_dont_care"]
    assert dc["covered"] >= 140
    for inf in dc["infeasible"]:
        assert inf["item"].split(".", 1)[1].split(":")[0] in ("meta.established", "meta.src_port", "meta.dst_port"), inf
    # the VLAN lab entry (priority 200) is hit by a TCP packet with ACK set: the established bit under its wildcard
    assert "acl_v4#8.meta.established:dont_care_ones" not in {x["item"] for x in dc["infeasible"]}
    assert cov["const_overlaps"]["covered"] == cov["const_overlaps"]["total"] > 10


def test_bitvec_ranks_cover_each_byte_of_the_word() -> None:
    assert bitvec_ranks(16) == [0, 1, 6, 7, 8, 12, 15]
    assert bitvec_ranks(8) == [0, 1, 6, 7]
    ranks = bitvec_ranks(64)
    assert all(any(g <= r < g + 8 for r in ranks) for g in range(0, 64, 8)) and 63 in ranks
    # a wrong bit k of the de Bruijn constant moves the slots of ranks 58-k..63-k: one of them is tested
    for k in range(64):
        assert any(58 - k <= r <= 63 - k for r in ranks) or 63 - k < 0


def test_bitvec_winner_at_each_rank() -> None:
    path = "conformance/suite/match_bitvec.yaml"
    cov = generated(path).coverage[BITVEC_CLASS]
    # ranks: acl4 (16 entries) 7, acl6 and l2_small (8) 4 each, l2_guard (64) 25; and each key with the ends of
    # its bytes set (5 + 2 + 2 + 1), steered from each parse path's packet (acl4's udp.dst_port and meta.dscp_hi
    # only from the paths that carry them with the other keys' values)
    assert cov["total"] == 7 + 4 + 4 + 25 + 10 and cov["covered"] == cov["total"]
    assert cov["infeasible"] == []
    prog = program(path)
    acl4 = [v for v in generated(path).vectors if v.name.startswith("bitvec.acl4.")]
    assert any(field_value(prog, v, "ipv4", "protocol") & 0x81 == 0x81 for v in acl4)
    assert len({tuple(v.expected[0].observations["path"]) for v in acl4}) >= 3  # a copy of the lookup per path
    for r in bitvec_ranks(16):
        v = vectors(path, f"bitvec.acl4.rank{r}")[f"bitvec.acl4.rank{r}"]
        mine = [e for e in v.control.entries if e.table == "acl4" and e.priority == 1000]
        above = [e for e in v.control.entries if e.table == "acl4" and e.priority > 1000]
        assert len(mine) == 1 and len(above) == r
        # the oracle finds the entry at rank r: its arguments, not a higher entry's nor the catch-all's
        assert v.expected[0].observations["tables"]["acl4"] == mine[0].action


def test_deterministic() -> None:
    prog = program(TERNARY)
    assert dumps_jsonl(generate(prog, seed=5).vectors, prog) == dumps_jsonl(generate(prog, seed=5).vectors, prog)


ROUTER = "spec/examples/router.yaml"


def test_select_bits_flip_the_ipv6_version_under_a_routing_state() -> None:
    """router: version 14 (6 with bit 3 flipped) must be rejected (to the host) where the same packet with
    version 6 is routed: a target reading the version as 3 bits would forward it."""
    prog = program(ROUTER)
    (v,) = vectors(ROUTER, "select_bit.ipv6.case0.version.e").values()
    assert field_value(prog, v, "ipv6", "version") == 14
    assert v.expected[0].verdict == "to_host"
    assert v.control.entries  # the base vector's state: router_mac hit, a route
    cov = generated(ROUTER).coverage["select_bits"]
    assert cov["covered"] == cov["total"] == 16  # ethertype 2 cases x 4 bits, versions 2 x 4


def test_checksum_update_edges_per_copy_and_with_options() -> None:
    """nat44: every per-path copy of each checksum update reaches results 0x0000 and 0xfffe, and the IPv4
    header update does with options too (IHL > 5), where the nic target recomputes the whole header."""
    path = "spec/examples/nat44.yaml"
    cov = generated(path).coverage["checksum_copies"]
    assert cov["covered"] == cov["total"] >= 20 and cov["infeasible"] == []
    opts = [v for v in generated(path).vectors if "checksum_copy" in v.tags
            and (v.packets[0].data[14] & 0x0F) > 5 and v.expected[0].data]
    assert {v.expected[0].data[24:26] for v in opts} >= {b"\0\0", b"\xff\xfe"}


def test_mask_bits_flipped_just_outside_each_entry() -> None:
    """The first and last bit of each byte of an entry's mask flipped: 10/8 becomes 11.x and 138.x (the entry
    misses, the default decides), protocol 17 becomes 16 and 145."""
    prog = program(TERNARY)
    vs = vectors(TERNARY, "const_mask_bit.t.")
    assert field_value(prog, vs["const_mask_bit.t.e0.ipv4.src.bit24"], "ipv4", "src") >> 24 == 11
    assert field_value(prog, vs["const_mask_bit.t.e0.ipv4.src.bit31"], "ipv4", "src") >> 24 == 138
    assert field_value(prog, vs["const_mask_bit.t.e1.ipv4.protocol.bit0"], "ipv4", "protocol") == 16
    assert field_value(prog, vs["const_mask_bit.t.e1.ipv4.protocol.bit7"], "ipv4", "protocol") == 145
    for v in vs.values():
        assert v.expected[0].verdict != "drop"  # entry 1 (drop) does not win there


def test_udp_checksum_none_in_every_copy() -> None:
    """nat44: in each copy of the UDP checksum update, a packet whose UDP checksum is 0 (none): it stays 0."""
    path = "spec/examples/nat44.yaml"
    prog = program(path)
    nones = [v for v in generated(path).vectors if v.name.startswith("csum_copy.udp.none")]
    assert nones
    for v in nones:
        assert field_value(prog, v, "udp", "checksum") == 0
        off = v.expected[0].observations["offsets"]["udp"]
        assert v.expected[0].data[off + 6:off + 8] == b"\0\0"
