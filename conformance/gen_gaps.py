"""Checksum updates at their edges in every copy the targets make of them, and select values one bit off
(issue 16, the gaps left after the second round of mutation analysis).

- checksum_copies: the xdp target copies the control per parse path and per split point, and each copy has
  its own checksum update code. A copy here is the parse path, the action each applied table ran (a miss
  marked; a default replaced by `nop` is a copy of its own) and the branches taken at split points, as finely
  as the target may split. For every copy of every `update_checksum` a vector whose update writes 0x0000 (a
  running sum of 0xffff; a UDP-style checksum writes it 0xffff) and one whose update writes 0xfffe (a running
  sum of 0x0001): the sums where a wrong fold, final complement or zero test shows. Copies where nothing the
  checksum covers changes count too: an incremental update computes the result there all the same.
- the same two results for a header with options (an IPv4 header with IHL > 5): the nic target falls back to
  recomputing the whole header, options included, when the incremental sum ends at 0 or 0xffff;
- for a UDP-style checksum (0 = none), in every copy a packet whose checksum is 0: the update leaves it 0.
- checksum_words: an incremental update adds each word it covers as (old, new), and a step dropped or wrong
  shows only where that word changed. For every copy of every update as the xdp target splits the control (the
  parse path and what was taken at gen_coverage.SplitPoints: nat44's per routes action) and every word the update
  covers that the program writes (the header's fixed part but its checksum, the pseudo-header's addresses), a
  vector of the copy whose control changes the word, with a checksum the update changes (a UDP checksum of 0 is
  left alone). A generated vector that does so covers it; else one is made from a vector of the copy: its packet
  moved off the value the control writes there (the entries that matched it moved along), an argument moved, or
  an entry added to a table whose action writes the word from a parameter (the tables keyed on the written field
  re-keyed to its new value: nat44's dnat rewriting the destination's low or high word under a route's
  next_hop). A word the copy never writes (the TTL outside next_hop) is listed as infeasible.
- select_bits: each select case's value with one of its bits flipped (every bit of a field up to 8 bits, the
  first and last bit of each byte of a wider one), in a packet that reached the case under a control state
  where it ends differently from the flipped one: a target that masks the field short (an IPv6 version read
  as 3 bits takes version 14 for 6) routes the flipped packet as the case's, where the spec rejects it.

Items: "PATH [COPY] stmt:ID result=0x0000", "PATH [COPY] stmt:ID word INST[A:B] (FIELDS) changed",
"STATE#caseN[J]:bitB_flipped"; what no vector can reach is listed
as infeasible with the reason. Expected results are the oracle's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem, ParamRef

from .checksums import ones_add
from .gen_classes import (
    ClassContext,
    _Budget,
    _find_area,
    _patch,
    _path_prefixes,
    _program_fields,
    _tlv_fill,
    _with_area,
    steer_update_result,
)
from .gen_coverage import ClassCoverage, path_key
from .model import ControlState, EntryState, PacketIn, Vector
from .tracing import stmt_id

__all__ = ["GAP_CLASSES", "gap_vectors"]

GAP_CLASSES = ("checksum_copies", "checksum_words", "select_bits")
RESULTS = (0x0000, 0xFFFE)
MAX_SCAN = 1500  # generated vectors run to find, per copy, those that reach its update
MAX_CANDIDATES = 3
MAX_VECTORS = 200
MAX_WORD_VECTORS = 120  # checksum_copies' vectors that change one word an update covers, on one copy
WORD_XOR = (0x0101, 0x8000)  # a word moved off the value the control writes there by these
REMATCH = (("value",), ("value", "mask", "prefix"))  # the key kinds moved along with a packet's word
MAX_ARG_TRIES = 24
MAX_WORD_CANDIDATES = 6  # vectors of a copy tried for one whose control changes a word
Word = tuple[str, int, str]  # (instance, byte offset in its header, the fields in it)
OPTION_BYTES = (4, 40)  # option areas tried: one word, the largest


def gap_vectors(ctx: ClassContext) -> None:
    for name in GAP_CLASSES:
        ctx.classes.setdefault(name, ClassCoverage())
    _checksum_copies(ctx)
    _select_bits(ctx)


def _updates(prog: ir.Program) -> dict[str, tuple[str, str | None]]:
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    return {stmt_id(s): (s.instance, s.pseudo) for body in bodies for s in ir.walk_stmts(body)
            if isinstance(s, ir.UpdateChecksum)}


def _copy_key(ctx: ClassContext, r: Any) -> str | None:
    """The copy of the control a run went through, as finely as the xdp target may split it: the parse path,
    the action each applied table ran (a miss marked; a default replaced by `nop` is its own copy, which the
    per-path coverage does not enumerate) and the branches taken at split points."""
    obs = r.observations
    if obs.get("parser_error") is not None or "trace" not in obs:
        return None
    hits = obs.get("hit", {})
    acts = [f"{t}.{a}" + ("" if hits.get(t) else ":miss") for t, a in obs.get("tables", {}).items()]
    split = ctx.per_path.split.ifs if ctx.per_path is not None else set()
    ifs = [f"{sid.rsplit('/', 1)[-1]}:{'then' if b else 'else'}" for kind, sid, b in obs["trace"]
           if kind == "if" and sid in split]
    return f"{path_key(obs.get('path', []))} [{' '.join([*ifs, *acts])}]"


def _copy_items(ctx: ClassContext, r: Any, updates: dict[str, tuple[str, str | None]]) -> set[str]:
    """"COPY stmt:ID" for each checksum update the run requested (none in a dropped frame): a target that updates
    incrementally computes the result even where nothing it covers changed (nat44's routes.nop copy)."""
    key = _copy_key(ctx, r)
    if key is None or r.verdict == "drop":
        return set()
    trace = r.observations["trace"]
    parsed = r.observations.get("offsets", {})
    # a request for a header the packet does not have (update_checksum(ipv4) in an action IPv6 runs) is none
    requested = {req for kind, req, _did in trace if kind == "checksum" and req[0] in parsed}
    return {f"{key} stmt:{sid}" for kind, sid, req in trace if kind == "stmt_checksum" and req in requested
            and sid in updates}


def _checksum_copies(ctx: ClassContext) -> None:
    part = ctx.classes["checksum_copies"]
    updates = _updates(ctx.prog)
    if not updates:
        return
    found: dict[str, list[Vector]] = {}
    options: dict[str, list[Vector]] = {}  # per update statement: vectors running it
    words = {sid: _update_words(ctx.prog, inst, pseudo) for sid, (inst, pseudo) in updates.items()}
    changed: dict[str, set[Word]] = {}  # per copy item: the covered words some generated vector changes there
    for v in ctx.vectors[:MAX_SCAN]:
        if len(v.packets) != 1 or v.registers:
            continue
        r = ctx.run_with(v.control, v.packets[0].data, v.packets[0].port, {})
        for item in sorted(_copy_items(ctx, r, updates)):
            sid = item.rsplit(" stmt:", 1)[1]
            coarse = f"{_target_copy(ctx, r)} stmt:{sid}"
            changed.setdefault(coarse, set()).update(_changed_words(r, v.packets[0].data, words[sid], updates[sid]))
            got = found.setdefault(item, [])
            if len(got) < MAX_CANDIDATES:
                got.append(v)
            if len(opts := options.setdefault(sid, [])) < MAX_CANDIDATES and v not in opts:
                opts.append(v)
    # the copies behind a `nop` default: a vector whose table missed, its default replaced by nop (the generated
    # nop defaults miss with empty tables elsewhere: nat44's TCP copy under dnat's rewrite and routes' nop)
    if "nop" in ctx.prog.actions:
        for v in [v for got in list(found.values()) for v in got]:
            r = ctx.run_with(v.control, v.packets[0].data, v.packets[0].port, {})
            obs = r.observations
            for t in [t for t in obs.get("tables", {}) if not obs.get("hit", {}).get(t)]:
                state = replace(v.control, defaults=(*(d for d in v.control.defaults if d[0] != t), (t, "nop", ())))
                nv = replace(v, name=f"{v.name}+{t}.nop", control=state)
                r2 = ctx.run_with(state, v.packets[0].data, v.packets[0].port, {})
                for item in sorted(_copy_items(ctx, r2, updates)):
                    got = found.setdefault(item, [])
                    if len(got) < MAX_CANDIDATES:
                        got.append(nv)
    used = _program_fields(ctx.prog)
    cap = _Budget(part, MAX_VECTORS)
    for name in sorted(found):
        inst, pseudo = updates[name.rsplit(" stmt:", 1)[1]]
        for target in RESULTS:
            item = f"{name} result={target:#06x}"
            part.all.append(item)
            why = _edge(ctx, part, cap, item, found[name], inst, pseudo, used, target, name, updates)
            if why is not None:
                part.infeasible[item] = why
        cs = ctx.prog.instances[inst].type.checksum
        if cs is not None and cs.zero_means_none:
            item = f"{name} input=0x0000 (none)"
            part.all.append(item)
            why = _none(ctx, part, cap, item, found[name], inst, name)
            if why is not None:
                part.infeasible[item] = why
    for sid, (inst, pseudo) in sorted(updates.items()):
        if ctx.prog.instances[inst].type.varlen is None:
            continue
        for target in RESULTS:
            item = f"stmt:{sid} with {inst} options result={target:#06x}"
            part.all.append(item)
            why = _with_options(ctx, part, cap, item, options.get(sid, []), inst, pseudo, used, target)
            if why is not None:
                part.infeasible[item] = why
    _checksum_words(ctx, ctx.classes["checksum_words"], found, changed, words, updates)
    for sid in sorted(updates):
        if sid not in options:
            item = f"stmt:{sid}"
            part.all.append(item)
            part.infeasible[item] = ("no generated vector runs this update on a header of the received frame in a "
                                     "frame not dropped (a header the control adds: its checksum comes from action "
                                     "arguments, which are not steered)")


def _written_fields(prog: ir.Program) -> set[tuple[str, str]]:
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    return {(s.target.instance, s.target.field_name) for body in bodies for s in ir.walk_stmts(body)
            if isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef)}


