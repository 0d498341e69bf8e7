"""The control plane of a multibit trie: how an LPM table built as `multibit_trie` is kept in its array.

The data plane (program.bpf.c.j2, `Emitter.trie_lookup`) walks an array of u32 slots: the root is slots
0..65535, indexed by the key's top 16 bits; node n (n >= 256) is slots n*256 .. n*256+255, indexed by the next
byte. A slot holds 0 (no route), entry + 1, or link(n): TRIE_LINK | n * 256, the node's first slot with bit 30
set, so a level of the walk is an exclusive-or and an or (`(slot ^ TRIE_LINK) | byte`), each with an immediate
that fits a BPF instruction (bit 31 would not: BPF immediates are sign-extended 32-bit, and clang then builds the
mask in a register and zero-extends the index: 19 instructions a level where this takes 14). Prefixes are pushed
down to the leaves: every slot holds the longest prefix that covers all the addresses it stands for, so a lookup
stops at the first slot that is not a link and has its answer (DIR-24-8 and its relatives, with a 16-bit root and
8-bit strides).

Updates are made for packets in flight: a new node is filled with what its parent slot meant before it is linked
(one 4-byte store publishes it), a route is written slot by slot (a packet sees, for its address, either the old
or the new best route), and a node is unlinked (its parent slot gets the leaf all its slots agree on) before it is
freed, keeping its contents. A freed node is reused only after every never-used node and every node freed before
it: a packet that loaded the old link reads it within a microsecond, and reuse is that late.

The slot array is any writable u32 memoryview: in the kernel, the mmap of the BPF array (BPF_F_MMAPABLE), whose
aligned 4-byte stores are atomic for the program; in tests, a bytearray. The program reads the root and the first
nodes from a copy in a global (`root`, the generated `c3po_tries.<table>` in .bss: a direct load, no map lookup;
the root and the first nodes, a whole number of them); every slot written that the copy holds is written to both,
in the same order, so what a packet can see is unchanged. Where the global holds every node (layout.trie_map is
False), it is the slot array itself and there is no copy.

**Leaves with the action data** (`leaf_of`, layout.TrieLeaf): where a table's action data fits a slot's 30 bits
and nothing needs the entry index at packet time (no counters), a leaf holds the route's action id and arguments,
so a hit is the walk alone. Routes with the same data then have the same leaf, so the slots no longer say which
route owns them: the trie keeps entry + 1 per slot in a private copy of the array (`a`, the owners; rebuilt from
the routes and the links the kernel array holds when the trie is opened) and writes each slot's leaf into the
array packets read (`out`). The algorithm is the one above, on the owners. A modify of a route's data
(`rewrite`) stores the new leaf into every slot the route owns, one 4-byte store each: a packet sees, per slot,
the old or the new data, but a modify covering many slots is not atomic across them (as an insert is not).
"""

from __future__ import annotations

import array
import mmap
from collections.abc import Callable, Iterable

TRIE_LINK = 0x40000000
ROOT_BITS = 16
STRIDE = 8
FANOUT = 1 << STRIDE
FIRST_NODE = (1 << ROOT_BITS) // FANOUT  # node ids below it are the root's slots


def link(n: int) -> int:
    """The slot value that links to node n: its first slot's index, with TRIE_LINK."""
    return TRIE_LINK | n * FANOUT


def node_of(slot: int) -> int:
    """The node a link slot points to."""
    return (slot & ~TRIE_LINK) >> STRIDE


class TrieFull(Exception):
    """An insert needs more nodes than are free; nothing was written."""


