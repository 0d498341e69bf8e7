"""The XDP program on live interfaces: loaded once, pinned in bpffs, driven by name from any later process.

Layout in bpffs, `/sys/fs/bpf/c3po/<name>/`: `prog` (the entry program), `map_<map>` for every map of the object
(tables, per-entry counters, counters, registers, the defaults global, the port maps, a split parser's program
array, whose entries the kernel would clear with the last user reference), `prio_<table>` for priority-ordered
tables, and `link_<ifindex>` per interface: the program is attached through a BPF link, pinned, so it stays
attached when the command exits and is detached by removing the pin (`c3po unload`).

Entries live only in the kernel: a later process reads them back from the maps, so there is no second copy to
fall out of step. The one thing the kernel maps do not hold is a priority-ordered table's priorities (its array is
kept sorted by them); `prio_<table>` is an array created here and pinned beside the program, indexed by the
entry's install index, written before the entry itself so a crash between the two writes leaves only an unused
slot.

What a packet in flight sees while entries change (the kernel gives no transaction across map writes):
- hash and LPM tables: each add/modify/delete is atomic for the entry (the kernel swaps the element under RCU);
- multibit tries (`trie.py`): a packet finds either the old or the new best route for its address (one 4-byte
  slot store at a time, new nodes filled before they are linked); a modify rewrites the entry's action data in
  place, with the direct-table caveat below, or, where the leaves hold the data (`layout.TrieLeaf`), stores the
  new leaf into each slot the route covers: per slot old or new data, whole, but not all slots at once;
- direct (array) tables and the defaults: the element is copied in place, so a packet racing a modify can read
  a mix of old and new action data; the same for the per-CPU elements of counted tables (`layout.percpu`: each
  CPU's copy rewritten in place), where a modify also loses the counts packets add between its read of the
  counters and its write (`write_percpu`);
- priority-ordered (linear) tables: an add or delete shifts the entries behind it one element at a time (each a
  copy in place, the same caveat); during the shift an entry may be seen twice, never lost, because entries
  are moved away from the gap first.
`apply` is per entry: a packet may see some of a file's entries and not yet others.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import mmap
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from dataplane import registry
from dataplane.api import (
    ControlError,
    Counter,
    Dataplane,
    DataplaneUnavailable,
    Entry,
    canonical,
    entry_identity,
)

from . import XdpTarget
from . import layout as L
from .bitvec import BitVector
from .ctext import entry_name
from .cuckoo import Cuckoo, CuckooFull
from .libbpf import BpfObject, errno_text, lib
from .readme import entry_key, linear_entry
from .trie import Trie, TrieFull, build, replacement_for

BPFFS = Path("/sys/fs/bpf")
BPF_XDP = 37  # enum bpf_attach_type
BPF_MAP_TYPE_ARRAY = 2
XDP_FLAGS = {"auto": 0, "generic": 2, "native": 4}  # XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE
COUNTER_BYTES = L.COUNTER_BYTES


class LinkCreateOpts(ctypes.Structure):
    """struct bpf_link_create_opts of libbpf 1.1 (only `flags` is used; the rest must be zero)."""

    _fields_ = [("sz", ctypes.c_size_t), ("flags", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("iter_info", ctypes.c_void_p), ("iter_info_len", ctypes.c_uint32),
                ("target_btf_id", ctypes.c_uint32), ("_union", ctypes.c_uint8 * 32)]


_declared = False


def _libbpf() -> ctypes.CDLL:
    global _declared
    lb = lib()
    if not _declared:
        vp, ci, cs, u32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32
        for fn, args, res in (("bpf_obj_pin", [ci, cs], ci), ("bpf_obj_get", [cs], ci),
                              ("bpf_link_create", [ci, ci, ctypes.c_int, vp], ci),
                              ("bpf_map_create", [ctypes.c_int, cs, u32, u32, u32, vp], ci),
                              ("bpf_map__name", [vp], cs),
                              ("bpf_map_lookup_batch", [ci, vp, vp, vp, vp, ctypes.POINTER(u32), vp], ci)):
            f = getattr(lb, fn)
            f.argtypes, f.restype = args, res
        _declared = True
    return lb


def pin_dir(name: str) -> Path:
    return BPFFS / "c3po" / registry.check_name(name)


def _pin_name(map_name: str) -> str:
    """A map's pin file name: its name with the characters bpffs or a shell would trip on replaced."""
    if map_name.endswith(L.TRIES_GLOBAL):  # libbpf names it "<object>.bss", found as ".bss"
        map_name = L.TRIES_GLOBAL
    return "map_" + "".join(c if c.isalnum() or c == "_" else "_" for c in map_name.lstrip("."))


def unavailable() -> str | None:
    from .driver import XdpDriver

    return XdpDriver.unavailable()


def _private_mounts() -> bool:
    """Whether this process runs in a mount namespace of its own, as under `ip netns exec` (a bpffs mounted
    there dies with the command, and the program with it)."""
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink(f"/proc/{os.getppid()}/ns/mnt")
    except OSError:
        return False


def _mount_bpffs() -> None:
    if os.path.ismount(BPFFS):
        return
    if _private_mounts():
        raise ControlError("bpffs is not mounted in this mount namespace (is this `ip netns exec`?): pins made "
                           "here would vanish with the command", "run c3po load --netns NS ... instead")
    BPFFS.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], capture_output=True, text=True)
    if r.returncode != 0:
        raise DataplaneUnavailable(f"cannot mount bpffs on {BPFFS}: {r.stderr.strip()}",
                                   "mount it: mount -t bpf bpf /sys/fs/bpf")


def _pin(fd: int, path: Path) -> None:
    if _libbpf().bpf_obj_pin(fd, str(path).encode()) != 0:
        raise OSError(f"pinning {path} failed: {errno_text(0)}")


