"""Expressions of the IR as C99 expressions over uint64_t / c3po_u128 values.

Every value of width W <= 64 is a `uint64_t` holding a number < 2^W, wider ones a `c3po_u128`; booleans are C
ints. Each operator masks its result back to its width, so wrap-around is explicit and nothing relies on C's
integer promotions or on undefined shifts. Field reads are delegated to a resolver, because the same expression
reads a parsed header in the control, the header being extracted in a varlen length, or a TLV option header
while walking options.
"""

from __future__ import annotations

from collections.abc import Callable

from c3po_compiler import ir
from targets.c_bounds import compared

FieldResolver = Callable[[ir.FieldRef], str]


class Unsupported(Exception):
    """An expression form this target does not generate (reported as a refusal, never emitted wrong)."""


def ctype(width: int) -> str:
    """The narrowest C storage type for a value of `width` bits (table keys, args, registers, metadata)."""
    if width <= 8:
        return "uint8_t"
    if width <= 16:
        return "uint16_t"
    if width <= 32:
        return "uint32_t"
    if width <= 64:
        return "uint64_t"
    return "c3po_u128"


def vtype(width: int) -> str:
    """The C type an expression of `width` bits is computed in."""
    return "c3po_u128" if width > 64 else "uint64_t"


def const(value: int, width: int) -> str:
    if width > 64:
        hi, lo = value >> 64, value & ((1 << 64) - 1)
        if hi == 0:
            return f"((c3po_u128)UINT64_C({lo:#x}))"
        return f"(((c3po_u128)UINT64_C({hi:#x}) << 64) | UINT64_C({lo:#x}))"
    return f"UINT64_C({value:#x})"


def mask_expr(code: str, width: int) -> str:
    """`code` reduced modulo 2^width (no-op at the C type's own width)."""
    if width in (64, 128):
        return code
    return f"({code} & {const((1 << width) - 1, width)})"


def convert(code: str, from_w: int, to_w: int) -> str:
    """Change representation between uint64_t and c3po_u128 (values already fit)."""
    if from_w <= 64 < to_w:
        return f"((c3po_u128){code})"
    if to_w <= 64 < from_w:
        return f"((uint64_t){code})"
    return code


def valid_terms(prog: ir.Program, e: ir.Expr) -> set[str]:
    """The (non-stack) instances a condition being true implies valid: `valid(h)` and `present(h.g)` terms of
    its top-level conjunction."""
    if isinstance(e, ir.Binary) and e.op == "&&":
        return valid_terms(prog, e.left) | valid_terms(prog, e.right)
    if isinstance(e, ir.Valid | ir.Present) and not prog.instances[e.instance].is_stack:
        return {e.instance}
    return set()


