"""Generated control-plane sequences (issue 16, "control-plane state shapes"): vectors whose table state is
reached by insert / modify / delete / default ops rather than installed as an image, so conformance drives each
target's update path (kernel map updates and deletes, the NIC's C table API, P4Runtime writes) in the states
where table implementations go wrong:

- collision: two entries whose keys have the same home slot in the NIC target's hash table (its hash is
  replicated here: `nic_home_slot`), inserted in both orders, and the first deleted so the second must be
  found after the backward shift; other targets' hash tables (kernel maps, BMv2) are not replicated: the
  full-table shape is their many-keys case;
- zero_key: an entry whose key is all zeros (a NIC slot or kernel map key that is all zeros must still hold an
  entry), hit by a packet steered to those key values;
- full_table: the table filled to its declared size by inserts, the entry the packet hits inserted into the
  last free slot (tables of at most FILL_LIMIT entries: bounded);
- delete_reinsert: the packet's entry inserted, deleted and inserted again with other action data;
- delete_miss: the packet's entry inserted with another action than the default (and, in a priority table,
  below every other entry: the last of its sorted array) and deleted, so the packet misses: a NIC lookup that
  scanned one entry past the end (`i <= t->n`) found the deleted entry's copy left there and survived the sixth
  round on tlv_parser;
- modify: the packet's entry inserted, then modified to another action (or other arguments);
- priority_tie: in ternary/range tables, two overlapping entries of equal priority that both match: the one
  installed first wins (docs/spec-reference.md section 6, "ties: the entry installed first"; every target
  makes it exact, see targets/p4/driver.py for P4Runtime), then the winner deleted and re-inserted, so the
  other wins.

Every item is `<table>:<shape>`, reported per shape in the coverage dict under CLASS; an item no vector can
reach names why. Tags: `sequence` plus the shape. Expected results come from the oracle, over the image
`model.replay` computes.

The table-API shapes (class API_CLASS, tags `table_api` plus the shape; issue 16's "the nic table API") walk
the NIC's table implementations through the states their own code paths have, each step checked: the drivers
look an entry up by its match before each modify and delete (the NIC driver compares the handle its `_lookup`
finds with the one `_add` returned), so a modify that changes nothing (`_touch`) checks an entry is still
found, and the packet checks the end state:

- probe_chain, home_kept, wrap_around (exact/LPM tables, a hash with linear probing and backward-shift
  delete): chains of one home slot with the first or middle deleted, the last slot probed into and an entry
  at home there that must not move, entries wrapping from the last slot to slot 0 and shifting back across;
- lpm_lengths: /0 and full-length entries (the NIC's list of prefix lengths in use);
- full_cycle: the table at its size (up to API_FILL_LIMIT entries, and a vector line's worth), a handle freed
  and reused at full, the packet's entry deleted and re-inserted at full;
- priority_order (priority tables, a sorted array): inserts and deletes at the front, middle and end;
- default_op: the default set by ops, to an action with arguments the packet shows after a miss, then back to
  the spec's default;
- near_miss: entries one key bit away from the packet's, above it;
- key_wildcards (tables of two or more keys, one not exact): per key, the packet's entry with that key alone
  wildcarded, so the keys' masks (prefix lengths, ranges) differ from each other: a decode that reads a key's mask
  at another key's offset (the NIC's `_decode`: acl_firewall's `52u -> 20u`, the destination's mask read from
  the source's) turns the wildcard into a full mask and the packet misses; in priority tables, above it an
  entry one bit off in that key with the other keys wildcarded, which a mask read from a wildcard makes match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .gen_control import broad_match, entry_for, param_value
from .gen_coverage import ClassCoverage
from .model import ControlOp, ControlState, EntryState, ReplayError, replay
from .vectors import control_to_data

__all__ = ["API_CLASS", "API_SHAPES", "CLASS", "FILL_LIMIT", "SHAPES", "nic_home_slot", "sequence_vectors"]

CLASS = "control_plane_states"
SHAPES = ("collision", "zero_key", "full_table", "delete_reinsert", "delete_miss", "modify", "priority_tie")
API_CLASS = "table_api_shapes"
API_SHAPES = ("probe_chain", "home_kept", "wrap_around", "lpm_lengths", "full_cycle", "priority_order", "default_op",
              "near_miss", "key_wildcards")
FILL_LIMIT = 256  # tables filled to their size only up to this many entries
API_FILL_LIMIT = 1024  # the full_cycle bound: a last handle and free-list slot (BMv2 installs ~1k entries in its budget)
DEFAULT_TRIES = 40  # entries of generated vectors tried as the default_op shape's action
LINE_BUDGET = 800_000  # bytes of inserts in one vector: vector files hold a vector per line, 1 MiB at most
MAX_TABLES = 12  # tables per program that get sequences
COLLISION_TRIES = 1 << 20  # candidate keys tried for a NIC home-slot collision
HOME_TRIES = 1 << 21  # candidate keys tried for the home slots of the table-API shapes

M64 = (1 << 64) - 1


# ------------------------------------------------------------------------ the NIC target's hash (c3po_nic.h)


def _mix(h: int, v: int) -> int:
    return ((h ^ v) * 0x9E3779B97F4A7C15) & M64


def _fmix(h: int) -> int:
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def nic_capacity(table: ir.Table) -> int:
    """Hash slots of a NIC table: the smallest power of two at least twice its size (targets/nic/emitter.py)."""
    cap = 2
    while cap < 2 * table.size:
        cap *= 2
    return cap


def nic_home_slot(table: ir.Table, match: tuple[KeyElem, ...]) -> int | None:
    """The slot an exact or LPM entry of `table` is first tried in by the NIC target's linear probing (the
    template's `t_<t>_hash_entry`), or None for priority tables (a sorted array: nothing hashes)."""
    if table.uses_priority or not table.keys:
        return None
    plen, values = _hashed_values(table, match)
    return _hash(table, plen, values) & (nic_capacity(table) - 1)


