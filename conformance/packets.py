"""Header bytes from field values and back: the one place vectors, the generator and mismatch reports agree
on how a header type is laid out on the wire (fixed part, present optional groups, varlen tail).

Kept independent of the reference interpreter on purpose: hand-written vectors are built with it, so a
layout bug in the interpreter shows up as a mismatch instead of being copied into the expected bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from c3po_compiler import hexpr, ir
from c3po_compiler.expr import (
    Const,
    Expr,
    ExprSyntaxError,
    parse_expression,
)


class PacketBuildError(ValueError):
    """A layered packet description that cannot be turned into bytes (unknown header, value too wide)."""


def _mask(width: int) -> int:
    return (1 << width) - 1 if width > 0 else 1


def eval_header_expr(e: Expr, values: Mapping[str, int], leaf: Callable[[Expr], int | None] | None = None) -> int:
    """c3po_compiler.hexpr.eval_header_expr, its errors as PacketBuildError (what the packet builders raise)."""
    try:
        return hexpr.eval_header_expr(e, values, leaf)
    except hexpr.HeaderExprError as err:
        raise PacketBuildError(str(err)) from None


def pack_bits(parts: list[tuple[int, int]]) -> bytes:
    """(width, value) pairs MSB first into bytes; the total must be whole bytes."""
    total = sum(w for w, _ in parts)
    acc = 0
    for w, v in parts:
        acc = (acc << w) | (v & _mask(w))
    return acc.to_bytes(total // 8, "big") if total else b""


def present_groups(ht: ir.HeaderType, values: Mapping[str, int]) -> list[ir.OptionalGroup]:
    return [g for g in ht.groups if eval_header_expr(g.when, values)]


def pack_header(ht: ir.HeaderType, values: Mapping[str, int], tail: bytes = b"") -> bytes:
    """Fixed part, the groups whose `when` holds, then the varlen tail verbatim."""
    parts = [(f.width, values.get(f.name, 0)) for f in ht.fields]
    for g in present_groups(ht, values):
        parts += [(f.width, values.get(f.name, 0)) for f in g.fields]
    return pack_bits(parts) + tail


def unpack_fields(ht: ir.HeaderType, data: bytes) -> dict[str, int]:
    """Fixed-part field values of a header starting at data[0] (missing bytes read as 0)."""
    raw = int.from_bytes(data[: ht.fixed_bytes].ljust(ht.fixed_bytes, b"\0"), "big")
    out: dict[str, int] = {}
    for f in ht.fields:
        shift = ht.fixed_bits - f.offset - f.width
        out[f.name] = (raw >> shift) & _mask(f.width)
    return out


@dataclass(frozen=True)
class FieldSpan:
    name: str  # "instance.field"
    bit_offset: int  # from the start of the frame
    width: int


def header_spans(instance: str, ht: ir.HeaderType, data: bytes, start: int) -> tuple[list[FieldSpan], int]:
    """Field spans of a header at byte `start` of `data`, and its length in bytes (groups + varlen)."""
    values = unpack_fields(ht, data[start:])
    spans = [FieldSpan(f"{instance}.{f.name}", start * 8 + f.offset, f.width) for f in ht.fields]
    pos = start + ht.fixed_bytes
    for g in present_groups(ht, values):
        spans += [FieldSpan(f"{instance}.{f.name}", pos * 8 + f.offset, f.width) for f in g.fields]
        pos += g.bytes
    if ht.varlen is not None:
        n = eval_header_expr(ht.varlen.length, values)
        if 0 <= n <= ht.varlen.max_bytes:
            spans.append(FieldSpan(f"{instance}.{ht.varlen.name}", pos * 8, n * 8))
            pos += n
    return spans, pos - start


def ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4_checksum(header: bytes) -> int:
    """RFC 1071 checksum of a header whose checksum field is zero."""
    return ~ones_complement_sum(header) & 0xFFFF


def literal(value: Any, width: int, where: str) -> int:
    """A field value as vectors write it: int, or a string literal (hex, MAC, IPv4, IPv6, decimal)."""
    if isinstance(value, bool):
        v = int(value)
    elif isinstance(value, int):
        v = value
    elif isinstance(value, str):
        try:
            e = parse_expression(value)
        except ExprSyntaxError as exc:
            raise PacketBuildError(f"{where}: {value!r} is not a value ({exc.message})") from None
        if not isinstance(e, Const):
            raise PacketBuildError(f"{where}: {value!r} is not a constant")
        v = e.value
    else:
        raise PacketBuildError(f"{where}: expected a number or a literal string, got {type(value).__name__}")
    if v < 0 or v > _mask(width):
        raise PacketBuildError(f"{where}: {value!r} does not fit bit<{width}>")
    return v


def hex_bytes(text: Any, where: str) -> bytes:
    """Hex as vectors write it; spaces, colons and a 0x prefix are allowed for readability."""
    if not isinstance(text, str):
        raise PacketBuildError(f"{where}: expected a hex string")
    clean = text.strip().removeprefix("0x").replace(" ", "").replace(":", "").replace("\n", "")
    try:
        return bytes.fromhex(clean)
    except ValueError:
        raise PacketBuildError(f"{where}: {text[:40]!r} is not hex bytes") from None


def build_layers(prog: ir.Program, layers: Any, payload: bytes, where: str) -> bytes:
    """Bytes from a layered description: a map (or list of one-key maps, for stacks) instance → fields.

    Fields left out are 0. For a header with an `ipv4_header` checksum whose checksum field is not given,
    the checksum is computed, so hand-written IPv4 packets pass `verify` without arithmetic by hand. A
    varlen tail is given as hex under its name.
    """
    items: list[tuple[str, Any]]
    if isinstance(layers, dict):
        items = list(layers.items())
    elif isinstance(layers, list) and all(isinstance(x, dict) and len(x) == 1 for x in layers):
        items = [next(iter(x.items())) for x in layers]
    else:
        raise PacketBuildError(f"{where}: 'layers' must be a map or a list of one-key maps")
    out = b""
    for name, fields in items:
        inst = prog.instances.get(str(name))
        ht = inst.type if inst is not None else prog.header_types.get(str(name))
        if ht is None:
            raise PacketBuildError(
                f"{where}: unknown header '{name}'; known: {', '.join(sorted(prog.instances))}"
            )
        fields = fields or {}
        if not isinstance(fields, dict):
            raise PacketBuildError(f"{where}: layer '{name}' must map field names to values")
        values: dict[str, int] = {}
        tail = b""
        for fname, fval in fields.items():
            if ht.varlen is not None and fname == ht.varlen.name:
                tail = hex_bytes(fval, f"{where}: {name}.{fname}")
                continue
            fld = ht.field(str(fname))
            if fld is None:
                raise PacketBuildError(f"{where}: header '{name}' has no field '{fname}'")
            values[str(fname)] = literal(fval, fld.width, f"{where}: {name}.{fname}")
        if ht.checksum is not None and ht.checksum.kind == "ipv4_header" and ht.checksum.field not in values:
            values[ht.checksum.field] = 0
            values[ht.checksum.field] = ipv4_checksum(pack_header(ht, values, tail))
        out += pack_header(ht, values, tail)
    return out + payload
