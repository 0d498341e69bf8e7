"""`c3po conformance mutate`: how strong a set of vectors is, measured by mutating a target's generated code.

Coverage counts what the vectors reach; it cannot tell whether they would notice the code there being wrong.
This command plants one bug at a time (the operators of `mutate_ops`) in the program file the target generated,
rebuilds it with the target's own toolchain, runs the vectors through the ordinary runner (a driver process per
mutant, as `conformance run` does, so a mutant that crashes or hangs costs only itself) and classifies it:

- killed: a vector that passes on the unmutated build fails or errors on the mutant;
- survived: every vector gives what it gave before; the report locates each survivor in the generated file and
  ties it to the spec line named by the nearest origin comment before it;
- equivalent: the mutant compiles to the same code as the original (compared section by section: code, data,
  relocations; debug information and BTF are left out), so no vector could ever kill it;
- stillborn: the mutant does not compile, or the target refuses to load it (the kernel verifier, BMv2): the
  toolchain killed it, not the vectors, so it is counted apart.

score = killed / (killed + survived). Mutants compiling to code identical to an earlier mutant's share its result.

The driver of a mutant is the target's own, told to load the prebuilt artifact of its slot directory instead of
building the spec: `py:conformance.mutate:Mutant<Target>_<hex of the slot directory>` names it, so the runner's
spawned worker finds it by import like any `py:` driver.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import shutil
import struct
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.target_api import BuildError, BuildResult, run_to_outputs, write_atomic
from c3po_compiler.text import terminal_text

from .driver import Driver
from .model import Vector
from .mutate_ops import OPERATORS, Mutant, find_mutants

TARGETS = ("xdp", "nic", "p4")
STATUSES = ("killed", "survived", "equivalent", "stillborn")
DEFAULT_TIMEOUT = 1.0  # per packet; a mutant that loops costs timeout x batch before the runner gives up on it


class MutateError(Exception):
    """Bad input: the message is one line."""


class ToolsMissing(Exception):
    """The target's toolchain or privileges are not here (exit status 2)."""


# ------------------------------------------------------------------------------------------ object comparison

_SKIP_SECTIONS = (".debug", ".BTF", ".comment", ".note", ".rel.debug", ".rela.debug", ".rel.BTF", ".rela.BTF",
                  ".llvm_addrsig", ".eh_frame", ".rela.eh_frame")


