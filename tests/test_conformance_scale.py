"""Every example and every standard suite program on the reference, XDP and NIC targets at once: generated
vectors (and the suite's hand-written ones) plus fuzzed packets (half of them under generated control states),
zero FAIL or ERROR allowed.

This is the unit-suite version of issues 4 and 5's acceptance run (`scripts/run-all.sh` fuzzes 10,000 per
program): 1,000 per example, 200 per suite program (each tests one feature). One test per program so `-n 2`
spreads them, each a few seconds. tests/test_p4_conformance.py runs the same vectors on BMv2 (made once a run:
conftest.generated).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.model import Vector
from conformance.runner import RunRequest, exit_status, run_conformance
from conformance.vector_io import load_vectors

from .conftest import EXAMPLES, FUZZ, SUITE, SUITE_FUZZ, generated, need_bpf, need_tool

TARGETS = ["ref", "xdp", "nic"]


def _zero_mismatches(spec: Path, vectors: list[Vector]) -> None:
    (report,) = run_conformance([RunRequest(str(spec), vectors)], TARGETS, timeout=20, jobs=1)
    bad = [
        f"{o.target} {o.vector}: {o.outcome}: {'; '.join(o.detail[:3])[:600]}"
        for o in report.outcomes
        if o.outcome in ("FAIL", "ERROR")
    ]
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:10])
    assert exit_status([report]) == 0
    for target in TARGETS:
        ran = [o for o in report.outcomes if o.target == target]
        # every vector reached every target, and most ran (xdp skips frames under 14 bytes as N/A)
        assert len(ran) == len(vectors), target
        assert sum(o.outcome == "PASS" for o in ran) > len(vectors) // 2, target


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.gcc
@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_zero_mismatches_on_every_target(spec: Path) -> None:
    need_bpf()
    need_tool("gcc")
    vectors = generated(spec, 1, FUZZ).vectors
    assert sum("fuzz" in v.tags for v in vectors) == FUZZ
    _zero_mismatches(spec, vectors)


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.gcc
@pytest.mark.parametrize("spec", SUITE, ids=[p.stem for p in SUITE])
def test_suite_program_has_zero_mismatches_on_every_target(spec: Path) -> None:
    need_bpf()
    need_tool("gcc")
    prog = load_program(spec).program
    hand = spec.with_name(spec.stem + ".vectors.yaml")
    vectors = load_vectors(hand, prog) if hand.exists() else []
    vectors += generated(spec, 1, SUITE_FUZZ).vectors
    _zero_mismatches(spec, vectors)