def load(prog: ir.Program, record: registry.Record, workdir: Path) -> XdpDataplane:
    why = unavailable()
    if why:
        raise DataplaneUnavailable(why)
    mode = record.mode or "auto"
    for p in record.ports:
        if p.port >= L.TX_PORTS:
            raise ControlError(f"port {p.port} cannot be mapped: the xdp target's egress map holds ports 0..{L.TX_PORTS - 1}",
                               f"number the interfaces below {L.TX_PORTS} (--port N=IF)")
    if mode not in XDP_FLAGS:
        raise ControlError(f"unknown XDP mode '{mode}'", "modes: native, generic (auto: native where the driver "
                           "supports it)")
    _mount_bpffs()
    pins = pin_dir(record.name)
    if pins.exists():  # left by a crashed load of the same name: nothing in it is attached to a record
        shutil.rmtree(pins)
    pins.mkdir(parents=True, mode=0o700)
    record.extra["pins"] = str(pins)
    record.mode = mode
    record.save()
    build = XdpTarget().build(prog, workdir / "build")
    if "object" not in build.files:
        raise DataplaneUnavailable("the object file was not built (is clang installed?)")
    obj = BpfObject(build.files["object"], entry=entry_name(prog.name))
    lb = _libbpf()
    try:
        m = lb.bpf_object__next_map(obj.obj, None)
        while m:
            _pin(lb.bpf_map__fd(m), pins / _pin_name(lb.bpf_map__name(m).decode()))
            m = lb.bpf_object__next_map(obj.obj, m)
        _pin(obj.prog_fd, pins / "prog")
        for t in prog.tables.values():
            if L.table_kind(t) == "linear":
                fd = lb.bpf_map_create(BPF_MAP_TYPE_ARRAY, f"c3po_prio_{t.name}"[:15].encode(), 4, 4, t.size, None)
                if fd < 0:
                    raise OSError(f"creating the priority map of {t.name} failed: {errno_text(fd)}")
                try:
                    _pin(fd, pins / f"prio_{t.name}")
                finally:
                    os.close(fd)
        dp = XdpDataplane(record.name, prog, pins)
        for p in record.ports:
            dp.map_port(p.port, p.ifindex)
        with dp.locked():
            for t in prog.tables.values():
                for e in t.entries:
                    dp._insert(t.name, Entry(canonical(t, tuple(e.match)), e.action.action, tuple(e.action.args),
                                             e.priority, const=True))
        opts = LinkCreateOpts(sz=ctypes.sizeof(LinkCreateOpts), flags=XDP_FLAGS[mode])
        for p in record.ports:
            link = lb.bpf_link_create(obj.prog_fd, p.ifindex, BPF_XDP, ctypes.byref(opts))
            if link < 0:
                raise ControlError(f"attaching to {p.ifname} ({mode} mode) failed: {errno_text(link)}",
                                   "is another XDP program attached? (ip link show dev IF); "
                                   "--mode generic works on every device")
            try:
                _pin(link, pins / f"link_{p.ifindex}")
            finally:
                os.close(link)
        return dp
    finally:
        obj.close()  # the pins hold everything now


def open(prog: ir.Program, record: registry.Record) -> XdpDataplane:
    pins = Path(record.extra.get("pins", pin_dir(record.name)))
    if not (pins / "prog").exists():
        if _private_mounts() and not os.path.ismount(BPFFS):
            raise ControlError("the bpffs pins are not visible in this mount namespace (is this `ip netns "
                               "exec`?)", "run c3po outside it: the record knows the program's namespace")
        raise ControlError(f"program '{record.name}' has no pins in {pins}: it was unloaded or the machine "
                           "rebooted", f"c3po unload {record.name} removes the stale record")
    return XdpDataplane(record.name, prog, pins)


def unload(record: registry.Record) -> list[str]:
    pins = Path(record.extra.get("pins", pin_dir(record.name)))
    removed = []
    if pins.exists():
        for f in sorted(pins.iterdir()):  # links first in sort order does not matter: unpinning detaches
            f.unlink()
            removed.append(f.name)
        pins.rmdir()
    return [f"{pins}/{n}" for n in removed]


def lpm_route(t: ir.Table, match: tuple[KeyElem, ...] | list[KeyElem]) -> tuple[int, int]:
    """(prefix, prefix length) of a single-key lpm entry, as the trie stores it."""
    k, w = match[0], t.keys[0].width
    if k.kind == "any":
        return 0, 0
    plen = k.b if k.kind == "prefix" else w
    return k.a & (((1 << plen) - 1) << (w - plen)), plen


class _MappedTable:
    """A table's lookup array and its action data by entry index, mapped into this process (BPF_F_MMAPABLE).
    Writes through the mapping are the program's memory: no syscall per slot, and aligned 4- and 8-byte stores
    are atomic for a packet reading them."""

    def __init__(self, t: ir.Table, lay: L.TableLayout, array_fd: int, array_bytes: int, tv_fd: int) -> None:
        self.t, self.lay = t, lay
        self._array = _mmap(array_fd, array_bytes)
        self.tv_fd = tv_fd
        # A `percpu` action data array (the entry's counter beside its data) cannot be mapped: written by syscall.
        self._tv = None if lay.percpu else _mmap(tv_fd, lay.value_size * t.size)
        self.mem = memoryview(self._array)

    def write_value(self, index: int, value: bytes, keep_count: bool = False) -> None:
        """An entry's action data; in a `percpu` array every CPU's copy, with the counter zeroed (a new entry) or
        kept as read just before (`keep_count`, a modify: see `write_percpu`)."""
        if self._tv is None:
            write_percpu(self.lay, self.tv_fd, index.to_bytes(4, "little"), value, keep_count)
            return
        vs = self.lay.value_size
        self._tv[index * vs:(index + 1) * vs] = value

    def close(self) -> None:
        self.mem.release()
        self._array.close()
        if self._tv is not None:
            self._tv.close()


def write_percpu(lay: L.TableLayout, fd: int, key: bytes, value: bytes, keep_count: bool) -> None:
    """One element of a `percpu` map (layout.percpu): the value in every CPU's copy, each with its counter zeroed
    or, with `keep_count`, as read just before (packets counted on that entry between the read and the write, a
    few microseconds, are lost: the kernel has no per-CPU compare-and-swap). A packet reads its own CPU's copy,
    which the kernel rewrites in place: racing a modify it can see a mix of old and new action data, as with an
    in-place array update."""
    lb = _libbpf()
    ncpu = lb.libbpf_num_possible_cpus()
    old = None
    if keep_count:
        buf = ctypes.create_string_buffer(lay.elem_size * ncpu)
        if lb.bpf_map_lookup_elem(fd, key, buf) == 0:
            old = buf.raw
    if lb.bpf_map_update_elem(fd, key, L.percpu_elem(lay, ncpu, value, old), 0) != 0:
        raise ControlError(f"map update failed: {errno_text(0)}")


def _mmap(fd: int, nbytes: int) -> mmap.mmap:
    return mmap.mmap(fd, -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE)


