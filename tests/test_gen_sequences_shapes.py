"""The table-API shapes of conformance/gen_sequences.py (issue 16, "control-plane state shapes: the nic table
API"): sequences that drive the NIC hash table's linear probing and backward-shift delete (chains of one home
slot, the last slot, the wrap to slot 0), its list of prefix lengths, a table at its size, and the sorted array
of a priority table. Each shape is checked against a Python model of the NIC's probing, so a change of the hash
or of the generator that stops reaching the intended layout fails here, not silently in mutation scores.
"""

from __future__ import annotations

from typing import Any

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.gen_sequences import API_CLASS, API_SHAPES, nic_capacity, nic_home_slot
from conformance.generate import generate
from conformance.model import ControlOp, Vector
from conformance.runner import RunRequest, run_conformance

from .conftest import ROOT, need_bpf, need_tool

SEQ_SPEC = ROOT / "conformance" / "suite" / "table_sequences.yaml"
ROUTER = ROOT / "spec" / "examples" / "router.yaml"


@pytest.fixture(scope="module")
def small() -> tuple[ir.Program, list[Vector], dict]:
    prog = load_program(str(SEQ_SPEC)).program
    g = generate(prog, seed=0)
    return prog, [v for v in g.vectors if "table_api" in v.tags], g.coverage[API_CLASS]


@pytest.fixture(scope="module")
def router() -> tuple[ir.Program, Any]:
    prog = load_program(str(ROUTER)).program
    return prog, generate(prog, seed=0)


def _vector(vectors: list[Vector], name: str) -> Vector:
    return next(v for v in vectors if v.name == name)


class Probing:
    """The NIC hash table as targets/nic generates it: linear probing from the home slot, backward-shift
    delete. Records every slot an entry occupied."""

    def __init__(self, t: ir.Table) -> None:
        self.t, self.cap = t, nic_capacity(t)
        self.slots: list[tuple[KeyElem, ...] | None] = [None] * self.cap
        self.visited: dict[tuple[KeyElem, ...], list[int]] = {}

    def home(self, match: tuple[KeyElem, ...]) -> int:
        h = nic_home_slot(self.t, match)
        assert h is not None
        return h

    def where(self, match: tuple[KeyElem, ...]) -> int:
        return self.slots.index(match)

    def apply(self, op: ControlOp) -> None:
        if op.op == "insert":
            pos = self.home(op.match)
            while self.slots[pos] is not None:
                pos = (pos + 1) % self.cap
            self._put(pos, op.match)
        elif op.op == "delete":
            i = self.where(op.match)
            j = i
            while True:
                j = (j + 1) % self.cap
                e = self.slots[j]
                if e is None:
                    break
                if (j - self.home(e)) % self.cap >= (j - i) % self.cap:
                    self._put(i, e)
                    i = j
            self.slots[i] = None
        # a modify changes no slot: the driver's lookup before it must find the entry where it is
        if op.op != "insert":
            assert op.op == "delete" or self.slots[self.where(op.match)] == op.match

    def _put(self, pos: int, match: tuple[KeyElem, ...]) -> None:
        self.slots[pos] = match
        self.visited.setdefault(match, []).append(pos)


def _probe(t: ir.Table, v: Vector) -> Probing:
    model = Probing(t)
    for op in v.control.ops:
        if op.table == t.name:
            model.apply(op)
    return model


def test_every_table_gets_its_api_shapes(small: tuple[ir.Program, list[Vector], dict]) -> None:
    _, vectors, part = small
    assert part["uncovered"] == [] and part["infeasible"] == []
    # macs (exact): 3 hash shapes + full_cycle; routes (lpm): + lpm_lengths; acl (ternary): full_cycle,
    # priority_order, key_wildcards; each a default_op and a near_miss
    assert part["covered"] == part["total"] == 6 + 7 + 5
    assert {tag for v in vectors for tag in v.tags} - {"table_api"} == set(API_SHAPES)
    assert all("sequence" not in v.tags for v in vectors)  # the control_plane_states class is counted apart


@pytest.mark.parametrize("table", ["macs", "routes"])
def test_probe_chains_shift_back_from_the_front_and_the_middle(
        small: tuple[ir.Program, list[Vector], dict], table: str) -> None:
    prog, vectors, _ = small
    t = prog.tables[table]
    for label in ("chain_first_deleted", "chain_middle_deleted", "chain_front_reinserted"):
        v = _vector(vectors, f"seq.{table}.{label}")
        inserted = [op.match for op in v.control.ops if op.op == "insert"]
        model = Probing(t)
        assert len({model.home(m) for m in inserted}) == 1, label  # one home slot h for all three
        h = model.home(inserted[0])
        model = _probe(t, v)
        packet_entry = v.control.ops[-1].match
        # three entries at h, h+1, h+2; deleting one of the first two moves the packet's entry back
        if label == "chain_front_reinserted":
            assert model.visited[packet_entry] == [h, (h + 2) % model.cap]
        else:
            assert model.visited[packet_entry][0] == (h + 2) % model.cap
            assert model.where(packet_entry) == {"chain_first_deleted": h + 1, "chain_middle_deleted": h}[label] \
                % model.cap
        assert v.expected[0].observations["hit"][table]


