"""Generated table-structure shapes (issue 16, survivors of issue 14's xdp structures): vectors whose control-plane
`ops` put the table's entries where the xdp target's own lookup structures go wrong, for every table the xdp
target builds as a cuckoo hash or a multibit trie (it says which: `targets.xdp.layout.table_layout`).

Cuckoo hash (targets/xdp/cuckoo.py): keys chosen with the target's own hash functions (`Cuckoo.hashes`) so that
they share a bucket with the packet's key, and the op sequence replayed on the target's own `Cuckoo` (in a
bytearray) to check where every key ends up:

- bucket1_slot0..3: 0..3 other keys in the packet's first bucket, then the packet's key (hit in slot w);
- bucket2_slot0..3: its first bucket full, 0..3 other keys in its second, then the packet's key;
- miss_full: both buckets full of other keys, the packet's key absent (every slot compared, none matches);
- relocated: both buckets full, then the packet's key inserted: a key moves to its other bucket (BFS relocation);
  relocated_moved: a packet looks the moved key up there;
- deleted: the packet's key deleted from slot 1 of a full bucket (a stale key behind a cleared entry);
- reinserted: deleted, its slot taken by another key, inserted again: now in its second bucket.

Multibit trie (targets/xdp/trie.py: 16-bit root, 8-bit nodes, leaf-pushed): prefixes of the packet's address,
packets steered to addresses that leave each prefix at the bit after it (`_out`):

- root_nested: a /8 over a /16 (leaf pushed over 256 root slots); split_root_slot: a /16 then a /17 (a node
  under a root slot, the /16 pushed into its other half); node_boundaries: prefixes at and around every node
  boundary the key width has (shortest first); shorter_after_longer: the same inserted longest first (a
  shorter prefix must not overwrite the longer one's slots); delete_restores: a longer prefix deleted (the
  shorter one comes back, the node collapses) and re-added; host_route: a full-length route beside its
  neighbours (every level of the trie, IPv6 /128 included).

Every item is `<table>:<shape>`, reported under CLASS; covered when the oracle's result for every packet of the
shape is the entry the shape meant (and, for the cuckoo, the replay put the key where the shape says). Entries
take actions (and arguments) whose outcomes differ for the packet where the table has such, so a lookup that
finds the wrong entry shows. Tags: `structure` plus the shape. Expected results come from the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from targets.xdp.control import cuckoo_key, cuckoo_key_values
from targets.xdp.cuckoo import WAYS, Cuckoo, CuckooFull, ways_for
from targets.xdp.layout import key_words, table_layout
from targets.xdp.trie import ROOT_BITS, STRIDE

from .gen_coverage import ClassCoverage
from .gen_sequences import _delete, _entry, _insert, _other_keys
from .model import ControlOp, ControlState, EntryState, ReplayError, replay

__all__ = [
    "BITVEC_CLASS",
    "CLASS",
    "CUCKOO_SHAPES",
    "LINEAR_CLASS",
    "TRIE_SHAPES",
    "bitvec_rank_vectors",
    "bitvec_ranks",
    "linear_ranks",
    "structure_of",
    "structure_vectors",
]

CLASS = "table_structures"
BITVEC_CLASS = "bitvec_ranks"
LINEAR_CLASS = "linear_ranks"


def cuckoo_shapes(ways: int) -> tuple[str, ...]:
    """The shapes of a cuckoo table with `ways` slots per bucket (targets/xdp/cuckoo.ways_for)."""
    return (*(f"bucket{b}_slot{w}" for b in (1, 2) for w in range(ways)),
            "miss_full", "relocated", "relocated_moved", "deleted", "reinserted")


CUCKOO_SHAPES = cuckoo_shapes(WAYS)  # a large table's
TRIE_SHAPES = ("root_nested", "split_root_slot", "node_boundaries", "shorter_after_longer", "delete_restores",
               "host_route")
SEARCH_LIMIT = 1 << 21  # candidate keys tried for the keys that share the packet's buckets
SALTS = 3  # argument variants per action tried for distinct outcomes
POOL_TRIES = 16  # packets reaching the table tried for one whose hit and miss differ
MAX_SITES = 6  # parse and control paths to a table's apply that get the shapes

Want = tuple[int, ...]
Packet = tuple[Any, ...]  # (pid, data, port, control, regs)


def structure_of(prog: ir.Program, t: ir.Table) -> tuple[str, int] | None:
    """("cuckoo", buckets) or ("trie", nodes) as the xdp target builds the table, None for its other kinds."""
    if not t.keys:
        return None
    lay = table_layout(prog, t)
    if lay.cuckoo_buckets:
        return "cuckoo", lay.cuckoo_buckets
    if lay.trie_nodes:
        return "trie", lay.trie_nodes
    return None


class _Table:
    """One table's generation: the packet that reaches it, packets steered to other key values, the entries'
    outcomes and the emitted shapes' coverage."""

    def __init__(self, ctx: Any, t: ir.Table, part: ClassCoverage, pool: list[Any], site: str) -> None:
        self.run_with = ctx.run_with
        self.t, self.prog, self.part = t, ctx.prog, part
        self.name = t.name + site  # coverage items are `<name>:<shape>`
        self.acts = [a for a in t.actions if a in self.prog.actions]
        self.failed: set[str] = set()
        self.main: Packet
        self.keyvals: Want
        # the packet: the first of the site's packets for which a hit and a miss differ (a miss path that ends
        # like the hit path would let every lookup mutant through); steering starts from it
        best: tuple[Any, list[tuple[str, int]]] | None = None
        for cand in pool[:POOL_TRIES]:
            self.main, self.keyvals = (*cand[:3], _strip(t, cand[3]), cand[4]), tuple(cand[5])
            palette, differs = self._palette()
            if best is None or differs:
                best = cand, palette
            if differs:
                break
        assert best is not None
        first, self.palette = best
        self.differs = differs
        pid, data, port, control, regs, keyvals = first
        self.keyvals = tuple(keyvals)
        self.main = (pid, data, port, _strip(t, control), regs)
        self.packets: dict[Want, Packet | None] = {self.keyvals: self.main}
        self.ctx = replace(ctx, pools={**ctx.pools, t.name: [first, *(p for p in pool if p is not first)]})

    def packet(self, want: Want) -> Packet | None:
        """A packet reaching the table with these key values (gen_classes' steering), None when none is found."""
        if want not in self.packets:
            got: Any
            try:
                from .gen_classes import _steer

                got = _steer(self.ctx, self.t.name, want, "structure")
            except (ImportError, AttributeError):
                got = None
            self.packets[want] = (None if got is None or isinstance(got, str)
                                  else (*got[:3], _strip(self.t, got[3]), got[4]))
        return self.packets[want]

    def _palette(self) -> tuple[list[tuple[str, int]], bool]:
        """(action, salt) pairs whose entries give the main packet distinct outcomes, those unlike a miss first;
        whether any is unlike a miss."""
        _pid, data, port, base, regs = self.main

        def sig(ops: tuple[ControlOp, ...]) -> tuple[Any, ...]:
            r = self.run_with(ControlState(base.entries, base.defaults, ops), data, port, regs)
            return r.verdict, r.port, r.data, tuple(sorted(r.counters.items())), tuple(sorted(r.registers.items()))

        miss = sig(())
        seen: dict[tuple[Any, ...], tuple[str, int]] = {}
        for a in self.acts:
            for salt in range(SALTS if self.prog.actions[a].params else 1):
                try:
                    s = sig((_insert(_entry(self.t, self.keyvals, a, self.prog, salt)),))
                except ReplayError:  # the packet's key is a constant entry's
                    break
                seen.setdefault(s, (a, salt))
        out = [v for s, v in seen.items() if s != miss] + [v for s, v in seen.items() if s == miss]
        return out or [(self.acts[0], 0)], any(s != miss for s in seen)

    def entry(self, keyvals: Want, n: int, match: tuple[KeyElem, ...] | None = None) -> EntryState:
        """An entry for `keyvals` (or with `match`) taking the n-th outcome of the palette (cyclically)."""
        a, salt = self.palette[n % len(self.palette)]
        e = _entry(self.t, keyvals, a, self.prog, salt)
        return EntryState(e.table, match or e.match, e.action, e.args, e.priority)

    def emit(self, shape: str, label: str, ops: list[ControlOp], want: Want, expect: EntryState | None) -> None:
        """One vector: the packet steered to `want` after `ops`; the shape stays covered while every packet finds
        `expect` (None: misses the table)."""
        pkt = self.packet(want)
        if pkt is None:
            self.fail(shape, "no packet could be steered to the key values the shape needs")
            return
        pid, data, port, base, regs = pkt
        state = ControlState(base.entries, base.defaults, tuple(ops))
        try:
            replay(self.prog, state)
        except ReplayError as exc:  # e.g. more entries than the table's size
            self.fail(shape, f"the sequence cannot be applied: {exc}")
            return
        r = self.ctx.emit(f"struct.{self.name}.{label}", pid, state, data, ["structure", shape], port, regs)
        hit = r.observations.get("hit", {}).get(self.t.name)
        action = r.observations.get("tables", {}).get(self.t.name)
        ok = (not hit) if expect is None else bool(hit) and action == expect.action
        if not ok:
            self.fail(shape, "the oracle's result is not the entry the shape places (an earlier table, a condition "
                      "or a constant entry decides)")
        elif shape not in self.failed:
            self.part.covered.add(f"{self.name}:{shape}")

    def fail(self, shape: str, why: str) -> None:
        """The shape is not covered, whatever its other packets do."""
        if shape not in self.failed:
            self.failed.add(shape)
            self.part.covered.discard(f"{self.name}:{shape}")
            self.part.infeasible[f"{self.name}:{shape}"] = why


