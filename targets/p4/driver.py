"""Runs generated P4 on BMv2 for real: p4c compiles it, `simple_switch_grpc` runs it in a private network
namespace with veth pairs, P4Runtime installs the tables, frames cross the veths.

Speed comes from batching without guessing. A vector's packets are sent back to back with the packets of
other vectors; BMv2's own log says, per packet, whether it was dropped or on which port it left
(targets/p4/bmv2_log.py), so no drop costs a timeout and every captured frame is attributed to the frame that
caused it. Programs with counters or registers are run one vector at a time, because each vector starts from
fresh state and its counters are read after each packet; their state goes over Thrift (registers, resets) and
P4Runtime (counter reads), never a CLI process per command.

A frame BMv2 sends to a port below the CPU port that has no interface yet (the examples forward to 16..78, the
port vectors to 16, 256, 509) makes the driver wire that port (a veth pair, Thrift `port_add`, a socket) and send
the frame again, so its bytes are compared like any other's; a program with state gets its registers back and
the second pass's counts taken out first (`rerun`), so the vector sees one pass.

Everything started here (namespace, switch) is torn down in `close`, which is also called after a failed
`open`. The pure pieces (command lines, mapping a fate and a capture to a Result) are functions so they can be
tested where BMv2 is not installed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from conformance.driver import Driver, DriverUnavailable
from conformance.model import ControlState, Counters, PacketIn, Registers, Result, replay

from . import P4_FEATURES, P4Target
from . import netns as nsutil
from .bmv2_log import Fate, LogTail
from .emitter import DEFAULT_CPU_PORT
from .entries import describe
from .netns import namespace_name, socket_dir, veth_names
from .pktio import PortSockets, kernel_refuses
from .thrift_api import ThriftClient
from .thrift_api import unavailable as thrift_unavailable

INSTALL_HINT = ("install p4c and BMv2: `bash ../shared/tools/p4/install.sh` where that directory exists, "
                "otherwise p4lang/p4c and p4lang/behavioral-model packages or sources (docs/targets/p4.md)")
TOOLS = ("p4c-bm2-ss", "simple_switch_grpc", "ip")
DATA_PORTS = 16  # ports 0..15 have a veth each from the start; vectors and the examples forward within them
MAX_WIRED = 128  # ports wired on demand beyond those (a veth, a BMv2 port and a socket each), per switch
THRIFT_PORT = 9090
START_TIMEOUT = 60.0  # simple_switch_grpc takes seconds to open its ports on a loaded 2-core machine
PACKET_TIMEOUT = 10.0  # for a whole batch to come out of BMv2; a healthy switch needs milliseconds
CAPTURE_GRACE = 0.5  # after BMv2 logged a frame as sent, for it to reach the capture
BATCH = 64  # frames per exchange: no more than an egress queue holds (64 in simple_switch), which drops silently

_counter = 0


def switch_command(ports: list[int], workdir: Path, sockets: Path, log_level: str = "debug") -> list[str]:
    """Debug logging is what reports each packet's fate; the pipeline comes later, over P4Runtime, on a unix
    socket (reachable from outside the namespace). The notification socket is private too: its default is one
    path in /tmp shared by every switch on the machine."""
    cmd = ["simple_switch_grpc", "--thrift-port", str(THRIFT_PORT), "--log-file", str(workdir / "switch"),
           "--log-flush", "-L", log_level, "--log-file-max-size", str(1 << 40), "--no-p4",
           "--notifications-addr", f"ipc://{sockets / 'notifications.ipc'}"]
    for p in ports:
        cmd += ["-i", f"{p}@{veth_names(p)[0]}"]
    return [*cmd, "--", "--grpc-server-addr", grpc_address(sockets)]


def grpc_address(sockets: Path) -> str:
    return f"unix:{sockets / 'grpc.sock'}"


def pair_captures(transmitted: dict[int, list[tuple[int, int]]], captured: dict[int, list[bytes]]) -> dict[int, bytes]:
    """Packet id -> the frame captured for it. Per port, transmissions and captures are in the same order; a
    transmission whose size the next capture does not have never arrived (the receiving kernel dropped it)."""
    out: dict[int, bytes] = {}
    for port, sends in transmitted.items():
        frames = captured.get(port, [])
        j = 0
        for pid, size in sends:
            if j < len(frames) and len(frames[j]) == size:
                out.setdefault(pid, frames[j])
                j += 1
    return out


def fate_verdict(fate: Fate, cpu_port: int) -> str:
    port = fate.out_ports[0]
    return "to_host" if port == cpu_port else "reflect" if port == fate.in_port else "forward"


def result_from_fate(fate: Fate, frame: bytes | None, cpu_port: int, wired: set[int]) -> Result:
    """BMv2 shows only where a frame left: dropped is drop, the CPU port is to_host, the ingress port is
    reflect (forward to the ingress port looks the same: `egress_only`), any other port is forward."""
    if fate.dropped or not fate.out_ports:
        return Result("drop", None, b"")
    port = fate.out_ports[0]
    if port not in wired:
        # BMv2 sent it to a port no interface is bound to: the frame is dropped there, as a port without a
        # mapping must drop it. Where it went is known (the log), its bytes are not (no capture).
        return Result("forward", port, b"", observations={
            "dropped": True, "frame_unseen": True,
            "p4": f"port {port} has no interface (ports 0..{DATA_PORTS - 1} and the CPU port {cpu_port} are "
                  "wired): BMv2 dropped the frame"})
    obs: dict[str, Any] = {"copies": len(fate.out_ports)} if len(fate.out_ports) > 1 else {}
    verdict = fate_verdict(fate, cpu_port)
    if verdict == "reflect":
        obs["egress_only"] = True
    return Result(verdict, None if verdict == "to_host" else port, frame or b"", observations=obs)


def grown(now: Counters, start: Counters) -> Counters:
    """What each counter added since `start` (counters only grow), zeros left out as the reference does."""
    out: Counters = {}
    for key, (p, b) in now.items():
        p0, b0 = start.get(key, (0, 0))
        if (p - p0, b - b0) != (0, 0):
            out[key] = (p - p0, b - b0)
    return out


def p4runtime_unavailable() -> str | None:
    """Why P4Runtime's Python modules do not load, or None. PyPI's p4runtime modules were generated by an old
    protoc: under protobuf >= 4 they raise TypeError on import; third_party/p4runtime is them regenerated."""
    hint = "install them with: pip install ./third_party/p4runtime 'c3po[p4]' (docs/targets/p4.md)"
    try:
        from p4.v1 import p4runtime_pb2  # noqa: F401
    except ImportError:
        return f"the Python package 'p4runtime' is missing: {hint}"
    except TypeError:
        return f"the installed p4runtime modules do not load under this protobuf runtime: {hint}"
    return None


class P4Driver(Driver):
    name = "p4"
    supports = P4_FEATURES
    known_deviations = Path(__file__).with_name("known_deviations.yaml")

    def __init__(self, cpu_port: int = DEFAULT_CPU_PORT, data_ports: int = DATA_PORTS, log_level: str = "debug") -> None:
        """`log_level` other than debug leaves BMv2 faster but blind: only benchmarks of BMv2 itself use it."""
        global _counter
        _counter += 1
        self.cpu_port = cpu_port
        self.ports = [*range(data_ports), cpu_port]
        self.ns = namespace_name(os.getpid(), _counter)
        self.sockets = socket_dir(self.ns)  # the switch's gRPC and notification sockets
        self.proc: subprocess.Popen[bytes] | None = None
        self.ns_created = False
        self.prog: ir.Program | None = None
        self.desc: dict[str, Any] = {}
        self.p4rt: Any = None
        self.thrift: ThriftClient | None = None
        self.socks: PortSockets | None = None
        self.log: LogTail | None = None
        self.stateful = False
        self.log_level = log_level
        self.counted: Counters = {}  # every counter as last read
        self.counts_stale = True  # until a read follows the last frame sent (a run that raised may skip it)
        # The control state the switch holds (None: unknown, after ops): the driver is its only writer, so an
        # install of the same state again writes nothing. Most conformance vectors install the empty state,
        # and each install is a Read and two Writes of every table.
        self.installed: ControlState | None = None
        self.rerun: Counters = {}  # counts of the frames sent again after wiring their port, not the program's
        self.registers_now: Registers = {}  # every nonzero register as last set or read

    @classmethod
    def unavailable(cls) -> str | None:
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            return f"p4c / simple_switch not found ({', '.join(missing)} missing): {INSTALL_HINT}"
        if os.geteuid() != 0:
            return "the P4 driver needs root (network namespaces and raw sockets)"
        reason = thrift_unavailable()
        if reason:
            return reason
        return p4runtime_unavailable()

    # --------------------------------------------------------------------------------------------- open/close
    def open(self, prog: ir.Program, workdir: Path) -> None:
        reason = self.unavailable()
        if reason:
            raise DriverUnavailable(reason)
        self.prog = prog
        target = P4Target(self.cpu_port)
        problems = [p for p in target.refusals(prog) if p.severity == "error"]
        if problems:
            raise DriverUnavailable("; ".join(p.message for p in problems))
        built = target.build(prog, workdir)  # the P4 source, the BMv2 JSON and the P4Info, as `c3po build` makes them
        self.desc = describe(prog, self.cpu_port)
        self.stateful = bool(prog.counters or prog.registers or any(t.counters for t in prog.tables.values()))
        try:
            self._start(workdir, built.files["bmv2_json"], built.files["p4info"])
        except BaseException:
            self.close()
            raise

    def _start(self, workdir: Path, bmv2: Path, p4info: Path) -> None:
        from .p4runtime_control import P4RuntimeControl

        nsutil.create(self.ns, self.ports)
        self.ns_created = True
        self.sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
        cmd = ["ip", "netns", "exec", self.ns, *switch_command(self.ports, workdir, self.sockets, self.log_level)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.log = LogTail(workdir / "switch.txt")
        deadline = time.monotonic() + START_TIMEOUT
        self.thrift = ThriftClient(THRIFT_PORT)
        while True:  # the Thrift port opens last: once it answers, gRPC is up too
            if self.proc.poll() is not None:
                raise RuntimeError(f"simple_switch_grpc exited with status {self.proc.returncode} on start "
                                   f"(log: {workdir / 'switch.txt'})")
            try:
                with nsutil.entered(self.ns):
                    self.thrift.connect()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"simple_switch_grpc did not open its Thrift port in {START_TIMEOUT:g} s: "
                                       f"{exc}") from None
                time.sleep(0.1)
        self.p4rt = P4RuntimeControl(grpc_address(self.sockets), p4info, bmv2, self.desc)
        self.p4rt.connect()
        self.installed = None
        self.socks = PortSockets(self.ns, self.ports)

    def close(self) -> None:
        for closer in (self.socks, self.thrift, self.p4rt):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()
        self.socks = self.thrift = self.p4rt = None
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
        if self.ns_created:
            nsutil.delete(self.ns)
            shutil.rmtree(self.sockets, ignore_errors=True)
            self.ns_created = False

    # ----------------------------------------------------------------------------------------- control plane
    def install(self, control: ControlState) -> None:
        wrote = bool(control.ops) or control != self.installed
        if control.ops:
            self.installed = None
            self._install_ops(control)
        elif wrote:
            self.installed = None  # until the writes succeed
            self.p4rt.install(control)
            self.installed = control
        # The new entries start at zero; the program's counters do not. Without a write, and with no frame sent
        # again since (whose counts `rerun` takes out of every read), the last read after a packet is still what
        # the switch holds: the driver is its only sender. That skips one P4Runtime Read per vector (~4 ms).
        if self.stateful and (wrote or self.rerun or self.counts_stale):
            self.rerun = {}  # (an entry's counter may restart under the same key: vectors only compare growth)
            self.counted = self._read_counters()
            self.counts_stale = False

    def _install_ops(self, control: ControlState) -> None:
        """A state with ops: every entry written as its own P4Runtime update, in order (INSERT, MODIFY, DELETE,
        a default's MODIFY), after the tables are emptied. Priorities: P4Runtime leaves ties to the target, so
        each entry that ever exists in a priority table (constant ones first, then in insertion order) gets a
        distinct P4Runtime priority ranking it by (spec priority, insertion order): the spec's "installed first
        wins" holds in every intermediate state, without rewriting entries already in the switch."""
        from p4.v1 import p4runtime_pb2

        from .entries import default_items, entry_items
        from .p4runtime_control import EntryKey, entry_key

        assert self.prog is not None
        prog, p4rt = self.prog, self.p4rt
        plan = replay(prog, control)
        tables = {t["name"]: t for t in self.desc["tables"]}
        # every incarnation: (table, match, priority); constants are -1, -2, ... per table, in spec order
        lives: dict[tuple[str, int], tuple[tuple[KeyElem, ...], int]] = {}
        for name, t in prog.tables.items():
            for i, ce in enumerate(t.entries):
                lives[(name, -1 - i)] = (tuple(ce.match), ce.priority)
        for i, e in enumerate(control.entries):
            lives[(e.table, i)] = (e.match, e.priority)
        for op, inc in zip(control.ops, plan.steps, strict=True):
            if op.op == "insert":
                lives[(op.table, inc)] = (op.match, op.priority)
        p4prio: dict[tuple[str, int], int | None] = {}
        for name, t in prog.tables.items():
            mine = [k for k in lives if k[0] == name]
            if not t.uses_priority:
                p4prio.update(dict.fromkeys(mine, None))
                continue
            # constants (negative ids, -1 first) before entries (ids ascending): insertion order
            order = sorted(mine, key=lambda k: (-lives[k][1], 0 if k[1] < 0 else 1, -k[1] if k[1] < 0 else k[1]))
            p4prio.update({k: len(order) - rank for rank, k in enumerate(order)})

        def items(table: str, inc: int, action: str | None, args: tuple[int, ...]) -> list[dict[str, Any]]:
            match, _ = lives[(table, inc)]
            return entry_items(self.desc, tables[table], match, action, args, p4prio[(table, inc)])

        p4rt.install(ControlState())  # empty tables, constant entries, the program's defaults
        for name, t in prog.tables.items():
            if t.uses_priority and t.entries and not any(p4rt._tables[x].is_const_table
                                                         for x in tables[name]["p4_tables"]):
                # the constant entries were ranked among themselves: rank them among everything this state
                # inserts (a delete names match and priority, as `install` gave them)
                ranked = sorted(range(len(t.entries)), key=lambda i: (-t.entries[i].priority, i))
                given = {i: len(ranked) - rank for rank, i in enumerate(ranked)}
                p4rt.write_items("delete", [it for i, ce in enumerate(t.entries) for it in entry_items(
                    self.desc, tables[name], tuple(ce.match), None, (), given[i])])
                for i, ce in enumerate(t.entries):
                    p4rt.write_items("insert", items(name, -1 - i, ce.action.action, tuple(ce.action.args)))
        for i, e in enumerate(control.entries):
            p4rt.write_items("insert", items(e.table, i, e.action, e.args))
        for tname, action, args in control.defaults:
            p4rt.write_items("modify", default_items(self.desc, tables[tname], action, args))
        for k, (op, inc) in enumerate(zip(control.ops, plan.steps, strict=True)):
            try:
                if op.op == "default":
                    p4rt.write_items("modify", default_items(self.desc, tables[op.table], op.action, op.args))
                elif op.op == "delete":
                    p4rt.write_items("delete", items(op.table, inc, None, ()))
                else:
                    p4rt.write_items(op.op, items(op.table, inc, op.action, op.args))
            except Exception as exc:
                raise RuntimeError(f"ops[{k}] ({op.op} in table '{op.table}'): {exc}") from None
        # per-entry counters: each surviving entry under its index in the image, as the reference counts them
        index: dict[EntryKey, tuple[str, int]] = {}
        counted = []
        per_table = {n: len(t.entries) for n, t in prog.tables.items()}
        for name, t in prog.tables.items():
            for i, ce in enumerate(t.entries):
                for it in items(name, -1 - i, ce.action.action, tuple(ce.action.args)):
                    index[entry_key(p4rt._table_entry(it))] = (name, i)
        by_position = {pos: inc for inc, pos in plan.position.items()}
        for pos, e in enumerate(plan.final.entries):
            inc = by_position[pos]
            for it in items(e.table, inc, e.action, e.args):
                te = p4rt._table_entry(it)
                index[entry_key(te)] = (e.table, per_table[e.table])
                if tables[e.table]["counters"]:
                    counted.append(p4runtime_pb2.TableEntry(table_id=te.table_id, match=te.match, priority=te.priority))
            per_table[e.table] += 1
        p4rt._index, p4rt._counted = index, counted

    def _set_registers(self, registers: Registers) -> None:
        """Give the registers the vector's values; nothing to do when they hold them already."""
        assert self.thrift is not None
        wanted = {k: v for k, v in registers.items() if v}
        if wanted == self.registers_now:
            return
        for name in sorted({name for name, _ in self.registers_now}):
            self.thrift.register_reset(name)
        for (name, idx), value in sorted(wanted.items()):
            self.thrift.register_write(name, idx, value)
        self.registers_now = wanted

    def _read_counters(self) -> Counters:
        """Every nonzero counter element as it stands (table entries by install index, -1 for misses, summed
        over table copies): the program's counters and the tables' in one P4Runtime Read."""
        assert self.prog is not None
        counted = any(t["counters"] for t in self.desc["tables"])
        if not (self.prog.counters or counted):
            return {}
        counters: Counters = self.p4rt.read_counters(sorted(self.prog.counters), tables=counted)
        return grown(counters, self.rerun) if self.rerun else counters

    # ------------------------------------------------------------------------------------------ ports on demand
    def _wire_unseen(self, results: list[Result]) -> bool:
        """Wire the ports below the CPU port that results went to without an interface (up to MAX_WIRED);
        whether any was wired, so the frames can be sent again and captured."""
        assert self.socks is not None and self.thrift is not None
        room = MAX_WIRED - (len(self.socks.by_port) - len(self.ports))
        new = sorted({r.port for r in results if r.observations.get("frame_unseen") and r.port is not None
                      and 0 <= r.port < self.cpu_port and r.port not in self.socks.by_port})[:max(room, 0)]
        if not new:
            return False
        nsutil.add_pairs(self.ns, new)
        with nsutil.entered(self.ns):
            for p in new:
                self.thrift.port_add(veth_names(p)[0], p)
        self.socks.add(self.ns, new)
        return True

    def _again(self, pkt: PacketIn, before: Registers) -> Result:
        """Send a stateful program's frame again once its port is wired: the registers as they were before the
        first pass, and what the second pass counts kept in `rerun` (taken out of every read)."""
        assert self.prog is not None
        if self.prog.registers:
            self.registers_now = self._read_registers()
            self._set_registers(before)
        start = self._read_counters()
        r = self.exchange([pkt])[0]
        extra = grown(self._read_counters(), start)
        for key, (p, b) in extra.items():
            p0, b0 = self.rerun.get(key, (0, 0))
            self.rerun[key] = (p0 + p, b0 + b)
        return r

    def _read_registers(self) -> Registers:
        assert self.prog is not None and self.thrift is not None
        registers: Registers = {}
        for r in sorted(self.prog.registers):
            for i, v in enumerate(self.thrift.register_read_all(r)):
                if v:
                    registers[(r, i)] = v
        return registers

    # --------------------------------------------------------------------------------------------- data plane
    def exchange(self, packets: list[PacketIn]) -> list[Result]:
        """Send the frames back to back and wait for BMv2 to finish every one; results in input order."""
        assert self.socks is not None and self.log is not None
        results: list[Result | None] = [None] * len(packets)
        sent: dict[int, list[int]] = {}  # port -> indices into packets, in send order
        for i, pkt in enumerate(packets):
            if pkt.port not in self.socks.by_port:
                results[i] = Result("drop", None, b"", error=f"N/A: port {pkt.port} has no interface here "
                                    f"(0..{DATA_PORTS - 1} and the CPU port {self.cpu_port} are wired)")
            elif (why := kernel_refuses(pkt.data)) is not None:
                results[i] = Result("drop", None, b"", error=f"N/A: {why}")
            else:
                sent.setdefault(pkt.port, []).append(i)
        total = sum(len(v) for v in sent.values())
        if not total:
            return [r for r in results if r is not None]
        self.log.mark()
        self.socks.take()
        queues = {port: collections.deque(idx) for port, idx in sent.items()}
        pushed = dict.fromkeys(sent, 0)
        deadline = time.monotonic() + PACKET_TIMEOUT
        while True:
            self.log.poll()
            for port, queue in queues.items():
                # One frame at a time per port (see bmv2_log): the next goes once BMv2 has taken the last.
                if queue and self.log.received.get(port, 0) >= pushed[port]:
                    i = queue.popleft()
                    self.socks.send(port, packets[i].data)
                    pushed[port] += 1
                    deadline = time.monotonic() + PACKET_TIMEOUT
            self.socks.drain(0.0002)
            fates = self.log.fates
            if not any(queues.values()) and len(fates) >= total and all(f.done for f in fates.values()):
                want = self.log.transmitted_counts()
                if all(len(self.socks.captured.get(p, [])) >= n for p, n in want.items() if p in self.socks.by_port):
                    break
                # BMv2 is done; a frame it sent that never arrives was dropped by the receiving kernel
                deadline = min(deadline, time.monotonic() + CAPTURE_GRACE)
                if time.monotonic() > deadline:
                    break
            elif time.monotonic() > deadline:
                return self._timed_out(results, sent)
        received = self.log.received_on()
        if any(len(received.get(p, [])) != len(idx) for p, idx in sent.items()) or len(fates) != total:
            got = {p: len(v) for p, v in received.items()}
            raise RuntimeError(f"BMv2 received {got} frames per port, {({p: len(v) for p, v in sent.items()})} were sent")
        pid_of: dict[int, int] = {}
        for port, idx in sent.items():
            for i, pid in zip(idx, received[port], strict=True):
                pid_of[i] = pid
        frame_of = pair_captures(self.log.transmitted, self.socks.take())
        wired = set(self.socks.by_port)
        for i, pid in pid_of.items():
            fate = fates[pid]
            if not fate.dropped and fate.out_ports and fate.out_ports[0] in wired and pid not in frame_of:
                results[i] = Result(fate_verdict(fate, self.cpu_port), fate.out_ports[0], b"", error=(
                    f"N/A: BMv2 sent the frame out of port {fate.out_ports[0]}, but Linux dropped it before any "
                    "packet socket saw it (a frame a veth cannot carry, e.g. a VLAN tag cut short)"))
                continue
            results[i] = result_from_fate(fate, frame_of.get(pid), self.cpu_port, wired)
        return [r for r in results if r is not None]

    def _timed_out(self, results: list[Result | None], sent: dict[int, list[int]]) -> list[Result]:
        assert self.log is not None
        done = sum(1 for f in self.log.fates.values() if f.done)
        total = sum(len(v) for v in sent.values())
        got = {p: len(v) for p, v in self.log.received_on().items()}
        msg = (f"BMv2 finished {done} of {total} frames in {PACKET_TIMEOUT:g} s; frames per port sent "
               f"{ {p: len(v) for p, v in sorted(sent.items())} }, received {dict(sorted(got.items()))}")
        return [r if r is not None else Result("drop", None, b"", error=msg) for r in results]

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        return self.run_batch([(packets, registers)])[0]

    def run_batch(self, batch: list[tuple[list[PacketIn], Registers]]) -> list[list[Result]]:
        if not self.stateful:
            flat = [p for packets, _ in batch for p in packets]
            results: list[Result] = []
            for first in range(0, len(flat), BATCH):
                chunk = self.exchange(flat[first:first + BATCH])
                if self._wire_unseen(chunk):  # stateless: the frames that found no interface go again
                    again = [i for i, r in enumerate(chunk) if r.observations.get("frame_unseen")]
                    for i, r in zip(again, self.exchange([flat[first + i] for i in again]), strict=True):
                        chunk[i] = r
                results += chunk
            out, pos = [], 0
            for packets, _ in batch:
                out.append(results[pos:pos + len(packets)])
                pos += len(packets)
            return out
        # With state, one vector at a time: its registers set, its packets one by one, the state read after
        # each. Counters are never reset: a vector's counts are what they grew by since it started.
        out = []
        self.counts_stale = True
        for packets, registers in batch:
            self._set_registers(registers)
            start = self.counted
            vec: list[Result] = []
            for pkt in packets:
                before = dict(self.registers_now)
                r = self.exchange([pkt])[0]
                if self._wire_unseen([r]):
                    r = self._again(pkt, before)
                if r.error is None or not r.error.startswith("N/A"):  # a frame not sent changes nothing
                    self.counted = self._read_counters()
                    if self.prog is not None and self.prog.registers:
                        self.registers_now = self._read_registers()
                r.counters, r.registers = grown(self.counted, start), dict(self.registers_now)
                vec.append(r)
            out.append(vec)
        self.counts_stale = False  # every frame sent was read after (or sent nothing)
        return out
