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
- modify: the packet's entry inserted, then modified to another action (or other arguments);
- priority_tie: in ternary/range tables, two overlapping entries of equal priority that both match: the one
  installed first wins (docs/spec-reference.md section 6, "ties: the entry installed first"; every target
  makes it exact, see targets/p4/driver.py for P4Runtime), then the winner deleted and re-inserted, so the
  other wins.

Every item is `<table>:<shape>`, reported per shape in the coverage dict under CLASS; an item no vector can
reach names why. Tags: `sequence` plus the shape. Expected results come from the oracle, over the image
`model.replay` computes.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .gen_control import broad_match, entry_for, param_value
from .gen_coverage import ClassCoverage
from .model import ControlOp, ControlState, EntryState

__all__ = ["CLASS", "FILL_LIMIT", "SHAPES", "nic_home_slot", "sequence_vectors"]

CLASS = "control_plane_states"
SHAPES = ("collision", "zero_key", "full_table", "delete_reinsert", "modify", "priority_tie")
FILL_LIMIT = 256  # tables filled to their size only up to this many entries
MAX_TABLES = 12  # tables per program that get sequences
COLLISION_TRIES = 1 << 20  # candidate keys tried for a NIC home-slot collision

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
    plen = 0
    values = []
    for k, m in zip(table.keys, match, strict=True):
        if k.kind == "lpm":
            plen = m.b if m.kind == "prefix" else 0 if m.kind == "any" else k.width
            mask = ((1 << plen) - 1) << (k.width - plen) if plen else 0
            values.append(m.a & mask)
        else:
            values.append(m.a & ((1 << k.width) - 1))
    if len(table.keys) == 1 and table.keys[0].width <= 56:  # hash_direct
        h = _fmix(((plen << 56) ^ values[0]) & M64)
    else:
        h = plen
        for k, v in zip(table.keys, values, strict=True):
            h = _mix(_mix(h, v >> 64), v & M64) if k.width > 64 else _mix(h, v)
        h = _fmix(h)
    return h & (nic_capacity(table) - 1)


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


def sequence_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext (`prog`, `first_apply`, `emit`, `classes`): adds the
    vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    tables = [t for t in prog.tables.values() if t.keys][:MAX_TABLES]
    for t in tables:
        items = {s: f"{t.name}:{s}" for s in SHAPES if s != "priority_tie" or t.uses_priority}
        if t.uses_priority:
            items.pop("collision")
        part.all += list(items.values())
        first = ctx.first_apply.get(t.name)
        acts = _two_actions(t, prog)
        why = ("no generated packet reaches the table" if first is None
               else "the table has no action an entry could name" if acts is None else None)
        if why is not None:
            for item in items.values():
                part.infeasible[item] = why
            continue
        assert first is not None and acts is not None
        pid, data, port, control, regs, keyvals = first
        base = ControlState(tuple(e for e in control.entries if e.table != t.name),
                            tuple(d for d in control.defaults if d[0] != t.name))
        a1, a2 = acts
        hit = _entry(t, keyvals, a1, prog)

        def emit(shape: str, label: str, ops: list[ControlOp], pkt: tuple[Any, ...] | None = None,
                 t: ir.Table = t, own: tuple[Any, ...] = (pid, data, port, base, regs)) -> None:
            p_pid, p_data, p_port, p_control, p_regs = pkt or own
            state = ControlState(p_control.entries, p_control.defaults, tuple(ops))
            r = ctx.emit(f"seq.{t.name}.{label}", p_pid, state, p_data, ["sequence", shape], p_port, p_regs)
            if r.observations.get("hit", {}).get(t.name):
                part.covered.add(f"{t.name}:{shape}")

        emit("delete_reinsert", "delete_reinsert",
             [_insert(hit), _delete(hit), _insert(_entry(t, keyvals, a1, prog, salt=1))])
        changed = _entry(t, keyvals, a2, prog, salt=2)
        emit("modify", "modify",
             [_insert(hit), ControlOp("modify", t.name, hit.match, changed.action, changed.args, hit.priority)])
        _zero_key(ctx, t, a1, emit, part)
        _full_table(t, keyvals, hit, a1, prog, emit, part)
        if t.uses_priority:
            _priority_tie(t, keyvals, hit, a2, prog, emit)
        else:
            _collision(t, keyvals, hit, a2, prog, emit, part)
    for item in part.all:
        if item not in part.covered and item not in part.infeasible:
            part.infeasible[item] = "the packet did not hit the table's entry (an earlier table or condition)"


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


def _full_table(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, action: str, prog: ir.Program,
                emit: Any, part: ClassCoverage) -> None:
    item = f"{t.name}:full_table"
    if t.size > FILL_LIMIT:
        part.infeasible[item] = f"size {t.size} > {FILL_LIMIT}: not filled (bounded)"
        return
    free = t.size - len(t.entries)
    if free < 1:
        part.infeasible[item] = "the constant entries fill the table"
        return
    others = _other_keys(t, keyvals, free - 1)
    if isinstance(others, str):
        part.infeasible[item] = others
        return
    fillers = [_entry(t, k, action, prog, salt=3) for k in others]
    if t.uses_priority:  # below the packet's entry: a filler never wins
        fillers = [EntryState(e.table, e.match, e.action, e.args, 1) for e in fillers]
    emit("full_table", "full_table", [*map(_insert, fillers), _insert(hit)])


def _priority_tie(t: ir.Table, keyvals: tuple[int, ...], hit: EntryState, other: str, prog: ir.Program,
                  emit: Any) -> None:
    broad = EntryState(t.name, broad_match(t, keyvals), other, _entry(t, keyvals, other, prog, salt=4).args,
                       hit.priority)
    if broad.match == hit.match:  # e.g. exact keys only: no distinct overlapping entry
        broad = EntryState(t.name, tuple(KeyElem("any") if k.kind != "exact" else m
                                         for k, m in zip(t.keys, hit.match, strict=True)),
                           broad.action, broad.args, broad.priority)
    if broad.match == hit.match:
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
    for i in range(1, min(COLLISION_TRIES, span)):
        cand = (*keyvals[:j], (keyvals[j] + i * unit) % (1 << w), *keyvals[j + 1:])
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
