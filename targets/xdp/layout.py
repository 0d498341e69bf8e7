"""Byte layouts of the maps the generated program and its control plane share.

One module computes them so the C structs the emitter writes, the bytes the driver installs and the bpftool
examples in the generated README cannot disagree. Layouts follow C's natural alignment (no `packed`), because
the BPF stack is strictly aligned and packed structs would turn every key store into byte stores.

- one exact key of at most 16 bits: BPF_MAP_TYPE_ARRAY indexed by the key value (`direct`; array lookups are
  inlined by the verifier, several times faster than a hash), action id 0 marking "no entry".
- other exact-only tables: BPF_MAP_TYPE_HASH; key = each key in spec order, big-endian, in 1/2/4/8/16 bytes.
- one lpm key plus exact keys: BPF_MAP_TYPE_LPM_TRIE; key = u32 prefix length, then the exact keys, then the
  lpm key (reordered so the longest-prefix match runs over the exact keys' full width first).
- any ternary/range key: a priority-ordered BPF_MAP_TYPE_ARRAY searched linearly; per key one or two words
  (value, mask) or (lo, hi), host order: u32 words when every key fits 32 bits (an IPv4 5-tuple rule then takes
  40 bytes instead of 64: more rules per cache line), u64 otherwise. Tables of up to 64 entries are classified
  by bit vectors instead (bitvec.py); the array stays as the control plane's record.
Values: u32 action id, u32 entry (install) index, then one u64 slot per action parameter (two for wide ones), and
the CRC registers an exact table's entries may hold (crcpre.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from c3po_compiler import ir

from .bitvec import BitVecLayout, chosen
from .crcpre import CrcPrefix, place, register
from .cuckoo import buckets_for, narrow_k1, slot_layout, tag_for, ways_for
from .images import simple

DIRECT_MAX_BITS = ir.DIRECT_MAX_BITS
COUNTER_BYTES = 16  # struct c3po_counter: u64 packets, u64 bytes
# The egress DEVMAP: one slot per 16-bit spec port, so every port forward() can name is in range (512 KiB). Also
# faster than a smaller map: with 1,024 slots (an 8 KiB kmalloc) the redirect's slot load stalled about twice as
# often in a cpu-clock profile of the VXLAN gateway as with this array (docs/performance.md, 2026-12-07).
TX_PORTS = 65536
# A multibit trie: a 16-bit root (65,536 slots) then nodes of 256 slots (8 bits per level). Unless the spec says
# how many nodes, a table gets one per entry of its size (bounded): a route of a realistic global table needs
# about one (a /24 whose /16 holds no other route needs a node of its own, a /25../32 two; a /48 IPv6 route at
# most 4), and routes share nodes where their prefixes cluster (benchmarks/bench_tables.py measured both).
TRIE_ROOT_BITS = 16
TRIE_STRIDE = 8
TRIE_MIN_NODES = 64
TRIE_MAX_NODES = 1 << 16
# A direct table without counters is read from a copy in a global (`td_<table>`, its section's one-element array
# map) when the copy is at most this big: one load, no map lookup with its key on the stack and NULL test. A
# .data section's bytes, zeros included, are stored in the object file; 2 MiB (a 16-bit key, up to two argument
# slots) keeps that, and the copy's memory, which the record's doubles, small.
DIRECT_GLOBAL_MAX = 2 << 20
# A cuckoo table's buckets live in a global (`th_<table>`, its section's one-element array map) up to 4 MiB (the
# section's bytes are in the object file): a bucket is then one load away, with no map lookup, key on the stack or
# NULL test. They are the lookup structure only (the hash map beside them is the record), so there is nothing to
# copy.
CUCKOO_GLOBAL_MAX = 4 << 20


def trie_nodes(t: ir.Table) -> int:
    """Trie nodes for a table built as a multibit trie, 0 when it is not one (the cost model: docs/performance.md).

    `auto` picks the trie for a table whose one key is an lpm key of whole bytes, 16 to 128 bits: its lookup is
    one inlined array load per level, against the kernel LPM trie's helper call and ~10-node walk."""
    kind = t.impl.kind
    if kind == "auto":
        one = len(t.keys) == 1 and t.keys[0].kind == "lpm"
        kind = "multibit_trie" if one and t.keys[0].width % 8 == 0 and 16 <= t.keys[0].width <= 128 else ""
    if kind != "multibit_trie":
        return 0
    return t.impl.nodes or max(TRIE_MIN_NODES, min(TRIE_MAX_NODES, t.size))


