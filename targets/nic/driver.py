"""The conformance driver for the NIC target: the generated C, run natively (ctypes) or under ASan/UBSan.

Native mode builds the program plus a host shim into one shared object (gcc -O2) and runs a whole packet batch
per foreign call. Sanitizer mode (`NicDriver(sanitize=True)` or `C3PO_NIC_SANITIZE=1`) builds a standalone
harness executable with -fsanitize=address,undefined and talks to it over a pipe: ASan cannot be loaded into a
running Python without LD_PRELOAD games, and a separate process turns any finding into a clean error.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from conformance.driver import Driver, DriverUnavailable
from conformance.model import (
    ControlState,
    Counters,
    EntryState,
    PacketIn,
    Registers,
    Result,
    final_state,
    replay,
)

from . import NicTarget
from .contracts import COUNTER_SENTINEL, check_table
from .emitter import match_bytes, nbytes
from .render import HERE
from .toolchain import ToolchainError, build_harness, build_shared, compiler, run_cc

__all__ = ["NicDriver"]

VERDICTS = {0: "drop", 1: "to_host", 2: "reflect", 3: "forward"}
ERRORS = {-1: "FULL", -2: "EXISTS", -3: "ARG", -4: "NOENT"}  # the C API's return codes (c3po_nic.h)
DEFAULT_HANDLE = 0xFFFFFFFF
FULL, EXISTS, ARG, NOENT = -1, -2, -3, -4
STALE_PROBES = 4  # deleted handles probed per table
BATCH_C = HERE / "runtime" / "batch.c"
BATCH_OPS = {"add": 0, "lookup": 1, "modify": 2, "delete": 3}  # the calls batch.c makes, by op code
HARNESS_FILL_MAX = 1024  # the sanitizer harness (a pipe, ~10 us a call) fills only tables up to this size
# vectors per open whose first grown frame (first frame, in a program that cannot grow frames or a vector where
# none grew) is run again at its exact capacity (SharedObject.capacity_probe)
CAPACITY_PROBES = {"grown": 64, "first": 16}
_ZERO = {"exact": KeyElem("value", 0), "lpm": KeyElem("prefix", 0, 0), "ternary": KeyElem("mask", 0, 0),
         "range": KeyElem("range", 0, 0)}  # a well-formed match to hand an add that must refuse it anyway


@dataclass
class Watch:
    kind: int  # 0: table entry counter (the only kind watched; counters and registers come from the touch log)
    id: int
    idx: int
    key: tuple[str, int]


# What a backend reports per packet: verdict code, egress port, output bytes, and change records (tag, v1, v2):
# a tag below TOUCHED is a watch index whose value changed; from TOUCHED on it names a counter (kind 1) or
# register (kind 2) element the packet wrote, with its value now (see host_shim.c.j2). Plain tuples: the driver
# builds hundreds of thousands of them per second.
RawResult = tuple[int, int, bytes, list[tuple[int, int, int]]]
TOUCHED = 1 << 63


def touched(tag: int) -> tuple[int, int, int]:
    """(kind, id, index) of a touched element's tag."""
    return (tag >> 56) & 0x7F, (tag >> 32) & 0xFFFFFF, tag & 0xFFFFFFFF


class Backend(Protocol):
    def reinit(self) -> None: ...
    def add(self, table: int, match: bytes, priority: int, action: int, args: bytes) -> int: ...
    def set_default(self, table: int, action: int, args: bytes) -> int: ...
    def lookup(self, table: int, match: bytes, priority: int) -> int: ...
    def modify(self, table: int, handle: int, action: int, args: bytes) -> int: ...
    def delete(self, table: int, handle: int) -> int: ...
    def table_counter(self, function: str, handle: int) -> int | None: ...
    def watch(self, watches: list[Watch]) -> None: ...
    def reset(self, regs: list[tuple[int, int, bytes]]) -> None: ...
    def run(self, packets: list[PacketIn]) -> list[RawResult]: ...
    def close(self) -> None: ...


def _u32(values: list[int]) -> ctypes.Array[ctypes.c_uint32]:
    arr = array.array("I", values or [0])
    return (ctypes.c_uint32 * len(arr)).from_buffer(arr)


class ShimStats(NamedTuple):
    full_clears: int  # resets that zeroed every counter and register element (O(state size))
    cleared: int  # elements zeroed one by one by the other resets (O(elements written))
    reads: int  # counter, register and table-counter element reads (watches and the touch log)


