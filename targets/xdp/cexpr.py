"""Typed IR expressions to C expressions for the XDP program.

Every value of width <= 64 is a `__u64`, wider ones a `c3po_u128`; booleans are C ints. Arithmetic results
are masked back to their width, so wrap-around follows the spec (section 10) without relying on C types.
Field reads go through the header's packet pointer, which is NULL while the header is invalid: reads then give
0, as the spec requires. The caller supplies how names resolve (`Scope`), so the parser, the control and
inlined actions share one translator.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.expr import BOOL
from targets.c_bounds import compared

from . import crc


class Unsupported(Exception):
    """An expression the XDP target refuses; the message names what and why."""


def mask(width: int) -> int:
    return (1 << width) - 1


def ctype(width: int) -> str:
    return "c3po_u128" if width > 64 else "__u64"


def const(value: int, width: int) -> str:
    if width > 64:
        return f"C3PO_U128(0x{value >> 64:x}ULL, 0x{value & mask(64):x}ULL)"
    return f"0x{value:x}ULL" if value > 9 else f"{value}ULL"


@dataclass(frozen=True)
class FieldAccess:
    """Where a field lives relative to its header pointer, as the runtime's get/set helpers want it."""

    byte: int
    nbytes: int
    shift: int
    width: int

    @property
    def wide(self) -> bool:
        return self.width > 64 or self.nbytes > 8

    def get(self, ptr: str) -> str:
        if self.wide:
            v = f"c3po_getw({ptr} + {self.byte}, {self.nbytes}, {self.shift}, {self.width})"
            return v if self.width > 64 else f"((__u64){v})"
        return f"c3po_get({ptr} + {self.byte}, {self.nbytes}, {self.shift}, {self.width})"

    def set(self, ptr: str, value: str) -> str:
        fn = "c3po_setw" if self.wide else "c3po_set"
        return f"{fn}({ptr} + {self.byte}, {self.nbytes}, {self.shift}, {self.width}, {value})"


COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def field_access(offset: int, width: int) -> FieldAccess:
    byte, bit = divmod(offset, 8)
    nbytes = (bit + width + 7) // 8
    if nbytes > 16:
        raise Unsupported(f"a {width}-bit field at bit offset {offset} spans {nbytes} bytes (at most 16)")
    return FieldAccess(byte, nbytes, 8 * nbytes - bit - width, width)


def group_ptr(header_ptr: str, group: str) -> str:
    """The pointer to an optional group of a header element: NULL when the group is absent."""
    return f"g_{header_ptr[2:]}__{group}"


@dataclass
class Scope:
    """How names resolve where an expression is translated."""

    prog: ir.Program
    header_ptr: Callable[[str, int | str | None], str]  # (instance, index) -> C pointer expression
    params: dict[str, str] = field(default_factory=dict)  # action parameter -> C local
    cursor: str = "cur"  # parser only: the pointer lookahead reads from
    hash_buffers: list[tuple[str, int]] = field(default_factory=list)  # (C name, bytes) to declare
    local_type: ir.HeaderType | None = None  # varlen lengths: the header whose fields are named bare
    valid: frozenset[str] = frozenset()  # header pointers known to be non-NULL here (no check emitted)
    valid_bits: dict[str, int] = field(default_factory=dict)  # pointer -> its bit in c3po_valid (control only)
    invalid: frozenset[str] = frozenset()  # header pointers NULL on every path here (reads give 0, no load)
    # (instance, field) -> the values it can have on this path (Emitter.fast_paths): one, and reads are constants
    values: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)
    hash_in_map: bool = False  # hash inputs in the per-CPU scratch map (sc->hb) rather than on the stack
    precomputed: dict[int, str] = field(default_factory=dict)  # id(ir.Hash) -> the C local holding its value
    # id(ir.Hash) -> (hit condition, the entry's CRC register, arguments it covers): crcpre.py
    crc_start: dict[int, tuple[str, str, int]] = field(default_factory=dict)


def hash_slot(nbytes: int) -> int:
    """Bytes a hash input of `nbytes` takes (8-byte aligned, so the CRC's word loads stay aligned)."""
    return (nbytes + 7) // 8 * 8