def _strip(t: ir.Table, control: ControlState) -> ControlState:
    """The state without the table's own entries and default (the shapes put their own)."""
    return ControlState(tuple(e for e in control.entries if e.table != t.name),
                        tuple(d for d in control.defaults if d[0] != t.name))


def _sites(ctx: Any, t: ir.Table) -> list[list[Any]]:
    """The table's packets (gen_classes' pool) grouped by parse path and the control path that reaches its apply:
    each `apply` of a table is a lookup of its own in the generated code, and the xdp target copies the control
    per parse path, so each needs the shapes. At most MAX_SITES groups."""
    try:
        from .gen_classes import _pool

        pool = list(_pool(ctx, t.name))
    except (ImportError, AttributeError):
        pool = []
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for cand in pool or [ctx.first_apply[t.name]]:
        r = ctx.run_with(_strip(t, cand[3]), cand[1], cand[2], cand[4])
        trace = r.observations.get("trace", [])
        end = next((i for i, x in enumerate(trace) if x[0] == "apply" and x[1] == t.name), len(trace))
        path = (tuple(r.observations.get("path", [])),
                tuple(x if x[0] == "if" else x[:2] for x in trace[:end] if x[0] in ("if", "apply")))
        if path in groups or len(groups) < MAX_SITES:
            groups.setdefault(path, []).append(cand)
    return list(groups.values()) or [[ctx.first_apply[t.name]]]


