"""Issue 16, third round's real gaps: the xdp cuckoo's hash multipliers one off (gen_hashes.py), forwarded ports at
full width per parse path (gen_portwidth.py) and parser edges replayed behind the other prefixes of their state
(gen_percopy.py)."""

from __future__ import annotations

from conformance.gen_hashes import NEIGHBOURS, _variant, bucket, fold_keys, neighbour_keys
from targets.xdp.cuckoo import C1, C2, C3, M64

from .test_gen_class_edges import generated

ACL = "spec/examples/acl_firewall.yaml"
ROUTER = "spec/examples/router.yaml"


def test_neighbour_keys_move_their_bucket() -> None:
    """A 48-bit MAC in 32 buckets (router_mac): a key near the packet's whose bucket moves under each neighbour
    of each multiplier and shift, and whose two buckets differ."""
    v = 0x02_00_00_00_00_01
    got = neighbour_keys(v, 48, 32)
    assert set(got) == {f"h{j}{nb}" for j in (1, 2) for nb in NEIGHBOURS}
    for item, x in got.items():
        assert x is not None and 0 < x < 1 << 48
        mult = C1 if item[1] == "1" else C2
        m2, s2 = _variant(mult, 59, item[2:])
        assert bucket(x, mult, 59) != bucket(x, m2, s2)
        assert bucket(x, C1, 59) != bucket(x, C2, 59)


def test_narrow_keys_are_found_by_the_convergents() -> None:
    """A 32-bit key in 8 buckets: M+1 moves about one key in 2^29, out of reach of a search near the packet's key;
    the continued-fraction convergents of M / 2^61 give such keys."""
    got = neighbour_keys(0x0A000001, 32, 8)
    for j, mult in ((1, C1), (2, C2)):
        for nb in ("+1", "-1"):
            x = got[f"h{j}{nb}"]
            assert x is not None and x < 1 << 32
            assert bucket(x, mult, 61) != bucket(x, (mult + (1 if nb == "+1" else -1)) & M64, 61)


def test_router_mac_neighbours_covered_where_a_hit_matters() -> None:
    cov = generated(ROUTER).coverage["hash_neighbours"]
    assert cov["uncovered"] == []
    assert cov["covered"] == 20  # two copies of the control (IPv4, IPv6) x two hashes x five neighbours
    assert all("hit and a miss" in d["reason"] for d in cov["infeasible"])  # the non-IP copy: both to the host
    vs = [v for v in generated(ROUTER).vectors if v.name.startswith("struct.router_mac") and ".hash.h2" in v.name]
    assert vs and all(len(v.control.ops) == 2 for v in vs)  # a key fills the first (one-slot) bucket: bucket 2


def test_router_ipv6_copy_forwards_to_a_port_with_its_top_bit_set() -> None:
    g = generated(ROUTER)
    cov = g.coverage["port_width"]
    assert cov["uncovered"] == [] and not cov["infeasible"] and cov["covered"] == 4  # IPv4, IPv6 x top, all ones
    v6 = [v for v in g.vectors if "port_width" in v.tags and v.expected[0].observations["path"][-1] == "ipv6"]
    assert {(v.expected[0].verdict, v.expected[0].port) for v in v6} == {("forward", 0x8001), ("forward", 0xFFFF)}


def test_tcp_length_edges_replayed_under_vlan_tags() -> None:
    """acl_firewall: `length.tcp` is built on ethernet>ipv4>tcp only; the xdp tree copies `tcp` per VLAN depth."""
    g = generated(ACL)
    paths = {tuple(v.expected[0].observations["path"]) for v in g.vectors
             if "per_copy" in v.tags and "length_edge" in v.tags}
    assert ("ethernet", "vlan", "ipv4", "tcp") in paths
    assert any(p[:2] == ("ethernet", "ipv6") and p[-1] == "tcp" for p in paths)
    cov = g.coverage["per_copy_edges"]
    assert cov["uncovered"] == [] and cov["covered"] > 100
    base = sum(1 for v in g.vectors if "per_copy" not in v.tags)
    assert cov["covered"] <= 0.15 * base



def test_sack_hidden_under_a_small_mss() -> None:
    """tlv_parser: `valid(tcp.sack_permitted) && valid(tcp.mss) && tcp.mss.value < 1000` met with SACK-permitted
    hidden (an unknown option of its length) under a SYN with a small MSS: the reference takes the else, a target
    that reads MSS (kind 2, length 4) as SACK-permitted (kind 4) counts an anomaly."""
    g = generated("spec/examples/tlv_parser.yaml")
    cov = g.coverage["condition_terms"]
    assert cov["uncovered"] == [] and cov["covered"] >= 4
    vs = [v for v in g.vectors if "condition_term" in v.tags and ".tcp.sack_permitted." in v.name]
    assert len(vs) == 2  # IPv4 and IPv6
    for v in vs:
        assert ("option_anomalies", 1) not in (v.expected[0].counters or {})


def test_fold_multiplier_neighbours_of_two_word_keys() -> None:
    """A 72-bit key (vxlan_gateway's fdb: x = k0 ^ k1 * C3): a key both of whose buckets move under the mutant's
    fold, for C3 one off and its top bit flipped (an odd high word), even from a zero high word."""
    shift = 64 - 14
    for item, kk in fold_keys(0x0000_5E00_5301, 0, 1 << 14).items():
        assert kk is not None and kk[1] != 0
        a0, k1 = kk
        c3 = _variant(C3, shift, item[2:])[0]
        x, x2 = a0 ^ ((k1 * C3) & M64), a0 ^ ((k1 * c3) & M64)
        assert bucket(x2, C1, shift) != bucket(x, C1, shift) != bucket(x, C2, shift) != bucket(x2, C2, shift)