class ExprCompiler:
    """Compiles expressions; `hash_sites` collects one helper per hash() call for the program."""

    def __init__(self, prog: ir.Program, hash_sites: list[ir.Hash]) -> None:
        self.prog = prog
        self.hash_sites = hash_sites
        # (non-stack) instances known to be valid where the expression is evaluated: the right operand of
        # `valid(h) && ...`, or the branch of an `if` that tested them; their field reads need no valid test
        self.known_valid: set[str] = set()

    def hash_index(self, e: ir.Hash) -> int:
        for i, h in enumerate(self.hash_sites):
            if h is e:
                return i
        self.hash_sites.append(e)
        return len(self.hash_sites) - 1

    def compile(self, e: ir.Expr, fields: FieldResolver, lookahead: Callable[[ir.Lookahead], str] | None = None
                ) -> str:
        c = lambda x: self.compile(x, fields, lookahead)  # noqa: E731
        w = e.width
        if isinstance(e, ir.Const):
            if w == ir.BOOL:
                return "1" if e.value else "0"
            return const(e.value & ((1 << w) - 1), w)
        if isinstance(e, ir.FieldRef):
            return fields(e)
        if isinstance(e, ir.MetaRef):
            return f"(({vtype(w)})c->m_{e.name})"
        if isinstance(e, ir.StdRef):
            return f"((uint64_t)c->std_{e.name})"
        if isinstance(e, ir.ParamRef):
            return f"(({vtype(w)})p->{e.name})"
        if isinstance(e, ir.RegRead):
            idx = c(e.index)
            if e.index.width > 64:
                idx = f"c3po_clamp128({idx})"
            return f"(({vtype(w)})rr_{e.register}(st, {idx}))"
        if isinstance(e, ir.Lookahead):
            if lookahead is None:
                raise Unsupported("lookahead outside a parser select")
            return lookahead(e)
        if isinstance(e, ir.Unary):
            x = c(e.operand)
            if e.op == "!":
                return f"(!{x})"
            if e.op == "~":
                return mask_expr(f"(~{x})", w)
            return mask_expr(f"(({vtype(w)})0 - {x})", w)
        if isinstance(e, ir.Binary):
            if e.op == "&&":
                left = c(e.left)
                added = valid_terms(self.prog, e.left) - self.known_valid
                self.known_valid |= added
                try:
                    right = c(e.right)
                finally:
                    self.known_valid -= added
                return self.binary(e, left, right)
            if e.op in ("<", "<=", ">", ">=", "==", "!=") and ir.BOOL not in (e.left.width, e.right.width):
                fixed = compared(e.op, e.left, e.right)
                if fixed is not None:
                    return "1" if fixed else "0"
            return self.binary(e, c(e.left), c(e.right))
        if isinstance(e, ir.Cast):
            x = c(e.operand)
            fw = e.operand.width
            if fw == ir.BOOL:
                return f"(({vtype(w)})({x} ? 1 : 0))"
            x = convert(x, fw, e.to)
            return mask_expr(x, e.to) if e.to < fw else x
        if isinstance(e, ir.Slice):
            x = c(e.operand)
            fw = e.operand.width
            shifted = f"({x} >> {e.lo})" if e.lo else x
            return mask_expr(convert(shifted, fw, w), w)
        if isinstance(e, ir.Valid):
            inst = self.prog.instances[e.instance]
            if inst.is_stack:
                return f"(c->v_{inst.ident}[{e.index or 0}] != 0)"
            return f"(c->v_{inst.ident} != 0)"
        if isinstance(e, ir.Present):
            inst = self.prog.instances[e.instance]
            if inst.is_stack:
                raise Unsupported("present() on a header stack")
            return f"(c->v_{inst.ident} && c->g_{inst.ident}_{e.group})"
        if isinstance(e, ir.Hash):
            i = self.hash_index(e)
            return f"((uint64_t)hash_{i}({', '.join(c(a) for a in e.args)}))"
        raise Unsupported(f"expression {type(e).__name__}")

    def binary(self, e: ir.Binary, a: str, b: str) -> str:
        w, op = e.width, e.op
        if op in ("&&", "||"):
            return f"({a} {op} {b})"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            lw, rw = e.left.width, e.right.width
            if lw == ir.BOOL or rw == ir.BOOL:
                return f"(({a} != 0) {op} ({b} != 0))"
            return f"({a} {op} {b})"
        if op in ("+", "-", "*"):
            return mask_expr(f"({a} {op} {b})", w)
        if op in ("&", "|", "^"):
            return f"({a} {op} {b})"
        if op in ("<<", ">>"):
            rw = e.right.width
            if w > 64:
                n = convert(b, rw, 128)
                return f"c3po_shl128({a}, {n}, {w})" if op == "<<" else f"c3po_shr128({a}, {n})"
            n = f"c3po_clamp128({b})" if rw > 64 else b
            return f"c3po_shl64({a}, {n}, {w})" if op == "<<" else f"c3po_shr64({a}, {n})"
        raise Unsupported(f"operator {op}")