def structure_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS. Items are
    `<table>:<shape>`, `<table>@<n>:<shape>` for the n-th parse and control path to the table's apply."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    for t in prog.tables.values():
        kind = structure_of(prog, t)
        if kind is None:
            continue
        shapes = cuckoo_shapes(ways_for(t.size)) if kind[0] == "cuckoo" else TRIE_SHAPES
        why = ("no generated packet reaches the table" if t.name not in ctx.first_apply
               else "the table has no action an entry could name" if not any(a in prog.actions for a in t.actions)
               else None)
        if why is not None:
            part.all += [f"{t.name}:{s}" for s in shapes]
            for s in shapes:
                part.infeasible[f"{t.name}:{s}"] = why
            continue
        for n, pool in enumerate(_sites(ctx, t), 1):
            tab = _Table(ctx, t, part, pool, f"@{n}" if n > 1 else "")
            part.all += [f"{tab.name}:{s}" for s in shapes]
            if n > 1 and not tab.differs:
                for s in shapes:
                    part.infeasible[f"{tab.name}:{s}"] = "on this path a hit and a miss of the table end alike"
                continue
            if kind[0] == "cuckoo":
                _cuckoo_shapes(tab, kind[1])
            else:
                _trie_shapes(tab)
    for item in part.all:
        if item not in part.covered and item not in part.infeasible:
            part.infeasible[item] = "no vector reached the shape"
    bitvec_rank_vectors(ctx)


