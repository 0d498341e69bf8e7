"""p4c's Simple Test Framework files (.stf): import vendor tests, export c3po vectors for p4c's runners.

Supported lines: `add TABLE [PRIORITY] KEY:VALUE ... ACTION(PARAM:VALUE, ...)`,
`setdefault TABLE ACTION(...)`, `packet PORT HEX`, `expect PORT HEX` (`*` nibbles are wildcards), comments
`#`. Names are the ones the P4
target gives its control plane (targets/p4/entries.py): tables and actions keep their spec names, keys are the
spec key text (`ipv4.dst`, `meta.nexthop`, `std.ingress_port`). On import, p4c-style `hdr.ipv4.dst` and
`standard_metadata.ingress_port` keys and control-qualified tables (`ingress.routes_v4`) are accepted too, and
lines for the extra copies `t__2`, `t__3` of a table the P4 target applies from several places are skipped
(c3po fills every copy from one entry). STF has no verdicts: an `expect` means "forward to that port"; a
packet without one must not come out (drop); to_host is written as a `# c3po: to_host HEX` comment. c3po
writes `# vector NAME` before each vector and reads it back, so one file can hold several vectors; without
it the whole file is one vector.
"""

from __future__ import annotations

import re
from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.input_files import VECTOR_LIMIT, InputFileError, read_input_text

from .model import ControlState, EntryState, Expected, PacketIn, Vector, final_state
from .packets import literal
from .vectors import VectorFormatError, canonical_match


class StfError(ValueError):
    """An STF line c3po cannot map; the message names the file and the line."""


def p4_key_name(key: ir.TableKey) -> str:
    return key.text


def _spec_key_name(name: str) -> str:
    if name.startswith("hdr."):
        return name[4:]
    if name.startswith("standard_metadata."):
        return "std." + name[len("standard_metadata.") :]
    return name


def _hex_nibbles(text: str) -> tuple[bytes, bytes | None]:
    clean = re.sub(r"\s+", "", text).removeprefix("0x").rstrip("$")
    if len(clean) % 2 or not re.fullmatch(r"[0-9a-fA-F*]*", clean):
        raise ValueError(f"'{text.strip()[:40]}' is not whole hex bytes")
    if "*" not in clean:
        return bytes.fromhex(clean), None
    data = bytes.fromhex(clean.replace("*", "0"))
    mask = bytes.fromhex("".join("0" if c == "*" else "f" for c in clean))
    return data, mask


def _table(prog: ir.Program, name: str) -> ir.Table | None:
    return prog.tables.get(name) or prog.tables.get(name.rsplit(".", 1)[-1])


def _action_call(prog: ir.Program, table: ir.Table, text: str) -> tuple[str, tuple[int, ...]]:
    m = re.fullmatch(r"([\w.]+)\s*(?:\((.*)\))?", text.strip())
    if not m:
        raise ValueError(f"'{text}' is not an action call")
    name = m.group(1).rsplit(".", 1)[-1]
    if name not in [*table.actions, "nop"]:
        raise ValueError(f"action '{name}' is not one of table '{table.name}''s actions")
    params = prog.actions[name].params
    given: dict[str, str] = {}
    positional: list[str] = []
    for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
        if ":" in part:
            k, v = part.split(":", 1)
            given[k.strip()] = v.strip()
        else:
            positional.append(part)
    values = positional or [given.get(p.name, "") for p in params]
    if len(values) != len(params) or "" in values:
        raise ValueError(f"action '{name}' needs {', '.join(p.name for p in params) or 'no arguments'}")
    return name, tuple(
        literal(v, p.width, f"argument '{p.name}'") for v, p in zip(values, params, strict=True)
    )


