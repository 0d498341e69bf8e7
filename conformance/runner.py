"""Run vectors on targets and decide each vector's outcome against the oracle.

Every target runs in its own worker process (one per target and spec), so a driver that crashes or hangs on
a vector costs that vector an ERROR — the worker is killed, restarted, the program reopened and the control
state reinstalled — and the run goes on. Vectors are grouped by control state so tables are installed once
per group. Expected results missing from a vector come from the reference interpreter, in this process.

Interrupts: workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group) and answer SIGTERM by
closing their driver and exiting. When the parent is interrupted (KeyboardInterrupt, or the CLI's SIGTERM
exception) it sends every live worker SIGTERM, kills those still there after `STOP_GRACE` seconds, starts no
new ones, and re-raises once its threads have unwound (temporary directories removed). Temporary directories are
named `c3po-<target>-<parent pid>-XXXXXXXX`, so `sweep_stale` at the start of a run removes those of runs that
were killed (SIGKILL runs no code), together with p4 network namespaces `c3po-p4-<worker pid>-<n>` whose worker
is gone.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from c3po_compiler import ir, load_program
from c3po_compiler.features import FEATURES, program_features
from targets.p4.netns import socket_dir

from .compare import Layout, compare, layout_from_headers
from .driver import Driver, DriverUnavailable, load_driver_class
from .expected_failures import ExpectedFailures, load_expected_failures
from .interpreter import Interpreter
from .model import ControlState, Expected, Vector

OUTCOMES = ["PASS", "FAIL", "N/A", "ERROR", "XFAIL", "XPASS"]
OPEN_TIMEOUT = 300.0  # building a program (clang, p4c) can take a while; per-vector timeouts are separate
TIMEOUT_GRACE = 3.0  # seconds the parent waits beyond the per-vector timeout before killing a worker
BATCH = 64  # vectors per call to a driver (it may overlap their packets); a failed batch is rerun one by one
STOP_GRACE = 1.2  # seconds an interrupted run gives its workers to close their drivers before killing them
# A worker that died this many times is not restarted again: each restart reopens the program (a build, ~1 s or
# more), so a driver crashing on every vector would otherwise cost that for each remaining vector.
MAX_WORKER_CRASHES = 3
REAP_WAIT = 2.0  # seconds the parent waits for a dead worker to be reaped, so its exit status can be reported


@dataclass
class VectorOutcome:
    target: str
    vector: str
    outcome: str
    detail: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tags: list[str] = field(default_factory=list)
    # The vector's input frames ("port P: HEX") when it did not pass, so a report reproduces the failure.
    packets: list[str] = field(default_factory=list)


@dataclass
class TargetStatus:
    name: str
    ran: bool
    reason: str = ""  # why it could not run
    # It should have run but broke while opening the program (a plugin dying on start-up): an error of the
    # target as a whole, reported once rather than once per vector, and failing the run.
    error: bool = False
    # Coverage of the code the target generated, as its driver counted it (Driver.coverage), when it can.
    coverage: dict[str, Any] | None = None


@dataclass
class RunReport:
    spec: str
    program: str
    features: list[str]
    targets: list[TargetStatus]
    outcomes: list[VectorOutcome]
    coverage: dict[str, Any] | None = None  # what the vectors cover, per part and gap class, when known

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {t.name: dict.fromkeys(OUTCOMES, 0) for t in self.targets}
        for o in self.outcomes:
            out.setdefault(o.target, dict.fromkeys(OUTCOMES, 0))[o.outcome] += 1
        return out


# ------------------------------------------------------------------------------------------ driver making


def driver_class(target: str) -> type[Driver]:
    """A registered driver name, or `py:MODULE:CLASS` for a driver under development (no entry point yet)."""
    if target.startswith("py:"):
        module_name, _, attr = target[3:].partition(":")
        cls: type[Driver] = getattr(importlib.import_module(module_name), attr)
        return cls
    return load_driver_class(target)


def make_driver(target: str, timeout: float) -> Driver:
    if target.startswith("cmd:"):
        from .subprocess_driver import SubprocessDriver

        return SubprocessDriver(target[4:], timeout=timeout)
    return driver_class(target)()


def with_known_deviations(xfail: ExpectedFailures | None, target: str) -> ExpectedFailures | None:
    """The user's expected failures, then the target's own documented deviations (rules for that target)."""
    if target.startswith("cmd:"):
        return xfail
    path = driver_class(target).known_deviations
    if path is None:
        return xfail
    own = load_expected_failures(path)
    rules = [replace(r, target=target) if r.target == "*" else r for r in own.rules]
    return ExpectedFailures([*(xfail.rules if xfail else []), *rules])


class BrokenDriver(Exception):
    """A `py:MODULE:CLASS` driver that cannot be imported: the vendor's plugin is broken, which is an error of
    the run (exit status 1), not a target that merely cannot run on this machine (a skip, exit status 2)."""


def target_problem(target: str) -> tuple[str | None, frozenset[str]]:
    """(why the target cannot run here, the features it supports). Unknown names raise KeyError; a `py:` driver
    that fails to import raises BrokenDriver with the import error's message."""
    if target.startswith("cmd:"):
        return (None if target[4:].strip() else "empty plugin command"), frozenset(FEATURES)
    try:
        cls = driver_class(target)
    except KeyError:
        raise
    except (ImportError, AttributeError) as exc:
        if target.startswith("py:"):
            raise BrokenDriver(f"driver {target[3:]} cannot be loaded: {type(exc).__name__}: {exc}") from None
        return f"driver not installed ({exc})", frozenset()
    reason = cls.unavailable()
    return reason, (cls.supports or frozenset(FEATURES))