# ------------------------------------------------------------------------------------------------ cuckoo


def _exact(keyvals: Want) -> tuple[KeyElem, ...]:
    return tuple(KeyElem("value", v) for v in keyvals)


def _split(t: ir.Table, v: int) -> Want:
    """Key values from the two words `cuckoo_key` gives (v = k1 << 64 | k0)."""
    return cuckoo_key_values(t, v & ((1 << 64) - 1), v >> 64)


def _colliding(t: ir.Table, cu: Cuckoo, start: Want, wants: dict[int, int],
               avoid: set[tuple[int, int]]) -> dict[int, list[Want]]:
    """Per bucket in `wants`, up to that many key tuples whose first hash is that bucket: the packet's key with
    its low bits varied (those of the field at bit 0 of the key's words, layout.cuckoo_key_parts: the last key
    field, or the first byte of the first whole-byte header field), so a steered packet changes one field."""
    k0, k1 = cuckoo_key(t, _exact(start))
    v = k1 << 64 | k0
    found: dict[int, list[Want]] = {b: [] for b in wants}
    span = min(SEARCH_LIMIT, 1 << sum(k.width for k in t.keys))
    need = sum(wants.values())
    for i in range(1, span):
        x = v ^ i
        key = (x & ((1 << 64) - 1), x >> 64)
        h = cu.hashes(*key)[0]
        got = found.get(h)
        if got is not None and len(got) < wants[h] and key not in avoid:
            got.append(_split(t, x))
            need -= 1
            if not need:
                break
    return found


def _replay(cu: Cuckoo, t: ir.Table, ops: list[ControlOp]) -> dict[tuple[int, int], tuple[int, int]] | str:
    """Where every key is after the constant entries and `ops`, replayed on the target's own cuckoo (as the xdp
    driver installs them, then applies the ops through its table API); or why the target refuses."""
    cu.reset()
    try:
        for i, e in enumerate(t.entries):
            cu.insert(*cuckoo_key(t, tuple(e.match)), i)
        for i, op in enumerate(ops, len(t.entries)):
            if op.op == "insert":
                cu.insert(*cuckoo_key(t, op.match), i)
            elif op.op == "delete":
                cu.delete(*cuckoo_key(t, op.match))
    except CuckooFull as exc:
        return f"the target's cuckoo refuses the sequence: {exc}"
    return dict(cu.where)


def _cuckoo_shapes(tab: _Table, buckets: int) -> None:
    t, part = tab.t, tab.part
    words = key_words(t)
    cu = Cuckoo.scratch(buckets, words, ways_for(t.size))
    ways = cu.ways
    key = cuckoo_key(t, _exact(tab.keyvals))
    b1, b2 = cu.hashes(*key)
    consts = {cuckoo_key(t, tuple(e.match)) for e in t.entries}
    room = t.size - len(t.entries)

    def infeasible(shapes: list[str], why: str) -> None:
        for s in shapes:
            part.infeasible[f"{tab.name}:{s}"] = why

    if key in consts:
        infeasible(list(cuckoo_shapes(ways)), "the packet's key is a constant entry's")
        return
    found = _colliding(t, cu, tab.keyvals, {b1: ways + 1} if b1 == b2 else {b1: ways + 1, b2: ways}, consts | {key})
    in1, in2 = found[b1], found.get(b2, []) if b2 != b1 else []
    mine = tab.entry(tab.keyvals, 0)
    fill = [tab.entry(k, 1) for k in in1], [tab.entry(k, 1) for k in in2]

    def place(shape: str, ops: list[ControlOp], at: tuple[int, int] | None, need: int) -> dict[Any, Any] | None:
        """The replayed positions when the sequence fits and leaves the packet's key at `at` (None: absent)."""
        if need > room:
            infeasible([shape], f"needs {need} entries, the table has room for {room}")
            return None
        where = _replay(cu, t, ops)
        if isinstance(where, str) or where.get(key) != at:
            infeasible([shape], where if isinstance(where, str) else
                       "the replay did not put the packet's key where the shape needs it")
            return None
        return where

    for w in range(ways):
        shape = f"bucket1_slot{w}"
        if len(in1) < w:
            infeasible([shape], f"fewer than {w} other keys found in the packet's first bucket")
            continue
        ops = [*map(_insert, fill[0][:w]), _insert(mine)]
        if place(shape, ops, (b1, w), w + 1) is not None:
            tab.emit(shape, shape, ops, tab.keyvals, mine)
    second = [f"bucket2_slot{w}" for w in range(ways)] + ["miss_full", "relocated", "relocated_moved"]
    if b1 == b2:
        infeasible(second, "both hashes of the packet's key pick the same bucket")
    elif len(in1) < ways or len(in2) < ways:
        infeasible(second, f"too few keys sharing the packet's buckets within {SEARCH_LIMIT:,} tries")
    else:
        full1 = list(map(_insert, fill[0][:ways]))
        for w in range(ways):
            shape = f"bucket2_slot{w}"
            ops = [*full1, *map(_insert, fill[1][:w]), _insert(mine)]
            if place(shape, ops, (b2, w), ways + w + 1) is not None:
                tab.emit(shape, shape, ops, tab.keyvals, mine)
        both = [*full1, *map(_insert, fill[1][:ways])]
        if place("miss_full", both, None, 2 * ways) is not None:
            tab.emit("miss_full", "miss_full", both, tab.keyvals, None)
        _relocated(tab, cu, both, mine, [*fill[0][:ways], *fill[1][:ways]], place, key)
    _deleted(tab, cu, in1, fill[0], mine, key, place)