def _hashed_values(table: ir.Table, match: tuple[KeyElem, ...]) -> tuple[int, list[int]]:
    """What the NIC hash of an entry reads: the LPM key's prefix length and each key's (masked) value."""
    plen = 0
    values = []
    for k, m in zip(table.keys, match, strict=True):
        if k.kind == "lpm":
            plen = m.b if m.kind == "prefix" else 0 if m.kind == "any" else k.width
            mask = ((1 << plen) - 1) << (k.width - plen) if plen else 0
            values.append(m.a & mask)
        else:
            values.append(m.a & ((1 << k.width) - 1))
    return plen, values


def _hash(table: ir.Table, plen: int, values: list[int]) -> int:
    if len(table.keys) == 1 and table.keys[0].width <= 56:  # hash_direct
        return _fmix(((plen << 56) ^ values[0]) & M64)
    h = plen
    for k, v in zip(table.keys, values, strict=True):
        h = _mix(_mix(h, v >> 64), v & M64) if k.width > 64 else _mix(h, v)
    return _fmix(h)


# ------------------------------------------------------------------------------------------- entry shapes


def _entry(table: ir.Table, keyvals: tuple[int, ...], action: str, prog: ir.Program, salt: int = 0) -> EntryState:
    """`entry_for`'s entry, priority 0 where the table takes none, arguments varied by `salt` (so a stale
    action datum shows)."""
    e = entry_for(table, keyvals, action, prog)
    args = tuple((param_value(action, p) + salt) & ((1 << p.width) - 1)
                 for p in prog.actions[action].params)
    return EntryState(e.table, e.match, action, args, e.priority if table.uses_priority else 0)


def _other_keys(table: ir.Table, keyvals: tuple[int, ...], count: int) -> list[tuple[int, ...]] | str:
    """`count` key tuples whose `_entry` does not match `keyvals` (nor each other's): the first key varied
    inside what its entry matches on; or why the key has too few values."""
    k = table.keys[0]
    w = k.width
    if k.kind == "lpm":
        plen = max(1, w - 8) if w > 8 else w
        if count >= 1 << plen:
            return f"key '{k.text}' has {1 << plen} prefixes of the generated length, fewer than {count + 1}"
        base = keyvals[0] >> (w - plen)
        return [(((base + i + 1) % (1 << plen)) << (w - plen), *keyvals[1:]) for i in range(count)]
    step = 3 if k.kind == "range" else 1  # range entries cover value-1 .. value+1
    if step * count + 2 >= 1 << w:
        return f"key '{k.text}' (bit<{w}>) has too few values for {count + 1} distinct entries"
    return [((keyvals[0] + step * (i + 1)) % (1 << w), *keyvals[1:]) for i in range(count)]


def _two_actions(table: ir.Table, prog: ir.Program) -> tuple[str, str] | None:
    """An action for the packet's entry and another to change it to (the same one with other arguments when
    the table has a single action with parameters)."""
    acts = [a for a in table.actions if a in prog.actions]
    if not acts:
        return None
    with_params = [a for a in acts if prog.actions[a].params]
    first = with_params[0] if with_params else acts[0]
    # a table with one action and no parameters: a modify to the same action still goes through the update
    # path, though a target ignoring it would pass
    return first, next((a for a in acts if a != first), first)


def _insert(e: EntryState) -> ControlOp:
    return ControlOp("insert", e.table, e.match, e.action, e.args, e.priority)


def _delete(e: EntryState) -> ControlOp:
    return ControlOp("delete", e.table, e.match, "", (), e.priority)


# -------------------------------------------------------------------------------------------- the pass


