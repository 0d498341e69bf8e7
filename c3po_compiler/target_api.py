"""What a target is, and the registry that finds them.

A target is a small class: a name, documented capability flags (`features.FEATURES` names), and a pure
`render(program) -> {relative path: text}`; `build()` renders and, where a toolchain is present, compiles.
Built-in targets are listed explicitly; outside plugins register under the entry-point group `c3po.targets`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from . import compile_cache, ir
from .features import FEATURES, program_features
from .problems import Problem, error

BUILTIN_TARGETS = {
    "xdp": "targets.xdp:XdpTarget",
    "p4": "targets.p4:P4Target",
    "nic": "targets.nic:NicTarget",
}


@dataclass
class BuildResult:
    files: dict[str, Path] = field(default_factory=dict)  # what was written, by role ("source", "object", ...)
    notes: list[str] = field(default_factory=list)  # printed by `c3po build` (footprints, skipped steps)
    # Bytes of state the program needs on the target (its "state total" note), None when the target could not
    # tell; `c3po build` refuses a build past its memory budget (--memory-budget).
    footprint: int | None = None


class BuildError(Exception):
    """A toolchain step failed (compiler or verifier): the message says what and where."""


class Target(ABC):
    name: str = ""
    description: str = ""
    supports: frozenset[str] = frozenset()  # feature names from features.FEATURES

    def refusals(self, prog: ir.Program) -> list[Problem]:
        """What this target cannot do for this program, as errors naming the feature and the target."""
        missing = sorted(program_features(prog) - self.supports)
        return [error(prog.loc, f"target '{self.name}' cannot do {FEATURES[f]} ({f}), which this program uses",
                      "see docs/targets.md for the capability matrix") for f in missing] + self.limits(prog)

    def limits(self, prog: ir.Program) -> list[Problem]:
        """Target-specific size limits; none by default."""
        return []

    @abstractmethod
    def render(self, prog: ir.Program) -> dict[str, str]:
        """Generated files by relative path; deterministic: same program, same bytes."""

    def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
        result = BuildResult()
        outdir.mkdir(parents=True, exist_ok=True)
        for rel, text in self.render(prog).items():
            path = outdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
            result.files[rel] = path
        return result


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """A temporary name beside `path` (same directory, same suffix, so format detection still works) to write
    to; renamed over `path` when the block succeeds, removed when it fails, so a full disk or an interrupt
    never leaves a truncated file under the real name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(path)  # the user asked for `path`; a failed write() names no file at all
        raise


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write a whole file through `atomic_output`."""
    with atomic_output(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


class _ToolFailed(Exception):
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(proc.returncode)
        self.proc = proc


def run_to_outputs(cmd: Sequence[str], outputs: Sequence[Path | str], timeout: float | None = None
                   ) -> subprocess.CompletedProcess[str]:
    """Run a tool (a compiler) that writes `outputs`, each named as one argument of `cmd`, with every such
    argument replaced by an `atomic_output` temporary name: the outputs are renamed into place only when the
    tool exits 0, and removed otherwise. A compiler that fails, is interrupted or runs out of disk half-way then
    never leaves a truncated object, binary or JSON under the real name, where the next step (a driver, a
    loader) would take it for a good one. Returns the finished process (output captured as text) either way.

    With C3PO_CACHE_DIR set, a run the cache holds is not run again (compile_cache)."""
    where = compile_cache.cache_dir()
    name = compile_cache.key(cmd, outputs) if where is not None else None
    if where is not None and name is not None:
        hit = compile_cache.lookup(where, name, cmd, outputs)
        if hit is not None:
            return hit
    try:
        with contextlib.ExitStack() as stack:
            temps = {str(p): str(stack.enter_context(atomic_output(p))) for p in outputs}
            proc = subprocess.run([temps.get(str(a), str(a)) for a in cmd], capture_output=True, text=True,
                                  timeout=timeout, check=False)
            if proc.returncode != 0:
                raise _ToolFailed(proc)  # leaves the block by an exception: the temporary files are removed
    except _ToolFailed as failed:
        return failed.proc
    if where is not None and name is not None:
        compile_cache.store(where, name, proc, outputs)
    return proc


def available_targets() -> dict[str, str]:
    """Target name -> 'module:Class', built-ins first, then entry-point plugins."""
    found = dict(BUILTIN_TARGETS)
    for ep in entry_points(group="c3po.targets"):
        found.setdefault(ep.name, ep.value)
    return found


def load_target(name: str) -> Target:
    spec = available_targets().get(name)
    if spec is None:
        raise KeyError(name)
    module_name, _, cls_name = spec.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    target: Target = cls()
    return target
