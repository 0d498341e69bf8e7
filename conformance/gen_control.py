"""Control-plane material for generated vectors: entries matching the key values a packet carried,
stable non-trivial action arguments, overlapping entries that test match semantics, and the field values
if-conditions compare against."""

from __future__ import annotations

import hashlib

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .model import ControlState, EntryState


def param_value(action: str, param: ir.Param) -> int:
    """Non-trivial but stable action arguments; ports stay small so every target can map them."""
    if "port" in param.name:
        return 2 + int(hashlib.sha256(f"{action}.{param.name}".encode()).hexdigest(), 16) % 6
    h = int(hashlib.sha256(f"{action}.{param.name}".encode()).hexdigest(), 16)
    v = h & ((1 << param.width) - 1)
    return v or 1


def entry_for(table: ir.Table, keyvals: tuple[int, ...], action: str, prog: ir.Program) -> EntryState:
    match = []
    for k, v in zip(table.keys, keyvals, strict=True):
        w = k.width
        if k.kind == "exact":
            match.append(KeyElem("value", v))
        elif k.kind == "lpm":
            plen = max(1, w - 8) if w > 8 else w
            mask = ((1 << plen) - 1) << (w - plen)
            match.append(KeyElem("prefix", v & mask, plen))
        elif k.kind == "ternary":
            match.append(KeyElem("mask", v, (1 << w) - 1))
        else:
            match.append(KeyElem("range", max(0, v - 1), min((1 << w) - 1, v + 1)))
    args = tuple(param_value(action, p) for p in prog.actions[action].params)
    return EntryState(table.name, tuple(match), action, args, priority=10)


def broad_match(table: ir.Table, keyvals: tuple[int, ...]) -> tuple[KeyElem, ...]:
    """A match that also covers `keyvals` but less specifically than `entry_for`'s."""
    out = []
    for k, v in zip(table.keys, keyvals, strict=True):
        w = k.width
        if k.kind == "exact":
            out.append(KeyElem("value", v))
        elif k.kind == "lpm":
            plen = max(0, (w - 8) // 2) if w > 8 else max(0, w - 1)
            mask = ((1 << plen) - 1) << (w - plen)
            out.append(KeyElem("prefix", v & mask, plen))
        elif k.kind == "ternary":
            mask = ((1 << (w // 2)) - 1) << (w - w // 2)
            out.append(KeyElem("mask", v & mask, mask))
        else:
            out.append(KeyElem("range", 0, (1 << w) - 1))
    return tuple(out)


Outcome = tuple[str, tuple[int, ...]]  # (action, arguments)


def two_outcomes(table: ir.Table, prog: ir.Program) -> tuple[Outcome, Outcome] | None:
    """Two (action, args) a target cannot confuse: other arguments for one action, or two actions."""
    for a in table.actions:
        params = prog.actions[a].params
        if params:
            first = tuple(param_value(a, p) for p in params)
            second = tuple(
                (x + 1) & ((1 << p.width) - 1) if "port" in p.name else x ^ ((1 << p.width) - 1) or 1
                for x, p in zip(first, params, strict=True)
            )
            return (a, first), (a, second)
    if len(table.actions) >= 2:
        return (table.actions[0], ()), (table.actions[1], ())
    return None


def semantics_states(
    table: ir.Table, keyvals: tuple[int, ...], control: ControlState, prog: ir.Program
) -> list[tuple[str, ControlState]]:
    """Overlapping entries that only the right match semantics resolve as expected; replaced defaults are
    gen_classes' (defaults varied, under a packet that misses the constant entries too)."""
    out: list[tuple[str, ControlState]] = []
    outcomes = two_outcomes(table, prog)
    if outcomes is None or all(k.kind == "exact" for k in table.keys):
        return out
    (a1, x1), (a2, x2) = outcomes
    narrow = entry_for(table, keyvals, a1, prog).match
    broad = broad_match(table, keyvals)

    def entry(match: tuple[KeyElem, ...], act: str, args: tuple[int, ...], prio: int) -> EntryState:
        return EntryState(table.name, match, act, args, prio)

    if table.uses_priority:
        out.append(
            (
                "priority_wins",
                ControlState(
                    (*control.entries, entry(narrow, a1, x1, 5), entry(broad, a2, x2, 10)), control.defaults
                ),
            )
        )
        out.append(
            (
                "tie_first_installed",
                ControlState(
                    (*control.entries, entry(broad, a2, x2, 7), entry(narrow, a1, x1, 7)), control.defaults
                ),
            )
        )
    elif table.lpm_key is not None:
        out.append(
            (
                "longest_prefix",
                ControlState(
                    (*control.entries, entry(broad, a2, x2, 0), entry(narrow, a1, x1, 0)), control.defaults
                ),
            )
        )
        out.append(
            (
                "longest_prefix_installed_first",
                ControlState(
                    (*control.entries, entry(narrow, a1, x1, 0), entry(broad, a2, x2, 0)), control.defaults
                ),
            )
        )
    return out


def condition_atoms(prog: ir.Program) -> list[tuple[str, str, int]]:
    """(instance, field, value) candidates from if-conditions and group `when`s, so both branches occur."""
    out: list[tuple[str, str, int]] = []
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    exprs: list[ir.Expr] = []
    for body in bodies:
        for s in ir.walk_stmts(body):
            exprs += ir.stmt_exprs(s)
    for e in exprs:
        for sub in ir.walk_expr(e):
            if isinstance(sub, ir.Binary) and sub.op in ("==", "!=", "<", "<=", ">", ">="):
                for a, b in ((sub.left, sub.right), (sub.right, sub.left)):
                    shift = 0
                    if isinstance(a, ir.Slice | ir.Cast) and isinstance(a.operand, ir.FieldRef):
                        shift = a.lo if isinstance(a, ir.Slice) else 0
                        a = a.operand
                    if isinstance(a, ir.FieldRef) and isinstance(b, ir.Const):
                        m = (1 << a.width) - 1
                        for v in (b.value - 1, b.value, b.value + 1):
                            if 0 <= v << shift <= m:
                                out.append((a.instance, a.field_name, v << shift))
    for inst in prog.instances.values():
        for g in inst.type.groups:
            for sub in ir.walk_expr(g.when):
                if isinstance(sub, ir.FieldRef):
                    out += [(inst.name, sub.field_name, 0), (inst.name, sub.field_name, 1)]
    return list(dict.fromkeys(out))