class _Emitter:
    """Emits one table's sequence vectors with the packet that reaches it (or another), and counts a shape
    covered under its coverage part when the packet hit the table."""

    def __init__(self, ctx: Any, part: ClassCoverage, t: ir.Table, own: tuple[Any, ...], tags: tuple[str, ...]):
        self.ctx, self.part, self.t, self.own, self.tags = ctx, part, t, own, tags

    def __call__(self, shape: str, label: str, ops: list[ControlOp], pkt: tuple[Any, ...] | None = None,
                 entries: tuple[EntryState, ...] = (), miss: bool = False) -> None:
        p_pid, p_data, p_port, p_control, p_regs = pkt or self.own
        state = ControlState(p_control.entries + entries, p_control.defaults, tuple(ops))
        item = f"{self.t.name}:{shape}"
        try:
            replay(self.ctx.prog, state)
        except ReplayError as exc:  # e.g. a generated key that is one of the spec's constant entries
            self.part.infeasible.setdefault(item, f"the sequence does not apply: {exc}")
            return
        r = self.ctx.emit(f"seq.{self.t.name}.{label}", p_pid, state, p_data, [*self.tags, shape], p_port, p_regs)
        hit = r.observations.get("hit", {}).get(self.t.name)
        if hit is not None and hit != miss:  # `miss`: the shape is covered by a packet that misses the table
            self.part.covered.add(item)
            self.part.infeasible.pop(item, None)


def sequence_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext (`prog`, `first_apply`, `emit`, `classes`): adds the
    vectors and the coverage parts CLASS and API_CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    api_part = ctx.classes.setdefault(API_CLASS, ClassCoverage())
    tables = [t for t in prog.tables.values() if t.keys][:MAX_TABLES]
    for t in tables:
        items = {s: f"{t.name}:{s}" for s in SHAPES if s != "priority_tie" or t.uses_priority}
        if t.uses_priority:
            items.pop("collision")
        api_items = [f"{t.name}:{s}" for s in _api_shapes_of(t)]
        part.all += list(items.values())
        api_part.all += api_items
        first = ctx.first_apply.get(t.name)
        acts = _two_actions(t, prog)
        why = ("no generated packet reaches the table" if first is None
               else "the table has no action an entry could name" if acts is None else None)
        if why is not None:
            for item in [*items.values(), *api_items]:
                (part if item in items.values() else api_part).infeasible[item] = why
            continue
        assert first is not None and acts is not None
        pid, data, port, control, regs, keyvals = first
        base = ControlState(tuple(e for e in control.entries if e.table != t.name),
                            tuple(d for d in control.defaults if d[0] != t.name))
        a1, a2 = acts
        hit = _entry(t, keyvals, a1, prog)
        emit = _Emitter(ctx, part, t, (pid, data, port, base, regs), ("sequence",))

        emit("delete_reinsert", "delete_reinsert",
             [_insert(hit), _delete(hit), _insert(_entry(t, keyvals, a1, prog, salt=1))])
        _delete_miss(t, keyvals, prog, emit, part)
        changed = _entry(t, keyvals, a2, prog, salt=2)
        emit("modify", "modify",
             [_insert(hit), ControlOp("modify", t.name, hit.match, changed.action, changed.args, hit.priority)])
        _zero_key(ctx, t, a1, emit, part)
        _full_table(t, keyvals, hit, a1, prog, emit, part)
        if t.uses_priority:
            _priority_tie(t, keyvals, hit, a2, prog, emit)
        else:
            _collision(t, keyvals, hit, a2, prog, emit, part)
        api_emit = _Emitter(ctx, api_part, t, (pid, data, port, base, regs), ("table_api",))
        _api_shapes(api_emit, api_part, keyvals, hit, changed, a2)
        _default_op(api_emit, api_part)
    for p in (part, api_part):
        for item in p.all:
            if item not in p.covered and item not in p.infeasible:
                p.infeasible[item] = "the packet did not hit the table's entry (an earlier table or condition)"


def _delete_miss(t: ir.Table, keyvals: tuple[int, ...], prog: ir.Program, emit: Any, part: ClassCoverage) -> None:
    """The packet's entry, with an action that is not the default's where there is one and priority 1 (the lowest),
    inserted and deleted: the packet must miss (covered only when it does: a constant entry can hold its key)."""
    acts = [a for a in t.actions if a in prog.actions]
    action = next((a for a in acts if a != t.default.action), acts[0])
    e = _entry(t, keyvals, action, prog, salt=3)
    if t.uses_priority:
        e = EntryState(e.table, e.match, e.action, e.args, 1)  # P4Runtime takes no priority 0
    item = f"{t.name}:delete_miss"
    part.infeasible[item] = "a constant entry (or an earlier table) decides the packet with the entry deleted"
    emit("delete_miss", "delete_miss", [_insert(e), _delete(e)], miss=True)


def _zero_key(ctx: Any, t: ir.Table, action: str, emit: Any, part: ClassCoverage) -> None:
    zeros = tuple(0 for _ in t.keys)
    try:  # the other classes' packet steering (gen_classes): a packet reaching the table with these values
        from .gen_classes import _steer

        got = _steer(ctx, t.name, zeros, "sequence")
    except (ImportError, AttributeError) as exc:
        got = f"packet steering is unavailable ({exc})"
    if isinstance(got, str):
        part.infeasible[f"{t.name}:zero_key"] = got
        return
    pid, data, port, control, regs = got
    base = ControlState(tuple(e for e in control.entries if e.table != t.name),
                        tuple(d for d in control.defaults if d[0] != t.name))
    zero = _entry(t, zeros, action, ctx.prog)
    emit("zero_key", "zero_key", [_insert(zero)], (pid, data, port, base, regs))


