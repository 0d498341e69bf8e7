"""Keys, actions and values on the command line, written as in specs and vector files.

`ipv4.dst=10.0.0.0/8`, `ethernet.dst=02:00:00:00:00:01`, ternary `V&&&MASK`, range `LO..HI`, IPv6 literals,
decimal or hex; action parameters as `PARAM=VALUE` (or positionally, or `action(1, 2)`). Match values go through
the front end's `matches.canonical_match` (strict: host bits beyond a prefix are an error with a did-you-mean),
so a value means the same here as in a spec's constant entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from c3po_compiler import ir, matches
from c3po_compiler.expr import Const, ExprSyntaxError, KeyElem, parse_action_call, parse_expression
from c3po_compiler.text import terminal_text

from .api import ControlError, Entry, did_you_mean


def value(text: str, width: int, what: str) -> int:
    """A constant as a spec writes it (decimal, hex, MAC, IPv4, IPv6), checked against bit<width>."""
    try:
        e = parse_expression(text)
    except ExprSyntaxError as exc:
        raise ControlError(f"{what}: '{terminal_text(text)}' is not a value ({exc.message})",
                           "write a number (10, 0x0a), a MAC (02:00:00:00:00:01) or an IP address") from None
    if not isinstance(e, Const):
        raise ControlError(f"{what}: '{terminal_text(text)}' is not a constant")
    if not 0 <= e.value < 1 << width:
        raise ControlError(f"{what}: '{terminal_text(text)}' does not fit bit<{width}>",
                           f"the largest value is {(1 << width) - 1:#x}")
    return e.value


def parse_match(table: ir.Table, items: Sequence[str]) -> tuple[KeyElem, ...]:
    """`KEY=VALUE` items to one canonical element per key; keys not given are wildcards (an error for exact)."""
    given: dict[str, str] = {}
    names = [k.text for k in table.keys]
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ControlError(f"'{terminal_text(item)}' is not KEY=VALUE",
                               f"keys of table '{table.name}': {', '.join(names) or '(none)'}")
        if key not in names:
            hint = did_you_mean(key, names, "key").hint
            raise ControlError(f"table '{table.name}' has no key '{terminal_text(key)}'", hint)
        if key in given:
            raise ControlError(f"key '{key}' is given twice")
        given[key] = text.strip()
    out = []
    for k in table.keys:
        if k.text not in given:
            if k.kind == "exact":
                raise ControlError(f"exact key '{k.text}' needs a value", f"add {k.text}=VALUE")
            out.append(KeyElem("any"))
            continue
        try:
            out.append(matches.canonical_match(given[k.text], k.kind, k.width, k.text, strict=True))
        except matches.MatchValueError as exc:
            raise ControlError(f"key '{k.text}': {terminal_text(exc.message)}", exc.hint) from None
    return tuple(out)


def parse_action(prog: ir.Program, table: ir.Table, action: str, params: Sequence[str],
                 default: bool = False) -> tuple[str, tuple[int, ...]]:
    """`ACTION [PARAM=VALUE ...]`, `ACTION V1 V2`, or `ACTION(V1, V2)`: the action and its arguments."""
    allowed = [*table.actions, "nop"] if default else list(table.actions)
    if "(" in action:
        try:
            name, exprs = parse_action_call(action)
        except ExprSyntaxError as exc:
            raise ControlError(f"action '{terminal_text(action)}': {exc.message}", exc.hint) from None
        if params:
            raise ControlError("give arguments either in parentheses or as PARAM=VALUE, not both")
        if not all(isinstance(a, Const) for a in exprs):
            raise ControlError(f"action '{terminal_text(action)}': arguments must be constants")
        texts = [hex(a.value) for a in exprs if isinstance(a, Const)]
        positional = True
    else:
        name, texts, positional = action, list(params), not any("=" in p for p in params)
    if name not in allowed:
        if name in prog.actions:
            raise ControlError(f"action '{name}' is not an action of table '{table.name}'",
                               "its actions: " + ", ".join(allowed))
        raise did_you_mean(terminal_text(name), allowed, "action")
    ps = prog.actions[name].params
    sig = ", ".join(f"{p.name}=bit<{p.width}>" for p in ps) or "no parameters"
    if positional:
        if len(texts) != len(ps):
            raise ControlError(f"action '{name}' takes {len(ps)} argument(s), {len(texts)} given", sig)
        return name, tuple(value(t, p.width, f"argument '{p.name}'") for t, p in zip(texts, ps, strict=True))
    by_name: dict[str, str] = {}
    for t in texts:
        pname, sep, v = t.partition("=")
        if not sep:
            raise ControlError(f"'{terminal_text(t)}': write every argument as PARAM=VALUE, or none", sig)
        if pname not in {p.name for p in ps}:
            raise did_you_mean(terminal_text(pname), [p.name for p in ps], f"parameter of '{name}'")
        if pname in by_name:
            raise ControlError(f"parameter '{pname}' is given twice")
        by_name[pname] = v
    missing = [p.name for p in ps if p.name not in by_name]
    if missing:
        raise ControlError(f"action '{name}' needs {', '.join(missing)}", sig)
    return name, tuple(value(by_name[p.name], p.width, f"argument '{p.name}'") for p in ps)


def match_text(table: ir.Table, match: Sequence[KeyElem]) -> str:
    """The match as `KEY=VALUE` items (wildcards left out), written back in the spec's syntax: IPv4/IPv6
    addresses and MACs where the key is one, else hex."""
    parts = []
    for k, m in zip(table.keys, match, strict=True):
        if m.kind == "any":
            continue
        parts.append(f"{k.text}={elem_text(m, k.width, k.text)}")
    return " ".join(parts) or "(all wildcards)"


def literal_text(v: int, width: int, key: str = "") -> str:
    import ipaddress

    leaf = key.rsplit(".", 1)[-1]
    if width == 32 and leaf in ("src", "dst", "addr", "src_addr", "dst_addr", "nexthop", "ip"):
        return str(ipaddress.IPv4Address(v))
    if width == 128:
        return str(ipaddress.IPv6Address(v))
    if width == 48:
        return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))
    return str(v) if width <= 16 or v < 10 else hex(v)  # ports, VLAN ids, next-hop ids read best in decimal


def elem_text(m: KeyElem, width: int, key: str = "") -> str:
    if m.kind == "prefix":
        if m.b == width:
            return literal_text(m.a, width, key)
        return f"{literal_text(m.a, width, key)}/{m.b}"
    if m.kind == "mask":
        if m.b == (1 << width) - 1:
            return literal_text(m.a, width, key)
        return f"{literal_text(m.a, width, key)}&&&{literal_text(m.b, width, key)}"
    if m.kind == "range":
        return literal_text(m.a, width, key) if m.a == m.b else f"{m.a}..{m.b}"
    if m.kind == "any":
        return "_"
    return literal_text(m.a, width, key)


def action_text(prog: ir.Program, action: str, args: Sequence[int]) -> str:
    ps = prog.actions[action].params
    return " ".join([action, *(f"{p.name}={literal_text(a, p.width, p.name)}" for p, a in zip(ps, args, strict=True))])


def entry_text(prog: ir.Program, table: ir.Table, e: Entry) -> str:
    pr = f" priority={e.priority}" if table.uses_priority else ""
    const = " (const)" if e.const else ""
    return f"{match_text(table, e.match)} -> {action_text(prog, e.action, e.args)}{pr}{const}"
