"""select_bits per parse path (issue 16): the xdp target copies a parser state per header-stack fill level (or per
path in its tree-shaped parser), and each copy reads the select itself, so each case's flipped bits are tried on
every parse path to the state (up to MAX_PATHS), not once per state."""

from __future__ import annotations

from functools import cache

from conformance.gen_classes import MAX_PATHS, _path_prefixes
from conformance.generate import Generated

from .test_gen_class_edges import generated, program

ACL = "spec/examples/acl_firewall.yaml"
ROUTER = "spec/examples/router.yaml"


@cache
def acl() -> Generated:
    return generated(ACL)


def _two_tags_to_fragment(data: bytes) -> bool:
    """Two VLAN tags, IPv6, then the fragment header first: the copy of 'fragment' under two tags."""
    return (data[12:14] in (b"\x81\x00", b"\x88\xa8") and data[16:18] == b"\x81\x00" and data[20:22] == b"\x86\xdd"
            and data[28] == 44)


def test_fragment_next_hdr_top_bit_flipped_under_two_vlan_tags() -> None:
    """acl_firewall xdp: the fragment copy under two VLAN tags read next_hdr as 7 bits and survived. A packet
    there with next_hdr 6 | 0x80 (134) must be generated: the spec takes the default (no transport header),
    the 7-bit read takes it for TCP."""
    vs = [v for v in acl().vectors if "select_bit" in v.tags and _two_tags_to_fragment(v.packets[0].data)]
    hdrs = {v.packets[0].data[62] for v in vs}  # the fragment header's next_hdr (14 + 8 + 40)
    assert {6 | 0x80, 17 | 0x80, 58 | 0x80} <= hdrs


def test_items_are_named_per_path_and_covered() -> None:
    cov = acl().coverage["select_bits"]
    assert cov["uncovered"] == []
    assert cov["total"] > 800  # 320 per state, the rest per path
    assert not any("cap" in d["reason"] for d in cov["infeasible"])
    # what a path cannot reach is named with the path
    assert any(" via ethernet-" in d["item"] for d in cov["infeasible"])


def test_one_path_states_get_no_items_per_path() -> None:
    """router: every select state has one parse path to it, one copy: the items per state cover it."""
    cov = generated(ROUTER).coverage["select_bits"]
    assert cov["covered"] == cov["total"] == 16


def test_paths_spread_over_stack_fill_levels_first() -> None:
    prog = program(ACL)
    pre = [("ethernet", "ipv6"), ("ethernet", "ipv6", "hop_by_hop"), ("ethernet", "ipv6", "dest_opts"),
           ("ethernet", "ipv6", "routing"), ("ethernet", "ipv6", "hop_by_hop", "routing"),
           ("ethernet", "vlan", "ipv6", "hop_by_hop"), ("ethernet", "vlan", "vlan", "ipv6", "hop_by_hop"),
           ("ethernet", "vlan", "ipv6"), ("ethernet", "vlan", "vlan", "ipv6"), ("ethernet", "vlan", "ipv6", "routing")]
    got = _path_prefixes(prog, pre)
    assert len(got) == MAX_PATHS
    # the shortest path of each VLAN count comes first
    assert got[:3] == [("ethernet", "ipv6"), ("ethernet", "vlan", "ipv6"), ("ethernet", "vlan", "vlan", "ipv6")]
    assert _path_prefixes(prog, list(reversed(pre))) == got  # deterministic whatever the order found


def test_select_edges_per_path_range_bound_under_two_vlan_tags() -> None:
    """select_edges on each path too: the IPv4 non-first-fragment range '1 .. 0x1fff' with offset 0 (lo-1) in
    the copy of 'ipv4' under two VLAN tags (its own '>=' compare there)."""
    vs = [v for v in acl().vectors if v.name.startswith("select.ipv4.case3.0.lo-1")]
    def vlans(d: bytes) -> int:
        return 0 if d[12:14] not in (b"\x81\x00", b"\x88\xa8") else 1 + (d[16:18] == b"\x81\x00")

    assert sorted(vlans(v.packets[0].data) for v in vs) == [0, 0, 1, 2]  # the one per state, one per VLAN count
    cov = acl().coverage["select_edges"]
    assert cov["uncovered"] == [] and not any("cap" in d["reason"] for d in cov["infeasible"])
