"""Arguments that feed a later table's key, per parse path (conformance/gen_fullwidth.py): `full_width`'s all-ones
argument and `arg_low_bits`' odd ones are looked up downstream with an entry for exactly the new value, on the
IPv4 and the IPv6 path of the router (the xdp target copies the control per path)."""

from __future__ import annotations

from conformance.gen_fullwidth import CLASS, fed_tables
from conformance.model import Vector

from .test_gen_class_edges import generated, program

ROUTER = "spec/examples/router.yaml"


def tagged(tag: str) -> dict[str, Vector]:
    return {v.name: v for v in generated(ROUTER).vectors if tag in v.tags}


def test_fed_tables_follow_metadata_written_from_parameters() -> None:
    prog = program(ROUTER)
    assert fed_tables(prog, "routes_v4", "set_nexthop") == ["nexthops"]
    assert fed_tables(prog, "routes_v6", "set_nexthop") == ["nexthops"]
    assert fed_tables(prog, "nexthops", "next_hop") == []  # writes headers only
    assert fed_tables(prog, "routes_v4", "to_host") == []


def _id_and_downstream(v: Vector, table: str) -> tuple[int, list[int]]:
    (arg,) = next(e.args for e in v.control.entries if e.table == table and e.action == "set_nexthop")
    keys = [e.match[0].a for e in v.control.entries if e.table == "nexthops"]
    return arg, keys


def test_odd_next_hop_ids_hit_their_own_next_hop_on_both_paths() -> None:
    vs = tagged(CLASS)
    for table, path in (("routes_v4", "ethernet>ipv4"), ("routes_v6", "ethernet>ipv6")):
        for label in ("odd", "low_byte"):
            v = vs[f"lowbits.{table}.set_nexthop.{label}.{path}"]
            arg, keys = _id_and_downstream(v, table)
            assert arg & 1 and keys == [arg]  # the even neighbour has no entry: a cut bit 0 misses
            exp = v.expected[0]
            assert exp.verdict == "forward"
            assert exp.observations["hit"]["nexthops"] and exp.observations["tables"][table] == "set_nexthop"
        assert _id_and_downstream(vs[f"lowbits.{table}.set_nexthop.low_byte.{path}"], table)[0] & 0xFF == 0xFF
        for label in ("default_odd", "default_low_byte"):  # a miss under set_nexthop as the table's default
            v = vs[f"lowbits.{table}.set_nexthop.{label}.{path}"]
            ((_t, _a, (arg,)),) = [d for d in v.control.defaults if d[0] == table]
            assert arg & 1 and [e.match[0].a for e in v.control.entries if e.table == "nexthops"] == [arg]
            exp = v.expected[0]
            assert not exp.observations["hit"][table] and exp.observations["hit"]["nexthops"]
            assert exp.verdict == "forward"
    cov = generated(ROUTER).coverage[CLASS]
    assert cov["class"] and cov["total"] == cov["covered"] == 8 and not cov["infeasible"]


def test_full_width_ids_are_looked_up_downstream() -> None:
    vs = tagged("full_width")
    for table in ("routes_v4", "routes_v6"):
        v = next(v for n, v in vs.items() if n.startswith(f"width.{table}.set_nexthop.all_ones."))
        arg, keys = _id_and_downstream(v, table)
        assert arg == 0xFFFF and keys == [0xFFFF]
        assert v.expected[0].verdict == "forward" and v.expected[0].observations["hit"]["nexthops"]