class Trie:
    """`plen_of(entry)` gives the prefix length of an entry index already in the trie (the record keeps it).
    With `leaf_of(entry)` (the entry's leaf, layout.TrieLeaf) the slots packets read hold leaves; `routes`
    [(prefix, plen, entry)] are then the routes the array already holds (see the module docstring). With
    `empty` the caller rebuilds the array from nothing (`build`, which empties it first), so what it holds is
    not read: a scan of a router's table costs tens of milliseconds, paid on every install of a whole image.
    Until then no node is free (an insert that needs one is refused)."""

    def __init__(self, slots: memoryview, nodes: int, width: int, plen_of: Callable[[int], int],
                 leaf_of: Callable[[int], int] | None = None,
                 routes: Iterable[tuple[int, int, int]] = (), root: memoryview | None = None,
                 empty: bool = False) -> None:
        if width % 8 or not ROOT_BITS <= width <= 128:
            raise ValueError(f"a multibit trie key is 16..128 bits in whole bytes, not {width}")
        if len(slots) < (FIRST_NODE + nodes) * FANOUT:
            raise ValueError(f"{len(slots)} slots cannot hold the root and {nodes} nodes")
        self.out = slots  # what packets read
        self.root = root  # a copy of the first slots packets read (the program's c3po_tries.<table>), if any
        self.copied = 0 if root is None else len(root)
        if self.copied % FANOUT or 0 < self.copied < 1 << ROOT_BITS:
            raise ValueError(f"a copy of {self.copied} slots is not the root and whole nodes")
        self.leaf_of = leaf_of
        self._own: mmap.mmap | None = None
        self.a = slots  # the owners (entry + 1) and links: the packets' array itself unless leaves hold data
        if leaf_of is not None:
            self._own = mmap.mmap(-1, 4 * (FIRST_NODE + nodes) * FANOUT)  # zero pages, touched as used
            self.a = memoryview(self._own).cast("I")
        self.nodes = nodes
        self.width = width
        self.plen_of = plen_of
        self.free: list[int] = []
        # Set by `build` alone: slots may then be filled by a bulk copy, which, unlike the one 4-byte store per
        # slot of a live change, the CPU does not promise to make in whole slots (rep movsb).
        self._bulk = False
        if empty:
            return
        used = self.scan()
        if leaf_of is not None:
            self._adopt(routes, used)

    def close(self) -> None:
        if self._own is not None:
            self.a.release()
            self._own.close()
            self._own = None

    # -- node bookkeeping ------------------------------------------------------------------------------------

    def _used(self) -> set[int]:
        """The nodes the packets' array links to."""
        used: set[int] = set()
        out = self.out
        todo = [node_of(s) for s in out[:1 << ROOT_BITS].tolist() if s & TRIE_LINK]
        while todo:
            n = todo.pop()
            if n in used or not FIRST_NODE <= n < FIRST_NODE + self.nodes:
                continue  # a corrupt link would loop; the data plane only ever reads within the array
            used.add(n)
            todo += [node_of(s) for s in out[n * FANOUT:(n + 1) * FANOUT].tolist() if s & TRIE_LINK]
        return used

    def scan(self) -> set[int]:
        """Free nodes are those no slot links to: the array itself is the record (no second map to keep in step).
        Returns the nodes in use."""
        used = self._used()
        self.free = [n for n in range(FIRST_NODE, FIRST_NODE + self.nodes) if n not in used]
        self.free.reverse()  # pop() takes the lowest id first
        return used

    def _adopt(self, routes: Iterable[tuple[int, int, int]], used: set[int]) -> None:
        """The owners of a leaf trie opened on an array already in use: the links of the root and the nodes in
        use copied (every other slot 0), then each route, shortest first, written over every slot of its region
        that is not a link, into the owners only (the packets' array already holds their leaves): a slot ends with
        the longest route that covers it, and a slot no route covers is 0. A leaf no route accounts for (a writer
        killed half-way) is thus never taken for an owner; `repair` rewrites it."""
        a, out = self.a, self.out
        for n in [0, *used]:
            first, count = (0, 1 << ROOT_BITS) if n == 0 else (n * FANOUT, FANOUT)
            a[first:first + count] = _array([s if s & TRIE_LINK else 0 for s in out[first:first + count].tolist()])
        for prefix, plen, entry in sorted(routes, key=lambda r: r[1]):
            region = self._region(prefix, plen, create=False)
            if region is not None:
                self._push(region[0], region[1], entry + 1, plen, publish=False)

    @property
    def used_nodes(self) -> int:
        return self.nodes - len(self.free)

    def _set(self, s: int, value: int) -> None:
        """One slot: its owner and, where leaves hold data, the leaf packets read (links are the same in both)."""
        self.a[s] = value
        if self.leaf_of is not None:
            self.out[s] = value = value if not value or value & TRIE_LINK else self.leaf_of(value - 1)
        if s < self.copied:
            self.root[s] = value  # type: ignore[index]

    def _fill(self, first: int, count: int, value: int) -> None:
        self.a[first:first + count] = _repeat(value, count)
        if self.leaf_of is not None:
            value = value if not value or value & TRIE_LINK else self.leaf_of(value - 1)
            self.out[first:first + count] = _repeat(value, count)
        if first < self.copied:  # the root or one node: inside the copy or outside it, whole
            self.root[first:first + count] = _repeat(value, count)  # type: ignore[index]

    def _alloc(self, fill: int) -> int:
        n = self.free.pop()
        self._fill(n * FANOUT, FANOUT, fill)
        return n

    def _release(self, n: int) -> None:
        self.free.insert(0, n)  # reused last: see the module docstring

    def reset(self) -> None:
        """Empty: every root slot 0, every node free (their contents are rewritten when allocated)."""
        self._fill(0, 1 << ROOT_BITS, 0)
        self.free = list(range(FIRST_NODE + self.nodes - 1, FIRST_NODE - 1, -1))

    # -- routes ------------------------------------------------------------------------------------------------

    def needed(self, prefix: int, plen: int) -> int:
        """Nodes an insert of prefix/plen would allocate."""
        consumed, stride, base, n = 0, ROOT_BITS, 0, 0
        while plen > consumed + stride:
            s = base + self._index(prefix, consumed, stride)
            cur = self.a[s] if n == 0 else 0
            if cur & TRIE_LINK:
                base = node_of(cur) * FANOUT
            else:
                n += 1
            consumed += stride
            stride = STRIDE
        return n

    def insert(self, prefix: int, plen: int, entry: int) -> None:
        """Add (or re-point) the route prefix/plen to `entry`, whose prefix length plen_of() must already give."""
        need = self.needed(prefix, plen)
        if need > len(self.free):
            raise TrieFull(f"the multibit trie has {len(self.free)} free nodes of {self.nodes:,} and this prefix "
                           f"needs {need}")
        region = self._region(prefix, plen, create=True)
        assert region is not None  # create=True always finds its region
        self._push(region[0], region[1], entry + 1, plen)

    def delete(self, prefix: int, plen: int, entry: int, replacement: int | None) -> None:
        """Remove the route of `entry`; `replacement` is the entry of the longest shorter prefix that covers it
        (the same for every address it covered), None when none does."""
        region = self._region(prefix, plen, create=False)
        if region is None:
            return  # never inserted
        first, count, path = region
        self._replace(first, count, entry + 1, 0 if replacement is None else replacement + 1)
        for parent, node in reversed(path):  # nodes on the way that now mean one thing go back to a leaf
            if not self._collapse(parent, node):
                break

    def repair(self, routes: Iterable[tuple[int, int, int]]) -> int:
        """After a writer died half-way through a change (a killed command): every slot packets can reach made
        what `routes` [(prefix, plen, entry)], the record, say -- the longest route covering all the slot stands
        for, or 0 -- and every route reachable (a node a half-done delete collapsed is made again): the change is
        undone or completed as the record has it. Every slot in use is visited, so this runs only then;
        `plen_of` (and `leaf_of`) must know every entry of `routes`. Returns how many slots were rewritten."""
        by = {(plen, prefix): entry for prefix, plen, entry in routes}
        want = [0] * (1 << ROOT_BITS)  # the root: each route of at most ROOT_BITS bits over its span, longer later
        for (plen, prefix), entry in sorted(by.items()):
            if plen <= ROOT_BITS:
                first, span = prefix >> (self.width - ROOT_BITS), 1 << (ROOT_BITS - plen)
                want[first:first + span] = [entry + 1] * span
        fixed = 0
        todo: list[tuple[int, int, int, int]] = []  # (node, the prefix bits leading to it, their count, its default)
        for s, leaf in enumerate(want):
            fixed += self._repair_slot(s, leaf, s, ROOT_BITS, todo)
        while todo:
            node, bits, depth, inherited = todo.pop()
            top = depth + STRIDE
            for i in range(FANOUT):
                p = bits << STRIDE | i
                leaf = inherited
                for plen in range(top, depth, -1):  # the longest route that ends inside this stride
                    found = by.get((plen, (p >> (top - plen)) << (self.width - plen)))
                    if found is not None:
                        leaf = found + 1
                        break
                fixed += self._repair_slot(node * FANOUT + i, leaf, p, top, todo)
        for (plen, prefix), entry in sorted(by.items()):
            if self._region(prefix, plen, create=False) is None:
                self.insert(prefix, plen, entry)
                fixed += 1
        return fixed

    def _repair_slot(self, s: int, leaf: int, bits: int, depth: int, todo: list[tuple[int, int, int, int]]) -> int:
        """One slot of `repair`: a link is followed (its node's default is `leaf`), any other value made `leaf`."""
        cur = self.a[s]
        if cur & TRIE_LINK and FIRST_NODE <= node_of(cur) < FIRST_NODE + self.nodes and depth < self.width:
            todo.append((node_of(cur), bits, depth, leaf))
            return 0
        out = leaf if self.leaf_of is None or not leaf else self.leaf_of(leaf - 1)
        if cur == leaf and self.out[s] == out and (s >= self.copied or self.root[s] == out):  # type: ignore[index]
            return 0
        self._set(s, leaf)
        return 1

    def rewrite(self, prefix: int, plen: int, entry: int) -> None:
        """After the data of route prefix/plen (`entry`) changed: its new leaf into every slot it owns. Nothing
        to do where leaves hold entry + 1 (the data is in its own array)."""
        if self.leaf_of is None:
            return
        region = self._region(prefix, plen, create=False)
        if region is not None:
            self._rewrite(region[0], region[1], entry + 1, self.leaf_of(entry))

    def lookup(self, key: int) -> int | None:
        """The entry a packet with this key finds (what the generated C computes), for tests and dumps."""
        s = self._walk(self.a, key)
        return s - 1 if s else None

    def slot_of(self, key: int) -> int:
        """The slot value a packet with this key ends its walk on (0, entry + 1, or a leaf)."""
        return self._walk(self.out, key)

    def _walk(self, a: memoryview, key: int) -> int:
        s = a[key >> (self.width - ROOT_BITS)]
        consumed = ROOT_BITS
        while s & TRIE_LINK:
            consumed += STRIDE
            s = a[node_of(s) * FANOUT + ((key >> (self.width - consumed)) & (FANOUT - 1))]
        return s

    # -- internals ---------------------------------------------------------------------------------------------

    def _index(self, prefix: int, consumed: int, stride: int) -> int:
        return (prefix >> (self.width - consumed - stride)) & ((1 << stride) - 1)

    def _region(self, prefix: int, plen: int, create: bool) -> tuple[int, int, list[tuple[int, int]]] | None:
        """The slots prefix/plen covers, in the node of its level: (first slot, count, [(parent slot, node)])."""
        consumed, stride, base = 0, ROOT_BITS, 0
        path: list[tuple[int, int]] = []
        while True:
            top = consumed + stride
            idx = self._index(prefix, consumed, stride)
            if plen <= top:
                span = top - plen
                return base + (idx & ~((1 << span) - 1)), 1 << span, path
            s = base + idx
            cur = self.a[s]
            if not cur & TRIE_LINK:
                if not create:
                    return None
                n = self._alloc(cur)  # means what the slot meant, so it is published complete
                self._set(s, link(n))
                cur = link(n)
            path.append((s, node_of(cur)))
            base = node_of(cur) * FANOUT
            consumed, stride = top, STRIDE

    def _push(self, first: int, count: int, leaf: int, plen: int, publish: bool = True) -> None:
        """Write `leaf` (entry + 1) wherever no longer prefix is: into links too. Without `publish` (`_adopt`:
        routes come shortest first), into every slot that is not a link, of the owners only."""
        a = self.a
        if self._bulk:  # `build` inserts shortest first: the region holds no link and no longer route yet
            self._fill(first, count, leaf)
            return
        for s in range(first, first + count):
            cur = a[s]
            if cur & TRIE_LINK:
                self._push(node_of(cur) * FANOUT, FANOUT, leaf, plen, publish)
            elif not publish:
                a[s] = leaf
            elif cur != leaf and (cur == 0 or self.plen_of(cur - 1) <= plen):
                self._set(s, leaf)

    def _rewrite(self, first: int, count: int, own: int, leaf: int) -> None:
        a, out = self.a, self.out
        for s in range(first, first + count):
            cur = a[s]
            if cur & TRIE_LINK:
                self._rewrite(node_of(cur) * FANOUT, FANOUT, own, leaf)
            elif cur == own and out[s] != leaf:
                out[s] = leaf
                if s < self.copied:
                    self.root[s] = leaf  # type: ignore[index]

    def _replace(self, first: int, count: int, old: int, new: int) -> None:
        a = self.a
        for s in range(first, first + count):
            cur = a[s]
            if cur & TRIE_LINK:
                child = node_of(cur)
                self._replace(child * FANOUT, FANOUT, old, new)
                self._collapse(s, child)
            elif cur == old:
                self._set(s, new)

    def _collapse(self, parent: int, node: int) -> bool:
        vals = self.a[node * FANOUT:(node + 1) * FANOUT]
        v = vals[0]
        if v & TRIE_LINK or vals.tolist().count(v) != FANOUT:
            return False
        self._set(parent, v)  # unlinked first: a packet inside the node still reads v everywhere
        self._release(node)
        return True


def _repeat(value: int, n: int) -> memoryview:
    return memoryview(value.to_bytes(4, "little") * n).cast("I")


def _array(values: list[int]) -> memoryview:
    return memoryview(array.array("I", values))


def replacement_for(prefix: int, plen: int, width: int, routes: dict[tuple[int, int], int]) -> int | None:
    """The entry of the longest prefix shorter than plen that covers prefix/plen, from {(plen, prefix): entry}
    (prefixes stored masked to their length)."""
    for p in range(plen - 1, -1, -1):
        masked = prefix & (((1 << p) - 1) << (width - p)) if p else 0
        e = routes.get((p, masked))
        if e is not None:
            return e
    return None


def build(trie: Trie, routes: Iterable[tuple[int, int, int]]) -> None:
    """Empty the trie, then insert (prefix, plen, entry) routes, shortest first (each insert then writes only the
    slots of its own region). Not a change for packets in flight: a packet meanwhile can find no route."""
    trie.reset()
    trie._bulk = True
    try:
        for prefix, plen, entry in sorted(routes, key=lambda r: r[1]):
            trie.insert(prefix, plen, entry)
    finally:
        trie._bulk = False
