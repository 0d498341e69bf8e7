"""`c3po conformance mutate --hunt SECONDS`: a second opinion on each nic survivor, by differential fuzzing.

A survivor is either a mutant no vector could ever tell apart from the original (equivalent) or a gap of the
vectors. For the nic target this module looks for a packet that tells them apart: the original program and
the mutant, each with its host shim, are linked into one libFuzzer binary (runtime/differential_main.c) that
runs every input through both from the same control state and aborts when they differ in anything a vector
observes (verdict, egress port, output frame, per-entry counters and the counter and register elements that
changed). Coverage guidance steers the fuzzer into the code the two copies run.

- Symbol clashes: both copies define the same globals (`<p>_process`, `shim_run`, ...). Each copy is compiled
  with `-D<sym>=c3po_o_<sym>` (resp. `c3po_m_<sym>`) for every global its objects define (read from the gcc
  objects `mutate` built, with `nm`). A macro renames every use of the identifier in the translation unit and the
  header it includes alike, so each copy stays whole, and the two copies share no symbol. (objcopy
  --prefix-symbols would rename libc's undefined symbols too; two dlopen'ed objects would keep libFuzzer's
  coverage of the mutant less direct.)
- States: the control states (and register values) of the vectors, at most MAX_STATES of them spread over the
  vectors' distinct ones, installed exactly as the nic driver installs them: the driver's own `install` runs
  against a recorder wrapping the original's shared object, and the recorded shim calls (add, set_default,
  lookup, modify, delete, watch, register reset) are replayed on both copies by the harness. A call whose return
  code differs distinguishes the state by itself.
- Seeds: every packet of the vectors (fuzzed ones included), prefixed by its state's and port's index.
- Outcome: `distinguished` when the fuzzer found an input and the vector made of it (expected results from the
  reference interpreter) passes on the original build and fails on the mutant through the ordinary nic driver;
  `likely-equivalent` when nothing was found in the time given (not a proof); otherwise the survivor stays a
  plain survivor with the reason (the oracle disagrees with the original: a target bug; the harness saw a
  difference the driver does not: unconfirmed).

Bounded (`-max_total_time`, `-max_len`, a per-input `-timeout`), seeded (`-seed`), quiet (libFuzzer's output
goes to a log file in the work directory). Nothing reaches a shell: every command is an argument list.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.target_api import write_atomic

from .model import ControlState, PacketIn, Registers, Vector
from .mutate_ops import Mutant

if TYPE_CHECKING:
    from targets.nic.driver import RawResult, Watch

MAX_STATES = 16
MAX_SEEDS = 4000
MAX_FRAME = 2048
MAX_DICT = 3000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"Done (\d+) runs")


class HuntUnavailable(Exception):
    """clang with libFuzzer, or nm, is not here."""


@dataclass
class HuntResult:
    status: str  # "distinguished", "likely-equivalent", "target-bug", "unconfirmed", "error"
    reason: str
    executions: int = 0
    vector: Vector | None = None


@dataclass
class _State:
    control: ControlState
    registers: Registers
    lines: list[str] = field(default_factory=list)


def _hx(b: bytes) -> str:
    return b.hex() or "-"


class _Recorder:
    """A nic driver backend that passes each call to the original's shared object and writes it down as a line
    of the harness's states file (runtime/differential_main.c)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lines: list[str] = []

    def reinit(self) -> None:
        self.real.reinit()
        self.lines = []

    def add(self, table: int, match: bytes, priority: int, action: int, args: bytes) -> int:
        self.lines.append(f"add {table} {priority} {action} {_hx(match)} {_hx(args)}")
        return int(self.real.add(table, match, priority, action, args))

    def set_default(self, table: int, action: int, args: bytes) -> int:
        self.lines.append(f"def {table} {action} {_hx(args)}")
        return int(self.real.set_default(table, action, args))

    def lookup(self, table: int, match: bytes, priority: int) -> int:
        self.lines.append(f"look {table} {priority} {_hx(match)}")
        return int(self.real.lookup(table, match, priority))

    def modify(self, table: int, handle: int, action: int, args: bytes) -> int:
        self.lines.append(f"mod {table} {handle} {action} {_hx(args)}")
        return int(self.real.modify(table, handle, action, args))

    def delete(self, table: int, handle: int) -> int:
        self.lines.append(f"del {table} {handle}")
        return int(self.real.delete(table, handle))

    def table_counter(self, function: str, handle: int) -> int | None:
        """A direct call of the program's counter function (not a shim call, so not replayed: the driver only
        checks its refusals, which a vector already sees)."""
        fn = getattr(self.real, "table_counter", None)
        return None if fn is None else fn(function, handle)  # type: ignore[no-any-return]

    def watch(self, watches: list[Watch]) -> None:
        self.real.watch(watches)
        self.lines.append(" ".join(["watch", str(len(watches))] + [f"{w.kind} {w.id} {w.idx}" for w in watches]))

    def reset(self, regs: list[tuple[int, int, bytes]]) -> None:
        items = []
        for rid, idx, v in regs:
            value = int.from_bytes(v, "big")
            items.append(f"{rid} {idx} {v.ljust(16, bytes(1))[:16].hex()} {value >> 64} {value & (2**64 - 1)}")
        self.lines.append(" ".join(["regs", str(len(regs)), *items]))

    def run(self, packets: list[PacketIn]) -> list[RawResult]:
        return []

    def close(self) -> None:
        self.real.close()


