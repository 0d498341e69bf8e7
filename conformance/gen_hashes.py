"""Generated cuckoo hash neighbours (issue 16, third round's survivors): for every exact table the xdp target builds
as a cuckoo hash (`targets.xdp.layout.table_layout`), keys whose bucket moves when a hash's multiplier or shift
is one off, installed where the packet's lookup needs that hash, and a packet hitting each.

The data plane finds a key's bucket as `(x * M) >> shift` with two multipliers (targets/xdp/cuckoo.py: C1, C2,
`shift = 64 - log2(buckets)`); the control plane (Python) places entries with the original functions. A mutant
multiplier M+1 moves `x`'s bucket only when the low `shift` bits of `x * M` are within `x` of the top (about one
key in 2,000 for a 48-bit MAC in 32 buckets, one in 2^29 for a 32-bit key in 8), so keys near the packet's are
searched (bounded), and the continued-fraction convergents of M / 2^shift (whose multiples are the keys with
`x * M mod 2^shift` closest to 0 or to 2^shift) cover narrow keys. Neighbours tried, for each hash h1, h2:

- `h<j>+1`, `h<j>-1`: the multiplier one off; `h<j>^top`: its top bit flipped (moves every odd key);
- `h<j>>>+1`, `h<j>>>-1`: the shift one off;
- `h<j>.c3+1`, `h<j>.c3-1`, `h<j>.c3^top`: for keys of two words, the multiplier C3 that folds the high word in
  (`x = k0 ^ k1 * C3`, read once per hash) one off or its top bit flipped: a key (with a non-zero high word)
  whose two buckets both move under the mutant's fold, in bucket j.

A key whose bucket under the neighbour differs from its bucket is installed alone for h1 (it goes to its first
bucket, slot 0), and for h2 after four other keys that fill its first bucket (it goes to its second: the
relocation shape), so a packet carrying it hits only when the data plane hashes it as the control plane did.
The placement is replayed on the target's own `Cuckoo` (gen_structures' `_replay`). Items are
`<table>[@n]:<neighbour>` per parse and control path to the table's apply (gen_structures' sites, where a hit and
a miss differ), reported under CLASS; expected results come from the oracle. Tags: `structure` and the item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from c3po_compiler import ir
from targets.xdp.control import cuckoo_key
from targets.xdp.cuckoo import C1, C2, C3, M64, Cuckoo, ways_for
from targets.xdp.layout import key_words

from .gen_coverage import ClassCoverage
from .gen_sequences import _insert
from .gen_structures import _colliding, _exact, _replay, _sites, _split, _Table, structure_of

__all__ = ["CLASS", "NEIGHBOURS", "bucket", "fold_keys", "hash_vectors", "neighbour_keys"]

CLASS = "hash_neighbours"
NEIGHBOURS = ("+1", "-1", "^top", ">>+1", ">>-1")
NEAR = 1 << 14  # keys near the packet's tried before the convergents
MULTIPLES = 16  # multiples of each convergent denominator tried


def bucket(x: int, mult: int, shift: int) -> int:
    """The data plane's bucket index (`(__u32)((x * M) >> shift)`, before the map's bounds)."""
    return (((x * mult) & M64) >> shift) & 0xFFFFFFFF


def _variant(mult: int, shift: int, nb: str) -> tuple[int, int]:
    if nb == "+1":
        return (mult + 1) & M64, shift
    if nb == "-1":
        return (mult - 1) & M64, shift
    if nb == "^top":
        return mult ^ (1 << 63), shift
    return mult, shift + (1 if nb == ">>+1" else -1)


def _convergents(mult: int, shift: int, limit: int) -> Iterator[int]:
    """Denominators q of the continued-fraction convergents of mult / 2^shift below `limit`: the x with
    `x * mult mod 2^shift` nearest 0 or 2^shift for their size."""
    a, b = mult % (1 << shift), 1 << shift
    q0, q1 = 0, 1
    while a and q1 < limit:
        yield q1
        t, r = divmod(b, a)
        b, a = a, r
        q0, q1 = q1, t * q1 + q0


def _candidates(v: int, width: int, mult: int, shift: int) -> Iterator[int]:
    limit = 1 << width
    for i in range(1, min(NEAR, limit)):
        yield v ^ i
    for q in _convergents(mult, shift, limit):
        for c in range(1, MULTIPLES + 1):
            if c * q < limit:
                yield c * q


def neighbour_keys(v: int, width: int, buckets: int) -> dict[str, int | None]:
    """For each `h<j><neighbour>`, a hash input x (at most `width` bits) whose two buckets differ and whose j-th
    bucket moves under the neighbour; None when the bounded search finds none."""
    shift = 64 - (buckets.bit_length() - 1)
    out: dict[str, int | None] = {}
    for j, mult in ((1, C1), (2, C2)):
        for nb in NEIGHBOURS:
            m2, s2 = _variant(mult, shift, nb)
            found = None
            for x in _candidates(v, width, mult, shift):
                mine = bucket(x, mult, shift)
                if mine != bucket(x, m2, s2) and bucket(x, C1, shift) != bucket(x, C2, shift):
                    found = x
                    break
            out[f"h{j}{nb}"] = found
    return out


def _key_of(t: ir.Table, x: int, words: int, k1: int) -> tuple[int, ...]:
    """Key values whose hash input is x (for two-word keys the high word kept: x = k0 ^ k1 * C3)."""
    if words == 2:
        return _split(t, k1 << 64 | (x ^ ((k1 * C3) & M64)))
    return _split(t, x)


def fold_keys(k0: int, k1: int, buckets: int) -> dict[str, tuple[int, int] | None]:
    """Two-word keys: for each `c3<neighbour>` of the multiplier that folds the high word in (x = k0 ^ k1 * C3),
    a key near (k0, k1) (the high word made non-zero: a zero one hides C3) whose two buckets differ and each of
    which moves when the mutant folds the high word in (C3 is read once per hash); None when none is found."""
    shift = 64 - (buckets.bit_length() - 1)
    out: dict[str, tuple[int, int] | None] = {}
    for nb in ("+1", "-1", "^top"):
        c3 = _variant(C3, shift, nb)[0]
        out[f"c3{nb}"] = None
        for h1 in dict.fromkeys((k1 or 1, (k1 or 1) ^ 1)):  # ^top moves only odd high words
            for i in range(NEAR):
                a0 = k0 ^ i
                x, x2 = a0 ^ ((h1 * C3) & M64), a0 ^ ((h1 * c3) & M64)
                b1, b2 = bucket(x, C1, shift), bucket(x, C2, shift)
                if b1 != b2 and bucket(x2, C1, shift) != b1 and bucket(x2, C2, shift) != b2:
                    out[f"c3{nb}"] = (a0, h1)
                    break
            if out[f"c3{nb}"] is not None:
                break
    return out


def _table_site(tab: _Table, buckets: int, part: ClassCoverage) -> None:
    t = tab.t
    words = key_words(t)
    cu = Cuckoo.scratch(buckets, words, ways_for(t.size))
    k0, k1 = cuckoo_key(t, _exact(tab.keyvals))
    width = 64 if words == 2 else sum(k.width for k in t.keys)
    x0 = (k0 ^ ((k1 * C3) & M64)) if words == 2 else k0
    consts = {cuckoo_key(t, tuple(e.match)) for e in t.entries}
    room = t.size - len(t.entries)
    found: dict[str, tuple[int, int] | None] = {
        item: None if x is None else (x, k1) for item, x in neighbour_keys(x0, width, buckets).items()}
    if words == 2:  # c3 items: in bucket 1 for the fold of h1's line, in bucket 2 for h2's
        found |= {f"h{j}.{item}": None if kk is None else (kk[0] ^ ((kk[1] * C3) & M64), kk[1])
                  for item, kk in fold_keys(k0, k1, buckets).items() for j in (1, 2)}
    done: dict[tuple[int, int, int], str] = {}  # (x, high word, j) already emitted -> its item
    for item, got in found.items():
        name = f"{tab.name}:{item}"
        j = 2 if item.startswith("h2") else 1
        if got is None:
            part.infeasible[name] = "no key whose bucket moves under this neighbour within the bounded search"
            continue
        x, high = got
        if (x, high, j) in done:  # one vector covers both neighbours
            twin = f"{tab.name}:{done[(x, high, j)]}"
            if twin in part.covered:
                part.covered.add(name)
            else:
                part.infeasible[name] = part.infeasible.get(twin, "as its twin")
            continue
        done[(x, high, j)] = item
        keyvals = _key_of(t, x, words, high)
        key = cuckoo_key(t, _exact(keyvals))
        if key in consts:
            part.infeasible[name] = "the key found is a constant entry's"
            continue
        mine = tab.entry(keyvals, 0)
        ops = [_insert(mine)]
        b1, b2 = cu.hashes(*key)
        if j == 2:
            fill = _colliding(t, cu, keyvals, {b1: cu.ways}, consts | {key})[b1]
            if len(fill) < cu.ways:
                part.infeasible[name] = "too few keys sharing the key's first bucket within the search"
                continue
            ops = [*(_insert(tab.entry(k, 1)) for k in fill), _insert(mine)]
        if len(ops) > room:
            part.infeasible[name] = f"needs {len(ops)} entries, the table has room for {room}"
            continue
        where = _replay(cu, t, ops)
        if isinstance(where, str) or where.get(key, (None,))[0] != (b1 if j == 1 else b2):
            part.infeasible[name] = (where if isinstance(where, str)
                                     else "the replay did not put the key in the bucket of that hash")
            continue
        tab.emit(item, f"hash.{item}", ops, keyvals, mine)


def hash_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    for t in prog.tables.values():
        kind = structure_of(prog, t)
        if kind is None or kind[0] != "cuckoo":
            continue
        items = [f"h{j}{nb}" for j in (1, 2) for nb in NEIGHBOURS]
        if key_words(t) == 2:
            items += [f"h{j}.c3{nb}" for nb in ("+1", "-1", "^top") for j in (1, 2)]
        if t.name not in ctx.first_apply or not any(a in prog.actions for a in t.actions):
            part.all += [f"{t.name}:{i}" for i in items]
            for i in items:
                part.infeasible[f"{t.name}:{i}"] = "no generated packet reaches the table, or no entry can be made"
            continue
        for n, pool in enumerate(_sites(ctx, t), 1):
            tab = _Table(ctx, t, part, pool, f"@{n}" if n > 1 else "")
            part.all += [f"{tab.name}:{i}" for i in items]
            if not tab.differs:
                for i in items:
                    part.infeasible[f"{tab.name}:{i}"] = "on this path a hit and a miss of the table end alike"
                continue
            _table_site(tab, kind[1], part)
    for item in part.all:
        if item not in part.covered and item not in part.infeasible:
            part.infeasible[item] = "no vector reached the item"
