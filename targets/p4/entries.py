"""The control-plane view of the generated P4: table/action names for P4Runtime and simple_switch_CLI, and the
mapping of a c3po ControlState to entries in both forms.

Naming (shared with conformance/stf.py): tables and actions keep their spec names (built-ins too: `drop`,
`to_host`, `reflect`, `forward(port)`, `nop`); key fields are named by their spec text (`ipv4.dst`). A table
applied from N places is N P4 tables `t`, `t__2`, ... and every entry goes to each. Constant spec entries are
installed first, before the ControlState's, because P4's `const entries` would make the table read-only.

Priorities: the spec's "highest priority wins, ties go to the entry installed first" is made exact by ranking
the entries: P4Runtime gets unique priorities where higher wins; BMv2's CLI, where lower wins, gets the rank.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from conformance.model import ControlState, EntryState

from .control_gen import table_copies


def describe(prog: ir.Program, cpu_port: int) -> dict[str, Any]:
    copies = table_copies(prog)
    tables = []
    for name in sorted(prog.tables):
        t = prog.tables[name]
        tables.append({
            "name": name,
            "p4_tables": copies[name],
            "keys": [{"name": k.text, "match_kind": k.kind, "bitwidth": k.width} for k in t.keys],
            "actions": list(t.actions),
            "default_action": {"name": t.default.action, "args": list(t.default.args)},
            "size": t.size,
            "counters": t.counters,
            "uses_priority": t.uses_priority,
            "const_entries": [{"match": [[m.kind, m.a, m.b] for m in e.match], "action": e.action.action,
                               "args": list(e.action.args), "priority": e.priority} for e in t.entries],
        })
    used = sorted({a for t in prog.tables.values() for a in [*t.actions, t.default.action, "nop"]})
    actions = [{"name": a, "params": [{"name": p.name, "bitwidth": p.width} for p in prog.actions[a].params]}
               for a in used]
    return {"program": prog.name, "generated_by": "c3po, do not edit", "cpu_port": cpu_port,
            "tables": tables, "actions": actions}


def all_entries(desc: dict[str, Any], control: ControlState) -> list[EntryState]:
    """Constant entries first, then the control state's, in install order."""
    out: list[EntryState] = []
    for t in desc["tables"]:
        for e in t["const_entries"]:
            out.append(EntryState(t["name"], tuple(KeyElem(k, a, b) for k, a, b in e["match"]), e["action"],
                                  tuple(e["args"]), e["priority"]))
    return out + list(control.entries)


def _ranks(desc: dict[str, Any], entries: list[EntryState]) -> dict[int, int]:
    """Entry index -> rank (0 = wins) within its table, for tables that use priorities."""
    ranks: dict[int, int] = {}
    by_table = {t["name"]: t for t in desc["tables"]}
    for name, t in by_table.items():
        if not t["uses_priority"]:
            continue
        idx = [i for i, e in enumerate(entries) if e.table == name]
        for rank, i in enumerate(sorted(idx, key=lambda i: (-entries[i].priority, i))):
            ranks[i] = rank
    return ranks


def canonical(m: KeyElem, kind: str, width: int) -> KeyElem:
    """The entry's match in the shape of its key kind, don't-care bits cleared (BMv2 rejects some otherwise)."""
    full = (1 << width) - 1
    if m.kind == "any":
        return {"lpm": KeyElem("prefix", 0, 0), "ternary": KeyElem("mask", 0, 0),
                "range": KeyElem("range", 0, full)}.get(kind, m)
    if kind == "lpm":
        length = m.b if m.kind == "prefix" else width
        mask = full ^ ((1 << (width - length)) - 1)
        return KeyElem("prefix", m.a & mask, length)
    if kind == "ternary":
        mask = m.b if m.kind == "mask" else full
        return KeyElem("mask", m.a & mask, mask)
    if kind == "range":
        return KeyElem("range", m.a, m.b) if m.kind == "range" else KeyElem("range", m.a, m.a)
    return KeyElem("value", m.a & full)


def _hex(v: int) -> str:
    return f"{v:#x}"


def _p4rt_match(key: dict[str, Any], m: KeyElem) -> dict[str, Any] | None:
    name, w = key["name"], key["bitwidth"]
    m = canonical(m, key["match_kind"], w)
    if m.kind == "any":
        return None  # P4Runtime: a don't-care field is left out
    if m.kind == "value":
        return {"field": name, "exact": {"value": _hex(m.a)}}
    if m.kind == "prefix":
        return {"field": name, "lpm": {"value": _hex(m.a), "prefix_len": m.b}} if m.b else None
    if m.kind == "mask":
        return {"field": name, "ternary": {"value": _hex(m.a), "mask": _hex(m.b)}} if m.b else None
    if m.kind == "range":
        return {"field": name, "range": {"low": _hex(m.a), "high": _hex(m.b)}} \
            if (m.a, m.b) != (0, (1 << w) - 1) else None
    raise ValueError(f"unknown match kind {m.kind}")


