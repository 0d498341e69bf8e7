"""The nic driver's own contract checks, beyond the vectors (targets/nic/contracts.py, NicDriver.install/run):
each table filled to its declared size and emptied again through the generated C table API, and a frame that
grows run again in a buffer of exactly its output's length and one byte short. Each is shown to pass on the
generated code and to report the kind of mutant `c3po conformance mutate` left alive before (handle bounds at
the table's size, the free list, `_counter`'s outputs, the oversize check)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.loader import load_program
from conformance.model import ControlState, EntryState, PacketIn
from targets.nic import contracts
from targets.nic.driver import NicDriver, SharedObject

ROOT = Path(__file__).resolve().parents[1]


def _open(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          patch: tuple[str, str] | None = None) -> NicDriver:
    """A native nic driver over an example's generated C, with `patch` (old, new: a mutant) applied once."""
    prog = load_program(ROOT / "spec" / "examples" / f"{name}.yaml").program
    if patch is not None:
        from targets.nic import toolchain

        real = toolchain.write_sources

        def patched(p: ir.Program, outdir: Path, with_shim: bool = True) -> dict[str, Path]:
            files = real(p, outdir, with_shim)
            text = files[f"{p.name}.c"].read_text()
            assert patch[0] in text, "the patch did not apply: the generated code changed"
            files[f"{p.name}.c"].write_text(text.replace(patch[0], patch[1], 1))
            return files

        monkeypatch.setattr(toolchain, "write_sources", patched)
    drv = NicDriver(sanitize=False)
    drv.open(prog, tmp_path)
    return drv


def test_fill_keys_are_distinct_and_in_the_wire_format() -> None:
    prog = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    v4, nexthops = prog.tables["routes_v4"], prog.tables["nexthops"]
    keys = contracts.fill_keys(v4, 70_000)
    assert keys is not None and len(set(keys)) == 70_000
    assert all(len(k) == 5 and k[4] == 32 for k in keys[:100])  # lpm: value, then a full-length prefix
    assert contracts.fill_keys(nexthops, 1 << 16) is not None and contracts.fill_keys(nexthops, (1 << 16) + 1) is None


NAT44_MUTANTS: dict[str, tuple[tuple[str, str], str]] = {
    # a delete that no longer gives its handle back: the emptied table takes nothing
    "free_list": (("t->free_[t->n_free++] = handle;", ";"),
                  "table 'snat' filled to its size (4096), emptied and filled again: add 1 answers FULL"),
    # the handle bound one short: the last handle of a full table cannot be deleted
    "delete_bound": (("if (handle >= 4096u || t->where[handle] == C3PO_NONE) return C3PO_ERR_NOENT;\n    i =",
                      "if (handle >= 4095u || t->where[handle] == C3PO_NONE) return C3PO_ERR_NOENT;\n    i ="),
                     "table 'snat' filled to its size (4096): delete of handle 4095 answers NOENT, not OK"),
    # a table without counters whose _counter leaves an output unwritten
    "counter_output": (("(void)st; (void)handle; *packets = 0;", "(void)st; (void)handle; ;"),
                       "table 'routes' filled to its size (1024): counter of the last handle (1023) answers NOENT"),
}