def _relocated(tab: _Table, cu: Cuckoo, both: list[ControlOp], mine: EntryState, fillers: list[EntryState],
               place: Callable[..., Any], key: tuple[int, int]) -> None:
    t = tab.t
    before = _replay(cu, t, both)
    ops = [*both, _insert(mine)]
    after = _replay(cu, t, ops)
    if isinstance(before, str) or isinstance(after, str) or key not in after:
        tab.part.infeasible[f"{tab.name}:relocated"] = tab.part.infeasible[f"{tab.name}:relocated_moved"] = (
            after if isinstance(after, str) else "the packet's key found no slot")
        return
    if place("relocated", ops, after[key], 2 * cu.ways + 1) is None:
        tab.part.infeasible[f"{tab.name}:relocated_moved"] = tab.part.infeasible[f"{tab.name}:relocated"]
        return
    tab.emit("relocated", "relocated", ops, tab.keyvals, mine)
    moved = [e for e in fillers if before.get(cuckoo_key(t, e.match)) != after.get(cuckoo_key(t, e.match))]
    if not moved:
        tab.part.infeasible[f"{tab.name}:relocated_moved"] = "no key moved"
        return
    e = moved[0]
    tab.emit("relocated_moved", "relocated_moved", ops, tuple(m.a for m in e.match), e)


def _deleted(tab: _Table, cu: Cuckoo, in1: list[Want], fill1: list[EntryState], mine: EntryState,
             key: tuple[int, int], place: Callable[..., Any]) -> None:
    """The packet's key in slot 1 of its full first bucket, deleted (a stale copy behind a cleared entry), then
    its slot taken by another key and the key inserted again (now in its second bucket)."""
    if len(in1) < cu.ways + 1:
        for s in ("deleted", "reinserted"):
            tab.part.infeasible[f"{tab.name}:{s}"] = "too few keys sharing the packet's first bucket"
        return
    full = [_insert(fill1[0]), _insert(mine), *map(_insert, fill1[1:cu.ways - 1])]
    ops = [*full, _delete(mine)]
    if place("deleted", ops, None, cu.ways) is not None:
        tab.emit("deleted", "deleted", ops, tab.keyvals, None)
    again = tab.entry(tab.keyvals, 2)
    ops = [*ops, _insert(fill1[cu.ways]), _insert(again)]
    b1, b2 = cu.hashes(*key)
    if b1 == b2:
        tab.part.infeasible[f"{tab.name}:reinserted"] = "both hashes of the packet's key pick the same bucket"
    elif place("reinserted", ops, (b2, 0), cu.ways + 1) is not None:
        tab.emit("reinserted", "reinserted", ops, tab.keyvals, again)