class SharedObject:
    """ctypes over lib<prog>_nic.so; one call per batch of packets."""

    def __init__(self, so: Path, growth: int = 1024) -> None:
        self.growth = growth  # the most a frame can grow (headers added by set_valid)
        self.so = so
        self.batcher: Any = None
        lib = ctypes.CDLL(str(so))
        vp, u32, i32, u8p = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32, ctypes.c_char_p
        lib.shim_new.restype = vp
        lib.shim_free.argtypes = [vp]
        lib.shim_reinit.argtypes = [vp]
        lib.shim_add.argtypes = [vp, u32, u8p, i32, u32, u8p]
        lib.shim_set_default.argtypes = [vp, u32, u32, u8p]
        lib.shim_delete.argtypes = [vp, u32, u32]
        lib.shim_lookup.argtypes = [vp, u32, u8p, i32]
        lib.shim_modify.argtypes = [vp, u32, u32, u32, u8p]
        lib.shim_process.argtypes = [vp, u8p, ctypes.POINTER(u32), u32, u32, ctypes.POINTER(u32)]
        lib.shim_watch.argtypes = [vp, u32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.shim_reset.argtypes = [vp, u32, ctypes.c_void_p, ctypes.c_void_p, u8p]
        lib.shim_run.restype = u32
        lib.shim_run.argtypes = [vp, u32, u8p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                 u32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.shim_changes.restype = ctypes.POINTER(ctypes.c_uint64)
        lib.shim_changes.argtypes = [vp]
        lib.shim_bench.restype = ctypes.c_uint64
        lib.shim_bench.argtypes = [vp, u32, u8p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, u32]
        lib.shim_stats.argtypes = [vp, ctypes.c_void_p]
        lib.shim_state_size.restype = ctypes.c_size_t
        lib.shim_state.restype = vp
        lib.shim_state.argtypes = [vp]
        self.lib = lib
        self.counters: dict[str, Any] = {}
        self.handle = lib.shim_new()
        if not self.handle:
            raise MemoryError("nic: could not allocate the program state")
        self.n_watch = 0

    def reinit(self) -> None:
        self.lib.shim_reinit(self.handle)

    def add(self, table: int, match: bytes, priority: int, action: int, args: bytes) -> int:
        return int(self.lib.shim_add(self.handle, table, match + b"\0", priority, action, args + b"\0" * 17))

    def set_default(self, table: int, action: int, args: bytes) -> int:
        return int(self.lib.shim_set_default(self.handle, table, action, args + b"\0" * 17))

    def lookup(self, table: int, match: bytes, priority: int) -> int:
        return int(self.lib.shim_lookup(self.handle, table, match + b"\0", priority))

    def modify(self, table: int, handle: int, action: int, args: bytes) -> int:
        return int(self.lib.shim_modify(self.handle, table, handle, action, args + b"\0" * 17))

    def delete(self, table: int, handle: int) -> int:
        return int(self.lib.shim_delete(self.handle, table, handle))

    def table_counter(self, function: str, handle: int) -> int | None:
        """The return code of the program's own `<prog>_<table>_counter(st, handle, ...)` (the shim's watches
        read counters but drop the code)."""
        return self.counter_values(function, handle)[0]

    def counter_values(self, function: str, handle: int) -> tuple[int, int, int]:
        """`<prog>_<table>_counter(st, handle, &packets, &bytes)`: its code and what it wrote in the two outputs
        (they hold `COUNTER_SENTINEL` before the call)."""
        fn = self.counters.get(function)
        if fn is None:
            fn = getattr(self.lib, function)
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_uint64),
                           ctypes.POINTER(ctypes.c_uint64)]
            self.counters[function] = fn
        pk, by = ctypes.c_uint64(COUNTER_SENTINEL), ctypes.c_uint64(COUNTER_SENTINEL)
        rc = int(fn(self.lib.shim_state(self.handle), handle, ctypes.byref(pk), ctypes.byref(by)))
        return rc, pk.value, by.value

    def table_calls(self, op: str, table: int, subjects: Sequence[bytes] | Sequence[int], action: int = 0,
                    args: bytes = b"") -> list[int]:
        """One table API call per subject, all in one foreign call (batch.c): "add" (action, args) and "lookup"
        of each match (priority 0; the matches of one table all have the same length), "modify" (action, args)
        and "delete" of each handle. Their return codes."""
        n = len(subjects)
        if n == 0:
            return []
        if self.batcher is None:
            digest = hashlib.sha256(BATCH_C.read_bytes()).hexdigest()[:12]
            lib_path = self.so.parent / f"c3po_batch_{digest}.so"
            if not lib_path.exists():
                run_cc([compiler(), "-std=gnu99", "-O2", "-shared", "-fPIC", str(BATCH_C), "-o", str(lib_path)])
            self.batcher = ctypes.CDLL(str(lib_path)).c3po_batch
            self.batcher.restype = None
        pad = b"\0" * 17  # as the single calls pass them: a decode may read a byte past its input
        head = args + pad
        if op in ("add", "lookup"):
            matches = [bytes(m) for m in subjects]  # type: ignore[arg-type]
            stride = len(matches[0]) + 1
            blob = head + b"\0".join(matches) + pad
            moff = array.array("I", range(len(head), len(head) + n * stride, stride))
            xs = array.array("q", bytes(8 * n))
        else:
            blob, moff = head, array.array("I", bytes(4 * n))
            xs = array.array("q", [int(h) for h in subjects])  # type: ignore[arg-type]
        rc = array.array("i", bytes(4 * n))

        def buf(a: array.array[Any], ctype: Any) -> Any:
            return (ctype * n).from_buffer(a)

        fn = ctypes.cast
        self.batcher(ctypes.c_void_p(self.handle), fn(self.lib.shim_add, ctypes.c_void_p),
                     fn(self.lib.shim_lookup, ctypes.c_void_p), fn(self.lib.shim_modify, ctypes.c_void_p),
                     fn(self.lib.shim_delete, ctypes.c_void_p), ctypes.c_uint32(n), bytes([BATCH_OPS[op]]) * n,
                     buf(array.array("I", [table]) * n, ctypes.c_uint32), buf(xs, ctypes.c_int64),
                     buf(array.array("I", [action]) * n, ctypes.c_uint32), blob, buf(moff, ctypes.c_uint32),
                     buf(array.array("I", bytes(4 * n)), ctypes.c_uint32), buf(rc, ctypes.c_int32))
        return rc.tolist()

    def process_one(self, p: PacketIn, cap: int) -> tuple[int, int, bytes]:
        """One frame through `<prog>_process` in a buffer of exactly `cap` bytes (the shim's batches give every
        frame room to grow): verdict code, egress port, output bytes. Not logged for the touch log (the shim
        then clears counters and registers in full at the next reset)."""
        buf = ctypes.create_string_buffer(max(cap, 1))
        ctypes.memmove(buf, p.data, len(p.data))
        n, port = ctypes.c_uint32(len(p.data)), ctypes.c_uint32(0)
        code = int(self.lib.shim_process(self.handle, buf, ctypes.byref(n), cap, p.port & 0xFFFFFFFF,
                                         ctypes.byref(port)))
        return code, port.value, buf.raw[:n.value]

    def capacity_probe(self, p: PacketIn) -> str | None:
        """The capacity contract of `<prog>_process` (docs/targets/nic.md: `cap` is the buffer's size,
        encapsulation may grow a frame up to it, a frame that would not fit is dropped): the frame is run in the
        state as it is with room to spare, then in a buffer of exactly the larger of its input's and output's
        lengths (the same result), and, when it grew, one byte shorter (a drop). The state is restored after
        each run. What went wrong, or None."""
        size = self.state_size()
        st = self.lib.shim_state(self.handle)
        saved = ctypes.create_string_buffer(size)
        ctypes.memmove(saved, st, size)
        try:
            roomy = self.process_one(p, len(p.data) + self.growth)
            ctypes.memmove(st, saved, size)
            cap = max(len(p.data), len(roomy[2]))
            exact = self.process_one(p, cap)
            ctypes.memmove(st, saved, size)
            if not _same(exact, roomy):
                return (f"in a buffer of exactly {cap} bytes (its input is {len(p.data)}), the frame gives "
                        f"{_show(exact)}, with room to spare {_show(roomy)}")
            if VERDICTS.get(roomy[0], "drop") == "drop" or len(roomy[2]) <= len(p.data):
                return None
            short = self.process_one(p, cap - 1)
            if VERDICTS.get(short[0], "drop") != "drop":
                return (f"in a buffer one byte short of its output's {cap} bytes, the frame gives {_show(short)}, "
                        "not a drop")
            return None
        finally:
            ctypes.memmove(st, saved, size)

    def watch(self, watches: list[Watch]) -> None:
        self.n_watch = len(watches)
        self.lib.shim_watch(self.handle, len(watches), _u32([w.kind for w in watches]), _u32([w.id for w in watches]),
                            _u32([w.idx for w in watches]))

    def reset(self, regs: list[tuple[int, int, bytes]]) -> None:
        blob = b"".join(v.ljust(16, b"\0")[:16] for _, _, v in regs) or b"\0" * 16
        self.lib.shim_reset(self.handle, len(regs), _u32([r[0] for r in regs]), _u32([r[1] for r in regs]), blob)

    @staticmethod
    def pack(packets: list[PacketIn]) -> tuple[bytes, list[int], list[int], list[int]]:
        offs, lens, off = [], [], 0
        for p in packets:
            offs.append(off)
            lens.append(len(p.data))
            off += len(p.data)
        return b"".join(p.data for p in packets) + b"\0", offs, lens, [p.port & 0xFFFFFFFF for p in packets]

    def run(self, packets: list[PacketIn]) -> list[RawResult]:
        out: list[RawResult] = []
        start = 0
        while start < len(packets):
            batch = packets[start:start + 4096]
            blob, offs, lens, ports = self.pack(batch)
            n = len(batch)
            stride = max(lens) + self.growth
            obuf = ctypes.create_string_buffer(n * stride)
            olen, verd, oport, nchg = (ctypes.c_uint32 * n)(), (ctypes.c_int32 * n)(), (ctypes.c_uint32 * n)(), \
                (ctypes.c_uint32 * n)()
            done = self.lib.shim_run(self.handle, n, blob, _u32(offs), _u32(lens), _u32(ports), obuf, stride, olen,
                                     verd, oport, nchg)
            if done != n:
                raise MemoryError("nic: the host shim could not grow its change log")
            raw = obuf.raw
            # bulk conversions: indexing ctypes arrays element by element is slow
            counts, lens_out, verdicts, ports_out = list(nchg), list(olen), list(verd), list(oport)
            total = 3 * sum(counts)
            flat = self.lib.shim_changes(self.handle)[:total] if total else []
            k = 0
            for i in range(done):
                c = counts[i]
                changes = [(flat[j], flat[j + 1], flat[j + 2]) for j in range(3 * k, 3 * (k + c), 3)] if c else []
                k += c
                out.append((verdicts[i], ports_out[i], raw[i * stride:i * stride + lens_out[i]], changes))
            start += done
        return out

    def bench(self, packets: list[PacketIn], rounds: int) -> int:
        blob, offs, lens, ports = self.pack(packets)
        return int(self.lib.shim_bench(self.handle, len(packets), blob, _u32(offs), _u32(lens), _u32(ports), rounds))

    def state_size(self) -> int:
        return int(self.lib.shim_state_size())

    def stats(self) -> ShimStats:
        """The shim's cost counters so far: what shows whether a vector cost O(touched) or O(state size)."""
        out = (ctypes.c_uint64 * 3)()
        self.lib.shim_stats(self.handle, out)
        return ShimStats(*out)

    def close(self) -> None:
        if self.handle:
            self.lib.shim_free(self.handle)
            self.handle = None


