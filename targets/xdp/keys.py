"""Hash and LPM lookup keys, written word by word.

The kernel hashes a key with jhash2, reading it as 32-bit words, and compares it with memcmp. If a word it reads
was written by several narrower stores (a memset, then a 2-byte and a 4-byte store of a MAC address), the CPU
cannot forward the stores to the load and stalls until they reach the cache: about 5 ns per lookup, measured on
the router's MAC check. So each aligned word of the key (8 bytes where one member fills it, else 4) is composed in a register
from the pieces of the key members it holds and stored once; padding is zero in the composed words, so there is no
memset either. A member that is a whole-byte field of a header known valid is read straight from the packet (its
bytes are in network order already); any other member is evaluated once into a local.

Words are built as big-endian values and stored through bpf_htonl / bpf_cpu_to_be64, so the code is right on
either byte order; on little-endian targets clang folds a word that is one packet load into a plain copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from c3po_compiler import ir

from . import layout as L
from .cexpr import Translator, Unsupported, mask


@dataclass(frozen=True)
class Source:
    """Where a key member's bytes come from: the packet (`ptr` + `byte`, after `lead` zero bytes) or a local."""

    local: str | None = None
    ptr: str | None = None
    byte: int = 0
    lead: int = 0


def packet_bytes(e: ir.Expr, prog: ir.Program, tr: Translator,
                 ptr_of: Callable[[str, int | str | None], str]) -> tuple[str, int] | None:
    """(header pointer, byte offset) of a whole-byte field of a header known valid here: its bytes can be read
    from the packet as they are (network order), without evaluating the field."""
    if not isinstance(e, ir.FieldRef) or e.group is not None or e.width % 8:
        return None
    inst = prog.instances[e.instance]
    f = inst.type.field(e.field_name)
    if f is None or f.offset % 8 or inst.tlv_parent:
        return None
    try:
        ptr = ptr_of(e.instance, e.index)
    except Unsupported:
        return None
    if ptr not in tr.scope.valid:
        return None
    return ptr, f.offset // 8


def packet_source(kf: L.KeyField, e: ir.Expr, prog: ir.Program, tr: Translator,
                  ptr_of: Callable[[str, int | str | None], str]) -> Source | None:
    """The member's bytes in the packet, when the key is a whole-byte field of a header known valid here."""
    at = packet_bytes(e, prog, tr, ptr_of)
    if at is None or e.width > 8 * kf.size:
        return None
    return Source(ptr=at[0], byte=at[1], lead=kf.size - e.width // 8)


def words(fields: list[tuple[L.KeyField, Source]], start: int, size: int) -> list[tuple[int, int]]:
    """(offset, bytes) of the aligned words covering key bytes start..size (size a multiple of 4): 8 bytes where
    one member fills them (half an IPv6 address), else 4 (fewer shifts to put pieces of two members together)."""
    out = []
    w = start
    while w < size:
        whole = any(kf.offset <= w and w + 8 <= kf.offset + kf.size for kf, _ in fields)
        n = 8 if whole and w % 8 == 0 and w + 8 <= size else 4
        out.append((w, n))
        w += n
    return out


def piece(kf: L.KeyField, src: Source, i0: int, i1: int) -> str | None:
    """Member bytes i0..i1 (member-relative) as a big-endian integer expression, None when they are all zero."""
    if src.ptr is not None:
        i0 = max(i0, src.lead)
        if i0 >= i1:
            return None
        return f"c3po_ld({src.ptr} + {src.byte + i0 - src.lead}, {i1 - i0})"
    shift = 8 * (kf.size - i1)
    val = f"({src.local} >> {shift})" if shift else f"{src.local}"
    if kf.size > 8:
        val = f"(__u64){val}"
    return f"({val} & 0x{mask(8 * (i1 - i0)):x}ULL)"


def build(fields: list[tuple[L.KeyField, Source]], start: int, size: int) -> list[str]:
    """The stores that write key bytes start..size of `k`, one per word."""
    out = []
    for w, n in words(fields, start, size):
        parts = []
        for kf, src in fields:
            a, b = max(w, kf.offset), min(w + n, kf.offset + kf.size)
            if a >= b:
                continue
            p = piece(kf, src, a - kf.offset, b - kf.offset)
            if p is None:
                continue
            shift = 8 * (w + n - b)
            parts.append(f"((__u64){p} << {shift})" if shift else f"(__u64){p}")
        value = " | ".join(parts) or "0"
        if n == 8:
            out.append(f"*(__be64 *)((__u8 *)&k + {w}) = bpf_cpu_to_be64({value});")
        else:
            out.append(f"*(__be32 *)((__u8 *)&k + {w}) = bpf_htonl((__u32)({value}));")
    return out
