"""Translating IR expressions to P4-16 text.

Two contexts differ in one rule: in the parser a field is read as extracted, while in the control a read of a
field of an invalid header must give 0 (spec section 10), which P4 leaves undefined; there the read is guarded
with `isValid() ? f : 0`. Register reads and hashes are extern calls in v1model, not expressions, so they are
hoisted into temporaries whose statements the caller emits before the statement that uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.expr import (
    Binary,
    Cast,
    Const,
    Expr,
    FieldRef,
    Hash,
    Lookahead,
    MetaRef,
    ParamRef,
    Present,
    RegRead,
    Slice,
    StdRef,
    Unary,
    Valid,
)

HASH_ALGORITHMS = {"crc16": "HashAlgorithm.crc16", "crc32": "HashAlgorithm.crc32"}


def lit(value: int, width: int) -> str:
    """A sized P4 literal; hex above 9 so addresses and masks stay readable."""
    if width == ir.BOOL:
        return "true" if value else "false"
    return f"{width}w{value}" if value < 10 else f"{width}w{value:#x}"


def header_ref(inst: ir.Instance, index: int | str | None, group: str | None = None) -> str:
    """`hdr.<ident>[i]` / `hdr.<ident>.last`; optional groups live in their own header `<ident>__<group>`."""
    base = f"hdr.{inst.ident}" + (f"__{group}" if group else "")
    if index is None or not inst.is_stack:
        return base
    if index == "last":
        return f"{base}.last"
    return f"{base}[{index}]"


@dataclass
class Temps:
    """Control-local temporaries introduced by hoisting; declared once at the top of the ingress control."""

    decls: list[str] = field(default_factory=list)

    def new(self, width: int) -> str:
        name = f"c3po_t{len(self.decls)}"
        self.decls.append(f"bit<{width}> {name};")
        return name


class ExprWriter:
    """Turns one expression into P4 text; `pre` collects the hoisted statements it needs."""

    def __init__(self, prog: ir.Program, *, in_parser: bool, params: dict[str, str] | None = None,
                 local: Callable[[FieldRef], str] | None = None, temps: Temps | None = None) -> None:
        self.prog = prog
        self.in_parser = in_parser
        self.params = params or {}
        self.local = local
        self.temps = temps
        self.pre: list[str] = []

    def __call__(self, e: Expr) -> str:
        return self.expr(e)

    def expr(self, e: Expr) -> str:
        if isinstance(e, Const):
            return lit(e.value, e.width)
        if isinstance(e, FieldRef):
            return self.field(e)
        if isinstance(e, MetaRef):
            return f"meta.{e.name}"
        if isinstance(e, StdRef):
            if e.name == "ingress_port":
                return "((bit<16>) standard_metadata.ingress_port)"
            return "standard_metadata.packet_length"
        if isinstance(e, ParamRef):
            return self.params[e.name]
        if isinstance(e, Unary):
            return f"({e.op}{self.expr(e.operand)})"
        if isinstance(e, Binary):
            if e.op in ("<<", ">>"):
                return self.shift(e)
            return f"({self.expr(e.left)} {e.op} {self.expr(e.right)})"
        if isinstance(e, Cast):
            return f"((bit<{e.to}>) {self.expr(e.operand)})"
        if isinstance(e, Slice):
            return f"{self.expr(e.operand)}[{e.hi}:{e.lo}]"
        if isinstance(e, Valid):
            inst = self.prog.instances[e.instance]
            return f"{header_ref(inst, e.index)}.isValid()"
        if isinstance(e, Present):
            return f"hdr.{self.prog.instances[e.instance].ident}__{e.group}.isValid()"
        if isinstance(e, Lookahead):
            total = e.offset + e.bits
            text = f"pkt.lookahead<bit<{total}>>()"
            return text if e.offset == 0 else f"{text}[{e.bits - 1}:0]"
        if isinstance(e, RegRead):
            return self.reg_read(e)
        if isinstance(e, Hash):
            return self.hash(e)
        raise TypeError(f"no P4 translation for {type(e).__name__}")

    def shift(self, e: Binary) -> str:
        """`x << n` / `x >> n` with the spec's "a shift by W or more gives 0" (section 10) made explicit.

        p4c's BMv2 back end refuses shift amounts wider than 8 bits ("shift amount limited to 8 bits on this
        target"), and warns about a constant amount >= W. Values are at most 128 bits wide, so any amount
        below W fits in 8 bits: a constant amount >= W is the constant 0, a constant below W is written as
        `8w<n>`, and a variable amount wider than 8 bits is tested against W and then cast to `bit<8>`. An
        8-bit amount is left as it is: BMv2 masks the result to W bits, so amounts from W to 255 give 0.
        """
        width = e.width
        assert 0 < width < 256, "shifted values are at most 128 bits wide"
        left = self.expr(e.left)
        if isinstance(e.right, Const):
            if e.right.value >= width:
                return lit(0, width)
            return f"({left} {e.op} {lit(e.right.value, 8)})"
        amount = self.expr(e.right)
        if e.right.width <= 8:
            return f"({left} {e.op} {amount})"
        return f"(({amount} >= {lit(width, e.right.width)}) ? {lit(0, width)} : ({left} {e.op} ((bit<8>) {amount})))"

    def field(self, e: FieldRef) -> str:
        if e.instance == "":
            assert self.local is not None, "a header-local field outside a header context"
            return self.local(e)
        inst = self.prog.instances[e.instance]
        base = header_ref(inst, e.index, e.group)
        text = f"{base}.{e.field_name}"
        if self.in_parser:
            return text
        return f"({base}.isValid() ? {text} : {lit(0, e.width)})"

    def _temp(self, width: int) -> str:
        assert self.temps is not None, "hoisting needs the control's temporaries"
        return self.temps.new(width)

    def reg_read(self, e: RegRead) -> str:
        reg = self.prog.registers[e.register]
        idx = self.expr(e.index)
        tmp = self._temp(reg.width)
        self.pre.append(f"{tmp} = {lit(0, reg.width)};")
        self.pre.append(f"if ({idx} < {lit(reg.size, e.index.width)}) "
                        f"{{ {reg.name}.read({tmp}, (bit<32>) {idx}); }}"
                        if reg.size < (1 << e.index.width) else f"{reg.name}.read({tmp}, (bit<32>) {idx});")
        return tmp

    def hash(self, e: Hash) -> str:
        width = ir.HASH_ALGORITHMS[e.algorithm]
        # The spec hashes each operand rounded up to whole bytes, but BMv2 packs field lists bit by bit; and
        # BMv2 hashes field lists, not expressions: so each operand goes through a whole-byte temporary.
        parts = []
        for a in e.args:
            text = self.expr(a)
            whole = -(-a.width // 8) * 8
            arg = self._temp(whole)
            self.pre.append(f"{arg} = {text if whole == a.width else f'((bit<{whole}>) {text})'};")
            parts.append(arg)
        tmp = self._temp(width)
        self.pre.append(f"hash({tmp}, {HASH_ALGORITHMS[e.algorithm]}, {lit(0, width)}, "
                        f"{{ {', '.join(parts)} }}, {width + 1}w{1 << width:#x});")
        return tmp
