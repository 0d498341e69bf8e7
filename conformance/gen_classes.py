"""Vectors for the gap classes mutation analysis found (issue 16): behaviour that full path/branch/statement
coverage still leaves unchecked, because one packet per branch never lands on the values where a wrong
comparison, constant or byte order would show.

- const entries: every constant entry hit by a key that makes it win, and the keys just around it (range
  lo/hi/lo-1/hi+1, one masked bit flipped, one unmasked bit flipped, an exact neighbour, an empty range's
  bounds);
- defaults varied: a miss under every other action a table's default may be set to (the language has no
  constant defaults, so every table's default may be replaced);
- select edges: the values next to each select case (value±1, lo-1/hi+1, a masked bit flipped);
- length edges: variable-length headers at their minimum, an intermediate and their maximum length, one past
  the maximum, and TLV areas that end on an option with no data;
- checksum edges: a verified checksum whose field is 0x0000 (and the same sum written 0xffff), an updated
  checksum whose result is 0x0000;
- truncation edges: a frame ending exactly at each header boundary (the last header with no payload too);
- key edges: all-zero and all-ones keys, in an entry and in the packet.

Each class counts items; an item no vector can reach is listed as infeasible with the reason. Expected results
are the oracle's, as for every generated vector. Every class has a cap on the vectors it adds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .checksums import ones_add, ones_sum
from .gen_control import entry_for, param_value
from .gen_coverage import ClassCoverage
from .gen_fullwidth import low_bit_vectors, recomplete
from .gen_lengths import length_parity_vectors
from .gen_paths import Builder, ParsePath, Rec, Step, _Ref
from .model import ControlState, PacketIn, Registers, Vector
from .packets import pack_bits
from .tracing import TracingInterpreter, stmt_id

__all__ = ["CLASSES", "ClassContext", "class_vectors"]

CLASSES = (
    "const_entries",
    "const_entry_edges",
    "const_dont_care",  # gen_const.py
    "const_overlaps",  # gen_const.py
    "const_mask_bits",  # gen_const.py
    "defaults_varied",
    "select_edges",
    "length_edges",
    "checksum_edges",
    "checksum_copies",  # gen_gaps.py
    "truncation_edges",
    "key_edges",
    "tlv_edges",
    "condition_edges",
    "full_width",
    "arg_low_bits",  # gen_fullwidth.py
)
MAX_PER_CLASS = 96  # vectors one class may add to a program
MAX_PATHS = 8  # parse paths to a select state whose copies of it get vectors of their own (select_edges, select_bits)
MAX_PATH_EDGES = 448  # select_edges' vectors on the paths past the first
MAX_STEER_PATHS = 6  # parse paths tried to carry one key value to a table
STEER_TRIES = 2

Emit = Callable[..., Any]
FirstApply = tuple[int, bytes, int, ControlState, Registers, tuple[int, ...]]
Accepted = tuple[int, ParsePath, list[Rec], bytes, list[int]]


@dataclass
class ClassContext:
    """What generate() has built so far, for the class passes."""

    prog: ir.Program
    seed: int
    classes: dict[str, ClassCoverage]
    accepted: list[Accepted]
    paths: list[ParsePath]
    first_apply: dict[str, FirstApply]
    emit: Emit  # emit(name, pid, control, data, tags, port, regs) -> oracle result
    run_with: Callable[[ControlState, bytes, int, Registers], Any]
    interp: TracingInterpreter
    vectors: list[Vector]
    pools: dict[str, list[FirstApply]] = field(default_factory=dict)
    per_path: Any = None  # gen_coverage.PathCoverage: the copies of the control a target makes per parse path


class _Budget:
    """The cap on one class's vectors; items past it are named, not silently dropped."""

    def __init__(self, part: ClassCoverage, cap: int = MAX_PER_CLASS) -> None:
        self.left = self.cap = cap
        self.part = part

    def take(self, item: str) -> bool:
        if self.left <= 0:
            self.part.infeasible[item] = f"not generated: the class's cap of {self.cap} vectors was reached"
            return False
        self.left -= 1
        return True

    def take_all(self, items: list[str]) -> bool:
        """One vector for several items: past the cap each is named (keeping a reason it already has)."""
        if self.left <= 0:
            for item in items:
                self.part.infeasible.setdefault(item, f"not generated: the class's cap of {self.cap} vectors was reached")
            return False
        self.left -= 1
        return True


def _planned(part: ClassCoverage, budget: _Budget, item: str, value: int | None, why: str) -> bool:
    """Count an item; True when a vector is to be made for it (it is feasible and under the cap)."""
    part.all.append(item)
    if value is None:
        part.infeasible[item] = why
        return False
    return budget.take(item)


def class_vectors(ctx: ClassContext) -> None:
    for name in CLASSES:
        ctx.classes.setdefault(name, ClassCoverage())
    _const_entries(ctx)
    from .gen_const import const_vectors  # imports this module's steering

    const_vectors(ctx)
    _defaults_varied(ctx)
    _key_edges(ctx)
    _select_edges(ctx)
    _length_edges(ctx)
    _checksum_edges(ctx)
    from .gen_gaps import gap_vectors  # imports this module's steering

    gap_vectors(ctx)
    from .gen_lookbits import lookahead_bits  # imports this module's steering

    lookahead_bits(ctx)
    from .gen_optstates import end_padding, options_behind  # imports this module's steering

    options_behind(ctx)
    end_padding(ctx)
    _truncation_edges(ctx)
    _tlv_edges(ctx)
    _condition_edges(ctx)
    _full_width(ctx)


# ------------------------------------------------------------------------------------------- key steering


