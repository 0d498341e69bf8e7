"""The generated NIC C under AddressSanitizer and UndefinedBehaviorSanitizer.

The sanitizer build is a standalone harness process (see targets/nic/driver.py for why), so these tests also
cover the driver's second backend. The fuzz campaign pushes over a million seeded random, mutated and truncated
frames, each in a heap block of exactly its capacity, through every example with tables populated from the
generated vectors plus random control-plane churn: any out-of-bounds access or undefined behaviour aborts the
harness and fails the test with the sanitizer's report.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState
from targets.nic.driver import Harness, NicDriver
from targets.nic.toolchain import build_harness, build_libfuzzer, write_sources
from tests.conftest import EXAMPLES, ROOT, need_tool

pytestmark = pytest.mark.gcc

FUZZ_TOTAL = 1_000_000


@pytest.mark.parametrize("name", ["gre_tunnel", "vxlan_gateway", "tlv_parser", "mpls_lsr"])
def test_sanitized_run_matches_reference(name: str, tmp_path: Path) -> None:
    need_tool("gcc")
    prog = load_program(ROOT / "spec" / "examples" / f"{name}.yaml").program
    ref = Interpreter(prog)
    with NicDriver(sanitize=True) as drv:
        drv.open(prog, tmp_path)
        for v in generate(prog, seed=5, fuzz=30).vectors:
            ref.install(v.control)
            drv.install(v.control)
            for g, w in zip(drv.run(v.packets, v.registers), ref.run(v.packets, v.registers), strict=True):
                assert (g.verdict, g.port, g.data, g.counters) == (w.verdict, w.port, w.data, w.counters), v.name


def test_environment_selects_sanitizer_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C3PO_NIC_SANITIZE", "1")
    assert NicDriver().sanitize
    monkeypatch.setenv("C3PO_NIC_SANITIZE", "0")
    assert not NicDriver().sanitize


def test_harness_reports_a_planted_overflow(tmp_path: Path) -> None:
    """The harness is not vacuous: a read past the frame makes it die with an ASan report."""
    need_tool("gcc")
    prog = load_program(ROOT / "spec" / "examples" / "l2_switch.yaml").program
    write_sources(prog, tmp_path)
    src = tmp_path / "l2_switch.c"
    text = src.read_text()
    text = text.replace("    ctx_reset(c);\n", "    ctx_reset(c);\n    if (pkt[cap + 8u] == 0x5a) c->port = 1;\n", 1)
    src.write_text(text)
    harness = Harness(build_harness(prog, tmp_path, write=False))
    with pytest.raises(RuntimeError, match="AddressSanitizer"):
        harness.fuzz(1, 1000, len(prog.tables), [bytes(64)])
    harness.close()


def _entries(prog_path: Path) -> tuple[ControlState, list[bytes]]:
    prog = load_program(prog_path).program
    vectors = generate(prog, seed=9).vectors
    seen: set[tuple[str, tuple[object, ...], int]] = set()
    entries: list[EntryState] = []
    counts = {t: len(prog.tables[t].entries) for t in prog.tables}
    for v in vectors:
        for e in v.control.entries:
            key = (e.table, e.match, e.priority)
            if key not in seen and counts[e.table] < prog.tables[e.table].size:
                seen.add(key)
                counts[e.table] += 1
                entries.append(e)
    seeds = [p.data for v in vectors for p in v.packets][:400]
    return ControlState(tuple(entries)), seeds


@pytest.mark.slow
@pytest.mark.campaign
def test_fuzz_campaign_finds_nothing(tmp_path: Path) -> None:
    need_tool("gcc")
    per_example = FUZZ_TOTAL // len(EXAMPLES) + 1
    total = rewritten = 0
    for i, spec in enumerate(EXAMPLES):
        prog = load_program(spec).program
        control, seeds = _entries(spec)
        drv = NicDriver(sanitize=True)
        try:
            drv.open(prog, tmp_path / prog.name)
            drv.install(control)
            harness = drv.backend_object()
            assert isinstance(harness, Harness)
            reply = harness.fuzz(1000 + i, per_example, len(prog.tables), seeds)
        finally:
            drv.close()
        assert reply.startswith(f"fuzzed {per_example} "), reply
        counts = dict(zip(reply.split()[2::2], map(int, reply.split()[3::2]), strict=True))
        assert sum(counts.values()) == per_example
        total += per_example
        rewritten += counts["forward"] + counts["reflect"]
    assert total >= FUZZ_TOTAL
    assert rewritten > 1000  # the campaign reaches the rewrite/deparse paths, not only parser errors


@pytest.mark.parametrize("name", ["tlv_parser", "gre_tunnel"])
def test_libfuzzer_harness_runs_clean(name: str, tmp_path: Path) -> None:
    """Coverage-guided fuzzing (clang -fsanitize=fuzzer): a short seeded run must end without a finding."""
    need_tool("clang")
    prog = load_program(ROOT / "spec" / "examples" / f"{name}.yaml").program
    exe = build_libfuzzer(prog, tmp_path)
    proc = subprocess.run([str(exe), "-runs=20000", "-seed=1", "-max_len=512"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 20000 runs" in proc.stderr