def global_symbols(objects: list[Path]) -> list[str]:
    """The global symbols the objects define (C identifiers only), sorted."""
    nm = shutil.which("nm")
    if nm is None:
        raise HuntUnavailable("nm is not on PATH (apt-get install binutils)")
    names: set[str] = set()
    for obj in objects:
        proc = subprocess.run([nm, "-g", "--defined-only", str(obj)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise HuntUnavailable(f"nm failed on {obj.name}: {proc.stderr.strip()[:200]}")
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and _IDENT.match(parts[2]):
                names.add(parts[2])
    return sorted(names)


StateKey = tuple[str, tuple[tuple[str, int, int], ...]]


def _state_key(v: Vector) -> StateKey:
    return v.control.key(), tuple(sorted((n, i, val) for (n, i), val in v.registers.items()))


def pick_states(vectors: list[Vector]) -> tuple[dict[StateKey, list[Vector]], list[StateKey], list[StateKey]]:
    """(the vectors grouped by control state and registers, the groups' keys in order, at most MAX_STATES of
    them spread over all)."""
    groups: dict[StateKey, list[Vector]] = {}
    for v in vectors:
        groups.setdefault(_state_key(v), []).append(v)
    keys = list(groups)
    step = max(1, -(-len(keys) // MAX_STATES))
    return groups, keys, keys[::step][:MAX_STATES]


def key_words(prog: ir.Program, states: list[ControlState]) -> list[bytes]:
    """libFuzzer dictionary words: every table entry's key values (constant entries and the states' entries and
    ops), each at its key's width and one off on either side (range bounds). A lookup through a hash or a trie
    compares keys only once it has found the slot, so the fuzzer's comparison tracing rarely sees them."""
    words: set[bytes] = set()

    def add(table: str, match: tuple[KeyElem, ...] | list[KeyElem]) -> None:
        t = prog.tables.get(table)
        if t is None:
            return
        for key, m in zip(t.keys, match, strict=False):
            n = (key.width + 7) // 8
            values = {m.a}
            if m.kind == "range":
                values |= {m.b, m.a - 1, m.b + 1}
            for value in values:
                if 0 <= value < 1 << (8 * n) and n <= 16:
                    words.add(value.to_bytes(n, "big"))

    for name, t in prog.tables.items():
        for e in t.entries:
            add(name, e.match)
    for st in states:
        for es in st.entries:
            add(es.table, es.match)
        for op in st.ops:
            add(op.table, op.match)
    return sorted(w for w in words if any(w))[:MAX_DICT]


def max_frame(prog: ir.Program, vectors: list[Vector]) -> int:
    """The longest frame worth fuzzing: every header of the parse graph at its largest plus some payload, at
    least the longest vector packet, at most MAX_FRAME."""
    headers = sum(i.type.max_bytes * max(i.stack, 1) for i in prog.instances.values())
    longest = max((len(p.data) for v in vectors for p in v.packets), default=0)
    return min(MAX_FRAME, max(headers + 64, longest))


class HunterBase:
    """What the hunters of every target share: the survivor's found packet made a vector, confirmed through the
    ordinary drivers, and the vectors saved. `target` names the driver in messages; `method` says how it hunts."""

    target = ""
    method = ""  # in a survivor's reason: "... found in 20 s of <method>"
    summary = ""  # in the report: "hunt (20 s of <summary> per survivor)"

    def __init__(self, spec: str, prog: ir.Program, vectors: list[Vector], base: Path, original: Path,
                 workdir: Path, seconds: float, seed: int = 0, timeout: float = 1.0) -> None:
        self.spec, self.prog, self.vectors = spec, prog, vectors
        self.base, self.original, self.workdir = base, original, workdir
        self.seconds, self.seed, self.timeout = seconds, seed, timeout
        self.states: list[_State] = []
        self.ports: list[int] = []
        self.found: list[Vector] = []

    def install_states(self, drv: Any, groups: dict[StateKey, list[Vector]], chosen: list[StateKey],
                       refusals: tuple[type[Exception], ...], lines: Callable[[], list[str]] = list
                       ) -> dict[StateKey, int]:
        """Install the first vector's state (and registers) of each chosen group on the original's driver `drv`;
        those it accepts become `states` (with `lines()`, what the harness replays), indexed by group key."""
        index: dict[StateKey, int] = {}
        for key in chosen:
            first = groups[key][0]
            try:
                drv.install(first.control)
                drv.run([], first.registers)
            except refusals:
                continue  # a state the driver refuses is no state to fuzz under
            index[key] = len(self.states)
            self.states.append(_State(first.control, dict(first.registers), lines()))
        return index

    def not_found(self, execs: int, took: float) -> HuntResult:
        return HuntResult("likely-equivalent", f"likely equivalent (no difference found in {self.seconds:g} s of "
                          f"{self.method}, {execs} executions{self._rate(execs, took)})", execs)

    def _rate(self, execs: int, took: float) -> str:
        """Executions per second, where the hunter measures them itself."""
        return ""

    def found_packets(self, m: Mutant, k: int, packets: list[PacketIn], note: str, took: float,
                      execs: int, original_target: str, mutant_target: str) -> HuntResult:
        """The vector of `packets` under state #k, confirmed: `distinguished` when it kills the mutant."""
        st = self.states[k]
        name = f"hunt-{m.id}-L{m.line}-{m.operator}"
        vec = Vector(name, st.control, list(packets), dict(st.registers), tags=["hunt"],
                     provenance={"hunt": {"mutant": m.id, "line": m.line, "operator": m.operator,
                                          "state": k, "was": m.line_before.strip()[:200],
                                          "now": m.line_after.strip()[:200]}})
        where = ", ".join(f"{p.data.hex() or '(empty frame)'} on port {p.port}" for p in packets[-3:])
        if len(packets) > 3:
            where = f"{len(packets)} packets ending {where}"
        where += f", state #{k}"
        verdict = self._confirm(vec, original_target, mutant_target)
        if verdict == "killed":
            self.found.append(vec)
            return HuntResult("distinguished", f"survived (distinguished by {where}){note}, found in {took:.0f} s, "
                              f"{execs} executions{self._rate(execs, took)}", execs, vec)
        return HuntResult(verdict.split(":")[0], f"{verdict} (fuzzing found {where}){note}", execs, vec)

    def _confirm(self, vec: Vector, original_target: str, mutant_target: str) -> str:
        """'killed' when the vector passes on the original and fails on the mutant through the target's driver."""
        from .runner import RunRequest, fill_expected, run_conformance

        vec.expected = []
        problems = fill_expected(self.prog, [vec])
        if problems:
            return f"unconfirmed: the reference interpreter cannot run it: {problems[vec.name]}"
        reports = run_conformance([RunRequest(self.spec, [vec])], [original_target, mutant_target],
                                  timeout=self.timeout, jobs=1)
        got = {o.target: o for o in reports[0].outcomes}
        orig, mut = got.get(original_target), got.get(mutant_target)
        if orig is None or mut is None:
            return f"unconfirmed: the {self.target} driver did not run it"
        if orig.outcome != "PASS":
            detail = orig.detail[0] if orig.detail else ""
            return f"target-bug: the original {self.target} build disagrees with the reference interpreter " \
                   f"({orig.outcome}: {detail[:200]})"
        if mut.outcome == "PASS":
            return "unconfirmed: the harness saw a difference the driver's run of the vector does not"
        return "killed"

    def save(self, path: str | Path) -> int:
        """Write the distinguishing vectors (expected results from the reference interpreter)."""
        from .vector_io import save_vectors

        found = sorted(self.found, key=lambda v: int(v.provenance["hunt"]["mutant"]))
        save_vectors(path, found, self.prog, self.spec)
        return len(self.found)


class Hunter(HunterBase):
    """Differential fuzzing of nic survivors against the original build, in `workdir`."""

    target = "nic"
    method = "coverage-guided fuzzing"
    summary = "coverage-guided differential fuzzing"

    renames: list[str]  # the globals each copy renames (prepare)

    @staticmethod
    def unavailable() -> str | None:
        from targets.nic.toolchain import ToolchainError, compiler

        try:
            clang = compiler("clang")
        except ToolchainError as exc:
            return str(exc)
        if "clang" not in Path(clang).name:
            return "mutation hunting needs clang with libFuzzer (apt-get install clang)"
        if shutil.which("nm") is None:
            return "nm is not on PATH (apt-get install binutils)"
        return None

    # ------------------------------------------------------------------------------------------ preparation

    def prepare(self) -> None:
        """States file, seed corpus and the original copy's objects (once per run)."""
        from targets.nic.driver import NicDriver, SharedObject, max_growth

        name = self.prog.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.renames = global_symbols([self.original / f"{name}.o", self.base / "shim.o"])
        groups, keys, chosen = pick_states(self.vectors)
        real = SharedObject(self.original / f"lib{name}_nic.so", max_growth(self.prog))
        recorder = _Recorder(real)
        drv = NicDriver(sanitize=False)
        drv.prog, drv.backend = self.prog, recorder
        drv.table_ids = {n: i for i, n in enumerate(self.prog.tables)}
        drv.action_ids = {n: i for i, n in enumerate(self.prog.actions)}
        try:
            index = self.install_states(drv, groups, chosen, (ValueError, KeyError), lambda: list(recorder.lines))
        finally:
            drv.backend = None
            real.close()
        if not self.states:
            raise HuntUnavailable("no control state of the vectors installs on the nic driver")
        self.ports = sorted({p.port & 0xFFFFFFFF for v in self.vectors for p in v.packets} | {0})[:256]
        port_index = {p: i for i, p in enumerate(self.ports)}
        lines = [f"growth {max_growth(self.prog)}", f"ports {len(self.ports)} " + " ".join(map(str, self.ports))]
        for st in self.states:
            lines += ["state", *st.lines]
        self.states_file = self.workdir / "states.txt"
        write_atomic(self.states_file, "\n".join(lines) + "\n")
        self.max_len = max_frame(self.prog, self.vectors) + 2
        words = key_words(self.prog, [st.control for st in self.states])
        self.dictionary = self.workdir / "keys.dict" if words else None
        if self.dictionary is not None:
            write_atomic(self.dictionary, "".join('"' + "".join(f"\\x{b:02x}" for b in w) + '"\n'
                                                  for w in words))
        seeds = self.workdir / "seeds"
        shutil.rmtree(seeds, ignore_errors=True)
        seeds.mkdir()
        seen: set[bytes] = set()
        for g, key in enumerate(keys):
            k = index.get(key, g % len(self.states))
            for v in groups[key]:
                for p in v.packets:
                    data = bytes([k, port_index.get(p.port & 0xFFFFFFFF, 0)]) + p.data[:self.max_len - 2]
                    if data not in seen and len(seen) < MAX_SEEDS:
                        seen.add(data)
        for i, data in enumerate(sorted(seen)):
            (seeds / f"seed{i:05d}").write_bytes(data)
        self.seeds = seeds

    # --------------------------------------------------------------------------------------------- hunting

    def _build(self, slot: Path, mutant_source: Path) -> Path:
        from targets.nic.toolchain import build_differential

        name = self.prog.name
        obj = mutant_source.with_name(f"{mutant_source.stem}.m.fuzz.o")
        obj.unlink(missing_ok=True)
        exe = slot / f"diff_{name}"
        exe.unlink(missing_ok=True)
        shim = self.base / f"{name}_shim.c"
        return build_differential(self.base, {"o": [self.base / f"{name}.c", shim], "m": [mutant_source, shim]},
                                  self.renames, exe)

    def _fuzz(self, exe: Path, run_dir: Path) -> tuple[bytes | None, str, int]:
        """(the input that tells the copies apart or None, the harness's C3PO lines or crash kind, executions)."""
        shutil.rmtree(run_dir, ignore_errors=True)
        corpus, artifacts = run_dir / "corpus", run_dir / "artifacts"
        corpus.mkdir(parents=True)
        artifacts.mkdir()
        env = dict(os.environ, C3PO_DIFF_STATES=str(self.states_file))
        seconds = max(1, round(self.seconds))
        cmd = [str(exe), f"-seed={self.seed + 1}", f"-max_total_time={seconds}", f"-max_len={self.max_len}",
               f"-timeout={max(2, int(self.timeout * 5))}", "-rss_limit_mb=2048", "-use_value_profile=1",
               "-print_final_stats=1", f"-artifact_prefix={artifacts}/"]
        if self.dictionary is not None:
            cmd.append(f"-dict={self.dictionary}")
        cmd += [str(corpus), str(self.seeds)]
        log = run_dir / "libfuzzer.log"
        # a run over time is killed by run() before it raises
        with log.open("w", encoding="utf-8") as out, contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=run_dir, timeout=seconds + 300,
                           check=False)
        text = log.read_text(encoding="utf-8", errors="replace")
        m = _EXECS.search(text) or _DONE.search(text)
        execs = int(m.group(1)) if m else 0
        found = sorted(artifacts.iterdir())
        if not found:
            return None, "", execs
        diff = "\n".join(ln for ln in text.splitlines() if ln.startswith("C3PO-"))
        if not diff:
            kind = found[0].name.split("-")[0]
            diff = {"crash": "a copy crashed on it", "timeout": "a copy hung on it",
                    "oom": "a copy ran out of memory on it"}.get(kind, kind)
        return found[0].read_bytes(), diff, execs

    def hunt(self, m: Mutant, slot: Path, original_target: str, mutant_target: str) -> HuntResult:
        """Fuzz the mutant built in `slot` (its program file, and the nic driver's build of it) against the
        original; `original_target` and `mutant_target` are the runner's names of their drivers."""
        from targets.nic.toolchain import ToolchainError

        start = time.monotonic()
        try:
            exe = self._build(slot, slot / f"{self.prog.name}.c")
        except ToolchainError as exc:
            return HuntResult("error", f"the differential harness does not build: {str(exc).splitlines()[-1][:200]}")
        data, diff, execs = self._fuzz(exe, slot / "hunt")
        took = time.monotonic() - start
        if data is None:
            return self.not_found(execs, took)
        k, port = data[0] % len(self.states), self.ports[data[1] % len(self.ports)]
        note = f" [{diff.splitlines()[0]}]" if diff and not diff.startswith("C3PO-") else ""
        return self.found_packets(m, k, [PacketIn(port, data[2:])], note, took, execs, original_target,
                                  mutant_target)
