"""The control plane of a cuckoo hash table: how an exact-match table built as `cuckoo` is kept in its array.

The data plane (`Emitter.cuckoo_lookup`) hashes the key (the table's key fields concatenated in key order, at
most 128 bits, as two u64 words k0 = low bits, k1 = high bits) with two multiply-shift functions to two buckets
of 4 slots (1 slot in tables of at most 256 entries, `ways_for`), and compares the key with each occupied slot of
the first bucket, then of the second: no helper call, no jhash. A slot is {u64 k0, u32 entry + 1, u32 0} for a
key of one word, {u64 k0, u32 k1, u32 entry + 1} for one of 65 to 95 bits (the VXLAN FDB's 72 bits of VNI and
MAC: 16 bytes, four slots to a 64-byte bucket, one cache line, as the best hand-written gateway's), and {u64 k0,
u64 k1, u32 entry + 1, u32 0} for a wider one (`slot_layout`); entry 0 is a free slot. Buckets are a power of two, at most 75% full (4 slots) or 25% full (1 slot) when
the table holds its declared size.

A key narrower than its words (a 48-bit MAC, 72 bits of VNI and MAC) is stored with a tag: the bit just above
it set in the word that holds its top (`tag_for`). A free slot's words are zero, so a live slot is one whose key
compares equal to the packet's key with the tag: one load and compare per slot, not the entry word's test
first, and none at all for a table whose hits need no data (`emitter.hit_constant`). The tagged word is written
last and cleared first (one 8-byte store each), after the entry on a delete and before it on an insert.

An insert takes a free slot in either bucket; when both are full, it moves entries to their other bucket along
the shortest path to a free slot (breadth-first, bounded). Writes are made for packets in flight: a slot's key
is written before its entry (a reader never matches a half-written slot), a delete clears the entry first, and a
move copies an entry to its new slot before freeing the old one (a reader may see it twice, never a wrong one).
The one race left: a packet that reads an entry's first bucket just before the entry moves there from its
second, and its second just after, misses it once (a window of two stores; documented in docs/targets/xdp.md).

The memory is any writable memoryview of bytes: the mmap of the BPF array, or a bytearray in tests.
"""

from __future__ import annotations

import itertools
from collections import deque

WAYS = 4  # slots per bucket of a large table
SMALL = 256  # tables of at most this many entries get one-slot buckets, four times as many as entries
C1 = 0x9E3779B97F4A7C15  # multiply-shift constants (odd): the golden ratio and a splitmix64 constant
C2 = 0xC2B2AE3D27D4EB4F
C3 = 0xBF58476D1CE4E5B9  # folds the high word in
M64 = (1 << 64) - 1
MAX_PATH = 5  # relocation depth: 4 + 4*4 + ... slots looked at, enough below 75% load
LOAD = 3  # slots per bucket counted when sizing: 3 of 4, so the declared size fills at most 75%


def ways_for(size: int) -> int:
    """Slots per bucket. A lookup that misses reads every slot of both buckets, and each is a load and a branch:
    the router-MAC table's misses (frames for another host) cost 5.6-6.8 ns more with four slots than with one
    (docs/performance.md). Small tables take one slot per bucket, at a quarter full (the best hand-written
    router's 256 slots for 64 MACs); large ones keep four, 75% full, for their memory."""
    return 1 if size <= SMALL else WAYS


def buckets_for(size: int, ways: int = WAYS) -> int:
    """Four-slot buckets for `size` at 75% (LOAD of each bucket's slots), one-slot buckets at 25% (4 per entry)."""
    slots, need = (LOAD, size) if ways == WAYS else (1, 4 * size)
    n = 2
    while n * slots < need:
        n *= 2
    return n


def narrow_k1(words: int, tag: tuple[int, int]) -> bool:
    """Whether a two-word key's high word, with its tag, fits 32 bits (a key of 65 to 95 bits): then the slot
    stores it as a u32 and is 16 bytes, not 24 (a 4-slot bucket one cache line, found with a shift)."""
    return words == 2 and 0 < tag[1] < 1 << 32