def _keys_match(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return all(w is None or g == w for g, w in zip(got, want, strict=True))


MAX_POOL = 48  # distinct packets remembered per table
MAX_POOL_SCAN = 400  # generated vectors looked at to find them
MAX_POOL_TRIES = 8


def _meta_constants(prog: ir.Program) -> dict[str, set[int]]:
    """For each metadata field, the constants assigned to it (`meta.l4_proto = 6` under `valid(tcp)`): a
    packet that already gives the key such a value took the branch that assigns it, which rewriting the
    field's other sources cannot reproduce."""
    out: dict[str, set[int]] = {}
    bodies = [prog.control, *(a.body for a in prog.user_actions.values()),
              *(st.do for st in prog.parser.states.values())]
    for body in bodies:
        for st in ir.walk_stmts(body):
            if isinstance(st, ir.Assign) and isinstance(st.target, ir.MetaRef) and isinstance(st.value, ir.Const):
                out.setdefault(st.target.name, set()).add(st.value.value)
    return out


def _meta_sources(prog: ir.Program) -> dict[str, list[ir.FieldRef]]:
    """For each metadata field, the header fields its assignments read (`meta.p = tcp.dst_port | udp.dst_port`):
    setting those in a packet steers the metadata."""
    out: dict[str, list[ir.FieldRef]] = {}
    bodies = [prog.control, *(a.body for a in prog.user_actions.values()),
              *(st.do for st in prog.parser.states.values())]
    for body in bodies:
        for st in ir.walk_stmts(body):
            if isinstance(st, ir.Assign) and isinstance(st.target, ir.MetaRef):
                refs = [x for x in ir.walk_expr(st.value) if isinstance(x, ir.FieldRef)]
                out.setdefault(st.target.name, []).extend(refs)
    return out


def _pool(ctx: ClassContext, tname: str) -> list[FirstApply]:
    """Distinct packets of the generated vectors that reach the table (its own entries left out), the first
    packet that reached it first: a metadata key computed by the program (`meta.l4_proto = 6` when TCP is
    valid) is steered by choosing among them."""
    hit = ctx.pools.get(tname)
    if hit is not None:
        return hit
    out: list[FirstApply] = [ctx.first_apply[tname]] if tname in ctx.first_apply else []
    seen = {(r[5], len(r[1])) for r in out}
    # packets of the parse paths without TLV options too (an option such as IPv4's router alert may keep
    # every packet with options away from the table), then the generated vectors' packets
    found: list[tuple[int, bytes, int, ControlState]] = []
    for pid, path, _recs, _data, _starts in ctx.accepted[:MAX_POOL]:
        b = Builder(ctx.prog, random.Random(f"{ctx.seed}/{pid}/pool"))
        recs, reason = b.recs_for(path, {}, False)
        if reason is None:
            found.append((pid, b.assemble(recs, b"")[0], 1, ControlState()))
    runs = 0
    for v in ctx.vectors:
        if runs >= MAX_POOL_SCAN:
            break
        if len(v.packets) != 1 or v.registers or "truncated" in v.tags:
            continue
        runs += 1
        control = ControlState(tuple(e for e in v.control.entries if e.table != tname),
                               tuple(d for d in v.control.defaults if d[0] != tname))
        found.append((int(v.provenance.get("path", 0)), v.packets[0].data, v.packets[0].port, control))
    for pid, data, port, control in found:
        if len(out) >= MAX_POOL:
            break
        r = ctx.run_with(control, data, port, {})
        keys = next((k for kind, t, k in r.observations.get("trace", []) if kind == "apply" and t == tname), None)
        if keys is None or (keys, len(data)) in seen:
            continue
        seen.add((keys, len(data)))
        out.append((pid, data, port, control, {}, keys))
    ctx.pools[tname] = out
    return out


def _steer(ctx: ClassContext, tname: str, want: tuple[int | None, ...], salt: str) -> tuple[Any, ...] | str:
    """A packet (pid, data, port, control, regs) that reaches table `tname` with key values `want` (None: any),
    or why none was found. A packet that reached the table is taken and its key fields rewritten in place
    (header-field keys, the header fields a metadata key is assigned from, std.ingress_port through the port),
    so the fields earlier tables and conditions looked at stay; failing that, packets are built afresh along
    the parse paths with the key fields fixed."""
    pool = _pool(ctx, tname)
    if not pool:
        return "no generated packet reaches the table"
    table = ctx.prog.tables[tname]
    sources = _meta_sources(ctx.prog)
    fixed_meta = [
        i for i, k in enumerate(table.keys)
        if not isinstance(k.expr, ir.FieldRef) and not (isinstance(k.expr, ir.StdRef) and k.expr.name == "ingress_port")
        and not (isinstance(k.expr, ir.MetaRef) and sources.get(k.expr.name))
    ]

    consts = _meta_constants(ctx.prog)

    def cost(k: ir.TableKey, w: int) -> int:
        if isinstance(k.expr, ir.FieldRef):
            return 1
        if isinstance(k.expr, ir.MetaRef) and w in consts.get(k.expr.name, ()):
            return 64  # a constant the program assigns on some branch: take a packet that took it
        return 8

    def mismatches(r: FirstApply) -> int:
        """Metadata set through its sources often changes more than the key (the parse path): avoid it."""
        return sum(cost(k, w) for k, g, w in zip(table.keys, r[5], want, strict=True) if w is not None and g != w)

    candidates = [r for r in pool if all(want[i] is None or r[5][i] == want[i] for i in fixed_meta)]
    if not candidates:
        k = table.keys[fixed_meta[0]]
        return f"key '{k.text}' is computed by the program and no generated packet gives it the value"
    candidates.sort(key=mismatches)
    for pid0, data0, port0, control0, regs0, keyvals0 in candidates[:MAX_POOL_TRIES]:
        if _keys_match(keyvals0, want):
            return pid0, data0, port0, control0, regs0
        overrides, port = _overrides(table, want, keyvals0, sources, port0)
        patched = _patch(ctx, data0, port0, overrides)
        if patched is None:
            continue
        r = ctx.run_with(control0, patched, port, regs0)
        if any(kind == "apply" and t == tname and _keys_match(k, want) for kind, t, k in r.observations.get("trace", [])):
            return pid0, patched, port, control0, regs0
    pid0, data0, port0, control0, regs0, keyvals0 = pool[0]
    overrides, port = _overrides(table, want, keyvals0, sources, port0)
    need = {i.split("[", 1)[0] for i, _f in overrides}
    order = sorted(ctx.accepted, key=lambda a: a[0] != pid0)
    tried = 0
    for pid, path, recs, _data, _starts in order:
        insts = {r.instance for r in recs}
        if not all(i in insts or i.rsplit(".", 1)[0] in insts for i in need):
            continue
        tried += 1
        if tried > MAX_STEER_PATHS:
            break
        plain = {(i.split("[", 1)[0], f): v for (i, f), v in overrides.items()}
        for attempt in range(STEER_TRIES):
            b = Builder(ctx.prog, random.Random(f"{ctx.seed}/{pid}/steer/{tname}/{want}/{salt}/{attempt}"))
            built, reason = b.recs_for(path, plain, attempt % 2 == 1)
            if reason is not None:
                break
            data = b.assemble(built, b"")[0]
            r = ctx.run_with(control0, data, port, regs0)
            for kind, t, keyvals in r.observations.get("trace", []):
                if kind == "apply" and t == tname and _keys_match(keyvals, want):
                    return pid, data, port, control0, regs0
    return "no generated or built packet reaches the table with these key values"


def _overrides(table: ir.Table, want: tuple[int | None, ...], have: tuple[int, ...],
               sources: dict[str, list[ir.FieldRef]], port: int) -> tuple[dict[tuple[str, str], int], int]:
    """Header fields to set ("vlan[0]" for a stack element) and the port, for the keys that differ."""
    out: dict[tuple[str, str], int] = {}
    for k, w, g in zip(table.keys, want, have, strict=True):
        if w is None or w == g:
            continue
        e = k.expr
        refs = [e] if isinstance(e, ir.FieldRef) else sources.get(e.name, []) if isinstance(e, ir.MetaRef) else []
        if isinstance(e, ir.StdRef) and e.name == "ingress_port":
            port = w
        for ref in refs:
            name = f"{ref.instance}[{ref.index}]" if isinstance(ref.index, int) else ref.instance
            out[(name, ref.field_name)] = w & ((1 << ref.width) - 1)
    return out, port


def _patch(ctx: ClassContext, data: bytes, port: int, overrides: dict[tuple[str, str], int]) -> bytes | None:
    """`data` with header fields set in place (fixed parts of headers the oracle found), IPv4-style header
    checksums adjusted so a valid one stays valid; None when a field is not in a parsed header's fixed part."""
    if not overrides:
        return data
    offsets = _offsets(ctx, data, port)
    writes: list[tuple[int, int, int]] = []
    for (inst, fname), value in overrides.items():
        base = inst.split("[", 1)[0]
        if inst not in offsets or base not in ctx.prog.instances:
            continue  # not in this packet (the other source of `tcp.dst_port | udp.dst_port`); checked after
        f = next((x for x in ctx.prog.instances[base].type.fields if x.name == fname), None)
        if f is None:
            return None
        writes.append((offsets[inst] * 8 + f.offset, f.width, value))
    return _write_bits(ctx, data, offsets, writes) if writes else None


def _offsets(ctx: ClassContext, data: bytes, port: int) -> dict[str, int]:
    ctx.interp.install(ControlState())
    offsets: dict[str, int] = ctx.interp.run([PacketIn(port, data)], {})[0].observations.get("offsets", {})
    return offsets


def _write_bits(ctx: ClassContext, data: bytes, offsets: dict[str, int], writes: list[tuple[int, int, int]]) -> bytes:
    """`data` with (bit position, width, value) written, and the IPv4-style checksum of every parsed header
    whose fixed part changed adjusted: the sum moves by what the fixed part's words moved."""
    buf = bytearray(data)
    for bit, width, value in writes:
        _set_bits(buf, bit, width, value)
    for inst, off in offsets.items():
        ht = ctx.prog.instances[inst.split("[", 1)[0]].type
        cs = ht.checksum
        cf = ht.field(cs.field) if cs is not None and cs.kind == "ipv4_header" else None
        before = data[off:off + ht.fixed_bytes]
        if cf is None or buf[off:off + ht.fixed_bytes] == before or len(before) < ht.fixed_bytes:
            continue
        at = off + cf.offset // 8
        old = int.from_bytes(before[cf.offset // 8:cf.offset // 8 + 2], "big")
        zeroed = bytearray(before)
        zeroed[cf.offset // 8:cf.offset // 8 + 2] = b"\0\0"
        a = ones_sum(bytes(zeroed))
        after = bytearray(buf[off:off + ht.fixed_bytes])
        after[cf.offset // 8:cf.offset // 8 + 2] = b"\0\0"
        b = ones_sum(bytes(after))
        rest = ((~old & 0xFFFF) - a) % 0xFFFF  # the sum of the words past the fixed part
        total = (b + rest) % 0xFFFF or 0xFFFF
        buf[at:at + 2] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(buf)


def _set_bits(buf: bytearray, bit: int, width: int, value: int) -> None:
    first, last = bit // 8, (bit + width - 1) // 8
    span = last - first + 1
    word = int.from_bytes(buf[first:last + 1], "big")
    shift = span * 8 - (bit % 8) - width
    mask = ((1 << width) - 1) << shift
    word = (word & ~mask) | ((value & ((1 << width) - 1)) << shift)
    buf[first:last + 1] = word.to_bytes(span, "big")


def _const_lookup(ctx: ClassContext, tname: str, key: tuple[int, ...]) -> int | None:
    """Which constant entry wins for `key` (None: a miss), by the oracle's own matcher."""
    ctx.interp.install(ControlState())
    hit = ctx.interp.tables[tname].matcher.lookup(key)
    return None if hit is None else hit.index


def _inside(e: KeyElem, width: int, natural: int) -> list[int]:
    m = (1 << width) - 1
    if e.kind == "value":
        return [e.a]
    if e.kind == "prefix":
        host = (1 << (width - e.b)) - 1 if e.b < width else 0
        return list(dict.fromkeys([e.a & ~host & m, (e.a & ~host & m) | host]))
    if e.kind == "mask":
        return list(dict.fromkeys([e.a & e.b, (e.a & e.b) | (natural & ~e.b & m), (e.a & e.b) | (~e.b & m)]))
    if e.kind == "range":
        return list(dict.fromkeys([e.a, e.b, (e.a + e.b) // 2])) if e.a <= e.b else []
    return list(dict.fromkeys([natural, 0, m, 1]))


def _canonical_entries(ctx: ClassContext, t: ir.Table) -> list[tuple[KeyElem, ...]]:
    ctx.interp.install(ControlState())
    return [e.match for e in ctx.interp.tables[t.name].matcher.entries]


def _winning_key(ctx: ClassContext, t: ir.Table, i: int, match: tuple[KeyElem, ...]) -> tuple[int, ...] | None:
    natural = ctx.first_apply[t.name][5] if t.name in ctx.first_apply else tuple(0 for _ in t.keys)
    lists = [_inside(e, k.width, v) for e, k, v in zip(match, t.keys, natural, strict=True)]
    for combo in itertools.islice(itertools.product(*lists), 256):
        if _const_lookup(ctx, t.name, combo) == i:
            return combo
    return None


def _edge_keys(e: KeyElem, width: int) -> list[tuple[str, int | None, str]]:
    """(label, value or None when infeasible, reason) of the values just around one match element."""
    m = (1 << width) - 1
    out: list[tuple[str, int | None, str]] = []
    if e.kind == "range" and e.a > e.b:
        out += [("empty_lo", e.a, ""), ("empty_hi", e.b, "")]
    elif e.kind == "range":
        out += [("lo", e.a, ""), ("hi", e.b, "")]
        out.append(("lo-1", e.a - 1, "") if e.a > 0 else ("lo-1", None, "lo is 0: no value below"))
        out.append(("hi+1", e.b + 1, "") if e.b < m else ("hi+1", None, "hi is the largest value"))
    elif e.kind == "mask":
        base = e.a & e.b
        if e.b:
            low = e.b & -e.b
            out.append(("masked_bit_flipped", base ^ low, ""))
        else:
            out.append(("masked_bit_flipped", None, "the mask is 0: no masked bit"))
        free = ~e.b & m
        if free:
            out.append(("unmasked_bit_flipped", base ^ (free & -free), ""))
        else:
            out.append(("unmasked_bit_flipped", None, "the mask is all ones: no unmasked bit"))
    elif e.kind == "prefix":
        if e.b:
            out.append(("prefix_bit_flipped", e.a ^ (1 << (width - e.b)), ""))
        else:
            out.append(("prefix_bit_flipped", None, "a /0 prefix has no prefix bit"))
        if e.b < width:
            out.append(("host_bit_flipped", e.a ^ 1, ""))
        else:
            out.append(("host_bit_flipped", None, "a full-length prefix has no host bit"))
    elif e.kind == "value":
        out.append(("neighbour", e.a + 1 if e.a < m else e.a - 1, ""))
    return out


def _const_entries(ctx: ClassContext) -> None:
    hits, edges = ctx.classes["const_entries"], ctx.classes["const_entry_edges"]
    hb, eb = _Budget(hits), _Budget(edges)
    for t in ctx.prog.tables.values():
        if not t.entries:
            continue
        matches = _canonical_entries(ctx, t)
        for i, match in enumerate(matches):
            item = f"{t.name}#{i}"
            hits.all.append(item)
            key = _winning_key(ctx, t, i, match)
            if key is None:
                if any(e.kind == "range" and e.a > e.b for e in match):
                    hits.infeasible[item] = "an empty range (lo > hi): the entry can never match"
                else:
                    hits.infeasible[item] = "no key value makes it win: an earlier or higher-priority entry shadows it"
            elif hb.take(item):
                got = _steer(ctx, t.name, key, f"hit{i}")
                if isinstance(got, str):
                    hits.infeasible[item] = got
                else:
                    pid, data, port, control, regs = got
                    r = ctx.emit(f"const.{t.name}.e{i}", pid, control, data, ["const_entry"], port, regs)
                    if r.observations.get("hit", {}).get(t.name):
                        hits.covered.add(item)
            base = key if key is not None else tuple(
                (_inside(e, k.width, 0) or [e.a])[0] for e, k in zip(match, t.keys, strict=True)
            )
            for j, (e, k) in enumerate(zip(match, t.keys, strict=True)):
                for label, value, why in _edge_keys(e, k.width):
                    eitem = f"{t.name}#{i}.{k.text}:{label}"
                    if not _planned(edges, eb, eitem, value, why) or value is None:
                        continue
                    want = tuple(value if n == j else v for n, v in enumerate(base))
                    got = _steer(ctx, t.name, want, f"edge{i}.{j}.{label}")
                    if isinstance(got, str):
                        edges.infeasible[eitem] = got
                        continue
                    pid, data, port, control, regs = got
                    ctx.emit(f"const.{t.name}.e{i}.{k.text}.{label}", pid, control, data,
                             ["const_entry_edge"], port, regs)
                    edges.covered.add(eitem)


def _miss_key(ctx: ClassContext, t: ir.Table) -> tuple[int, ...] | None:
    natural = ctx.first_apply[t.name][5]
    if _const_lookup(ctx, t.name, natural) is None:
        return natural
    lists = [list(dict.fromkeys([v ^ 1, 0, (1 << k.width) - 1, v ^ (1 << (k.width - 1)), (v + 2) % (1 << k.width)]))
             for k, v in zip(t.keys, natural, strict=True)]
    for combo in itertools.islice(itertools.product(*lists), 256):
        if _const_lookup(ctx, t.name, combo) is None:
            return combo
    return None


def _defaults_varied(ctx: ClassContext) -> None:
    part = ctx.classes["defaults_varied"]
    budget = _Budget(part)
    later: list[tuple[ir.Table, list[tuple[str, tuple[int, ...]]]]] = []
    for t in ctx.prog.tables.values():
        wanted: list[tuple[str, str, tuple[int, ...]]] = []
        # nop too: any table's default may be set to it (the reference and every target allow it), and the
        # targets build a case for it in each copy of the control
        for a in dict.fromkeys([*t.actions, *(["nop"] if "nop" in ctx.prog.actions else [])]):
            params = ctx.prog.actions[a].params
            args = tuple(param_value(a, p) for p in params)
            if a != t.default.action:
                wanted.append((f"{t.name}:default={a}", a, args))
            elif params:
                other = tuple(
                    (x + 1) & ((1 << p.width) - 1) if "port" in p.name else (x ^ ((1 << p.width) - 1)) or 1
                    for x, p in zip(t.default.args or args, params, strict=True)
                )
                wanted.append((f"{t.name}:default={a}(other arguments)", a, other))
        if not wanted:
            continue
        for item, *_ in wanted:
            part.all.append(item)
        if t.name not in ctx.first_apply:
            for item, *_ in wanted:
                part.infeasible[item] = "no generated packet reaches the table"
            continue
        key = _miss_key(ctx, t)
        got: tuple[Any, ...] | str = "every key value tried hits a constant entry" if key is None else _steer(
            ctx, t.name, key, "miss")
        for item, a, args in wanted:
            if isinstance(got, str):
                part.infeasible[item] = got
                continue
            if not budget.take(item):
                continue
            pid, data, port, control, regs = got
            state = ControlState(control.entries, (*control.defaults, (t.name, a, args)))
            label = item.split("=", 1)[1].replace(" ", "_").replace("(", ".").replace(")", "")
            r = ctx.emit(f"default.{t.name}.{label}", pid, state, data, ["default_varied"], port, regs)
            obs = r.observations
            if obs.get("hit", {}).get(t.name) is False and obs.get("tables", {}).get(t.name) == a:
                part.covered.add(item)
        later.append((t, [(a, args) for _, a, args in wanted]))
    for t, each in later:  # after every table's first: under the class's cap, those come first
        _defaults_per_path(ctx, t, part, budget, each)


def _defaults_per_path(ctx: ClassContext, t: ir.Table, part: ClassCoverage, budget: _Budget,
                       wanted: list[tuple[str, tuple[int, ...]]]) -> None:
    """A miss under each default of `wanted` (nop included where the program has it) on each parse path that
    reaches the table: the xdp target builds every action's case in each copy of the control it makes per path,
    and a case that a straight-line hit of the likely action bypasses (`Emitter.likely_hit`) only a miss under
    that default reaches; so one path's vector leaves the others' untested."""
    if t.name not in ctx.first_apply:
        return
    done: set[int] = {ctx.first_apply[t.name][0]}  # the vectors above took the first packet's path
    for pid, data, port, control, regs, keyvals in _pool(ctx, t.name):
        if pid in done or _const_lookup(ctx, t.name, keyvals) is not None:
            continue
        done.add(pid)
        for a, args in wanted:
            item = f"{t.name}:default={a} on path {pid}"
            part.all.append(item)
            if not budget.take(item):
                continue
            state = ControlState(control.entries, (*control.defaults, (t.name, a, args)))
            r = ctx.emit(f"default.{t.name}.{a}.path{pid}", pid, state, data, ["default_varied"], port, regs)
            obs = r.observations
            if obs.get("hit", {}).get(t.name) is False and obs.get("tables", {}).get(t.name) == a:
                part.covered.add(item)


def _key_edges(ctx: ClassContext) -> None:
    part = ctx.classes["key_edges"]
    budget = _Budget(part)
    for t in ctx.prog.tables.values():
        if not t.keys:
            continue
        act = next((a for a in t.actions if ctx.prog.actions[a].params), t.actions[0] if t.actions else None)
        for label in ("zero", "ones"):
            item = f"{t.name}:{label}_key"
            part.all.append(item)
            if act is None:
                part.infeasible[item] = "the table has no action an entry could name"
                continue
            key = tuple(0 if label == "zero" else (1 << k.width) - 1 for k in t.keys)
            if not budget.take(item):
                continue
            got = _steer(ctx, t.name, key, label)
            if isinstance(got, str):
                part.infeasible[item] = got
                continue
            pid, data, port, control, regs = got
            state = ControlState((*control.entries, entry_for(t, key, act, ctx.prog)), control.defaults)
            ctx.emit(f"keyedge.{t.name}.{label}", pid, state, data, ["key_edge"], port, regs)
            part.covered.add(item)


# ------------------------------------------------------------------------------------- parser-side classes


def _select_edges(ctx: ClassContext) -> None:
    part = ctx.classes["select_edges"]
    budget = _Budget(part)
    prog = ctx.prog
    for st in prog.parser.states.values():
        if not st.select:
            continue
        for ci, case in enumerate(st.cases):
            for j, e in enumerate(case.keyset):
                width = st.select[j].width
                m = (1 << width) - 1
                if e.kind == "value":
                    labels = [("value-1", e.a - 1), ("value+1", e.a + 1)]
                elif e.kind == "range":
                    labels = [("lo-1", e.a - 1), ("hi+1", e.b + 1)]
                elif e.kind == "mask":
                    labels = [("masked_bit_flipped", (e.a & e.b) ^ (e.b & -e.b) if e.b else -1)]
                else:
                    continue
                for label, v in labels:
                    item = f"{st.name}#case{ci}[{j}]:{label}"
                    part.all.append(item)
                    if not 0 <= v <= m:
                        part.infeasible[item] = f"{label} is outside bit<{width}>"
                        continue
                    if any(not isinstance(x, ir.FieldRef | ir.Lookahead | ir.MetaRef) for x in st.select):
                        part.infeasible[item] = "the select reads a computed value; the generator sets fields"
                        continue
                    if budget.take(item):
                        _select_edge(ctx, part, item, st, (ci, j, v), label, None)
    _select_edges_per_path(ctx)


def _select_edge(ctx: ClassContext, part: ClassCoverage, item: str, st: ir.ParserState, at: tuple[int, int, int],
                 label: str, pre: tuple[str, ...] | None) -> None:
    """The vector of one select edge (case ci's element j = v), on the parse path `pre` to the state if given."""
    ci, j, v = at
    got = _select_packet(ctx, st, ci, j, v, pre)
    if isinstance(got, str):
        part.infeasible[item] = got
        return
    pid, data = got
    ctx.emit(f"select.{st.name}.case{ci}.{j}.{label}", pid, ControlState(), data, ["select_edge"], 1, {})
    part.covered.add(item)


def _select_edges_per_path(ctx: ClassContext) -> None:
    """The same edges on every parse path to a state with more than one (up to MAX_PATHS): the xdp target copies
    the state per header-stack fill level or path, each copy with its own compares (a range's '>=' turned '>' in
    the copy under two VLAN tags shows only with the bound on that path). Items "STATE#caseN[J]:LABEL via PATH"."""
    part = ctx.classes["select_edges"]
    budget = _Budget(part, MAX_PATH_EDGES)
    plan: list[tuple[int, ir.ParserState, tuple[str, ...]]] = []
    for st in ctx.prog.parser.states.values():
        if not st.select or any(not isinstance(x, ir.FieldRef) for x in st.select):
            continue
        prefixes = {tuple(s.state for s in p.steps[:k]) for p in ctx.paths for k, s in enumerate(p.steps)
                    if s.state == st.name}
        if len(prefixes) < 2:
            continue
        plan += [(rank, st, pre) for rank, pre in enumerate(_path_prefixes(ctx.prog, list(prefixes)))]
    for _rank, st, pre in sorted(plan, key=lambda x: x[0]):
        via = "-".join([*pre, st.name])
        for ci, case in enumerate(st.cases):
            for j, e in enumerate(case.keyset):
                m = (1 << st.select[j].width) - 1
                labels = ([("value-1", e.a - 1), ("value+1", e.a + 1)] if e.kind == "value"
                          else [("lo-1", e.a - 1), ("hi+1", e.b + 1)] if e.kind == "range" else [])
                for label, v in labels:
                    item = f"{st.name}#case{ci}[{j}]:{label} via {via}"
                    if not 0 <= v <= m:
                        continue  # outside the field: named once, per state
                    part.all.append(item)
                    if budget.take(item):
                        _select_edge(ctx, part, item, st, (ci, j, v), label, pre)


def _path_prefixes(prog: ir.Program, prefixes: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Up to MAX_PATHS of the parse paths to a state, spread first over how often each header-stack state was
    visited (the xdp target copies a state per stack fill level, or per path in its tree-shaped parser), the
    shortest of each first."""
    looped = {n for n, s in prog.parser.states.items() if s.extract and prog.instances[s.extract].is_stack}
    groups: dict[tuple[tuple[str, int], ...], list[tuple[str, ...]]] = {}
    for pre in sorted(prefixes, key=lambda p: (len(p), p)):
        groups.setdefault(tuple(sorted((s, pre.count(s)) for s in set(pre) & looped)), []).append(pre)
    out: list[tuple[str, ...]] = []
    queues = [groups[k] for k in sorted(groups)]
    while len(out) < MAX_PATHS and any(queues):
        for q in queues:
            if q and len(out) < MAX_PATHS:
                out.append(q.pop(0))
    return out



def _select_packet(ctx: ClassContext, st: ir.ParserState, ci: int, j: int, v: int,
                   pre: tuple[str, ...] | None = None) -> tuple[int, bytes] | str:
    """A packet reaching state `st` whose select reads the case's own values except element j = v: it must
    not take case ci. Built along a generated path through `st` whose edge there is the one v leads to."""
    case = st.cases[ci]
    combo: list[int | None] = []
    for n, e in enumerate(case.keyset):
        combo.append(v if n == j else e.a if e.kind in ("value", "range") else e.a & e.b if e.kind == "mask" else None)
    if _all_match(case.keyset, combo):
        return "the neighbouring value still matches the case"
    edge = next((i for i, c in enumerate(st.cases) if _all_match(c.keyset, combo)), -1)
    if any(isinstance(x, ir.Lookahead | ir.MetaRef) for x in st.select):
        return _select_bytes(ctx, st, combo)
    overrides: dict[tuple[str, str], int] = {}
    for sel, val in zip(st.select, combo, strict=True):
        if val is None:
            continue
        if not isinstance(sel, ir.FieldRef):
            return "the select reads a lookahead or metadata; the generator sets fields"
        overrides[(sel.instance, sel.field_name)] = val
    for pid, path in enumerate(ctx.paths):
        if not any(s.state == st.name and s.edge == edge and (pre is None or tuple(x.state for x in path.steps[:k])
                                                              == pre) for k, s in enumerate(path.steps)):
            continue
        b = Builder(ctx.prog, random.Random(f"{ctx.seed}/{pid}/select/{st.name}/{ci}/{j}/{v}"))
        recs, reason = b.recs_for(path, overrides, True)
        if reason is not None:
            continue
        data = b.assemble(recs, b"")[0]
        r = ctx.run_with(ControlState(), data, 1, {})
        if r.observations.get("path") == [s.state for s in path.steps]:
            return pid, data
    return (f"no feasible parse path{'' if pre is None else ' through ' + '-'.join(pre)} takes "
            f"{'the default' if edge < 0 else f'case {edge}'} of '{st.name}' there")


def _select_bytes(ctx: ClassContext, st: ir.ParserState, combo: list[int | None]) -> tuple[int, bytes] | str:
    """For a select that reads a lookahead: a generated packet through the state with the select's bits
    rewritten in place (the lookahead at the cursor after the state's extract, fields where their header is)."""
    for pid, path, recs, data, starts in ctx.accepted:
        k = next((n for n, step in enumerate(path.steps) if step.state == st.name), None)
        if k is None:
            continue
        extracted = sum(1 for step in path.steps[: k + 1] if ctx.prog.parser.states[step.state].extract)
        if extracted >= len(starts):
            continue  # nothing extracted after the state: the lookahead reads the payload
        cursor = starts[extracted]
        offsets = _offsets(ctx, data, 1)
        # the header fields behind a select on metadata: the field a parser statement copied into it
        upto: list[tuple[int, Step]] = []
        count = 0
        for step in path.steps[: k + 1]:
            count += bool(ctx.prog.parser.states[step.state].extract)
            upto.append((count - 1, step))
        builder = Builder(ctx.prog, random.Random(0))
        writes: list[tuple[int, int, int]] = []
        for sel, v in zip(st.select, combo, strict=True):
            if v is None:
                continue
            if isinstance(sel, ir.Lookahead):
                writes.append((cursor * 8 + sel.offset, sel.bits, v))
                continue
            ref = builder._meta_ref(sel, recs, upto) if isinstance(sel, ir.MetaRef) else None
            if isinstance(sel, ir.FieldRef):
                rec_i = max((n for n, r in enumerate(recs[:extracted]) if r.instance == sel.instance), default=None)
                f = recs[rec_i].ht.field(sel.field_name) if rec_i is not None else None
                if rec_i is None or f is None:
                    break
                writes.append((starts[rec_i] * 8 + f.offset, f.width, v))
            elif isinstance(ref, _Ref):
                shift = sum(n for *_, n in ref.pieces)
                for rec, fname, lo, n in ref.pieces:
                    shift -= n
                    f = rec.ht.field(fname)
                    idx = next((m for m, r in enumerate(recs) if r is rec), None)
                    if f is None or idx is None:
                        break
                    writes.append((starts[idx] * 8 + f.offset + f.width - lo - n, n, (v >> shift) & ((1 << n) - 1)))
                else:
                    continue
                break
            else:
                break  # metadata computed otherwise than by copying a field
        else:
            out = _write_bits(ctx, data, offsets, writes)
            r = ctx.run_with(ControlState(), out, 1, {})
            if st.name in r.observations.get("path", []):
                return pid, out
    return "no generated packet through the state takes the rewritten value there"


def _all_match(keyset: list[KeyElem], combo: list[int | None]) -> bool:
    return all(v is None or e.selects(v) for e, v in zip(keyset, combo, strict=True))


def _length_edges(ctx: ClassContext) -> None:
    part = ctx.classes["length_edges"]
    budget = _Budget(part)
    seen: set[str] = set()
    for pid, path, recs, _data, _starts in ctx.accepted:
        for ri, rec in enumerate(recs):
            vl = rec.ht.varlen
            if vl is None or rec.instance in seen:
                continue
            seen.add(rec.instance)
            lengths = _attainable_lengths(rec)
            inside = sorted(n for n in lengths if 0 <= n <= vl.max_bytes)
            over = sorted(n for n in lengths if n > vl.max_bytes)
            wants: list[tuple[str, int | None, str]] = []
            if inside:
                wants += [("min", inside[0], ""), ("mid", inside[len(inside) // 2], ""), ("max", inside[-1], "")]
            if over:
                wants.append(("over_max", over[0], ""))
            else:
                wants.append(("over_max", None, f"no length field value gives more than {vl.max_bytes} bytes"))
            if vl.tlv is not None:
                wants.append(("tlv_ends_on_empty_option", -1, ""))
            for label, n, why in wants:
                item = f"{rec.instance}:{label}"
                if not _planned(part, budget, item, n, why) or n is None:
                    continue
                got = _length_packet(ctx, pid, path, ri, rec.instance, n, label)
                if isinstance(got, str):
                    part.infeasible[item] = got
                    continue
                ctx.emit(f"length.{rec.instance}.{label}", pid, ControlState(), got, ["length_edge"], 1, {})
                part.covered.add(item)


def _attainable_lengths(rec: Rec) -> dict[int, int]:
    """varlen length -> a length-field value giving it (the smallest such value)."""
    vl = rec.ht.varlen
    assert vl is not None
    from .gen_paths import _length_table

    names = list(dict.fromkeys(e.field_name for e in ir.walk_expr(vl.length) if isinstance(e, ir.FieldRef)))
    if not names:
        return {}
    f = rec.ht.field(names[0])
    assert f is not None
    out: dict[int, int] = {}
    for v, n in _length_table(vl, f, {k: rec.values[k] for k in names[1:]}):
        out.setdefault(n, v)
    return out


def _length_packet(ctx: ClassContext, pid: int, path: ParsePath, ri: int, inst: str, n: int,
                   label: str) -> bytes | str:
    b = Builder(ctx.prog, random.Random(f"{ctx.seed}/{pid}/length/{inst}/{label}"))
    recs, reason = b.recs_for(path, {}, label != "tlv_ends_on_empty_option")
    if reason is not None:
        return reason
    rec = recs[ri]
    vl = rec.ht.varlen
    assert vl is not None
    lengths = _attainable_lengths(rec)
    names = [e.field_name for e in ir.walk_expr(vl.length) if isinstance(e, ir.FieldRef)]
    if label == "tlv_ends_on_empty_option":
        tail = _empty_option_tail(ctx.prog, rec, lengths)
        if isinstance(tail, str):
            return tail
        n = len(tail)
        rec.tail = tail
    else:
        if vl.tlv is not None and n <= vl.max_bytes:
            rec.tail = _pad(vl.tlv, n)
        else:
            rec.tail = bytes(random.Random(f"{ctx.seed}/{inst}/{n}").getrandbits(8) for _ in range(min(n, 64)))
    rec.values[names[0]] = lengths[n]
    data = b.assemble(recs, b"")[0]
    return data


def _pad(tlv: ir.Tlv, n: int) -> bytes:
    """n bytes of option area holding only padding: no-op singletons, else the end marker then zeros."""
    unit = tlv.singleton_bytes
    nop = next((v for k, v in tlv.singletons.items() if k not in tlv.end), None)
    if nop is not None and n % unit == 0:
        return nop.to_bytes(unit, "big") * (n // unit)
    end = tlv.singletons.get(tlv.end[0], 0) if tlv.end else 0
    return (end.to_bytes(unit, "big") + bytes(max(0, n - unit)))[:n]


def _empty_option_tail(prog: ir.Program, rec: Rec, lengths: dict[int, int]) -> bytes | str:
    """An option area whose last option is a header without data (a named option with no fields, else an
    unknown type sized to its header), after no-op padding so the area has a length the field can express."""
    vl = rec.ht.varlen
    assert vl is not None and vl.tlv is not None
    tlv = vl.tlv
    hb = tlv.header_bytes
    named = [i.tlv_option for i in prog.instances.values()
             if i.tlv_parent == rec.instance and i.tlv_option is not None]
    values: dict[str, int] | None = None
    for opt in named:
        if opt.data_bytes == 0:
            values = {f.name: opt.match.get(f.name, 0) for f in tlv.header}
            break
    if values is None:
        taken = {o.match.get(tlv.key[0]) for o in named if tlv.key} | set(tlv.singletons.values())
        first = tlv.header[0]
        values = {f.name: 0 for f in tlv.header}
        values[first.name] = next(x for x in range(1 << first.width) if x not in taken)
    free = [f for f in tlv.header if f.name not in tlv.key and f.name != tlv.header[0].name]
    from .packets import eval_header_expr, pack_header

    for f in free:
        for v in range(min(1 << f.width, 4096)):
            values[f.name] = v
            if eval_header_expr(tlv.size, values) == hb:
                break
        if eval_header_expr(tlv.size, values) == hb:
            break
    if eval_header_expr(tlv.size, values) != hb:
        return "no option header gives an option without data"
    head = pack_header(ir.HeaderType("h", tlv.header), values)
    nop = next((v for k, v in tlv.singletons.items() if k not in tlv.end), None)
    for n in sorted(lengths):
        if hb <= n <= vl.max_bytes and (n == hb or nop is not None):
            pad = n - hb
            unit = tlv.singleton_bytes
            if pad % unit:
                continue
            return (nop or 0).to_bytes(unit, "big") * (pad // unit) + head
    return "no area length the length field can express ends on an option without data"


def _aligned_free16(rec: Rec, avoid: set[str]) -> str | None:
    cs = rec.ht.checksum
    fields = sorted(rec.ht.fields, key=lambda f: "len" in f.name)  # a length word may matter to a target
    for f in fields:
        if f.width == 16 and f.offset % 16 == 0 and cs is not None and f.name != cs.field \
                and f.name not in rec.fixed and f.name not in avoid:
            return f.name
    return None


def _program_fields(prog: ir.Program) -> set[str]:
    out: set[str] = set()
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    for body in bodies:
        for s in ir.walk_stmts(body):
            for e in ir.stmt_exprs(s):
                out |= {x.field_name for x in ir.walk_expr(e) if isinstance(x, ir.FieldRef)}
    for t in prog.tables.values():
        out |= {k.expr.field_name for k in t.keys if isinstance(k.expr, ir.FieldRef)}
    return out


def _checksum_edges(ctx: ClassContext) -> None:
    part = ctx.classes["checksum_edges"]
    budget = _Budget(part)
    prog = ctx.prog
    used = _program_fields(prog)
    done: set[str] = set()
    # verified IPv4-style checksums: the field 0x0000 with the rest summing to 0xffff, and the same sum as 0xffff
    for pid, path, recs, data, starts in ctx.accepted:
        verified = {i for s in path.steps for i in prog.parser.states[s.state].verify}
        for ri, rec in enumerate(recs):
            cs = rec.ht.checksum
            if rec.instance not in verified or cs is None or cs.kind != "ipv4_header" or rec.instance in done:
                continue
            done.add(rec.instance)
            items = [f"{rec.instance}:verify_field_0x0000", f"{rec.instance}:verify_field_0xffff"]
            part.all += items
            fname = _aligned_free16(rec, used) or _aligned_free16(rec, set())
            if fname is None:
                for it in items:
                    part.infeasible[it] = "no free 16-bit word to steer the sum with"
                continue
            f = rec.ht.field(fname)
            cf = rec.ht.field(cs.field)
            assert f is not None and cf is not None
            buf = bytearray(data)
            at, cat = starts[ri] + f.offset // 8, starts[ri] + cf.offset // 8
            c = int.from_bytes(buf[cat:cat + 2], "big")
            word = ones_add(int.from_bytes(buf[at:at + 2], "big"), c)
            buf[at:at + 2] = word.to_bytes(2, "big")
            for it, value in zip(items, (0x0000, 0xFFFF), strict=True):
                if not budget.take(it):
                    continue
                buf[cat:cat + 2] = value.to_bytes(2, "big")
                ctx.emit(f"checksum.{rec.instance}.verify_{value:#06x}", pid, ControlState(), bytes(buf),
                         ["checksum_edge"], 1, {})
                part.covered.add(it)  # accepted or a checksum error: the oracle says which, targets must agree
    # updated checksums: a packet under which the update runs, steered so the result is 0x0000
    requests = sorted({(s.instance, s.pseudo) for body in [prog.control, *(a.body for a in prog.user_actions.values())]
                       for s in ir.walk_stmts(body) if isinstance(s, ir.UpdateChecksum)}, key=str)
    for inst, pseudo in requests:
        cs = prog.instances[inst].type.checksum
        zero = "0xffff" if cs is not None and cs.zero_means_none else "0x0000"
        item = f"{inst}:update_result_zero_sum_{zero}" + (f" (over {pseudo})" if pseudo else "")
        part.all.append(item)
        got = _update_to_zero(ctx, inst, pseudo, used)
        if isinstance(got, str):
            part.infeasible[item] = got
            continue
        if not budget.take(item):
            continue
        v, data = got
        r = ctx.emit(f"checksum.{inst}.update_{zero}", int(v.provenance.get("path", 0)), v.control, data,
                     ["checksum_edge"], v.packets[0].port, dict(v.registers))
        if any(k == "checksum" and req == (inst, pseudo) and did for k, req, did in r.observations.get("trace", [])):
            part.covered.add(item)


def _update_to_zero(ctx: ClassContext, inst: str, pseudo: str | None, used: set[str]) -> tuple[Vector, bytes] | str:
    moved = False
    for v in list(ctx.vectors):
        got = steer_update_result(ctx, v, inst, pseudo, used)
        if got is None:
            continue
        if got == "moved":
            moved = True
            continue
        if isinstance(got, str):
            return got
        return v, got
    if moved:
        return "every vector running it changes the frame's length (encap/decap): the generator cannot place it"
    return "no generated vector runs this update with a changed checksum"


def steer_update_result(ctx: ClassContext, v: Vector, inst: str, pseudo: str | None, used: set[str],
                        target: int = 0, changed: bool = True) -> bytes | str | None:
    """Vector `v`'s packet changed so that the checksum update (inst, pseudo) it runs writes `target` (0: a zero
    sum, which a UDP-style checksum writes as 0xffff); None when `v` does not run the update with a changed
    checksum (with any checksum when not `changed`), "moved" when its frame changes length, else why it cannot
    be steered. The input stays valid."""
    prog = ctx.prog
    ht = prog.instances[inst].type
    cs = ht.checksum
    if cs is None:
        return "the header declares no checksum"
    cf = ht.field(cs.field)
    assert cf is not None
    if len(v.packets) != 1 or v.registers:
        return None
    p = v.packets[0]
    r = ctx.run_with(v.control, p.data, p.port, {})
    if not any(k == "checksum" and req == (inst, pseudo) and (did or not changed)
               for k, req, did in r.observations.get("trace", [])):
        return None
    off = r.observations.get("offsets", {}).get(inst)
    if off is None or len(r.data) != len(p.data):
        return "moved"
    cat = off + cf.offset // 8
    out = int.from_bytes(r.data[cat:cat + 2], "big")
    delta = ones_add(out, ~target & 0xFFFF) if target else out  # what the result must fall by
    buf = bytearray(p.data)
    if cs.kind == "ipv4_header":
        fnames = [f.name for f in ht.fields if f.width == 16 and f.offset % 16 == 0 and f.name != cs.field]
        fnames.sort(key=lambda n: n in used)
        if not fnames:
            return "no free 16-bit word to steer the sum with"
        f = ht.field(fnames[0])
        assert f is not None
        at = off + f.offset // 8
        old = int.from_bytes(buf[at:at + 2], "big")
        new = ones_add(old, delta)
        buf[at:at + 2] = new.to_bytes(2, "big")
        # keep the input checksum valid: the sum rose by `delta`, so the stored complement falls by it
        cin = int.from_bytes(buf[cat:cat + 2], "big")
        buf[cat:cat + 2] = (~ones_add(~cin & 0xFFFF, delta) & 0xFFFF).to_bytes(2, "big")
        cands = [bytes(buf)]
    else:
        cin = int.from_bytes(buf[cat:cat + 2], "big")
        goal = (cin - delta) % 0xFFFF
        cands = []
        for t in [goal, 0xFFFF] if goal == 0 else [goal]:
            b2 = bytearray(buf)
            b2[cat:cat + 2] = t.to_bytes(2, "big")
            cands.append(bytes(b2))
    # a zero sum: 0x0000, which a UDP-style checksum (0 = none) writes as 0xffff
    want = {target.to_bytes(2, "big")} if target else {b"\0\0", b"\xff\xff"} if cs.zero_means_none else {b"\0\0"}
    for data in cands:
        if cs.zero_means_none and data[cat:cat + 2] == b"\0\0":
            continue  # an input checksum of 0 says "none": nothing would be updated
        r2 = ctx.run_with(v.control, data, p.port, {})
        if len(r2.data) == len(data) and r2.data[cat:cat + 2] in want:
            return data
    return "the steered packet did not give the sum (the action rewrites the steering word)"


MAX_TRUNCATION_VECTORS = 192


def _truncation_edges(ctx: ClassContext) -> None:
    """Frames ending at and next to each header boundary. generate() already cuts at the start of every
    header after the first and one byte into it; here, first for every distinct last header (on the first
    path that ends with it): the frame ending exactly at its end, one byte before and after, around the end of
    its fixed part when it has a variable-length part, and with that part at its minimum length ending the
    frame; then one byte before the end of every other header; then, for the same last header at another depth
    (the xdp target copies a parser state per context), the end, one byte before it, one byte into its
    variable part and its minimum length; then the end and one byte before it on every other path."""
    part = ctx.classes["truncation_edges"]
    budget = _Budget(part)
    budget.left = MAX_TRUNCATION_VECTORS
    seen: set[tuple[str, ...]] = set()
    first_last: set[tuple[str, int]] = set()
    inner: set[str] = set()
    later: list[tuple[str, int, bytes, list[str]]] = []

    def plan(item: str, pid: int, data: bytes | None, why: str = "") -> None:
        part.all.append(item)
        if data is None:
            part.infeasible[item] = why
        else:
            later.append((item, pid, data, ["truncated", "truncation_edge"]))

    rest: list[tuple[str, int, bytes]] = []
    mid: list[tuple[str, int, bytes]] = []
    for pid, _path, recs, data, starts in ctx.accepted:
        ends = [*starts[1:], _end(recs, starts, data)]
        for i, end in enumerate(ends):
            prefix = tuple(r.instance for r in recs[: i + 1])
            name = f"{'>'.join(prefix)}|"
            if i + 1 < len(ends):
                if prefix not in seen:  # generate() cut there already: at the start of the next header
                    seen.add(prefix)
                    part.all.append(name)
                    part.covered.add(name)
                if recs[i].instance not in inner:
                    inner.add(recs[i].instance)
                    plan(f"{name}-1", pid, data[:end - 1])
                continue
            if prefix in seen:
                continue
            seen.add(prefix)
            last = recs[i].instance
            if (last, i) in first_last:
                rest.append((name, pid, data[:end]))
                rest.append((f"{name}-1", pid, data[:end - 1]))
                continue
            # the first path ending with this header, then the first at each other depth (the xdp target
            # copies a parser state per context, such as the number of VLAN tags before it)
            other_depth = any(x == last for x, _d in first_last)
            first_last.add((last, i))
            add = mid.append if other_depth else (lambda x: plan(*x))
            add((name, pid, data[:end]))
            add((f"{name}-1", pid, data[:end - 1]))
            if not other_depth and len(data) > end:
                plan(f"{name}+1", pid, data[:end + 1])
            elif not other_depth:
                plan(f"{name}+1", pid, None, "the packet has no payload after the header")
            vl = recs[i].ht.varlen
            if vl is None:
                continue
            at = _find_area(ctx, data, 1, last)
            if at is None:
                plan(f"{name}min_length", pid, None, "the header's variable-length part is not in the packet")
                continue
            got = _area_lengths(recs[i].ht, at.values)
            if at.n == 0 and got is not None and any(got[1]):
                # no variable part in this packet: give it the smallest non-empty one, to cut inside it
                n = min(x for x in got[1] if x)
                area = (_tlv_fill(vl.tlv, n, random.Random(f"{ctx.seed}/{pid}/cut")) if vl.tlv is not None
                        else bytes(random.Random(f"{ctx.seed}/{pid}/cut").getrandbits(8) for _ in range(n)))
                grown = _with_area(ctx, data, last, at, area, True) if area is not None else None
                if grown is not None:
                    add((f"{name}inside_variable_part", pid, grown[:at.start + 1]))
            if at.n > 0:
                for d in (-1, 0, 1) if not other_depth else (1,):
                    add((f"{name}fixed_part{d:+d}", pid, data[:at.start + d]))
            short = None
            if got is not None and got[1]:
                n = min(got[1])
                area = (_tlv_fill(vl.tlv, n, random.Random(f"{ctx.seed}/{pid}/min")) if vl.tlv is not None
                        else bytes(random.Random(f"{ctx.seed}/{pid}/min").getrandbits(8) for _ in range(n)))
                short = _with_area(ctx, data, last, at, area, True) if area is not None else None
            if short is not None:
                add((f"{name}min_length", pid, short))
            else:
                plan(f"{name}min_length", pid, None, "no length field value gives an area the generator can fill")
    for item, pid, data in mid + rest:
        plan(item, pid, data)
    made: dict[bytes, str] = {}
    for item, pid, data, tags in later:
        if data in made:  # the same frame as another item's (a header whose variable part is at its minimum)
            part.covered.add(item)
            continue
        if item in part.covered or not budget.take(item):
            continue
        made[data] = item
        ctx.emit(f"p{pid:02d}.ends{len(data)}", pid, ControlState(), data, tags, 1, {})
        part.covered.add(item)


def _end(recs: list[Rec], starts: list[int], data: bytes) -> int:
    from .packets import pack_header

    last = recs[-1]
    return starts[-1] + len(pack_header(last.ht, last.values, last.tail))


# ------------------------------------------------------------------------------------------------ TLV areas

MAX_TLV_PATHS = 3  # parse paths per TLV header whose packets' option area is rewritten
MAX_TLV_BASES = 5  # and in all, with the control vectors after them
MAX_TLV_VECTORS = 160  # the class's cap: a program with several TLV headers needs more than MAX_PER_CLASS


def _tlv_header_values(tlv: ir.Tlv, chunk: bytes) -> dict[str, int]:
    hb = tlv.header_bytes
    raw = int.from_bytes(chunk[:hb].ljust(hb, b"\0"), "big")
    out, shift = {}, hb * 8
    for f in tlv.header:
        shift -= f.width
        out[f.name] = (raw >> shift) & ((1 << f.width) - 1)
    return out


def _tlv_chunks(tlv: ir.Tlv, area: bytes, keep_padding: bool = False) -> list[bytes] | None:
    """The options of an area in order (padding singletons dropped unless kept, the walk stops at an end
    singleton); None when the area does not walk cleanly."""
    from .packets import eval_header_expr

    pos, n, out = 0, len(area), []
    sb, hb = tlv.singleton_bytes, tlv.header_bytes
    singles, ends = set(tlv.singletons.values()), {tlv.singletons[e] for e in tlv.end}
    while pos < n:
        if singles and pos + sb <= n and int.from_bytes(area[pos:pos + sb], "big") in singles:
            if int.from_bytes(area[pos:pos + sb], "big") in ends:
                break
            if keep_padding:
                out.append(area[pos:pos + sb])
            pos += sb
            continue
        if pos + hb > n:
            return None
        size = eval_header_expr(tlv.size, _tlv_header_values(tlv, area[pos:]))
        if size < hb or pos + size > n:
            return None
        out.append(area[pos:pos + size])
        pos += size
    return out


def _tlv_named(tlv: ir.Tlv, chunk: bytes) -> ir.TlvOption | None:
    hv = _tlv_header_values(tlv, chunk)
    return next((o for o in tlv.options if all(hv.get(k) == v for k, v in o.match.items())), None)


def _tlv_unknown_key(tlv: ir.Tlv) -> dict[str, int]:
    """Option-header key values no named option and no singleton has."""
    first = tlv.header[0]
    names = tlv.key or [first.name]
    taken = {o.match.get(names[0]) for o in tlv.options}
    if names[0] == first.name:
        taken |= set(tlv.singletons.values())
    f = next(x for x in tlv.header if x.name == names[0])
    value = next(x for x in range(1 << f.width) if x not in taken and x > 1)
    return {names[0]: value}


def _tlv_option(tlv: ir.Tlv, opt: ir.TlvOption | None, size: int, rng: random.Random) -> bytes | None:
    """One option of `size` bytes in all (header included): the named option's key, else an unknown one, with
    the length field solved; None when no length field value gives that size."""
    from .packets import eval_header_expr

    hv = {f.name: 0 for f in tlv.header}
    hv.update(opt.match if opt is not None else _tlv_unknown_key(tlv))
    fixed = set(opt.match if opt is not None else _tlv_unknown_key(tlv)) | set(tlv.key)
    ok = eval_header_expr(tlv.size, hv) == size
    for f in (x for x in tlv.header if x.name not in fixed):
        if ok:
            break
        for v in range(min(1 << f.width, 4096)):
            hv[f.name] = v
            if eval_header_expr(tlv.size, hv) == size:
                ok = True
                break
    if not ok or size < 0:
        return None
    head = pack_bits([(f.width, hv[f.name]) for f in tlv.header])
    body = bytes(rng.getrandbits(8) for _ in range(max(0, size - len(head))))
    return (head + body)[:size] if size >= len(head) else head[:size]


def _tlv_sizes(tlv: ir.Tlv, limit: int, opt: ir.TlvOption | None = None) -> list[int]:
    """Sizes an option (the named one, else an unknown one) can have, at least its header, up to `limit`."""
    from .packets import eval_header_expr

    key = opt.match if opt is not None else _tlv_unknown_key(tlv)
    hv = {f.name: 0 for f in tlv.header}
    hv.update(key)
    out: set[int] = set()
    for f in (x for x in tlv.header if x.name not in key and x.name not in tlv.key):
        for v in range(min(1 << f.width, 4096)):
            hv[f.name] = v
            s = eval_header_expr(tlv.size, hv)
            if tlv.header_bytes <= s <= limit:
                out.add(s)
        hv[f.name] = 0
        if len(out) > 1:
            break
    return sorted(out)


def _tlv_fill(tlv: ir.Tlv, n: int, rng: random.Random) -> bytes | None:
    """n bytes that walk cleanly and do not end the walk: no-op singletons while they are few, else the
    fewest unknown options (and no-ops) that make up n bytes, so the walk stays under max_options."""
    if n == 0:
        return b""
    unit = tlv.singleton_bytes
    nop = next((v for k, v in tlv.singletons.items() if k not in tlv.end), None)
    if nop is not None and n % unit == 0 and n // unit <= tlv.max_options // 2:
        return nop.to_bytes(unit, "big") * (n // unit)
    sizes = _tlv_sizes(tlv, n) + ([unit] if nop is not None else [])
    best: dict[int, tuple[int, int]] = {0: (0, 0)}  # bytes -> (options, last size)
    for total in range(1, n + 1):
        for size in sizes:
            prev = best.get(total - size)
            if prev is not None and (total not in best or prev[0] + 1 < best[total][0]):
                best[total] = (prev[0] + 1, size)
    if n not in best:
        return None
    out = b""
    while n:
        size = best[n][1]
        chunk = _tlv_option(tlv, None, size, rng) if size in sizes[:len(sizes) - (nop is not None)] else None
        if chunk is None and nop is not None and size == unit:
            chunk = nop.to_bytes(unit, "big")
        if chunk is None:
            return None
        out, n = out + chunk, n - size
    return out


def _tlv_area(tlv: ir.Tlv, chunks: list[bytes], lengths: dict[int, int], pad_front: bool, rng: random.Random,
              at_least: int = 0) -> bytes | None:
    """The options in order, padded to the smallest area length the length field can express (and at least
    `at_least`): in front, so the last option ends the area, or after them (the end singleton, else fill)."""
    content = b"".join(chunks)
    for n in sorted(x for x in lengths if x >= max(len(content), at_least)):
        pad = n - len(content)
        if pad_front:
            fill = _tlv_fill(tlv, pad, rng)
            if fill is not None:
                return fill + content
            continue
        end = tlv.singletons.get(tlv.end[0]) if tlv.end else None
        unit = tlv.singleton_bytes
        if pad and end is not None and pad >= unit:
            return content + end.to_bytes(unit, "big") + bytes(pad - unit)
        fill = _tlv_fill(tlv, pad, rng)
        if fill is not None:
            return content + fill
    return None


def _area_lengths(ht: ir.HeaderType, values: dict[str, int]) -> tuple[str, dict[int, int]] | None:
    """(length field, varlen length -> the smallest field value giving it), from a header's other values."""
    from .gen_paths import _length_table

    vl = ht.varlen
    if vl is None:
        return None
    names = list(dict.fromkeys(e.field_name for e in ir.walk_expr(vl.length) if isinstance(e, ir.FieldRef)))
    f = ht.field(names[0]) if names else None
    if f is None:
        return None
    out: dict[int, int] = {}
    for v, n in _length_table(vl, f, {k: values[k] for k in names[1:]}):
        if 0 <= n <= vl.max_bytes:
            out.setdefault(n, v)
    return f.name, out


@dataclass
class _Area:
    """Where a header's option area sits in one packet."""

    off: int  # header start
    start: int  # area start
    n: int  # area length
    values: dict[str, int]


def _find_area(ctx: ClassContext, data: bytes, port: int, inst: str) -> _Area | None:
    from .packets import header_spans, unpack_fields

    off = _offsets(ctx, data, port).get(inst)
    if off is None:
        return None
    ht = ctx.prog.instances[inst].type
    spans, hlen = header_spans(inst, ht, data, off)
    area = next((s for s in spans if ht.varlen is not None and s.name == f"{inst}.{ht.varlen.name}"), None)
    if area is None or off + hlen > len(data):
        return None
    return _Area(off, area.bit_offset // 8, area.width // 8, unpack_fields(ht, data[off:]))


def _with_area(ctx: ClassContext, data: bytes, inst: str, at: _Area, area: bytes, cut: bool) -> bytes | None:
    """`data` with the header's option area replaced (its length field set, its IPv4-style checksum
    recomputed), and the frame ending at the area's end when `cut`."""
    ht = ctx.prog.instances[inst].type
    got = _area_lengths(ht, at.values)
    if got is None or len(area) not in got[1]:
        return None
    fname, lengths = got
    f = ht.field(fname)
    assert f is not None
    buf = bytearray(data[:at.start])
    _set_bits(buf, at.off * 8 + f.offset, f.width, lengths[len(area)])
    out = bytes(buf) + area + (b"" if cut else data[at.start + at.n:])
    return _recompute_checksum(ht, out, at.off, at.start - at.off + len(area))


def _recompute_checksum(ht: ir.HeaderType, data: bytes, off: int, hlen: int) -> bytes:
    cs = ht.checksum
    cf = ht.field(cs.field) if cs is not None and cs.kind == "ipv4_header" else None
    if cf is None or off + hlen > len(data):
        return data
    from .packets import ipv4_checksum

    buf = bytearray(data)
    at = off + cf.offset // 8
    buf[at:at + 2] = b"\0\0"
    buf[at:at + 2] = ipv4_checksum(bytes(buf[off:off + hlen])).to_bytes(2, "big")
    return bytes(buf)


Base = tuple[str, int, bytes, int, ControlState, Registers, bool]  # label, pid, data, port, control, regs, last


def _tlv_bases(ctx: ClassContext, inst: str) -> list[Base]:
    """Packets carrying the header: one per parse path through it (those where it is the last header first,
    so the area can end the frame), then the control vectors that name one of its options (they steer the
    conditions that read the options)."""
    out: list[Base] = []
    paths = [(pid, recs, data) for pid, _p, recs, data, _s in ctx.accepted if any(r.instance == inst for r in recs)]
    paths.sort(key=lambda a: a[1][-1].instance != inst)
    # one path per distinct sequence of headers before this one (the xdp target copies a parser state per
    # context, such as the number of VLAN tags before it), those that end with this header first
    before: set[tuple[str, ...]] = set()
    for pid, recs, data in paths:
        prefix = tuple(r.instance for r in recs[:next(i for i, r in enumerate(recs) if r.instance == inst)])
        if prefix in before or len(before) >= MAX_TLV_PATHS:
            continue
        before.add(prefix)
        out.append((f"p{pid:02d}", pid, data, 1, ControlState(), {}, recs[-1].instance == inst))
    options = [n for n, i in ctx.prog.instances.items() if i.tlv_parent == inst]
    state = next((s for s, st in ctx.prog.parser.states.items() if st.extract == inst), "")
    scored: list[tuple[int, int, Vector]] = []
    for n, v in enumerate(ctx.vectors):
        if len(v.packets) != 1 or v.registers or not {"control", "const_entry", "default_varied"} & set(v.tags):
            continue
        obs = v.expected[0].observations
        if inst not in obs.get("offsets", {}) or obs.get("parser_error"):
            continue
        # a vector named after one of the options steered a condition on it; a hit runs an action that may read it
        hit, named = any(obs.get("hit", {}).values()), any(o in v.name for o in options)
        score = 2 * hit + named + (hit and named)
        if score:
            scored.append((-score, n, v))
    for _s, _n, v in sorted(scored, key=lambda x: x[:2]):
        if len(out) >= MAX_TLV_BASES:
            break
        if any(b[2] == v.packets[0].data and b[4] == v.control for b in out):
            continue
        last = v.expected[0].observations.get("path", [""])[-1:] == [state]
        out.append((v.name, int(v.provenance.get("path", 0)), v.packets[0].data, v.packets[0].port, v.control, {}, last))
    return out


@dataclass
class _AreaMaker:
    """Makes one kind of option area from a packet's own options (`chunks`), for the lengths its length field
    can express; None when that area cannot be made."""

    tlv: ir.Tlv
    max_bytes: int
    kind: str  # first | last | below_header | overrun | at_max | options | after_end
    opt: ir.TlvOption | None = None
    size: int = 0  # of the named option, header included
    count: int = 0  # of options

    def __call__(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        maker: Callable[[list[bytes], dict[int, int], random.Random], bytes | None] = getattr(self, "_" + self.kind)
        return maker(chunks, lengths, rng)

    def _place(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random, first: bool) -> bytes | None:
        """The named option first (padding after) or last (padding in front: it ends the area), the packet's
        other options kept as far as they fit."""
        tlv, hb, opt = self.tlv, self.tlv.header_bytes, self.opt
        mine = _tlv_option(tlv, opt, self.size, rng)
        if mine is None:
            return None
        had = next((c for c in chunks if _tlv_named(tlv, c) is opt), None)
        if had is not None:  # the packet's own option data (an entry or a condition may depend on it)
            mine = mine[:hb] + (had[hb:] + mine[len(had):])[:self.size - hb]
        others = [c for c in chunks if _tlv_named(tlv, c) is not opt]
        while others:
            area = _tlv_area(tlv, [mine, *others] if first else [*others, mine], lengths, not first, rng)
            if area is not None:
                return area
            others.pop()
        return _tlv_area(tlv, [mine], lengths, not first, rng)

    def _first(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        return self._place(chunks, lengths, rng, True)

    def _last(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        return self._place(chunks, lengths, rng, False)

    def _below_header(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        hb = self.tlv.header_bytes
        bad = _tlv_option(self.tlv, None, hb - 1, rng)
        filler = _tlv_fill(self.tlv, 2 * hb, rng) or b""
        return None if bad is None else _tlv_area(self.tlv, [*chunks, bad, filler], lengths, False, rng)

    def _overrun(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        """The last option claims one size unit more than the bytes left in the area."""
        content = b"".join(chunks)
        for n in sorted(x for x in lengths if x >= len(content) + self.tlv.header_bytes):
            rest = n - len(content)
            size = next((x for x in _tlv_sizes(self.tlv, 4096) if x > rest), None)
            over = _tlv_option(self.tlv, None, size, rng) if size is not None else None
            if over is not None:
                return content + over[:rest]
        return None

    def _header_cut(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        """The area ends inside an option's header (its first byte, not a singleton, among the last)."""
        tlv, hb = self.tlv, self.tlv.header_bytes
        sizes = _tlv_sizes(tlv, 4096)
        over = _tlv_option(tlv, None, sizes[0], rng) if sizes and hb > 1 else None
        if over is None:
            return None
        content = b"".join(chunks)
        for n in sorted(x for x in lengths if x > len(content)):
            for r in range(1, hb):
                fill = _tlv_fill(tlv, n - len(content) - r, rng) if n - len(content) - r >= 0 else None
                if fill is not None:
                    return content + fill + over[:r]
        return None

    def _at_max(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        return _tlv_area(self.tlv, chunks, lengths, True, rng, at_least=max(lengths))

    def _options(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        """`count` options: no-op singletons (else the smallest unknown option), the last one an unknown option
        sized so the area has a length the length field can express."""
        tlv = self.tlv
        nop = next((v for k, v in tlv.singletons.items() if k not in tlv.end), None)
        sizes = _tlv_sizes(tlv, self.max_bytes)
        one = nop.to_bytes(tlv.singleton_bytes, "big") if nop is not None else (
            _tlv_option(tlv, None, sizes[0], rng) if sizes else None)
        if one is None:
            return None
        head = one * (self.count - 1)
        for n in sorted(x for x in lengths if x > len(head)):
            if len(one) + len(head) == n:
                return head + one
            tail = _tlv_option(tlv, None, n - len(head), rng) if n - len(head) in sizes else None
            if tail is not None:
                return head + tail
        return None

    def _after_end(self, chunks: list[bytes], lengths: dict[int, int], rng: random.Random) -> bytes | None:
        """The end singleton, then bytes that would be a malformed option if the walk went on."""
        tlv = self.tlv
        if not tlv.end:
            return None
        content = b"".join(chunks) + tlv.singletons[tlv.end[0]].to_bytes(tlv.singleton_bytes, "big")
        n = min((x for x in lengths if x >= len(content) + tlv.header_bytes + 1), default=None)
        return None if n is None else content + b"\xff" * (n - len(content))


def _tlv_edges(ctx: ClassContext) -> None:
    """Option areas around their edges, on packets that carry the TLV header: each option the program reads
    first, last (ending the area and, where the header ends the packet, the frame; then one byte short),
    shorter than its fields (bad length) and longer; an option shorter than the option header, one running
    past the area, the area at its maximum, the most options allowed and one more, bytes after the end
    singleton. Scopes: every base packet, those where the header ends the packet, or the first one."""
    part = ctx.classes["tlv_edges"]
    budget = _Budget(part)
    budget.left = MAX_TLV_VECTORS
    for inst, instance in ctx.prog.instances.items():
        vl = instance.type.varlen
        if vl is None or vl.tlv is None or not instance.walk_tlv or instance.tlv_parent is not None:
            continue
        tlv, hb, mx = vl.tlv, vl.tlv.header_bytes, vl.max_bytes
        bases = _tlv_bases(ctx, inst)
        plans: list[tuple[str, _AreaMaker, bool, str]] = []
        # only the options the program reads: the others are skipped like unknown ones (interp_parser)
        for opt in (o for o in tlv.options if f"{inst}.{o.name}" in ctx.prog.instances):
            need = hb + opt.data_bytes
            sizes = _tlv_sizes(tlv, mx, opt)
            shorter = max((x for x in sizes if x < need), default=hb - 1)
            longer = min((x for x in sizes if x > need), default=need + 1)
            plans += [
                (f"{opt.name}:first", _AreaMaker(tlv, mx, "first", opt, need), False, "every"),
                (f"{opt.name}:last_ends_frame", _AreaMaker(tlv, mx, "last", opt, need), True, "last"),
                (f"{opt.name}:last_one_byte_short", _AreaMaker(tlv, mx, "last", opt, need), True, "short"),
                (f"{opt.name}:shorter_than_fields", _AreaMaker(tlv, mx, "first", opt, shorter), False, "one"),
                (f"{opt.name}:longer_than_fields", _AreaMaker(tlv, mx, "first", opt, longer), False, "one"),
            ]
        # the options the program does not read, well formed and shorter than their declared fields: skipped by
        # the oracle like unknown ones, so no target may refuse them (p4 refused tlv_parser's 6-byte timestamps)
        for opt in (o for o in tlv.options if f"{inst}.{o.name}" not in ctx.prog.instances):
            need = hb + opt.data_bytes
            below = [x for x in _tlv_sizes(tlv, mx, opt) if hb <= x < need]
            plans.append((f"{opt.name}(not read):first", _AreaMaker(tlv, mx, "first", opt, need), False, "one"))
            if below:
                plans.append((f"{opt.name}(not read):shorter_than_fields",
                              _AreaMaker(tlv, mx, "first", opt, max(below)), False, "one"))
        most = tlv.max_options
        plans += [
            ("option_below_header_size", _AreaMaker(tlv, mx, "below_header"), False, "one"),
            ("option_runs_past_area", _AreaMaker(tlv, mx, "overrun"), False, "one"),
            ("option_header_past_area", _AreaMaker(tlv, mx, "header_cut"), False, "one"),
            ("area_at_max", _AreaMaker(tlv, mx, "at_max"), False, "paths"),
            ("area_at_max_ends_frame", _AreaMaker(tlv, mx, "at_max"), True, "last"),
            (f"max_options({most})", _AreaMaker(tlv, mx, "options", count=most), False, "one"),
            (f"max_options+1({most + 1})", _AreaMaker(tlv, mx, "options", count=most + 1), False, "one"),
            ("bytes_after_end", _AreaMaker(tlv, mx, "after_end"), False, "one"),
        ]
        reasons = {
            "option_below_header_size": f"no option-header value gives an option under its {hb} header bytes",
            f"max_options({most})": f"{most} options do not fit in {mx} bytes",
            f"max_options+1({most + 1})": f"{most + 1} options do not fit in {mx} bytes",
            "bytes_after_end": "the area has no end singleton",
            "option_header_past_area": "the option header is one byte, or no area length leaves part of one",
        }
        for label, make, cut, scope in plans:
            item = f"{inst}:{label}"
            part.all.append(item)
            why = "" if bases else "no packet carries the header"
            for bi, (bname, pid, data, port, control, regs, last) in enumerate(bases):
                if scope == "paths" and not (bname[1:].isdigit() and bname[0] == "p"):
                    break  # the parse paths' own packets only
                if (scope == "one" and bi > 0) or (scope == "short" and item in part.covered):
                    break  # a truncated frame never reaches the control: one is enough
                if cut and not last:
                    why = why or "the header is never the last one of a packet: the area cannot end the frame"
                    continue
                at = _find_area(ctx, data, port, inst)
                lengths = _area_lengths(instance.type, at.values) if at is not None else None
                if at is None or lengths is None:
                    why = why or "the header's area is not in the packet"
                    continue
                chunks = _tlv_chunks(tlv, data[at.start:at.start + at.n]) or []
                area = make(chunks, lengths[1], random.Random(f"{ctx.seed}/{inst}/{label}/{bname}"))
                out = _with_area(ctx, data, inst, at, area, cut) if area is not None else None
                if out is None:
                    why = why or reasons.get(label, "no area the length field can express holds it")
                    continue
                if not budget.take(item):
                    break
                ctx.emit(f"tlv.{inst}.{label}.{bname}", pid, control, out[:-1] if scope == "short" else out,
                         ["tlv_edge"], port, regs)
                part.covered.add(item)
            if item in part.covered:
                part.infeasible.pop(item, None)
            elif item not in part.infeasible:
                part.infeasible[item] = why or "no packet carries the header"


# ------------------------------------------------------------------------------ conditions and full width

MAX_CONDITION_VECTORS = 128
MAX_WIDTH_PATHS = 4
MAX_TRACE_SCAN = 600  # generated vectors run with the trace to find, per path, one reaching each condition


def _option_field_bit(ctx: ClassContext, data: bytes, port: int, opt_inst: str, fname: str) -> tuple[int, int] | None:
    """(bit position, width) of a TLV option's field in `data`: its first occurrence in the parent's area."""
    inst = ctx.prog.instances[opt_inst]
    parent, opt = inst.tlv_parent, inst.tlv_option
    vl = ctx.prog.instances[parent].type.varlen if parent else None
    if parent is None or opt is None or vl is None or vl.tlv is None:
        return None
    at = _find_area(ctx, data, port, parent)
    f = next((x for x in opt.fields if x.name == fname), None)
    if at is None or f is None:
        return None
    pos = 0
    for chunk in _tlv_chunks(vl.tlv, data[at.start:at.start + at.n], keep_padding=True) or []:
        if _tlv_named(vl.tlv, chunk) is opt and len(chunk) >= vl.tlv.header_bytes + opt.data_bytes:
            return (at.start + pos + vl.tlv.header_bytes) * 8 + f.offset, f.width
        pos += len(chunk)
    return None


def _set_field(ctx: ClassContext, data: bytes, port: int, ref: ir.FieldRef, value: int) -> bytes | None:
    """`data` with a header or option field set, the IPv4-style checksum of its header recomputed over the
    header's (possibly new) length."""
    from .packets import header_spans

    base = ref.instance
    if ctx.prog.instances[base].tlv_parent is not None:
        got = _option_field_bit(ctx, data, port, base, ref.field_name)
        if got is None:
            return None
        buf = bytearray(data)
        _set_bits(buf, got[0], got[1], value)
        parent = ctx.prog.instances[base].tlv_parent
        assert parent is not None
        off = _offsets(ctx, data, port)[parent]
        ht = ctx.prog.instances[parent].type
        return _recompute_checksum(ht, bytes(buf), off, header_spans(parent, ht, bytes(buf), off)[1])
    name = f"{base}[{ref.index}]" if isinstance(ref.index, int) else base
    if ref.index is not None and not isinstance(ref.index, int):
        return None
    out = _patch(ctx, data, port, {(name, ref.field_name): value})
    if out is None or out == data:
        return out
    start = _offsets(ctx, data, port).get(name)
    ht = ctx.prog.instances[base].type
    if start is None or ht.checksum is None or ht.varlen is None:
        return out
    off = start
    return _recompute_checksum(ht, out, off, header_spans(name, ht, out, off)[1])


_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


def _comparisons(prog: ir.Program) -> list[tuple[str, ir.FieldRef, str, int, int]]:
    """(if statement id, field, operator, constant, shift) of every field-versus-constant comparison in an
    if-condition of the control or an action (a slice compares the field's bits from `shift`)."""
    out = []
    ifs = [st for body in [prog.control, *(a.body for a in prog.user_actions.values())]
           for st in ir.walk_stmts(body) if isinstance(st, ir.If)]
    for st in ifs:
        cmps = [x for x in ir.walk_expr(st.cond) if isinstance(x, ir.Binary) and x.op in _COMPARE]
        for cmp in cmps:
            for side, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
                inner = side.operand if isinstance(side, ir.Slice | ir.Cast) else side
                if isinstance(inner, ir.FieldRef) and isinstance(other, ir.Const):
                    out.append((stmt_id(st), inner, cmp.op, other.value, side.lo if isinstance(side, ir.Slice) else 0))
    return out


def _reaching(ctx: ClassContext) -> dict[str, dict[int, list[Vector]]]:
    """Per if statement and parse path, a few generated vectors that evaluate it."""
    out: dict[str, dict[int, list[Vector]]] = {}
    runs = 0
    for v in ctx.vectors:
        if runs >= MAX_TRACE_SCAN:
            break
        if len(v.packets) != 1 or v.registers or {"truncated", "checksum"} & set(v.tags):
            continue
        runs += 1
        r = ctx.run_with(v.control, v.packets[0].data, v.packets[0].port, {})
        pid = int(v.provenance.get("path", 0))
        for sid in dict.fromkeys(sid for kind, sid, _t in r.observations.get("trace", []) if kind == "if"):
            got = out.setdefault(sid, {}).setdefault(pid, [])
            if len(got) < 8:
                got.append(v)
    return out


CondBase = tuple[int, bytes, int, ControlState]  # pid, data, port, control


def _shows(ctx: ClassContext, base: CondBase, ref: ir.FieldRef, const: int, shift: int) -> bool:
    """Whether the values around the constant give different results on this packet."""
    _pid, data0, port, control = base
    seen = set()
    for value in (const - 1, const, const + 1):
        if not 0 <= value << shift < 1 << ref.width:
            continue
        data = _set_field(ctx, data0, port, ref, value << shift)
        if data is None:
            return False
        r = ctx.run_with(control, data, port, {})
        # the output frame carries the value itself: only whether the program rewrote the frame counts
        seen.add((r.verdict, r.port, r.data == data, tuple(sorted(r.counters.items()))))
    return len(seen) > 1


def _condition_base(ctx: ClassContext, comps: list[tuple[str, ir.FieldRef, str, int, int]], k: int,
                    vs: list[Vector]) -> CondBase | None:
    """A packet of one path evaluating comparison k with its field present, on which the values around the
    constant show (a later statement, such as another condition's verdict, does not hide the comparison):
    the generator's own vectors first, then the first with another compared field set next to its constant."""
    _sid, ref, _op, const, shift = comps[k]
    steered = f"{ref.instance}.{ref.field_name}="  # the generator's vectors for this condition's values
    usable: list[CondBase] = [
        (int(v.provenance.get("path", 0)), v.packets[0].data, v.packets[0].port, v.control)
        for v in sorted(vs, key=lambda v: steered not in v.name)
        if _field_in(ctx, v.packets[0].data, v.packets[0].port, ref) is not None]
    if not usable:
        return None
    for base in usable:
        if _shows(ctx, base, ref, const, shift):
            return base
    pid, data, port, control = usable[0]
    for j, (_s2, ref2, _o2, const2, shift2) in enumerate(comps):
        if j == k or (ref2.instance, ref2.field_name) == (ref.instance, ref.field_name):
            continue
        for value in (const2 - 1, const2, const2 + 1):
            if not 0 <= value << shift2 < 1 << ref2.width:
                continue
            other = _set_field(ctx, data, port, ref2, value << shift2)
            if other is not None and _shows(ctx, (pid, other, port, control), ref, const, shift):
                return pid, other, port, control
    return usable[0]


def _condition_edges(ctx: ClassContext) -> None:
    """Each field compared with a constant in an if-condition set to the constant, one below and one above,
    on a packet of every parse path that evaluates the condition with the field present (the control is
    copied per path by some targets), the packet's own control state kept. Rounds: every comparison on its
    first path, then on its second, ... so the cap cuts the last paths of the busiest conditions."""
    part = ctx.classes["condition_edges"]
    budget = _Budget(part)
    budget.left = MAX_CONDITION_VECTORS
    comps = _comparisons(ctx.prog)
    if not comps:
        return
    reach = _reaching(ctx)
    per: list[list[CondBase]] = []
    for k, (sid, ref, op, const, _shift) in enumerate(comps):
        bases = [b for vs in reach.get(sid, {}).values() if (b := _condition_base(ctx, comps, k, vs)) is not None]
        per.append(bases)
        if not bases:
            item = f"{sid}:{ref.instance}.{ref.field_name} {op} {const}"
            part.all.append(item)
            part.infeasible[item] = "no generated packet evaluates the condition with the field present"
    for k in range(max(len(b) for b in per)):
        for (sid, ref, op, const, shift), bases in zip(comps, per, strict=True):
            if k >= len(bases):
                continue
            pid, data0, port, control = bases[k]
            m = (1 << ref.width) - 1
            top = (const - 1) | (1 << (ref.width - 1))  # a wrong mask or width in the comparison shows (first path)
            for label, value in (("-1", const - 1), ("", const), ("+1", const + 1), ("-1|top_bit", top)):
                if not 0 <= value << shift <= m or (label == "-1|top_bit" and (k or value in (const - 1, const, const + 1))):
                    continue  # no such value of the field
                item = f"{sid}:{ref.instance}.{ref.field_name} {op} {const}{label}@p{pid:02d}"
                part.all.append(item)
                data = _set_field(ctx, data0, port, ref, value << shift)
                if data is None:
                    part.infeasible[item] = "the field is not at a place the generator can rewrite in the packet"
                    continue
                if not budget.take(item):
                    continue
                r = ctx.emit(f"cond.{ref.instance}.{ref.field_name}.{op}{const}{label}.p{pid:02d}", pid, control,
                             data, ["condition_edge"], port, {})
                if any(kind == "if" and s == sid for kind, s, _t in r.observations.get("trace", [])):
                    part.covered.add(item)
                else:
                    part.infeasible[item] = "with this value the packet no longer reaches the condition (a vector is kept)"


def _full_width(ctx: ClassContext) -> None:
    """Per table and action with parameters, a vector that hits it with every argument all ones, and one with
    only each argument's top bit set (ports keep their value: a port every target maps), the tables keyed on
    metadata the arguments fill given an entry for the new value (gen_fullwidth.recomplete); and the fields the
    action reads (other than keys) with their top bit set."""
    part = ctx.classes["full_width"]
    budget = _Budget(part)
    prog = ctx.prog
    keys = {(k.expr.instance, k.expr.field_name) for t in prog.tables.values() for k in t.keys
            if isinstance(k.expr, ir.FieldRef)}
    for t in prog.tables.values():
        for a in t.actions:
            reads = [] if a not in prog.user_actions else list(dict.fromkeys(
                x for st in ir.walk_stmts(prog.user_actions[a].body) for e in ir.stmt_exprs(st)
                for x in ir.walk_expr(e) if isinstance(x, ir.FieldRef) and (x.instance, x.field_name) not in keys))
            labels = (["all_ones", "top_bit"] if prog.actions[a].params else []) + (["fields_top_bit"] if reads else [])
            by_path: dict[int, Vector] = {}
            for v in ctx.vectors:
                obs = v.expected[0].observations if len(v.packets) == 1 and not v.registers else {}
                if obs.get("hit", {}).get(t.name) and obs.get("tables", {}).get(t.name) == a:
                    by_path.setdefault(int(v.provenance.get("path", 0)), v)
            bases = list(by_path.values())[:MAX_WIDTH_PATHS]  # some targets copy the control per parse path
            for label in labels:
                item = f"{t.name}.{a}:{label}"
                part.all.append(item)
                why = "no generated vector hits an entry with this action"
                for base in bases:
                    got = _wide(ctx, base, t.name, a, label, reads)
                    if isinstance(got, str):
                        why = got
                        continue
                    if not budget.take(item):
                        break
                    control, data = got
                    if label != "fields_top_bit":  # the tables keyed on what the arguments fill: the new value
                        control = recomplete(ctx, control, data, base.packets[0].port, t.name, a)
                    pid = int(base.provenance.get("path", 0))
                    r = ctx.emit(f"width.{t.name}.{a}.{label}.p{pid:02d}", pid, control, data, ["full_width"],
                                 base.packets[0].port, {})
                    if r.observations.get("tables", {}).get(t.name) == a:
                        part.covered.add(item)
                    else:
                        why = "with these values the packet no longer hits the entry"
                if item in part.covered:
                    part.infeasible.pop(item, None)
                elif item not in part.infeasible:
                    part.infeasible[item] = why
    low_bit_vectors(ctx)  # odd arguments feeding a later table's key, per parse path (gen_fullwidth.py)
    length_parity_vectors(ctx)  # frames of the other length parity for actions reading it (gen_lengths.py)


def _wide(ctx: ClassContext, base: Vector, table: str, action: str, label: str,
          reads: list[ir.FieldRef]) -> tuple[ControlState, bytes] | str:
    """The base vector's control state with the action's arguments at full width, or its packet with the
    fields the action reads having their top bit set."""
    p = base.packets[0]
    if label != "fields_top_bit":
        params = ctx.prog.actions[action].params
        args = tuple(x if "port" in q.name else (1 << q.width) - 1 if label == "all_ones" else 1 << (q.width - 1)
                     for x, q in zip(_args_of(base.control, table, action, params), params, strict=True))
        entries = tuple(e if e.table != table or e.action != action else replace(e, args=args)
                        for e in base.control.entries)
        return ControlState(entries, base.control.defaults), p.data
    data = p.data
    for ref in reads:
        cur = _field_in(ctx, data, p.port, ref)
        patched = _set_field(ctx, data, p.port, ref, cur | (1 << (ref.width - 1))) if cur is not None else None
        data = patched if patched is not None else data
    if data == p.data:
        return "the fields the action reads are not in the packet or already have their top bit set"
    return base.control, data


def _args_of(control: ControlState, table: str, action: str, params: list[ir.Param]) -> tuple[int, ...]:
    e = next((e for e in control.entries if e.table == table and e.action == action), None)
    return tuple(e.args) if e is not None else tuple(param_value(action, p) for p in params)


def _field_in(ctx: ClassContext, data: bytes, port: int, ref: ir.FieldRef) -> int | None:
    name = f"{ref.instance}[{ref.index}]" if isinstance(ref.index, int) else ref.instance
    if ref.index is not None and not isinstance(ref.index, int):
        return None
    if ctx.prog.instances[ref.instance].tlv_parent is not None:
        got = _option_field_bit(ctx, data, port, ref.instance, ref.field_name)
        if got is None:
            return None
        bit, width = got
    else:
        off = _offsets(ctx, data, port).get(name)
        f = ctx.prog.instances[ref.instance].type.field(ref.field_name)
        if off is None or f is None:
            return None
        bit, width = off * 8 + f.offset, f.width
    if (bit + width + 7) // 8 > len(data):
        return None
    total = len(data) * 8
    return (int.from_bytes(data, "big") >> (total - bit - width)) & ((1 << width) - 1)
