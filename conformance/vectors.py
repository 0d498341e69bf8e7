"""Vector format v1: the plain-data form (what YAML and JSON Lines hold) and its conversion to model types.

Table entries are written as the spec writes its constant entries (exact `V`, lpm `V/LEN`, ternary
`V &&& M`, range `LO .. HI`, action `name(args)`), so converting needs the program: key kinds and widths
decide the canonical `KeyElem`. Every error names the entry it is about; `vector_io` adds the file.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir, matches
from c3po_compiler.expr import Const, ExprSyntaxError, KeyElem, parse_action_call

from .model import VECTOR_FORMAT_VERSION, ControlState, EntryState, Expected, PacketIn, Registers, Vector
from .packets import PacketBuildError, build_layers, hex_bytes, literal

VERDICT_NAMES = {v.value for v in ir.Verdict}


class VectorFormatError(ValueError):
    """A vector that does not follow format v1 or does not fit the program; the message names the entry."""


def _need(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise VectorFormatError(f"{where}: missing '{key}'")
    return d[key]


# ------------------------------------------------------------------------------------------- match values


def canonical_match(value: Any, key: ir.TableKey, where: str) -> KeyElem:
    """The same canonical forms the front end gives constant entries; value bits outside a prefix or mask
    are cleared rather than refused, since vectors often come from other tools."""
    try:
        return matches.canonical_match(value, key.kind, key.width, key.text, strict=False)
    except matches.MatchValueError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        raise VectorFormatError(f"{where}: {exc.message}{hint}") from None


def _action(
    d: dict[str, Any], allowed: list[str], prog: ir.Program, where: str
) -> tuple[str, tuple[int, ...]]:
    text = _need(d, "action", where)
    if not isinstance(text, str):
        raise VectorFormatError(f"{where}: 'action' must be a string such as 'set_port(3)'")
    try:
        name, arg_exprs = parse_action_call(text)
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
        raw_args = list(d["args"] or [])
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
        raise VectorFormatError(f"{where}: 'control' must be a map with 'entries' and/or 'defaults'")
    entries: list[EntryState] = []
    for i, ed in enumerate(data.get("entries") or []):
        w = f"{where}.entries[{i}]"
        tname = _need(ed, "table", w)
        table = prog.tables.get(tname)
        if table is None:
            raise VectorFormatError(f"{w}: unknown table '{tname}'; known: {', '.join(sorted(prog.tables))}")
        given = ed.get("match") or {}
        if not isinstance(given, dict):
            raise VectorFormatError(f"{w}: 'match' must map key names to values")
        unknown = set(map(str, given)) - {k.text for k in table.keys}
        if unknown:
            raise VectorFormatError(
                f"{w}: table '{tname}' has no key {', '.join(sorted(unknown))}; "
                f"keys: {', '.join(k.text for k in table.keys)}"
            )
        match = []
        for k in table.keys:
            if k.text not in given:
                if k.kind == "exact":
                    raise VectorFormatError(f"{w}: exact key '{k.text}' needs a value")
                match.append(KeyElem("any"))
            else:
                match.append(canonical_match(given[k.text], k, f"{w}.match.{k.text}"))
        action, args = _action(ed, table.actions, prog, w)
        entries.append(EntryState(tname, tuple(match), action, args, int(ed.get("priority", 0))))
    defaults: list[tuple[str, str, tuple[int, ...]]] = []
    for i, dd in enumerate(data.get("defaults") or []):
        w = f"{where}.defaults[{i}]"
        tname = _need(dd, "table", w)
        table = prog.tables.get(tname)
        if table is None:
            raise VectorFormatError(f"{w}: unknown table '{tname}'")
        action, args = _action(dd, [*table.actions, "nop"], prog, w)
        defaults.append((tname, action, args))
    return ControlState(tuple(entries), tuple(defaults))


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
    return out


def _call_text(action: str, args: tuple[int, ...]) -> str:
    return f"{action}({', '.join(f'{a:#x}' for a in args)})" if args else action


# ------------------------------------------------------------------------------------- registers, counters


def registers_from_data(data: Any, prog: ir.Program, where: str) -> Registers:
    out: Registers = {}
    for i, r in enumerate(data or []):
        w = f"{where}[{i}]"
        name = _need(r, "register", w)
        reg = prog.registers.get(name)
        if reg is None:
            raise VectorFormatError(f"{w}: unknown register '{name}'")
        try:
            out[(name, int(_need(r, "index", w)))] = literal(_need(r, "value", w), reg.width, w)
        except PacketBuildError as exc:
            raise VectorFormatError(str(exc)) from None
    return out


def registers_to_data(regs: Registers) -> list[dict[str, Any]]:
    return [{"register": n, "index": i, "value": v} for (n, i), v in sorted(regs.items())]


def counters_from_data(data: Any, where: str) -> dict[tuple[str, int], tuple[int, int]]:
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for i, c in enumerate(data or []):
        w = f"{where}[{i}]"
        out[(str(_need(c, "counter", w)), int(_need(c, "index", w)))] = (
            int(_need(c, "packets", w)),
            int(_need(c, "bytes", w)),
        )
    return out


def counters_to_data(counters: dict[tuple[str, int], tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"counter": n, "index": i, "packets": p, "bytes": b} for (n, i), (p, b) in sorted(counters.items())
    ]


# ------------------------------------------------------------------------------------------------ vectors


def packet_from_data(d: Any, prog: ir.Program, where: str) -> PacketIn:
    port = _need(d, "port", where)
    if not isinstance(port, int) or not 0 <= port < 1 << 16:
        raise VectorFormatError(f"{where}: 'port' must be an integer 0..65535")
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
    if verdict not in VERDICT_NAMES:
        raise VectorFormatError(
            f"{where}: verdict '{verdict}' is not one of {', '.join(sorted(VERDICT_NAMES))}"
        )
    try:
        data = hex_bytes(d.get("data", ""), f"{where}.data")
        mask = hex_bytes(d["care_mask"], f"{where}.care_mask") if d.get("care_mask") is not None else None
    except PacketBuildError as exc:
        raise VectorFormatError(str(exc)) from None
    if mask is not None and len(mask) != len(data):
        raise VectorFormatError(f"{where}: care_mask has {len(mask)} bytes but data has {len(data)}")
    return Expected(
        verdict,
        d.get("port"),
        data,
        mask,
        counters_from_data(d["counters"], f"{where}.counters") if d.get("counters") is not None else None,
        registers_from_data(d["registers"], prog, f"{where}.registers")
        if d.get("registers") is not None
        else None,
        dict(d.get("observations") or {}),
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
    where = f"{where} ('{name}')"
    extra = set(d) - VECTOR_KEYS
    if extra:
        raise VectorFormatError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    packets_data = _need(d, "packets", where)
    if not isinstance(packets_data, list) or not packets_data:
        raise VectorFormatError(f"{where}: 'packets' must be a non-empty list")
    packets = [packet_from_data(p, prog, f"{where}.packets[{i}]") for i, p in enumerate(packets_data)]
    expected_data = d.get("expected") or []
    if expected_data and len(expected_data) != len(packets):
        raise VectorFormatError(f"{where}: {len(expected_data)} expected results for {len(packets)} packets")
    return Vector(
        name=str(name),
        control=control_from_data(d.get("control"), prog, f"{where}.control"),
        packets=packets,
        registers=registers_from_data(d.get("registers"), prog, f"{where}.registers"),
        expected=[expected_from_data(e, prog, f"{where}.expected[{i}]") for i, e in enumerate(expected_data)],
        tags=[str(t) for t in d.get("tags") or []],
        requires=[str(r) for r in d.get("requires") or []],
        provenance=dict(d.get("provenance") or {}),
    )


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
