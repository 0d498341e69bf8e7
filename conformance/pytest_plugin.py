"""pytest plugin: one test per vector and target, so vendors get pytest's selection (-k), reports (--junitxml)
and parallelism (pytest-xdist, -n 4).

    pytest --c3po-spec spec/examples/router.yaml --c3po-targets ref,xdp [--c3po-vectors FILE] [--c3po-seed N]

Registered through the entry point group pytest11 (`c3po_conformance = "conformance.pytest_plugin"`); where
c3po is not installed, load it with `-p conformance.pytest_plugin`. Tests are named `SPEC_STEM/TARGET/VECTOR`.
A target that cannot run, or a vector needing a feature the target lacks, is skipped with the reason. Drivers
run in-process here (one per spec and target per pytest worker); use pytest-timeout for hang protection, or
`c3po conformance run` for the process-isolated runner.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import ir

from .model import Vector


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("c3po", "c3po conformance")
    g.addoption("--c3po-spec", action="append", default=[], help="spec to test (repeatable)")
    g.addoption(
        "--c3po-targets", default="ref", help="comma-separated targets (ref, xdp, nic, p4, cmd:PROGRAM)"
    )
    g.addoption(
        "--c3po-vectors", action="append", default=[], help="vector file (default: generated vectors)"
    )
    g.addoption("--c3po-seed", type=int, default=0, help="generator seed")


_programs: dict[str, tuple[ir.Program, list[Vector]]] = {}
_drivers: dict[tuple[str, str], Any] = {}
_open_failures: dict[tuple[str, str], str] = {}  # (spec, target) -> why the driver could not open the program
_workdirs: list[Path] = []  # the drivers' build directories, removed when the session ends


def _load(config: pytest.Config, spec: str) -> tuple[ir.Program, list[Vector]]:
    if spec not in _programs:
        from c3po_compiler import load_program

        from .generate import generate
        from .runner import fill_expected
        from .vector_io import load_vectors

        prog = load_program(spec).program
        files = config.getoption("--c3po-vectors")
        vectors = (
            [v for f in files for v in load_vectors(f, prog)]
            if files
            else generate(prog, config.getoption("--c3po-seed")).vectors
        )
        fill_expected(prog, vectors)
        _programs[spec] = (prog, vectors)
    return _programs[spec]


class VectorItem(pytest.Item):
    def __init__(self, *, spec: str, target: str, vector: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.spec, self.target, self.vector = spec, target, vector

    def runtest(self) -> None:
        from c3po_compiler.features import program_features

        from .compare import compare
        from .runner import layout_function, make_driver, target_problem

        prog, vectors = _load(self.config, self.spec)
        v = next(x for x in vectors if x.name == self.vector)
        reason, supports = target_problem(self.target)
        if reason:
            pytest.skip(f"{self.target}: {reason}")
        missing = (program_features(prog) | set(v.requires)) - supports
        if missing:
            pytest.skip(f"N/A on {self.target}: needs {', '.join(sorted(missing))}")
        key = (self.spec, self.target)
        if key in _open_failures:
            pytest.fail(f"{self.target}: {_open_failures[key]}", pytrace=False)
        if key not in _drivers:
            d = make_driver(self.target, 10.0)
            workdir = Path(tempfile.mkdtemp(prefix="c3po-pytest-"))
            _workdirs.append(workdir)
            try:
                d.open(prog, workdir)
            except Exception as exc:
                # Remembered, so the other vectors fail at once with the same message instead of starting
                # (and failing to start) the target again, once per vector.
                d.close()
                _open_failures[key] = f"open failed: {type(exc).__name__}: {exc}"
                raise
            _drivers[key] = d
        driver = _drivers[key]
        driver.install(v.control)
        results = driver.run(v.packets, v.registers)
        layout = layout_function(prog)
        problems: list[str] = []
        for i, (e, r) in enumerate(zip(v.expected, results, strict=True)):
            problems += [f"packet {i}: {line}" for line in compare(e, r, layout).lines]
        if problems:
            raise VectorMismatch("\n".join(problems))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, VectorMismatch):
            return f"{self.vector} on {self.target}:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        return self.spec, 0, f"{Path(self.spec).stem}/{self.target}/{self.vector}"


class VectorMismatch(AssertionError):
    pass


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    specs = config.getoption("--c3po-spec")
    targets = [t.strip() for t in config.getoption("--c3po-targets").split(",") if t.strip()]
    for spec in specs:
        _prog, vectors = _load(config, spec)
        for t in targets:
            for v in vectors:
                items.append(
                    VectorItem.from_parent(
                        session, name=f"{Path(spec).stem}/{t}/{v.name}", spec=spec, target=t, vector=v.name
                    )
                )


def pytest_sessionfinish(session: pytest.Session) -> None:
    for d in _drivers.values():
        d.close()
    _drivers.clear()
    _open_failures.clear()
    for w in _workdirs:
        shutil.rmtree(w, ignore_errors=True)
    _workdirs.clear()