def _same(a: tuple[int, int, bytes], b: tuple[int, int, bytes]) -> bool:
    """Two runs' results alike where the API defines them: the verdict, and for a frame sent its bytes, and for
    a forward its port (a dropped frame's content and a port of another verdict are unspecified)."""
    verdict = VERDICTS.get(a[0], "drop")
    return verdict == VERDICTS.get(b[0], "drop") and (verdict == "drop" or (
        a[2] == b[2] and (verdict != "forward" or a[1] == b[1])))


def _show(r: tuple[int, int, bytes]) -> str:
    return f"{VERDICTS.get(r[0], r[0])} to port {r[1]}, {len(r[2])} bytes {r[2].hex()}"


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child between fork and exec only calls it
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the harness's child before exec: SIGKILL when the process that started it dies. The conformance runner
    kills a worker whose vector hangs (a mutant looping forever in the harness); without this the harness went on
    spinning, orphaned (a mutation campaign left dozens of them)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Harness:
    """The sanitizer harness process; any ASan/UBSan finding kills it and surfaces as an error with its report."""

    def __init__(self, exe: Path) -> None:
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_die_with_parent)

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
        except BrokenPipeError:
            reply = ""
        if not reply:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"nic sanitizer harness died:\n{err}")
        return reply.strip()

    @staticmethod
    def hx(b: bytes) -> str:
        return b.hex() or "-"

    def reinit(self) -> None:
        self.ask("init")

    @classmethod
    def line(cls, op: str, args: tuple[Any, ...]) -> str:
        """The protocol line of a table API call (`SharedObject.batch`'s ops and arguments)."""
        if op == "add":
            table, match, priority, action, a = args
            return f"add {table} {priority} {action} {cls.hx(match)} {cls.hx(a)}"
        if op == "set_default":
            table, action, a = args
            return f"def {table} {action} {cls.hx(a)}"
        if op == "lookup":
            table, match, priority = args
            return f"look {table} {priority} {cls.hx(match)}"
        if op == "modify":
            table, handle, action, a = args
            return f"mod {table} {handle} {action} {cls.hx(a)}"
        table, handle = args
        return f"del {table} {handle}"

    def add(self, table: int, match: bytes, priority: int, action: int, args: bytes) -> int:
        return int(self.ask(self.line("add", (table, match, priority, action, args))))

    def set_default(self, table: int, action: int, args: bytes) -> int:
        return int(self.ask(self.line("set_default", (table, action, args))))

    def lookup(self, table: int, match: bytes, priority: int) -> int:
        return int(self.ask(self.line("lookup", (table, match, priority))))

    def modify(self, table: int, handle: int, action: int, args: bytes) -> int:
        return int(self.ask(self.line("modify", (table, handle, action, args))))

    def delete(self, table: int, handle: int) -> int:
        return int(self.ask(self.line("delete", (table, handle))))

    def table_calls(self, op: str, table: int, subjects: Sequence[bytes] | Sequence[int], action: int = 0,
                    args: bytes = b"") -> list[int]:
        """`SharedObject.table_calls` over the pipe."""
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for x in subjects:
            calls.append((op, (table, x, 0, action, args) if op == "add" else (table, x, 0) if op == "lookup"
                          else (table, x, action, args) if op == "modify" else (table, x)))
        return self.batch(calls)

    def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]], chunk: int = 256) -> list[int]:
        """The calls pipelined, `chunk` lines written before their replies are read (the replies are a few bytes
        each, far below what the pipe holds, so neither side blocks on the other)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out: list[int] = []
        for i in range(0, len(calls), chunk):
            part = calls[i:i + chunk]
            try:
                self.proc.stdin.write("".join(self.line(op, args) + "\n" for op, args in part))
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            for _ in part:
                reply = self.proc.stdout.readline()
                if not reply:
                    err = self.proc.stderr.read() if self.proc.stderr else ""
                    raise RuntimeError(f"nic sanitizer harness died:\n{err}")
                out.append(int(reply))
        return out

    def table_counter(self, function: str, handle: int) -> int | None:
        return None  # the harness has no command for it (its watches read counters, as the shared object's do)

    def counter_values(self, function: str, handle: int) -> tuple[int, int, int] | None:
        return None

    def watch(self, watches: list[Watch]) -> None:
        self.ask("watch " + " ".join([str(len(watches))] + [f"{w.kind} {w.id} {w.idx}" for w in watches]))

    def reset(self, regs: list[tuple[int, int, bytes]]) -> None:
        items = [f"{r} {i} {v.ljust(16, bytes(1))[:16].hex()}" for r, i, v in regs]
        self.ask("reset " + " ".join([str(len(regs)), *items]))

    def run(self, packets: list[PacketIn]) -> list[RawResult]:
        out = []
        for p in packets:
            parts = self.ask(f"pkt {p.port & 0xFFFFFFFF} {self.hx(p.data)}").split()
            n = int(parts[3])
            changes = [(int(parts[4 + 3 * j]), int(parts[5 + 3 * j]), int(parts[6 + 3 * j])) for j in range(n)]
            data = b"" if parts[2] == "-" else bytes.fromhex(parts[2])
            out.append((int(parts[0]), int(parts[1]), data, changes))
        return out

    def fuzz(self, seed: int, count: int, ntables: int, seeds: list[bytes]) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"fuzz {seed} {count} {ntables} {len(seeds)}\n")
        for s in seeds:
            self.proc.stdin.write((s.hex() or "00") + "\n")
        return self.ask("")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):  # a harness that died leaves a broken pipe to flush
                    f.close()


def max_growth(prog: ir.Program) -> int:
    """An upper bound of how much a frame can grow: every header a program can add, at its largest."""
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    added = {s.instance for body in bodies for s in ir.walk_stmts(body) if isinstance(s, ir.SetValid) and s.valid}
    return sum(prog.instances[n].type.max_bytes * max(prog.instances[n].stack, 1) for n in added) + 16


class NicDriver(Driver):
    name = "nic"
    supports = NicTarget.supports

    def __init__(self, sanitize: bool | None = None) -> None:
        if sanitize is None:
            sanitize = os.environ.get("C3PO_NIC_SANITIZE", "") not in ("", "0")
        self.sanitize = sanitize
        self.prog: ir.Program | None = None
        self.backend: Backend | None = None
        self.table_ids: dict[str, int] = {}
        self.action_ids: dict[str, int] = {}
        self.watches: list[Watch] = []
        self.contract: str | None = None  # what the table fill found wrong (contracts.py), once checked
        self.contract_checked = False
        self.capacity_probes = dict.fromkeys(CAPACITY_PROBES, 0)

    @classmethod
    def unavailable(cls) -> str | None:
        if shutil.which("gcc") is None and shutil.which("clang") is None:
            return "the nic driver needs a C compiler: apt-get install gcc"
        return None

    def open(self, prog: ir.Program, workdir: Path) -> None:
        reason = self.unavailable()
        if reason:
            raise DriverUnavailable(reason)
        problems = NicTarget().refusals(prog)
        if problems:
            raise DriverUnavailable("; ".join(p.message for p in problems))
        self.prog = prog
        self.contract, self.contract_checked = None, False
        self.capacity_probes = dict.fromkeys(CAPACITY_PROBES, 0)
        self.table_ids = {n: i for i, n in enumerate(prog.tables)}
        self.action_ids = {n: i for i, n in enumerate(prog.actions)}
        out = workdir / ("nic-asan" if self.sanitize else "nic")
        try:
            if self.sanitize:
                self.backend = Harness(build_harness(prog, out))
            else:
                self.backend = SharedObject(build_shared(prog, out), max_growth(prog))
        except ToolchainError as exc:
            raise RuntimeError(f"nic: building {prog.name} failed: {exc}") from None
        self.install(ControlState(), refusals=False)  # a wrong answer is the vectors' ERROR, not a failed open

    def _require(self) -> tuple[ir.Program, Backend]:
        if self.prog is None or self.backend is None:
            raise RuntimeError("NicDriver: open() a program first")
        return self.prog, self.backend

    def _args(self, t: ir.Table, action: str, args: tuple[int, ...], default: bool = False) -> bytes:
        prog, _ = self._require()
        if action not in t.actions and action != t.default.action and not (default and action == "nop"):
            raise ValueError(f"table '{t.name}' has no action '{action}' (it has {', '.join(t.actions)})")
        params = prog.actions[action].params
        if len(args) != len(params):
            raise ValueError(f"action '{action}' takes {len(params)} argument(s), {len(args)} given")
        return b"".join((a & ((1 << p.width) - 1)).to_bytes(nbytes(p.width), "big")
                        for a, p in zip(args, params, strict=True))

    def install(self, control: ControlState, refusals: bool = True) -> None:
        """Install a vector's state. With `refusals` (every vector's install), the first call that installs
        also fills each table to its size (`_check_contracts`, then installs the state again), and a contract it
        found broken is every vector's error from then on."""
        _, be = self._require()
        if self.contract:
            raise ValueError(f"nic table API contract: {self.contract}")
        self._install(control, refusals)
        if refusals and not self.contract_checked and isinstance(be, (SharedObject, Harness)):
            self.contract_checked = True  # before the check: a crash in it is not retried for every vector
            self.contract = self._check_contracts()
            if self.contract:
                raise ValueError(f"nic table API contract: {self.contract}")
            self._install(control, refusals=False)

    def _install(self, control: ControlState, refusals: bool) -> None:
        prog, be = self._require()
        be.reinit()
        index = {name: len(t.entries) for name, t in prog.tables.items()}
        handles: dict[str, list[tuple[int, int]]] = {name: [(i, i) for i in range(len(t.entries))]
                                                     for name, t in prog.tables.items()}
        incarnations: dict[int, int] = {}  # the entry's number in `control.entries` -> its C handle
        for n, e in enumerate(control.entries):
            t = prog.tables.get(e.table)
            if t is None:
                raise ValueError(f"control state names unknown table '{e.table}'")
            if len(e.match) != len(t.keys):
                raise ValueError(f"an entry of table '{t.name}' has {len(e.match)} match values for {len(t.keys)} keys")
            args = self._args(t, e.action, e.args)
            i = index[e.table]
            index[e.table] += 1
            if any(k.kind == "exact" and m.kind == "value" and m.a >> k.width for k, m in zip(t.keys, e.match,
                                                                                            strict=True)):
                continue  # a value wider than its key can never match (as in the reference)
            h = be.add(self.table_ids[e.table], match_bytes(t, list(e.match)),
                       e.priority, self.action_ids[e.action], args)
            if h >= 0:
                handles[e.table].append((h, i))
                incarnations[n] = h
            elif h == -1:
                raise ValueError(f"table '{e.table}' is full ({t.size} entries)")
            elif h == -3:
                raise ValueError(f"table '{e.table}': the control plane rejected entry {i}")
            # -2 (same match installed earlier): the earlier entry wins, as in the reference
        for tname, action, dargs in control.defaults:
            self._set_default(tname, action, dargs)
        freed: dict[str, set[int]] = {}
        if control.ops:
            handles, freed = self._apply_ops(control, incarnations)
        if refusals:
            self._check_refusals(handles, freed, final_state(prog, control))
        # Table entry counters are watched (one per installed entry); counter and register elements are not: the
        # shim reports the ones each packet wrote, so a 2^20-element register costs nothing until it is written.
        watches: list[Watch] = []
        for tname, t in prog.tables.items():
            if t.counters:
                tid = self.table_ids[tname]
                watches += [Watch(0, tid, h, (f"table.{tname}", i)) for h, i in handles[tname]]
                watches.append(Watch(0, tid, DEFAULT_HANDLE, (f"table.{tname}", -1)))
        self.watches = watches
        be.watch(watches)

    def _check_contracts(self) -> str | None:
        """Each table filled to its declared size and emptied again through the C table API, on a freshly
        initialised state (contracts.py); what went wrong first, or None."""
        prog, be = self._require()
        assert isinstance(be, (SharedObject, Harness))
        be.reinit()
        try:
            for tname, t in prog.tables.items():
                tid = self.table_ids[tname]
                keys = dict.fromkeys((match_bytes(t, list(c.match)), c.priority if t.uses_priority else 0)
                                     for c in t.entries)
                if isinstance(be, Harness) and t.size > HARNESS_FILL_MAX:
                    continue
                if len(keys) != len(t.entries):
                    continue  # constant entries with the same match: which handles they hold is not checked here
                constants = [(m, p, h) for m, p in keys if (h := be.lookup(tid, m, p)) >= 0]
                action = t.actions[0]
                args = self._args(t, action, (0,) * len(prog.actions[action].params))
                function = f"{prog.name}_{tname}_counter"

                def counter(h: int, f: str = function) -> tuple[int, int, int] | None:
                    return be.counter_values(f, h)

                problem = check_table(be, t, tid, (self.action_ids[action], args), constants, counter)
                if problem:
                    return problem
            return None
        finally:
            be.reinit()

    def _set_default(self, tname: str, action: str, dargs: tuple[int, ...]) -> None:
        prog, be = self._require()
        t = prog.tables.get(tname)
        if t is None:
            raise ValueError(f"control state sets the default of unknown table '{tname}'")
        rc = be.set_default(self.table_ids[tname], self.action_ids[action], self._args(t, action, tuple(dargs),
                                                                                       default=True))
        if rc != 0:
            raise ValueError(f"table '{tname}': cannot set default {action}")

    def _apply_ops(self, control: ControlState, incarnations: dict[int, int]
                   ) -> tuple[dict[str, list[tuple[int, int]]], dict[str, set[int]]]:
        """The state's ops through the generated C table API, one call each: `_add`, then `_lookup` to find the
        handle of the entry a modify or delete names (checked against the handle its add returned) and
        `_modify` / `_delete` on it; after a delete, `_lookup` must no longer find the match. Returns the
        surviving entries' (handle, counter index) per table, the index being the entry's place in the image
        `model.replay` computed, and per table the handles deleted and not reused (stale handles)."""
        prog, be = self._require()
        plan = replay(prog, control)
        freed: dict[str, set[int]] = {}
        for k, (op, inc) in enumerate(zip(control.ops, plan.steps, strict=True)):
            where = f"ops[{k}] ({op.op} in table '{op.table}')"
            if op.op == "default":
                self._set_default(op.table, op.action, op.args)
                continue
            t = prog.tables[op.table]
            tid = self.table_ids[op.table]
            match = match_bytes(t, list(op.match))
            if op.op == "insert":
                h = be.add(tid, match, op.priority, self.action_ids[op.action], self._args(t, op.action, op.args))
                if h < 0:
                    raise ValueError(f"{where}: the C table API refused the add ({ERRORS.get(h, h)})")
                incarnations[inc] = h
                freed.get(op.table, set()).discard(h)
                continue
            h = be.lookup(tid, match, op.priority)
            if inc not in incarnations or h != incarnations[inc]:
                raise ValueError(f"{where}: {op.op} of an entry added as handle {incarnations.get(inc)}, but the C "
                                 f"table API's lookup finds {ERRORS.get(h, h)}")
            if op.op == "modify":
                rc = be.modify(tid, h, self.action_ids[op.action], self._args(t, op.action, op.args))
            else:
                rc = be.delete(tid, h)
                del incarnations[inc]
                freed.setdefault(op.table, set()).add(h)
            if rc != 0:
                raise ValueError(f"{where}: the C table API refused the {op.op} ({ERRORS.get(rc, rc)})")
            if op.op == "delete" and (after := be.lookup(tid, match, op.priority)) != NOENT:
                raise ValueError(f"{where}: after the delete of handle {h}, the C table API's lookup finds "
                                 f"{ERRORS.get(after, after)}, not NOENT")
        handles: dict[str, list[tuple[int, int]]] = {n: [(i, i) for i in range(len(t.entries))]
                                                     for n, t in prog.tables.items()}
        index = {n: len(t.entries) for n, t in prog.tables.items()}
        by_position = {pos: inc for inc, pos in plan.position.items()}
        for pos, e in enumerate(plan.final.entries):
            handle = incarnations.get(by_position[pos])
            if handle is not None:
                handles[e.table].append((handle, index[e.table]))
            index[e.table] += 1
        return handles, freed

    def _check_refusals(self, handles: dict[str, list[tuple[int, int]]], freed: dict[str, set[int]],
                        final: ControlState) -> None:
        """What the C table API must refuse, asked of every table once its state is installed (the refusals
        change nothing, so the packets then see the state installed). The vectors cannot name handles or
        action ids, so the driver asks, as it checks each `_lookup` against the handle `_add` returned:
        - the handle one past the last (the table's size), the last one while it is not given out, and the
          handles deleted and not reused: `_modify`, `_delete` and `_counter` answer NOENT;
        - an action id no action has: `_add`, `_modify` of an entry and `_set_default` answer ARG;
        - in a hash table (exact or LPM), `_add` of an installed entry's match answers EXISTS (FULL when the
          table is full);
        and `_lookup` finds each of the spec's constant entries, by the spec's match, at handle i: the handles
        their counters are read by (`_init` handing out others, e.g. from a free list off by one, shows only
        here), and `_init`'s image of each constant entry checked (a mask or value byte changed in it is an
        entry no lookup by the spec's match finds; value bits under a zero mask are dropped by the decode)."""
        prog, be = self._require()
        bad_action = len(prog.actions)
        installed: dict[str, EntryState] = {}  # an installed entry per table, the last one of the image
        for e in [*(EntryState(n, tuple(c.match), c.action.action, tuple(c.action.args)) for n, t in
                    prog.tables.items() for c in t.entries), *final.entries]:
            if not any(k.kind == "exact" and m.kind == "value" and m.a >> k.width
                       for k, m in zip(prog.tables[e.table].keys, e.match, strict=True)):
                installed[e.table] = e
        for tname, t in prog.tables.items():
            tid = self.table_ids[tname]
            first: dict[tuple[bytes, int], int] = {}
            for i, c in enumerate(t.entries):  # counters of constant entries are read by these handles
                key = (match_bytes(t, list(c.match)), c.priority if t.uses_priority else 0)
                want = first.setdefault(key, i)
                if (code := be.lookup(tid, *key)) != want:
                    raise ValueError(f"table '{tname}': the C table API's lookup of constant entry {i} finds "
                                     f"{ERRORS.get(code, code)}, not handle {want}")
            live = [h for h, _ in handles[tname]]
            stale = sorted(freed.get(tname, set()) - set(live))[:STALE_PROBES]
            counter = f"{prog.name}_{tname}_counter"
            probes = [(t.size, "one past the last"), *((s, "deleted") for s in stale)]
            if t.size - 1 not in live:
                probes.append((t.size - 1, "the last, not given out"))  # init must leave every handle unused
            for h, why in probes:
                got = {"modify": be.modify(tid, h, self.action_ids[t.default.action],
                                           self._args(t, t.default.action, tuple(t.default.args), default=True)),
                       "delete": be.delete(tid, h), "counter": be.table_counter(counter, h)}
                for call, rc in got.items():
                    if rc is not None and rc != NOENT:
                        raise ValueError(f"table '{tname}': the C table API's {call} of handle {h} ({why}) answers "
                                         f"{ERRORS.get(rc, rc)}, not NOENT")
            zero = match_bytes(t, [_ZERO[k.kind] for k in t.keys])
            refused = {"add": be.add(tid, zero, 0, bad_action, b""),
                       "set_default": be.set_default(tid, bad_action, b"")}
            if live:
                refused["modify"] = be.modify(tid, live[-1], bad_action, b"")
            for call, code in refused.items():
                if code != ARG:
                    raise ValueError(f"table '{tname}': the C table API's {call} with action id {bad_action} (no "
                                     f"action has it) answers {ERRORS.get(code, code)}, not ARG")
            mine = installed.get(tname)
            if not t.uses_priority and t.keys and mine is not None:
                code = be.add(tid, match_bytes(t, list(mine.match)), mine.priority, self.action_ids[mine.action],
                              self._args(t, mine.action, mine.args, default=True))
                want = FULL if len(live) >= t.size else EXISTS  # a full table says so first
                if code != want:
                    raise ValueError(f"table '{tname}': the C table API's add of an installed entry's match answers "
                                     f"{ERRORS.get(code, code)}, not {ERRORS[want]}")

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        prog, be = self._require()
        reg_ids = {n: i for i, n in enumerate(prog.registers)}
        regs: Registers = {}
        init: list[tuple[int, int, bytes]] = []
        for (name, idx), value in registers.items():
            reg = prog.registers.get(name)
            if reg is None or not 0 <= idx < reg.size:
                continue
            v = value & ((1 << reg.width) - 1)
            if v:
                regs[(name, idx)] = v
                init.append((reg_ids[name], idx, v.to_bytes(nbytes(reg.width), "big")))
        be.reset(init)
        counters: Counters = {}
        results: list[Result] = []
        watches = self.watches
        counter_names, reg_names = list(prog.counters), list(prog.registers)
        snap_c, snap_r = counters.copy(), regs.copy()
        raw = be.run(packets)
        if isinstance(be, SharedObject) and packets:
            # a frame that grew (else the first) run again in a buffer of exactly its size, and one byte less
            grown = next((p for p, r in zip(packets, raw, strict=True) if r[0] and len(r[2]) > len(p.data)), None)
            which, probe = ("grown", grown) if grown is not None else ("first", packets[0])
            if self.capacity_probes[which] < CAPACITY_PROBES[which]:
                self.capacity_probes[which] += 1
                problem = be.capacity_probe(probe)
                if problem:
                    raise ValueError(f"nic capacity contract: {problem}")
        for p, (code, out_port, out_data, changes) in zip(packets, raw, strict=True):
            changed = False
            for tag, v1, v2 in changes:
                if tag < TOUCHED:
                    counters[watches[tag].key] = (v1, v2)
                    changed = True
                    continue
                # a touched element is a change only if its value differs from the one held (registers start
                # at their initial values, counters at 0): the results are those of a scan of every element
                kind, oid, idx = touched(tag)
                if kind == 2:
                    key, value = (reg_names[oid], idx), (v1 << 64) | v2
                    if regs.get(key, 0) != value:
                        regs[key] = value
                        changed = True
                elif counters.get(key := (counter_names[oid], idx), (0, 0)) != (v1, v2):
                    counters[key] = (v1, v2)
                    changed = True
            if changed:
                # a packet that changed nothing shares the previous packet's snapshots (never mutated)
                snap_c, snap_r = counters.copy(), regs.copy()
            verdict = VERDICTS.get(code, "drop")
            if verdict == "drop":
                results.append(Result(verdict, None, b"", snap_c, snap_r))
            else:
                port = out_port if verdict == "forward" else p.port if verdict == "reflect" else None
                results.append(Result(verdict, port, out_data, snap_c, snap_r))
        return results

    def backend_object(self) -> Backend:
        """The loaded backend (the benchmark times packets through it)."""
        return self._require()[1]

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.backend = None
        self.prog = None
