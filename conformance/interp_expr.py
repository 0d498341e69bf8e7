"""IR expressions compiled once into Python closures over the packet state (`Ctx`).

Each closure returns the expression's value: an int already reduced to the expression's width, or a bool for
`BOOL`-typed expressions. Compiling once per program (instead of walking the tree per packet) is what makes the
oracle fast enough to run large vector suites, while each case below stays a one-line transcription of
docs/spec-reference.md section 10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir

from .checksums import crc16_arc, crc32
from .interp_runtime import Ctx, HeaderLayout, ParseFail, Slots

__all__ = ["Env", "Fn", "compile_expr"]

Fn = Callable[[Ctx], int]


@dataclass
class Env:
    """What names mean in the expressions being compiled."""

    prog: ir.Program
    slots: Slots
    layouts: dict[str, HeaderLayout]  # instance -> layout of its type
    meta_index: dict[str, int]
    params: dict[str, int] = field(default_factory=dict)  # action parameter -> position in Ctx.params
    local: dict[str, int] = field(default_factory=dict)  # header-local field (FieldRef instance "") -> Ctx.local

    def with_params(self, params: dict[str, int]) -> Env:
        return Env(self.prog, self.slots, self.layouts, self.meta_index, params, {})

    def with_local(self, local: dict[str, int]) -> Env:
        return Env(self.prog, self.slots, self.layouts, self.meta_index, {}, local)


def _mask(width: int) -> int:
    return (1 << width) - 1 if width > 0 else 1


def field_reader(env: Env, e: ir.FieldRef) -> Fn:
    """A field of a header element; 0 when the element is invalid (or its group absent: those values are 0)."""
    if e.instance == "":
        li = env.local[e.field_name]
        return lambda c: c.local[li]
    i = env.layouts[e.instance].index[e.field_name]
    base = env.slots.base[e.instance]
    if e.index == "last":
        sid = env.slots.stack_id[e.instance]

        def read_last(c: Ctx) -> int:
            n = c.stack_next[sid]
            h = c.hdrs[base + n - 1] if n else None
            return h.vals[i] if h is not None else 0

        return read_last
    k = base + (e.index if isinstance(e.index, int) else 0)

    def read(c: Ctx) -> int:
        h = c.hdrs[k]
        return h.vals[i] if h is not None else 0

    return read


def _lookahead(e: ir.Lookahead) -> Fn:
    bits, offset, mask = e.bits, e.offset, _mask(e.bits)

    def look(c: Ctx) -> int:
        start = c.cursor * 8 + offset
        end = start + bits
        if end > c.length * 8:
            raise ParseFail(ir.ParseError.TRUNCATED)
        chunk = c.data[start // 8:(end + 7) // 8]
        return (int.from_bytes(chunk, "big") >> (-end % 8)) & mask

    return look


def _binary(op: str, width: int, a: Fn, b: Fn) -> Fn:
    m = _mask(width)
    if op == "+":
        return lambda c: (a(c) + b(c)) & m
    if op == "-":
        return lambda c: (a(c) - b(c)) & m
    if op == "*":
        return lambda c: (a(c) * b(c)) & m
    if op == "&":
        return lambda c: a(c) & b(c)
    if op == "|":
        return lambda c: a(c) | b(c)
    if op == "^":
        return lambda c: a(c) ^ b(c)
    if op == "<<":
        def shl(c: Ctx) -> int:
            n = b(c)
            return (a(c) << n) & m if n < width else 0
        return shl
    if op == ">>":
        def shr(c: Ctx) -> int:
            n = b(c)
            return a(c) >> n if n < width else 0
        return shr
    if op == "==":
        return lambda c: a(c) == b(c)
    if op == "!=":
        return lambda c: a(c) != b(c)
    if op == "<":
        return lambda c: a(c) < b(c)
    if op == "<=":
        return lambda c: a(c) <= b(c)
    if op == ">":
        return lambda c: a(c) > b(c)
    if op == ">=":
        return lambda c: a(c) >= b(c)
    if op == "&&":
        return lambda c: bool(a(c)) and bool(b(c))
    if op == "||":
        return lambda c: bool(a(c)) or bool(b(c))
    raise ValueError(f"IR bug: unknown binary operator {op!r}")


def _hash(e: ir.Hash, args: list[Fn]) -> Fn:
    sizes = [(a, (x.width + 7) // 8) for a, x in zip(args, e.args, strict=True)]
    algo = crc16_arc if e.algorithm == "crc16" else crc32
    if e.algorithm not in ("crc16", "crc32"):
        raise ValueError(f"IR bug: unknown hash algorithm {e.algorithm!r}")

    def hash_(c: Ctx) -> int:
        return algo(b"".join(f(c).to_bytes(n, "big") for f, n in sizes))

    return hash_


def compile_expr(e: ir.Expr, env: Env) -> Fn:
    if isinstance(e, ir.Const):
        v = bool(e.value) if e.width == ir.BOOL else (e.value & _mask(e.width) if e.width > 0 else e.value)
        return lambda c: v
    if isinstance(e, ir.FieldRef):
        return field_reader(env, e)
    if isinstance(e, ir.MetaRef):
        mi = env.meta_index[e.name]
        return lambda c: c.meta[mi]
    if isinstance(e, ir.StdRef):
        if e.name == "ingress_port":
            return lambda c: c.port & 0xFFFF
        if e.name == "packet_length":
            return lambda c: c.length
        raise ValueError(f"IR bug: unknown standard metadata {e.name!r}")
    if isinstance(e, ir.ParamRef):
        pi = env.params[e.name]
        return lambda c: c.params[pi]
    if isinstance(e, ir.RegRead):
        reg = env.prog.registers[e.register]
        name, size = reg.name, reg.size
        idx = compile_expr(e.index, env)

        def reg_read(c: Ctx) -> int:
            i = idx(c)
            return c.regs.get((name, i), 0) if i < size else 0

        return reg_read
    if isinstance(e, ir.Lookahead):
        return _lookahead(e)
    if isinstance(e, ir.Unary):
        a = compile_expr(e.operand, env)
        m = _mask(e.width)
        if e.op == "!":
            return lambda c: not a(c)
        if e.op == "~":
            return lambda c: a(c) ^ m
        if e.op == "-":
            return lambda c: -a(c) & m
        raise ValueError(f"IR bug: unknown unary operator {e.op!r}")
    if isinstance(e, ir.Binary):
        return _binary(e.op, e.left.width, compile_expr(e.left, env), compile_expr(e.right, env))
    if isinstance(e, ir.Cast):
        a = compile_expr(e.operand, env)
        m = _mask(e.to)
        return lambda c: a(c) & m
    if isinstance(e, ir.Slice):
        a = compile_expr(e.operand, env)
        lo, m = e.lo, _mask(e.hi - e.lo + 1)
        return lambda c: (a(c) >> lo) & m
    if isinstance(e, ir.Valid):
        if e.instance not in env.slots.base:
            raise ValueError(f"IR bug: valid() of unknown instance {e.instance!r}")
        k = env.slots.slot(e.instance, e.index)
        return lambda c: c.hdrs[k] is not None
    if isinstance(e, ir.Present):
        k = env.slots.slot(e.instance, None)
        gi = [g.name for g in env.prog.instances[e.instance].type.groups].index(e.group)

        def present(c: Ctx) -> int:
            h = c.hdrs[k]
            return h is not None and h.present[gi]

        return present
    if isinstance(e, ir.Hash):
        return _hash(e, [compile_expr(a, env) for a in e.args])
    raise ValueError(f"IR bug: unexpected expression node {type(e).__name__}")