def _params(desc: dict[str, Any], action: str, args: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
    spec = next(a for a in desc["actions"] if a["name"] == action)
    return [{"name": p["name"], "value": _hex(v)} for p, v in zip(spec["params"], args, strict=True)]


def entry_items(desc: dict[str, Any], table: dict[str, Any], match: tuple[KeyElem, ...], action: str | None,
                args: tuple[int, ...] | list[int], priority: int | None) -> list[dict[str, Any]]:
    """One entry of `table` (an item of `desc["tables"]`) as P4Runtime-style items, one per P4 copy of the
    table; `priority` is P4Runtime's (None: the table has none); without `action`, the item is only the entry's
    key (what a delete names)."""
    matches = [m for m in (_p4rt_match(k, x) for k, x in zip(table["keys"], match, strict=True)) if m]
    out: list[dict[str, Any]] = []
    for p4t in table["p4_tables"]:
        item: dict[str, Any] = {"table": p4t, "match": matches}
        if action is not None:
            item["action"] = {"name": action, "params": _params(desc, action, args)}
        if priority is not None:
            item["priority"] = priority
        out.append(item)
    return out


def default_items(desc: dict[str, Any], table: dict[str, Any], action: str, args: tuple[int, ...] | list[int]
                  ) -> list[dict[str, Any]]:
    """`table`'s default action as P4Runtime-style items (a MODIFY of each copy's default entry)."""
    return [{"table": p4t, "is_default_action": True,
             "action": {"name": action, "params": _params(desc, action, args)}} for p4t in table["p4_tables"]]


def match_from_p4runtime(table: dict[str, Any], fields: list[dict[str, Any]]) -> tuple[KeyElem, ...]:
    """The inverse of the match part of `entry_items`: P4Runtime-style field matches (as
    `P4RuntimeControl.read_items` gives them) back to one canonical element per key of `table`. A field left
    out is a wildcard (`any`): P4Runtime leaves out every don't-care, however it was written."""
    by_name = {f["field"]: f for f in fields}
    out = []
    for k in table["keys"]:
        f = by_name.get(k["name"])
        if f is None:
            out.append(KeyElem("any"))
        elif "exact" in f:
            out.append(KeyElem("value", int(f["exact"]["value"], 16)))
        elif "lpm" in f:
            out.append(KeyElem("prefix", int(f["lpm"]["value"], 16), int(f["lpm"]["prefix_len"])))
        elif "ternary" in f:
            out.append(KeyElem("mask", int(f["ternary"]["value"], 16), int(f["ternary"]["mask"], 16)))
        elif "range" in f:
            out.append(KeyElem("range", int(f["range"]["low"], 16), int(f["range"]["high"], 16)))
        else:
            raise ValueError(f"unsupported field match {f}")
    return tuple(out)


def to_p4runtime(desc: dict[str, Any], control: ControlState) -> list[dict[str, Any]]:
    """P4Runtime-style table entries (JSON-ready), defaults last."""
    entries = all_entries(desc, control)
    ranks = _ranks(desc, entries)
    tables = {t["name"]: t for t in desc["tables"]}
    out: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        n = sum(1 for x in entries if x.table == e.table)
        out += entry_items(desc, tables[e.table], e.match, e.action, e.args, n - ranks[i] if i in ranks else None)
    for table, action, args in control.defaults:
        out += default_items(desc, tables[table], action, args)
    return out


def _cli_key(key: dict[str, Any], m: KeyElem) -> str:
    m = canonical(m, key["match_kind"], key["bitwidth"])
    if key["match_kind"] == "exact":
        return _hex(m.a)
    if key["match_kind"] == "lpm":
        return f"{_hex(m.a)}/{m.b}"
    if key["match_kind"] == "ternary":
        return f"{_hex(m.a)}&&&{_hex(m.b)}"
    return f"{_hex(m.a)}->{_hex(m.b)}"


def to_cli(desc: dict[str, Any], control: ControlState) -> list[str]:
    """simple_switch_CLI commands: `table_add <t> <action> <keys> => <args> [priority]`, then defaults."""
    entries = all_entries(desc, control)
    ranks = _ranks(desc, entries)
    tables = {t["name"]: t for t in desc["tables"]}
    out: list[str] = []
    for i, e in enumerate(entries):
        t = tables[e.table]
        keys = " ".join(_cli_key(k, x) for k, x in zip(t["keys"], e.match, strict=True))
        args = " ".join(_hex(a) for a in e.args)
        prio = f" {ranks[i] + 1}" if i in ranks else ""
        for p4t in t["p4_tables"]:
            out.append(f"table_add {p4t} {e.action} {keys} => {args}{prio}".replace("  ", " "))
    for table, action, dargs in control.defaults:
        for p4t in tables[table]["p4_tables"]:
            out.append(f"table_set_default {p4t} {action} {' '.join(_hex(a) for a in dargs)}".rstrip())
    return out