def _fillers(t: ir.Table, keyvals: tuple[int, ...], action: str, prog: ir.Program,
             limit: int = FILL_LIMIT) -> list[EntryState] | str:
    """Entries that, with the packet's, fill the table to its declared size (below the packet's entry in
    priority tables: a filler never wins), or why the table is not filled."""
    if t.size > limit:
        return f"size {t.size} > {limit}: not filled (bounded)"
    free = t.size - len(t.entries)
    if free < 1:
        return "the constant entries fill the table"
    others = _other_keys(t, keyvals, free - 1)
    if isinstance(others, str):
        return others
    fillers = [_entry(t, k, action, prog, salt=3) for k in others]
    if t.uses_priority:
        fillers = [EntryState(e.table, e.match, e.action, e.args, 1) for e in fillers]
    return fillers


def _full_table(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, action: str, prog: ir.Program,
                emit: Any, part: ClassCoverage) -> None:
    fillers = _fillers(t, keyvals, action, prog)
    if isinstance(fillers, str):
        part.infeasible[f"{t.name}:full_table"] = fillers
        return
    emit("full_table", "full_table", [*map(_insert, fillers), _insert(hit)])


def _broad(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, other: str, prog: ir.Program) -> EntryState | None:
    """An entry of action `other` that overlaps the packet's (it matches the packet too) with the packet entry's
    priority, or None when the keys allow none (exact keys only)."""
    broad = EntryState(t.name, broad_match(t, keyvals), other, _entry(t, keyvals, other, prog, salt=4).args,
                       hit.priority)
    if broad.match == hit.match:  # e.g. exact keys only: no distinct overlapping entry
        broad = EntryState(t.name, tuple(KeyElem("any") if k.kind != "exact" else m
                                         for k, m in zip(t.keys, hit.match, strict=True)),
                           broad.action, broad.args, broad.priority)
    return None if broad.match == hit.match else broad


def _priority_tie(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, other: str, prog: ir.Program,
                  emit: Any) -> None:
    broad = _broad(t, keyvals, hit, other, prog)
    if broad is None:
        return
    emit("priority_tie", "tie_first_installed", [_insert(hit), _insert(broad)])
    emit("priority_tie", "tie_reinserted_last", [_insert(hit), _insert(broad), _delete(hit), _insert(hit)])


def _collision(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, other: str, prog: ir.Program,
               emit: Any, part: ClassCoverage) -> None:
    """A second key with the NIC home slot of the packet's entry: in front of it (the lookup must probe past
    it), behind it, and deleted from in front of it (the backward shift must move the packet's entry)."""
    item = f"{t.name}:collision"
    home = nic_home_slot(t, hit.match)
    if t.size - len(t.entries) < 2:
        part.infeasible[item] = "the table has room for fewer than two entries"
        return
    j = max(range(len(t.keys)), key=lambda i: t.keys[i].width)  # the widest key has the most values to try
    k = t.keys[j]
    w = k.width
    plen = max(1, w - 8) if k.kind == "lpm" and w > 8 else w
    unit = 1 << (w - plen) if k.kind == "lpm" else 1
    span = 1 << plen if k.kind == "lpm" else 1 << w
    found: EntryState | None = None
    cands: Iterable[tuple[int, ...]]
    if home is None:  # a priority table hashes nothing: any other key will do
        cands = ((*keyvals[:j], (keyvals[j] + i * unit) % (1 << w), *keyvals[j + 1:])
                 for i in range(1, min(COLLISION_TRIES, span)))
    else:
        cands = _keys_by_home(t, keyvals, other, prog, {home: 1}, {hit.match}, COLLISION_TRIES)[home]
    for cand in cands:
        e = _entry(t, cand, other, prog, salt=5)
        if e.match != hit.match and nic_home_slot(t, e.match) == home:
            found = e
            break
    if found is None:
        part.infeasible[item] = f"no other value of key '{k.text}' has the home slot of the packet's entry"
        return
    emit("collision", "collision_probed", [_insert(found), _insert(hit)])
    emit("collision", "collision_shifted", [_insert(found), _insert(hit), _delete(found)])
    emit("collision", "collision_behind", [_insert(hit), _insert(found), ControlOp(
        "modify", t.name, found.match, hit.action, hit.args, 0)])


# ------------------------------------------------------------------------------- the table API's own shapes


def _touch(e: EntryState) -> ControlOp:
    """A modify that changes nothing: each target's driver first finds the entry by its match (the NIC's
    `_lookup`, checked against the handle its add returned), so the op checks the entry is still found."""
    return ControlOp("modify", e.table, e.match, e.action, e.args, e.priority)


