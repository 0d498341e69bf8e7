"""Operate a c3po program on BMv2 (issue 13): `load` starts `simple_switch_grpc` on live interfaces and pushes
the pipeline, `open` reaches it from any later process, `unload` stops it; `P4Dataplane` is the target-neutral
control API (dataplane/api.py) over P4Runtime, with BMv2's Thrift API for registers.

One encoder: entries become P4Runtime messages through the conformance driver's mapping (targets/p4/entries.py:
`entry_items`, `default_items`, `match_from_p4runtime`) and its session (targets/p4/p4runtime_control.py), so a key
means the same here as in a conformance vector.

The switch. `simple_switch_grpc --no-p4 -i PORT@IFNAME ...` runs as a daemon in its own session (it outlives the
command that started it), in the network namespace of the caller, logging to `<workdir>/switch.log`. Its gRPC
server listens on a unix socket in the program's root-only directory (`<workdir>/grpc.sock`; a private temporary
directory when that path is too long for a unix socket), not on a TCP port: only root can reach it, no other
local user can take the primary role and rewrite the tables, and a process in another network namespace can
still drive the switch. BMv2's Thrift server can only listen on TCP: it gets a free port, which BMv2 opens on every
address of the switch's namespace — its namespace should not face untrusted hosts, or filter that port. Thrift is
reached from inside the switch's namespace (`/proc/<pid>/ns/net`). The CPU port (`to_host`) is port 510 as in the
driver; a program's `to_host` frames go nowhere unless a `Port(510, ...)` wires an interface to it. `load` saves
the switch's pid (and its start time, so a reused pid is never signalled) in the record as soon as the switch is
started: `unload` after a crash half-way through `load` still stops it.

Sessions. Every process that opens the program becomes the P4Runtime primary with an election id taken from the
clock, so the newest session wins; an older session whose Write is refused as not primary takes the role back
once and retries. Mutations from several processes are serialised by the registry's lock (`locked`).

Atomicity (BMv2 1.15 with its PI P4Runtime server). A single P4Runtime update (insert, modify, delete of one
entry, one default) is applied under the table's lock, so a packet sees the entry either before or after it,
never half an action's data. A WriteRequest with several updates is not atomic: BMv2 applies them one by one,
in order, and reports each (P4Runtime's CONTINUE_ON_ERROR). A spec table applied from N places is N P4 tables
(`t`, `t__2`, ...) written in one request, so a packet in flight may meet the new entry in one copy and the old
in another; if some copies refuse an update, the others are put back as they were, so no entry is left
half-written. `apply` writes entry by entry (one request each): a packet sees every state in between.

Priorities. P4Runtime wants a priority of 1 or more, higher wins; a spec priority p is P4Runtime priority p + 1
(so 2^31 - 1, P4Runtime's largest, cannot be had on this target). Between entries of equal priority whose matches
overlap P4Runtime leaves the winner to the target; the spec's rule (the entry installed first) is not enforced.
Reading back, entries of priority tables come highest priority first, then in BMv2's order. Don't-care fields
are left out of P4Runtime messages whichever way they were written (`_`, `/0`, `&&& 0`, the full range), so they
read back as `any`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.lower import MAX_PRIORITY
from c3po_compiler.target_api import BuildError
from dataplane import registry
from dataplane.api import ControlError, Counter, Dataplane, DataplaneUnavailable, Entry, entry_identity
from dataplane.registry import Record

from . import P4Target
from .emitter import DEFAULT_CPU_PORT
from .entries import default_items, describe, entry_items, match_from_p4runtime

CPU_PORT = DEFAULT_CPU_PORT
START_TIMEOUT = 60.0  # simple_switch_grpc takes seconds to open its ports on a loaded machine
STOP_TIMEOUT = 5.0  # after SIGTERM, before SIGKILL
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; "unix:" and the file name come on top
SWITCH = "simple_switch_grpc"


def unavailable() -> str | None:
    """What the P4 conformance driver needs is what this needs: p4c, BMv2, root, p4runtime-shell, thrift."""
    from .driver import P4Driver

    return P4Driver.unavailable()


# ------------------------------------------------------------------------------------------------ the process

def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state first), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat(5); fields here start at field 3


def switch_alive(record: Record) -> bool:
    """The record's switch is running: its pid exists, is not a zombie, started when the record says (a pid
    reused by another process does not count) and runs simple_switch_grpc."""
    pid = record.extra.get("pid")
    if not isinstance(pid, int):
        return False
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if record.extra.get("start_time") is not None and int(fields[19]) != record.extra["start_time"]:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == SWITCH


def _reap(pid: int, wait: float = 0.0) -> None:
    """Collect the exit status when the switch is this process's child (load and unload in one process); with
    `wait`, keep trying that long: a switch seen exiting may not be a zombie yet, and one left unreaped keeps
    its /proc entry until this process exits."""
    deadline = time.monotonic() + wait
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return  # not our child (another process started it), or already collected
        if done == pid or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _stop(record: Record) -> list[str]:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; nothing when the switch is gone already."""
    pid = record.extra.get("pid")
    if not isinstance(pid, int) or not switch_alive(record):
        if isinstance(pid, int):
            _reap(pid)
        return []
    done = []
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not switch_alive(record):
                _reap(pid, wait=2.0)  # it may not be a zombie yet
                done.append(f"stopped {SWITCH} (pid {pid}{', killed' if sig == signal.SIGKILL else ''})")
                return done
            time.sleep(0.05)
    raise ControlError(f"{SWITCH} (pid {pid}) did not stop after SIGKILL")