# -------------------------------------------------------------------------------------------------- trie


def _trie_shapes(tab: _Table) -> None:
    t = tab.t
    w = t.keys[0].width
    k = tab.keyvals[0]
    ent: dict[int, EntryState] = {}

    def pre(n: int) -> EntryState:
        """The packet's address's /n prefix, its outcome from the palette by w - n (neighbours differ, the longest
        prefix takes the first outcome unlike a miss)."""
        if n not in ent:
            a = k & (((1 << n) - 1) << (w - n))
            ent[n] = tab.entry((a,), w - n, (KeyElem("prefix", a, n),))
        return ent[n]

    def out(n: int) -> int:
        """An address in every prefix of the packet's address up to /n, in none longer (bit n flipped)."""
        return k ^ (1 << (w - n - 1)) if n < w else k

    def run(shape: str, label: str, ops: list[ControlOp], live: list[int], probes: list[int]) -> None:
        for n in probes:
            best = max((p for p in live if p <= n), default=None)
            tab.emit(shape, f"{label}.at{n}", ops, (out(n),), None if best is None else pre(best))

    def ins(*ns: int) -> list[ControlOp]:
        return [_insert(pre(n)) for n in ns]

    def dels(*ns: int) -> list[ControlOp]:
        return [_delete(pre(n)) for n in ns]

    last = ROOT_BITS + (w - ROOT_BITS) // STRIDE * STRIDE
    bounds = [b for b in range(ROOT_BITS, last + 1, STRIDE) if w <= 32 or b in (ROOT_BITS, ROOT_BITS + STRIDE,
                                                                                 w // 2, w - STRIDE, w)]
    ladder = sorted({n for b in bounds for n in (b - 1, b, b + 1) if 1 <= n <= w})
    mid = ROOT_BITS + STRIDE
    desc = sorted({n for n in (8, 16, mid, w // 2, w) if n <= w}, reverse=True)
    host = sorted({max(16, w - STRIDE), w - 1, w})

    def fits(shape: str, *ns: int) -> bool:
        if max(ns) <= w:
            return True
        tab.fail(shape, f"the key has {w} bits, the shape needs /{max(ns)}")
        return False

    if fits("root_nested", 16):
        run("root_nested", "root_nested", ins(8, 16), [8, 16], [7, 8, 15, 16])
    if fits("split_root_slot", 17):
        run("split_root_slot", "split_root_slot", ins(16, 17), [16, 17], [15, 16, 17])
    run("node_boundaries", "node_boundaries", ins(*ladder), ladder, ladder)
    run("shorter_after_longer", "shorter_after_longer", ins(*desc), desc, [*desc, 0])
    if fits("delete_restores", mid):
        run("delete_restores", "delete_one", [*ins(16, 17, mid), *dels(mid)], [16, 17], [16, 17, mid])
        run("delete_restores", "delete_two", [*ins(16, 17, mid), *dels(mid, 17)], [16], [15, 16, mid])
        run("delete_restores", "delete_shorter", [*ins(16, mid), *dels(16)], [mid], [16, mid])
        again = tab.entry((pre(mid).match[0].a,), w - mid + 1, pre(mid).match)
        ops = [*ins(16, 17, mid), *dels(mid, 17), _insert(again)]
        tab.emit("delete_restores", "readded", ops, (k,), again)
    run("host_route", "host_route", ins(*host), host, [w - STRIDE - 1, w - 2, w - 1, w])


# ------------------------------------------------------------------------------------------------ bit vectors


def bitvec_ranks(size: int) -> list[int]:
    """The ranks the winning entry is put at in a bit-vector table of `size` entries: the first and last of
    every 8-bit group of the 64-bit match word, 1, the table's last rank (the top bit when it holds 64), and
    every multiple of 6: the slot of rank r is bits 58-r..63-r of the de Bruijn constant, so a wrong bit k of
    it moves the slots of six consecutive ranks (58-k..63-k), one of which is a multiple of 6."""
    top = min(size, 64)
    ranks = {0, 1, top - 1, *range(0, 64, 6), *(r for g in range(0, 64, 8) for r in (g, g + 7))}
    return sorted(r for r in ranks if 0 <= r < top)


def linear_ranks(t: ir.Table, search: str) -> list[int]:
    """The positions the winning entry is put at in a priority table the xdp target searches linearly: the
    first and last of the inlined loop, the first, last and next-to-last of a global function's, each side of
    the first two chunk boundaries of a bpf_loop search (LINEAR_CHUNK entries a call)."""
    from targets.xdp.emitter import LINEAR_CHUNK

    top = t.size
    if search == "inline":
        ranks = {0, 1, top - 2, top - 1}
    elif search == "global":
        ranks = {0, 1, top - 2, top - 1, LINEAR_CHUNK - 1, LINEAR_CHUNK}
    else:
        ranks = {0, 1, LINEAR_CHUNK - 1, LINEAR_CHUNK, 2 * LINEAR_CHUNK - 1, 2 * LINEAR_CHUNK}
    return sorted(r for r in ranks if 0 <= r < min(top, 2 * LINEAR_CHUNK + 1))


def bitvec_rank_vectors(ctx: Any) -> None:
    """For every table the xdp target classifies with a bit vector (`targets.xdp.bitvec`: the winner is the
    lowest set bit of the ANDed match words, found through a de Bruijn multiply), the packet's entry at each
    rank of `bitvec_ranks`: `rank` non-matching entries of higher priority before it (their bits clear in the
    packet's word), a catch-all of lower priority after it (a higher bit set too: `m & -m` must isolate the
    lowest). Every entry's arguments differ, so data read from the wrong de Bruijn slot shows. Items are
    `<table>:rank<r>` under BITVEC_CLASS. The same for the priority tables it searches linearly (an inlined
    loop, a global function, bpf_loop over chunks of 64): the winner at the ends of the loop and each side of
    the chunk boundaries (`linear_ranks`), under LINEAR_CLASS."""
    from targets.xdp.emitter import linear_search

    prog: ir.Program = ctx.prog
    for t in prog.tables.values():
        if not t.keys or not t.uses_priority:
            continue
        lay = table_layout(prog, t)
        if lay.bitvec is not None:
            _rank_vectors(ctx, t, ctx.classes.setdefault(BITVEC_CLASS, ClassCoverage()), bitvec_ranks(t.size),
                          "bitvec", rotate=bool(lay.bitvec.action_ids))
        else:
            _rank_vectors(ctx, t, ctx.classes.setdefault(LINEAR_CLASS, ClassCoverage()),
                          linear_ranks(t, linear_search(t, lay)), "linear")


def _rank_vectors(ctx: Any, t: ir.Table, part: ClassCoverage, ranks: list[int], kind: str,
                  rotate: bool = False) -> None:
    """`rotate`: the winner's action changes from rank to rank (a classifier that finds the action by testing
    the winning bit against one rank mask per action: each mask must be read, and each for its own action)."""
    prog: ir.Program = ctx.prog
    room = t.size - len(t.entries)
    items = [f"{t.name}:rank{r}" for r in ranks]
    part.all += items
    acts = [a for a in t.actions if a in prog.actions]
    why = ("no generated packet reaches the table" if t.name not in ctx.first_apply
           else "the table has no action an entry could name" if not acts else None)
    if why is not None:
        for item in items:
            part.infeasible[item] = why
        return
    packets = _bitvec_packets(ctx, t)
    part.all += [f"{t.name}:key{j}_edge_bits" for j in range(len(t.keys))]
    first = next((a for a in acts if prog.actions[a].params), acts[0])
    prio = max([1000, *(e.priority + 1 for e in t.entries)])  # above every constant entry
    # every rank and every packet at least once: the packets take the ranks in turn
    for n in range(max(len(ranks), len(packets))):
        r, item = ranks[n % len(ranks)], items[n % len(ranks)]
        win = acts[n % len(acts)] if rotate else first
        other = next((a for a in acts if a != win), win)
        if r + 1 > room:
            part.infeasible[item] = f"needs {r + 1} entries, the table has room for {room}"
            continue
        j, (pid, data, port, control, regs, keyvals) = packets[n % len(packets)]
        fillers = _other_keys(t, keyvals, r)
        if isinstance(fillers, str):
            part.infeasible[item] = fillers
            continue
        base = _strip(t, control)
        catch_all = tuple(m if k.kind == "exact" else KeyElem("any", 0, 0)
                          for m, k in zip(_entry(t, keyvals, other, prog).match, t.keys, strict=True))
        top = prio + r + 2
        above = tuple(replace(_entry(t, k, win, prog, 2 + n), priority=top - n) for n, k in enumerate(fillers[:r]))
        mine = replace(_entry(t, keyvals, win, prog, 1), priority=prio, match=_exact_match(t, keyvals))
        below = replace(_entry(t, keyvals, other, prog, 3 + r), match=catch_all, priority=0)
        tail = (below,) if r + 2 <= room else ()  # the last rank: no room for the catch-all
        state = ControlState((*base.entries, *above, mine, *tail), base.defaults)
        try:
            replay(prog, state)
        except ReplayError as exc:
            part.infeasible[item] = f"the entries cannot be installed: {exc}"
            continue
        label = f"{kind}.{t.name}.rank{r}" + (f".p{n // len(ranks)}" if n >= len(ranks) else "")
        res = ctx.emit(label, pid, state, data, ["structure", f"{kind}_rank"], port, regs)
        hit = res.observations.get("hit", {}).get(t.name)
        if hit and res.observations.get("tables", {}).get(t.name) == win:
            part.covered.add(item)
            part.infeasible.pop(item, None)
            if j >= 0:
                part.covered.add(f"{t.name}:key{j}_edge_bits")
        elif item not in part.covered:
            part.infeasible[item] = ("the oracle's result is not the entry at the rank (an earlier table, a "
                                     "condition or a constant entry decides)")
    for j in range(len(t.keys)):
        if f"{t.name}:key{j}_edge_bits" not in part.covered:
            part.infeasible[f"{t.name}:key{j}_edge_bits"] = (
                "no packet carries the key with those bits set with the other keys' values (they come from "
                "other headers), or no rank was left")


def _edge_bits(width: int) -> int:
    """The first and last bit of each byte of a key of `width` bits."""
    return sum(1 << b for n in range(0, width, 8) for b in (n, min(n + 7, width - 1)))


def _exact_match(t: ir.Table, keyvals: Want) -> tuple[KeyElem, ...]:
    """A match of every key bit (a /32 prefix, a full mask, a one-value range): a lookup that reads a key byte
    masked short (`k & 0xfe`) finds another word of the image for it."""
    out = []
    for k, v in zip(t.keys, keyvals, strict=True):
        full = (1 << k.width) - 1
        out.append(KeyElem("value", v) if k.kind == "exact" else KeyElem("prefix", v, k.width) if k.kind == "lpm"
                   else KeyElem("mask", v, full) if k.kind == "ternary" else KeyElem("range", v, v))
    return tuple(out)


MAX_RANK_PATHS = 4


def _bitvec_packets(ctx: Any, t: ir.Table) -> list[tuple[int, Packet]]:
    """The packets the ranks take in turn: one per parse path reaching the table (the xdp target has a copy of
    the lookup per path), then for each key and each of those paths one steered to its value with the first and
    last bit of each byte set (an index masked short -- `k & 0xfe` for `k & 0xff` -- reads another word of the
    image there, in the copy of the path it takes): (key index or -1, (pid, data, port, control, regs, key
    values))."""
    first = ctx.first_apply[t.name]
    bases = [first]
    try:
        from .gen_classes import _pool, _steer
    except ImportError:  # pragma: no cover
        return [(-1, first)]
    for cand in _pool(ctx, t.name):
        if len(bases) >= MAX_RANK_PATHS:
            break
        if all(cand[0] != b[0] for b in bases):
            bases.append(cand)
    out: list[tuple[int, Packet]] = [(-1, b) for b in bases]
    for j, k in enumerate(t.keys):
        for b in bases:  # from each path's packet: each copy of the lookup reads its own index
            want = tuple(v | _edge_bits(k.width) if n == j else v for n, v in enumerate(b[5]))
            got = _steer(ctx, t.name, want, f"bitvec{j}")
            if not isinstance(got, str) and all(o[1][:2] != got[:2] for o in out):
                out.append((j, (*got, want)))
    return out