# ------------------------------------------------------------------------------------------- worker side


class _Stop(BaseException):
    """Raised in a worker by SIGTERM: unwinds whatever the driver is doing so that its close() runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough: close() must not be interrupted
    raise _Stop


def _worker(conn: Connection, target: str, spec: str, workdir: str, timeout: float) -> None:
    """Runs in the worker process: owns one driver, answers (op, ...) messages with (status, payload).

    SIGINT is ignored (the parent decides); SIGTERM closes the driver and exits quietly. Both were blocked by the
    parent while it started this process, so one arriving during start-up waits for these handlers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    # Temporary files of the driver and its tools (gcc's, clang's) go in the work directory, which the parent
    # removes whatever happens: a compiler killed mid-way cannot clean up after itself.
    os.environ["TMPDIR"] = tempfile.tempdir = workdir
    driver: Driver | None = None
    clean = False
    try:
        driver = make_driver(target, timeout)
        clean = _serve(conn, driver, spec, workdir)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if driver is not None:
                if clean:
                    driver.close()
                else:  # interrupted or failed to open: tidy up, quietly (the parent has the story)
                    with contextlib.suppress(Exception):
                        driver.close()
        finally:
            conn.close()


def _serve(conn: Connection, driver: Driver, spec: str, workdir: str) -> bool:
    """Open the program and answer messages until told to close; False when the open failed."""
    try:
        prog = load_program(spec).program
        driver.open(prog, Path(workdir))
    except DriverUnavailable as exc:
        conn.send(("unavailable", str(exc)))
        return False
    except Exception as exc:
        conn.send(("error", f"open failed: {type(exc).__name__}: {exc}"))
        return False
    conn.send(("ok", None))
    from .subprocess_driver import NotApplicable

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        op = msg[0]
        reply: tuple[str, Any]
        try:
            if op == "install":
                driver.install(msg[1])
                reply = ("ok", None)
            elif op == "run":
                reply = ("ok", driver.run(msg[1], msg[2]))
            elif op == "run_batch":
                reply = ("ok", driver.run_batch(msg[1]))
            elif op == "coverage":
                reply = ("ok", driver.coverage())
            else:
                break
        except NotApplicable as exc:
            reply = ("na", str(exc))
        except Exception as exc:
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            reply = ("error", f"{type(exc).__name__}: {exc}" if str(exc) else tb)
        try:
            conn.send(reply)
        except OSError:  # the parent gave up on this worker (timeout): nobody is left to tell
            break
    return True


class WorkerDied(Exception):
    pass


class WorkerGaveUp(WorkerDied):
    """The worker died MAX_WORKER_CRASHES times: the rest of its vectors are ERROR without restarting it."""


def describe_exit(code: int | None) -> str:
    """A worker's exit status in words: a negative status is the signal that killed it (-11 is a segfault),
    which is what a vendor needs to know first."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit status {code})"
    return f"exit status {code}"


class Interrupted(Exception):
    """The run is being stopped (Ctrl-C, SIGTERM): raised in the parent's threads instead of starting workers.
    Deliberately not a WorkerDied, so nothing on the way up mistakes it for a vector's ERROR."""