def _update_words(prog: ir.Program, inst: str, pseudo: str | None) -> list[Word]:
    """The 16-bit words an update covers (the header's fixed part but its checksum, the pseudo-header's
    addresses) that something in the program writes: an incremental update adds each as (old, new)."""
    ht = prog.instances[inst].type
    cs = ht.checksum
    assert cs is not None
    written = _written_fields(prog)
    fields = [(inst, f) for f in ht.fields if f.name != cs.field]
    if pseudo is not None and cs.kind == "l4" and cs.pseudo_header:
        pt = prog.instances[pseudo].type
        fields += [(pseudo, f) for n in ("src", "dst") if (f := pt.field(n)) is not None]
    out: set[tuple[str, int]] = set()
    for i, f in fields:
        if (i, f.name) in written:
            out |= {(i, 2 * w) for w in range(f.offset // 16, (f.offset + f.width - 1) // 16 + 1)}
    named = []
    for i, at in sorted(out):
        t = prog.instances[i].type
        names = [f.name for f in t.fields if _overlaps(f, (i, at, ""))]
        named.append((i, at, "/".join(names)))
    return named


def _changed_words(r: Any, data: bytes, words: list[Word], request: tuple[str, str | None]) -> set[Word]:
    """The words of `words` a run changed, where the update `request` changed the checksum (a UDP checksum of
    0 is left alone: nothing is added then)."""
    obs = r.observations
    if r.verdict == "drop" or len(r.data) != len(data) or not any(
            k == "checksum" and req == request and did for k, req, did in obs.get("trace", [])):
        return set()
    offs = obs.get("offsets", {})
    return {w for w in words if (off := offs.get(w[0])) is not None
            and data[off + w[1]:off + w[1] + 2] != r.data[off + w[1]:off + w[1] + 2]}


def _target_copy(ctx: ClassContext, r: Any) -> str:
    """The copy of the control a run went through as a target that copies the control per parse path and per
    split point makes it (gen_coverage.SplitPoints: the branches, and the actions or hit/miss of the tables,
    whose effects differ): the parse path and what was taken at each split point."""
    obs = r.observations
    split = ctx.per_path.split if ctx.per_path is not None else None
    ifs = split.ifs if split is not None else set()
    ctx_parts = [f"{sid.rsplit('/', 1)[-1]}:{'then' if b else 'else'}" for kind, sid, b in obs.get("trace", [])
                 if kind == "if" and sid in ifs]
    hits = obs.get("hit", {})
    for t, a in obs.get("tables", {}).items():
        if split is not None and t in split.actions:
            ctx_parts.append(f"{t}.{a}")
        if split is not None and t in split.hitmiss:
            ctx_parts.append(f"{t}:{'hit' if hits.get(t) else 'miss'}")
    return f"{path_key(obs.get('path', []))} [{' '.join(ctx_parts) or 'one copy'}]"


def _checksum_words(ctx: ClassContext, part: ClassCoverage, found: dict[str, list[Vector]],
                    changed: dict[str, set[Word]], words: dict[str, list[Word]],
                    updates: dict[str, tuple[str, str | None]]) -> None:
    """Per copy of an update the target makes, each word it covers changed by the control in a vector of that
    copy: the word's (old, new) step is in the sum only then (a target that drops it on one copy shows
    nowhere else)."""
    cap = _Budget(part, MAX_WORD_VECTORS)
    cands: dict[str, list[Vector]] = {}
    for name in sorted(found):
        v = found[name][0]
        r = ctx.run_with(v.control, v.packets[0].data, v.packets[0].port, {})
        coarse = f"{_target_copy(ctx, r)} stmt:{name.rsplit(' stmt:', 1)[1]}"
        cands.setdefault(coarse, []).extend(found[name])
    for coarse in sorted(cands):
        sid = coarse.rsplit(" stmt:", 1)[1]
        for w in words[sid]:
            item = f"{coarse} word {w[0]}[{w[1]}:{w[1] + 2}] ({w[2]}) changed"
            part.all.append(item)
            if w in changed.get(coarse, set()):
                part.covered.add(item)
                continue
            why = _word_vector(ctx, part, cap, item, coarse, w, cands[coarse], updates)
            if why is not None:
                part.infeasible[item] = why


def _word_vector(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, copy: str, w: Word,
                 cands: list[Vector], updates: dict[str, tuple[str, str | None]]) -> str | None:
    """A vector of `copy` whose control changes word `w`: the packet's word moved off the value the control
    writes there (the entries that matched it moved along), an action argument moved, or an entry added that
    writes the word; None when made."""
    where, sid = copy.rsplit(" stmt:", 1)
    request = updates[sid]
    why = "no generated vector reaches this copy's update with a checksum it changes"
    for v in cands[:MAX_WORD_CANDIDATES]:
        p = v.packets[0]
        if v.control.ops:
            continue
        r = ctx.run_with(v.control, p.data, p.port, {})
        off = r.observations.get("offsets", {}).get(w[0])
        if off is None or len(r.data) != len(p.data):
            continue
        why = "in this copy the word leaves as it came in (nothing the copy runs writes another value there)"
        out_w = int.from_bytes(r.data[off + w[1]:off + w[1] + 2], "big")
        tries = [t for x in WORD_XOR for kinds in REMATCH for t in [_moved_input(ctx, v, w, off, out_w ^ x, kinds)]
                 if t is not None]
        tries += _moved_args(ctx, v, r)
        tries += _added_entries(ctx, v, r, w)
        for state, data in tries:
            r2 = ctx.run_with(state, data, p.port, {})
            if (r2.verdict == "drop" or _target_copy(ctx, r2) != where
                    or not any(k == "stmt_checksum" and s2 == sid for k, s2, _req in r2.observations.get("trace", []))
                    or not _changed_words(r2, data, [w], request)):
                continue
            if not cap.take(item):
                return part.infeasible[item]
            ctx.emit(f"csum_word.{w[0]}.{w[1]}", int(v.provenance.get("path", 0)), state, data,
                     ["checksum_word"], p.port, {})
            part.covered.add(item)
            return None
    return why


def _added_entries(ctx: ClassContext, v: Vector, r: Any, w: Word) -> list[tuple[ControlState, bytes]]:
    """`v` with an entry added, matching the packet, to each applied table whose action writes a field of word
    `w` from a parameter: that field's argument is the value it has leaving, one bit in the word flipped."""
    prog, p = ctx.prog, v.packets[0]
    offs = r.observations.get("offsets", {})
    out: list[tuple[ControlState, bytes]] = []
    ht = prog.instances[w[0]].type
    for t in r.observations.get("tables", {}):
        table = prog.tables[t]
        match = _packet_match(ctx, table, p.data, offs)
        if match is None:
            continue
        for a in table.actions:
            action = prog.actions[a]
            for s in ir.walk_stmts(action.body):
                if not (isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef) and s.target.instance == w[0]
                        and s.target.group is None and isinstance(s.value, ParamRef)):
                    continue
                f = ht.field(s.target.field_name)
                names = [q.name for q in action.params]
                if f is None or s.value.name not in names or not _overlaps(f, w):
                    continue
                leaving = _bits(r.data, 8 * offs[w[0]] + f.offset, f.width)
                bit = f.offset + f.width - min(f.offset + f.width, 8 * w[1] + 16)  # the field's last bit in the word
                same = [e for e in v.control.entries if e.table == t]
                args = list(next((e.args for e in same if e.action == a), [0] * len(names)))
                args[names.index(s.value.name)] = leaving ^ (1 << bit)
                prio = max((e.priority for e in same), default=0) + 1 if table.uses_priority else 0
                e = EntryState(t, match, a, tuple(args), prio)
                # the tables keyed on the field find the entries they found before under its new value
                rest = tuple(_rekeyed(prog, x, w[0], f, leaving, leaving ^ (1 << bit))
                             for x in v.control.entries if not (x.table == t and x.match == match))
                out.append((replace(v.control, entries=(e, *rest)), p.data))
    return out


def _rekeyed(prog: ir.Program, e: EntryState, inst: str, f: ir.Field, before: int, after: int) -> EntryState:
    keys = prog.tables[e.table].keys
    match = tuple(_rematch(m, before, after, f.width) if isinstance(k.expr, ir.FieldRef) and k.expr.instance == inst
                  and k.expr.field_name == f.name else m for k, m in zip(keys, e.match, strict=True))
    return replace(e, match=match) if match != e.match else e


def _packet_match(ctx: ClassContext, table: ir.Table, data: bytes, offs: dict[str, int]) -> tuple[KeyElem, ...] | None:
    """A match for `table` on the packet's own key fields (as received), None when a key is not a header field."""
    out = []
    for k in table.keys:
        e = k.expr
        if not isinstance(e, ir.FieldRef) or e.group is not None or e.instance not in offs:
            return None
        f = ctx.prog.instances[e.instance].type.field(e.field_name)
        if f is None:
            return None
        val = _bits(data, 8 * offs[e.instance] + f.offset, f.width)
        kind = {"exact": "value", "lpm": "prefix", "ternary": "mask", "range": "range"}.get(k.kind)
        if kind is None:
            return None
        out.append(KeyElem(kind, val, {"value": 0, "prefix": f.width, "mask": (1 << f.width) - 1,
                                       "range": val}[kind]))
    return tuple(out)


def _moved_input(ctx: ClassContext, v: Vector, w: Word, off: int, new: int,
                 kinds: tuple[str, ...]) -> tuple[ControlState, bytes] | None:
    """`v` with the packet's word `w` set to `new` (a verified IPv4-style checksum of its header kept valid),
    and each entry whose key element of `kinds` matched a field in the word matching the new value instead."""
    p = v.packets[0]
    buf = bytearray(p.data)
    at = off + w[1]
    old = int.from_bytes(buf[at:at + 2], "big")
    if old == new:
        return None
    buf[at:at + 2] = new.to_bytes(2, "big")
    ht = ctx.prog.instances[w[0]].type
    cs = ht.checksum
    cf = ht.field(cs.field) if cs is not None and cs.kind == "ipv4_header" else None
    if cf is not None:
        cat = off + cf.offset // 8
        hc = int.from_bytes(buf[cat:cat + 2], "big")
        hc = ~ones_add(ones_add(~hc & 0xFFFF, ~old & 0xFFFF), new) & 0xFFFF
        buf[cat:cat + 2] = hc.to_bytes(2, "big")
    entries = []
    for e in v.control.entries:
        match = list(e.match)
        for k, key in enumerate(ctx.prog.tables[e.table].keys):
            f = ht.field(key.expr.field_name) if isinstance(key.expr, ir.FieldRef) and \
                key.expr.instance == w[0] and key.expr.group is None else None
            if f is None or not _overlaps(f, w) or match[k].kind not in kinds:
                continue
            before, after = (_bits(d, 8 * off + f.offset, f.width) for d in (p.data, buf))
            match[k] = _rematch(match[k], before, after, f.width)
        entries.append(replace(e, match=tuple(match)))
    return replace(v.control, entries=tuple(entries)), bytes(buf)


def _overlaps(f: ir.Field, w: Word) -> bool:
    return f.offset < 8 * w[1] + 16 and f.offset + f.width > 8 * w[1]


def _bits(data: bytes | bytearray, start: int, width: int) -> int:
    first, last = start // 8, (start + width + 7) // 8
    n = int.from_bytes(data[first:last], "big")
    return (n >> (8 * (last - first) - (start - 8 * first) - width)) & ((1 << width) - 1)


def _rematch(e: KeyElem, before: int, after: int, width: int) -> KeyElem:
    """Key element `e` moved from matching `before` to matching `after` (unchanged when it did not match)."""
    if e.kind == "value" and e.a == before:
        return KeyElem("value", after)
    if e.kind == "mask" and before & e.b == e.a:
        return KeyElem("mask", after & e.b, e.b)
    if e.kind == "prefix":
        mask = ((1 << width) - 1) ^ ((1 << (width - e.b)) - 1)
        if before & mask == e.a & mask:
            return KeyElem("prefix", after & mask, e.b)
    return e


def _moved_args(ctx: ClassContext, v: Vector, r: Any) -> list[tuple[ControlState, bytes]]:
    """`v` with one argument of an entry of a table that hit moved (a few bits in each of its 16-bit words)."""
    obs = r.observations
    ran = {(t, a) for t, a in obs.get("tables", {}).items() if obs.get("hit", {}).get(t)}
    out: list[tuple[ControlState, bytes]] = []
    entries = list(v.control.entries)
    for n, e in enumerate(entries):
        if (e.table, e.action) not in ran:
            continue
        params = ctx.prog.actions[e.action].params
        for j, a in enumerate(e.args):
            width = params[j].width if j < len(params) else 64
            for shift in range(0, width, 16):
                args = (*e.args[:j], a ^ (0x0101 << shift) & ((1 << width) - 1), *e.args[j + 1:])
                state = replace(v.control, entries=(*entries[:n], replace(e, args=args), *entries[n + 1:]))
                out.append((state, v.packets[0].data))
                if len(out) >= MAX_ARG_TRIES:
                    return out
    return out


def _edge(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, cands: list[Vector], inst: str,
          pseudo: str | None, used: set[str], target: int, copy: str | None,
          updates: dict[str, tuple[str, str | None]] | None = None) -> str | None:
    """Steer one of `cands` so the update writes `target`, emit it; None when covered, else why not."""
    if not cands:
        return "no generated vector reaches this copy's update"
    why = "no candidate runs the update"
    for v in cands:
        got = steer_update_result(ctx, v, inst, pseudo, used, target, changed=False)
        if got is None or got == "moved":
            why = "every vector running it changes the frame's length" if got == "moved" else why
            continue
        if isinstance(got, str):
            why = got
            continue
        r = ctx.run_with(v.control, got, v.packets[0].port, {})
        if copy is not None and copy not in _copy_items(ctx, r, updates or {}):
            why = "the steered packet took another copy"
            continue
        if not cap.take(item):
            return part.infeasible[item]
        label = f"{inst}.{target:04x}"
        ctx.emit(f"csum_copy.{label}", int(v.provenance.get("path", 0)), v.control, got, ["checksum_copy"],
                 v.packets[0].port, {})
        part.covered.add(item)
        return None
    return why


def _none(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, cands: list[Vector], inst: str,
          copy: str) -> str | None:
    """A packet of the copy whose UDP-style checksum is 0 ("none"): the update must leave it 0."""
    ht = ctx.prog.instances[inst].type
    cf = ht.field(ht.checksum.field) if ht.checksum is not None else None
    if not cands or cf is None:
        return "no generated vector reaches this copy's update"
    where = copy.rsplit(" stmt:", 1)[0]
    for v in cands:
        p = v.packets[0]
        off = ctx.run_with(v.control, p.data, p.port, {}).observations.get("offsets", {}).get(inst)
        if off is None:
            continue
        buf = bytearray(p.data)
        buf[off + cf.offset // 8:off + cf.offset // 8 + 2] = b"\0\0"
        r = ctx.run_with(v.control, bytes(buf), p.port, {})
        if r.verdict == "drop" or _copy_key(ctx, r) != where:
            continue
        if not cap.take(item):
            return part.infeasible[item]
        ctx.emit(f"csum_copy.{inst}.none", int(v.provenance.get("path", 0)), v.control, bytes(buf),
                 ["checksum_copy"], p.port, {})
        part.covered.add(item)
        return None
    return "with the checksum 0 the packet takes another copy or is dropped"


def _with_options(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, cands: list[Vector], inst: str,
                  pseudo: str | None, used: set[str], target: int) -> str | None:
    """A vector running the update with options in `inst` (added to one that runs it without), steered."""
    vl = ctx.prog.instances[inst].type.varlen
    assert vl is not None
    if not cands:
        return "no generated vector runs this update"
    grown: list[Vector] = []
    for v in cands:
        p = v.packets[0]
        at = _find_area(ctx, p.data, p.port, inst)
        if at is None:
            continue
        if at.n:
            grown.append(v)
            continue
        for n in OPTION_BYTES:
            rng = random.Random(f"{ctx.seed}/{v.name}/options/{n}")
            area = _tlv_fill(vl.tlv, n, rng) if vl.tlv is not None else bytes(n)
            data = None if area is None else _with_area(ctx, p.data, inst, at, area, False)
            if data is not None:
                grown.append(replace(v, name=f"{v.name}+options", packets=[PacketIn(p.port, data)]))
                break
    if not grown:
        return f"no vector running the update could be given {inst} options"
    why = _edge(ctx, part, cap, item, grown, inst, pseudo, used, target, None)
    return None if why is None else f"with {inst} options: {why}"


# --------------------------------------------------------------------------------------------- select bits

MAX_SELECT_VECTORS = 320
MAX_BASES = 6  # vectors through a case tried for one whose outcome the flipped value changes
MAX_PATH_VECTORS = 600


def _flip_bits(width: int, care: int) -> list[int]:
    bits = range(width) if width <= 8 else sorted({b for n in range(0, width, 8) for b in (n, min(n + 7, width - 1))})
    return [b for b in bits if care >> b & 1]


def _select_bits(ctx: ClassContext) -> None:
    part = ctx.classes["select_bits"]
    cap = _Budget(part, MAX_SELECT_VECTORS)
    prog = ctx.prog
    by_edge: dict[tuple[str, int], list[Vector]] = {}
    by_prefix: dict[tuple[str, int], dict[tuple[str, ...], list[Vector]]] = {}
    for v in ctx.vectors:
        pid = int(v.provenance.get("path", -1))
        if len(v.packets) != 1 or v.registers or not 0 <= pid < len(ctx.paths) or "truncated" in v.tags:
            continue
        steps = ctx.paths[pid].steps
        for k, step in enumerate(steps):
            if step.edge is not None and step.edge >= 0:
                got = by_edge.setdefault((step.state, step.edge), [])
                if len(got) < 4 * MAX_BASES:
                    got.append(v)
                pre = by_prefix.setdefault((step.state, step.edge), {}).setdefault(
                    tuple(s.state for s in steps[:k]), [])
                if len(pre) < MAX_BASES:
                    pre.append(v)
    for st in prog.parser.states.values():
        if not st.select:
            continue
        for ci, case in enumerate(st.cases):
            for j, (sel, e) in enumerate(zip(st.select, case.keyset, strict=True)):
                if e.kind not in ("value", "mask") or not isinstance(sel, ir.FieldRef):
                    continue
                width = sel.width
                care = (1 << width) - 1 if e.kind == "value" else e.b
                value = e.a & care
                bases = _flip_bases(ctx, by_edge.get((st.name, ci), []), st, ci)
                for b in _flip_bits(width, care):
                    item = f"{st.name}#case{ci}[{j}]:bit{b}_flipped"
                    part.all.append(item)
                    why = _flip_one(ctx, part, cap, item, bases, sel, value ^ (1 << b), st, ci)
                    if why is not None:
                        part.infeasible[item] = why
    _select_bits_per_path(ctx, by_prefix)


def _select_bits_per_path(ctx: ClassContext, by_prefix: dict[tuple[str, int], dict[tuple[str, ...], list[Vector]]]
                          ) -> None:
    """Each case's value with the first and last bit of each byte of its field flipped, on every parse path to
    the state (up to MAX_PATHS): the xdp target reads the select once per copy of the state (acl_firewall: the
    fragment header's next_hdr read as 7 bits in the copy under two VLAN tags survived; every flipped vector
    took the untagged copy). Items "STATE#caseN[J]:bitB_flipped via PATH"."""
    part = ctx.classes["select_bits"]
    cap = _Budget(part, MAX_PATH_VECTORS)
    plan: list[tuple[int, ir.ParserState, tuple[str, ...]]] = []
    for st in ctx.prog.parser.states.values():
        if not st.select or not any(isinstance(sel, ir.FieldRef) for sel in st.select):
            continue
        prefixes = {p for ci in range(len(st.cases)) for p in by_prefix.get((st.name, ci), {})}
        if len(prefixes) < 2:
            continue  # one path, one copy: the items per state above cover it
        plan += [(rank, st, pre) for rank, pre in enumerate(_path_prefixes(ctx.prog, list(prefixes)))]
    # rank by rank over the states, so the cap cuts the paths least likely to be copies of their own
    for _rank, st, pre in sorted(plan, key=lambda x: x[0]):
        via = path_key([*pre, st.name])
        for ci, case in enumerate(st.cases):
            bases = _flip_bases(ctx, by_prefix.get((st.name, ci), {}).get(pre, []), st, ci, pre)
            for j, (sel, e) in enumerate(zip(st.select, case.keyset, strict=True)):
                if e.kind not in ("value", "mask") or not isinstance(sel, ir.FieldRef):
                    continue
                care = (1 << sel.width) - 1 if e.kind == "value" else e.b
                for b in _flip_bits(max(sel.width, 9), care):  # the ends of each byte, also of a narrow field
                    if b >= sel.width:
                        continue
                    item = f"{st.name}#case{ci}[{j}]:bit{b}_flipped via {via}"
                    part.all.append(item)
                    why = _flip_one(ctx, part, cap, item, bases, sel, (e.a & care) ^ (1 << b), st, ci, pre)
                    if why is not None:
                        part.infeasible[item] = why


def _reaches(path: list[str], state: str, pre: tuple[str, ...] | None) -> bool:
    """The parse path went through `state` (after exactly the states `pre`, if given)."""
    if pre is None:
        return state in path
    return tuple(path[:len(pre) + 1]) == (*pre, state)


def _flip_bases(ctx: ClassContext, cands: list[Vector], st: ir.ParserState, ci: int,
                pre: tuple[str, ...] | None = None) -> list[tuple[Vector, object]]:
    """Vectors through the case (on the parse path `pre` to it, if given), with their oracle results; those that
    end in a forward first."""
    out: list[tuple[Vector, object]] = []
    for v in sorted(cands, key=lambda v: (v.expected[0].verdict != "forward", v.expected[0].verdict == "drop")):
        if len(out) >= MAX_BASES:
            break
        p = v.packets[0]
        r = ctx.run_with(v.control, p.data, p.port, {})
        path = r.observations.get("path", [])
        if _reaches(path, st.name, pre) and r.observations.get("parser_error") is None:
            out.append((v, r))
    return out


def _flip_one(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, bases: list[tuple[Vector, object]],
              sel: ir.FieldRef, value: int, st: ir.ParserState, ci: int,
              pre: tuple[str, ...] | None = None) -> str | None:
    inst = f"{sel.instance}[{sel.index}]" if isinstance(sel.index, int) else sel.instance

    def rewrite(v: Vector, r0: object) -> bytes | str:
        p = v.packets[0]
        data = _patch(ctx, p.data, p.port, {(inst, sel.field_name): value})
        return "the select field is not in a parsed header's fixed part" if data is None else data

    return emit_flip(ctx, part, cap, item, bases, rewrite, st, f"case{ci}.{sel.field_name}.{value:x}", pre)


def emit_flip(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, bases: list[tuple[Vector, object]],
              rewrite: Callable[[Vector, object], bytes | str], st: ir.ParserState, label: str,
              pre: tuple[str, ...] | None = None) -> str | None:
    """The first base whose packet, rewritten (`rewrite`: the bytes, or why it cannot be), still reaches `st` and
    ends otherwise than the base under the base's state, emitted as `select_bit.<st>.<label>`; else why not."""
    if not bases:
        return "no generated vector takes the case"
    why = "the flipped value ends like the case on every vector tried (the case's outcome does not depend on it)"
    for v, r0 in bases:
        p = v.packets[0]
        data = rewrite(v, r0)
        if isinstance(data, str):
            why = data
            continue
        r = ctx.run_with(v.control, data, p.port, {})
        if not _reaches(r.observations.get("path", []), st.name, pre):
            continue
        if (r.verdict, r.port, r.data) == (r0.verdict, r0.port, r0.data):  # type: ignore[attr-defined]
            continue
        if not cap.take(item):
            return part.infeasible[item]
        ctx.emit(f"select_bit.{st.name}.{label}", int(v.provenance.get("path", 0)), v.control, data,
                 ["select_bit"], p.port, {})
        part.covered.add(item)
        return None
    return why