@pytest.mark.parametrize("table", ["macs", "routes"])
def test_the_last_slot_is_probed_into_and_an_entry_at_home_there_stays(
        small: tuple[ir.Program, list[Vector], dict], table: str) -> None:
    prog, vectors, _ = small
    t = prog.tables[table]
    v = _vector(vectors, f"seq.{table}.home_kept_last_slot")
    last = nic_capacity(t) - 1
    _, p1, p2, q = [op.match for op in v.control.ops if op.op == "insert"][:4]
    model = _probe(t, v)
    assert model.home(p1) == model.home(p2) == last - 1 and model.home(q) == last
    assert model.visited[p2] == [last, last - 1]  # probed into the last slot, shifted back when p1 went
    assert model.visited[q] == [last]  # at home in the last slot: the delete before it must not move it
    assert model.where(q) == last


@pytest.mark.parametrize("table", ["macs", "routes"])
def test_entries_wrap_around_the_end_of_the_array(small: tuple[ir.Program, list[Vector], dict], table: str) -> None:
    prog, vectors, _ = small
    t = prog.tables[table]
    v = _vector(vectors, f"seq.{table}.wrap_around")
    last = nic_capacity(t) - 1
    _, w1, w2, z = [op.match for op in v.control.ops if op.op == "insert"]
    model = _probe(t, v)
    assert model.home(w1) == model.home(w2) == last and model.home(z) == 0
    assert model.visited[w2][:2] == [0, last]  # wrapped to slot 0, shifted back across the end
    assert model.visited[z][:2] == [1, 0]


def test_lpm_lengths_reach_a_zero_and_a_full_length_entry(small: tuple[ir.Program, list[Vector], dict]) -> None:
    _, vectors, _ = small
    zero = _vector(vectors, "seq.routes.lpm_zero_length")
    below = _vector(vectors, "seq.routes.lpm_zero_below")
    full = _vector(vectors, "seq.routes.lpm_full_length")
    assert [op.match[0].kind for op in zero.control.ops if op.op == "insert"] == ["prefix", "any"]
    assert [op.match[0].kind for op in below.control.ops if op.op == "insert"] == ["any", "prefix"]
    lengths = [op.match[0].b for op in full.control.ops if op.op == "insert"]
    assert lengths[-1] == 32 and lengths[0] < 32

    # the /0 entry answers alone, the packet's own entry above it; the /32 above that
    assert zero.expected[0].observations["tables"]["routes"] == zero.control.ops[1].action
    assert below.expected[0].observations["tables"]["routes"] == below.control.ops[1].action
    assert full.expected[0].observations["tables"]["routes"] == full.control.ops[1].action


def test_lpm_entries_end_otherwise_than_the_packets_own(router: tuple[ir.Program, Any]) -> None:
    """Actions picked by outcome: in router a /0 or /32 entry of routes_v4 drops where the packet's own
    (set_nexthop, then a next-hop miss) goes to the host; a length tried out of order or left out shows."""
    _, g = router
    vs = {v.name: v for v in g.vectors}

    def ends(name: str) -> tuple[object, ...]:
        e = vs[f"seq.routes_v4.{name}"].expected[0]
        return e.verdict, e.port, e.data

    assert ends("lpm_zero_length") != ends("lpm_zero_below") != ends("lpm_full_length")


def test_priority_order_inserts_and_deletes_at_the_front_middle_and_end(
        small: tuple[ir.Program, list[Vector], dict]) -> None:
    _, vectors, _ = small
    v = _vector(vectors, "seq.acl.priority_order")
    array: list[tuple[int, int]] = []  # (priority, insert number), sorted as the NIC's array: highest first
    places: dict[str, set[str]] = {"insert": set(), "delete": set()}
    for n, op in enumerate(v.control.ops):
        if op.op == "insert":
            pos = sum(1 for p, _ in array if p >= op.priority)
            if array:
                places["insert"].add("front" if pos == 0 else "end" if pos == len(array) else "middle")
            array.insert(pos, (op.priority, n))
        elif op.op == "delete":
            i = next(i for i, (p, m) in enumerate(array) if v.control.ops[m].match == op.match and p == op.priority)
            places["delete"].add("front" if i == 0 else "end" if i == len(array) - 1 else "middle")
            del array[i]
        assert len(array) <= 4  # the spec's acl holds 4
    assert places == {"insert": {"front", "middle", "end"}, "delete": {"front", "middle", "end"}}
    fallback = _vector(vectors, "seq.acl.priority_order_fallback")
    broad = v.control.ops[0]
    assert fallback.control.ops[-2].op == "delete"  # the packet's entry goes: the overlapping one answers
    assert (fallback.expected[0].verdict, fallback.expected[0].port) != (v.expected[0].verdict, v.expected[0].port)
    assert fallback.expected[0].observations["tables"]["acl"] == broad.action