def loads_stf(text: str, prog: ir.Program, source: str = "<stf>") -> list[Vector]:
    vectors: list[Vector] = []
    name = Path(source).stem
    entries: list[EntryState] = []
    defaults: list[tuple[str, str, tuple[int, ...]]] = []
    packets: list[PacketIn] = []
    expected: list[Expected | None] = []

    def flush() -> None:
        if packets:
            exp = [e if e is not None else Expected("drop", None, b"") for e in expected]
            vectors.append(
                Vector(
                    name,
                    ControlState(tuple(entries), tuple(defaults)),
                    list(packets),
                    expected=exp,
                    provenance={"generator": "stf", "file": source},
                )
            )
        packets.clear()
        expected.clear()

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{lineno}"
        m = re.match(r"#\s*vector\s+(\S+)", line)
        if m:
            flush()
            entries, defaults, name = [], [], m.group(1)
            continue
        m = re.match(r"#\s*c3po:\s*to_host\s*([0-9a-fA-F*]*)", line)
        if m and expected:
            try:
                data, mask = _hex_nibbles(m.group(1))
            except ValueError as exc:
                raise StfError(f"{where}: {exc}") from None
            expected[-1] = Expected("to_host", None, data, mask)
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cmd, _, rest = line.partition(" ")
        try:
            if cmd == "packet":
                port, _, hx = rest.strip().partition(" ")
                packets.append(PacketIn(int(port, 0), _hex_nibbles(hx)[0]))
                expected.append(None)
            elif cmd == "expect":
                port, _, hx = rest.strip().partition(" ")
                data, mask = _hex_nibbles(hx)
                if not expected:
                    raise ValueError("'expect' before any 'packet'")
                expected[-1] = Expected("forward", int(port, 0), data, mask)
            elif cmd in ("add", "setdefault"):
                tname, _, rest = rest.strip().partition(" ")
                if re.fullmatch(r".*__\d+", tname) and _table(prog, tname) is None:
                    continue  # another copy of a table applied from several places: same entries
                table = _table(prog, tname)
                if table is None:
                    raise ValueError(f"unknown table '{tname}'")
                call_at = rest.find("(") if "(" in rest else len(rest)
                head, call = rest[:call_at].split(), rest[call_at:]
                if cmd == "setdefault":
                    action = head[-1] if head else ""
                    defaults.append((table.name, *_action_call(prog, table, action + call)))
                    continue
                action = head.pop() if head else ""
                priority = int(head.pop(0)) if head and ":" not in head[0] else 0
                given: dict[str, str] = {}
                for kv in head:
                    k, _, v = kv.partition(":")
                    given[_spec_key_name(k)] = v
                match: list[KeyElem] = []
                for key in table.keys:
                    if key.text in given:
                        match.append(canonical_match(given.pop(key.text).replace("->", " .. "), key, where))
                    elif key.kind == "exact":
                        raise ValueError(f"exact key '{p4_key_name(key)}' needs a value")
                    else:
                        match.append(KeyElem("any"))
                if given:
                    raise ValueError(f"table '{table.name}' has no key {', '.join(given)}")
                entries.append(
                    EntryState(
                        table.name, tuple(match), *_action_call(prog, table, action + call), priority=priority
                    )
                )
            else:
                raise ValueError(f"unknown STF command '{cmd}'")
        except (ValueError, VectorFormatError) as exc:
            raise StfError(f"{where}: {exc}") from None
    flush()
    return vectors


def load_stf(path: str | Path, prog: ir.Program) -> list[Vector]:
    p = Path(path)
    try:  # a regular file of at most C3PO_MAX_VECTOR_BYTES (c3po_compiler.input_files)
        text = read_input_text(p, "STF file", VECTOR_LIMIT)
    except InputFileError as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise StfError(f"{p}{line}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
    return loads_stf(text, prog, str(p))


def _stf_value(e: KeyElem) -> str:
    if e.kind == "prefix":
        return f"{e.a:#x}/{e.b}"
    if e.kind == "mask":
        return f"{e.a:#x}&&&{e.b:#x}"
    if e.kind == "range":
        return f"{e.a:#x}->{e.b:#x}"
    return f"{e.a:#x}"


def _expect_hex(e: Expected) -> str:
    if e.care_mask is None:
        return e.data.hex()
    out = []
    for b, m in zip(e.data.hex(), e.care_mask.hex(), strict=True):
        out.append(b if m == "f" else "*")
    return "".join(out)


def _named_args(params: list[ir.Param], args: tuple[int, ...]) -> str:
    return ", ".join(f"{p.name}:{x:#x}" for p, x in zip(params, args, strict=True))


def dumps_stf(vectors: list[Vector], prog: ir.Program) -> str:
    """One `# vector` section per vector. Verdicts STF cannot say: to_host becomes no `expect` plus a
    `# c3po: to_host HEX` comment (read back by `loads_stf`, ignored by p4c); reflect becomes an `expect` on
    the ingress port; drop is a packet without `expect`."""
    lines = ["# generated by c3po, do not edit"]
    for v in vectors:
        lines.append(f"# vector {v.name}")
        control = final_state(prog, v.control)  # STF has no delete: a sequence is exported as its image
        for e in control.entries:
            keys = prog.tables[e.table].keys
            kv = " ".join(
                f"{p4_key_name(k)}:{_stf_value(m)}"
                for k, m in zip(keys, e.match, strict=True)
                if m.kind != "any"
            )
            params = prog.actions[e.action].params
            args = ", ".join(f"{p.name}:{a:#x}" for p, a in zip(params, e.args, strict=True))
            prio = f" {e.priority}" if prog.tables[e.table].uses_priority else ""
            lines.append(f"add {e.table}{prio} {kv} {e.action}({args})".replace("  ", " "))
        for t, a, args_ in control.defaults:
            params = prog.actions[a].params
            lines.append(f"setdefault {t} {a}({_named_args(params, args_)})")
        for i, pk in enumerate(v.packets):
            lines.append(f"packet {pk.port} {pk.data.hex()}")
            exp = v.expected[i] if i < len(v.expected) else None
            if exp is None:
                continue
            if exp.verdict in ("forward", "reflect"):
                lines.append(f"expect {exp.port if exp.port is not None else pk.port} {_expect_hex(exp)}")
            elif exp.verdict == "to_host":
                lines.append(f"# c3po: to_host {_expect_hex(exp)}")
    return "\n".join(lines) + "\n"
