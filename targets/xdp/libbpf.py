"""ctypes bindings to Debian's libbpf1 (libbpf.so.1): just what the XDP driver and benchmark need.

No BCC, no compiled extension: the object file is opened and loaded by libbpf, maps are reached by name, and
packets run through BPF_PROG_TEST_RUN (`bpf_prog_test_run_opts`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import struct
from pathlib import Path

from c3po_compiler.target_api import BuildError

LOG_SIZE = 4 * 1024 * 1024
LOG_LEVEL_VERBOSE = 1
LOG_LEVEL_STATS = 4


class TestRunOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class XdpMd(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in
                ("data", "data_end", "data_meta", "ingress_ifindex", "rx_queue_index", "egress_ifindex")]


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded libbpf, with argument types declared (64-bit pointers must not be truncated to int)."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lb = ctypes.CDLL(name, use_errno=True)
    vp, ci, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs: dict[str, tuple[list[object], object]] = {
        "bpf_object__open_file": ([cs, vp], vp),
        "bpf_object__load": ([vp], ci),
        "bpf_object__close": ([vp], None),
        "bpf_object__next_program": ([vp, vp], vp),
        "bpf_program__fd": ([vp], ci),
        "bpf_program__name": ([vp], cs),
        "bpf_object__find_program_by_name": ([vp, cs], vp),
        "bpf_program__set_log_buf": ([vp, vp, ctypes.c_size_t], ci),
        "bpf_program__set_log_level": ([vp, ctypes.c_uint32], ci),
        "bpf_object__find_map_by_name": ([vp, cs], vp),
        "bpf_object__next_map": ([vp, vp], vp),
        "bpf_map__set_pin_path": ([vp, cs], ci),
        "bpf_map__fd": ([vp], ci),
        "bpf_map_update_elem": ([ci, vp, vp, ctypes.c_uint64], ci),
        "bpf_map_lookup_elem": ([ci, vp, vp], ci),
        "bpf_map_delete_elem": ([ci, vp], ci),
        "bpf_map_get_next_key": ([ci, vp, vp], ci),
        "bpf_prog_test_run_opts": ([ci, vp], ci),
        "libbpf_num_possible_cpus": ([], ci),
        "libbpf_get_error": ([vp], ctypes.c_long),
        "bpf_obj_get_info_by_fd": ([ci, vp, vp], ci),
    }
    for fn, (args, res) in sigs.items():
        f = getattr(lb, fn)
        f.argtypes = args
        f.restype = res
    # libbpf prints its own warnings to stderr; the errors it reports are raised with the verifier log instead.
    lb.libbpf_set_print.argtypes = [vp]
    lb.libbpf_set_print.restype = vp
    lb.libbpf_set_print(None)
    _lib = lb
    return lb


# struct bpf_prog_info (uapi/linux/bpf.h): the offsets of the fields read here, and a buffer larger than the
# struct (the kernel fills what it knows and checks that the rest is zero)
_INFO_SIZE, _JITED_LEN, _JITED_PTR, _NR_KSYMS, _KSYMS_PTR = 256, 16, 24, 104, 112


def jited(prog_fd: int) -> tuple[int, bytes]:
    """Where the kernel's JIT put a loaded program (its kernel address) and the machine code it made of it
    (bpf_prog_info's jited_ksyms and jited_prog_insns; root), for a profile to be read against:
    benchmarks/profile_xdp.py annotates it with objdump."""
    def info(fields: list[tuple[str, int, int]]) -> bytes:
        buf = ctypes.create_string_buffer(_INFO_SIZE)
        for fmt, off, value in fields:
            struct.pack_into(fmt, buf, off, value)
        size = ctypes.c_uint32(_INFO_SIZE)
        if lib().bpf_obj_get_info_by_fd(prog_fd, buf, ctypes.byref(size)) != 0:
            raise OSError(f"bpf_obj_get_info_by_fd failed: {errno_text(0)}")
        return buf.raw

    n = struct.unpack_from("<I", info([]), _JITED_LEN)[0]  # the image's size, then the image
    image = ctypes.create_string_buffer(max(n, 1))
    addr = ctypes.c_uint64(0)
    info([("<I", _JITED_LEN, n), ("<Q", _JITED_PTR, ctypes.addressof(image)), ("<I", _NR_KSYMS, 1),
          ("<Q", _KSYMS_PTR, ctypes.addressof(addr))])
    return addr.value, image.raw[:n]


def errno_text(rc: int) -> str:
    err = -rc if rc < 0 else ctypes.get_errno()
    return f"{os.strerror(err)} (errno {err})"


def verifier_excerpt(log: str, lines: int = 25) -> str:
    """The verifier's verdict and the C source line it last pointed at (-g puts `; line @ file:N` in the log)."""
    rows = [r for r in log.splitlines() if r.strip()]
    src = [r for r in rows if r.startswith(";")]
    where = f"last C line verified: {src[-1]}\n" if src else ""
    return where + "\n".join(rows[-lines:])


def processed_insns(log: str) -> int | None:
    m = re.search(r"processed (\d+) insns", log)
    return int(m.group(1)) if m else None


class BpfObject:
    """An opened and loaded BPF object; `close()` unloads everything. Its programs all load (a split parser's
    programs fill the prog array as the object loads); `prog_fd` is the entry program's: `entry` by name, or the
    object's first program."""

    def __init__(self, path: Path, entry: str | None = None) -> None:
        self.lb = lib()
        self.obj: int | None = None
        self.log = ""
        self.logs: dict[str, str] = {}
        self._open_and_load(path, LOG_LEVEL_STATS, entry)

    def _open_and_load(self, path: Path, level: int, entry: str | None) -> None:
        obj = self.lb.bpf_object__open_file(str(path).encode(), None)
        if not obj or self.lb.libbpf_get_error(obj):
            raise BuildError(f"libbpf could not open {path}: {errno_text(0)}")
        m = self.lb.bpf_object__next_map(obj, None)
        while m:  # never pin (a split parser's prog array asks to be): closing must leave nothing behind
            self.lb.bpf_map__set_pin_path(m, None)
            m = self.lb.bpf_object__next_map(obj, m)
        progs = []
        p = self.lb.bpf_object__next_program(obj, None)
        while p:
            progs.append(p)
            p = self.lb.bpf_object__next_program(obj, p)
        main = self.lb.bpf_object__find_program_by_name(obj, entry.encode()) if entry else (progs or [None])[0]
        if not main:
            self.lb.bpf_object__close(obj)
            raise BuildError(f"{path} holds no program" + (f" named {entry}" if entry else ""))
        size = max(LOG_SIZE // len(progs), 256 * 1024)  # one log per program: a split parser has several
        bufs = [ctypes.create_string_buffer(size) for _ in progs]
        for prog, buf in zip(progs, bufs, strict=True):
            self.lb.bpf_program__set_log_buf(prog, buf, size)
            self.lb.bpf_program__set_log_level(prog, level)
        rc = self.lb.bpf_object__load(obj)
        logs = {self.lb.bpf_program__name(prog).decode(): buf.value.decode(errors="replace")
                for prog, buf in zip(progs, bufs, strict=True)}
        if rc != 0:
            self.lb.bpf_object__close(obj)
            if level == LOG_LEVEL_STATS:  # reload with the full log to point at the failing instruction
                return self._open_and_load(path, LOG_LEVEL_VERBOSE | LOG_LEVEL_STATS, entry)
            # libbpf loads programs in order and stops at the first the verifier rejects: the last log written
            name, log = [(n, text) for n, text in logs.items() if text.strip()][-1] if any(
                t.strip() for t in logs.values()) else ("", "")
            which = f" (program {name})" if len(progs) > 1 and name else ""
            raise BuildError(f"the kernel verifier rejected {path.name}{which} ({errno_text(rc)}):\n"
                             f"{verifier_excerpt(log)}")
        self.obj = obj
        self.logs = logs
        self.log = logs[self.lb.bpf_program__name(main).decode()]
        self.prog_fd = self.lb.bpf_program__fd(main)

    @property
    def insns_by_program(self) -> dict[str, int | None]:
        return {name: processed_insns(log) for name, log in self.logs.items()}

    @property
    def insns_processed(self) -> int | None:
        """Instructions the verifier processed, summed over the object's programs."""
        counts = [n for n in self.insns_by_program.values() if n is not None]
        return sum(counts) if counts else None

    def map_fd(self, name: str) -> int:
        assert self.obj is not None
        m = self.lb.bpf_object__find_map_by_name(self.obj, name.encode())
        if not m:
            raise KeyError(name)
        fd: int = self.lb.bpf_map__fd(m)
        return fd

    def close(self) -> None:
        if self.obj is not None:
            self.lb.bpf_object__close(self.obj)
            self.obj = None


# BPF_PROG_TEST_RUN's metadata: at most 32 bytes (a multiple of 4), taken from the frame's 256-byte headroom
# (XDP_PACKET_HEADROOM), of which struct xdp_frame keeps 40: bpf_xdp_adjust_head can push the frame start by
# at most PUSH_ROOM - metadata length bytes (measured on 6.18: 216 with no metadata, 208 with 8, 184 with 32).
META_MAX = 32
PUSH_ROOM = 216
# What a dirty headroom holds: bpf_xdp_adjust_head(ctx, -n) moves the metadata down by n and leaves the bytes
# behind as they were, so the last min(n, metadata length) bytes of a push hold these (non-zero, one per byte)
# until the program writes them. BPF_PROG_TEST_RUN zeroes the rest of the headroom.
DIRTY = bytes(0xA5 ^ i for i in range(META_MAX))
# The same bytes with every bit inverted (never zero either): the driver alternates the two from frame to frame,
# so a write that keeps some bits of what the headroom held (a 16-bit field set as 15 bits) shows with either
# value of those bits.
DIRTY_INVERTED = bytes(b ^ 0xFF for b in DIRTY)


def dirty_meta(meta: bytes, max_push: int, inverted: bool = False) -> bytes:
    """`meta` followed by DIRTY (or DIRTY_INVERTED) bytes up to META_MAX bytes, as far as the headroom still lets
    the program push `max_push` bytes (never shorter than `meta`: a program that needs more room than that runs as
    before)."""
    size = max(len(meta), min(META_MAX, PUSH_ROOM - max_push) // 4 * 4)
    return meta + (DIRTY_INVERTED if inverted else DIRTY)[len(meta):size]


class TestRunner:
    """Reusable buffers for BPF_PROG_TEST_RUN, so a run costs one syscall and a few copies."""

    HEADROOM = 256  # room for the frame to grow (encapsulation) in data_out

    def __init__(self, prog_fd: int, max_frame: int = 9216) -> None:
        self.lb = lib()
        self.prog_fd = prog_fd
        self.max_in = max_frame + 64
        self.inbuf = ctypes.create_string_buffer(self.max_in)
        self.out = ctypes.create_string_buffer(max_frame + self.HEADROOM + 64)
        self.ctx_in = XdpMd()
        self.ctx_out = XdpMd()
        self.opts = TestRunOpts()
        self.opts.sz = ctypes.sizeof(TestRunOpts)
        self.opts.data_in = ctypes.addressof(self.inbuf)
        self.opts.data_out = ctypes.addressof(self.out)
        self._ctx_in = ctypes.addressof(self.ctx_in)
        self._ctx_out = ctypes.addressof(self.ctx_out)
        self._opts_ref = ctypes.byref(self.opts)
        self._run = self.lb.bpf_prog_test_run_opts

    def run(self, frame: bytes, meta: bytes = b"", repeat: int = 1, ifindex: int = 0) -> tuple[int, bytes, int]:
        """(XDP action, output frame without metadata, mean ns per run). `ifindex`: the frame arrives on that
        device (`xdp_md.ingress_ifindex`, which the kernel checks against the caller's namespace; queue 0)."""
        data = meta + frame
        if len(data) > self.max_in:
            raise ValueError(f"frame of {len(frame)} bytes is larger than the test buffer")
        ctypes.memmove(self.inbuf, data, len(data))
        o = self.opts
        o.data_size_in = len(data)
        o.data_size_out = len(self.out)
        o.repeat = repeat
        if meta or ifindex:
            self.ctx_in.data = len(meta)
            self.ctx_in.data_end = len(data)
            self.ctx_in.ingress_ifindex = ifindex
            o.ctx_in, o.ctx_out = self._ctx_in, self._ctx_out
            o.ctx_size_in = o.ctx_size_out = ctypes.sizeof(XdpMd)
        else:
            o.ctx_in = o.ctx_out = None
            o.ctx_size_in = o.ctx_size_out = 0
        rc = self._run(self.prog_fd, self._opts_ref)
        if rc != 0:
            raise OSError(f"BPF_PROG_TEST_RUN failed: {errno_text(rc)}")
        skip = self.ctx_out.data if meta or ifindex else 0
        return o.retval, self.out.raw[skip:o.data_size_out], o.duration
