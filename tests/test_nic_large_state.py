"""The NIC driver at the documented state limits: counters and registers of 2^20 elements.

The host shim reports the counter/register elements each packet wrote (the C3PO_TOUCH log) instead of the
driver scanning every element after every packet, and a reset between vectors clears only what was written.
These tests hold the results to the reference interpreter and to explicit values at both ends of the index
range, check that writes of one vector never leak into the next (also after the log overflows and after the
benchmark loop, which fall back to a full clear), and that a vector costs O(touched), counted by the shim
(shim_stats: whole clears, elements cleared, element reads) rather than timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn, Registers, Result
from targets.nic.driver import CAPACITY_PROBES, NicDriver, SharedObject
from tests.conftest import need_tool

pytestmark = pytest.mark.gcc

SIZE = 1 << 20  # the language's limit for counters and registers (spec-reference.md section 13)

SPEC = f"""
c3po: 1
program: nic_large_state
headers:
  probe:
    fields: {{slot: 24, value: 32, op: 8}}
counters:
  hits: {{size: {SIZE}}}
registers:
  seen: {{width: 32, size: {SIZE}}}
  wide: {{width: 128, size: {SIZE}}}
parser:
  start: probe
  states:
    probe: {{extract: probe}}
tables:
  ops:
    key: {{probe.op: exact}}
    actions: [store, load]
    default: load
    size: 4
    counters: true
    entries:
      - {{match: {{probe.op: 1}}, action: store}}
actions:
  store:
    do: ["seen[probe.slot] = probe.value", "wide[probe.slot] = ((bit<128>) probe.value) << 96"]
  load:
    do: ["probe.value = seen[probe.slot]"]
control:
  - count(hits, probe.slot)
  - apply: ops
  - reflect