def elf_code_hash(path: Path) -> str:
    """A hash of what the object does: its sections' contents and relocations, without debug information, BTF
    (whose line info quotes the source text) or notes. Two sources with the same hash compile to the same code."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return hashlib.sha256(data).hexdigest()
    end = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(end + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
    headers = [struct.unpack_from(end + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    h = hashlib.sha256()
    for sh_name, sh_type, _flags, _addr, off, size, *_ in headers:
        name = names[sh_name:names.index(b"\0", sh_name)].decode(errors="replace")
        if name.startswith(_SKIP_SECTIONS):
            continue
        if sh_type == 8:  # NOBITS (.bss): a size, no contents
            h.update(name.encode() + b"\0" + str(size).encode() + b"\0")
            continue
        h.update(name.encode() + b"\0" + data[off:off + size])
    return h.hexdigest()


def _strip_source_info(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_source_info(v) for k, v in node.items() if k != "source_info"}
    if isinstance(node, list):
        return [_strip_source_info(v) for v in node]
    return node


def bmv2_code_hash(bmv2: Path, p4info: Path) -> str:
    """BMv2 JSON without its source_info (file, line and the source text of each object) and without the source's
    path (`program`), plus the P4Info."""
    doc = _strip_source_info(json.loads(bmv2.read_text(encoding="utf-8")))
    doc.pop("program", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode() + p4info.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------- builders


class Builder(ABC):
    """One target's generated program: written once to `base`, rebuilt per mutant in a slot directory."""

    lang = "c"
    driver_prefix = ""
    source_suffix = ""  # the generated program file mutated is <program><suffix>, never a runtime header
    target = ""

    def __init__(self, prog: ir.Program, base: Path) -> None:
        self.prog, self.base = prog, base

    @property
    def source_name(self) -> str:
        return self.prog.name + self.source_suffix

    def unavailable(self) -> str | None:
        """Why the target cannot build and run here, or None: its conformance driver's own answer."""
        from .driver import load_driver_class

        return load_driver_class(self.target).unavailable()

    @abstractmethod
    def prepare(self) -> None:
        """Write the generated sources to `base` and build what every mutant shares."""

    @abstractmethod
    def build(self, slot: Path, text: str) -> str:
        """Build `text` as the program file in `slot`; the code hash. Raises BuildError when it does not build."""

    def finish(self, slot: Path) -> None:  # noqa: B027 - most targets' build makes all the driver loads
        """What only a mutant that will run needs (a link, a sanitizer build): skipped for equivalent ones."""

    def slot(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path


class XdpBuilder(Builder):
    driver_prefix = "MutantXdp"
    source_suffix = ".bpf.c"
    target = "xdp"

    def prepare(self) -> None:
        from targets.xdp import XdpTarget

        XdpTarget(observe=True).build(self.prog, self.base)  # the driver's build

    def slot(self, path: Path) -> Path:
        from targets.xdp import RUNTIME_HEADER

        super().slot(path)
        shutil.copyfile(RUNTIME_HEADER, path / RUNTIME_HEADER.name)  # clang -I the source's own directory
        return path

    def build(self, slot: Path, text: str) -> str:
        from targets.xdp import compile_object

        src = slot / self.source_name
        write_atomic(src, text)
        obj = slot / f"{self.prog.name}.bpf.o"
        obj.unlink(missing_ok=True)
        compile_object(src, obj, observe=True)
        return elf_code_hash(obj)


class NicBuilder(Builder):
    driver_prefix = "MutantNic"
    source_suffix = ".c"
    target = "nic"

    def __init__(self, prog: ir.Program, base: Path, sanitize: bool = False) -> None:
        super().__init__(prog, base)
        # Under ASan/UBSan (the driver's sanitizer harness) a mutant reading past the frame is killed; natively
        # such a read usually goes unnoticed.
        self.sanitize = sanitize
        if sanitize:
            self.driver_prefix = "MutantNicAsan"

    def _cc(self) -> list[str]:
        from targets.nic.toolchain import TOUCH_LOG, compiler

        # the flags of toolchain.build_shared, split into compile and link so the shim is compiled once
        return [compiler("gcc"), "-std=gnu99", "-O2", "-fPIC", TOUCH_LOG, "-I", str(self.base)]

    def prepare(self) -> None:
        from targets.nic.toolchain import ToolchainError, run_cc, write_sources

        files = write_sources(self.prog, self.base)
        try:
            run_cc([*self._cc(), "-c", str(files["shim"]), "-o", str(self.base / "shim.o")])
        except ToolchainError as exc:
            raise BuildError(str(exc)) from None

    def build(self, slot: Path, text: str) -> str:
        from targets.nic.toolchain import ToolchainError, run_cc

        src = slot / self.source_name
        write_atomic(src, text)
        obj = slot / f"{self.prog.name}.o"
        for old in (obj, slot / f"lib{self.prog.name}_nic.so", slot / f"{self.prog.name}_harness"):
            old.unlink(missing_ok=True)
        try:
            run_cc([*self._cc(), "-c", str(src), "-o", str(obj)])
        except ToolchainError as exc:
            raise BuildError(str(exc)) from None
        return elf_code_hash(obj)

    def finish(self, slot: Path) -> None:
        from targets.nic.toolchain import (
            HARNESS_MAIN,
            SANITIZE_FLAGS,
            TOUCH_LOG,
            ToolchainError,
            compiler,
            run_cc,
        )

        name = self.prog.name
        if not self.sanitize:
            self.link_shared(slot)
            return
        # the flags of toolchain.build_harness
        cmd = [compiler("gcc"), "-std=gnu99", "-O1", *SANITIZE_FLAGS, TOUCH_LOG, "-I", str(self.base),
               str(slot / self.source_name), str(self.base / f"{name}_shim.c"), str(HARNESS_MAIN),
               "-o", str(slot / f"{name}_harness")]
        try:
            run_cc(cmd)
        except ToolchainError as exc:
            raise BuildError(str(exc)) from None

    def link_shared(self, slot: Path) -> None:
        """The native shared object of the build in `slot`: what the driver loads without --sanitize, and what
        --hunt records control states through (with --sanitize too: the hunt fuzzes native code)."""
        from targets.nic.toolchain import ToolchainError, compiler, run_cc

        name = self.prog.name
        try:
            run_cc([compiler("gcc"), "-shared", str(slot / f"{name}.o"), str(self.base / "shim.o"),
                    "-o", str(slot / f"lib{name}_nic.so")])
        except ToolchainError as exc:
            raise BuildError(str(exc)) from None


class P4Builder(Builder):
    lang = "p4"
    driver_prefix = "MutantP4"
    source_suffix = ".p4"
    target = "p4"

    def unavailable(self) -> str | None:
        if shutil.which("p4c-bm2-ss") is None:
            return "p4c-bm2-ss is not on PATH (see docs/targets/p4.md)"
        return super().unavailable()

    def prepare(self) -> None:
        from targets.p4 import P4Target

        P4Target().build(self.prog, self.base)

    def build(self, slot: Path, text: str) -> str:
        from targets.p4 import compile_command

        src = slot / self.source_name
        write_atomic(src, text)
        out, p4info = slot / f"{self.prog.name}.json", slot / f"{self.prog.name}.p4info.txtpb"
        out.unlink(missing_ok=True)
        p4c = shutil.which("p4c-bm2-ss") or "p4c-bm2-ss"
        proc = run_to_outputs(compile_command(p4c, src, out, p4info), [out, p4info], timeout=300)
        if proc.returncode != 0:
            raise BuildError(f"p4c-bm2-ss failed:\n{proc.stderr.strip()}")
        return bmv2_code_hash(out, p4info)


BUILDERS: dict[str, type[Builder]] = {"xdp": XdpBuilder, "nic": NicBuilder, "p4": P4Builder}


# ---------------------------------------------------------------------------------- drivers of prebuilt mutants


def native_target(slot: Path) -> str:
    """The runner's target name of the native nic driver loading `slot`'s shared object (see `driver_target`)."""
    return f"py:{__name__}:MutantNic_{str(slot.resolve()).encode().hex()}"


def driver_target(builder: Builder, slot: Path) -> str:
    """The runner's target name of the driver loading what `slot` holds (the path, hex-encoded, is in the name:
    the runner's worker is a fresh process that only gets the name)."""
    return f"py:{__name__}:{builder.driver_prefix}_{str(slot.resolve()).encode().hex()}"


@contextlib.contextmanager
def _standing_in(module: Any, name: str, value: Any) -> Iterator[None]:
    """`module.name` replaced while a driver opens, in the runner's worker process (which runs nothing else): the
    target's own driver then loads the mutant's prebuilt artifact instead of building the spec."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _xdp_driver(slot: Path) -> type[Driver]:
    import targets.xdp.driver as xd

    class MutantXdp(xd.XdpDriver):
        def open(self, prog: ir.Program, workdir: Path) -> None:
            obj = slot / f"{prog.name}.bpf.o"

            class Prebuilt:
                def __init__(self, observe: bool = True) -> None:
                    self.observe = observe  # the object was built observing (XdpBuilder.build)

                def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
                    return BuildResult(files={"object": obj})

            with _standing_in(xd, "XdpTarget", Prebuilt):
                super().open(prog, workdir)

    return MutantXdp


def _nic_driver(slot: Path, sanitize: bool = False) -> type[Driver]:
    import targets.nic.driver as nd

    class MutantNic(nd.NicDriver):
        def __init__(self) -> None:
            super().__init__(sanitize=sanitize)

        def open(self, prog: ir.Program, workdir: Path) -> None:
            built = slot / (f"{prog.name}_harness" if sanitize else f"lib{prog.name}_nic.so")

            def prebuilt(prog: ir.Program, outdir: Path, cc: str = "gcc", write: bool = True) -> Path:
                return built

            with _standing_in(nd, "build_harness" if sanitize else "build_shared", prebuilt):
                super().open(prog, workdir)

    return MutantNic


def _p4_driver(slot: Path) -> type[Driver]:
    import targets.p4.driver as pd

    class MutantP4(pd.P4Driver):
        def open(self, prog: ir.Program, workdir: Path) -> None:
            files = {"bmv2_json": slot / f"{prog.name}.json", "p4info": slot / f"{prog.name}.p4info.txtpb"}

            class Prebuilt:
                def __init__(self, cpu_port: int = 0) -> None:
                    self.cpu_port = cpu_port

                def refusals(self, prog: ir.Program) -> list[Any]:
                    return []

                def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
                    return BuildResult(files=dict(files))

            with _standing_in(pd, "P4Target", Prebuilt):
                super().open(prog, workdir)

    return MutantP4


_DRIVER_MAKERS: dict[str, Callable[[Path], type[Driver]]] = {
    "MutantXdp": _xdp_driver, "MutantNic": _nic_driver, "MutantP4": _p4_driver,
    "MutantNicAsan": lambda slot: _nic_driver(slot, sanitize=True)}


def __getattr__(name: str) -> type[Driver]:
    """`MutantXdp_<hex>` and its kin: the driver class of one slot directory (see `driver_target`)."""
    prefix, _, hexpath = name.partition("_")
    maker = _DRIVER_MAKERS.get(prefix)
    if maker is None or not hexpath:
        raise AttributeError(name)
    try:
        slot = Path(bytes.fromhex(hexpath).decode())
    except ValueError:
        raise AttributeError(name) from None
    return maker(slot)


# ---------------------------------------------------------------------------------------------- running


@dataclass
class MutantResult:
    mutant: Mutant
    status: str
    reason: str = ""
    seconds: float = 0.0
    hunt: str = ""  # survivors under --hunt: distinguished, likely-equivalent, target-bug, unconfirmed, error

    def to_json(self) -> dict[str, Any]:
        d = asdict(self.mutant)
        d.update(status=self.status, reason=self.reason, seconds=round(self.seconds, 3))
        if self.hunt:
            d["hunt"] = self.hunt
        return d


@dataclass
class MutationRun:
    spec: str
    program: str
    target: str
    source: str
    total: int
    seed: int
    vectors: int
    baseline: dict[str, int]
    results: list[MutantResult] = field(default_factory=list)
    hunt_seconds: float = 0.0  # --hunt: seconds of differential fuzzing per survivor (0: no hunting)
    hunter: Any = None  # the mutate_hunt.Hunter, holding the distinguishing vectors it found

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            out[r.status] += 1
        return out

    def score(self) -> float | None:
        c = self.counts()
        judged = c["killed"] + c["survived"]
        return c["killed"] / judged if judged else None

    def likely_equivalent(self) -> int:
        return sum(1 for r in self.results if r.status == "survived" and r.hunt == "likely-equivalent")

    def to_json(self) -> dict[str, Any]:
        out = {
            "spec": self.spec, "program": self.program, "target": self.target, "source": self.source,
            "mutants_total": self.total, "sampled": len(self.results), "seed": self.seed, "vectors": self.vectors,
            "baseline": self.baseline, "counts": self.counts(), "score": self.score(),
            "operators": list(OPERATORS), "mutants": [r.to_json() for r in self.results],
        }
        if self.hunt_seconds:
            c, eq = self.counts(), self.likely_equivalent()
            judged = c["killed"] + c["survived"] - eq
            out["hunt"] = {"seconds": self.hunt_seconds, "likely_equivalent": eq,
                           "distinguished": sum(1 for r in self.results if r.hunt == "distinguished"),
                           "score_excluding_likely_equivalent": c["killed"] / judged if judged else None}
        return out


class _OverBudget(Exception):
    """Raised from the runner's progress callback: the mutant took far longer than the original (it hangs)."""


def run_vectors(spec: str, vectors: list[Vector], target: str, timeout: float, budget: float | None = None,
                coverage: dict[str, Any] | None = None) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """(why the target did not run or None, vector name -> (outcome, first detail line)) through the runner;
    `coverage` receives what the driver counted of the generated code (Driver.coverage), where it counts it."""
    from .runner import RunRequest, run_conformance

    deadline = None if budget is None else time.monotonic() + budget

    def progress(n: int) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _OverBudget

    reports = run_conformance([RunRequest(spec, vectors)], [target], timeout=timeout, jobs=1, progress=progress)
    status = reports[0].targets[0]
    if not status.ran:
        return status.reason or "the target did not run", {}
    if coverage is not None and status.coverage:
        coverage.update(status.coverage)
    return None, {o.vector: (o.outcome, o.detail[0] if o.detail else "") for o in reports[0].outcomes}


UNREACHED = "no vector reached this code"


def unreached(m: Mutant, coverage: dict[str, Any]) -> str:
    """Why a survivor survived, where the target counts its generated code's ways out (the xdp target's verdict
    returns, per copy of the control): when the first counted return after the mutated line was never taken,
    no vector ran the mutated copy, so the survivor is a gap in reach, not in what the vectors check."""
    lines = coverage.get("counted_lines") or []
    after = next((n for n in lines if n >= m.line), None)
    if after is None or after not in set(coverage.get("unreached_lines") or []):
        return ""
    return f"{UNREACHED} (the next way out, line {after}, was never taken)"


def killing_vector(baseline: dict[str, tuple[str, str]], outcomes: dict[str, tuple[str, str]]) -> str | None:
    """The first vector whose outcome got worse than on the original build ("name: detail"), or None."""
    for name, (before, _) in baseline.items():
        after, detail = outcomes.get(name, ("ERROR", "no outcome"))
        if after != before and after in ("FAIL", "ERROR", "XFAIL"):
            return f"{name}: {after}" + (f": {detail}" if detail else "")
    return None


def sample_mutants(mutants: list[Mutant], sample: int | None, seed: int) -> list[Mutant]:
    """`sample` of them, the same ones for the same seed and generated code, in file order."""
    if sample is None or sample >= len(mutants):
        return list(mutants)
    picked = sorted(random.Random(seed).sample(range(len(mutants)), max(0, sample)))
    return [mutants[i] for i in picked]


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln[:300]
    return (lines[0] if lines else str(text))[:300]


def mutate(
    spec: str,
    prog: ir.Program,
    target: str,
    vectors: list[Vector],
    workdir: Path,
    sample: int | None = None,
    seed: int = 0,
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    operators: set[str] | None = None,
    progress: Callable[[MutantResult, dict[str, int]], None] | None = None,
    select: Callable[[Mutant], bool] | None = None,
    sanitize: bool = False,
    hunt: float = 0.0,
) -> MutationRun:
    """Build `prog` for `target` in `workdir`, then build and run each sampled mutant of its program file.
    Raises ToolsMissing when the target cannot run here, MutateError when the unmutated program does not build
    or run."""
    from .runner import fill_expected

    builder = NicBuilder(prog, workdir / "base", sanitize) if target == "nic" else BUILDERS[target](prog, workdir / "base")
    why = builder.unavailable()
    if why:
        raise ToolsMissing(why)
    builder.base.mkdir(parents=True, exist_ok=True)
    try:
        builder.prepare()
    except BuildError as exc:
        raise MutateError(f"the unmutated program does not build for {target}: {_first_line(str(exc))}") from None
    source_path = builder.base / builder.source_name
    text = source_path.read_text(encoding="utf-8")
    everything = find_mutants(text, builder.source_name, builder.lang, prog.name)
    if operators:
        everything = [m for m in everything if m.operator in operators]
    if select is not None:  # a caller studying particular sites (the tests pick a verdict, a dead store)
        everything = [m for m in everything if select(m)]
    chosen = sample_mutants(everything, sample, seed)

    problems = fill_expected(prog, vectors)  # once, here: each mutant's run then skips the oracle
    vectors = [v for v in vectors if v.name not in problems]

    original = builder.slot(workdir / "original")
    try:
        original_hash = builder.build(original, text)
        builder.finish(original)
    except BuildError as exc:
        raise MutateError(f"the unmutated program does not build for {target}: {_first_line(str(exc))}") from None
    t0 = time.monotonic()
    reached: dict[str, Any] = {}
    reason, baseline = run_vectors(spec, vectors, driver_target(builder, original), timeout, coverage=reached)
    if reason is not None:
        raise MutateError(f"the unmutated program does not run on {target}: {_first_line(reason)}")
    took = time.monotonic() - t0
    budget = max(60.0, 10 * took)
    base_counts: dict[str, int] = {}
    for outcome, _ in baseline.values():
        base_counts[outcome] = base_counts.get(outcome, 0) + 1
    run = MutationRun(spec, prog.name, target, builder.source_name, len(everything), seed, len(vectors), base_counts)
    # --sanitize: the harness skips filling tables larger than it can fill quickly (the nic driver's table API
    # contracts), so a survivor under the sanitizers also runs natively, where every table is filled to its
    # size; the original's native outcomes are the baseline of that second run.
    native_baseline: dict[str, tuple[str, str]] | None = None
    if isinstance(builder, NicBuilder) and builder.sanitize:
        try:
            builder.link_shared(original)
        except BuildError as exc:
            raise MutateError(f"the unmutated program does not link natively: {_first_line(str(exc))}") from None
        reason, native_baseline = run_vectors(spec, vectors, native_target(original), timeout)
        if reason is not None:
            raise MutateError(f"the unmutated program does not run natively on nic: {_first_line(reason)}")
    hunter = None
    if hunt > 0 and target in ("nic", "xdp"):  # --hunt: differential fuzzing of survivors
        from .mutate_hunt import Hunter, HuntUnavailable
        from .mutate_hunt_xdp import XdpHunter

        # with --sanitize the hunt fuzzes the native builds; a difference it finds is confirmed under the sanitizers
        hunter = (XdpHunter if target == "xdp" else Hunter)(spec, prog, vectors, builder.base, original,
                                                             workdir / "hunt", hunt, seed, timeout)
        try:
            hunter.prepare()
        except HuntUnavailable as exc:
            raise ToolsMissing(f"--hunt: {exc}") from None
        run.hunt_seconds, run.hunter = hunt, hunter

    by_hash: dict[str, tuple[int, str, str, str]] = {original_hash: (-1, "equivalent", "identical code to the original", "")}
    counts = dict.fromkeys(STATUSES, 0)
    results: dict[int, MutantResult] = {}

    def _native_kill(builder: Builder, slot: Path, native: dict[str, tuple[str, str]]) -> str | None:
        assert isinstance(builder, NicBuilder)
        try:
            builder.link_shared(slot)
        except BuildError as exc:
            return f"natively: does not link: {_first_line(str(exc))}"
        try:
            failed, outcomes = run_vectors(spec, vectors, native_target(slot), timeout, budget)
        except _OverBudget:
            return f"natively: timed out: over {budget:.0f} s"
        if failed is not None:
            return f"natively: does not load: {_first_line(failed)}"
        kill = killing_vector(native, outcomes)
        return f"natively (every table filled to its size): {kill}" if kill else None

    def one(m: Mutant, slot: Path) -> MutantResult:
        start = time.monotonic()
        try:
            code = builder.build(slot, m.apply(text))
        except BuildError as exc:
            return MutantResult(m, "stillborn", f"does not build: {_first_line(str(exc))}", time.monotonic() - start)
        seen = by_hash.get(code)
        if seen is not None:
            k, status, why, hunted = seen
            why = why if k < 0 else f"same code as mutant {k}: {why}"
            return MutantResult(m, status, why, time.monotonic() - start, hunted)
        try:
            builder.finish(slot)
        except BuildError as exc:
            return MutantResult(m, "stillborn", f"does not build: {_first_line(str(exc))}", time.monotonic() - start)
        try:
            failed, outcomes = run_vectors(spec, vectors, driver_target(builder, slot), timeout, budget)
        except _OverBudget:
            res = MutantResult(m, "killed", f"timed out: over {budget:.0f} s (the original took {took:.0f} s)")
        else:
            if failed is not None:
                res = MutantResult(m, "stillborn", f"does not load: {_first_line(failed)}")
            else:
                kill = killing_vector(baseline, outcomes)
                if not kill and native_baseline is not None:
                    kill = _native_kill(builder, slot, native_baseline)
                res = MutantResult(m, "killed", kill) if kill else MutantResult(m, "survived", unreached(m, reached))
                if hunter is not None and res.status == "survived":
                    found = hunter.hunt(m, slot, driver_target(builder, original), driver_target(builder, slot))
                    res.hunt, res.reason = found.status, "; ".join(x for x in (found.reason, res.reason) if x)
        res.seconds = time.monotonic() - start
        by_hash.setdefault(code, (m.id, res.status, res.reason, res.hunt))
        return res

    def done(res: MutantResult) -> None:
        results[res.mutant.id] = res
        counts[res.status] += 1
        if progress is not None:
            progress(res, dict(counts))

    if jobs <= 1:
        slot = builder.slot(workdir / "slot0")
        for m in chosen:
            done(one(m, slot))
    else:
        import queue

        slots: queue.Queue[Path] = queue.Queue()
        for i in range(jobs):
            slots.put(builder.slot(workdir / f"slot{i}"))

        def task(m: Mutant) -> MutantResult:
            s = slots.get()
            try:
                return one(m, s)
            finally:
                slots.put(s)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for res in pool.map(task, chosen):
                done(res)
    run.results = [results[m.id] for m in chosen]
    return run


# ------------------------------------------------------------------------------------------------------ CLI


def format_report(run: MutationRun) -> list[str]:
    c = run.counts()
    score = run.score()
    lines = [
        f"{run.program} on {run.target}: {len(run.results)} of {run.total} mutants of {run.source} "
        f"(seed {run.seed}), {run.vectors} vectors",
        f"  killed {c['killed']}, survived {c['survived']}, equivalent {c['equivalent']} (identical code, not "
        f"scored), stillborn {c['stillborn']} (does not build or load, not scored)",
        "  mutation score: " + (f"{100 * score:.1f}% ({c['killed']}/{c['killed'] + c['survived']})"
                                if score is not None else "n/a (nothing killed or survived)"),
    ]
    if run.hunt_seconds:
        lines += hunt_lines(run)
    survivors = [r for r in run.results if r.status == "survived"]
    dark = sum(1 for r in survivors if r.reason.startswith(UNREACHED))
    if dark:
        lines.append(f"  of the survivors, {dark} sit in code no vector reached (the target counted its ways out)")
    if survivors:
        # where they cluster says which kind of vector is missing: a table's delete path, the constant entries
        # (`_init`), one parser state
        by_function = Counter(r.mutant.function or "(outside functions)" for r in survivors)
        ranked = sorted(by_function.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append(f"survivors ({len(survivors)}), by function: " + ", ".join(f"{f} {n}" for f, n in ranked))
    for r in survivors:
        m = r.mutant
        origin = f"  <- {m.origin}" if m.origin else ""
        tag = f" [{r.hunt}]" if r.hunt else ""
        lines.append(f"  {m.file}:{m.line}:{m.column}:{tag} {m.operator}: {m.original!r} -> {m.replacement!r}{origin}")
        lines.append(f"      was: {m.line_before[:160]}")
        lines.append(f"      now: {m.line_after[:160]}")
        where = "; ".join(x for x in (f"{m.function}()" if m.function else "", m.origin_comment) if x)
        if where:
            lines.append(f"      in:  {where}")
        if r.reason:
            lines.append(f"      why: {r.reason}")
    return [terminal_text(ln) for ln in lines]


def hunt_lines(run: MutationRun) -> list[str]:
    """--hunt: what differential fuzzing made of the survivors, and the score without the likely-equivalent."""
    c, eq = run.counts(), run.likely_equivalent()
    kinds = Counter(r.hunt for r in run.results if r.status == "survived")
    other = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if k not in ("distinguished", "likely-equivalent"))
    judged = c["killed"] + c["survived"] - eq
    return [
        f"  hunt ({run.hunt_seconds:g} s of {getattr(run.hunter, 'summary', 'differential fuzzing')} per survivor): "
        f"distinguished {kinds['distinguished']} (real gaps: a packet tells them apart), likely equivalent {eq} (no difference "
        "found: not proven)" + (f", {other}" if other else ""),
        f"  mutation score excluding the {eq} likely equivalent: "
        + (f"{100 * c['killed'] / judged:.1f}% ({c['killed']}/{judged})" if judged else "n/a"),
    ]


def cmd_mutate(args: argparse.Namespace) -> int:
    from .cli import _load
    from .generate import generate
    from .vector_io import VectorFileError, load_vectors

    if args.target not in TARGETS:
        print(f"c3po conformance mutate: unknown target {terminal_text(repr(args.target))}; "
              f"choose one of {', '.join(TARGETS)}", file=sys.stderr)
        return 1
    if args.sanitize and args.target != "nic":
        print("c3po conformance mutate: --sanitize is for the nic target", file=sys.stderr)
        return 1
    if args.hunt is not None and (args.target not in ("nic", "xdp") or args.hunt <= 0):
        print("c3po conformance mutate: --hunt SECONDS (positive) is for the nic and xdp targets",
              file=sys.stderr)
        return 1
    if args.hunt_vectors and args.hunt is None:
        print("c3po conformance mutate: --hunt-vectors needs --hunt", file=sys.stderr)
        return 1
    if (args.sample is not None and args.sample < 1) or args.jobs < 1 or args.fuzz < 0 or args.timeout <= 0:
        print("c3po conformance mutate: --sample and --jobs must be at least 1, --fuzz at least 0, --timeout "
              "positive", file=sys.stderr)
        return 1
    operators = None
    if args.operators:
        operators = {o.strip() for o in args.operators.split(",") if o.strip()}
        unknown = sorted(operators - set(OPERATORS))
        if unknown:
            print(f"c3po conformance mutate: unknown operator {terminal_text(', '.join(unknown))}; operators: "
                  f"{', '.join(OPERATORS)}", file=sys.stderr)
            return 1
    loaded = _load(args.spec)
    if loaded is None:
        return 1
    prog = loaded.program
    try:
        if args.vectors:
            vectors: list[Vector] = []
            for f in args.vectors:
                vectors += load_vectors(f, prog)
        else:
            vectors = generate(prog, seed=args.seed, fuzz=args.fuzz).vectors
    except VectorFileError as exc:
        print(f"c3po conformance mutate: {terminal_text(exc)}", file=sys.stderr)
        return 1

    from tqdm import tqdm

    bar = tqdm(desc="mutants", unit="mut", file=sys.stderr, disable=args.quiet or None, leave=False, total=None)

    def tick(res: MutantResult, counts: dict[str, int]) -> None:
        bar.update(1)
        bar.set_postfix_str(" ".join(f"{k} {v}" for k, v in counts.items()), refresh=False)

    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="c3po-mutate-", ignore_cleanup_errors=True)
        workdir = Path(tmp.name)
    try:
        run = mutate(args.spec, prog, args.target, vectors, workdir, sample=args.sample, seed=args.seed,
                     jobs=args.jobs, timeout=args.timeout, operators=operators, progress=tick,
                     sanitize=args.sanitize, hunt=args.hunt or 0.0)
    except ToolsMissing as exc:
        print(f"c3po conformance mutate: target {args.target} cannot run here: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except MutateError as exc:
        print(f"c3po conformance mutate: {terminal_text(exc)}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        if tmp is not None:
            tmp.cleanup()
    print("\n".join(format_report(run)))
    if args.hunt_vectors and run.hunter is not None:
        n = run.hunter.save(args.hunt_vectors)
        print(terminal_text(f"wrote {n} distinguishing vector(s) to {args.hunt_vectors}"))
    if args.workdir:
        print(terminal_text(f"generated sources: {workdir / 'base'}"))
    if args.json:
        write_atomic(args.json, json.dumps(run.to_json(), indent=1) + "\n")
        print(f"wrote {terminal_text(args.json)}")
    return 0


def register_mutate(sub: Any, guarded: Callable[[Callable[[argparse.Namespace], int]],
                                                Callable[[argparse.Namespace], int]]) -> None:
    """The `mutate` subparser of `c3po conformance` (kept here so cli.py gains two lines, not forty)."""
    p = sub.add_parser("mutate", help="measure the vectors by mutating the target's generated code (mutation score)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--target", required=True, metavar="T", help="xdp, nic or p4")
    p.add_argument("--sample", type=int, metavar="N", help="run N mutants picked at random (seeded), not all")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of the generated vectors")
    p.add_argument("--vectors", action="append", metavar="FILE", help="use these vectors instead of generating")
    p.add_argument("--fuzz", type=int, default=0, metavar="N", help="add N seeded random packets to the generated")
    p.add_argument("--operators", metavar="LIST", help=f"comma-separated subset of: {', '.join(OPERATORS)}")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="mutants built and run at once (default 1)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"per-packet timeout (default {DEFAULT_TIMEOUT:g} s)")
    p.add_argument("--sanitize", action="store_true",
                   help="nic: run each mutant under ASan/UBSan (kills out-of-bounds reads; slower builds)")
    p.add_argument("--hunt", type=float, metavar="SECONDS",
                   help="nic, xdp: fuzz each survivor against the original (differential: libFuzzer for nic, "
                        "in the kernel for xdp) for SECONDS; reports it distinguished (a real gap) or likely "
                        "equivalent")
    p.add_argument("--hunt-vectors", metavar="FILE", help="write the packets --hunt found as vectors to FILE")
    p.add_argument("--workdir", metavar="DIR", help="build here and keep it (default: a temporary directory)")
    p.add_argument("--json", metavar="OUT", help="write every mutant and its result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=guarded(cmd_mutate))
