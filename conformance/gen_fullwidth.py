"""Action arguments that feed a later table, per parse path (issue 16, fourth round's survivor): an argument the
action writes to a metadata field that a later table keys on, at values whose low bits are set, with the later
table given an entry for exactly that value.

`full_width` (gen_classes) sets the arguments to all ones and to their top bit; the generated default arguments
(`gen_control.param_value`) may have their low bits clear (the router's next-hop id is 0xbffc). A target that cuts
bit 0 of such an argument (the xdp router's IPv6 copy of `arg0 = ts & 0xffff` -> `& 0xfffe`) is only seen when the
argument is odd AND the table keyed by the metadata it fills has an entry for the odd value but none for its even
neighbour: otherwise the right and the wrong value both miss (or both hit) there. So:

- `recomplete` re-keys, after an action's arguments changed, the entries of the tables applied downstream whose
  key includes a metadata field the action writes from its parameters: their generated entries are replaced by
  one matching the key the packet now carries there (the same action and arguments as before, or, if there was
  none, the table's first action with parameters, with the generated arguments), as generate() completes a
  control state for its defaults. `full_width` uses it too, so its all-ones id is looked up and hit downstream.
- CLASS (`arg_low_bits`): per table, action with a (non-port) parameter feeding such a downstream key, and parse
  path on which a generated vector hits the table with that action through a generated entry (at most
  MAX_PATHS), the vector with every such argument `odd` (its generated value with bit 0 set; with bits 0 and 1
  set when it already is odd) and `low_byte` (the low byte all ones), the downstream tables re-completed.

Items are `<table>.<action>:<label>@<path>` (the path's parse states joined by `>`), covered when the oracle runs
the action at the table and every re-keyed downstream table with the new entry. Expected results come from the
oracle. Tags: `arg_low_bits` and the label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from c3po_compiler import ir

from .gen_control import entry_for
from .gen_coverage import ClassCoverage
from .model import ControlState, EntryState, Vector

__all__ = ["CLASS", "MAX_PATHS", "fed_tables", "first_per_path", "low_bit_vectors", "path_bases", "recomplete"]

CLASS = "arg_low_bits"
MAX_PATHS = 8
MAX_VECTORS = 96  # gen_classes.MAX_PER_CLASS: the cap every class has


def _meta_from_params(prog: ir.Program, action: str) -> set[str]:
    """Metadata fields the action assigns from an expression that reads one of its parameters."""
    act = prog.user_actions.get(action)
    if act is None:
        return set()
    out = set()
    for st in ir.walk_stmts(act.body):
        if isinstance(st, ir.Assign) and isinstance(st.target, ir.MetaRef) and any(
            isinstance(x, ir.ParamRef) for x in ir.walk_expr(st.value)
        ):
            out.add(st.target.name)
    return out


def fed_tables(prog: ir.Program, table: str, action: str) -> list[str]:
    """The tables (other than `table`) keyed on a metadata field the action writes from its parameters."""
    meta = _meta_from_params(prog, action)
    return [
        t.name
        for t in prog.tables.values()
        if t.name != table and any(isinstance(k.expr, ir.MetaRef) and k.expr.name in meta for k in t.keys)
    ]


def recomplete(ctx: Any, control: ControlState, data: bytes, port: int, table: str, action: str) -> ControlState:
    """`control` with the generated entries of the tables `action` feeds (fed_tables) re-keyed to what the
    packet carries there once `table` ran it: each such table applied after `table` gets one entry for exactly
    that key (the action and arguments its replaced entry had), so the argument's value shows in the output."""
    fed = fed_tables(ctx.prog, table, action)
    done: set[str] = set()
    for _ in range(len(fed)):
        r = ctx.run_with(control, data, port, {})
        seen, nxt = False, None
        for kind, tname, keyvals in r.observations.get("trace", []):
            if kind != "apply":
                continue
            if tname == table:
                seen = True
            elif seen and tname in fed and tname not in done:
                nxt = (tname, tuple(keyvals))
                break
        if nxt is None:
            break
        tname, keyvals = nxt
        done.add(tname)
        t = ctx.prog.tables[tname]
        old = next((e for e in control.entries if e.table == tname), None)
        if old is not None:
            new: EntryState = replace(entry_for(t, keyvals, old.action, ctx.prog), args=old.args,
                                      priority=old.priority)
        else:
            act = next((a for a in t.actions if ctx.prog.actions[a].params), t.actions[0])
            new = entry_for(t, keyvals, act, ctx.prog)
        control = ControlState((*(e for e in control.entries if e.table != tname), new), control.defaults)
    return control


