"""A priority table of at most 64 entries as a bit-vector classifier (Lakshman and Stiliadis, SIGCOMM 1998).

Entries are ranked by priority (rank 0 the highest; ties in install order, as the linear search): bit r of a
64-bit word stands for the entry of rank r. For every byte of every ternary, exact or lpm key field, a 256-word
table gives the entries whose value/mask accepts that byte value; for every range key field (at most 16 bits),
a table indexed by the whole value gives the entries whose range holds it. A packet ANDs one word per key byte
and per range field -- a handful of inlined loads, no loop, no helper call, the same time for 2 entries or 64 --
and the winner is the lowest set bit: the highest-priority match.

The lowest set bit leads to the entry's action data without counting zeros (BPF has no such instruction, and
clang 14 crashes lowering __builtin_ctzll for it): the isolated bit `m & -m` times a de Bruijn constant, shifted
right by 58, is distinct for each of the 64 bits (`debruijn_slot`), and the image keeps each rank's value
(action, entry index, arguments) at that slot: no second lookup. When that value is only the action (no action of
the table takes arguments and the table has no counters, so nothing needs the entry), the image keeps one mask per
action instead -- the ranks whose entry runs it -- and the lowest set bit is tested against them: no multiply, no
dependent load, as a hand-written classifier tests its permit mask.

The default action is the catch-all entry of rank 63 when the table holds at most 63 entries (`DEFAULT_RANK`):
its bit is set in every word, so the match word is never zero and a miss is the lowest set bit being 63 -- no
test for "no match" and no load of the default from elsewhere; changing the default publishes a new image.

Update safety: the map holds two images and the number of the one packets read. The control plane rebuilds the
other image from scratch, then publishes it with one aligned 8-byte store; a packet reads the number once, so it
sees one whole image, old or new. The image it read is rewritten at the next update but one: a packet would have
to last longer than two control-plane updates (milliseconds each, in Python) to see a mix.

The memory is any writable memoryview of bytes: the mmap of the BPF array, or a bytearray in tests.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.lower import bit_vector_refusal

MAX_ENTRIES = ir.BITVEC_MAX_ENTRIES  # one 64-bit word of ranks
DEFAULT_RANK = MAX_ENTRIES - 1  # the default's catch-all, in tables of fewer entries
DEBRUIJN = 0x03F79D71B4CA8B09  # a de Bruijn sequence B(2, 6)
M64 = (1 << 64) - 1


def debruijn_slot(rank: int) -> int:
    """The slot the data plane computes for a match word whose lowest set bit is `rank`."""
    return (((1 << rank) * DEBRUIJN) & M64) >> 58


@dataclass(frozen=True)
class Part:
    """One lookup table of the image: `bytes_` > 0 for a byte of a value/mask key field, else a range field."""

    key: int  # the key's index in the spec
    byte: int  # ternary/exact/lpm: which byte, 0 = the most significant; range: -1
    width: int  # the key field's width in bits
    offset: int  # first word in the image
    words: int  # 256, or 2^width for a range field


@dataclass(frozen=True)
class BitVecLayout:
    parts: tuple[Part, ...]
    words: int  # u64 words of the match tables of one image
    value_size: int  # bytes of one entry's value; the image ends with 64 of them, by de Bruijn slot
    action_ids: tuple[int, ...] = ()  # by-action mode: the image ends with one rank mask per action id instead
    default_rank: bool = False  # rank DEFAULT_RANK is the default action's catch-all (tables of <= 63 entries)

    @property
    def image_bytes(self) -> int:
        if self.action_ids:
            return 8 * (self.words + len(self.action_ids))
        return 8 * self.words + MAX_ENTRIES * self.value_size

    @property
    def stride(self) -> int:
        """Bytes from image 0 to image 1: the next power of two, so a packet finds the active image a shift away
        (`active << log2(stride)`) rather than a multiply, which sat on the path of every table load (the
        benchmark ACL's images, 540,688 bytes each, are 1 MiB apart: 0.5 MiB of padding, ~1 ns per packet)."""
        return 1 << max(3, (self.image_bytes - 1).bit_length())


def layout_for(t: ir.Table, value_size: int, action_ids: tuple[int, ...] = (),
               default_rank: bool = False) -> BitVecLayout:
    parts: list[Part] = []
    off = 0
    for i, k in enumerate(t.keys):
        if k.kind == "range":
            n = 1 << min(k.width, 64)
            parts.append(Part(i, -1, k.width, off, n))
            off += n
        else:
            for b in range(-(-k.width // 8)):
                parts.append(Part(i, b, k.width, off, 256))
                off += 256
    return BitVecLayout(tuple(parts), off, value_size, action_ids, default_rank)


def chosen(t: ir.Table, value_size: int, entry_ids: tuple[int, ...], other_ids: tuple[int, ...]) -> BitVecLayout | None:
    """The table's bit-vector layout when it is built as one: `bit_vector`, or `auto` for a priority table the
    structure can hold (docs/performance.md, the cost model). `entry_ids`: the ids of the actions an entry may
    run, `other_ids` those only the default may (nop); by-action mode when the value is nothing else (8 bytes:
    action and entry, no counters), with a mask for each action the image's entries, default included, may run."""
    if t.impl.kind not in ("auto", "bit_vector") or not t.uses_priority or bit_vector_refusal(t):
        return None
    by_action = value_size == 8 and not t.counters
    default_rank = t.size <= DEFAULT_RANK
    ids = (*entry_ids, *other_ids) if default_rank else entry_ids
    return layout_for(t, value_size, ids if by_action else (), default_rank)


def _value_mask(m: KeyElem, width: int) -> tuple[int, int]:
    full = (1 << width) - 1
    if m.kind == "value":
        return m.a & full, full
    if m.kind == "prefix":
        mask = (full ^ ((1 << (width - m.b)) - 1)) if m.b else 0
        return m.a & mask, mask
    if m.kind == "mask":
        return m.a & m.b & full, m.b & full
    return 0, 0  # any


def image(lay: BitVecLayout, rows: list[tuple[tuple[KeyElem, ...], bytes]], default: bytes | None = None) -> bytes:
    """One image for `rows`: (match, value) in rank order, at most 64 (63 with a default rank, whose value is
    `default`, required then)."""
    if lay.default_rank:
        if default is None:
            raise ValueError("the table's default is its catch-all rank: its value is needed")
        if len(rows) > DEFAULT_RANK:
            raise ValueError(f"{len(rows)} entries, more than {DEFAULT_RANK}")
        everyone = 1 << DEFAULT_RANK  # the catch-all: in every word
    else:
        everyone = 0
    if len(rows) > MAX_ENTRIES:
        raise ValueError(f"{len(rows)} entries, more than {MAX_ENTRIES}")
    words = array("Q", [everyone]) * lay.words
    for p in lay.parts:
        if p.byte < 0:  # range: constant between the points where some entry's range starts or ends
            starts: dict[int, int] = {}
            for r, (match, _) in enumerate(rows):
                m = match[p.key]
                lo, hi = (m.a, m.b) if m.kind == "range" else (0, p.words - 1) if m.kind == "any" else (m.a, m.a)
                if lo > hi:
                    continue
                starts[lo] = starts.get(lo, 0) ^ (1 << r)
                if hi + 1 < p.words:
                    starts[hi + 1] = starts.get(hi + 1, 0) ^ (1 << r)
            cur, points = 0, sorted(starts)
            for j, x in enumerate(points):
                cur ^= starts[x]
                end = points[j + 1] if j + 1 < len(points) else p.words
                if cur:
                    words[p.offset + x:p.offset + end] = array("Q", [cur | everyone]) * (end - x)
            continue
        shift = 8 * (-(-p.width // 8) - 1 - p.byte)
        by_pair: dict[tuple[int, int], int] = {}
        for r, (match, _) in enumerate(rows):
            v, mk = _value_mask(match[p.key], p.width)
            pair = ((v >> shift) & 0xFF, (mk >> shift) & 0xFF)
            by_pair[pair] = by_pair.get(pair, 0) | 1 << r
        for (v, mk), bits in by_pair.items():
            free = ~mk & 0xFF  # every byte value that agrees with v under the mask: v | each subset of free
            sub = free
            while True:
                words[p.offset + (v | sub)] |= bits
                if not sub:
                    break
                sub = (sub - 1) & free
    ranked = [(r, value) for r, (_, value) in enumerate(rows)]
    if lay.default_rank:
        assert default is not None
        ranked.append((DEFAULT_RANK, default))
    if lay.action_ids:
        masks = array("Q", bytes(8 * len(lay.action_ids)))
        slot_of = {a: i for i, a in enumerate(lay.action_ids)}
        for r, value in ranked:
            masks[slot_of[int.from_bytes(value[:4], "little")]] |= 1 << r
        return words.tobytes() + masks.tobytes()
    values = bytearray(MAX_ENTRIES * lay.value_size)
    for r, value in ranked:
        slot = debruijn_slot(r) * lay.value_size
        values[slot:slot + lay.value_size] = value
    return words.tobytes() + bytes(values)


class BitVector:
    """The table's map value: u64 `active` (the image packets read, 0 or 1), then image 0, then image 1 `stride`
    bytes after it."""

    def __init__(self, mem: memoryview, lay: BitVecLayout) -> None:
        self.lay = lay
        self.mem = mem
        self.active = mem[:8].cast("Q")

    @staticmethod
    def map_bytes(lay: BitVecLayout) -> int:
        return 8 + lay.stride + lay.image_bytes

    def publish(self, rows: list[tuple[tuple[KeyElem, ...], bytes]], default: bytes | None = None) -> None:
        """Build the image packets do not read, then make them read it (one aligned 8-byte store)."""
        nxt = 1 - (self.active[0] & 1)
        start = 8 + nxt * self.lay.stride
        self.mem[start:start + self.lay.image_bytes] = image(self.lay, rows, default)
        self.active[0] = nxt

    def close(self) -> None:
        self.active.release()
