"""The nic target under its sanitizers against the oracle on generated vectors: what `c3po conformance run`
checks, as tests. (The xdp and nic targets natively on every example and suite program, with more vectors:
tests/test_conformance_scale.py; the p4 target: tests/test_p4_conformance.py.)

Each target runs where its toolchain is (need_*: skipped locally without it, failing under CI=true). Under
CI=true the nic column runs under ASan/UBSan (the driver's sanitizer harness, C3PO_NIC_SANITIZE=1): an
out-of-bounds read in the generated C gives the right answer natively more often than not, and only the
sanitizer sees it. Measured on 2 cores, this file's nic tests take about 60 s that way instead of 28 s
(the sanitizer build is ~3 s a program); locally, set C3PO_NIC_SANITIZE=1 to do the same.
"""

from __future__ import annotations

import pytest

from conformance.driver import load_driver_class
from conformance.runner import RunRequest, exit_status, run_conformance

from .conftest import EXAMPLES, IN_CI, ROOT, need_tool, shared_vectors

SPECS = [p.stem for p in EXAMPLES]


def _check(target: str, spec: str) -> None:
    reason = load_driver_class(target).unavailable()
    if reason:
        pytest.skip(reason)
    path = str(ROOT / "spec" / "examples" / f"{spec}.yaml")
    vectors = shared_vectors(ROOT / "spec" / "examples" / f"{spec}.yaml", 20)
    (report,) = run_conformance([RunRequest(path, vectors)], [target], timeout=20, jobs=1)
    bad = [
        f"{o.vector}: {o.outcome}: {'; '.join(o.detail[:3])}"
        for o in report.outcomes
        if o.outcome in ("FAIL", "ERROR")
    ]
    assert not bad, "\n".join(bad[:10])
    assert exit_status([report]) == 0
    assert any(o.outcome == "PASS" for o in report.outcomes) or all(
        o.outcome == "N/A" for o in report.outcomes
    )


@pytest.mark.gcc
@pytest.mark.parametrize("spec", SPECS)
def test_nic_matches_the_oracle(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("gcc")
    if IN_CI:  # the runner's worker processes inherit it
        monkeypatch.setenv("C3PO_NIC_SANITIZE", "1")
    _check("nic", spec)