def cuckoo_buckets(t: ir.Table, kind: str) -> int:
    """Buckets of a table built as a cuckoo hash, 0 when it is not one. `auto` picks it for every exact table that
    is not direct and whose keys fit two 64-bit words: two bucket loads against the hash map helper's jhash and
    call (docs/performance.md)."""
    fits = sum(k.width for k in t.keys) <= ir.CUCKOO_MAX_BITS
    if kind != "hash" or not fits or t.impl.kind not in ("auto", "cuckoo"):
        return 0
    return buckets_for(t.size, ways_for(t.size))


def key_words(t: ir.Table) -> int:
    return 1 if sum(k.width for k in t.keys) <= 64 else 2


def cuckoo_tag(t: ir.Table) -> tuple[int, int]:
    """The tag a cuckoo table's live slots hold beside the key (cuckoo.tag_for): what the emitter compares with and
    the control plane writes."""
    return tag_for(sum(k.width for k in t.keys), key_words(t))


@dataclass(frozen=True)
class KeyPart:
    """Where one exact key field lies in a cuckoo table's composed key (one or two 64-bit words)."""

    index: int   # the field's position in the table's key
    shift: int   # its lowest bit in the composed key
    width: int
    raw: bool    # its bytes in memory order, read as a little-endian number (a whole-byte header field)


def _raw_part(k: ir.TableKey) -> bool:
    return isinstance(k.expr, ir.FieldRef) and k.expr.group is None and k.width % 8 == 0 and k.width <= 64


def cuckoo_key_parts(t: ir.Table) -> tuple[KeyPart, ...]:
    """How a cuckoo table's key fields are composed into its key words, in key order. Header fields of whole
    bytes (a MAC address, an EtherType) are taken with their bytes as they lie in the frame, the first such
    field at bit 0: the packet's bytes are then the key's low bits as one or two loads, with no byte swap and no
    shifts to assemble them; the other fields (metadata, fields of a few bits) follow above them as numbers, in
    key order. So the VXLAN FDB's (VNI, MAC) is the MAC's six bytes, then the VNI, as an expert writes it. With
    no such field the fields are concatenated as numbers, the first the most significant. The control plane
    composes the same words (`control.cuckoo_key`); any bijection of the key hashes and compares alike."""
    raw = [i for i, k in enumerate(t.keys) if _raw_part(k)]
    order = raw + [i for i in range(len(t.keys)) if i not in raw] if raw else list(reversed(range(len(t.keys))))
    parts: dict[int, KeyPart] = {}
    shift = 0
    for i in order:
        parts[i] = KeyPart(i, shift, t.keys[i].width, i in raw)
        shift += t.keys[i].width
    return tuple(parts[i] for i in range(len(t.keys)))


def cuckoo_narrow(t: ir.Table) -> bool:
    """Whether the table's slots hold k1 as a u32 (cuckoo.narrow_k1: a key of 65 to 95 bits)."""
    return narrow_k1(key_words(t), cuckoo_tag(t))


def cuckoo_raw_key(t: ir.Table) -> bool:
    """Whether some field of a cuckoo table's key is taken with its bytes in memory order (cuckoo_key_parts)."""
    return any(p.raw for p in cuckoo_key_parts(t))


