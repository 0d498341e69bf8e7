"""Runs generated XDP programs in the real kernel through BPF_PROG_TEST_RUN (libbpf via ctypes, no BCC).

- Ingress port: port 1 (where generated vectors arrive) is passed as XDP metadata (`struct c3po_meta`, a magic
  word and the port) in front of the frame, which BPF_PROG_TEST_RUN accepts through `xdp_md.data`. Every other
  port takes the production path: no `c3po_meta` (see dirty headroom), `xdp_md.ingress_ifindex` = the loopback
  device (the kernel accepts any device of the caller's namespace there) and `c3po_ifports[lo]` = the port,
  written only when the port changes. So both the harness path and the ifindex -> port map are exercised.
- Control-plane ops (a state's `ops`): applied through `targets/xdp/control.py`'s `XdpDataplane`, the table API
  `c3po table` uses (the same map updates, deletes, linear-array shifts and install-index allocation), bound to
  this driver's maps instead of bpffs pins. Per-entry counters are then reported under the entry's index in the
  image `model.replay` computes, whatever install index the allocator gave it.
- Egress port: the program records it in the per-CPU `c3po_state` map, with the list of counter/register
  elements the packet touched, so the driver reads only those (and clears the record when it held something).
  The driver pins itself to one CPU so that it knows which per-CPU slot the run used. Counters are never zeroed
  in the kernel: the values last read are the baseline of the next run.
- forward: the devmap maps ports 0..255 to the loopback device so forward returns XDP_REDIRECT; a port without
  a devmap entry makes the program return XDP_DROP, and the recorded egress port still says where it went.
- Dirty headroom: on both paths the metadata area is filled up to 32 bytes with non-zero bytes
  (`libbpf.DIRTY`, after the magic and port on port 1; on other ports without the magic, which the program
  reads as "no metadata"). bpf_xdp_adjust_head leaves those bytes where the frame grows, so a header the
  program pushes and does not write in full comes out non-zero, as it would from a NIC's headroom, instead of
  the zeroes BPF_PROG_TEST_RUN puts there. The padding shrinks so that the program's largest push
  (`max_push`) still fits the headroom (216 bytes less the metadata).
- Frames shorter than 14 bytes are refused by BPF_PROG_TEST_RUN: those results carry an `error` (N/A).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import struct
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.target_api import BuildError
from conformance.driver import Driver, DriverUnavailable
from conformance.model import ControlState, Counters, PacketIn, Registers, Result, entry_identity, replay

from . import SUPPORTS, XdpTarget
from . import layout as L
from .control import (
    BPF_MAP_TYPE_ARRAY,
    BitVecMaps,
    CuckooMaps,
    DirectCopy,
    TrieMaps,
    XdpDataplane,
    _libbpf,
    bitvec_map,
    cuckoo_bucket_map,
    direct_copy_map,
    install_cuckoo,
    install_trie,
    trie_root_map,
)
from .coverage import COVER_MAP, COVER_WORDS, points, summary
from .ctext import entry_name
from .emitter import touch_objects
from .libbpf import BpfObject, TestRunner, dirty_meta, lib
from .readme import entry_key, linear_entry

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
META_MAGIC = 0x63337030
NO_PORT = 0xFFFFFFFF
DEVMAP_PORTS = 256
MIN_FRAME = 14
STATE_SIZE = 8 + 8 * 32
META_PORT = 1  # packets on this port carry their port as metadata; others come through the ifindex map


def max_push(prog: ir.Program) -> int:
    """An upper bound on the bytes a packet can grow by: every instance the program makes valid, at its
    largest, and the variable part of every instance it assigns a field of."""
    stmts = ir.walk_stmts(prog.control) + [s for a in prog.actions.values() for s in ir.walk_stmts(a.body)]
    made = {s.instance for s in stmts if isinstance(s, ir.SetValid) and s.valid}
    written = {s.target.instance for s in stmts if isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef)}
    grow = 0
    for name in made | written:
        inst = prog.instances[name]
        grow += (inst.type.max_bytes if name in made else inst.type.max_bytes - inst.type.fixed_bytes) \
            * max(inst.stack, 1)
    return grow


class DriverTables(XdpDataplane):
    """The run-time table API (`XdpDataplane`: `c3po table add/modify/delete`) on the driver's own maps: the same
    primitives, with the maps taken from the loaded object and each priority table's priority array created
    here (unpinned: closing the driver frees everything). No registry lock: the driver's maps are private."""

    def __init__(self, prog: ir.Program, bpf: BpfObject, prio_fds: dict[str, int]) -> None:
        super().__init__(prog.name, prog, Path("/nonexistent"))
        self.bpf = bpf
        self.prio_fds = prio_fds

    def _map(self, name: str) -> int:
        return self.bpf.map_fd(name)

    def _fd(self, pin: str) -> int:
        return self.prio_fds[pin.removeprefix("prio_")]

    def _file_lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()  # the driver's maps are private: no registry lock

    def close(self) -> None:
        """The maps belong to the driver's object, the priority arrays to the driver."""


