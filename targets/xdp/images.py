"""Headers built in place from constants: the bytes a new header's statements fix at compile time.

Encapsulation makes headers that are mostly constant: an outer IPv4 header's version, IHL, flags, TTL and
protocol, a UDP destination port, a VXLAN flags byte. Written field by field after zeroing the header, each of
those is a store, and a field that shares its byte with another (version and IHL, flags and fragment offset) is
a load, a mask and a store. Instead, from its set_valid on, the emitter folds each constant assignment into an
image of the header kept here, at compile time; the assignments of run-time values, when they cover whole
bytes, are stored at once and their bytes left out of the image. When anything could observe the header (any
other statement, or the end of the straight-line run), the image's remaining bytes are written with a few wide
stores of constants: the whole header in two or three stores, none of them a read-modify-write.

This module knows the IR and the header layout; it writes C only through the `c3po_st` runtime helper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir

from .cexpr import Unsupported, mask
from .ctext import Lines


@dataclass
class Image:
    inst: ir.Instance
    bits: int = 0  # the header's fixed bytes as one big-endian integer
    dynamic: set[int] = field(default_factory=set)  # bytes already stored by run-time assignments

    @property
    def nbytes(self) -> int:
        return self.inst.type.fixed_bytes

    def bytes_of(self, f: ir.Field) -> set[int]:
        return set(range(f.offset // 8, (f.offset + f.width - 1) // 8 + 1))

    def put(self, f: ir.Field, value: int) -> None:
        shift = 8 * self.nbytes - f.offset - f.width
        self.bits = (self.bits & ~(mask(f.width) << shift)) | ((value & mask(f.width)) << shift)

    def stores(self) -> list[tuple[int, int, int]]:
        """(offset, bytes, value) stores of at most 8 bytes covering every byte not stored already."""
        raw = self.bits.to_bytes(self.nbytes, "big")
        out: list[tuple[int, int, int]] = []
        i = 0
        while i < self.nbytes:
            if i in self.dynamic:
                i += 1
                continue
            j = i
            while j < self.nbytes and j not in self.dynamic and j - i < 8:
                j += 1
            out.append((i, j - i, int.from_bytes(raw[i:j], "big")))
            i = j
        return out


def constant(e: ir.Expr) -> int | None:
    """The value of an expression made of literals and casts (what a spec writes as `ttl = 64`)."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Cast):
        v = constant(e.operand)
        return None if v is None else v & mask(e.to)
    return None


def simple(inst: ir.Instance) -> bool:
    """Headers whose bytes are all fixed fields (no optional groups, variable tail or TLV options)."""
    t = inst.type
    return not (t.groups or t.varlen or inst.walk_tlv or inst.tlv_parent)


def reads(e: ir.Expr, pending: dict[str, Image], ptr_of: Callable[[str, int | str | None], str]) -> bool:
    """Whether evaluating `e` may read a header whose image is not written yet."""
    for x in ir.walk_expr(e):
        if isinstance(x, ir.FieldRef):
            try:
                if ptr_of(x.instance, x.index) in pending:
                    return True
            except Unsupported:
                return True
    return False


def flush(out: Lines, pending: dict[str, Image], only: str | None = None) -> dict[str, Image]:
    """Write the constant bytes of the pending images (all, or the one of header pointer `only`); returns the
    images written, by header pointer."""
    done: dict[str, Image] = {}
    for ptr in [only] if only is not None else sorted(pending):
        img = pending.pop(ptr, None)
        if img is None:
            continue
        done[ptr] = img
        for off, n, value in img.stores():
            out.add(f"c3po_st({ptr} + {off}, {n}, 0x{value:x}ULL); /* {img.inst.name}: constant bytes "
                    f"{off}..{off + n - 1} */")
    return done


def partial_sum(img: Image, skip: int) -> tuple[int, list[tuple[int, int]]]:
    """The one's-complement sum of a written image's header split at compile time (RFC 1071): the sum of its
    constant 16-bit words as the frame holds them, loaded little-endian as `c3po_csum_fixed` does (the sum is
    byte-order independent), left unfolded; and the (offset, bytes) loads, 4 or 2 bytes, of the words holding a
    run-time byte, to add at run time. `skip`: the checksum word's offset (counted as 0). The unfolded constant
    plus the loads is an integer sum of the same words, so folding it gives the full sum's value, 0 and 0xffff
    edges included: it is 0 only when every word is."""
    raw = img.bits.to_bytes(img.nbytes, "big")
    const = 0
    var: list[int] = []
    for o in range(0, img.nbytes - 1, 2):
        if o == skip:
            continue
        if {o, o + 1} & img.dynamic:
            var.append(o)
        else:
            const += raw[o] | raw[o + 1] << 8
    loads: list[tuple[int, int]] = []
    i = 0
    while i < len(var):
        if i + 1 < len(var) and var[i + 1] == var[i] + 2:
            loads.append((var[i], 4))
            i += 2
        else:
            loads.append((var[i], 2))
            i += 1
    return const, loads


def frame_bytes(img: Image) -> bytes:
    """The header's bytes as the image fixes them (run-time bytes as 0): what its stores write, in frame order."""
    return img.bits.to_bytes(img.nbytes, "big")