# The trie again, in a global packets read (`c3po_tries.<table>`, in .bss): the root and every node, up to 128 MiB
# of u32 slots a table (the root and 130,816 nodes; the kernel maps a .bss of 1 GiB here). The walk is then a
# direct load per level with no map lookup on any path, so no helper call for the compiler to keep registers
# around. A trie declared bigger copies its first nodes (allocated lowest id first) and reads deeper ones from
# the array map. In .bss, not a .data section of its own: the object file stores a .data section's zeros.
TRIE_COPY_SLOTS_MAX = 1 << 25
TRIES_GLOBAL = ".bss"  # the section of `c3po_tries`; libbpf's map for it is "<object>.bss", found by this name


def trie_copied_slots(nodes: int) -> int:
    """Slots of a trie's global copy: the root's, then those of as many nodes as fit (all, when they do)."""
    fanout = 1 << TRIE_STRIDE
    return min(trie_slots(nodes), TRIE_COPY_SLOTS_MAX // fanout * fanout)


def trie_map(lay: TableLayout) -> bool:
    """Whether a trie table keeps its slots in an array map `tt_<table>`: only when its global copy cannot hold
    every node (layout.TRIE_COPY_SLOTS_MAX); otherwise the copy is the trie, and memory is not spent twice."""
    return bool(lay.trie_nodes) and trie_copied_slots(lay.trie_nodes) < trie_slots(lay.trie_nodes)


def trie_copies(layouts: Mapping[str, TableLayout]) -> dict[str, tuple[int, int]]:
    """Each trie's copy in the global `c3po_tries`, whose members are the trie tables in name order: (its first
    slot, its slots). The template declares the members and the control plane maps them from this one list."""
    out: dict[str, tuple[int, int]] = {}
    at = 0
    for name in sorted(layouts):
        if layouts[name].trie_nodes:
            n = trie_copied_slots(layouts[name].trie_nodes)
            out[name] = (at, n)
            at += n
    return out


def trie_slots(nodes: int) -> int:
    """Slots of the trie array: the root (node ids 0..255 in units of 256 slots), then the nodes."""
    return (1 << TRIE_ROOT_BITS) + nodes * (1 << TRIE_STRIDE)


def byte_size(width: int) -> int:
    """Storage bytes of a key of `width` bits: the next of 1, 2, 4, 8, 16."""
    for n in (1, 2, 4, 8, 16):
        if width <= 8 * n:
            return n
    raise ValueError(f"width {width} is wider than 128 bits")


def hash_member_size(width: int) -> int:
    """Bytes of a hash-table key member: exactly the key's bytes up to 8 (a 48-bit MAC takes 6, not 8: every
    byte of the key is hashed and compared on each lookup, and 16 bytes cost the kernel's jhash2 a round more
    than 12), then 16."""
    return (width + 7) // 8 if width <= 64 else 16


def member_align(size: int) -> int:
    """Alignment of a key member: a C integer of 1, 2, 4 or 8 bytes, 8 for 16 bytes (two __be64), else a byte
    array."""
    return size if size in (1, 2, 4, 8) else 8 if size == 16 else 1


def align(off: int, n: int) -> int:
    return (off + n - 1) // n * n


@dataclass(frozen=True)
class KeyField:
    index: int  # position among the table's keys in the spec
    text: str
    kind: str
    width: int
    size: int  # bytes (hash/lpm; a byte array unless 1, 2, 4, 8 or 16) or u64 words (linear)
    offset: int  # byte offset in the key struct (hash/lpm) or first word index (linear)


@dataclass(frozen=True)
class TableLayout:
    name: str
    kind: str  # 'hash' | 'lpm' | 'linear'
    keys: list[KeyField]  # in struct order
    key_size: int  # bytes of the key struct (hash/lpm); words per entry key (linear)
    slots: int  # u64 argument slots in the value (0: no action takes parameters, the value is 8 bytes)
    action_ids: dict[str, int]
    arg_slots: dict[str, list[tuple[str, int, int]]]  # action -> [(param, width, first slot)]

    @property
    def value_size(self) -> int:
        return 8 + 8 * self.slots

    word_bytes: int = 8  # linear tables: 4 when every key fits 32 bits
    trie_nodes: int = 0  # lpm tables looked up in a multibit trie (0: in the kernel's LPM trie map)
    cuckoo_buckets: int = 0  # exact tables looked up in a cuckoo hash (0: in the kernel's hash map)
    bitvec: BitVecLayout | None = None  # priority tables classified by bit vectors (None: searched linearly)
    # Tables with counters that are direct, tries or cuckoo hashes: the action data and the entry's counter in one
    # per-CPU element (`percpu`: the direct array, or the action data array by entry index), so a hit is one
    # inlined lookup; element `default_elem` (past the last key value or entry) counts the default action.
    percpu: bool = False
    default_elem: int = 0
    # Parameters kept in network order in their slot (action -> names): `raw_params` says which.
    raw: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Trie tables whose leaves hold the entry's action data itself (`trie_leaf`), None: entry + 1 in the leaf.
    leaf: TrieLeaf | None = None
    cuckoo_ways: int = 0  # slots per bucket of a cuckoo table (cuckoo.ways_for)
    # Exact tables: per action, the CRC registers its entries hold for hashes that start with the entry's keys
    # (crcpre.py); a default holds 0 there (a miss hashes everything).
    crc: dict[str, tuple[CrcPrefix, ...]] = field(default_factory=dict)

    @property
    def direct_global(self) -> bool:
        """Packets read this direct table from its global copy `td_<table>` (the array map stays the record)."""
        return self.kind == "direct" and not self.percpu and self.value_size << self.keys[0].width <= DIRECT_GLOBAL_MAX

    @property
    def cuckoo_bytes(self) -> int:
        width = sum(k.width for k in self.keys)
        words = 1 if width <= 64 else 2
        return self.cuckoo_buckets * self.cuckoo_ways * slot_layout(words, tag_for(width, words))[0]

    @property
    def cuckoo_global(self) -> bool:
        """The buckets are a global `th_<table>` (else an array map of that name)."""
        return 0 < self.cuckoo_bytes <= CUCKOO_GLOBAL_MAX

    @property
    def mask_actions(self) -> list[tuple[str, int]]:
        """A bit-vector classifier in by-action mode: (action, id) of each rank mask, in the image's order."""
        if self.bitvec is None:
            return []
        names = {i: n for n, i in self.action_ids.items()}
        return [(names[i], i) for i in self.bitvec.action_ids]

    @property
    def elem_size(self) -> int:
        """Bytes of one CPU's copy of a `percpu` element: the value, then `struct c3po_counter`."""
        return self.value_size + (COUNTER_BYTES if self.percpu else 0)

    @property
    def entry_size(self) -> int:
        """Linear tables: bytes of one array element (value words, mask words, then the value)."""
        return align(2 * self.word_bytes * self.key_size, 8) + self.value_size


@dataclass(frozen=True)
class TrieLeaf:
    """A multibit-trie slot that holds a route's action data instead of its entry index: bits 0..`act_shift`-1
    are the argument slots side by side, (slot, first bit, width) each, and bits `act_shift`..29 the program-wide
    action id (never 0, so a route is never an empty slot; bit 30 stays the trie's link flag, trie.TRIE_LINK)."""

    act_shift: int
    fields: tuple[tuple[int, int, int], ...]

    def encode(self, action_id: int, slots: list[int]) -> int:
        leaf = action_id << self.act_shift
        for slot, shift, width in self.fields:
            leaf |= (slots[slot] & ((1 << width) - 1)) << shift
        return leaf

    def decode(self, leaf: int, nslots: int) -> tuple[int, list[int]]:
        """(action id, argument slots) of a leaf."""
        slots = [0] * nslots
        for slot, shift, width in self.fields:
            slots[slot] = (leaf >> shift) & ((1 << width) - 1)
        return leaf >> self.act_shift, slots

    def describe(self) -> str:
        args = ", ".join(f"arg{s} bits {b}..{b + w - 1}" for s, b, w in self.fields)
        return f"action id << {self.act_shift}" + (f", {args}" if args else "")


TRIE_LEAF_BITS = 30  # bit 30 of a slot is C3PO_TRIE_LINK


def trie_leaf(t: ir.Table, ids: dict[str, int], arg_slots: dict[str, list[tuple[str, int, int]]],
              slots: int) -> TrieLeaf | None:
    """The leaf form of a trie table, None where it does not fit (then a leaf holds entry + 1, and the data is
    looked up in `tv_<table>` by entry). It needs nothing at packet time to know the entry: no counters (their
    index is the entry). Argument slot i gets the widest parameter any action puts there; the slots and the
    widest action id must fit 30 bits. The router's routes: set_nexthop(id: 16) and ids up to 7, 19 bits."""
    if t.counters:
        return None
    widths = [0] * slots
    for params in arg_slots.values():
        for _, width, slot in params:
            if width > 64:
                return None
            widths[slot] = max(widths[slot], width)
    fields, shift = [], 0
    for slot, width in enumerate(widths):
        if width:
            fields.append((slot, shift, width))
            shift += width
    if shift + max(ids.values()).bit_length() > TRIE_LEAF_BITS:
        return None
    return TrieLeaf(shift, tuple(fields))


def leaf_of_value(lay: TableLayout, value: bytes) -> int:
    """The leaf of an entry whose encoded value (`encode_value`) is `value`."""
    assert lay.leaf is not None
    slots = [int.from_bytes(value[8 + 8 * i:16 + 8 * i], "little") for i in range(lay.slots)]
    return lay.leaf.encode(int.from_bytes(value[0:4], "little"), slots)


def action_ids(prog: ir.Program) -> dict[str, int]:
    """Program-wide action ids, from 1 (0 marks an empty slot / no override), in name order."""
    return {name: i + 1 for i, name in enumerate(sorted(prog.actions))}


def table_kind(t: ir.Table) -> str:
    """The map a table lives in. A multibit trie is an lpm table too: its entries are kept in an LPM trie map
    (the control plane's record, never looked up by packets) and its lookup structure beside it."""
    if t.uses_priority:
        return "linear"
    if t.lpm_key is not None:
        return "lpm"
    if t.impl.kind in ("hash", "cuckoo"):
        return "hash"
    if len(t.keys) == 1 and t.keys[0].width <= DIRECT_MAX_BITS:
        return "direct"
    return "hash"


def table_layout(prog: ir.Program, t: ir.Table) -> TableLayout:
    kind = table_kind(t)
    keys: list[KeyField] = []
    if kind == "direct":
        keys.append(KeyField(0, t.keys[0].text, "exact", t.keys[0].width, 4, 0))
        key_size = 4
    elif kind == "linear":
        word = 0
        for i, k in enumerate(t.keys):
            n = 1 if k.width <= 64 else 2
            keys.append(KeyField(i, k.text, k.kind, k.width, n, word))
            word += n
        key_size = word
    else:
        order = list(range(len(t.keys)))
        if kind == "lpm":
            lpm = t.lpm_key
            order = [i for i in order if i != lpm] + [lpm]  # type: ignore[list-item]
        off = 4 if kind == "lpm" else 0
        max_align = 4 if kind == "lpm" else 1
        if kind == "hash":  # no padding between members: widest alignment first
            order.sort(key=lambda i: -member_align(hash_member_size(t.keys[i].width)))
        for i in order:
            k = t.keys[i]
            n = hash_member_size(k.width) if kind == "hash" else byte_size(k.width)
            a = member_align(n)
            off = align(off, a)
            max_align = max(max_align, a)
            keys.append(KeyField(i, k.text, k.kind, k.width, n, off))
            off += n
        # A hash key is a whole number of 32-bit words: the kernel hashes those with jhash2, word by word.
        key_size = align(off, max(max_align, 4) if kind == "hash" else max_align)
    ids = action_ids(prog)
    arg_slots: dict[str, list[tuple[str, int, int]]] = {}
    slots = 0
    # nop is always available: the control plane may set it as a table's default (as the reference allows).
    for name in dict.fromkeys([*t.actions, t.default.action, "nop"]):
        slot = 0
        params = []
        for p in prog.actions[name].params:
            params.append((p.name, p.width, slot))
            slot += 1 if p.width <= 64 else 2
        arg_slots[name] = params
        slots = max(slots, slot)
    word_bytes = 4 if kind == "linear" and all(k.width <= 32 for k in t.keys) else 8
    nodes, buckets = trie_nodes(t) if kind == "lpm" else 0, cuckoo_buckets(t, kind)
    table_ids = {a: ids[a] for a in arg_slots}
    leaf = trie_leaf(t, table_ids, arg_slots, slots) if nodes else None
    # A leaf's arguments are host-order integers (the bits of the slot): no parameter is kept in network order.
    raw = {} if leaf else {a: r for a in arg_slots if (r := raw_params(prog, prog.actions[a]))}
    crcs: dict[str, tuple[CrcPrefix, ...]] = {}
    if kind in ("hash", "direct") and not leaf:
        for act, params in arg_slots.items():
            if act in t.actions:  # (an action only possible as a default never runs from a hit)
                own = max((slot + (2 if w > 64 else 1) for _, w, slot in params), default=0)
                pre, used = place(t, prog.actions[act], params, raw.get(act, ()), own)
                if pre:
                    crcs[act] = pre
                    slots = max(slots, used)
    percpu = t.counters and (kind == "direct" or nodes > 0 or buckets > 0)
    default_elem = (1 << t.keys[0].width if kind == "direct" else t.size) if percpu else 0
    bitvec = chosen(t, 8 + 8 * slots, tuple(table_ids[a] for a in t.actions),
                    tuple(i for a, i in table_ids.items() if a not in t.actions)) if kind == "linear" else None
    return TableLayout(t.name, kind, keys, key_size, slots,
                       table_ids, arg_slots, word_bytes, nodes,
                       buckets, bitvec, percpu, default_elem, raw, leaf,
                       cuckoo_ways=ways_for(t.size) if buckets else 0, crc=crcs)


def raw_params(prog: ir.Program, a: ir.Action) -> tuple[str, ...]:
    """Parameters an action only copies, whole, into byte-aligned packet fields of their own width (a MAC into
    ethernet.src): their slot holds the value's bytes in network order (the first width/8 bytes of the slot in
    memory), so the action stores them as they are, with no byte swap. A parameter read any other way (an
    expression, a condition, a port, metadata) stays a host-order integer; so does one written into an optional
    group, a TLV option, or a header the program can make valid that is not all fixed fields (images.simple: a
    new header of fixed fields takes the raw store like any other, its constant bytes come from its image)."""
    if a.builtin:
        return ()
    made = {s.instance for body in [prog.control, *(x.body for x in prog.actions.values())]
            for s in ir.walk_stmts(body) if isinstance(s, ir.SetValid)}
    ok = {p.name: p.width for p in a.params if p.width % 8 == 0 and p.width <= 64}
    for s in ir.walk_stmts(a.body):
        copy = None
        if isinstance(s, ir.Assign) and isinstance(s.value, ir.ParamRef) and isinstance(s.target, ir.FieldRef):
            t = s.target
            inst = prog.instances[t.instance]
            f = inst.type.field(t.field_name)
            if (f is not None and t.group is None and not inst.tlv_parent and (t.instance not in made or simple(inst))
                    and f.offset % 8 == 0 and f.width == ok.get(s.value.name)):
                copy = s.value
        for e in ir.stmt_exprs(s):
            for x in ir.walk_expr(e):
                if isinstance(x, ir.ParamRef) and x is not copy:
                    ok.pop(x.name, None)
    return tuple(p.name for p in a.params if p.name in ok)


def lpm_prefix_bits(layout: TableLayout, prefix_len: int) -> int:
    """The trie prefix length for an lpm key matching `prefix_len` bits: everything before the lpm key's
    bytes (zero padding included, matched exactly), the lpm key's own leading zero bits, then the prefix."""
    lk = layout.keys[-1]
    return 8 * (lk.offset - 4) + (8 * lk.size - lk.width) + prefix_len


def encode_be(value: int, size: int) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


DEFAULTS_MAP = ".data.defaults"  # the global struct c3po_defaults: each table's default action, in name order
DEFAULT_ENTRY = 0xFFFFFFFF  # the entry index of a default: entry + 1 wraps to counter index 0


def arg_slots(layout: TableLayout, action: str, args: tuple[int, ...] | list[int]) -> list[int]:
    """The value's u64 slots (as little-endian integers) for an action's arguments: host-order integers, except
    raw parameters (`raw_params`), whose slot holds the value's bytes in network order."""
    slots = [0] * layout.slots
    raw = layout.raw.get(action, ())
    for (name, width, slot), arg in zip(layout.arg_slots[action], args, strict=True):
        arg &= (1 << width) - 1
        if name in raw:
            slots[slot] = int.from_bytes(arg.to_bytes(width // 8, "big"), "little")
        elif width <= 64:
            slots[slot] = arg
        else:
            slots[slot] = arg >> 64
            slots[slot + 1] = arg & ((1 << 64) - 1)
    return slots


def slot_args(layout: TableLayout, action: str, slots: list[int]) -> tuple[int, ...]:
    """The inverse of `arg_slots`."""
    raw = layout.raw.get(action, ())
    args = []
    for name, width, slot in layout.arg_slots[action]:
        if name in raw:
            args.append(int.from_bytes(slots[slot].to_bytes(8, "little")[:width // 8], "big"))
        else:  # (masked: a CRC register may share the slot, crcpre.py)
            args.append(slots[slot] & ((1 << width) - 1) if width <= 64 else slots[slot] << 64 | slots[slot + 1])
    return tuple(args)


def encode_value(layout: TableLayout, action: str, args: tuple[int, ...] | list[int], entry: int,
                 match: Sequence[ir.KeyElem] | None) -> bytes:
    """`match`: the entry's, for the CRC registers some tables' entries hold (crcpre.py); None for a default
    (entry DEFAULT_ENTRY), which holds none."""
    slots = arg_slots(layout, action, args)
    pres = layout.crc.get(action, ())
    if pres and entry != DEFAULT_ENTRY:
        if match is None:
            raise ValueError(f"table '{layout.name}': an entry's value needs its match ({action} keeps CRC registers)")
        for p in pres:
            slots[p.slot] |= register(p, match) << p.shift
    out = layout.action_ids[action].to_bytes(4, "little") + (entry & 0xFFFFFFFF).to_bytes(4, "little")
    return out + b"".join(s.to_bytes(8, "little") for s in slots)


def percpu_elem(layout: TableLayout, ncpu: int, value: bytes, counters: bytes | None = None) -> bytes:
    """The bytes of a `percpu` element as the kernel takes them (one copy per possible CPU): the value in every
    copy, each with its counter from `counters` (the element as read, `ncpu` copies) or zero."""
    es = layout.elem_size
    out = bytearray()
    for c in range(ncpu):
        out += value
        out += counters[c * es + layout.value_size:(c + 1) * es] if counters else bytes(COUNTER_BYTES)
    return bytes(out)


def percpu_counter(layout: TableLayout, ncpu: int, raw: bytes) -> tuple[int, int]:
    """(packets, bytes) of a `percpu` element as read (`ncpu` copies), summed over the CPUs."""
    es, off = layout.elem_size, layout.value_size
    pk = sum(int.from_bytes(raw[c * es + off:c * es + off + 8], "little") for c in range(ncpu))
    by = sum(int.from_bytes(raw[c * es + off + 8:c * es + off + 16], "little") for c in range(ncpu))
    return pk, by
