"""Generated table-structure shapes (conformance/gen_structures.py): the xdp target's cuckoo hash and multibit
trie put in the states where their lookups go wrong, by op sequences built with the target's own hash functions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.expr import KeyElem
from conformance.gen_structures import CLASS, CUCKOO_SHAPES, TRIE_SHAPES, cuckoo_shapes, structure_of
from conformance.generate import Generated, generate
from conformance.model import ControlOp, Vector
from conformance.runner import RunRequest, run_conformance
from targets.xdp.control import cuckoo_key
from targets.xdp.cuckoo import Cuckoo, ways_for
from targets.xdp.layout import key_words, table_layout

from .conftest import ROOT, need_bpf, need_tool

SEQ_SPEC = ROOT / "conformance" / "suite" / "table_sequences.yaml"  # macs: cuckoo of 4 buckets; routes: trie
LPM_SPEC = ROOT / "conformance" / "suite" / "match_lpm.yaml"
ROUTER = ROOT / "spec" / "examples" / "router.yaml"


@functools.cache
def _generated(spec: Path) -> Generated:
    return generate(load_program(str(spec)).program, seed=0)


def _struct(spec: Path, table: str) -> dict[str, Vector]:
    return {v.name.removeprefix(f"struct.{table}."): v for v in _generated(spec).vectors
            if v.name.startswith(f"struct.{table}.")}


def test_the_structure_is_the_one_the_xdp_layout_picks() -> None:
    prog = load_program(str(ROUTER)).program
    kinds = {n: structure_of(prog, t) for n, t in prog.tables.items()}
    assert kinds == {"router_mac": ("cuckoo", table_layout(prog, prog.tables["router_mac"]).cuckoo_buckets),
                     "routes_v4": ("trie", table_layout(prog, prog.tables["routes_v4"]).trie_nodes),
                     "routes_v6": ("trie", table_layout(prog, prog.tables["routes_v6"]).trie_nodes),
                     "nexthops": None}  # a 16-bit key: an array indexed by it


def test_cuckoo_shapes_put_the_key_where_they_say() -> None:
    """Replayed on the target's own cuckoo, every vector leaves the packet's key in the slot its name gives."""
    prog = load_program(str(SEQ_SPEC)).program
    t = prog.tables["macs"]
    buckets = table_layout(prog, t).cuckoo_buckets
    cu = Cuckoo.scratch(buckets, key_words(t), ways_for(t.size))  # a small table: one slot per bucket
    vecs = _struct(SEQ_SPEC, "macs")
    (only,) = vecs["bucket1_slot0"].control.ops
    key = cuckoo_key(t, only.match)
    b1, b2 = cu.hashes(*key)
    assert b1 != b2

    def where(ops: tuple[ControlOp, ...]) -> dict[tuple[int, int], tuple[int, int]]:
        cu.reset()
        for i, op in enumerate(ops):
            if op.op == "insert":
                cu.insert(*cuckoo_key(t, op.match), i)
            elif op.op == "delete":
                cu.delete(*cuckoo_key(t, op.match))
        return dict(cu.where)

    assert cu.ways == 1
    for w in range(cu.ways):
        assert where(vecs[f"bucket1_slot{w}"].control.ops)[key] == (b1, w)
        assert where(vecs[f"bucket2_slot{w}"].control.ops)[key] == (b2, w)
        assert vecs[f"bucket2_slot{w}"].expected[0].observations["hit"]["macs"]
    full = where(vecs["miss_full"].control.ops)
    assert key not in full and sorted(full.values()) == sorted((b, w) for b in (b1, b2) for w in range(cu.ways))
    assert not vecs["miss_full"].expected[0].observations["hit"]["macs"]
    assert key not in where(vecs["deleted"].control.ops)
    assert where(vecs["reinserted"].control.ops)[key] == (b2, 0)
    # the other keys vary the packet's key in its low bits only: one header field to steer
    assert all(cuckoo_key(t, op.match)[0] >> 16 == key[0] >> 16 for op in vecs["miss_full"].control.ops)


def test_cuckoo_coverage_names_what_the_table_cannot_hold() -> None:
    part = _generated(SEQ_SPEC).coverage[CLASS]
    infeasible = {i["item"]: i["reason"] for i in part["infeasible"]}
    # one slot per bucket (8 entries): a relocation needs 3 entries, so every shape fits
    assert {i: r for i, r in infeasible.items() if i.startswith("macs:")} == {}
    assert part["uncovered"] == []
    # every parse path to a table (each its own copy of the lookup) gets its own items
    assert part["total"] > len(CUCKOO_SHAPES) + len(TRIE_SHAPES)


def test_relocation_moves_a_key_the_packet_then_finds() -> None:
    """In a table with room for both buckets and one more key, the key inserted last moves one of them, and a
    packet steered to the moved key finds it in its other bucket."""
    g = generate(load_program(str(ROOT / "spec" / "examples" / "nat44.yaml")).program, seed=0)
    part = g.coverage[CLASS]
    infeasible = {i["item"] for i in part["infeasible"]}
    assert part["uncovered"] == [] and not {"snat:relocated", "snat:relocated_moved", "dnat:relocated_moved"} & infeasible
    vecs = {v.name: v for v in g.vectors if v.name.startswith("struct.snat.relocated")}
    moved, mine = vecs["struct.snat.relocated_moved"], vecs["struct.snat.relocated"]
    assert moved.control.ops == mine.control.ops and moved.packets != mine.packets
    assert moved.expected[0].observations["hit"]["snat"] and mine.expected[0].observations["hit"]["snat"]


def test_trie_shapes_nest_prefixes_across_node_boundaries() -> None:
    vecs = _struct(LPM_SPEC, "t")
    part = _generated(LPM_SPEC).coverage[CLASS]
    # four parse paths reach the table: four copies of the lookup in the generated code, each with the shapes
    assert part["uncovered"] == [] and part["infeasible"] == [] and part["covered"] == 4 * len(TRIE_SHAPES)
    ladder = vecs["node_boundaries.at16"].control.ops
    assert sorted(op.match[0].b for op in ladder) == [15, 16, 17, 23, 24, 25, 31, 32]
    probes = [v for n, v in vecs.items() if n.startswith("node_boundaries.")]
    assert len(probes) == 8 and len({(v.expected[0].verdict, v.expected[0].data) for v in probes}) >= 2
    # a /17 under a /16: the packet in the /16's other half finds the /16
    split = vecs["split_root_slot.at16"]
    assert [op.match[0].b for op in split.control.ops] == [16, 17]
    # deletes: the longer prefix goes, the shorter one answers again; a prefix re-added
    assert [op.op for op in vecs["delete_two.at16"].control.ops] == ["insert"] * 3 + ["delete"] * 2
    readded = vecs["readded"].control.ops
    assert readded[-1].op == "insert" and readded[-1].match == readded[2].match
    assert (readded[-1].action, readded[-1].args) != (readded[2].action, readded[2].args)
    host = vecs["host_route.at32"]
    assert KeyElem("prefix", host.control.ops[-1].match[0].a, 32) in [op.match[0] for op in host.control.ops]


def test_ipv6_routes_reach_every_level() -> None:
    vecs = _struct(ROUTER, "routes_v6")
    assert {op.match[0].b for op in vecs["host_route.at128"].control.ops} == {120, 127, 128}
    assert {op.match[0].b for op in vecs["node_boundaries.at128"].control.ops} >= {16, 24, 64, 120, 128}


def test_generation_is_deterministic() -> None:
    a = _generated(SEQ_SPEC).vectors
    b = generate(load_program(str(SEQ_SPEC)).program, seed=0).vectors
    key = [(v.name, v.control.key(), [p.data for p in v.packets]) for v in a if v.name.startswith("struct.")]
    assert key == [(v.name, v.control.key(), [p.data for p in v.packets]) for v in b if v.name.startswith("struct.")]
    assert key


def test_each_apply_of_a_table_gets_its_own_shapes() -> None:
    """vxlan_gateway applies fdb on two control paths (from the underlay and from an access port): two lookups in
    the generated code, each with the shapes."""
    part = generate(load_program(str(ROOT / "spec" / "examples" / "vxlan_gateway.yaml")).program,
                    seed=0).coverage[CLASS]
    # local_vtep (16 entries: one slot per bucket), fdb and fdb@2 (65,536: four)
    assert part["uncovered"] == [] and part["covered"] == len(cuckoo_shapes(1)) + 2 * len(CUCKOO_SHAPES)


@pytest.mark.parametrize("target", ["xdp", "nic"])
def test_the_shapes_pass_on_the_targets(target: str) -> None:
    need_bpf() if target == "xdp" else need_tool("gcc")
    requests = [RunRequest(str(spec), [v for v in _generated(spec).vectors if v.name.startswith("struct.")])
                for spec in (SEQ_SPEC, LPM_SPEC)]
    for report in run_conformance(requests, [target], timeout=30, jobs=1):
        assert [t.reason for t in report.targets if not t.ran] == []
        bad = [f"{o.vector}: {o.outcome}: {'; '.join(o.detail[:4])}" for o in report.outcomes
               if o.outcome not in ("PASS", "N/A", "XFAIL")]
        assert not bad, "\n".join(bad)
        assert any(o.outcome == "PASS" for o in report.outcomes)


def test_a_16_bit_trie_key_names_the_shapes_it_is_too_short_for(tmp_path: Path) -> None:
    text = LPM_SPEC.read_text().replace("../../spec/", f"{ROOT}/spec/").replace("ipv4.dst: lpm", "udp.dst_port: lpm")
    text = text.replace('ipv4.dst: "10.0.0.0/8"', 'udp.dst_port: "0x0a00/8"').replace(
        'ipv4.dst: "10.1.0.0/16"', 'udp.dst_port: "0x0a01/16"')
    spec = tmp_path / "lpm16.yaml"
    spec.write_text(text)
    prog = load_program(str(spec)).program
    assert structure_of(prog, prog.tables["t"]) is not None
    part = generate(prog, seed=0).coverage[CLASS]
    assert {i["item"]: i["reason"] for i in part["infeasible"] if i["item"].startswith("t:")} == {
        "t:split_root_slot": "the key has 16 bits, the shape needs /17",
        "t:delete_restores": "the key has 16 bits, the shape needs /24"}
    assert part["uncovered"] == [] and part["covered"] == part["total"] // len(TRIE_SHAPES) * (len(TRIE_SHAPES) - 2)
