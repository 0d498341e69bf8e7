"""Value bounds of IR expressions, for the C targets (nic, xdp): comparisons whose result the bounds decide are
folded at build time, never emitted (gcc's -Wtype-limits refuses `unsigned >= 0` under -Werror)."""

from __future__ import annotations

from collections.abc import Callable

from c3po_compiler import ir


def constant(e: ir.Expr) -> int | None:
    """The value of an expression made of constants only (`~0x7fff & 0x7fff`, `1 - 1`), else None: gcc folds
    such operands before it judges a comparison, so they are folded here too."""
    if e.width == ir.BOOL or e.width <= 0:
        return None
    top = (1 << e.width) - 1
    if isinstance(e, ir.Const):
        return e.value & top
    if isinstance(e, ir.Cast):
        v = constant(e.operand)
        return None if v is None else v & top
    if isinstance(e, ir.Slice):
        v = constant(e.operand)
        return None if v is None else (v >> e.lo) & top
    if isinstance(e, ir.Unary) and e.op in ("~", "-"):
        v = constant(e.operand)
        return None if v is None else (~v if e.op == "~" else -v) & top
    if isinstance(e, ir.Binary) and e.op in ("+", "-", "*", "&", "|", "^", "<<", ">>"):
        a, b = constant(e.left), constant(e.right)
        if a is None or b is None:
            return None
        if e.op in ("<<", ">>"):
            return 0 if b >= e.width else ((a << b) if e.op == "<<" else (a >> b)) & top
        ops = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}
        return ops[e.op] & top
    return None


def value_range(e: ir.Expr) -> tuple[int, int]:
    """Bounds of the values `e` can take: a constant is itself, a widening cast keeps its operand's bounds."""
    top = (1 << max(e.width, 1)) - 1
    v = constant(e)
    if v is not None:
        return v, v
    if isinstance(e, ir.Cast) and e.operand.width != ir.BOOL and value_range(e.operand)[1] <= top:
        return value_range(e.operand)
    if isinstance(e, ir.Binary) and e.op == "&":
        return 0, min(value_range(e.left)[1], value_range(e.right)[1])
    return 0, top


def known_bits(e: ir.Expr) -> tuple[int, int]:
    """(bits that are 1 in every value of `e`, bits that may be 1): `x | 0x207` always has 0x207 set, `x & 5` never
    has bit 1. gcc decides `(x | 0x207) == 0` and `(x & 5) == 2` from these and refuses them under -Werror
    (-Wtautological-compare, "bitwise comparison always evaluates to false")."""
    top = (1 << max(e.width, 1)) - 1
    v = constant(e)
    if v is not None:
        return v, v
    if isinstance(e, ir.Cast) and e.operand.width != ir.BOOL:
        one, may = known_bits(e.operand)
        return one & top, may & top
    if isinstance(e, ir.Binary) and e.op in ("&", "|"):
        (a1, am), (b1, bm) = known_bits(e.left), known_bits(e.right)
        return (a1 & b1, am & bm) if e.op == "&" else (a1 | b1, am | bm)
    return 0, top


def compared(op: str, left: ir.Expr, right: ir.Expr) -> bool | None:
    """The comparison's result when the operands' bounds or known bits fix it, else None (see `decided`)."""
    fixed = decided(op, value_range(left), value_range(right))
    if fixed is None and op in ("==", "!="):
        (l1, lm), (r1, rm) = known_bits(left), known_bits(right)
        if l1 & ~rm or r1 & ~lm:  # a bit set on one side is clear on the other: never equal
            fixed = op == "!="
    return fixed


def decided(op: str, left: tuple[int, int], right: tuple[int, int]) -> bool | None:
    """The comparison's result when the operands' bounds fix it (`x >= 0`, `x <= 255` of a byte), else None:
    such comparisons are folded here, never emitted (gcc's -Wtype-limits refuses them under -Werror)."""
    (al, ah), (bl, bh) = left, right
    if op in (">", ">="):
        op, (al, ah), (bl, bh) = ("<" if op == ">" else "<="), (bl, bh), (al, ah)
    facts = {"<": (ah < bl, al >= bh), "<=": (ah <= bl, al > bh),
             "==": (al == ah == bl == bh, ah < bl or bh < al), "!=": (ah < bl or bh < al, al == ah == bl == bh)}
    true, false = facts[op]
    return True if true else False if false else None


def range_cond(var: str, lo: int, hi: int, width: int, const_fn: Callable[[int, int], str]) -> str:
    """`lo <= var <= hi` for an unsigned `var` of `width` bits, without the bounds that hold for every value."""
    conds = ([f"{var} >= {const_fn(lo, width)}"] if lo > 0 else []) + (
        [f"{var} <= {const_fn(hi, width)}"] if hi < (1 << width) - 1 else [])
    return f"({' && '.join(conds)})" if conds else "1"
