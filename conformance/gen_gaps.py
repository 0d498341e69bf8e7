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
- select_bits: each select case's value with one of its bits flipped (every bit of a field up to 8 bits, the
  first and last bit of each byte of a wider one), in a packet that reached the case under a control state
  where it ends differently from the flipped one: a target that masks the field short (an IPv6 version read
  as 3 bits takes version 14 for 6) routes the flipped packet as the case's, where the spec rejects it.

Items: "PATH [COPY] stmt:ID result=0x0000", "STATE#caseN[J]:bitB_flipped"; what no vector can reach is listed
as infeasible with the reason. Expected results are the oracle's.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from c3po_compiler import ir

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
from .model import PacketIn, Vector
from .tracing import stmt_id

__all__ = ["GAP_CLASSES", "gap_vectors"]

GAP_CLASSES = ("checksum_copies", "select_bits")
RESULTS = (0x0000, 0xFFFE)
MAX_SCAN = 1500  # generated vectors run to find, per copy, those that reach its update
MAX_CANDIDATES = 3
MAX_VECTORS = 200
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
    for v in ctx.vectors[:MAX_SCAN]:
        if len(v.packets) != 1 or v.registers:
            continue
        r = ctx.run_with(v.control, v.packets[0].data, v.packets[0].port, {})
        for item in sorted(_copy_items(ctx, r, updates)):
            got = found.setdefault(item, [])
            if len(got) < MAX_CANDIDATES:
                got.append(v)
            sid = item.rsplit(" stmt:", 1)[1]
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
    for sid in sorted(updates):
        if sid not in options:
            item = f"stmt:{sid}"
            part.all.append(item)
            part.infeasible[item] = ("no generated vector runs this update on a header of the received frame in a "
                                     "frame not dropped (a header the control adds: its checksum comes from action "
                                     "arguments, which are not steered)")


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
    if not bases:
        return "no generated vector takes the case"
    inst = f"{sel.instance}[{sel.index}]" if isinstance(sel.index, int) else sel.instance
    why = "the flipped value ends like the case on every vector tried (the case's outcome does not depend on it)"
    for v, r0 in bases:
        p = v.packets[0]
        data = _patch(ctx, p.data, p.port, {(inst, sel.field_name): value})
        if data is None:
            why = "the select field is not in a parsed header's fixed part"
            continue
        r = ctx.run_with(v.control, data, p.port, {})
        if not _reaches(r.observations.get("path", []), st.name, pre):
            continue
        if (r.verdict, r.port, r.data) == (r0.verdict, r0.port, r0.data):  # type: ignore[attr-defined]
            continue
        if not cap.take(item):
            return part.infeasible[item]
        ctx.emit(f"select_bit.{st.name}.case{ci}.{sel.field_name}.{value:x}", int(v.provenance.get("path", 0)),
                 v.control, data, ["select_bit"], p.port, {})
        part.covered.add(item)
        return None
    return why