def _free_tcp_port() -> int:
    """A free TCP port in this thread's network namespace (where the switch starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _socket_dir(workdir: Path) -> tuple[Path, bool]:
    """Where the gRPC and notification sockets go, and whether it is a temporary directory to remove."""
    if len(str(workdir / "notifications.ipc")) <= SOCKET_PATH_MAX:
        return workdir, False
    return Path(tempfile.mkdtemp(prefix="c3po-p4-")), True  # mode 0700


def switch_command(record: Record, bmv2_dir: Path, sockets: Path, thrift_port: int, log_level: str) -> list[str]:
    """The daemon's command line: no pipeline yet (P4Runtime pushes it, as the driver does), one `-i` per port,
    private notification and gRPC sockets (their defaults are shared by every switch on the machine)."""
    cmd = [SWITCH, "--no-p4", "--device-id", "0", "--thrift-port", str(thrift_port),
           "--log-file", str(bmv2_dir / "bmv2"), "-L", log_level,
           "--notifications-addr", f"ipc://{sockets / 'notifications.ipc'}"]
    for p in record.ports:
        cmd += ["-i", f"{p.port}@{p.ifname}"]
    return [*cmd, "--", "--grpc-server-addr", f"unix:{sockets / 'grpc.sock'}"]


# ------------------------------------------------------------------------------------------------ the module API

def load(prog: ir.Program, record: Record, workdir: Path) -> P4Dataplane:
    """Build with p4c into `workdir/build`, start the switch on `record.ports`, push the pipeline, install the
    spec's constant entries (the generated P4 does not declare them `const entries`, which would make the tables
    read-only); the program's defaults are compiled in. On any failure the switch is stopped again."""
    reason = unavailable()
    if reason:
        raise DataplaneUnavailable(reason)
    target = P4Target(CPU_PORT)
    refusals = [p for p in target.refusals(prog) if p.severity == "error"]
    if refusals:
        raise ControlError("the p4 target cannot run this program: " + "; ".join(p.message for p in refusals))
    numbers = [p.port for p in record.ports]
    if len(set(numbers)) != len(numbers):
        raise ControlError("a port number is given twice", ", ".join(f"{p.port}={p.ifname}" for p in record.ports))
    try:
        built = target.build(prog, workdir / "build")
    except BuildError as exc:
        raise ControlError(f"p4c failed: {exc}") from None
    if "bmv2_json" not in built.files:
        raise DataplaneUnavailable("p4c-bm2-ss is not on PATH")
    sockets, temporary = _socket_dir(workdir)
    thrift_port = _free_tcp_port()
    log_level = str(record.extra.get("log_level", "info"))
    cmd = switch_command(record, workdir, sockets, thrift_port, log_level)
    with (workdir / "switch.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    record.mode = "bmv2"
    record.extra.update({
        "pid": proc.pid, "start_time": _start_time(proc.pid), "grpc": f"unix:{sockets / 'grpc.sock'}",
        "thrift_port": thrift_port, "sockets": str(sockets) if temporary else "", "cpu_port": CPU_PORT,
        "bmv2_json": str(built.files["bmv2_json"]), "p4info": str(built.files["p4info"]),
        "log": str(workdir / "switch.log"), "command": cmd,
    })
    record.save()  # before waiting: a load killed from here on leaves the pid for unload
    dp: P4Dataplane | None = None
    try:
        _wait_for_switch(proc, record)
        dp = P4Dataplane(prog, record, push=True)
        dp._install_constants()
        return dp
    except BaseException:
        if dp is not None:
            dp.close()
        _stop(record)
        raise


def _wait_for_switch(proc: subprocess.Popen[bytes], record: Record) -> None:
    """Until the Thrift port answers (BMv2 opens it after gRPC), or the switch exits, or START_TIMEOUT."""
    from .thrift_api import ThriftClient

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = Path(record.extra["log"]).read_text(errors="replace").strip().splitlines()[-5:]
            raise ControlError(f"{SWITCH} exited with status {proc.returncode} on start: " + " | ".join(tail),
                               f"its log: {record.extra['log']}")
        client = ThriftClient(record.extra["thrift_port"])
        try:
            client.connect()
            client.close()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise ControlError(f"{SWITCH} did not open its Thrift port in {START_TIMEOUT:g} s ({exc})",
                                   f"is the loopback interface up in this network namespace? its log: "
                                   f"{record.extra['log']}") from None
            time.sleep(0.1)


def open(prog: ir.Program, record: Record) -> P4Dataplane:  # the protocol's name: builtins.open is not used here
    """Reach the switch `load` started: a new P4Runtime session on the running pipeline (nothing pushed)."""
    if not switch_alive(record):
        raise ControlError(f"the switch of '{record.name}' (pid {record.extra.get('pid')}) is not running",
                           f"see {record.extra.get('log', 'its log')}; `c3po unload {record.name}` cleans up")
    return P4Dataplane(prog, record, push=False)


def unload(record: Record) -> list[str]:
    """Stop the switch and remove its sockets; safe to repeat, and when the switch died or never started."""
    done = _stop(record)
    sockets = record.extra.get("sockets")
    if sockets and Path(sockets).is_dir():
        shutil.rmtree(sockets, ignore_errors=True)
        done.append(f"removed {sockets}")
    grpc = str(record.extra.get("grpc", ""))
    for path in (grpc.removeprefix("unix:"), str(Path(grpc.removeprefix("unix:")).with_name("notifications.ipc"))):
        if grpc.startswith("unix:") and os.path.lexists(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                done.append(f"removed {path}")
    return done


# ------------------------------------------------------------------------------------------------ the data plane

def _election_id() -> tuple[int, int]:
    """(high, low) from the clock in ns: a later session outranks every earlier one."""
    return 0, time.time_ns()


def _code_error(table: str, exc: Any, what: str) -> ControlError:
    """A refused write as the user should read it."""
    codes = {code for _, code, _ in getattr(exc, "errors", [])} or {getattr(exc, "code", "")}
    if "ALREADY_EXISTS" in codes:
        return ControlError(f"table '{table}' already has an entry with this match", "use modify to change its action")
    if "NOT_FOUND" in codes:
        return ControlError(f"table '{table}' has no entry with this match")
    if "RESOURCE_EXHAUSTED" in codes:
        return ControlError(f"table '{table}' is full", "delete an entry first, or raise the table's size in the spec")
    return ControlError(f"the switch refused to {what} in table '{table}': {exc}")


class P4Dataplane(Dataplane):
    """A program running on simple_switch_grpc, driven over one P4Runtime session (and Thrift for registers)."""

    target = "p4"

    def __init__(self, prog: ir.Program, record: Record, push: bool = False) -> None:
        from .p4runtime_control import P4RuntimeControl

        super().__init__(record.name, prog)
        self.record = record
        self.desc = describe(prog, int(record.extra.get("cpu_port", CPU_PORT)))
        self._desc_tables = {t["name"]: t for t in self.desc["tables"]}
        self.ctl = P4RuntimeControl(record.extra["grpc"], Path(record.extra["p4info"]),
                                    Path(record.extra["bmv2_json"]), self.desc)
        self._thrift: Any = None
        self._lock_depth = 0
        # Entries (no counters) as last read or written, valid while the generation file is the one this
        # session last saw or wrote: see `_locked`.
        self._cache: dict[str, dict[tuple[Any, ...], Entry]] = {}
        self._generation: str | None = None
        self._bumped = False
        # The spec's constant entries, by identity, as they read back (don't-cares as `any`).
        self._const: dict[str, set[tuple[Any, ...]]] = {
            name: {entry_identity(t, self._normal(name, tuple(e.match)), e.priority) for e in t.entries}
            for name, t in prog.tables.items()}
        try:
            self.ctl.connect(push=push, election_id=_election_id())
        except (ConnectionError, RuntimeError) as exc:
            raise ControlError(f"cannot reach the switch of '{record.name}': {exc}",
                               f"see {record.extra.get('log', 'its log')}") from None

    # ---- sessions and locking
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The registry's lock, reentrant in this process (flock is per open file: taking it twice would wait
        forever). While it is held, entries this session read or wrote are reused instead of read again over
        P4Runtime (a read of 1,000 entries takes ≈ 100 ms, and `Table.add` reads the table to find duplicates),
        for as long as the program's generation file (`<record dir>/generation`) still holds what this session
        last saw: every c3po session writes a new one under the lock *before* its first write to the switch, so
        a change by another c3po process — even one killed half-way — makes this one read again. Writes by
        other P4Runtime clients go unseen (c3po is meant to be the switch's only controller)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with registry.lock(self.name):
            try:
                now = (self.record.dir / "generation").read_text()
            except FileNotFoundError:
                now = ""
            if now != self._generation:
                self._cache, self._generation = {}, now
            self._lock_depth, self._bumped = 1, False
            try:
                yield
            except BaseException:
                self._cache = {}
                raise
            finally:
                self._lock_depth = 0

    def _changing(self, table: str) -> None:
        """Before a write to the switch: a new generation (once per locked operation)."""
        if self._lock_depth and self._bumped:
            return
        self._generation = f"{os.getpid()}-{time.time_ns()}"
        (self.record.dir / "generation").write_text(self._generation)
        if self._lock_depth:
            self._bumped = True
        else:
            self._cache.pop(table, None)

    def locked(self) -> Any:
        return self._locked()

    def close(self) -> None:
        self.ctl.close()
        if self._thrift is not None:
            with contextlib.suppress(Exception):
                self._thrift.close()
            self._thrift = None

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update({k: self.record.extra.get(k) for k in ("pid", "grpc", "thrift_port", "log")})
        return out

    def _write(self, kind: str, items: list[dict[str, Any]]) -> None:
        """One WriteRequest; when another session became primary meanwhile, take the role back once."""
        from .p4runtime_control import WriteError

        try:
            self.ctl.write_items(kind, items)
        except WriteError as exc:
            if exc.code != "PERMISSION_DENIED":
                raise
            self.ctl.connect(push=False, election_id=_election_id())
            self.ctl.write_items(kind, items)

    def _write_all(self, table: str, kind: str, items: list[dict[str, Any]], undo_kind: str,
                   undo: list[dict[str, Any]], what: str) -> None:
        """Write `items` (one per P4 copy of `table`); if some copies refuse, write `undo[i]` (`undo_kind`) to
        each copy that took its update, so the copies never disagree, then report the refusal."""
        from .p4runtime_control import WriteError

        self._changing(table)
        try:
            self._write(kind, items)
        except WriteError as exc:
            self._cache.pop(table, None)
            failed = {i for i, _, _ in exc.errors}
            done = [undo[i] for i in range(len(items)) if exc.errors and i not in failed]
            if done:
                with contextlib.suppress(WriteError):
                    self._write(undo_kind, done)
            raise _code_error(table, exc, what) from None
        except RuntimeError as exc:
            self._cache.pop(table, None)
            raise ControlError(f"P4Runtime: {exc}") from None

    # ---- entries
    def _normal(self, table: str, match: tuple[KeyElem, ...]) -> tuple[KeyElem, ...]:
        """`match` as it reads back from the switch."""
        t = self._desc_tables[table]
        items = entry_items(self.desc, t, match, None, (), None)
        return match_from_p4runtime(t, items[0]["match"])

    def _priority(self, table: str, priority: int) -> int | None:
        if not self.prog.tables[table].uses_priority:
            return None
        if priority >= MAX_PRIORITY:
            raise ControlError(f"priority {priority} cannot be had on the p4 target (P4Runtime priority is "
                               f"priority + 1, at most {MAX_PRIORITY})", f"0..{MAX_PRIORITY - 1}")
        return priority + 1

    def _items(self, table: str, e: Entry, with_action: bool = True) -> list[dict[str, Any]]:
        return entry_items(self.desc, self._desc_tables[table], e.match, e.action if with_action else None,
                           e.args, self._priority(table, e.priority))

    def _args(self, action: str, params: list[dict[str, Any]]) -> tuple[int, ...]:
        values = {p["name"]: int(p["value"], 16) for p in params}
        return tuple(values.get(p.name, 0) for p in self.prog.actions[action].params)

    def _entries(self, table: str, counters: bool) -> list[Entry]:
        cached = self._cache.get(table) if self._lock_depth and not counters else None
        if cached is not None:
            out = list(cached.values())
            if self.prog.tables[table].uses_priority:
                out.sort(key=lambda e: -e.priority)
            return out
        out = self._read_entries(table, counters)
        if self._lock_depth:
            self._cache[table] = {self._ident(table, e): replace(e, counter=None) for e in out}
        return out

    def _ident(self, table: str, e: Entry) -> tuple[Any, ...]:
        return entry_identity(self.prog.tables[table], e.match, e.priority)

    def _read_entries(self, table: str, counters: bool) -> list[Entry]:
        spec, t = self.prog.tables[table], self._desc_tables[table]
        counted = counters and spec.counters
        p4_tables = t["p4_tables"] if counted else t["p4_tables"][:1]
        try:
            items = self.ctl.read_items(p4_tables, counters=counted)
        except RuntimeError as exc:
            raise ControlError(f"P4Runtime: {exc}") from None
        first = t["p4_tables"][0]
        totals: dict[tuple[Any, ...], Counter] = {}
        out: list[Entry] = []
        for item in items:
            match = match_from_p4runtime(t, item["match"])
            priority = item.get("priority", 1) - 1 if spec.uses_priority else 0
            ident = entry_identity(spec, match, priority)
            if counted:  # a table applied from N places counts in N copies: the entry's count is their sum
                p, b = totals.get(ident, (0, 0))
                cp, cb = item.get("counter", (0, 0))
                totals[ident] = (p + cp, b + cb)
            if item["table"] == first:
                action = item["action"]["name"]
                out.append(Entry(match, action, self._args(action, item["action"]["params"]), priority,
                                 const=ident in self._const[table]))
        if counted:
            out = [Entry(e.match, e.action, e.args, e.priority,
                         totals.get(entry_identity(spec, e.match, e.priority), (0, 0)), e.const) for e in out]
        if spec.uses_priority:
            out.sort(key=lambda e: -e.priority)  # stable: equal priorities keep the switch's order
        return out

    def _insert(self, table: str, entry: Entry) -> None:
        self._write_all(table, "insert", self._items(table, entry), "delete",
                        self._items(table, entry, with_action=False), "add an entry")
        cached, ident = self._cache.get(table), self._ident(table, entry)
        if cached is not None and self._lock_depth:
            cached[ident] = replace(entry, counter=None, const=ident in self._const[table])

    def _modify(self, table: str, old: Entry, new: Entry) -> None:
        self._write_all(table, "modify", self._items(table, new), "modify", self._items(table, old),
                        "modify an entry")
        cached, ident = self._cache.get(table), self._ident(table, new)
        if cached is not None and self._lock_depth:
            cached[ident] = replace(new, counter=None, const=ident in self._const[table])

    def _remove(self, table: str, entry: Entry) -> None:
        self._write_all(table, "delete", self._items(table, entry, with_action=False), "insert",
                        self._items(table, entry), "delete an entry")
        cached = self._cache.get(table)
        if cached is not None and self._lock_depth:
            cached.pop(self._ident(table, entry), None)

    def _install_constants(self) -> None:
        """The spec's constant entries of every table in one WriteRequest (a fresh pipeline is empty)."""
        from .p4runtime_control import WriteError

        items: list[dict[str, Any]] = []
        for name, t in self.prog.tables.items():
            for e in t.entries:
                items += self._items(name, Entry(tuple(e.match), e.action.action, tuple(e.action.args), e.priority))
        try:
            self._write("insert", items)
        except WriteError as exc:
            raise ControlError(f"installing the spec's constant entries failed: {exc}") from None

    # ---- defaults
    def _set_default(self, table: str, action: str, args: tuple[int, ...]) -> None:
        t = self._desc_tables[table]
        old_action, old_args = self._get_default(table)
        self._write_all(table, "modify", default_items(self.desc, t, action, args), "modify",
                        default_items(self.desc, t, old_action, old_args), "set the default action")

    def _get_default(self, table: str) -> tuple[str, tuple[int, ...]]:
        t = self._desc_tables[table]
        try:
            items = self.ctl.read_items(t["p4_tables"][:1], defaults=True, entries=False)
        except RuntimeError as exc:
            raise ControlError(f"P4Runtime: {exc}") from None
        if not items:
            d = self.prog.tables[table].default
            return d.action, tuple(d.args)
        action = items[0]["action"]["name"]
        return action, self._args(action, items[0]["action"]["params"])

    def _default_counter(self, table: str) -> Counter | None:
        """Misses, summed over the table's copies: BMv2's direct counters do not count them, so the generated P4
        counts them in a one-element `<p4 table>__miss` counter."""
        if not self.prog.tables[table].counters:
            return None
        p = b = 0
        for p4t in self._desc_tables[table]["p4_tables"]:
            cp, cb = self._counter_elements(f"{p4t}__miss", 0).get(0, (0, 0))
            p, b = p + cp, b + cb
        return p, b

    # ---- counters and registers
    def _counter_elements(self, name: str, index: int | None) -> dict[int, Counter]:
        try:
            return self.ctl.counter_elements(name, index)
        except RuntimeError as exc:
            raise ControlError(f"P4Runtime: {exc}") from None

    def _counter_read(self, name: str, index: int | None) -> dict[int, Counter]:
        elems = self._counter_elements(name, index)
        if index is not None:
            return {index: elems.get(index, (0, 0))}
        return {i: v for i, v in sorted(elems.items()) if v != (0, 0)}

    def _counter_reset(self, name: str, index: int | None) -> None:
        """Element by element (BMv2 refuses a wildcard write); with no index, the elements that are not zero
        when read (one that counts its first packet after that read keeps it, as if it came after the reset)."""
        from .p4runtime_control import WriteError

        indices = [index] if index is not None else sorted(self._counter_read(name, None))
        try:
            self.ctl.counter_zero(name, indices)
        except WriteError as exc:
            if exc.code != "PERMISSION_DENIED":
                raise ControlError(f"P4Runtime: {exc}") from None
            self.ctl.connect(push=False, election_id=_election_id())
            self.ctl.counter_zero(name, indices)

    def _thrift_client(self) -> Any:
        """BMv2's P4Runtime server does not implement registers; Thrift does. Connected on first use, from
        inside the switch's network namespace."""
        if self._thrift is None:
            from .netns import entered
            from .thrift_api import ThriftClient

            if not switch_alive(self.record):
                raise ControlError(f"the switch of '{self.name}' is not running")
            client = ThriftClient(int(self.record.extra["thrift_port"]))
            try:  # netns.entered joins its argument to /run/netns: an absolute path stays as it is
                with entered(f"/proc/{int(self.record.extra['pid'])}/ns/net"):
                    client.connect()
            except Exception as exc:
                raise ControlError(f"cannot reach the switch's Thrift port {client.port}: {exc}") from None
            self._thrift = client
        return self._thrift

    def _register_read(self, name: str, index: int | None) -> dict[int, int]:
        client = self._thrift_client()
        if index is not None:
            return {index: int(client.client.bm_register_read(0, name, index))}
        return {i: v for i, v in enumerate(client.register_read_all(name)) if v}

    def _register_write(self, name: str, index: int, value: int) -> None:
        self._thrift_client().register_write(name, index, value)
