"""Every example on the reference, XDP and NIC targets at once: generated vectors plus 1,000 fuzzed packets
(half of them under generated control states), zero FAIL or ERROR allowed.

This is the unit-suite version of issues 4 and 5's acceptance run (`scripts/run-all.sh` fuzzes 10,000 per
example); one test per example so `-n 2` spreads them, each a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.generate import generate
from conformance.runner import RunRequest, exit_status, run_conformance

from .conftest import EXAMPLES, need_bpf, need_tool

FUZZ = 1000
TARGETS = ["ref", "xdp", "nic"]


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.gcc
@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_zero_mismatches_on_every_target(spec: Path) -> None:
    need_bpf()
    need_tool("gcc")
    vectors = generate(load_program(spec).program, seed=1, fuzz=FUZZ).vectors
    assert sum("fuzz" in v.tags for v in vectors) == FUZZ
    (report,) = run_conformance([RunRequest(str(spec), vectors)], TARGETS, timeout=20, jobs=1)
    bad = [
        f"{o.target} {o.vector}: {o.outcome}: {'; '.join(o.detail[:3])}"
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