class TrieMaps(_MappedTable):
    """A multibit-trie table: its member of the global `c3po_tries` packets walk (in the .bss map `tr_fd`) and the
    action data (`tv_<table>`). Where the member holds the root and every node (layout.trie_map is False) it is
    the trie itself; else it is a copy of the root and first nodes, and the whole trie is the array map
    `tt_<table>` (`tt_fd`), which the trie's bookkeeping reads."""

    def __init__(self, t: ir.Table, lay: L.TableLayout, tt_fd: int | None, tv_fd: int, tr_fd: int,
                 layouts: dict[str, L.TableLayout]) -> None:
        copies = L.trie_copies(layouts)
        first, copied = copies[t.name]
        global_bytes = 4 * sum(n for _, n in copies.values())  # all of c3po_tries
        if tt_fd is None:
            super().__init__(t, lay, tr_fd, global_bytes, tv_fd)
            self.slots = self.mem.cast("I")[first:first + copied]
            self.root: memoryview | None = None
            return
        slots = L.trie_slots(lay.trie_nodes)
        super().__init__(t, lay, tt_fd, 4 * slots, tv_fd)
        self.slots = self.mem.cast("I")[:slots]
        self._root_map = _mmap(tr_fd, global_bytes)
        self._root_mem = memoryview(self._root_map)
        self.root = self._root_mem.cast("I")[first:first + copied]

    def trie(self, plen_of: Any, leaf_of: Any = None, routes: Any = (), empty: bool = False) -> Trie:
        """The trie over the mapped slots; `leaf_of` (entry -> leaf) for a table whose leaves hold the data;
        `empty` for one rebuilt from nothing (Trie)."""
        return Trie(self.slots, self.lay.trie_nodes, self.t.keys[0].width, plen_of, leaf_of, routes, self.root,
                    empty)

    def close(self) -> None:
        self.slots.release()
        if self.root is not None:
            self.root.release()
            self._root_mem.release()
            self._root_map.close()
        super().close()


def trie_root_map(table: str) -> str:
    """The map of a trie's copy: the .bss section's, which holds `c3po_tries` (every table's)."""
    return L.TRIES_GLOBAL


class DirectCopy:
    """A direct table's global copy `td_<table>` (layout.direct_global), which packets read: every element written
    to the table's array map (the record entries are read from) is written here too, after it."""

    def __init__(self, lay: L.TableLayout, fd: int) -> None:
        self.size = lay.value_size
        self._map = _mmap(fd, lay.value_size << lay.keys[0].width)
        self._mem = memoryview(self._map)

    def write(self, key: bytes, value: bytes) -> None:
        at = int.from_bytes(key, "little") * self.size
        self._mem[at:at + self.size] = value

    def close(self) -> None:
        self._mem.release()
        self._map.close()


def cuckoo_bucket_map(table: str, lay: L.TableLayout) -> str:
    """The map of a cuckoo table's buckets: the section of the global `th_<table>`, or the array map of that name."""
    return f".data.th_{table}" if lay.cuckoo_global else f"th_{table}"


def bitvec_map(table: str) -> str:
    """The map of a bit-vector table's images: the section of the global `tb_<table>`."""
    return f".data.tb_{table}"


def direct_copy_map(table: str) -> str:
    """The map of a direct table's global copy: the section of `td_<table>` (libbpf names the map after it)."""
    return f".data.td_{table}"


def install_trie(maps: TrieMaps, routes: list[tuple[tuple[KeyElem, ...], int, bytes]]) -> None:
    """A whole table image at once (the conformance driver's install): every entry's action data, then the trie
    rebuilt from empty (`trie.build`)."""
    plens: dict[int, int] = {}
    leaves: dict[int, int] = {}
    prefixes = []
    for match, index, value in routes:
        maps.write_value(index, value)
        if maps.lay.leaf:
            leaves[index] = L.leaf_of_value(maps.lay, value)
        prefix, plens[index] = lpm_route(maps.t, match)
        prefixes.append((prefix, plens[index], index))
    trie = maps.trie(plens.__getitem__, leaves.__getitem__ if maps.lay.leaf else None, empty=True)
    build(trie, prefixes)
    trie.close()


def _swap(v: int, nbytes: int) -> int:
    return int.from_bytes(v.to_bytes(nbytes, "big"), "little")