def first_per_path(vectors: list[Vector], limit: int,
                   keep: Callable[[Vector, dict[str, Any]], bool]) -> dict[tuple[str, ...], Vector]:
    """Per parse path (its states), the first single-packet vector without registers or table operations that
    `keep(vector, its observations)` accepts: the bases a class changes one thing of, at most `limit` paths."""
    bases: dict[tuple[str, ...], Vector] = {}
    for v in vectors:
        if len(v.packets) != 1 or v.registers or v.control.ops:
            continue
        obs = v.expected[0].observations
        if not keep(v, obs):
            continue
        path = tuple(obs.get("path", []))
        if path not in bases and len(bases) < limit:
            bases[path] = v
    return bases


def path_bases(vectors: list[Vector], tname: str, aname: str, limit: int,
               default: bool = False) -> dict[tuple[str, ...], Vector]:
    """`first_per_path` of the vectors that hit the table with the action through a generated entry (whose
    arguments are the vector's to change), or with `default`, that miss it under a default replaced by the
    action."""
    def keep(v: Vector, obs: dict[str, Any]) -> bool:
        if obs.get("tables", {}).get(tname) != aname or bool(obs.get("hit", {}).get(tname)) == default:
            return False
        if default:
            return any(d[0] == tname and d[1] == aname for d in v.control.defaults)
        # a constant entry decided: its arguments are not the vector's to change
        return any(e.table == tname and e.action == aname for e in v.control.entries)

    return first_per_path(vectors, limit, keep)


def _values(x: int, width: int) -> dict[str, int]:
    odd = x | 1 if not x & 1 else x | 3
    low = x | ((1 << min(8, width)) - 1)
    return {label: v for label, v in (("odd", odd), ("low_byte", low)) if v != x}


def low_bit_vectors(ctx: Any) -> None:
    """Called with gen_classes' ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    left = [MAX_VECTORS]
    for tname, t in prog.tables.items():
        for aname in t.actions:
            action = prog.actions[aname]
            if not fed_tables(prog, tname, aname) or not any("port" not in p.name for p in action.params):
                continue
            for default in (False, True):
                bases = path_bases(ctx.vectors, tname, aname, MAX_PATHS, default)
                for label in ("default_odd", "default_low_byte") if default else ("odd", "low_byte"):
                    if not bases:
                        item = f"{tname}.{aname}:{label}"
                        part.all.append(item)
                        part.infeasible[item] = ("no generated vector misses the table under this default action"
                                                 if default else "no generated vector hits an entry of the table "
                                                 "with this action")
                        continue
                    for path, base in bases.items():
                        _one(ctx, part, left, base, tname, aname, label, ">".join(path))


def _one(ctx: Any, part: ClassCoverage, left: list[int], base: Any, tname: str, aname: str, label: str,
         where: str) -> None:
    item = f"{tname}.{aname}:{label}@{where}"
    part.all.append(item)
    prog: ir.Program = ctx.prog
    params = prog.actions[aname].params
    value = label.removeprefix("default_")

    def moved(args: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(a if "port" in p.name else _values(a, p.width).get(value, a)
                     for p, a in zip(params, args, strict=True))

    entries = tuple(replace(e, args=moved(e.args)) if e.table == tname and e.action == aname
                    and not label.startswith("default_") else e for e in base.control.entries)
    defaults = tuple((t, a, moved(x)) if t == tname and a == aname and label.startswith("default_") else (t, a, x)
                     for t, a, x in base.control.defaults)
    if (entries, defaults) == (base.control.entries, base.control.defaults):
        part.infeasible[item] = f"the generated arguments already are {label}"
        return
    if left[0] <= 0:
        part.infeasible[item] = f"not generated: the class's cap of {MAX_VECTORS} vectors was reached"
        return
    left[0] -= 1
    p = base.packets[0]
    control = recomplete(ctx, ControlState(entries, defaults), p.data, p.port, tname, aname)
    r = ctx.emit(f"lowbits.{tname}.{aname}.{label}.{where}", int(base.provenance.get("path", 0)), control, p.data,
                 [CLASS, label], p.port, {})
    obs = r.observations
    fed = [f for f in fed_tables(prog, tname, aname) if f in obs.get("tables", {})]
    if obs.get("tables", {}).get(tname) != aname:
        part.infeasible[item] = "with these arguments the packet no longer reaches the action (a vector is kept)"
    elif not fed:
        part.infeasible[item] = "no table keyed on what the action writes is applied after it on this path"
    elif not all(obs.get("hit", {}).get(f) for f in fed):
        part.infeasible[item] = f"the downstream table(s) {', '.join(fed)} miss with the new value (a vector is kept)"
    else:
        part.covered.add(item)
