"""The runner facing broken drivers: a crash says which signal, a driver that keeps crashing is given up on,
an unimportable `py:` driver is an error of the run, and the fuzzer's frames are long enough to run."""

from __future__ import annotations

import time

from c3po_compiler import load_program
from conformance.generate import FUZZ_TRUNCATED_SHARE, generate
from conformance.model import PacketIn, Vector
from conformance.runner import MAX_WORKER_CRASHES, RunRequest, exit_status, run_conformance

from .conftest import ROOT

SPEC = str(ROOT / "conformance" / "suite" / "action_drop.yaml")
DRIVERS = "py:tests.plugins.misbehaving_driver:"


def _vectors(first_bytes: list[int]) -> list[Vector]:
    base = generate(load_program(SPEC).program).vectors[0]
    return [Vector(f"v{i}", base.control, [PacketIn(1, bytes([b]) + bytes(13))]) for i, b in enumerate(first_bytes)]


def test_a_crashed_worker_is_reported_with_its_signal() -> None:
    vectors = _vectors([0xEE, 0x02])
    (report,) = run_conformance([RunRequest(SPEC, vectors)], [DRIVERS + "SegfaultingDriver"], timeout=2, jobs=1)
    by = {o.vector: o for o in report.outcomes}
    detail = " ".join(by["v0"].detail)
    assert by["v0"].outcome == "ERROR"
    assert "killed by SIGSEGV (exit status -11)" in detail, detail
    assert "None" not in detail
    assert by["v1"].outcome == "PASS"


def test_a_driver_crashing_on_every_vector_is_given_up_after_a_few() -> None:
    n = 8
    vectors = _vectors([0xEE] * n)
    t0 = time.monotonic()
    (report,) = run_conformance([RunRequest(SPEC, vectors)], [DRIVERS + "DyingDriver"], timeout=2, jobs=1)
    outcomes = sorted(report.outcomes, key=lambda o: o.vector)
    assert [o.outcome for o in outcomes] == ["ERROR"] * n
    given_up = [o for o in outcomes if "not restarted again" in " ".join(o.detail)]
    # the first batch call crashes once, then each vector alone until the cap: the rest are never run
    assert len(given_up) == n - (MAX_WORKER_CRASHES - 1), [o.detail for o in outcomes]
    assert "died 3 times" in given_up[0].detail[0] and "exit status 9" in given_up[0].detail[0]
    assert time.monotonic() - t0 < 10


def test_an_unimportable_python_driver_is_an_error_with_the_import_message() -> None:
    vectors = _vectors([0x02])
    (report,) = run_conformance([RunRequest(SPEC, vectors)], ["ref", "py:no_such_vendor_module:Driver"], jobs=1)
    (bad,) = [t for t in report.targets if t.name.startswith("py:")]
    assert not bad.ran and bad.error
    assert "No module named 'no_such_vendor_module'" in bad.reason
    assert exit_status([report]) == 1, "a broken plugin fails the run; it is not a target that cannot run here"
    (missing_class,) = run_conformance([RunRequest(SPEC, vectors)], [DRIVERS + "NoSuchDriver"], jobs=1)
    assert missing_class.targets[0].error and "NoSuchDriver" in missing_class.targets[0].reason


def test_fuzzed_frames_follow_the_parse_graph() -> None:
    prog = load_program(str(ROOT / "spec" / "examples" / "router.yaml")).program
    fuzzed = [v for v in generate(prog, seed=0, fuzz=600).vectors if "fuzz" in v.tags]
    short = sum(1 for v in fuzzed if len(v.packets[0].data) < 14)
    truncated = sum(1 for v in fuzzed if "truncated" in v.tags)
    assert short / len(fuzzed) < 0.04, "frames under an Ethernet header were ~9% before: N/A on XDP"
    assert 0.05 < truncated / len(fuzzed) < 2 * FUZZ_TRUNCATED_SHARE, "some frames stay truncated on purpose"