def _keys_by_home(t: ir.Table, keyvals: tuple[int, ...], action: str, prog: ir.Program, wants: dict[int, int],
                  avoid: set[tuple[KeyElem, ...]], tries: int = HOME_TRIES) -> dict[int, list[tuple[int, ...]]]:
    """Key tuples whose entries (`entry_for`'s match) have the given NIC home slots, up to wants[slot] of each:
    the widest key varied in steps its entry tells apart, the others as the packet has them; matches in
    `avoid` (the packet's, the constant entries') skipped."""
    j = max(range(len(t.keys)), key=lambda i: t.keys[i].width)  # the widest key has the most values to try
    k = t.keys[j]
    w = k.width
    plen = max(1, w - 8) if k.kind == "lpm" and w > 8 else w
    unit = 1 << (w - plen) if k.kind == "lpm" else 1
    pl, values = _hashed_values(t, entry_for(t, keyvals, action, prog).match)
    mask = nic_capacity(t) - 1
    need = {s: n for s, n in wants.items() if n > 0}
    found: dict[int, list[tuple[int, ...]]] = {s: [] for s in wants}
    for i in range(1, min(tries, 1 << plen)):
        v = (keyvals[j] + i * unit) % (1 << w)
        values[j] = v & (((1 << plen) - 1) << (w - plen)) if k.kind == "lpm" else v
        s = _hash(t, pl, values) & mask
        if need.get(s, 0) > 0:
            cand = (*keyvals[:j], v, *keyvals[j + 1:])
            if entry_for(t, cand, action, prog).match in avoid:
                continue
            found[s].append(cand)
            need[s] -= 1
            if need[s] == 0:
                del need[s]
                if not need:
                    break
    return found


def _api_shapes_of(t: ir.Table) -> list[str]:
    """The API_SHAPES a table has: the hash shapes for an exact/LPM table, priority_order for a priority one."""
    wild = ["key_wildcards"] if len(t.keys) >= 2 and any(k.kind != "exact" for k in t.keys) else []
    if t.uses_priority:
        return ["full_cycle", "priority_order", "default_op", "near_miss", *wild]
    lpm = any(k.kind == "lpm" for k in t.keys)
    return [s for s in API_SHAPES if s not in ("priority_order", "key_wildcards") and (lpm or s != "lpm_lengths")] + wild


def _api_shapes(emit: _Emitter, part: ClassCoverage, keyvals: tuple[int, ...], hit: EntryState,
                changed: EntryState, other: str) -> None:
    """The API_SHAPES of one table: the packet's entry `hit` ends changed to `changed` (a modify through the
    table API, of an entry the ops before may have moved), so the packet checks the last step, and the
    drivers' lookups before each modify and delete check every step before it."""
    t, prog = emit.t, emit.ctx.prog
    change = ControlOp("modify", t.name, hit.match, changed.action, changed.args, hit.priority)
    _full_cycle(t, keyvals, hit, change, prog, emit, part)
    _near_miss(t, keyvals, hit, prog, emit, part)
    if "key_wildcards" in _api_shapes_of(t):
        _key_wildcards(t, keyvals, hit, prog, emit, part)
    if t.uses_priority:
        _priority_order(t, keyvals, hit, other, prog, emit, part)
    else:
        _probe_chains(t, keyvals, hit, changed, change, prog, emit, part)
        if "lpm_lengths" in _api_shapes_of(t):
            _lpm_lengths(t, keyvals, hit, prog, emit)


