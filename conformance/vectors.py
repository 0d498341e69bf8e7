"""Vector format v1: the plain-data form (what YAML and JSON Lines hold) and its conversion to model types.

Table entries are written as the spec writes its constant entries (exact `V`, lpm `V/LEN`, ternary
`V &&& M`, range `LO .. HI`, action `name(args)`), so converting needs the program: key kinds and widths
decide the canonical `KeyElem`. Every error names the entry it is about; `vector_io` adds the file.
"""

from __future__ import annotations

import functools
from typing import Any

from c3po_compiler import ir, matches
from c3po_compiler.expr import Const, Expr, ExprSyntaxError, KeyElem, parse_action_call

from .model import (
    OP_KINDS,
    VECTOR_FORMAT_VERSION,
    ControlOp,
    ControlState,
    EntryState,
    Expected,
    PacketIn,
    Registers,
    ReplayError,
    Vector,
    replay,
)
from .packets import PacketBuildError, build_layers, hex_bytes, literal

VERDICT_NAMES = {v.value for v in ir.Verdict}


class VectorFormatError(ValueError):
    """A vector that does not follow format v1 or does not fit the program; the message names the entry."""


def _need(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise VectorFormatError(f"{where}: expected a map, found {_show(d)}")
    if key not in d:
        raise VectorFormatError(f"{where}: missing '{key}'")
    return d[key]


def _show(value: Any) -> str:
    """A value as messages quote it: its YAML/JSON kind and a short repr."""
    kind = {bool: "boolean", int: "integer", str: "string", list: "list", dict: "map", float: "number"}.get(
        type(value), type(value).__name__)
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 256:
        return f"integer of {value.bit_length()} bits"
    text = repr(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    """An integer lo..hi (a boolean is not one)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise VectorFormatError(f"{where}: expected an integer {lo}..{hi}, found {_show(value)}")
    if not lo <= value <= hi:
        raise VectorFormatError(f"{where}: {value} is out of range {lo}..{hi}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise VectorFormatError(f"{where}: expected a string, found {_show(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    """A list; left out (null) is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise VectorFormatError(f"{where}: expected a list, found {_show(value)}")
    return value


def _map(value: Any, where: str) -> dict[Any, Any]:
    """A map; left out (null) is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VectorFormatError(f"{where}: expected a map, found {_show(value)}")
    return value


# Entry priorities travel as 32-bit signed integers (P4Runtime, the targets' tables).
MAX_PRIORITY = (1 << 31) - 1
# Counter and register indexes, packet counts: far beyond any target's, small enough for every integer type.
MAX_COUNT = (1 << 64) - 1


# ------------------------------------------------------------------------------------------- match values


def canonical_match(value: Any, key: ir.TableKey, where: str) -> KeyElem:
    """The same canonical forms the front end gives constant entries; value bits outside a prefix or mask
    are cleared rather than refused, since vectors often come from other tools."""
    try:
        return matches.canonical_match(value, key.kind, key.width, key.text, strict=False)
    except matches.MatchValueError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        raise VectorFormatError(f"{where}: {exc.message}{hint}") from None


@functools.lru_cache(maxsize=4096)
def _parsed_call(text: str) -> tuple[str, list[Expr]]:
    """Entries files repeat a few action texts thousands of times (`set_nexthop(7)`): parse each once. The
    result is never mutated by callers."""
    return parse_action_call(text)


def _action(
    d: dict[str, Any], allowed: list[str], prog: ir.Program, where: str
) -> tuple[str, tuple[int, ...]]:
    text = _need(d, "action", where)
    if not isinstance(text, str):
        raise VectorFormatError(f"{where}: 'action' must be a string such as 'set_port(3)'")
    try:
        name, arg_exprs = _parsed_call(text)
    except ExprSyntaxError as exc:
        raise VectorFormatError(f"{where}: action {text!r}: {exc.message}") from None
    if name not in allowed:
        raise VectorFormatError(f"{where}: action '{name}' is not one of {', '.join(allowed)}")
    params = prog.actions[name].params
    raw_args: list[Any] = [a.value for a in arg_exprs if isinstance(a, Const)]
    if len(raw_args) != len(arg_exprs):
        raise VectorFormatError(f"{where}: action arguments must be constants")
    if "args" in d:
        if arg_exprs:
            raise VectorFormatError(f"{where}: give arguments either in 'action' or in 'args', not both")
        raw_args = list(_list(d["args"], f"{where}.args"))
    if len(raw_args) != len(params):
        raise VectorFormatError(
            f"{where}: action '{name}' takes {len(params)} argument(s), {len(raw_args)} given"
        )
    args = []
    for a, p in zip(raw_args, params, strict=True):
        try:
            args.append(literal(a, p.width, f"{where}: argument '{p.name}'"))
        except PacketBuildError as exc:
            raise VectorFormatError(str(exc)) from None
    return name, tuple(args)


def control_from_data(data: Any, prog: ir.Program, where: str) -> ControlState:
    if data is None:
        return ControlState()
    if not isinstance(data, dict):
        raise VectorFormatError(f"{where}: 'control' must be a map with 'entries', 'defaults' and/or 'ops'")
    extra = set(map(str, data)) - {"entries", "defaults", "ops", "canonical"}
    if extra:
        raise VectorFormatError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    entries: list[EntryState] = []
    installed: dict[str, int] = {}
    for i, ed in enumerate(_list(data.get("entries"), f"{where}.entries")):
        w = f"{where}.entries[{i}]"
        tname = _table_name(ed, prog, w)
        table = prog.tables[tname]
        # The table holds its constant entries too: a vector that overfills it would pass on the reference
        # and fail on a target for a reason that is the vector's, not the target's.
        installed[tname] = installed.get(tname, len(table.entries)) + 1
        if installed[tname] > table.size:
            consts = f", {len(table.entries)} of them constant" if table.entries else ""
            raise VectorFormatError(f"{w}: table '{tname}' is full: it holds {table.size} entries{consts}, "
                                    f"and this is entry {installed[tname]}")
        match = _match(ed, table, w)
        action, args = _action(ed, table.actions, prog, w)
        priority = _int(ed.get("priority", 0), f"{w}.priority", 0, MAX_PRIORITY)
        entries.append(EntryState(tname, match, action, args, priority))
    defaults: list[tuple[str, str, tuple[int, ...]]] = []
    for i, dd in enumerate(_list(data.get("defaults"), f"{where}.defaults")):
        w = f"{where}.defaults[{i}]"
        tname = _table_name(dd, prog, w)
        table = prog.tables[tname]
        action, args = _action(dd, [*table.actions, "nop"], prog, w)
        defaults.append((tname, action, args))
    ops = _ops_from_data(data.get("ops"), prog, f"{where}.ops")
    control = ControlState(tuple(entries), tuple(defaults), ops)
    if ops:
        try:
            replay(prog, control)
        except ReplayError as exc:  # the sequence does not apply: the vector's mistake, found before any target
            raise VectorFormatError(f"{where}.{exc}") from None
    return control


OP_KEYS = {"op", "table", "match", "action", "args", "priority"}


def _ops_from_data(data: Any, prog: ir.Program, where: str) -> tuple[ControlOp, ...]:
    """The `ops` list: each item checked for its own shape here, the sequence as a whole by `model.replay`."""
    ops = []
    for i, od in enumerate(_list(data, where)):
        w = f"{where}[{i}]"
        kind = _need(od, "op", w)
        if kind not in OP_KINDS:
            shown = f"'{kind}'" if isinstance(kind, str) else _show(kind)
            raise VectorFormatError(f"{w}: op {shown} is not one of {', '.join(OP_KINDS)}")
        extra = set(map(str, od)) - OP_KEYS
        if extra:
            raise VectorFormatError(f"{w}: unknown key(s) {', '.join(sorted(extra))}")
        tname = _table_name(od, prog, w)
        table = prog.tables[tname]
        if kind == "default":
            if "match" in od or "priority" in od:
                raise VectorFormatError(f"{w}: a default op takes 'action' (and 'args'), not 'match' or 'priority'")
            action, args = _action(od, [*table.actions, "nop"], prog, w)
            ops.append(ControlOp(kind, tname, (), action, args))
            continue
        match = _match(od, table, w)
        priority = _int(od.get("priority", 0), f"{w}.priority", 0, MAX_PRIORITY)
        if kind == "delete":
            if "action" in od or "args" in od:
                raise VectorFormatError(f"{w}: a delete op names the entry by 'match' (and 'priority') only")
            ops.append(ControlOp(kind, tname, match, "", (), priority))
            continue
        action, args = _action(od, table.actions, prog, w)
        ops.append(ControlOp(kind, tname, match, action, args, priority))
    return tuple(ops)


def _match(d: dict[str, Any], table: ir.Table, where: str) -> tuple[KeyElem, ...]:
    """An entry's or op's `match` map, one canonical element per key (a left-out non-exact key: wildcard)."""
    given = d.get("match")
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise VectorFormatError(f"{where}: 'match' must map key names to values, found {_show(given)}")
    unknown = set(map(str, given)) - {k.text for k in table.keys}
    if unknown:
        raise VectorFormatError(
            f"{where}: table '{table.name}' has no key {', '.join(sorted(unknown))}; "
            f"keys: {', '.join(k.text for k in table.keys)}"
        )
    match = []
    for k in table.keys:
        if k.text not in given:
            if k.kind == "exact":
                raise VectorFormatError(f"{where}: exact key '{k.text}' needs a value")
            match.append(KeyElem("any"))
        else:
            match.append(canonical_match(given[k.text], k, f"{where}.match.{k.text}"))
    return tuple(match)


def _table_name(d: Any, prog: ir.Program, where: str) -> str:
    tname = _need(d, "table", where)
    if not isinstance(tname, str) or tname not in prog.tables:
        known = ", ".join(sorted(prog.tables)) or "(the program has no tables)"
        shown = f"'{tname}'" if isinstance(tname, str) else _show(tname)
        raise VectorFormatError(f"{where}: unknown table {shown}; known: {known}")
    return tname


def control_to_data(control: ControlState, prog: ir.Program) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if control.entries:
        rows = []
        for e in control.entries:
            keys = prog.tables[e.table].keys
            match = {
                k.text: m.spec_text() for k, m in zip(keys, e.match, strict=True) if m.kind != "any"
            }
            row: dict[str, Any] = {"table": e.table, "match": match, "action": _call_text(e.action, e.args)}
            if e.priority:
                row["priority"] = e.priority
            rows.append(row)
        out["entries"] = rows
    if control.defaults:
        out["defaults"] = [{"table": t, "action": _call_text(a, args)} for t, a, args in control.defaults]
    if control.ops:
        out["ops"] = [_op_to_data(op, prog) for op in control.ops]
    return out


def _op_to_data(op: ControlOp, prog: ir.Program) -> dict[str, Any]:
    row: dict[str, Any] = {"op": op.op, "table": op.table}
    if op.op != "default":
        keys = prog.tables[op.table].keys
        row["match"] = {k.text: m.spec_text() for k, m in zip(keys, op.match, strict=True) if m.kind != "any"}
    if op.op != "delete":
        row["action"] = _call_text(op.action, op.args)
    if op.priority:
        row["priority"] = op.priority
    return row


def _call_text(action: str, args: tuple[int, ...]) -> str:
    return f"{action}({', '.join(f'{a:#x}' for a in args)})" if args else action


# ------------------------------------------------------------------------------------- registers, counters


def registers_from_data(data: Any, prog: ir.Program, where: str) -> Registers:
    out: Registers = {}
    for i, r in enumerate(_list(data, where)):
        w = f"{where}[{i}]"
        name = _need(r, "register", w)
        reg = prog.registers.get(name) if isinstance(name, str) else None
        if reg is None:
            known = ", ".join(sorted(prog.registers)) or "(the program has no registers)"
            shown = f"'{name}'" if isinstance(name, str) else _show(name)
            raise VectorFormatError(f"{w}: unknown register {shown}; known: {known}")
        index = _need(r, "index", w)
        if isinstance(index, int) and not isinstance(index, bool) and not 0 <= index < reg.size:
            raise VectorFormatError(f"{w}.index: {index} is out of range: register '{name}' has {reg.size} "
                                    f"element(s), indexes 0..{reg.size - 1}")
        index = _int(index, f"{w}.index", 0, reg.size - 1)
        try:
            out[(name, index)] = literal(_need(r, "value", w), reg.width, f"{w}.value")
        except PacketBuildError as exc:
            raise VectorFormatError(str(exc)) from None
    return out


def registers_to_data(regs: Registers) -> list[dict[str, Any]]:
    return [{"register": n, "index": i, "value": v} for (n, i), v in sorted(regs.items())]


def _counter_indexes(prog: ir.Program, name: str) -> tuple[int, int] | None:
    """The indexes of a counter an expectation may name: a program counter's elements, or a table's per-entry
    counters `table.<table>` (install index, -1 for the default action); None for a name the program lacks."""
    if name.startswith("table."):
        table = prog.tables.get(name.removeprefix("table."))
        return (-1, table.size - 1) if table is not None and table.counters else None
    counter = prog.counters.get(name)
    return (0, counter.size - 1) if counter is not None else None


def counters_from_data(data: Any, prog: ir.Program, where: str) -> dict[tuple[str, int], tuple[int, int]]:
    """Expected counter values, checked against the program like registers are: a counter it does not have, or
    an index beyond one it has, is a mistake in the vector file, not a FAIL of every target."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for i, c in enumerate(_list(data, where)):
        w = f"{where}[{i}]"
        name = _str(_need(c, "counter", w), f"{w}.counter")
        indexes = _counter_indexes(prog, name)
        if indexes is None:
            known = [*sorted(prog.counters), *(f"table.{t}" for t, tab in sorted(prog.tables.items()) if tab.counters)]
            raise VectorFormatError(f"{w}: unknown counter '{name}'; known: "
                                    f"{', '.join(known) or '(the program has no counters)'}")
        out[(name, _int(_need(c, "index", w), f"{w}.index", *indexes))] = (
            _int(_need(c, "packets", w), f"{w}.packets", 0, MAX_COUNT),
            _int(_need(c, "bytes", w), f"{w}.bytes", 0, MAX_COUNT),
        )
    return out


def counters_to_data(counters: dict[tuple[str, int], tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"counter": n, "index": i, "packets": p, "bytes": b} for (n, i), (p, b) in sorted(counters.items())
    ]


# ------------------------------------------------------------------------------------------------ vectors


def packet_from_data(d: Any, prog: ir.Program, where: str) -> PacketIn:
    port = _need(d, "port", where)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 1 << 16:
        raise VectorFormatError(f"{where}: 'port' must be an integer 0..65535, found {_show(port)}")
    try:
        if "data" in d:
            return PacketIn(port, hex_bytes(d["data"], f"{where}.data"))
        if "layers" in d:
            layers = d["layers"]
            payload_text = d.get("payload", "")
            # `payload` may also sit inside the layers map, after the headers ({ethernet: .., payload: hex})
            if isinstance(layers, dict) and "payload" in layers and "payload" not in prog.instances:
                layers = {k: v for k, v in layers.items() if k != "payload"}
                payload_text = d["layers"]["payload"]
            payload = hex_bytes(payload_text, f"{where}.payload")
            return PacketIn(port, build_layers(prog, layers, payload, f"{where}.layers"))
    except PacketBuildError as exc:
        raise VectorFormatError(str(exc)) from None
    raise VectorFormatError(f"{where}: a packet needs 'data' (hex) or 'layers'")


def expected_from_data(d: Any, prog: ir.Program, where: str) -> Expected:
    verdict = _need(d, "verdict", where)
    if not isinstance(verdict, str) or verdict not in VERDICT_NAMES:
        shown = f"'{verdict}'" if isinstance(verdict, str) else _show(verdict)
        raise VectorFormatError(f"{where}: verdict {shown} is not one of {', '.join(sorted(VERDICT_NAMES))}")
    port = d.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 1 << 16):
        raise VectorFormatError(f"{where}: 'port' must be an integer 0..65535 or null, found {_show(port)}")
    try:
        data = hex_bytes(d.get("data", ""), f"{where}.data")
        mask = hex_bytes(d["care_mask"], f"{where}.care_mask") if d.get("care_mask") is not None else None
    except PacketBuildError as exc:
        raise VectorFormatError(str(exc)) from None
    if mask is not None and len(mask) != len(data):
        raise VectorFormatError(f"{where}: care_mask has {len(mask)} bytes but data has {len(data)}")
    return Expected(
        verdict,
        port,
        data,
        mask,
        counters_from_data(d["counters"], prog, f"{where}.counters") if d.get("counters") is not None else None,
        registers_from_data(d["registers"], prog, f"{where}.registers")
        if d.get("registers") is not None
        else None,
        dict(_map(d.get("observations"), f"{where}.observations")),
    )


def expected_to_data(e: Expected, with_observations: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"verdict": e.verdict, "port": e.port, "data": e.data.hex()}
    if e.care_mask is not None:
        out["care_mask"] = e.care_mask.hex()
    if e.counters is not None:
        out["counters"] = counters_to_data(e.counters)
    if e.registers is not None:
        out["registers"] = registers_to_data(e.registers)
    if with_observations and e.observations:
        out["observations"] = e.observations
    return out


VECTOR_KEYS = {"name", "provenance", "tags", "requires", "control", "registers", "packets", "expected", "doc"}


def vector_from_data(d: Any, prog: ir.Program, where: str) -> Vector:
    if not isinstance(d, dict):
        raise VectorFormatError(f"{where}: a vector must be a map")
    name = _need(d, "name", where)
    if not isinstance(name, str | int) or isinstance(name, bool) or str(name) == "":
        raise VectorFormatError(f"{where}: 'name' must be a non-empty string, found {_show(name)}")
    where = f"{where} ('{name}')"
    extra = set(map(str, d)) - VECTOR_KEYS
    if extra:
        raise VectorFormatError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    packets_data = _need(d, "packets", where)
    if not isinstance(packets_data, list) or not packets_data:
        raise VectorFormatError(f"{where}: 'packets' must be a non-empty list")
    packets = [packet_from_data(p, prog, f"{where}.packets[{i}]") for i, p in enumerate(packets_data)]
    expected_data = _list(d.get("expected"), f"{where}.expected")
    if expected_data and len(expected_data) != len(packets):
        raise VectorFormatError(f"{where}: {len(expected_data)} expected results for {len(packets)} packets")
    return Vector(
        name=str(name),
        control=control_from_data(d.get("control"), prog, f"{where}.control"),
        packets=packets,
        registers=registers_from_data(d.get("registers"), prog, f"{where}.registers"),
        expected=[expected_from_data(e, prog, f"{where}.expected[{i}]") for i, e in enumerate(expected_data)],
        tags=_names(d.get("tags"), f"{where}.tags"),
        requires=_names(d.get("requires"), f"{where}.requires"),
        provenance=dict(_map(d.get("provenance"), f"{where}.provenance")),
    )


def _names(value: Any, where: str) -> list[str]:
    """A list of words (tags, feature names)."""
    out = []
    for i, item in enumerate(_list(value, where)):
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise VectorFormatError(f"{where}[{i}]: expected a word, found {_show(item)}")
        out.append(str(item))
    return out


def vector_to_data(v: Vector, prog: ir.Program) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v.name}
    if v.provenance:
        out["provenance"] = v.provenance
    if v.tags:
        out["tags"] = v.tags
    if v.requires:
        out["requires"] = v.requires
    control = control_to_data(v.control, prog)
    if control:
        out["control"] = control
    if v.registers:
        out["registers"] = registers_to_data(v.registers)
    out["packets"] = [{"port": p.port, "data": p.data.hex()} for p in v.packets]
    if v.expected:
        out["expected"] = [expected_to_data(e) for e in v.expected]
    return out


def header_data(prog: ir.Program, spec: str | None = None) -> dict[str, Any]:
    """The first document of a vector file: format version and the program the vectors were made for."""
    out: dict[str, Any] = {
        "c3po_vectors": VECTOR_FORMAT_VERSION,
        "program": prog.name,
        "spec_hash": prog.source_hash,
    }
    if spec:
        out["spec"] = spec
    return out