@pytest.mark.parametrize("name", sorted(NAT44_MUTANTS))
def test_a_table_api_mutant_is_every_vectors_error(name: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    patch, says = NAT44_MUTANTS[name]
    drv = _open("nat44", tmp_path, monkeypatch, patch)
    try:
        for _ in range(2):  # found once, reported for each vector
            with pytest.raises(ValueError, match="nic table API contract") as info:
                drv.install(ControlState())
            assert says in str(info.value), str(info.value)
    finally:
        drv.close()


def test_the_generated_tables_pass_and_the_state_is_then_installed(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _open("nat44", tmp_path, monkeypatch)
    try:
        entry = EntryState("snat", (KeyElem("value", 0x0A000001),), "rewrite_src", (0xC0000201,))
        drv.install(ControlState((entry,)))
        assert drv.contract_checked and drv.contract is None
        assert drv.backend_object().lookup(drv.table_ids["snat"], bytes.fromhex("0a000001"), 0) == 0
    finally:
        drv.close()


# A tenant frame from access port 3: VNI 100 by port, then the fdb sends it to a remote VTEP (encapsulated, 50
# bytes more).
_DMAC, _VNI = 0x0200000000AA, 100
_STATE = ControlState((
    EntryState("port_vni", (KeyElem("value", 3),), "set_vni", (_VNI,)),
    EntryState("fdb", (KeyElem("value", _VNI), KeyElem("value", _DMAC)), "to_remote",
               (5, 0x0A000001, 0x0A000002, 0x020000000001, 0x020000000002)),
))
_FRAME = _DMAC.to_bytes(6, "big") + bytes.fromhex("0200000000bb") + b"\x88\xb5" + bytes(46)

VXLAN_MUTANTS: dict[str, tuple[tuple[str, str], str]] = {
    "oversize_relation": (("pay > cap - hl", "pay >= cap - hl"), "in a buffer of exactly 110 bytes (its input is 60)"),
    "oversize_verdict": (("st->oversize_drops++; c->verdict = VXLAN_GATEWAY_DROP;", "st->oversize_drops++;"),
                         "one byte short of its output's"),
}


def test_a_grown_frame_passes_at_its_exact_capacity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = _open("vxlan_gateway", tmp_path, monkeypatch)
    try:
        drv.install(_STATE)
        out = drv.run([PacketIn(3, _FRAME)], {})
        assert out[0].verdict == "forward" and out[0].port == 5 and len(out[0].data) == len(_FRAME) + 50
        assert drv.capacity_probes == {"grown": 1, "first": 0}
        # the probe leaves the state as it found it (its runs count packets and drops)
        be = drv.backend_object()
        assert isinstance(be, SharedObject)
        before = ctypes.string_at(be.lib.shim_state(be.handle), be.state_size())
        assert be.capacity_probe(PacketIn(3, _FRAME)) is None
        assert ctypes.string_at(be.lib.shim_state(be.handle), be.state_size()) == before
    finally:
        drv.close()


@pytest.mark.parametrize("name", sorted(VXLAN_MUTANTS))
def test_an_oversize_mutant_is_the_vectors_error(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patch, says = VXLAN_MUTANTS[name]
    drv = _open("vxlan_gateway", tmp_path, monkeypatch, patch)
    try:
        drv.install(_STATE)
        with pytest.raises(ValueError, match="nic capacity contract") as info:
            drv.run([PacketIn(3, _FRAME)], {})
        assert says in str(info.value), str(info.value)
    finally:
        drv.close()


def test_a_frame_that_does_not_grow_runs_in_a_buffer_of_exactly_its_length(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that wants one byte of room past the frame (`n >= cap`) is the first vector's error."""
    frame = _DMAC.to_bytes(6, "big") + bytes.fromhex("0200000000bb") + b"\x88\xb5" + bytes(46)
    drv = _open("vxlan_gateway", tmp_path, monkeypatch, ("if (n > cap) {", "if (n >= cap) {"))
    try:
        drv.install(ControlState())
        with pytest.raises(ValueError, match=r"nic capacity contract: in a buffer of exactly 60 bytes \(its input"):
            drv.run([PacketIn(7, frame)], {})
        assert drv.capacity_probes == {"grown": 0, "first": 1}
    finally:
        drv.close()


def test_check_table_reports_a_table_that_takes_one_entry_too_many() -> None:
    """The fill's own logic over a fake API: a table that accepts size + 1 entries."""
    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    t = prog.tables["local_vtep"]

    class Loose:
        def __init__(self, room: int) -> None:
            self.room = room
            self.live: dict[int, bytes | int] = {}

        def table_calls(self, op: str, table: int, subjects: Sequence[bytes] | Sequence[int], action: int = 0,
                        args: bytes = b"") -> list[int]:
            out: list[int] = []
            for s in subjects:
                if op == "add":
                    free = [h for h in range(self.room) if h not in self.live]
                    out.append(free[0] if free else contracts.FULL)
                    if free:
                        self.live[free[0]] = s
                elif op == "lookup":
                    out.append(next((h for h, m in self.live.items() if m == s), contracts.NOENT))
                elif op == "delete":
                    out.append(contracts.OK if self.live.pop(int(s), None) is not None else contracts.NOENT)
                else:
                    out.append(contracts.OK if s in self.live else contracts.NOENT)
            return out

        def lookup(self, table: int, match: bytes, priority: int) -> int:
            return self.table_calls("lookup", table, [match])[0]

    none: Callable[[int], None] = lambda h: None  # noqa: E731
    assert contracts.check_table(Loose(t.size), t, 0, (0, b""), [], none) is None
    problem = contracts.check_table(Loose(t.size + 1), t, 0, (0, b""), [], none)
    assert problem is not None and "add 17 succeeds after 16 entries were added" in problem
