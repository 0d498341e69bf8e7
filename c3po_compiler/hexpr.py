"""Header-local expressions evaluated over field values: a varlen length, an optional group's `when`, a TLV size.

The one evaluator of these for the conformance tools (conformance/packets.py builds and reads headers with it)
and for targets that choose code by what an expression gives (the xdp parser's fast path for a header without a
variable part): both must agree with the reference interpreter, so there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .expr import Binary, Cast, Const, Expr, FieldRef, Slice, Unary


class HeaderExprError(ValueError):
    """An expression of a kind header-local expressions cannot hold."""


def _mask(width: int) -> int:
    return (1 << width) - 1 if width > 0 else 1


def eval_header_expr(e: Expr, values: Mapping[str, int], leaf: Callable[[Expr], int | None] | None = None) -> int:
    """Evaluate a header-local expression (varlen length, group `when`, TLV size) over field values.

    Only the node kinds the front end allows in those places are handled; booleans are 0/1. `leaf`, when given,
    answers references first (the generator evaluates parser-state statements over a whole path with it).
    """
    if leaf is not None:
        v = leaf(e)
        if v is not None:
            return v
    if isinstance(e, Const):
        return e.value
    if isinstance(e, FieldRef):
        return values.get(e.field_name, 0)
    if isinstance(e, Cast):
        return eval_header_expr(e.operand, values, leaf) & _mask(e.to)
    if isinstance(e, Slice):
        return (eval_header_expr(e.operand, values, leaf) >> e.lo) & _mask(e.hi - e.lo + 1)
    if isinstance(e, Unary):
        v = eval_header_expr(e.operand, values, leaf)
        if e.op == "!":
            return int(not v)
        if e.op == "~":
            return ~v & _mask(e.width)
        return (-v) & _mask(e.width)
    if isinstance(e, Binary):
        a, b = eval_header_expr(e.left, values, leaf), eval_header_expr(e.right, values, leaf)
        w = e.left.width if e.left.width > 0 else e.width
        ops = {
            "+": lambda: (a + b) & _mask(w),
            "-": lambda: (a - b) & _mask(w),
            "*": lambda: (a * b) & _mask(w),
            "&": lambda: a & b,
            "|": lambda: a | b,
            "^": lambda: a ^ b,
            "<<": lambda: (a << b) & _mask(w) if b < w else 0,
            ">>": lambda: a >> b if b < w else 0,
            "==": lambda: int(a == b),
            "!=": lambda: int(a != b),
            "<": lambda: int(a < b),
            "<=": lambda: int(a <= b),
            ">": lambda: int(a > b),
            ">=": lambda: int(a >= b),
            "&&": lambda: int(bool(a) and bool(b)),
            "||": lambda: int(bool(a) or bool(b)),
        }
        return ops[e.op]()
    raise HeaderExprError(f"cannot evaluate {type(e).__name__} in a header expression")