def test_a_full_table_cycles_a_handle_at_its_size(small: tuple[ir.Program, list[Vector], dict]) -> None:
    prog, vectors, _ = small
    for name in ("macs", "routes", "acl"):
        v = _vector(vectors, f"seq.{name}.full_cycle")
        live = sum(e.table == name for e in v.control.entries)
        peak = []
        for op in v.control.ops:
            live += {"insert": 1, "delete": -1}.get(op.op, 0)
            peak.append(live)
        size = prog.tables[name].size - len(prog.tables[name].entries)
        assert max(peak) == size and peak.count(size) >= 3  # full, refilled after each delete
        assert v.control.ops[-1].op == "modify"


def test_generation_is_deterministic() -> None:
    prog = load_program(str(SEQ_SPEC)).program
    a, b = (generate(prog, seed=0).vectors for _ in range(2))
    assert [(v.name, v.control.key()) for v in a if "table_api" in v.tags] == \
        [(v.name, v.control.key()) for v in b if "table_api" in v.tags]


def test_large_tables_find_their_home_slots(router: tuple[ir.Program, Any]) -> None:
    """router's routes_v4 hashes 65,536 entries into 131,072 slots: the key search still finds each shape's keys."""
    _, g = router
    part = g.coverage[API_CLASS]
    assert part["uncovered"] == []
    assert {i["item"] for i in part["infeasible"]} == {
        "routes_v4:full_cycle", "routes_v6:full_cycle", "nexthops:full_cycle", "router_mac:default_op"}


@pytest.mark.parametrize("target", ["nic", "nic-asan", "xdp"])
def test_api_shapes_pass_on_each_target(small: tuple[ir.Program, list[Vector], dict], target: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if target == "xdp":
        need_bpf()
    else:
        need_tool("gcc")
    _, vectors, _ = small
    monkeypatch.setenv("C3PO_NIC_SANITIZE", "1" if target.endswith("-asan") else "0")
    reports = run_conformance([RunRequest(str(SEQ_SPEC), vectors)], [target.removesuffix("-asan")], timeout=30, jobs=1)
    for report in reports:
        assert [t.reason for t in report.targets if not t.ran] == []
        bad = [f"{o.vector}: {o.outcome}: {'; '.join(o.detail[:4])}" for o in report.outcomes if o.outcome != "PASS"]
        assert not bad, "\n".join(bad)
        assert len(report.outcomes) == len(vectors)



def test_a_default_op_takes_the_place_of_a_hit_entry_and_the_spec_default_comes_back(
        router: tuple[ir.Program, Any]) -> None:
    """router's routes_v4: set_nexthop(id) as the default (an op: the NIC's `_set_default` with arguments), the
    entry gone: the packet misses and still reaches the next hop the id names; restored, the spec's drop."""
    prog, g = router
    vs = {v.name: v for v in g.vectors}
    as_hit, restored = vs["seq.routes_v4.default_as_hit"], vs["seq.routes_v4.default_restored"]
    (op,) = as_hit.control.ops
    assert op.op == "default" and op.action == "set_nexthop" and op.args
    obs = as_hit.expected[0].observations
    assert obs["hit"]["routes_v4"] is False and obs["tables"]["routes_v4"] == "set_nexthop"
    assert obs["hit"]["nexthops"] is True  # the argument shows: the next hop's entry is found
    assert restored.control.ops[-1].action == prog.tables["routes_v4"].default.action
    assert restored.expected[0].verdict != as_hit.expected[0].verdict
    infeasible = {i["item"]: i["reason"] for i in g.coverage[API_CLASS]["infeasible"]}
    assert "routes_v4:default_op" not in infeasible
    assert "router_mac:default_op" in infeasible  # its one action is its default: nothing a default op could show


def test_near_misses_are_one_bit_away_and_end_otherwise(small: tuple[ir.Program, list[Vector], dict]) -> None:
    """acl (ternary src, protocol): entries one bit off the packet's key in each key's top and bottom bit, above
    the packet's entry in priority, with an action that would end the packet otherwise: it still hits its own."""
    _, vectors, _ = small
    v = _vector(vectors, "seq.acl.near_miss")
    *near, own, _ = v.control.ops
    assert own.priority < min(op.priority for op in near)
    packet_key = [m.a for m in own.match]
    flipped = sorted((i, (m.a ^ packet_key[i]).bit_length() - 1) for op in near for i, m in enumerate(op.match)
                     if m.a != packet_key[i])
    assert len(flipped) == len(near) == 3  # the spec's acl holds 4: three of the four one-bit neighbours
    assert all(bin(m.a ^ packet_key[i]).count("1") <= 1 for op in near for i, m in enumerate(op.match))
    assert v.expected[0].observations["tables"]["acl"] == own.action
