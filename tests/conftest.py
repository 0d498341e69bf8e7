"""Shared test helpers: where the examples are, and tool requirements that skip locally but fail in CI.

A test needing clang, root+BPF, gcc or p4c calls `need(...)`. Without the tool it skips with the reason —
except under CI=true, where a missing tool is a failure, so a skip can never hide a broken target (p4c and
BMv2 included: the set-up installs them from ../shared/tools/p4).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import compile_cache

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
PROTOCOLS = sorted((ROOT / "spec" / "protocols").glob("*.yaml"))
SUITE = sorted(p for p in (ROOT / "conformance" / "suite").glob("*.yaml") if not p.name.endswith(".vectors.yaml"))
IN_CI = os.environ.get("CI", "").lower() == "true"
# Examples whose parse graph has over a thousand paths (the classifier: QinQ x MPLS x the IPv6 extension chain),
# so thousands of generated vectors: a test that takes one as a parameter runs under the slow mark, or each would
# add minutes to the default run. tests/test_parser_do.py checks the classifier in the default run.
SLOW_EXAMPLES = frozenset({"classifier"})


FUZZ = 1000  # fuzzed vectors of the run's shared generation of an example (tests/test_conformance_scale.py)
SUITE_FUZZ = 200  # and of a suite program
VECTORS_DIR = "C3PO_TEST_VECTORS"  # where generated(...) keeps vectors for the run (set by the controller)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, before xdist starts its workers (they inherit it)
        os.environ[VECTORS_DIR] = tempfile.mkdtemp(prefix="c3po-test-vectors-")
        # One compile cache for the run (c3po_compiler/compile_cache.py), shared by the workers: the conformance,
        # P4Runtime, semantics and operate tests compile the same programs; each is still compiled once per run.
        os.environ[compile_cache.ENV] = tempfile.mkdtemp(prefix="c3po-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ.pop(VECTORS_DIR, ""), ignore_errors=True)
        shutil.rmtree(os.environ.pop(compile_cache.ENV, ""), ignore_errors=True)


def generated(spec: Path, seed: int, fuzz: int) -> Any:
    """generate(spec, seed, fuzz) (a conformance.generate.Generated: vectors and coverage), made once per test
    run: the whole-program conformance tests of the xdp/nic and p4 targets run the same vectors, and the
    suite's coverage test reads the same generation (1-30 s a program); xdist's workers share them through
    files."""
    from c3po_compiler import load_program
    from conformance.generate import generate

    where = os.environ.get(VECTORS_DIR)
    key = hashlib.sha256(f"{spec.resolve()}\0{seed}\0{fuzz}".encode()).hexdigest()[:32]
    path = Path(where) / f"{key}.pickle" if where and Path(where).is_dir() else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    made = generate(load_program(spec).program, seed=seed, fuzz=fuzz)
    if path is not None:
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(pickle.dumps(made))
        part.replace(path)  # whole or not at all, when both workers make it at once
    return made


def shared_vectors(spec: Path, fuzz: int) -> list[Any]:
    """The run's one generation of an example or suite program (seed 1: what the conformance-scale and p4 tests
    run), with the first `fuzz` of its fuzzed vectors: a test that runs a program's vectors on a target takes
    these rather than generating again with a seed of its own (acl_firewall and the classifier take 13-16 s a
    generation, and six files each made their own). The list is the test's own; the vectors are shared."""
    g = generated(spec, 1, SUITE_FUZZ if spec.parent.name == "suite" else FUZZ)
    out: list[Any] = []
    n = 0
    for v in g.vectors:
        if "fuzz" in v.tags:
            if n >= fuzz:
                continue
            n += 1
        out.append(v)
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params.values() if params is not None else ()
        if any((isinstance(v, Path) and v.parent.name == "examples" and v.stem in SLOW_EXAMPLES)
               or (isinstance(v, str) and v in SLOW_EXAMPLES) for v in values):  # some tests take the stem
            item.add_marker(pytest.mark.slow)


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: install it (scripts/bootstrap.sh does)", pytrace=False)
    pytest.skip(reason)


def need_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            _missing(f"'{name}' is not on PATH")


def bpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "BPF_PROG_TEST_RUN needs root"
    if shutil.which("clang") is None:
        return "'clang' is not on PATH"
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        return "libbpf headers are missing (apt-get install libbpf-dev)"
    return None


def need_bpf() -> None:
    reason = bpf_unavailable_reason()
    if reason:
        _missing(reason)


def need_p4() -> None:
    """p4c and BMv2 (scripts/bootstrap.sh installs them from ../shared/tools/p4 where it exists)."""
    for tool in ("p4c-bm2-ss", "simple_switch_grpc"):
        if shutil.which(tool) is None:
            _missing(f"'{tool}' is not on PATH (p4c/BMv2: see docs/targets/p4.md)")


def need_p4_driver() -> None:
    """Everything the p4 conformance driver needs: the tools, root, and its Python packages."""
    need_p4()
    from targets.p4.driver import P4Driver

    reason = P4Driver.unavailable()
    if reason:
        _missing(reason)


def router_p4_with(monkeypatch: pytest.MonkeyPatch, edits: dict[str, str]) -> Any:
    """The router example, its rendered P4 changed by `edits` (each text must be there): a wrong program the p4
    driver must report. Returns the program."""
    from c3po_compiler import load_program
    from targets.p4 import P4Target

    prog = load_program(str(next(p for p in EXAMPLES if p.stem == "router"))).program
    assert prog is not None
    render = P4Target.render

    def wrong(self: P4Target, p: object) -> dict[str, str]:
        files = render(self, p)  # type: ignore[arg-type]
        name = f"{prog.name}.p4"
        for old, new in edits.items():
            assert old in files[name], old
            files[name] = files[name].replace(old, new)
        return files

    monkeypatch.setattr(P4Target, "render", wrong)
    return prog


def kernel_matches_interpreter(prog: Any, frames: list[bytes], tmp_path: Path) -> list[tuple[str, int | None, bytes]]:
    """Runs `frames` (ingress port 1, no tables) through the xdp build in the kernel and through the reference
    interpreter, asserts the same verdict, port and bytes for each, and returns the interpreter's."""
    from conformance.model import ControlState, PacketIn
    from conformance.ref_driver import RefDriver
    from targets.xdp.driver import XdpDriver

    packets = [PacketIn(1, f) for f in frames]
    ref, xdp = RefDriver(), XdpDriver()
    try:
        ref.open(prog, tmp_path / "ref")
        xdp.open(prog, tmp_path / "xdp")
        for d in (ref, xdp):
            d.install(ControlState())
        want, got = ref.run(packets, {}), xdp.run(packets, {})
    finally:
        xdp.close()
    assert [(r.verdict, r.port, r.data) for r in got] == [(r.verdict, r.port, r.data) for r in want]
    return [(r.verdict, r.port, r.data) for r in want]