class Translator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def expr(self, e: ir.Expr) -> str:
        method = getattr(self, "x_" + type(e).__name__, None)
        if method is None:
            raise Unsupported(f"expression {type(e).__name__} is not supported by the xdp target")
        out: str = method(e)
        return out

    def x_Const(self, e: ir.Const) -> str:
        if e.width == BOOL:
            return "1" if e.value else "0"
        return const(e.value & mask(e.width), e.width)

    def x_FieldRef(self, e: ir.FieldRef) -> str:
        if e.group is not None:
            hptr = self.scope.header_ptr(e.instance, e.index)
            f = self.scope.prog.instances[e.instance].type.field(e.field_name)
            assert f is not None
            acc = field_access(f.offset, f.width)
            return self.guarded(e.instance, group_ptr(hptr, e.group), acc.get, const(0, e.width))
        if e.instance == "":
            assert self.scope.local_type is not None
            htype = self.scope.local_type
        else:
            htype = self.scope.prog.instances[e.instance].type
        f = htype.field(e.field_name)
        if f is None:  # TLV option fields live in option instances; not supported here
            raise Unsupported(f"field '{e.instance}.{e.field_name}' is not supported by the xdp target")
        vals = self.scope.values.get((e.instance, e.field_name))
        if vals is not None and len(vals) == 1:  # fixed by the parse path (Emitter.fast_paths)
            return const(next(iter(vals)), e.width)
        ptr = self.scope.header_ptr(e.instance, e.index)
        if e.instance == "":
            return field_access(f.offset, f.width).get(ptr)
        return self.guarded(e.instance, ptr, field_access(f.offset, f.width).get, const(0, e.width))

    def guarded(self, instance: str, ptr: str, load: Callable[[str], str], zero: str) -> str:
        """`load` through `ptr` when it is not NULL, else `zero`: every read through a header or group pointer
        comes here, and needs no test where the path decides the pointer (Scope.valid, Scope.invalid).

        A stack element's pointer has copies clang knows to be equal and the verifier does not (one per element
        index the parser wrote it under): tested in one register and loaded through another, the load can go
        through a copy the verifier holds as NULL on that path (`R0 invalid mem access 'scalar'`). For stack
        elements the test and the load therefore go through one opaque local. Other headers have one pointer
        each and keep the plain form, which clang may fold with the path's other tests."""
        if ptr in self.scope.valid:
            return load(ptr)
        if ptr in self.scope.invalid:
            return zero
        if self.scope.prog.instances[instance].is_stack:
            return f'({{ __u8 *p_ = {ptr}; asm volatile("" : "+r"(p_)); p_ ? {load("p_")} : {zero}; }})'
        return f"({ptr} ? {load(ptr)} : {zero})"

    def raw(self, e: ir.Expr, nbytes: int) -> str:
        """A value of `nbytes` whole bytes with its bytes in memory order, as a little-endian word (a cuckoo key in
        memory order, layout.cuckoo_key_parts): a byte-aligned header field is loaded as it lies, anything else is
        computed and its bytes reversed."""
        if isinstance(e, ir.FieldRef) and e.group is None and e.instance:
            f = self.scope.prog.instances[e.instance].type.field(e.field_name)
            if f is not None and f.offset % 8 == 0 and f.width == 8 * nbytes:
                ptr = self.scope.header_ptr(e.instance, e.index)
                at = f.offset // 8

                def load(p: str) -> str:
                    return f"c3po_ld_raw({p} + {at}, {nbytes})"

                return self.guarded(e.instance, ptr, load, "0ULL")
        return f"(__builtin_bswap64({self.expr(e)}) >> {64 - 8 * nbytes})"

    def x_MetaRef(self, e: ir.MetaRef) -> str:
        return f"m_{e.name}"

    def x_StdRef(self, e: ir.StdRef) -> str:
        return {"ingress_port": "c3po_ingress_port(ctx, data)", "packet_length": "c3po_pkt_len"}[e.name]

    def x_ParamRef(self, e: ir.ParamRef) -> str:
        return self.scope.params[e.name]

    def x_RegRead(self, e: ir.RegRead) -> str:
        return f"r_{e.register}_read({self.expr(e.index)})"

    def x_Lookahead(self, e: ir.Lookahead) -> str:
        acc = field_access(e.offset, e.bits)
        return acc.get(self.scope.cursor)

    def x_Valid(self, e: ir.Valid) -> str:
        ptr = self.scope.header_ptr(e.instance, e.index)
        if ptr in self.scope.valid:
            return "1"
        if ptr in self.scope.invalid:
            return "0"
        bit = self.scope.valid_bits.get(ptr)
        if bit is not None:  # a constant on each path to the verifier, unlike a packet pointer's NULL-ness
            return f"((c3po_valid & (1ULL << {bit})) != 0)"
        return f"({ptr} != 0)"

    def x_Present(self, e: ir.Present) -> str:
        return f"({group_ptr(self.scope.header_ptr(e.instance, None), e.group)} != 0)"

    def values_of(self, e: ir.Expr) -> frozenset[int]:
        """The values `e` can have here as far as constants and the parse path's field values say (several, and
        the empty set when unknown: no answer is then the same for all)."""
        if isinstance(e, ir.Const):
            return frozenset({e.value & mask(e.width)})
        if isinstance(e, ir.FieldRef) and e.group is None:
            return self.scope.values.get((e.instance, e.field_name), frozenset())
        return frozenset()

    def x_Unary(self, e: ir.Unary) -> str:
        v = self.expr(e.operand)
        if e.op == "!":
            return {"0": "1", "1": "0"}.get(v, f"(!{v})")
        op = "~" if e.op == "~" else "-"
        return self._wrap(f"({op}{v})", e.width)

    def _wrap(self, code: str, width: int) -> str:
        if width in (64, 128) or width == BOOL:
            return code
        return f"({code} & {const(mask(width), width)})"

    def x_Binary(self, e: ir.Binary) -> str:
        op = e.op
        if op in ("<", "<=", ">", ">=", "==", "!=") and BOOL not in (e.left.width, e.right.width):
            fixed = compared(op, e.left, e.right)
            if fixed is not None:  # `x >= 0` and the like: folded, never emitted
                return "1" if fixed else "0"
            if self.scope.values:  # the same answer for every value the parse path left the field (fast_paths)
                answers = {COMPARE[op](x, y) for x in self.values_of(e.left) for y in self.values_of(e.right)}
                if len(answers) == 1:
                    return "1" if answers.pop() else "0"
        a, b = self.expr(e.left), self.expr(e.right)
        if op in ("&&", "||") and {a, b} & {"0", "1"}:  # a side known: the other alone, or the constant (no side
            absorb = "0" if op == "&&" else "1"  # effects to keep: expressions read, never write)
            if absorb in (a, b):
                return absorb
            return b if a in ("0", "1") else a
        if op in ("&&", "||", "==", "!=", "<", "<=", ">", ">=", "&", "|", "^"):
            return f"({a} {op} {b})"
        if op in ("+", "-", "*"):
            if op == "*" and e.width > 64:
                raise Unsupported("multiplication of values wider than 64 bits is not supported by the xdp target")
            return self._wrap(f"({a} {op} {b})", e.width)
        if op in ("<<", ">>"):
            from c3po_compiler.expr import Const as C
            if isinstance(e.right, C):
                s = e.right.value
                if s >= e.width:
                    return const(0, e.width)
                return self._wrap(f"({a} {op} {s})", e.width) if op == "<<" else f"({a} >> {s})"
            if e.width > 64:
                raise Unsupported("shifting a value wider than 64 bits by a run-time amount is not supported "
                                  "by the xdp target")
            fn = "c3po_shl" if op == "<<" else "c3po_shr"
            return f"{fn}({a}, (__u64)({b}), {e.width})"
        raise Unsupported(f"operator '{op}' is not supported by the xdp target")

    def x_Cast(self, e: ir.Cast) -> str:
        v = self.expr(e.operand)
        src = e.operand.width
        if e.to >= src:
            return f"(({ctype(e.to)}){v})" if (e.to > 64) != (src > 64) else v
        inner = f"((__u64){v})" if src > 64 and e.to <= 64 else v
        return self._wrap(inner, e.to)

    def x_Slice(self, e: ir.Slice) -> str:
        v = self.expr(e.operand)
        w = e.hi - e.lo + 1
        shifted = f"({v} >> {e.lo})" if e.lo else v
        if e.operand.width > 64 and w <= 64:
            shifted = f"((__u64){shifted})"
        return self._wrap(shifted, w) if w < max(e.operand.width, 1) else shifted

    def contiguous_fields(self, args: list[ir.Expr]) -> tuple[str, int] | None:
        """(header pointer, first byte) when the hash input is consecutive byte-aligned fields of one header
        known valid here: then the CRC reads them in place, with no buffer to fill (the common ECMP case)."""
        if not args or not all(isinstance(a, ir.FieldRef) and a.group is None and a.instance for a in args):
            return None
        refs = [a for a in args if isinstance(a, ir.FieldRef)]
        if len({(r.instance, r.index) for r in refs}) != 1:
            return None
        inst = self.scope.prog.instances[refs[0].instance]
        if inst.tlv_parent:
            return None
        ptr = self.scope.header_ptr(refs[0].instance, refs[0].index)
        if ptr not in self.scope.valid:
            return None
        fields = [inst.type.field(r.field_name) for r in refs]
        if any(f is None or f.offset % 8 or f.width % 8 or inst.type.group_of(f.name) for f in fields):
            return None
        offs = [(f.offset, f.width) for f in fields if f is not None]
        if any(offs[i][0] + offs[i][1] != offs[i + 1][0] for i in range(len(offs) - 1)):
            return None
        return ptr, offs[0][0] // 8

    def x_Hash(self, e: ir.Hash) -> str:
        if id(e) in self.scope.precomputed:  # taken before the frame start moved (Emitter.prehash)
            return self.scope.precomputed[id(e)]
        total = sum((a.width + 7) // 8 for a in e.args)
        if total > 64:
            raise Unsupported(f"hash over {total} bytes (the xdp target hashes at most 64)")
        full = self.crc_of(e.algorithm, e.args, None)
        start = self.scope.crc_start.get(id(e))
        if start is None:
            return full
        cond, reg, n = start  # on a hit, the entry holds the register after the first n arguments (crcpre.py)
        return f"({cond} ? {self.crc_of(e.algorithm, e.args[n:], reg)} : {full})"

    def crc_of(self, algorithm: str, args: list[ir.Expr], reg: str | None, from_zero: bool = False) -> str:
        """The CRC over `args` (whole bytes each, big-endian), from the initial register (from 0 if `from_zero`);
        or with an entry's register `reg` (crcpre.py: advanced over as many zero bytes as `args` hold) XORed into
        their CRC from 0, so that the table loads wait for the frame's bytes only."""
        if not args:
            assert reg is not None
            return crc.ALGORITHMS[algorithm][3].format(f"(__u32)({reg})")
        if reg is not None:
            return f"({self.crc_of(algorithm, args, None, from_zero=True)} ^ (__u32)({reg}))"
        sizes = [(a.width + 7) // 8 for a in args]
        total = sum(sizes)
        # From crc.PAIRS_MIN bytes: two bytes a step from a 65,536-entry table (crc.py writes it into the program)
        fn = f"c3po_{algorithm}_{'pairs' if crc.uses_pairs(total) else 'bytes'}" + ("_on" if from_zero else "")
        on = "0, " if from_zero else ""
        span = self.contiguous_fields(args)
        if span is not None:  # whole bytes, in order, of one valid header: hash them where they are
            ptr, first = span
            return f"{fn}({on}{ptr} + {first}, {total})"
        name = f"hb{len(self.scope.hash_buffers)}"
        at = sum(hash_slot(n) for _, n in self.scope.hash_buffers)  # its place in sc->hb, in map mode
        self.scope.hash_buffers.append((name, total))
        buf = f"(sc->hb + {at})" if self.scope.hash_in_map else name
        # Zeroed here rather than where it is declared: only packets that take the hash pay for it (the verifier
        # wants all of it initialised, as the CRC function's argument).
        parts = [f"__builtin_memset({buf}, 0, {hash_slot(total)})"]
        off = 0
        for a, n in zip(args, sizes, strict=True):
            parts.append(f"c3po_stb({buf} + {off}, {n}, {self.expr(a)})")
            off += n
        return f"({', '.join(parts)}, {fn}({on}{buf}, {total}))"