def slot_layout(words: int, tag: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(slot bytes, offset of the entry word)."""
    if words == 1:
        return 16, 8
    return (16, 12) if narrow_k1(words, tag) else (24, 16)


def tag_for(width: int, words: int) -> tuple[int, int]:
    """(tag of k0, tag of k1) for a key of `width` bits in `words` words: the bit above the key, or none when the
    key fills its words (then a free slot is known by its entry word alone)."""
    if width >= 64 * words:
        return 0, 0
    return (1 << width, 0) if width < 64 else (0, 1 << (width - 64))


class CuckooFull(Exception):
    """No free slot within MAX_PATH moves; nothing was written."""


class Cuckoo:
    def __init__(self, mem: memoryview, buckets: int, words: int, ways: int = WAYS,
                 tag: tuple[int, int] = (0, 0)) -> None:
        if buckets & (buckets - 1) or buckets < 2 or words not in (1, 2) or ways not in (1, WAYS):
            raise ValueError(f"buckets must be a power of two >= 2, words 1 or 2, ways 1 or {WAYS}")
        self.mem = mem
        self.q = mem.cast("B").cast("Q")  # 8-byte stores of the key words (one store each, never torn)
        self.d = mem.cast("B").cast("I")  # 4-byte stores: entry words, a narrow k1
        self.tag = tag
        self.tagw = 1 if tag[1] else 0  # the word that holds the tag (written last, cleared first)
        self.ways = ways
        self.buckets = buckets
        self.bits = buckets.bit_length() - 1
        self.words = words
        self.narrow = narrow_k1(words, tag)
        self.slot, self.entry_at = slot_layout(words, tag)
        self.where: dict[tuple[int, int], tuple[int, int]] = {}  # (k0, k1) -> (bucket, way)
        self.scan()

    def release(self) -> None:
        """Before the memory it views is unmapped."""
        self.q.release()
        self.d.release()

    @classmethod
    def scratch(cls, buckets: int, words: int, ways: int, tag: tuple[int, int] = (0, 0)) -> Cuckoo:
        """An empty table in private memory (the conformance generator's replays)."""
        return cls(memoryview(bytearray(buckets * ways * slot_layout(words, tag)[0])), buckets, words, ways, tag)

    # -- what the C computes ---------------------------------------------------------------------------------

    def hashes(self, k0: int, k1: int) -> tuple[int, int]:
        x = (k0 ^ (k1 * C3)) & M64 if self.words == 2 else k0
        shift = 64 - self.bits
        return ((x * C1) & M64) >> shift, ((x * C2) & M64) >> shift

    # -- memory ------------------------------------------------------------------------------------------------

    def _off(self, b: int, w: int) -> int:
        return (b * self.ways + w) * self.slot

    def _words(self, b: int, w: int) -> tuple[int, int]:
        """The key words as stored (with the tag)."""
        o = self._off(b, w)
        if self.words == 1:
            return self.q[o // 8], 0
        return self.q[o // 8], self.d[o // 4 + 2] if self.narrow else self.q[o // 8 + 1]

    def _read(self, b: int, w: int) -> tuple[int, int, int]:
        """(k0, k1, entry + 1), the key without its tag."""
        k0, k1 = self._words(b, w)
        e = self.d[(self._off(b, w) + self.entry_at) // 4]
        return k0 & ~self.tag[0], k1 & ~self.tag[1], e

    def _store(self, o: int, i: int, value: int) -> None:
        """Key word i of the slot at byte o: one store (4 bytes for a narrow k1, else 8)."""
        if i == 1 and self.narrow:
            self.d[o // 4 + 2] = value
        else:
            self.q[o // 8 + i] = value

    def _write(self, b: int, w: int, k0: int, k1: int, entry1: int) -> None:
        """The key, its tagged word last (a tagged table's slot is live from there), then the entry word that makes
        the slot live in an untagged one."""
        o = self._off(b, w)
        words = (k0 | self.tag[0], k1 | self.tag[1])
        if self.words == 2:
            other = 1 - self.tagw
            self._store(o, other, words[other])
        self._store(o, self.tagw, words[self.tagw])
        self.d[(o + self.entry_at) // 4] = entry1

    def _clear(self, b: int, w: int) -> None:
        """The entry word first, then the tagged word: the slot stops matching at once, in either form."""
        o = self._off(b, w)
        self.d[(o + self.entry_at) // 4] = 0
        if self.tag != (0, 0):
            self._store(o, self.tagw, 0)

    def scan(self) -> None:
        """Where each key is, read from the array (it is its own record)."""
        self.where = {}
        step, n = self.slot // 4, self.buckets * self.ways
        words = self.mem.cast("B").cast("I")
        try:  # each slot's entry word, in C: a table of 32,768 buckets is mostly empty slots
            entries = words[self.entry_at // 4:n * step:step].tolist()
        finally:
            words.release()
        for i in itertools.compress(range(n), entries):
            b, w = divmod(i, self.ways)
            k0, k1, _ = self._read(b, w)
            self.where[(k0, k1)] = (b, w)

    def reset(self) -> None:
        self.mem[:self.buckets * self.ways * self.slot] = bytes(self.buckets * self.ways * self.slot)
        self.where = {}

    # -- entries -----------------------------------------------------------------------------------------------

    def lookup(self, k0: int, k1: int = 0) -> int | None:
        for b in self.hashes(k0, k1):
            for w in range(self.ways):
                s0, s1, e = self._read(b, w)
                if e and s0 == k0 and s1 == k1:
                    return e - 1
        return None

    def _free_way(self, b: int) -> int | None:
        for w in range(self.ways):
            if not self._read(b, w)[2]:
                return w
        return None

    def insert(self, k0: int, k1: int, entry: int) -> None:
        """Add the key (or re-point it) to `entry`."""
        old = self.where.get((k0, k1))
        if old is not None:
            self._write(*old, k0, k1, entry + 1)
            return
        path = self._path(k0, k1)
        if path is None:
            raise CuckooFull(f"no free slot within {MAX_PATH} moves of either bucket ({len(self.where):,} keys in "
                             f"{self.buckets * self.ways:,} slots)")
        # path: [(bucket, way), ...] from the key's bucket to a free slot; move from the end backwards
        for (b_from, w_from), (b_to, w_to) in zip(reversed(path[:-1]), reversed(path[1:]), strict=True):
            s0, s1, e = self._read(b_from, w_from)
            self._write(b_to, w_to, s0, s1, e)      # copy first: seen twice for a moment, never missing
            self._clear(b_from, w_from)
            self.where[(s0, s1)] = (b_to, w_to)
        b, w = path[0]
        self._write(b, w, k0, k1, entry + 1)
        self.where[(k0, k1)] = (b, w)

    def _path(self, k0: int, k1: int) -> list[tuple[int, int]] | None:
        """Breadth-first over displacements: the shortest chain of moves that frees a slot in a key bucket."""
        starts = list(dict.fromkeys(self.hashes(k0, k1)))
        for b in starts:
            w = self._free_way(b)
            if w is not None:
                return [(b, w)]
        queue: deque[list[tuple[int, int]]] = deque([[(b, w)] for b in starts for w in range(self.ways)])
        seen = set(starts)
        while queue:
            path = queue.popleft()
            if len(path) > MAX_PATH:
                return None
            b, w = path[-1]
            s0, s1, _ = self._read(b, w)
            h1, h2 = self.hashes(s0, s1)
            alt = h2 if h1 == b else h1
            if alt == b or alt in seen:
                continue
            seen.add(alt)
            free = self._free_way(alt)
            if free is not None:
                return [*path, (alt, free)]
            queue.extend([*path, (alt, w2)] for w2 in range(self.ways))
        return None

    def repair(self, want: dict[tuple[int, int], int]) -> int:
        """After a writer died half-way through a change (a killed command): the slots made what `want`
        {(k0, k1): entry}, the record, says. A key the record lacks (a half-done insert), one seen twice (a move
        copied, not yet cleared) or outside its two buckets is cleared; a wrong entry is re-pointed; a key the
        record has and no slot holds (a half-done delete) is inserted again. Returns how many slots changed."""
        fixed = 0
        seen: set[tuple[int, int]] = set()
        for b in range(self.buckets):
            for w in range(self.ways):
                k0, k1, e = self._read(b, w)
                if not e:
                    if self.tag != (0, 0) and self._words(b, w)[self.tagw]:  # a tagged key without its entry
                        self._clear(b, w)
                        fixed += 1
                    continue
                entry = want.get((k0, k1))
                if entry is None or (k0, k1) in seen or b not in self.hashes(k0, k1):
                    self._clear(b, w)
                    fixed += 1
                    continue
                seen.add((k0, k1))
                if e != entry + 1:
                    self._write(b, w, k0, k1, entry + 1)
                    fixed += 1
        self.scan()
        for (k0, k1), entry in sorted(want.items()):
            if (k0, k1) not in seen:
                self.insert(k0, k1, entry)
                fixed += 1
        return fixed

    def delete(self, k0: int, k1: int = 0) -> None:
        at = self.where.pop((k0, k1), None)
        if at is not None:
            self._clear(*at)  # the entry word first: the slot stops matching at once