def _full_cycle(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, change: ControlOp, prog: ir.Program,
                emit: _Emitter, part: ClassCoverage) -> None:
    """The table filled to its size (its last free slot by an insert op), then at full: a filler deleted and
    re-inserted (the handle just freed is the one reused), the packet's entry deleted and re-inserted, and
    modified."""
    op_bytes = len(json.dumps(control_to_data(ControlState(ops=(_insert(hit),)), prog)["ops"][0])) + 2
    limit = min(API_FILL_LIMIT, LINE_BUDGET // op_bytes)  # the vector is one line of a JSON Lines file
    fillers = _fillers(t, keyvals, hit.action, prog, limit)
    if isinstance(fillers, str):
        part.infeasible[f"{t.name}:full_cycle"] = fillers if limit == API_FILL_LIMIT or t.size <= limit else (
            f"size {t.size}: its inserts ({op_bytes} bytes each) would not fit one vector line (bounded)")
        return
    ops = [_insert(hit)]
    if fillers:
        ops += [_delete(fillers[0]), _touch(hit), _insert(fillers[0])]
    # the fillers installed as the state's entries (through the same `_add` on the NIC; a bulk image where a
    # target has one), the last free slot and the rest by ops
    emit("full_cycle", "full_cycle", [*ops, _delete(hit), _insert(hit), change], entries=tuple(fillers))


def _probe_chains(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, changed: EntryState, change: ControlOp,
                  prog: ir.Program, emit: _Emitter, part: ClassCoverage) -> None:
    """The NIC hash's linear probing and backward-shift delete (targets/nic: `_add`, `_find`, `_delete`):
    - probe_chain: three entries with the packet entry's home slot h (at h, h+1, h+2), the first or the middle
      deleted (the others shift back, each checked by a lookup), the packet's entry deleted from the front and
      re-inserted behind;
    - home_kept: two entries with home C-2 (the second probes to the last slot, C-1, then shifts back when the
      first is deleted), then an entry in its own home slot C-1 right after a deleted entry: it must not move
      (every bit of C-1 is set, so a probe or home computed under a wrong mask goes elsewhere);
    - wrap_around: two entries with the last slot as home (the second wraps to slot 0) and one with home 0,
      the first deleted: both shift back across the end of the array."""
    cap = nic_capacity(t)
    home = nic_home_slot(t, hit.match)
    assert home is not None
    wants: dict[int, int] = {}
    for slot, n in ((home, 2), (cap - 1, 2), (cap - 2, 2), (0, 1)):
        wants[slot] = wants.get(slot, 0) + n
    found = _keys_by_home(t, keyvals, hit.action, prog, wants, {hit.match, *(tuple(e.match) for e in t.entries)})
    room = t.size - len(t.entries)

    def take(slot: int, count: int) -> list[EntryState] | None:
        if len(found[slot]) < count:
            return None
        got, found[slot] = found[slot][:count], found[slot][count:]
        return [_entry(t, kv, hit.action, prog, salt=7 + i) for i, kv in enumerate(got)]

    k = t.keys[max(range(len(t.keys)), key=lambda i: t.keys[i].width)].text
    chain, kept, wrap = take(home, 2), take(cap - 2, 2), take(cap - 1, 2)
    zero = take(0, 1)
    plan: list[tuple[str, list[EntryState] | None, int]] = [
        ("probe_chain", chain, 3), ("home_kept", None if kept is None or wrap is None else [*kept, wrap[0]], 4),
        ("wrap_around", None if wrap is None or zero is None else [*wrap, *zero], 4)]
    for shape, keys, size in plan:
        if keys is None:
            part.infeasible[f"{t.name}:{shape}"] = (f"too few values of key '{k}' (of {HOME_TRIES} tried) have the "
                                                    f"home slots {shape} needs in the {cap}-slot hash")
        elif room < size:
            part.infeasible[f"{t.name}:{shape}"] = f"the table has room for fewer than {size} entries"
        elif shape == "probe_chain":
            a, b = keys
            emit(shape, "chain_first_deleted", [*map(_insert, (a, b, hit)), _delete(a), _touch(b), change])
            emit(shape, "chain_middle_deleted", [*map(_insert, (a, b, hit)), _delete(b), _touch(a), _delete(a),
                                                 change])
            emit(shape, "chain_front_reinserted", [*map(_insert, (hit, a, b)), _delete(hit), _touch(a), _touch(b),
                                                   _insert(changed)])
        elif shape == "home_kept":
            p1, p2, q = keys
            emit(shape, "home_kept_last_slot", [*map(_insert, (hit, p1, p2)), _touch(p2), _delete(p1), _touch(p2),
                                                _insert(q), _delete(p2), _touch(q), change])
        else:
            w1, w2, z = keys
            emit(shape, "wrap_around", [*map(_insert, (hit, w1, w2, z)), _touch(w2), _touch(z), _delete(w1),
                                        _touch(w2), _touch(z), _delete(w2), _touch(z), change])


def _priority_order(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, other: str, prog: ir.Program,
                    emit: _Emitter, part: ClassCoverage) -> None:
    """The NIC's sorted array of a priority table (`_add` inserts by priority, `_delete` closes the gap): an
    overlapping entry below the packet's, entries inserted at the end, the front (the packet's) and the middle,
    deleted from the end, the front and the middle (each remaining one looked up), then the packet's entry
    modified (its own action, other arguments: the overlapping entry has the other action); and the packet's
    entry deleted last, so the overlapping one wins."""
    item = f"{t.name}:priority_order"
    broad = _broad(t, keyvals, hit, other, prog)
    others = _other_keys(t, keyvals, 3)
    why = ("no distinct entry overlaps the packet's (exact keys only)" if broad is None
           else others if isinstance(others, str)
           else "the table has room for fewer than 4 entries" if t.size - len(t.entries) < 4 else None)
    if why is not None:
        part.infeasible[item] = why
        return
    assert broad is not None and not isinstance(others, str)
    p = hit.priority
    low = EntryState(broad.table, broad.match, broad.action, broad.args, p - 5)
    f1, f2, f3 = (EntryState(e.table, e.match, e.action, e.args, prio)
                  for e, prio in zip((_entry(t, kv, hit.action, prog, salt=3) for kv in others), (p - 9, p - 3, p + 10),
                                     strict=True))
    ops = [*map(_insert, (low, f1, hit)), _touch(low), _delete(f1), _insert(f2), _insert(f3), _touch(low),
           _delete(f3), _touch(hit), _delete(f2), _touch(low)]  # at most 4 entries at once
    again = ControlOp("modify", t.name, hit.match, hit.action, _entry(t, keyvals, hit.action, prog, salt=11).args,
                      hit.priority)  # its own action (the overlapping entry has the other), other arguments
    emit("priority_order", "priority_order", [*ops, again])
    emit("priority_order", "priority_order_fallback", [*ops, again, _delete(hit), _touch(low)])


def _lpm_lengths(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, prog: ir.Program, emit: _Emitter) -> None:
    """The prefix lengths an LPM table tries, longest first (the NIC keeps the list of lengths in use, rebuilt
    as a length gains its first entry or loses its last): a /0 entry alone once the packet's is deleted, a /0
    entry below the packet's, and a full-length entry above it. Their actions are picked so that the packet
    ends otherwise than under its own entry (as far as the table's actions allow), so a length tried out of
    order, or left out, shows."""
    j = next(i for i, k in enumerate(t.keys) if k.kind == "lpm")
    w = t.keys[j].width

    def at(elem: KeyElem) -> tuple[KeyElem, ...]:
        return (*hit.match[:j], elem, *hit.match[j + 1:])

    zero = _unlike(emit, keyvals, hit, at(KeyElem("any")), hit.priority, 9)
    full = _unlike(emit, keyvals, hit, at(KeyElem("prefix", keyvals[j], w)), hit.priority, 10)
    if hit.match[j] != zero.match[j]:
        emit("lpm_lengths", "lpm_zero_length", [_insert(hit), _insert(zero), _delete(hit), _touch(zero)])
        emit("lpm_lengths", "lpm_zero_below", [_insert(zero), _insert(hit), _touch(zero)])
    if hit.match[j] != full.match[j]:
        emit("lpm_lengths", "lpm_full_length", [_insert(hit), _insert(full), _touch(hit)])


def _default_op(emit: _Emitter, part: ClassCoverage) -> None:
    """The default action set by an op (the NIC's `_set_default`, with its arguments) to what an entry a
    generated vector's packet hit does, that entry left out: the packet misses the table and goes on as if it
    had hit, the tables after it (installed for those arguments) showing them: a vector is taken only where the
    action with zeroed arguments (or, without parameters, the spec's default) ends otherwise. Then the spec's
    default restored by a second op, and the packet misses under it."""
    t, ctx = emit.t, emit.ctx
    item = f"{t.name}:default_op"

    def outcome(control: ControlState, v: Any) -> tuple[Any, ...]:
        r = ctx.run_with(control, v.packets[0].data, v.packets[0].port, v.registers)
        return r.verdict, r.port, r.data, r.observations.get("hit", {}).get(t.name)

    hits = [v for v in ctx.vectors
            if not v.control.ops and len(v.packets) == 1 and v.expected[0].observations.get("hit", {}).get(t.name)]
    # entries whose action takes arguments first: arguments set with a default are what is least tested
    candidates = sorted(((v, e) for v in hits for e in v.control.entries if e.table == t.name and e.action in t.actions),
                        key=lambda ve: not ctx.prog.actions[ve[1].action].params)[:DEFAULT_TRIES]
    spec = ControlOp("default", t.name, action=t.default.action, args=tuple(t.default.args))
    for v, e in candidates:
        exp = v.expected[0]
        rest = ControlState(tuple(x for x in v.control.entries if x is not e), v.control.defaults)
        params = ctx.prog.actions[e.action].params
        as_hit = ControlOp("default", t.name, action=e.action, args=e.args)
        other = ControlOp("default", t.name, action=e.action, args=tuple(0 for _ in params)) if params else spec
        if (outcome(ControlState(rest.entries, rest.defaults, (as_hit,)), v) == (exp.verdict, exp.port, exp.data, False)
                and outcome(ControlState(rest.entries, rest.defaults, (other,)), v)[:3] != (exp.verdict, exp.port,
                                                                                             exp.data)):
            pkt = (v.provenance.get("path", 0), v.packets[0].data, v.packets[0].port, rest, v.registers)
            emit("default_op", "default_as_hit", [as_hit], pkt, miss=True)
            emit("default_op", "default_restored", [as_hit, spec], pkt, miss=True)
            return
    part.infeasible[item] = (f"no entry of the table in the generated vectors (of {len(candidates)} tried) does "
                             "what the table's default, or its action with zeroed arguments, would not")


def _outcome(emit: _Emitter, e: EntryState) -> tuple[Any, ...]:
    """How the table's packet ends with `e` the table's only entry (the oracle)."""
    _, data, port, base, regs = emit.own
    r = emit.ctx.run_with(ControlState(base.entries, base.defaults, (_insert(e),)), data, port, regs)
    return r.verdict, r.port, r.data


def _unlike(emit: _Emitter, keyvals: tuple[int, ...], hit: EntryState, match: tuple[KeyElem, ...], priority: int,
            salt: int) -> EntryState:
    """An entry with this match and priority whose action makes the packet end otherwise than the packet's own
    entry does, where the table's actions allow (else its last action)."""
    t, prog = emit.t, emit.ctx.prog
    mine = _outcome(emit, hit)
    cands = []
    for a in t.actions:
        if a in prog.actions:
            e = _entry(t, keyvals, a, prog, salt=salt)
            cands.append(EntryState(t.name, match, e.action, e.args, priority))
    return next((c for c in cands if _outcome(emit, c) != mine), cands[-1])


def _near_miss(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, prog: ir.Program, emit: _Emitter,
               part: ClassCoverage) -> None:
    """Entries one bit away from the packet's key (each key's top and bottom bit; a range key's top bit only,
    its entry spans the values next to it), installed through the table API above the packet's entry in
    priority, with an action that would end the packet otherwise: a key decoded with a bit of its value or mask
    lost matches them (or, in a hash table, makes them the packet's entry again and the insert is refused)."""
    room = t.size - len(t.entries) - 1
    matches: list[tuple[KeyElem, ...]] = []
    for i, k in enumerate(t.keys):
        for bit in dict.fromkeys([k.width - 1] if k.kind == "range" else [k.width - 1, 0]):
            kv = list(keyvals)
            kv[i] ^= 1 << bit
            m = entry_for(t, tuple(kv), hit.action, prog).match
            if m != hit.match and m not in matches:
                matches.append(m)
    if room < 1 or not matches:
        part.infeasible[f"{t.name}:near_miss"] = ("the table has no room beside the packet's entry" if room < 1
                                                  else "no key has a bit that tells entries apart")
        return
    prio = hit.priority + 20 if t.uses_priority else 0
    near = [_unlike(emit, keyvals, hit, m, prio, 12) for m in matches[:room]]
    emit("near_miss", "near_miss", [*map(_insert, near), _insert(hit), _touch(hit)])


def _one_bit_off(k: ir.TableKey, v: int) -> KeyElem:
    """A match of key `k` alone (full mask, full length, one value) that the value `v` misses by its top bit."""
    top = v ^ (1 << (k.width - 1))
    if k.kind == "lpm":
        return KeyElem("prefix", top, k.width)
    if k.kind == "range":
        return KeyElem("range", top, top)
    return KeyElem("value", top) if k.kind == "exact" else KeyElem("mask", top, (1 << k.width) - 1)


def _key_wildcards(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, prog: ir.Program, emit: _Emitter,
                   part: ClassCoverage) -> None:
    """Per key that is not exact: the packet's entry with that key alone wildcarded, its action one that ends the
    packet otherwise than a miss of the table does (so losing it shows); in priority tables, an entry above it
    one bit off in that key, the other keys wildcarded, its action ending otherwise again (so matching it shows).
    A key whose value is 0 in the packet is left out (a full mask of value 0 would still match it)."""
    _, data, port, base, regs = emit.own
    ctx = emit.ctx

    def ends(ops: list[ControlOp]) -> tuple[Any, ...]:
        r = ctx.run_with(ControlState(base.entries, base.defaults, tuple(ops)), data, port, regs)
        return r.verdict, r.port, r.data

    missed = ends([])
    prio = max([hit.priority, *(e.priority for e in t.entries)]) + 1 if t.uses_priority else 0
    acts = [a for a in t.actions if a in prog.actions]
    done = 0
    for j, k in enumerate(t.keys):
        if k.kind == "exact" or keyvals[j] == 0:
            continue
        wild = (*hit.match[:j], KeyElem("any"), *hit.match[j + 1:])
        cands = [EntryState(t.name, wild, a, _entry(t, keyvals, a, prog, salt=13).args, prio) for a in acts]
        wide = next((c for c in cands if ends([_insert(c)]) != missed), None)
        if wide is None:
            continue
        ops = [_insert(wide)]
        if t.uses_priority:
            off = tuple(_one_bit_off(k, keyvals[i]) if i == j else KeyElem("any") if t.keys[i].kind != "exact"
                        else m for i, m in enumerate(hit.match))
            mine = ends(ops)
            above = [EntryState(t.name, off, a, _entry(t, keyvals, a, prog, salt=14).args, prio + 1) for a in acts]
            # the packet's key misses `off` only if the other keys' wildcards do not hide the flipped bit
            other = next((c for c in above if ends([*ops, _insert(c)]) == mine
                          and ends([_insert(EntryState(c.table, tuple(KeyElem("any") if i == j else m for i, m in
                                                                      enumerate(c.match)), c.action, c.args,
                                                       c.priority))]) != mine), None)
            if other is not None:
                ops.append(_insert(other))
        emit("key_wildcards", f"wildcard_{k.text}", ops)
        done += 1
    if not done:
        part.infeasible[f"{t.name}:key_wildcards"] = ("no key that is not exact has a non-zero value in the packet "
                                                      "and an action that ends it otherwise than a miss")