"""

LAST = SIZE - 1
STORE, LOAD = 1, 0


def pkt(slot: int, value: int, op: int) -> PacketIn:
    return PacketIn(3, slot.to_bytes(3, "big") + value.to_bytes(4, "big") + bytes([op]))


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    path = tmp_path_factory.mktemp("spec") / "large_state.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return load_program(path).program


@pytest.fixture(scope="module", params=[False, True], ids=["native", "sanitize"])
def driver(request: pytest.FixtureRequest, prog: ir.Program,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[NicDriver]:
    """One build per mode; every test installs its own control state first."""
    need_tool("gcc")
    drv = NicDriver(sanitize=request.param)
    with drv:
        drv.open(prog, tmp_path_factory.mktemp("nic"))
        yield drv


def same(a: Result, b: Result) -> bool:
    keys = set(a.registers) | set(b.registers)
    return ((a.verdict, a.port, a.data, a.counters) == (b.verdict, b.port, b.data, b.counters)
            and all(a.registers.get(k, 0) == b.registers.get(k, 0) for k in keys))


VECTORS: list[tuple[list[PacketIn], Registers]] = [
    # both ends of the index range, a value read back in the same vector, an initial value overwritten
    ([pkt(0, 7, STORE), pkt(LAST, 9, STORE), pkt(0, 0, LOAD), pkt(LAST, 0, LOAD)], {("seen", LAST): 3}),
    # the previous vector's writes are gone: slot 0 and the last slot read 0 (or this vector's initial value)
    ([pkt(0, 0, LOAD), pkt(LAST, 0, LOAD), pkt(12345, 0, LOAD)], {("seen", 12345): 0xDEADBEEF}),
    # a write of the value already held is no change; an index past the register is not a write
    ([pkt(77, 5, STORE), pkt(77, 5, STORE), pkt(SIZE, 1, STORE), pkt(77, 0, LOAD)], {("seen", 77): 5}),
    ([], {("seen", 1): 1}),
]


def test_matches_reference_at_2_20_elements(driver: NicDriver, prog: ir.Program) -> None:
    ref = Interpreter(prog)
    ref.install(ControlState())
    driver.install(ControlState())
    for packets, regs in VECTORS:
        want, got = ref.run(packets, regs), driver.run(packets, regs)
        assert len(got) == len(packets)
        for p, g, w in zip(packets, got, want, strict=True):
            assert same(g, w), f"{p.data.hex()}\n nic {g}\n ref {w}"


def test_explicit_values_at_both_ends(driver: NicDriver) -> None:
    driver.install(ControlState())
    r = driver.run(VECTORS[0][0], VECTORS[0][1])
    assert r[1].registers == {("seen", 0): 7, ("seen", LAST): 9, ("wide", 0): 7 << 96, ("wide", LAST): 9 << 96}
    assert r[3].data == pkt(LAST, 9, LOAD).data
    assert r[3].counters[("hits", 0)] == (2, 16) and r[3].counters[("hits", LAST)] == (2, 16)
    assert r[3].counters[("table.ops", 0)] == (2, 16)  # the constant entry (store)
    assert r[3].counters[("table.ops", -1)] == (2, 16)  # the default (load)
    again = driver.run([pkt(0, 0, LOAD), pkt(LAST, 0, LOAD)], {})
    assert [x.data for x in again] == [pkt(0, 0, LOAD).data, pkt(LAST, 0, LOAD).data]
    assert again[1].counters == {("hits", 0): (1, 8), ("hits", LAST): (1, 8), ("table.ops", -1): (2, 16)}
    assert again[1].registers == {}


def test_installed_entry_counters_and_touches_together(driver: NicDriver, prog: ir.Program) -> None:
    control = ControlState(entries=(EntryState("ops", (KeyElem("value", 2),), "store", ()),))
    packets = [pkt(LAST, 4, 2), pkt(LAST, 0, LOAD)]
    ref = Interpreter(prog)
    ref.install(control)
    driver.install(control)
    want, got = ref.run(packets, {}), driver.run(packets, {})
    assert all(same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
    assert got[0].counters[("table.ops", 1)] == (1, 8) and got[1].data == pkt(LAST, 4, LOAD).data


def test_long_runs_and_benchmark_fall_back_to_a_full_clear(prog: ir.Program, tmp_path: Path) -> None:
    """More logged writes than the shim undoes one by one (65,536), or the untracked benchmark loop: the next
    reset clears every element, so nothing leaks into the next vector either way."""
    need_tool("gcc")
    drv = NicDriver(sanitize=False)
    with drv:
        drv.open(prog, tmp_path)
        many = [pkt(i % 7, i, STORE) for i in range(70_000)]
        assert drv.run(many, {})[-1].registers[("seen", 69_999 % 7)] == 69_999
        after = drv.run([pkt(i, 0, LOAD) for i in range(7)], {})
        assert all(r.data == pkt(i, 0, LOAD).data for i, r in enumerate(after))
        assert after[-1].registers == {}
        be = drv.backend_object()
        assert isinstance(be, SharedObject)
        be.bench([pkt(5, 42, STORE)], 10)
        assert drv.run([pkt(5, 0, LOAD)], {})[0].data == pkt(5, 0, LOAD).data


def test_a_vector_costs_what_it_touches(prog: ir.Program, tmp_path: Path) -> None:
    """A hundred one-packet vectors cost what they write, counted by the shim rather than timed: no reset clears
    the whole state, each clears the elements the previous vector wrote (a register set before the packet, two
    registers and a counter the packet writes), and the shim reads about as many. With a scan of every element per
    packet or per reset (the regression this guards against) the counts would be in the millions."""
    need_tool("gcc")
    drv = NicDriver(sanitize=False)
    with drv:
        drv.open(prog, tmp_path)
        # The driver's first vectors also check the capacity contract, saving and restoring the whole state around
        # each (CAPACITY_PROBES): past them before counting.
        for i in range(CAPACITY_PROBES["first"] + 1):
            drv.run([pkt(i, 1, STORE)], {})
        be = drv.backend_object()
        assert isinstance(be, SharedObject)
        probes, before = dict(drv.capacity_probes), be.stats()
        n = 100
        for i in range(n):
            r = drv.run([pkt(i * 10_000, i, STORE)], {("seen", LAST - i): i + 1})
            assert r[0].registers.get(("seen", i * 10_000), 0) == i
        after = be.stats()
        assert drv.capacity_probes == probes
        assert after.full_clears == before.full_clears
        per_vector = 4  # seen[LAST - i] set by the vector, seen[slot] and wide[slot] stored, hits[slot] counted
        # a reset clears the vector before it: the first, the last warm-up vector's 3 writes (no register set)
        assert after.cleared - before.cleared == 3 + per_vector * (n - 1)
        assert per_vector * n <= after.reads - before.reads <= 3 * per_vector * n
        drv.run([pkt(1, 1, STORE)] * 70_000, {})  # past the touch log's bound: the counters can see a full clear
        drv.run([pkt(1, 0, LOAD)], {})
        assert be.stats().full_clears == after.full_clears + 1
