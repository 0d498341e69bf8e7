"""`c3po conformance mutate --target xdp --hunt`: in-kernel differential fuzzing of xdp survivors
(conformance/mutate_hunt_xdp.py).

The exact-match suite program under a deliberately thin vector set (one 60-byte frame to a MAC with a forward
entry): three hand-picked mutants survive it. A bounds constant off by one (a 14-byte frame tells it apart) and the
to_host default's verdict flipped (a frame to any other MAC tells it apart) must come out distinguished, with
vectors that pass on the original and fail on the mutant; the verdict of the `nop` branch flipped (no action of
the table is nop: dead code, different object code) must come out likely equivalent."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.cli import main as c3po_main
from c3po_compiler.expr import KeyElem
from conformance.model import ControlState, EntryState, PacketIn, Vector
from conformance.mutate import format_report, mutate
from conformance.mutate_hunt_xdp import Mutator, _Seed, ir_constants
from conformance.mutate_ops import Mutant
from conformance.vector_io import load_vectors

from .conftest import ROOT, need_bpf

SPEC = str(ROOT / "conformance" / "suite" / "match_exact.yaml")
MAC = 0x0200000000AA


def _thin_vectors() -> list[Vector]:
    state = ControlState((EntryState("t", (KeyElem("value", MAC),), "forward", (3,)),))
    frame = MAC.to_bytes(6, "big") + bytes.fromhex("020000000001") + b"\x08\x00" + bytes(46)
    return [Vector("one", state, [PacketIn(1, frame)])]


def _picked(m: Mutant) -> bool:
    return (m.operator == "verdict" and m.replacement == "XDP_DROP" and "XDP_PASS" in m.line_before) or \
        (m.operator == "constant" and m.replacement == "15" and "cur + 14 > end" in m.line_before)


def test_xdp_hunt_distinguishes_gaps_and_calls_dead_code_likely_equivalent(tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(SPEC).program
    run = mutate(SPEC, prog, "xdp", _thin_vectors(), tmp_path, select=_picked, hunt=2.0)
    assert [r.status for r in run.results] == ["survived"] * 3  # the thin vectors miss all three
    bounds, to_host, nop = sorted(run.results, key=lambda r: r.mutant.line)
    assert bounds.hunt == "distinguished", bounds.reason
    assert to_host.hunt == "distinguished", to_host.reason
    assert nop.hunt == "likely-equivalent", nop.reason
    assert "no difference found in 2 s of in-kernel differential fuzzing" in nop.reason
    assert "executions" in nop.reason and "/s)" in nop.reason
    assert run.likely_equivalent() == 1
    found = {int(v.provenance["hunt"]["mutant"]): v for v in run.hunter.found}
    short = found[bounds.mutant.id]
    assert len(short.packets[0].data) == 14 and short.expected[0].verdict == "forward"
    other = found[to_host.mutant.id]
    assert other.packets[0].data[:6] != MAC.to_bytes(6, "big") and other.expected[0].verdict == "to_host"
    text = "\n".join(format_report(run))
    assert "hunt (2 s of in-kernel differential fuzzing" in text
    assert "distinguished 2" in text and "likely equivalent 1" in text
    assert "mutation score excluding the 1 likely equivalent: 0.0% (0/2)" in text
    out = tmp_path / "hunt.jsonl"
    assert run.hunter.save(out) == 2
    again = load_vectors(out, prog)
    assert sorted(v.packets[0].data for v in again) == sorted(v.packets[0].data for v in found.values())


def test_candidates_are_deterministic_and_at_least_14_bytes() -> None:
    seeds = [_Seed(0, 1, bytes(range(60)), [(0, 48), (48, 48), (96, 16)], [0, 14]),
             _Seed(1, 5, bytes(20), [(0, 48)], [0, 14])]

    def make(seed: int) -> list[PacketIn]:
        mk = Mutator(seeds, [b"\x08\x00", b"\x02\x00\x00\x00\x00\xaa"], [0x800, 6, 17], [1, 5], 128,
                     random.Random(seed))
        return [mk.candidate(i % 2) for i in range(500)]

    a = make(3)
    assert a == make(3) and a != make(4)
    assert all(14 <= len(p.data) <= 128 and p.port in (1, 5) for p in a)
    assert any(len(p.data) == 14 for p in a)  # cut at the ethernet header's end
    assert any(p.data[12:14] == b"\x08\x00" for p in a if p.data[:12] != bytes(range(12)))


def test_ir_constants_has_select_cases_and_entry_keys() -> None:
    prog = load_program(str(ROOT / "spec" / "examples" / "router.yaml")).program
    consts = set(ir_constants(prog))
    assert {0x0800, 0x86DD} & consts  # the ethertype select's cases


def test_command_line_accepts_xdp_hunt(capsys: pytest.CaptureFixture[str]) -> None:
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "p4", "--hunt", "3"]) == 1
    assert "--hunt SECONDS (positive) is for the nic and xdp targets" in capsys.readouterr().err
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "xdp", "--sanitize", "--hunt", "3"]) == 1