class Stopper:
    """The live workers of one run, so that an interrupt can stop them all promptly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = False
        self.procs: set[Any] = set()

    def discard(self, proc: Any) -> None:
        with self.lock:
            self.procs.discard(proc)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM every worker (each closes its driver), then SIGKILL whoever is left after `grace` seconds;
        returns how many had to be killed."""
        with self.lock:
            self.stopping = True
            procs = list(self.procs)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(max(0.0, deadline - time.monotonic()))
        killed = 0
        for p in procs:
            with contextlib.suppress(Exception):
                if p.is_alive():
                    killed += 1
                    p.kill()
                    p.join(1.0)
        return killed


class TargetSession:
    """The parent's handle on one target's worker, with restart-on-failure."""

    def __init__(self, target: str, spec: str, workdir: str, timeout: float, stopper: Stopper | None = None) -> None:
        self.target, self.spec, self.workdir, self.timeout = target, spec, workdir, timeout
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None
        self.conn: Connection | None = None
        self.control: ControlState | None = None
        self.stopper = stopper or Stopper()
        self.crashes = 0
        self.last_crash = ""

    def start(self) -> None:
        if self.stopper.stopping:
            raise Interrupted
        if self.crashes >= MAX_WORKER_CRASHES:
            raise WorkerGaveUp(
                f"not run: the driver process died {self.crashes} times, not restarted again "
                f"(last: {self.last_crash})"
            )
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(
            target=_worker, args=(child, self.target, self.spec, self.workdir, self.timeout), daemon=True
        )
        # The worker inherits this thread's signal mask: SIGINT/SIGTERM stay pending until it has its handlers.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            with self.stopper.lock:
                if self.stopper.stopping:
                    child.close()
                    parent.close()
                    self.proc = None
                    raise Interrupted
                self.proc.start()
                self.stopper.procs.add(self.proc)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child.close()
        self.conn = parent
        status, payload = self._wait(OPEN_TIMEOUT)
        if status == "unavailable":
            self.stop()
            raise DriverUnavailable(payload)
        if status != "ok":
            self.stop()
            raise WorkerDied(payload)

    def _wait(self, timeout: float) -> tuple[str, Any]:
        assert self.conn is not None
        try:
            if not self.conn.poll(timeout):
                self.stop()
                raise WorkerDied(f"timed out after {timeout:g}s")
            reply: tuple[str, Any] = self.conn.recv()
            return reply
        except (EOFError, OSError):
            code = None
            if self.proc is not None:
                # The pipe closes a moment before the process is reaped: exitcode is None until it is.
                self.proc.join(0.0 if self.stopper.stopping else REAP_WAIT)
                code = self.proc.exitcode
            self.stop()
            if self.stopper.stopping:
                raise Interrupted from None
            self.crashes += 1
            self.last_crash = f"driver process died ({describe_exit(code)})"
            raise WorkerDied(self.last_crash) from None

    def call(self, msg: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
        if self.conn is None:
            self.start()
            if self.control is not None:
                self._send(("install", self.control), self.timeout + TIMEOUT_GRACE)
        return self._send(msg, timeout)

    def _send(self, msg: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
        assert self.conn is not None
        try:
            self.conn.send(msg)
        except (BrokenPipeError, OSError):
            self.stop()
            raise WorkerDied("driver process is gone") from None
        return self._wait(timeout)

    def install(self, control: ControlState) -> tuple[str, Any]:
        self.control = control
        return self.call(("install", control), self.timeout + TIMEOUT_GRACE)

    def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(("close",))
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.join(0.0 if self.stopper.stopping else 2.0)
            if self.proc.is_alive() and self.stopper.stopping:
                self.proc.terminate()  # it closes its driver; the run's Stopper kills it if it takes too long
                self.proc.join(STOP_GRACE)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
            self.stopper.discard(self.proc)
            self.proc = None


# ------------------------------------------------------------------------------------------ parent side


def group_by_control(vectors: list[Vector]) -> list[tuple[ControlState, list[Vector]]]:
    groups: dict[str, tuple[ControlState, list[Vector]]] = {}
    for v in vectors:
        groups.setdefault(v.control.key(), (v.control, []))[1].append(v)
    return list(groups.values())


def fill_expected(prog: ir.Program, vectors: list[Vector]) -> dict[str, str]:
    """Oracle results for vectors without expectations; returns vector name -> oracle error, if any."""
    interp = Interpreter(prog)
    problems: dict[str, str] = {}
    for control, group in group_by_control([v for v in vectors if not v.expected]):
        try:
            interp.install(control)
        except ValueError as exc:
            for v in group:
                problems[v.name] = f"oracle cannot install the control state: {exc}"
            continue
        for v in group:
            v.expected = [Expected.from_result(r) for r in interp.run(v.packets, v.registers)]
    return problems


def layout_function(prog: ir.Program) -> Callable[[bytes], Layout]:
    """Name the fields of an expected frame by letting the oracle parse it (headers and their offsets)."""
    interp = Interpreter(prog)

    def layout_for(data: bytes) -> Layout:
        parsed = interp.parse(data)
        return layout_from_headers(prog, data, sorted(parsed.offsets.items(), key=lambda kv: kv[1]))

    return layout_for


ProgressFn = Callable[[int], None]


def _run_target(
    spec: str,
    prog: ir.Program,
    target: str,
    vectors: list[Vector],
    timeout: float,
    xfail: ExpectedFailures | None,
    features: set[str],
    supports: frozenset[str],
    oracle_problems: dict[str, str],
    progress: ProgressFn,
    stopper: Stopper | None = None,
) -> tuple[TargetStatus, list[VectorOutcome]]:
    outcomes: list[VectorOutcome] = []
    layout_for = layout_function(prog)
    xfail = with_known_deviations(xfail, target)
    runnable: list[Vector] = []
    for v in vectors:
        missing = sorted((set(v.requires) | features) - supports)
        if missing:
            outcomes.append(
                VectorOutcome(target, v.name, "N/A", [f"needs {', '.join(missing)}"], tags=v.tags)
            )
            progress(1)
        elif v.name in oracle_problems:
            outcomes.append(VectorOutcome(target, v.name, "ERROR", [oracle_problems[v.name]], tags=v.tags))
            progress(1)
        else:
            runnable.append(v)
    if not runnable:
        return TargetStatus(target, True), outcomes
    with tempfile.TemporaryDirectory(prefix=workdir_prefix(target), ignore_cleanup_errors=True) as workdir:
        session = TargetSession(target, spec, workdir, timeout, stopper)
        try:
            session.start()
        except DriverUnavailable as exc:
            progress(len(runnable))
            return TargetStatus(target, False, str(exc)), outcomes
        except WorkerDied as exc:
            progress(len(runnable))
            return TargetStatus(target, False, str(exc), error=True), outcomes
        try:
            for control, group in group_by_control(runnable):
                install_error: str | None = None
                try:
                    status, payload = session.install(control)
                    if status != "ok":
                        install_error = f"install failed: {payload}"
                except WorkerGaveUp as exc:
                    install_error = str(exc)
                except (WorkerDied, DriverUnavailable) as exc:
                    install_error = f"install failed: {exc}"
                for start in range(0, len(group), BATCH):
                    chunk = group[start:start + BATCH]
                    for out in _run_batch(session, chunk, install_error, timeout, target, prog, xfail, features,
                                          layout_for):
                        outcomes.append(out)
                        progress(1)
            coverage = _target_coverage(session, timeout)
        finally:
            session.stop()
    return TargetStatus(target, True, coverage=coverage), outcomes


def _target_coverage(session: TargetSession, timeout: float) -> dict[str, Any] | None:
    """What the driver counted of its generated code over the run; a worker restarted after a crash counted
    only the vectors since, which the result says."""
    try:
        status, payload = session.call(("coverage",), timeout)
    except (WorkerDied, DriverUnavailable):
        return None
    if status != "ok" or not payload:
        return None
    if session.crashes:
        payload = {**payload, "note": "partial: the worker was restarted after a crash, and counted only the "
                                      "vectors since"}
    return dict(payload)


def _run_batch(
    session: TargetSession,
    chunk: list[Vector],
    install_error: str | None,
    timeout: float,
    target: str,
    prog: ir.Program,
    xfail: ExpectedFailures | None,
    features: set[str],
    layout_for: Callable[[bytes], Layout],
) -> list[VectorOutcome]:
    """The chunk in one call; if that call fails as a whole, each vector alone, so a failure is pinned to the
    vector that caused it."""
    def judge(v: Vector, status: str, payload: Any, seconds: float) -> VectorOutcome:
        return _judge(v, status, payload, seconds, install_error, target, prog, xfail, features, layout_for)

    if install_error is None and len(chunk) > 1:
        t0 = time.monotonic()
        packets = sum(max(1, len(v.packets)) for v in chunk)
        try:
            status, payload = session.call(
                ("run_batch", [(v.packets, v.registers) for v in chunk]), timeout * packets + TIMEOUT_GRACE
            )
        except (WorkerDied, DriverUnavailable):
            status, payload = "error", None
        if status == "ok" and len(payload) == len(chunk):
            each = (time.monotonic() - t0) / len(chunk)
            return [judge(v, "ok", res, each) for v, res in zip(chunk, payload, strict=True)]
    outs = []
    for v in chunk:
        t0 = time.monotonic()
        status, payload = "ok", None
        if install_error is None:
            try:
                # The grace lets a driver's own timeout (the subprocess plugin has one) report first, with its
                # more precise message; the parent's is the backstop for drivers that hang in Python code.
                status, payload = session.call(
                    ("run", v.packets, v.registers), timeout * max(1, len(v.packets)) + TIMEOUT_GRACE
                )
            except (WorkerDied, DriverUnavailable) as exc:
                status, payload = "error", str(exc)
        outs.append(judge(v, status, payload, time.monotonic() - t0))
    return outs


def _judge(
    v: Vector,
    status: str,
    payload: Any,
    seconds: float,
    install_error: str | None,
    target: str,
    prog: ir.Program,
    xfail: ExpectedFailures | None,
    features: set[str],
    layout_for: Callable[[bytes], Layout],
) -> VectorOutcome:
    out = VectorOutcome(target, v.name, "PASS", tags=v.tags)
    if install_error is not None:
        out.outcome, out.detail = "ERROR", [install_error]
    else:
        if status == "na":
            out.outcome, out.detail = "N/A", [str(payload)]
        elif status != "ok":
            out.outcome, out.detail = "ERROR", [str(payload)]
        elif len(payload) != len(v.packets):
            out.outcome, out.detail = "ERROR", [f"{len(payload)} results for {len(v.packets)} packets"]
        else:
            for i, (exp, res) in enumerate(zip(v.expected, payload, strict=True)):
                if res.error:
                    # A driver marks a packet its target cannot take (e.g. XDP refuses frames < 14 bytes)
                    # with an error starting "N/A"; anything else is an ERROR.
                    na = res.error.startswith("N/A")
                    if not na or out.outcome == "PASS":
                        out.outcome = "N/A" if na else "ERROR"
                    out.detail.append(f"packet {i}: {res.error}")
                    continue
                mm = compare(exp, res, layout_for)
                if mm:
                    if out.outcome == "PASS":
                        out.outcome = "FAIL"
                    prefix = f"packet {i}: " if len(v.packets) > 1 else ""
                    out.detail += [prefix + line for line in mm.lines]
                    out.fields += [f for f in mm.fields if f not in out.fields]
    out.seconds = seconds
    if out.outcome in ("FAIL", "ERROR"):
        out.packets = [f"port {p.port}: {p.data.hex()}" for p in v.packets]
    if xfail is not None and out.outcome != "N/A":
        rule = xfail.match(prog.name, v.name, features | set(v.requires), target)
        if rule is not None:
            if out.outcome in ("FAIL", "ERROR") and rule.explains("\n".join(out.detail)):
                out.outcome = "XFAIL"
                out.detail.insert(0, f"expected failure: {rule.note}" if rule.note else "expected failure")
            elif out.outcome == "PASS" and rule.expects_failure:
                out.outcome = "XPASS"
                out.detail.insert(0, f"passed although listed as expected failure {rule.note}".strip())
    return out


# --------------------------------------------------------------------------------- temporary state, stale state

# c3po-<target>-<pid of the run>-<tempfile's 8 random characters>
_WORKDIR = re.compile(r"c3po-.+-(\d+)-[a-z0-9_]{8}")
# c3po-p4-<pid of the worker>-<n>: targets.p4.netns.namespace_name
_NETNS = re.compile(r"c3po-p4-(\d+)-\d+")
NETNS_DIR = Path("/run/netns")


def workdir_prefix(target: str) -> str:
    return f"c3po-{target.replace('/', '_').replace(':', '_')}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def sweep_stale(tmp: Path | None = None, netns_dir: Path = NETNS_DIR) -> list[str]:
    """Remove what killed runs left behind (SIGKILL runs no clean-up code): our temporary directories whose run
    is gone, and p4 network namespaces whose worker is gone (with any switch still running in them). Only
    directories owned by this user; returns what was removed."""
    removed: list[str] = []
    tmp = Path(tmp or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in os.scandir(tmp):
            m = _WORKDIR.fullmatch(entry.name)
            if not m or _pid_alive(int(m.group(1))):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return removed
    with contextlib.suppress(OSError):
        for entry in os.scandir(netns_dir):
            m = _NETNS.fullmatch(entry.name)
            if not m or _pid_alive(int(m.group(1))):
                continue
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                pids = subprocess.run(["ip", "netns", "pids", entry.name], capture_output=True, text=True,
                                      timeout=10, check=False).stdout.split()
                for pid in pids:  # a simple_switch whose worker was killed: it has its own session
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "delete", entry.name], capture_output=True, timeout=10, check=False)
                shutil.rmtree(socket_dir(entry.name), ignore_errors=True)
                removed.append(f"netns {entry.name}")
    return removed


@dataclass
class RunRequest:
    spec: str
    vectors: list[Vector]
    coverage: dict[str, Any] | None = None  # the generator's summary, for the report (vector_io.read_coverage)


def run_conformance(
    requests: list[RunRequest],
    targets: list[str],
    timeout: float = 10.0,
    jobs: int = 2,
    xfail: ExpectedFailures | None = None,
    progress: ProgressFn | None = None,
) -> list[RunReport]:
    """Every vector of every request on every target; targets × specs spread over `jobs` worker processes."""
    lock = threading.Lock()

    def tick(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    sweep_stale()
    plans: list[tuple[RunRequest, ir.Program, set[str], dict[str, str]]] = []
    for req in requests:
        prog = load_program(req.spec).program
        problems = fill_expected(prog, req.vectors)
        plans.append((req, prog, program_features(prog), problems))
    statuses: dict[str, tuple[str | None, frozenset[str]]] = {}
    broken: dict[str, str] = {}
    for t in targets:
        try:
            statuses[t] = target_problem(t)
        except BrokenDriver as exc:
            statuses[t], broken[t] = (str(exc), frozenset()), str(exc)
    reports = [RunReport(req.spec, prog.name, sorted(feats), [], [], req.coverage) for req, prog, feats, _ in plans]
    tasks = []
    stopper = Stopper()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        for i, (req, prog, feats, problems) in enumerate(plans):
            for t in targets:
                reason, supports = statuses[t]
                if reason is not None:
                    tick(len(req.vectors))
                    continue
                tasks.append(
                    (
                        i,
                        t,
                        pool.submit(
                            _run_target,
                            req.spec,
                            prog,
                            t,
                            req.vectors,
                            timeout,
                            xfail,
                            feats,
                            supports,
                            problems,
                            tick,
                            stopper,
                        ),
                    )
                )
        results = {(i, t): f.result() for i, t, f in tasks}
    except BaseException:
        # Interrupted (or broken): no new workers, the live ones closed, the threads unwound — which removes
        # their temporary directories — and only then the exception goes on.
        _interrupt_signals(signal.SIG_IGN)
        try:
            killed = stopper.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            if killed:  # a worker too slow to close its driver: remove what it left (a p4 namespace, a switch)
                sweep_stale()
        finally:
            _interrupt_signals(None)
        raise
    pool.shutdown(wait=True)
    for i, _ in enumerate(plans):
        for t in targets:
            reason, _s = statuses[t]
            if reason is not None:
                reports[i].targets.append(TargetStatus(t, False, reason, error=t in broken))
                continue
            status, outs = results[(i, t)]
            reports[i].targets.append(status)
            reports[i].outcomes += outs
    return reports


_saved_handlers: list[Any] = []


def _interrupt_signals(handler: Any) -> None:
    """Ignore SIGINT/SIGTERM while stopping (a second Ctrl-C must not cut the clean-up short); `None` restores."""
    if threading.current_thread() is not threading.main_thread():
        return
    if handler is not None:
        _saved_handlers[:] = [signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)]
    elif _saved_handlers:
        for s, h in zip((signal.SIGINT, signal.SIGTERM), _saved_handlers, strict=True):
            signal.signal(s, h)
        _saved_handlers.clear()


def exit_status(reports: list[RunReport]) -> int:
    """1 when any vector failed or errored or a target failed to open (an XPASS does not fail a run); otherwise 2 when a requested
    target could not run — except p4, whose toolchain is rarely installed: a p4 skip alone is reported but
    is not an error status when another target ran."""
    if any(o.outcome in ("FAIL", "ERROR") for r in reports for o in r.outcomes):
        return 1
    if any(t.error for r in reports for t in r.targets):
        return 1
    for r in reports:
        skipped = [t for t in r.targets if not t.ran]
        ran_any = any(t.ran for t in r.targets)
        if any(t.name != "p4" or not ran_any for t in skipped):
            return 2
    return 0
