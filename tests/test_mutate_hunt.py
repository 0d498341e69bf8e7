"""`c3po conformance mutate --hunt`: differential fuzzing of nic survivors (conformance/mutate_hunt.py).

Two hand-picked mutants of the exact-match suite program survive a deliberately thin vector set (one
60-byte frame): a bounds constant off by one (a 14-byte frame tells it apart) must come out distinguished, with
a distinguishing vector that passes on the original and fails on the mutant; a verdict flipped in a parse-error
case the program never takes (dead code, different object code) must come out likely equivalent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.cli import main as c3po_main
from c3po_compiler.expr import KeyElem
from conformance.model import ControlState, EntryState, PacketIn, Vector
from conformance.mutate import format_report, mutate
from conformance.mutate_hunt import Hunter, global_symbols
from conformance.mutate_ops import Mutant
from conformance.vector_io import load_vectors

from .conftest import ROOT, need_tool

SPEC = str(ROOT / "conformance" / "suite" / "match_exact.yaml")
GAP = ("constant", "if (14u > n) { err = 1; goto parse_error; }", "15u")  # a 14-byte frame now drops
DEAD = ("verdict", "case 2: return MATCH_EXACT_DROP;", "MATCH_EXACT_TO_HOST")  # err is never 2 here


def _need_clang() -> None:
    need_tool("gcc")
    why = Hunter.unavailable()
    if why:
        pytest.skip(why)


def _thin_vectors() -> list[Vector]:
    """One frame of 60 bytes to a MAC with an entry: never 14 bytes long, never a parse error."""
    mac = 0x0200000000AA
    state = ControlState((EntryState("t", (KeyElem("value", mac),), "forward", (3,)),))
    frame = mac.to_bytes(6, "big") + bytes.fromhex("020000000001") + b"\x08\x00" + bytes(46)
    return [Vector("one", state, [PacketIn(1, frame)])]


def _picked(m: Mutant) -> bool:
    return any(m.operator == op and text in m.line_before and m.replacement == repl for op, text, repl in (GAP, DEAD))


def test_hunt_distinguishes_a_gap_and_calls_dead_code_likely_equivalent(tmp_path: Path) -> None:
    _need_clang()
    prog = load_program(SPEC).program
    run = mutate(SPEC, prog, "nic", _thin_vectors(), tmp_path, select=_picked, hunt=4.0)
    by_site = {(r.mutant.operator, r.mutant.replacement): r for r in run.results}
    gap, dead = by_site[(GAP[0], GAP[2])], by_site[(DEAD[0], DEAD[2])]
    # the thin vectors miss both
    assert gap.status == dead.status == "survived"
    assert gap.hunt == "distinguished", gap.reason
    assert "survived (distinguished by " in gap.reason and "state #0" in gap.reason
    assert dead.hunt == "likely-equivalent", dead.reason
    assert "no difference found in 4 s of coverage-guided fuzzing" in dead.reason
    assert run.likely_equivalent() == 1
    # the distinguishing packet is a frame of exactly 14 bytes: the original parses it, the mutant drops it
    vec = run.hunter.found[0]
    assert len(vec.packets[0].data) == 14
    assert vec.expected[0].verdict != "drop"
    text = "\n".join(format_report(run))
    assert "distinguished 1" in text and "likely equivalent 1" in text
    assert "mutation score excluding the 1 likely equivalent: 0.0% (0/1)" in text
    # the vectors file loads back (distinguished means its vector already failed on the mutant through the driver)
    out = tmp_path / "hunt.jsonl"
    assert run.hunter.save(out) == 1
    again = load_vectors(out, prog)
    assert [v.name for v in again] == [vec.name] and again[0].packets[0].data == vec.packets[0].data
    assert again[0].expected[0].verdict == vec.expected[0].verdict


def test_hunt_under_sanitize_fuzzes_native_code_and_confirms_under_the_sanitizers(tmp_path: Path) -> None:
    """--sanitize --hunt: the campaign runs nic mutants under ASan/UBSan (killing reads past the frame) and still
    hunts the survivors; the original's native shared object is linked for the hunt's state recording."""
    _need_clang()
    prog = load_program(SPEC).program
    gap_only = lambda m: m.operator == GAP[0] and GAP[1] in m.line_before and m.replacement == GAP[2]  # noqa: E731
    run = mutate(SPEC, prog, "nic", _thin_vectors(), tmp_path, select=gap_only, sanitize=True, hunt=3.0)
    [gap] = run.results
    assert gap.status == "survived" and gap.hunt == "distinguished", gap.reason
    assert (tmp_path / "original" / f"lib{prog.name}_nic.so").exists()
    assert len(run.hunter.found[0].packets[0].data) == 14


def test_sanitize_survivors_run_natively_where_every_table_is_filled(tmp_path: Path) -> None:
    """The sanitizer harness does not fill tables larger than HARNESS_FILL_MAX to their size; under --sanitize a
    survivor runs natively too, so a free list that loses handles (nat44's 4,096-entry snat and dnat: full after
    one fill and empty) is still killed."""
    need_tool("gcc")
    spec = str(ROOT / "spec" / "examples" / "nat44.yaml")
    prog = load_program(spec).program
    frame = bytes.fromhex("020000000001" "020000000002" "86dd") + bytes(46)  # not IPv4: no table is applied
    vectors = [Vector("one", ControlState(()), [PacketIn(1, frame)])]
    drop_free = lambda m: m.operator == "statement" and "t->free_[t->n_free++] = handle;" in m.line_before  # noqa: E731
    run = mutate(spec, prog, "nic", vectors, tmp_path, select=drop_free, sanitize=True)
    assert len(run.results) == 3  # snat, dnat, routes
    assert all(r.status == "killed" for r in run.results), [r.reason for r in run.results]
    natively = [r for r in run.results if r.reason.startswith("natively (every table filled to its size)")]
    assert len(natively) == 2 and all("filled to its size (4096)" in r.reason for r in natively)


def test_copies_are_renamed_by_every_global_they_define(tmp_path: Path) -> None:
    need_tool("gcc")
    src = tmp_path / "a.c"
    src.write_text("static int hidden(void) { return 1; }\nint visible(void) { return hidden(); }\nint counter;\n")
    obj = tmp_path / "a.o"
    import subprocess

    subprocess.run(["gcc", "-c", str(src), "-o", str(obj)], check=True)
    assert global_symbols([obj]) == ["counter", "visible"]


def test_command_line_checks_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_tool("gcc")
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "p4", "--hunt", "3"]) == 1
    assert "--hunt SECONDS" in capsys.readouterr().err
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "nic", "--hunt-vectors", "x.jsonl"]) == 1
    assert "needs --hunt" in capsys.readouterr().err
    _need_clang()
    out, vec = tmp_path / "m.json", tmp_path / "h.jsonl"
    args = ["conformance", "mutate", SPEC, "--target", "nic", "--sample", "2", "--seed", "3", "-q",
            "--operators", "verdict", "--hunt", "2", "--hunt-vectors", str(vec), "--json", str(out)]
    assert c3po_main(args) == 0
    text = capsys.readouterr().out
    assert "mutation score:" in text
    doc = json.loads(out.read_text())
    assert doc["hunt"]["seconds"] == 2
    survivors = [m for m in doc["mutants"] if m["status"] == "survived"]
    assert all(m.get("hunt") in ("distinguished", "likely-equivalent") for m in survivors)
    if survivors:
        assert "hunt (2 s of coverage-guided differential fuzzing per survivor)" in text
    assert vec.exists()