def cuckoo_key(t: ir.Table, match: tuple[KeyElem, ...] | list[KeyElem]) -> tuple[int, int]:
    """(k0, k1): the exact key values composed as the generated code composes them (layout.cuckoo_key_parts: the
    bytes of whole-byte header fields as they lie, read as a little-endian number, the other fields above them as
    numbers), k0 the low 64 bits."""
    v = 0
    for part, m in zip(L.cuckoo_key_parts(t), match, strict=True):
        x = m.a & ((1 << part.width) - 1)
        v |= (_swap(x, part.width // 8) if part.raw else x) << part.shift
    return v & ((1 << 64) - 1), v >> 64


def cuckoo_key_values(t: ir.Table, k0: int, k1: int = 0) -> tuple[int, ...]:
    """The key values whose `cuckoo_key` is (k0, k1) (for the conformance generators' searches over hashes)."""
    v = k1 << 64 | k0
    out = []
    for part in L.cuckoo_key_parts(t):
        x = (v >> part.shift) & ((1 << part.width) - 1)
        out.append(_swap(x, part.width // 8) if part.raw else x)
    return tuple(out)


class CuckooMaps(_MappedTable):
    """A cuckoo table: its buckets (`th_<table>`) and the action data (`tv_<table>`)."""

    def __init__(self, t: ir.Table, lay: L.TableLayout, th_fd: int, tv_fd: int) -> None:
        words = L.key_words(t)
        super().__init__(t, lay, th_fd, lay.cuckoo_bytes, tv_fd)
        self.cuckoo = Cuckoo(self.mem, lay.cuckoo_buckets, words, lay.cuckoo_ways, L.cuckoo_tag(t))

    def close(self) -> None:
        self.cuckoo.release()
        super().close()


class BitVecMaps:
    """A priority table classified by bit vectors: its two images (`tb_<table>`, mapped here). The
    priority-ordered array `t_<table>` stays the record of the entries."""

    def __init__(self, lay: L.TableLayout, tb_fd: int) -> None:
        assert lay.bitvec is not None
        self.lay = lay
        self._map = _mmap(tb_fd, BitVector.map_bytes(lay.bitvec))
        self._view = memoryview(self._map)
        self.bv = BitVector(self._view, lay.bitvec)

    def publish(self, rows: list[tuple[tuple[KeyElem, ...], str, tuple[int, ...], int]], default: bytes) -> None:
        """Rows (match, action, arguments, entry index) in priority order, and the default's value as the
        defaults global holds it: an image with a catch-all rank holds it too (bitvec.DEFAULT_RANK)."""
        self.bv.publish([(tuple(m), L.encode_value(self.lay, a, args, index, m)) for m, a, args, index in rows],
                        default)

    def close(self) -> None:
        self.bv.close()
        self._view.release()
        self._map.close()


def install_cuckoo(maps: CuckooMaps, entries: list[tuple[tuple[KeyElem, ...], int, bytes]]) -> None:
    """A whole table image at once (the conformance driver's install)."""
    c = maps.cuckoo
    c.reset()
    for match, index, value in entries:
        maps.write_value(index, value)
        c.insert(*cuckoo_key(maps.t, match), index)


class _TrieState:
    """A trie table's routes as this process knows them while it holds the lock (see `_Rows`)."""

    def __init__(self, maps: TrieMaps, rows: _Rows) -> None:
        t = maps.t
        self.rows = rows
        self.width = t.keys[0].width
        self.routes: dict[tuple[int, int], int] = {}
        self.plens: dict[int, int] = {}
        self.leaves: dict[int, int] = {}  # entry -> its leaf, where leaves hold the data (layout.TrieLeaf)
        lay = maps.lay
        for e, index, _ in rows.rows():
            prefix, plen = lpm_route(t, e.match)
            self.routes[(plen, prefix)] = index
            self.plens[index] = plen
            if lay.leaf:
                self.leaves[index] = L.leaf_of_value(lay, L.encode_value(lay, e.action, e.args, index, e.match))
        self.trie = maps.trie(self.plens.__getitem__, self.leaves.__getitem__ if lay.leaf else None,
                              [(p, n, i) for (n, p), i in self.routes.items()])


class XdpDataplane(Dataplane):
    """Tables, counters and registers of a pinned XDP program, through the same layouts the conformance
    driver uses (`layout.py`, `readme.entry_key` / `linear_entry`): one encoder."""

    target = "xdp"

    def __init__(self, name: str, prog: ir.Program, pins: Path) -> None:
        super().__init__(name, prog)
        self.pins = pins
        self.lb = _libbpf()
        self.ncpu = self.lb.libbpf_num_possible_cpus()
        self.layouts = {n: L.table_layout(prog, t) for n, t in prog.tables.items()}
        self.fds: dict[str, int] = {}
        self.map_fds: dict[str, int] = {}
        self.ids = {i: a for a, i in L.action_ids(prog).items()}
        self.default_offsets: dict[str, int] = {}
        off = 0
        for n in sorted(self.layouts):
            self.default_offsets[n] = off
            off += self.layouts[n].value_size
        self.defaults_size = off
        self.consts = {n: {entry_identity(t, canonical(t, tuple(e.match)), e.priority) for e in t.entries}
                       for n, t in prog.tables.items()}
        self._cache: dict[str, _Rows] | None = None
        self._tries: dict[str, _TrieState] = {}  # valid with _cache
        self._trie_maps: dict[str, TrieMaps] = {}
        self._cuckoo_maps: dict[str, CuckooMaps] = {}
        self._cuckoo_rows: dict[str, _Rows] = {}  # the rows each cuckoo's slot index was last read with
        self._bitvec_maps: dict[str, BitVecMaps] = {}
        self._direct_copies: dict[str, DirectCopy] = {}
        self._depth = 0

    # ---- plumbing
    def _fd(self, pin: str) -> int:
        fd = self.fds.get(pin)
        if fd is None:
            fd = self.lb.bpf_obj_get(str(self.pins / pin).encode())
            if fd < 0:
                raise ControlError(f"cannot open {self.pins / pin}: {errno_text(fd)}",
                                   f"is '{self.name}' still loaded? (c3po status)")
            self.fds[pin] = fd
        return fd

    def _map(self, name: str) -> int:
        fd = self.map_fds.get(name)
        if fd is None:
            fd = self.map_fds[name] = self._fd(_pin_name(name))
        return fd

    def _lookup(self, fd: int, key: bytes, size: int) -> bytes | None:
        buf = ctypes.create_string_buffer(size)
        if self.lb.bpf_map_lookup_elem(fd, key, buf) != 0:
            return None
        return buf.raw

    def _update(self, fd: int, key: bytes, value: bytes) -> None:
        if self.lb.bpf_map_update_elem(fd, key, value, 0) != 0:
            raise ControlError(f"map update failed: {errno_text(0)}")

    def _keys(self, fd: int, key_size: int) -> Iterator[bytes]:
        key = ctypes.create_string_buffer(key_size)
        prev: Any = None
        while self.lb.bpf_map_get_next_key(fd, prev, key) == 0:
            k = key.raw
            yield k
            prev = ctypes.create_string_buffer(k, key_size)

    def _array(self, fd: int, size: int, value_size: int, used: bool = False) -> Iterator[tuple[bytes, bytes | None]]:
        """Every element of an array map, 4,096 per syscall (BPF_MAP_LOOKUP_BATCH): a direct table of a 16-bit
        key is 65,536 elements, which one lookup each would take a quarter of a second to read. With `used`, only
        the elements whose first word (a table value's action id) is not 0, found without a Python step per
        element: the table API reads a direct table's entries on every locked operation."""
        chunk = 4096
        keys = ctypes.create_string_buffer(4 * chunk)
        values = ctypes.create_string_buffer(value_size * chunk)
        cursor = ctypes.create_string_buffer(4)
        count = ctypes.c_uint32()
        first = True
        done = 0
        while done < size:
            count.value = chunk
            rc = self.lb.bpf_map_lookup_batch(fd, None if first else cursor, cursor, keys, values,
                                              ctypes.byref(count), None)
            err = ctypes.get_errno() if rc else 0
            if rc and err != errno.ENOENT:
                raise ControlError(f"reading an array map failed: {os.strerror(err)}")
            raw_k, raw_v = keys.raw, values.raw
            n = count.value
            picked: Iterable[int] = range(n)
            if used and value_size % 4 == 0:
                step = value_size // 4
                picked = itertools.compress(range(n), memoryview(raw_v).cast("I")[:n * step:step].tolist())
            for i in picked:
                yield raw_k[4 * i:4 * i + 4], raw_v[value_size * i:value_size * (i + 1)]
            done += count.value
            first = False
            if rc or count.value == 0:
                return

    def map_port(self, port: int, ifindex: int) -> None:
        """forward(port) leaves through `ifindex`; frames received on `ifindex` carry `port` as ingress port."""
        self._update(self._map("c3po_tx_ports"), port.to_bytes(4, "little"), ifindex.to_bytes(4, "little"))
        self._update(self._map("c3po_ifports"), ifindex.to_bytes(4, "little"), port.to_bytes(4, "little"))

    def _file_lock(self) -> contextlib.AbstractContextManager[object]:
        return registry.lock(self.name)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The registry's file lock; while it is held, what this process read of the tables stays true, so
        entries are read from the kernel once per locked operation, not once per entry."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._file_lock():
            self._depth, self._cache = 1, {}
            mark = registry.unfinished(self.name)
            try:
                if mark.exists():
                    self._recover()
                if mark.parent.is_dir():
                    mark.touch(0o600)
                try:
                    yield
                except ControlError:  # refused before writing, or after putting back what it wrote
                    mark.unlink(missing_ok=True)
                    raise
                mark.unlink(missing_ok=True)
            finally:
                self._depth, self._cache = 0, None

    def _recover(self) -> None:
        """The last command to hold the lock died in the middle of a change. Each table's record (the map its
        entries are read from) is what the program holds; what packets read besides it -- action data, trie
        slots, cuckoo slots, a direct table's global copy, a priority table's array mid-shift and its
        classifier images -- is made to agree with it, each write one a packet in flight may see."""
        for tname in sorted(self.prog.tables):
            t, lay = self.prog.tables[tname], self.layouts[tname]
            if lay.kind == "linear":
                self._recover_linear(tname)
                continue
            rows = self._state(tname).rows()
            if lay.trie_nodes or lay.cuckoo_buckets:
                maps: _MappedTable = self._trie_maps_of(tname) if lay.trie_nodes else self._cuckoo(tname)
                for e, index, _ in rows:  # the data first, then the slots that lead to it
                    maps.write_value(index, L.encode_value(lay, e.action, e.args, index, e.match), keep_count=True)
                if isinstance(maps, CuckooMaps):
                    maps.cuckoo.repair({cuckoo_key(t, e.match): i for e, i, _ in rows})
                else:
                    tr = self._trie(tname)
                    tr.trie.repair([(prefix, plen, i) for (plen, prefix), i in tr.routes.items()])
            elif lay.direct_global:
                fd = self._map(f"t_{tname}")
                for key, raw in self._array(fd, 1 << t.keys[0].width, lay.value_size):
                    self._copy_of(tname).write(key, raw or bytes(lay.value_size))

    def _recover_linear(self, tname: str) -> None:
        """A priority table killed while entries moved holds one of them in two adjacent slots: the copy is
        dropped, the entries behind it move up from the front (each stays visible), then the images are
        rebuilt from the array."""
        st = self._state(tname)
        fd, size = self._map(f"t_{tname}"), self.layouts[tname].entry_size
        keep: list[bytes] = []
        seen: set[int] = set()
        for _, index, slot in st.linear:
            if index not in seen:
                seen.add(index)
                raw = self._lookup(fd, slot, size)
                assert raw is not None
                keep.append(raw)
        if len(keep) != len(st.linear):
            for k, raw in enumerate(keep):
                self._update(fd, k.to_bytes(4, "little"), raw)
            for k in range(len(keep), len(st.linear)):
                self._update(fd, k.to_bytes(4, "little"), bytes(size))
            assert self._cache is not None
            del self._cache[tname]
        self._publish(tname)

    # ---- entries
    def _decode_value(self, lay: L.TableLayout, raw: bytes) -> tuple[str, tuple[int, ...], int]:
        action = self.ids[int.from_bytes(raw[0:4], "little")]
        entry = int.from_bytes(raw[4:8], "little")
        slots = [int.from_bytes(raw[8 + 8 * i:16 + 8 * i], "little") for i in range(lay.slots)]
        return action, L.slot_args(lay, action, slots), entry

    def _decode_key(self, t: ir.Table, lay: L.TableLayout, key: bytes) -> tuple[KeyElem, ...]:
        match: list[KeyElem] = [KeyElem("any")] * len(t.keys)
        if lay.kind == "direct":
            match[0] = KeyElem("value", int.from_bytes(key, "little"))
            return tuple(match)
        for kf in lay.keys:
            v = int.from_bytes(key[kf.offset:kf.offset + kf.size], "big")
            match[kf.index] = KeyElem("value", v)
        if lay.kind == "lpm":
            lk = lay.keys[-1]
            plen = int.from_bytes(key[0:4], "little") - L.lpm_prefix_bits(lay, 0)
            v = match[lk.index].a
            match[lk.index] = KeyElem("prefix", v, plen) if plen > 0 else KeyElem("any")
        return tuple(match)

    def _decode_linear(self, t: ir.Table, lay: L.TableLayout, raw: bytes) -> tuple[KeyElem, ...]:
        words = max(lay.key_size, 1)
        wb = lay.word_bytes
        a = [int.from_bytes(raw[i * wb:(i + 1) * wb], "little") for i in range(words)]
        b = [int.from_bytes(raw[(words + i) * wb:(words + i + 1) * wb], "little") for i in range(words)]
        match = []
        for kf in lay.keys:
            full = (1 << kf.width) - 1
            va, vb = (a[kf.offset] << 64 | a[kf.offset + 1], b[kf.offset] << 64 | b[kf.offset + 1]) \
                if kf.size == 2 else (a[kf.offset], b[kf.offset])
            if kf.kind == "range":
                match.append(KeyElem("range", va, vb))
            elif kf.kind == "exact":
                match.append(KeyElem("value", va))
            elif kf.kind == "lpm":
                plen = bin(vb).count("1")
                match.append(KeyElem("prefix", va, plen))
            else:
                match.append(KeyElem("mask", va, vb) if vb != full else KeyElem("mask", va, full))
        return canonical(t, tuple(match))

    def _read_entries(self, tname: str) -> list[tuple[Entry, int, bytes]]:
        """(entry, install index, key or array slot bytes), in match order."""
        t, lay = self.prog.tables[tname], self.layouts[tname]
        fd = self._map(f"t_{tname}")
        out: list[tuple[Entry, int, bytes]] = []
        if lay.kind == "linear":
            prio_fd = self._fd(f"prio_{tname}")
            for slot in range(t.size):
                raw = self._lookup(fd, slot.to_bytes(4, "little"), lay.entry_size)
                if raw is None or raw[-lay.value_size:-lay.value_size + 4] == bytes(4):
                    break
                action, args, index = self._decode_value(lay, raw[-lay.value_size:])
                prio_raw = self._lookup(prio_fd, index.to_bytes(4, "little"), 4) or bytes(4)
                prio = int.from_bytes(prio_raw, "little")
                match = self._decode_linear(t, lay, raw)
                out.append((self._entry(t, match, action, args, prio), index, slot.to_bytes(4, "little")))
            return out
        if lay.kind == "direct":  # a `percpu` element: every CPU's copy holds the same action data
            pairs: Iterator[tuple[bytes, bytes | None]] = self._array(
                fd, 1 << t.keys[0].width, lay.elem_size * self.ncpu if lay.percpu else lay.value_size, used=True)
        else:
            pairs = ((k, self._lookup(fd, k, lay.value_size)) for k in self._keys(fd, lay.key_size))
        for key, raw in pairs:
            if raw is None or raw[0:4] == bytes(4):
                continue
            action, args, index = self._decode_value(lay, raw)
            match = canonical(t, self._decode_key(t, lay, key))
            out.append((self._entry(t, match, action, args, 0), index, key))
        out.sort(key=lambda x: x[1])  # install order, as the reference lists them
        return out

    def _entry(self, t: ir.Table, match: tuple[KeyElem, ...], action: str, args: tuple[int, ...],
               prio: int) -> Entry:
        const = entry_identity(t, match, prio) in self.consts[t.name]
        return Entry(match, action, args, prio, const=const)

    def _state(self, tname: str) -> _Rows:
        if self._cache is None:
            return _Rows(self.prog.tables[tname], self._read_entries(tname))
        rows = self._cache.get(tname)
        if rows is None:
            rows = self._cache[tname] = _Rows(self.prog.tables[tname], self._read_entries(tname))
        return rows

    def _trie_maps_of(self, tname: str) -> TrieMaps:
        maps = self._trie_maps.get(tname)
        if maps is None:
            maps = self._trie_maps[tname] = TrieMaps(self.prog.tables[tname], self.layouts[tname],
                                                     self._map(f"tt_{tname}") if L.trie_map(self.layouts[tname])
                                                     else None, self._map(f"tv_{tname}"),
                                                     self._map(trie_root_map(tname)), self.layouts)
        return maps

    def _cuckoo(self, tname: str) -> CuckooMaps:
        maps = self._cuckoo_maps.get(tname)
        if maps is None:
            maps = self._cuckoo_maps[tname] = CuckooMaps(self.prog.tables[tname], self.layouts[tname],
                                                         self._map(cuckoo_bucket_map(tname, self.layouts[tname])),
                                                         self._map(f"tv_{tname}"))
        rows = self._state(tname)
        if self._cuckoo_rows.get(tname) is not rows:  # a new locked operation: another process may have written
            maps.cuckoo.scan()
            self._cuckoo_rows[tname] = rows
        return maps

    def _bitvec(self, tname: str) -> BitVecMaps | None:
        """The table's bit-vector maps, None when it is searched linearly."""
        if self.layouts[tname].bitvec is None:
            return None
        maps = self._bitvec_maps.get(tname)
        if maps is None:
            maps = self._bitvec_maps[tname] = BitVecMaps(self.layouts[tname], self._map(bitvec_map(tname)))
        return maps

    def _publish(self, tname: str) -> None:
        """After the record changed: the classifier's other image rebuilt from it, then made the live one."""
        maps = self._bitvec(tname)
        if maps is not None:
            off, size = self.default_offsets[tname], self.layouts[tname].value_size
            maps.publish([(e.match, e.action, e.args, index) for e, index, _ in self._state(tname).linear],
                         self._defaults_raw()[off:off + size])

    def _trie(self, tname: str) -> _TrieState:
        """The trie as the kernel holds it, read once per locked operation (it is its own record)."""
        rows = self._state(tname)
        st = self._tries.get(tname)
        if st is None or st.rows is not rows:  # a new locked operation read the rows again
            if st is not None:
                st.trie.close()
            st = self._tries[tname] = _TrieState(self._trie_maps_of(tname), rows)
        return st

    def _entries(self, table: str, counters: bool) -> list[Entry]:
        rows = self._state(table).rows()
        if not counters or not self.prog.tables[table].counters:
            return [e for e, _, _ in rows]
        if self.layouts[table].percpu:
            return [Entry(e.match, e.action, e.args, e.priority,
                          self._elem_counter(table, self._elem_key(table, i, key)), e.const)
                    for e, i, key in rows]
        fd = self._map(f"tc_{table}")
        return [Entry(e.match, e.action, e.args, e.priority, self._percpu_counter(fd, i + 1), e.const)
                for e, i, _ in rows]

    def _elem_map(self, table: str) -> int:
        """The map of a `percpu` table's elements: the direct array, or the action data array of a trie or cuckoo."""
        return self._map(f"t_{table}" if self.layouts[table].kind == "direct" else f"tv_{table}")

    def _elem_key(self, table: str, index: int, key: bytes) -> bytes:
        """The element of install index `index` (-1: the default's) whose record key is `key`."""
        lay = self.layouts[table]
        if index < 0:
            return lay.default_elem.to_bytes(4, "little")
        return key if lay.kind == "direct" else index.to_bytes(4, "little")

    def _elem_counter(self, table: str, elem: bytes) -> Counter:
        """The count in a `percpu` table's element (layout.percpu), summed over the CPUs."""
        lay = self.layouts[table]
        raw = self._lookup(self._elem_map(table), elem, lay.elem_size * self.ncpu) or b""
        return L.percpu_counter(lay, self.ncpu, raw) if raw else (0, 0)

    def _write_direct(self, table: str, key: bytes, value: bytes, keep_count: bool) -> None:
        """A direct table's element (in a `percpu` table every CPU's copy: `write_percpu`)."""
        lay = self.layouts[table]
        if lay.percpu:
            write_percpu(lay, self._map(f"t_{table}"), key, value, keep_count)
        else:
            self._update(self._map(f"t_{table}"), key, value)
        if lay.direct_global:
            self._copy_of(table).write(key, value)

    def _copy_of(self, table: str) -> DirectCopy:
        copy = self._direct_copies.get(table)
        if copy is None:
            copy = self._direct_copies[table] = DirectCopy(self.layouts[table], self._map(direct_copy_map(table)))
        return copy

    def _percpu_counter(self, fd: int, index: int) -> Counter:
        raw = self._lookup(fd, index.to_bytes(4, "little"), COUNTER_BYTES * self.ncpu) or b""
        pk = sum(int.from_bytes(raw[16 * c:16 * c + 8], "little") for c in range(self.ncpu))
        by = sum(int.from_bytes(raw[16 * c + 8:16 * c + 16], "little") for c in range(self.ncpu))
        return pk, by

    def _zero_counter(self, table: str, index: int) -> None:
        """Zero the counter of install index `index` (-1: the default action's)."""
        lay = self.layouts[table]
        if lay.percpu:  # the element's value rewritten with zero counts (an insert or delete writes its own)
            row = next((k for _, i, k in self._state(table).rows() if i == index), None)
            if index >= 0 and row is None:
                return
            elem = self._elem_key(table, index, row or b"")
            raw = self._lookup(self._elem_map(table), elem, lay.elem_size * self.ncpu)
            if raw:
                write_percpu(lay, self._elem_map(table), elem, raw[:lay.value_size], keep_count=False)
            return
        if self.prog.tables[table].counters:
            self._update(self._map(f"tc_{table}"), (index + 1).to_bytes(4, "little"),
                         bytes(COUNTER_BYTES * self.ncpu))

    def _insert(self, table: str, entry: Entry) -> None:
        t, lay = self.prog.tables[table], self.layouts[table]
        st = self._state(table)
        index = st.alloc()
        self._zero_counter(table, index)  # a deleted entry's counts must not show up in the new one
        value = L.encode_value(lay, entry.action, entry.args, index, entry.match)
        fd = self._map(f"t_{table}")
        match = entry.match  # canonical: api.Table checked it (and load() canonicalises the spec's entries)
        new = self._entry(t, match, entry.action, entry.args, entry.priority)
        if lay.kind == "linear":
            self._update(self._fd(f"prio_{table}"), index.to_bytes(4, "little"),
                         entry.priority.to_bytes(4, "little"))
            rows = st.linear
            pos = next((k for k, (e, _, _) in enumerate(rows) if e.priority < entry.priority), len(rows))
            # Make room from the end backwards: every entry stays visible, at worst twice, while they move.
            for k in range(len(rows), pos, -1):
                src = self._lookup(fd, (k - 1).to_bytes(4, "little"), lay.entry_size)
                assert src is not None
                self._update(fd, k.to_bytes(4, "little"), src)
            self._update(fd, pos.to_bytes(4, "little"), linear_entry(lay, list(match), value))
            rows.insert(pos, (new, index, b""))
            self._publish(table)
            return
        key = entry_key(lay, list(match))
        if lay.trie_nodes:
            self._trie_insert(table, match, index, value)
        elif lay.cuckoo_buckets:
            maps = self._cuckoo(table)
            maps.write_value(index, value)  # the data first, then the slot that leads to it
            try:
                maps.cuckoo.insert(*cuckoo_key(t, match), index)
            except CuckooFull as exc:
                st.free(index)
                raise ControlError(f"table '{table}' cannot place this key: {exc}",
                                   "build it as impl: hash, or with a larger size (docs/performance.md)") from None
        if lay.kind == "direct":
            self._write_direct(table, key, value, keep_count=False)
        else:
            self._update(fd, key, value)
        st.by_ident[st.ident(new)] = (new, index, key)

    def _trie_insert(self, table: str, match: tuple[KeyElem, ...], index: int, value: bytes) -> None:
        """Action data first, then the route: a packet never finds an entry index whose data is not there. The
        trie refuses an insert it has no nodes for before writing anything (the data written is unreferenced)."""
        tr = self._trie(table)
        prefix, plen = lpm_route(self.prog.tables[table], match)
        lay = self.layouts[table]
        self._trie_maps_of(table).write_value(index, value)
        tr.plens[index] = plen
        if lay.leaf:
            tr.leaves[index] = L.leaf_of_value(lay, value)
        try:
            tr.trie.insert(prefix, plen, index)
        except TrieFull:
            del tr.plens[index]
            tr.leaves.pop(index, None)
            self._state(table).free(index)
            raise ControlError(
                f"table '{table}' cannot take /{plen}: its multibit trie has {len(tr.trie.free)} free nodes of "
                f"{tr.trie.nodes:,} and this prefix needs {tr.trie.needed(prefix, plen)}",
                f"build it with more nodes (impl: {{kind: multibit_trie, nodes: {2 * tr.trie.nodes}}}) or as "
                "impl: lpm_trie (docs/performance.md)") from None
        tr.routes[(plen, prefix)] = index

    def _modify(self, table: str, old: Entry, new: Entry) -> None:
        lay = self.layouts[table]
        st = self._state(table)
        k, (e, index, key) = st.find(old)
        value = L.encode_value(lay, new.action, new.args, index, e.match)
        fd = self._map(f"t_{table}")
        row = (Entry(e.match, new.action, new.args, e.priority, const=e.const), index, key)
        if lay.kind == "linear":
            self._update(fd, k.to_bytes(4, "little"), linear_entry(lay, list(e.match), value))
            st.linear[k] = row
            self._publish(table)  # the image holds the values too
        else:
            if lay.trie_nodes:
                self._trie_maps_of(table).write_value(index, value, keep_count=True)
                if lay.leaf:  # the data is in the leaves: each slot the route covers gets the new one
                    tr = self._trie(table)
                    tr.leaves[index] = L.leaf_of_value(lay, value)
                    tr.trie.rewrite(*lpm_route(self.prog.tables[table], e.match), index)
            elif lay.cuckoo_buckets:
                self._cuckoo(table).write_value(index, value, keep_count=True)
            if lay.kind == "direct":
                self._write_direct(table, key, value, keep_count=True)
            else:
                self._update(fd, key, value)
            st.by_ident[st.ident(e)] = row

    def _remove(self, table: str, entry: Entry) -> None:
        lay = self.layouts[table]
        st = self._state(table)
        k, (e, index, key) = st.find(entry)
        fd = self._map(f"t_{table}")
        if lay.kind == "linear":
            # Close the gap from the front: the entry behind moves up before its old slot is overwritten.
            n = len(st.linear)
            for s in range(k, n - 1):
                src = self._lookup(fd, (s + 1).to_bytes(4, "little"), lay.entry_size)
                assert src is not None
                self._update(fd, s.to_bytes(4, "little"), src)
            self._update(fd, (n - 1).to_bytes(4, "little"), bytes(lay.entry_size))
            del st.linear[k]
            self._publish(table)
        else:
            if lay.trie_nodes:  # the route goes first: then nothing finds the entry index any more
                tr = self._trie(table)
                prefix, plen = lpm_route(self.prog.tables[table], e.match)
                del tr.routes[(plen, prefix)]
                tr.trie.delete(prefix, plen, index, replacement_for(prefix, plen, tr.width, tr.routes))
                del tr.plens[index]
                tr.leaves.pop(index, None)
            elif lay.cuckoo_buckets:  # the slot first, as for the trie
                self._cuckoo(table).cuckoo.delete(*cuckoo_key(self.prog.tables[table], e.match))
            if lay.kind == "direct":
                self._write_direct(table, key, bytes(lay.value_size), keep_count=False)
            elif self.lb.bpf_map_delete_elem(fd, key) != 0:
                raise ControlError(f"deleting from table '{table}' failed: {errno_text(0)}")
            del st.by_ident[st.ident(e)]
        st.free(index)
        self._zero_counter(table, index)

    # ---- defaults
    def _defaults_raw(self) -> bytes:
        raw = self._lookup(self._map(L.DEFAULTS_MAP), bytes(4), self.defaults_size)
        if raw is None:
            raise ControlError(f"reading {L.DEFAULTS_MAP} failed: {errno_text(0)}")
        return raw

    def _get_default(self, table: str) -> tuple[str, tuple[int, ...]]:
        lay, off = self.layouts[table], self.default_offsets[table]
        action, args, _ = self._decode_value(lay, self._defaults_raw()[off:off + lay.value_size])
        return action, args

    def _set_default(self, table: str, action: str, args: tuple[int, ...]) -> None:
        lay, off = self.layouts[table], self.default_offsets[table]
        raw = bytearray(self._defaults_raw())
        raw[off:off + lay.value_size] = L.encode_value(lay, action, args, L.DEFAULT_ENTRY, None)
        self._update(self._map(L.DEFAULTS_MAP), bytes(4), bytes(raw))
        if lay.bitvec is not None and lay.bitvec.default_rank:  # the classifier's image holds it too
            self._publish(table)

    def _default_counter(self, table: str) -> Counter | None:
        if not self.prog.tables[table].counters:
            return None
        lay = self.layouts[table]
        if lay.percpu:
            return self._elem_counter(table, self._elem_key(table, -1, b""))
        return self._percpu_counter(self._map(f"tc_{table}"), 0)

    # ---- counters and registers
    def _counter_read(self, name: str, index: int | None) -> dict[int, Counter]:
        fd = self._map(f"c_{name}")
        indexes = [index] if index is not None else range(self.prog.counters[name].size)
        out = {}
        for i in indexes:
            c = self._percpu_counter(fd, i)
            if c != (0, 0) or index is not None:
                out[i] = c
        return out

    def _counter_reset(self, name: str, index: int | None) -> None:
        fd = self._map(f"c_{name}")
        zero = bytes(COUNTER_BYTES * self.ncpu)
        for i in [index] if index is not None else range(self.prog.counters[name].size):
            self._update(fd, i.to_bytes(4, "little"), zero)

    def _register_read(self, name: str, index: int | None) -> dict[int, int]:
        reg = self.prog.registers[name]
        fd = self._map(f"r_{name}")
        out = {}
        for i in [index] if index is not None else range(reg.size):
            raw = self._lookup(fd, i.to_bytes(4, "little"), 16) or bytes(16)
            v = (int.from_bytes(raw[0:8], "little") << 64 | int.from_bytes(raw[8:16], "little")) \
                if reg.width > 64 else int.from_bytes(raw[0:8], "little")
            if v or index is not None:
                out[i] = v
        return out

    def _register_write(self, name: str, index: int, value: int) -> None:
        from .driver import XdpDriver

        reg = self.prog.registers[name]
        self._update(self._map(f"r_{name}"), index.to_bytes(4, "little"), XdpDriver._reg_bytes(reg, value))

    def close(self) -> None:
        for st in self._tries.values():
            st.trie.close()
        self._tries = {}
        for maps in self._trie_maps.values():
            maps.close()
        for cmaps in self._cuckoo_maps.values():
            cmaps.close()
        for bmaps in self._bitvec_maps.values():
            bmaps.close()
        for copy in self._direct_copies.values():
            copy.close()
        self._trie_maps, self._cuckoo_maps, self._cuckoo_rows, self._bitvec_maps = {}, {}, {}, {}
        self._direct_copies = {}
        for fd in self.fds.values():
            os.close(fd)
        self.fds, self.map_fds = {}, {}



class _Rows:
    """A table's entries as this process last read or wrote them, valid while it holds the lock: linear tables
    as a list in array order, others by identity (in install order); install indexes handed out lowest
    first, in amortised constant time, so `apply` of N entries costs N map writes and no rescans."""

    def __init__(self, table: ir.Table, rows: list[tuple[Entry, int, bytes]]) -> None:
        self.table = table
        self.is_linear = table.uses_priority
        self.linear: list[tuple[Entry, int, bytes]] = rows if self.is_linear else []
        self.by_ident: dict[tuple[Any, ...], tuple[Entry, int, bytes]] = \
            {} if self.is_linear else {self.ident(r[0]): r for r in rows}
        self.used = {i for _, i, _ in rows}
        self.hint = 0

    def ident(self, e: Entry) -> tuple[Any, ...]:
        return entry_identity(self.table, e.match, e.priority)

    def rows(self) -> list[tuple[Entry, int, bytes]]:
        return self.linear if self.is_linear else list(self.by_ident.values())

    def find(self, entry: Entry) -> tuple[int, tuple[Entry, int, bytes]]:
        """(array position for linear tables, else 0; the row)."""
        ident = entry_identity(self.table, canonical(self.table, entry.match), entry.priority)
        if not self.is_linear:
            row = self.by_ident.get(ident)
            if row is not None:
                return 0, row
        for k, row in enumerate(self.linear):
            if self.ident(row[0]) == ident:
                return k, row
        raise ControlError(f"table '{self.table.name}' has no entry with this match")

    def alloc(self) -> int:
        while self.hint in self.used:
            self.hint += 1
        if self.hint >= self.table.size:
            raise ControlError(f"table '{self.table.name}' is full ({self.table.size} entries)")
        self.used.add(self.hint)
        return self.hint

    def free(self, index: int) -> None:
        self.used.discard(index)
        self.hint = min(self.hint, index)