class XdpDriver(Driver):
    name = "xdp"
    supports = SUPPORTS

    def __init__(self, observe: bool = True) -> None:
        self.bpf: BpfObject | None = None
        self.prog: ir.Program | None = None
        self._old_affinity: set[int] | None = None
        # The observing build (C3PO_OBSERVE) reports egress ports and touched counters; benchmarks time the
        # production build, whose results only the XDP action and frame say.
        self.observe = observe

    @classmethod
    def unavailable(cls) -> str | None:
        if os.geteuid() != 0:
            return "the xdp driver needs root (BPF_PROG_TEST_RUN)"
        if shutil.which("clang") is None:
            return "clang is not installed (apt-get install clang)"
        if not Path("/usr/include/bpf/bpf_helpers.h").exists():
            return "libbpf headers are missing (apt-get install libbpf-dev)"
        try:
            lib()
        except OSError:
            return "libbpf.so.1 is missing (apt-get install libbpf1)"
        return None

    # ---- open
    def open(self, prog: ir.Program, workdir: Path) -> None:
        why = self.unavailable()
        if why:
            raise DriverUnavailable(why)
        self.prog = prog
        target = XdpTarget(observe=self.observe)
        build = target.build(prog, workdir)
        if "object" not in build.files:
            raise DriverUnavailable("the object file was not built (is clang installed?)")
        self.bpf = BpfObject(build.files["object"], entry=entry_name(prog.name))
        self.source: Path | None = build.files.get("source")
        self.lb = lib()
        self.ncpu = self.lb.libbpf_num_possible_cpus()
        self._old_affinity = os.sched_getaffinity(0)
        self.cpu = min(self._old_affinity)
        os.sched_setaffinity(0, {self.cpu})
        self.runner = TestRunner(self.bpf.prog_fd)
        push = max_push(prog)
        magic = META_MAGIC.to_bytes(4, "little") + (META_PORT & 0xFFFF).to_bytes(4, "little")
        # two dirty headrooms, bits inverted, taken in turn frame by frame (libbpf.DIRTY_INVERTED)
        self.meta_port = [dirty_meta(magic, push), dirty_meta(magic, push, inverted=True)]
        self.meta_ifindex = [dirty_meta(b"", push), dirty_meta(b"", push, inverted=True)]
        self.frames_run = 0
        self.layouts = {n: L.table_layout(prog, t) for n, t in prog.tables.items()}
        self.objects = {v: k for k, v in touch_objects(prog).items()}
        self.state_fd = self.bpf.map_fd("c3po_state")
        self.state_buf = ctypes.create_string_buffer(STATE_SIZE * self.ncpu)
        self.zero_key = ctypes.create_string_buffer(4)
        self.clear_state = (NO_PORT.to_bytes(4, "little") + bytes(STATE_SIZE - 4)) * self.ncpu
        self._clear_state()
        self.installed: dict[str, list[bytes]] = {n: [] for n in prog.tables}
        self.linear_used: dict[str, int] = {n: 0 for n in prog.tables}
        self.last_read: dict[tuple[str, str, int], tuple[int, int]] = {}
        self.baseline: dict[tuple[str, str, int], tuple[int, int]] = {}
        self.fds: dict[str, int] = {}
        self.dirty_regs: set[tuple[str, int]] = set()
        self.prio_fds: dict[str, int] = {}  # priority arrays of linear tables, created the first time ops come
        self.trie_maps: dict[str, TrieMaps] = {}  # multibit-trie tables' arrays, mapped the first time
        self.cuckoo_maps: dict[str, CuckooMaps] = {}  # cuckoo tables' arrays, alike
        self.direct_copies: dict[str, DirectCopy] = {}  # direct tables' global copies, alike
        self.bitvec_maps: dict[str, BitVecMaps] = {}  # bit-vector classifiers' images, alike
        self.counter_index: dict[str, dict[int, int]] = {}  # table -> install index -> index in the image
        self.lo = socket.if_nametoindex("lo")
        self.ifport: int | None = None  # what c3po_ifports[lo] holds
        # Default actions live in one global (map ".data.defaults"): the spec's values as loaded, and each
        # table's offset in it (tables in name order, as the generated struct c3po_defaults lays them out).
        self.default_offsets: dict[str, int] = {}
        off = 0
        for name in sorted(self.layouts):
            self.default_offsets[name] = off
            off += self.layouts[name].value_size
        self.spec_defaults = self.defaults_now = bytes(off)
        if self.layouts:
            buf = ctypes.create_string_buffer(off)
            if self.lb.bpf_map_lookup_elem(self._fd(L.DEFAULTS_MAP), bytes(4), buf) != 0:
                raise OSError(f"reading {L.DEFAULTS_MAP} failed: {os.strerror(ctypes.get_errno())}")
            self.spec_defaults = self.defaults_now = buf.raw
        tx = self.bpf.map_fd("c3po_tx_ports")
        for port in range(DEVMAP_PORTS):
            self._update(tx, port.to_bytes(4, "little"), (1).to_bytes(4, "little"))  # loopback ifindex

    def coverage(self) -> dict[str, Any] | None:
        """Which of the program's verdict returns the runs since `open` took (targets/xdp/coverage.py): each copy
        of the control the target made per parse path and branch ends in its own, so an untaken one is a copy no
        vector tested. Only the observing build counts them."""
        if not self.observe or self.bpf is None or self.source is None or not self.source.exists():
            return None
        text = self.source.read_text(encoding="utf-8")
        pts = points(text)
        buf = ctypes.create_string_buffer(8 * COVER_WORDS)
        if self.lb.bpf_map_lookup_elem(self._fd(COVER_MAP), bytes(4), buf) != 0:
            raise OSError(f"reading {COVER_MAP} failed: {os.strerror(ctypes.get_errno())}")
        return summary(pts, list(struct.unpack(f"<{COVER_WORDS}Q", buf.raw)), self.source.name)

    def _fd(self, name: str) -> int:
        fd = self.fds.get(name)
        if fd is None:
            assert self.bpf is not None
            fd = self.fds[name] = self.bpf.map_fd(name)
        return fd

    def _update(self, fd: int, key: bytes, value: bytes) -> None:
        rc = self.lb.bpf_map_update_elem(fd, key, value, 0)
        if rc != 0:
            raise OSError(f"bpf_map_update_elem failed: {os.strerror(ctypes.get_errno())}")

    # ---- install
    def install(self, control: ControlState) -> None:
        assert self.bpf is not None and self.prog is not None
        prog = self.prog
        for name, lay in self.layouts.items():
            fd = self.bpf.map_fd(f"t_{name}")
            if lay.kind == "linear":
                blank = bytes(lay.entry_size)
                for i in range(self.linear_used[name]):
                    self._update(fd, i.to_bytes(4, "little"), blank)
                self.linear_used[name] = 0
            elif lay.kind == "direct":
                for key in self.installed[name]:
                    self._write_direct(name, fd, key, bytes(lay.value_size))
            else:
                for key in self.installed[name]:
                    self.lb.bpf_map_delete_elem(fd, key)
            self.installed[name] = []
            if lay.percpu:  # the entries' elements are written with zero counts below (the default's is not)
                for k in {*self.last_read, *self.baseline}:
                    if k[:2] == ("table", name) and k[2] != lay.default_elem:
                        self.last_read[k] = self.baseline[k] = (0, 0)
        defaults = bytearray(self.spec_defaults)
        for tname, action, args in control.defaults:
            lay = self.layouts[tname]
            if action not in lay.action_ids:
                raise ValueError(f"table '{tname}' cannot take default action '{action}' in the xdp target")
            off = self.default_offsets[tname]
            defaults[off:off + lay.value_size] = L.encode_value(lay, action, args, L.DEFAULT_ENTRY, None)
        per_table: dict[str, list[tuple[tuple[ir.KeyElem, ...], str, tuple[int, ...], int]]] = {
            n: [(tuple(e.match), e.action.action, tuple(e.action.args), e.priority) for e in t.entries]
            for n, t in prog.tables.items()}
        for es in control.entries:
            if es.table not in per_table:
                raise ValueError(f"control state names unknown table '{es.table}'")
            per_table[es.table].append((es.match, es.action, es.args, es.priority))
        for name, entries in per_table.items():
            lay = self.layouts[name]
            fd = self.bpf.map_fd(f"t_{name}")
            if lay.kind == "linear":
                order = sorted(range(len(entries)), key=lambda i: (-entries[i][3], i))
                bmaps = lay.bitvec and (self.bitvec_maps.get(name) or self.bitvec_maps.setdefault(
                    name, BitVecMaps(lay, self.bpf.map_fd(bitvec_map(name)))))
                for slot, i in enumerate(order):
                    match, action, args, prio = entries[i]
                    value = L.encode_value(lay, action, args, i, match)
                    self._update(fd, slot.to_bytes(4, "little"), linear_entry(lay, match, value))
                    if control.ops:  # the table API keeps priorities beside the array (control.py)
                        self._update(self._prio_fd(name), i.to_bytes(4, "little"), prio.to_bytes(4, "little"))
                if bmaps:  # the classifier beside the record (targets/xdp/bitvec.py), with the default
                    off = self.default_offsets[name]
                    bmaps.publish([(*entries[i][:3], i) for i in order], bytes(defaults[off:off + lay.value_size]))
                self.linear_used[name] = len(entries)
            else:
                seen: set[bytes] = set()
                routes: list[tuple[tuple[ir.KeyElem, ...], int, bytes]] = []
                for i, (match, action, args, _) in enumerate(entries):
                    key = entry_key(lay, match)
                    if key in seen:  # identical matches: the first installed wins
                        continue
                    seen.add(key)
                    value = L.encode_value(lay, action, args, i, match)
                    if lay.kind == "direct":
                        self._write_direct(name, fd, key, value)
                    else:
                        self._update(fd, key, self._direct_elem(lay, value))
                    self.installed[name].append(key)
                    routes.append((tuple(match), i, value))
                if lay.trie_nodes:  # the lookup structure beside the record (targets/xdp/trie.py)
                    maps = self.trie_maps.get(name) or self.trie_maps.setdefault(name, TrieMaps(
                        prog.tables[name], lay, self.bpf.map_fd(f"tt_{name}") if L.trie_map(lay) else None,
                        self.bpf.map_fd(f"tv_{name}"),
                        self.bpf.map_fd(trie_root_map(name)), self.layouts))
                    install_trie(maps, routes)
                elif lay.cuckoo_buckets:  # (targets/xdp/cuckoo.py)
                    cmaps = self.cuckoo_maps.get(name) or self.cuckoo_maps.setdefault(name, CuckooMaps(
                        prog.tables[name], lay, self.bpf.map_fd(cuckoo_bucket_map(name, lay)), self.bpf.map_fd(f"tv_{name}")))
                    install_cuckoo(cmaps, routes)
        if self.layouts and bytes(defaults) != self.defaults_now:
            self._update(self._fd(L.DEFAULTS_MAP), bytes(4), bytes(defaults))
            self.defaults_now = bytes(defaults)
        self.counter_index = {}
        if control.ops:
            self._apply_ops(control)

    def _write_direct(self, name: str, fd: int, key: bytes, value: bytes) -> None:
        """A direct table's element, and its global copy where packets read that (layout.direct_global)."""
        lay = self.layouts[name]
        self._update(fd, key, self._direct_elem(lay, value))
        if lay.direct_global:
            assert self.bpf is not None
            copy = self.direct_copies.get(name)
            if copy is None:
                copy = self.direct_copies[name] = DirectCopy(lay, self.bpf.map_fd(direct_copy_map(name)))
            copy.write(key, value)

    def _direct_elem(self, lay: L.TableLayout, value: bytes) -> bytes:
        """The bytes to write for a table element: a `percpu` table's element takes the value in every CPU's
        copy, with a zero counter (layout.percpu)."""
        return L.percpu_elem(lay, self.ncpu, value) if lay.percpu else value

    def _table_count(self, table: str, idx: int) -> tuple[tuple[int, int], int]:
        """((packets, bytes), counter index) of what a packet's touch log names: a counter index (entry + 1, 0 for
        the default), or in a `percpu` table the element, whose entry field gives the index."""
        lay = self.layouts[table]
        if lay.percpu:
            buf = ctypes.create_string_buffer(lay.elem_size * self.ncpu)
            self.lb.bpf_map_lookup_elem(self._fd(f"t_{table}" if lay.kind == "direct" else f"tv_{table}"),
                                        idx.to_bytes(4, "little"), buf)
            entry = int.from_bytes(buf.raw[4:8], "little")
            return L.percpu_counter(lay, self.ncpu, buf.raw), 0 if idx == lay.default_elem else entry + 1
        buf = ctypes.create_string_buffer(16 * self.ncpu)
        self.lb.bpf_map_lookup_elem(self._fd("tc_" + table), idx.to_bytes(4, "little"), buf)
        return (sum(int.from_bytes(buf.raw[16 * c:16 * c + 8], "little") for c in range(self.ncpu)),
                sum(int.from_bytes(buf.raw[16 * c + 8:16 * c + 16], "little") for c in range(self.ncpu))), idx

    def _prio_fd(self, table: str) -> int:
        fd = self.prio_fds.get(table)
        if fd is None:
            assert self.prog is not None
            fd = _libbpf().bpf_map_create(BPF_MAP_TYPE_ARRAY, f"c3po_prio_{table}"[:15].encode(), 4, 4,
                                          self.prog.tables[table].size, None)
            if fd < 0:
                raise OSError(f"creating the priority array of table '{table}' failed: {os.strerror(-fd)}")
            self.prio_fds[table] = fd
        return fd

    def _apply_ops(self, control: ControlState) -> None:
        """The ops through the run-time table API, in order; then the driver's books (what to clear before the
        next state, the defaults now, the counter baselines of zeroed slots) follow what the API did."""
        assert self.bpf is not None and self.prog is not None
        prog = self.prog
        plan = replay(prog, control)
        for name, lay in self.layouts.items():
            if lay.kind == "linear":
                self._prio_fd(name)
        dp = DriverTables(prog, self.bpf, self.prio_fds)
        with dp.locked():
            for k, op in enumerate(control.ops):
                table = dp.table(op.table)
                prio = op.priority if table.spec.uses_priority else 0  # the API refuses one where none applies
                try:
                    if op.op == "insert":
                        table.add(op.match, op.action, op.args, prio)
                    elif op.op == "modify":
                        table.modify(op.match, op.action, op.args, prio)
                    elif op.op == "delete":
                        table.delete(op.match, prio)
                    else:
                        table.set_default(op.action, op.args)
                except Exception as exc:
                    raise ValueError(f"ops[{k}] ({op.op} in table '{op.table}'): {exc}") from None
            # Where each entry ended up: its install index (the counter slot) -> its index in the image.
            image: dict[str, dict[tuple[object, ...], int]] = {}
            for n, t in prog.tables.items():
                image[n] = {entry_identity(t, tuple(e.match), e.priority if t.uses_priority else 0): i
                            for i, e in enumerate(t.entries)}
            for e in plan.final.entries:
                ids = image[e.table]
                ids.setdefault(entry_identity(prog.tables[e.table], e.match, e.priority), len(ids))
            for name, lay in self.layouts.items():
                rows = dp._state(name).rows()
                t = prog.tables[name]
                if lay.kind == "linear":
                    self.linear_used[name] = len(rows)
                else:
                    self.installed[name] = [key for _, _, key in rows]
                if t.counters:
                    self.counter_index[name] = {
                        index: image[name].get(entry_identity(t, row.match, row.priority), index)
                        for row, index, _ in rows}
                    self._rebase(name)
        if self.layouts:
            self.defaults_now = dp._defaults_raw()

    def _rebase(self, table: str) -> None:
        """The table API zeroes the counter slot of an entry it adds or deletes; counts read before are no
        baseline for it any more."""
        assert self.prog is not None
        for key in [k for k in {*self.last_read, *self.baseline} if k[0] == "table" and k[1] == table]:
            self.baseline[key] = self.last_read[key] = self._table_count(table, key[2])[0]

    # ---- run
    def _reset(self, registers: Registers) -> None:
        assert self.bpf is not None and self.prog is not None
        # Counters are not zeroed in the kernel (a syscall each): the values last read become the baseline.
        self.baseline.update(self.last_read)
        for name, idx in self.dirty_regs | set(registers):
            reg = self.prog.registers.get(name)
            if reg is None or not 0 <= idx < reg.size:
                continue
            self._update(self._fd(f"r_{name}"), idx.to_bytes(4, "little"),
                         self._reg_bytes(reg, registers.get((name, idx), 0)))
        self.dirty_regs = {k for k in registers if k[0] in self.prog.registers}

    @staticmethod
    def _reg_bytes(reg: ir.Register, value: int) -> bytes:
        value &= (1 << reg.width) - 1
        if reg.width > 64:
            return (value >> 64).to_bytes(8, "little") + (value & ((1 << 64) - 1)).to_bytes(8, "little")
        return value.to_bytes(8, "little")

    def _read_state(self) -> tuple[int, list[tuple[int, int]]]:
        """What the last run recorded; clears the record (one more syscall, only when there was something)."""
        rc = self.lb.bpf_map_lookup_elem(self.state_fd, self.zero_key, self.state_buf)
        if rc != 0:
            raise OSError("reading c3po_state failed")
        base = STATE_SIZE * self.cpu
        egress, n = struct.unpack_from("<II", self.state_buf, base)
        if egress == NO_PORT and n == 0:
            return egress, []
        n = min(n, 32)
        words = struct.unpack_from(f"<{n}Q", self.state_buf, base + 8) if n else ()
        self._clear_state()
        return egress, [(v >> 32, v & 0xFFFFFFFF) for v in words]

    def _clear_state(self) -> None:
        self._update(self.state_fd, bytes(4), self.clear_state)

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        assert self.bpf is not None and self.prog is not None
        self._reset(registers)
        counters: Counters = {}
        regs: Registers = {}
        for (name, idx), v in registers.items():
            reg = self.prog.registers.get(name)
            if reg is not None and 0 <= idx < reg.size and v & ((1 << reg.width) - 1):
                regs[(name, idx)] = v & ((1 << reg.width) - 1)
        results = []
        for p in packets:
            if len(p.data) < MIN_FRAME:
                results.append(Result("error", None, b"", dict(counters), dict(regs),
                                      error=f"N/A: BPF_PROG_TEST_RUN refuses frames shorter than {MIN_FRAME} bytes"))
                continue
            turn = self.frames_run & 1
            self.frames_run += 1
            if p.port == META_PORT:
                action, out, _ = self.runner.run(p.data, self.meta_port[turn])
            else:  # the production path: the program maps the ingress ifindex to the port
                if self.ifport != p.port:
                    self._update(self._fd("c3po_ifports"), self.lo.to_bytes(4, "little"),
                                 (p.port & 0xFFFF).to_bytes(4, "little"))
                    self.ifport = p.port
                action, out, _ = self.runner.run(p.data, self.meta_ifindex[turn], ifindex=self.lo)
            egress, touched = self._read_state()
            for obj, idx in touched:
                self._read_touched(obj, idx, counters, regs)
            results.append(self._result(p, action, out, egress, counters, regs))
        return results

    def _read_touched(self, obj: int, idx: int, counters: Counters, regs: Registers) -> None:
        assert self.bpf is not None and self.prog is not None
        kind, name = self.objects[obj]
        if kind == "register":
            reg = self.prog.registers[name]
            buf = ctypes.create_string_buffer(16)
            self.lb.bpf_map_lookup_elem(self._fd(f"r_{name}"), idx.to_bytes(4, "little"), buf)
            raw = buf.raw
            v = (int.from_bytes(raw[0:8], "little") << 64 | int.from_bytes(raw[8:16], "little")) \
                if reg.width > 64 else int.from_bytes(raw[0:8], "little")
            self.dirty_regs.add((name, idx))
            if v:
                regs[(name, idx)] = v
            else:
                regs.pop((name, idx), None)
            return
        if kind == "table":
            (pk, by), cidx = self._table_count(name, idx)
        else:
            fd = self._fd("c_" + name)
            buf = ctypes.create_string_buffer(16 * self.ncpu)
            self.lb.bpf_map_lookup_elem(fd, idx.to_bytes(4, "little"), buf)
            pk = sum(int.from_bytes(buf.raw[16 * c:16 * c + 8], "little") for c in range(self.ncpu))
            by = sum(int.from_bytes(buf.raw[16 * c + 8:16 * c + 16], "little") for c in range(self.ncpu))
        key = (kind, name, idx)
        self.last_read[key] = (pk, by)
        base = self.baseline.get(key, (0, 0))
        pk, by = pk - base[0], by - base[1]
        if kind == "table":
            counters[(f"table.{name}", self.counter_index.get(name, {}).get(cidx - 1, cidx - 1))] = (pk, by)
        else:
            counters[(name, idx)] = (pk, by)

    def _result(self, p: PacketIn, action: int, out: bytes, egress: int, counters: Counters,
                regs: Registers) -> Result:
        snap_c, snap_r = dict(counters), dict(regs)
        if action == XDP_PASS:
            return Result("to_host", None, out, snap_c, snap_r)
        if action == XDP_TX:
            return Result("reflect", p.port, out, snap_c, snap_r)
        if action == XDP_REDIRECT:
            return Result("forward", egress, out, snap_c, snap_r)
        if action == XDP_DROP:
            if egress != NO_PORT:  # forward to a port without a devmap entry: the program dropped it
                return Result("forward", egress, out, snap_c, snap_r,
                              observations={"dropped": True, "xdp": "no devmap entry for the port: XDP_DROP"})
            return Result("drop", None, b"", snap_c, snap_r)
        return Result("error", None, b"", snap_c, snap_r, error=f"XDP action {action} (aborted or unknown)")

    def close(self) -> None:
        """Unload the program and its maps (nothing is pinned); also after a failed open or an interrupted run."""
        try:
            for maps in getattr(self, "trie_maps", {}).values():
                maps.close()
            for cmaps in getattr(self, "cuckoo_maps", {}).values():
                cmaps.close()
            for bmaps in getattr(self, "bitvec_maps", {}).values():
                bmaps.close()
            for copy in getattr(self, "direct_copies", {}).values():
                copy.close()
            self.trie_maps, self.cuckoo_maps, self.bitvec_maps, self.direct_copies = {}, {}, {}, {}
            for fd in getattr(self, "prio_fds", {}).values():
                os.close(fd)
            self.prio_fds = {}
            if self.bpf is not None:
                bpf, self.bpf = self.bpf, None
                bpf.close()
        finally:
            if self._old_affinity is not None:
                old, self._old_affinity = self._old_affinity, None
                os.sched_setaffinity(0, old)


__all__ = ["BuildError", "XdpDriver"]
