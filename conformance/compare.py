"""Does a target's result match the oracle's? And if not, say where, in the spec's own words (field names).

A byte difference is mapped to the header fields it falls in through a layout of the expected frame: the
header instances and their byte offsets (from the oracle re-parsing the expected output) and the header
types' field layout. Without a layout the difference is given as byte offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir

from .model import Expected, Result
from .packets import FieldSpan, header_spans

Layout = list[FieldSpan]


@dataclass
class Mismatch:
    """Why one packet's result differs from the expected one; `lines` are ready to print."""

    lines: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # differing header fields, "ipv4.ttl"

    def __bool__(self) -> bool:
        return bool(self.lines)


def layout_from_headers(prog: ir.Program, data: bytes, headers: list[tuple[str, int]]) -> Layout:
    """Field spans for (instance, byte offset) pairs found in `data`; the rest is the payload."""
    spans: Layout = []
    end = 0
    for inst_name, off in headers:
        base = inst_name.split("[", 1)[0]
        inst = prog.instances.get(base)
        if inst is None or inst.tlv_parent is not None:
            continue
        s, n = header_spans(inst_name, inst.type, data, off)
        spans += s
        end = max(end, off + n)
    if len(data) > end:
        spans.append(FieldSpan("payload", end * 8, (len(data) - end) * 8))
    return spans


def differing_fields(expected: bytes, actual: bytes, mask: bytes | None, layout: Layout) -> list[str]:
    names: list[str] = []
    n = max(len(expected), len(actual))
    diff_bits: list[int] = []
    for i in range(n):
        e = expected[i] if i < len(expected) else None
        a = actual[i] if i < len(actual) else None
        m = mask[i] if mask is not None and i < len(mask) else 0xFF
        if e is None or a is None:
            if (e is not None and m) or (e is None and a is not None):
                diff_bits.append(i * 8)
            continue
        x = (e ^ a) & m
        for b in range(8):
            if x & (0x80 >> b):
                diff_bits.append(i * 8 + b)
    for bit in diff_bits:
        for span in layout:
            if span.bit_offset <= bit < span.bit_offset + span.width:
                if span.name not in names:
                    names.append(span.name)
                break
        else:
            label = "trailing bytes" if bit >= len(expected) * 8 else f"byte {bit // 8}"
            if label not in names:
                names.append(label)
    return names


def _field_values(data: bytes, span: FieldSpan) -> int | None:
    end = span.bit_offset + span.width
    if end > len(data) * 8 or span.width == 0:
        return None
    raw = int.from_bytes(data, "big")
    return (raw >> (len(data) * 8 - end)) & ((1 << span.width) - 1)


def compare(
    expected: Expected, actual: Result, layout_for: Callable[[bytes], Layout] | None = None
) -> Mismatch:
    """Verdict, port, bytes under the care mask, and counters/registers when the expectation lists them."""
    out = Mismatch()
    # A target that sees only where a frame left (BMv2 behind veths) cannot tell reflect from forward to the
    # ingress port; it says so, and the two then match when the port does: on the wire they are the same.
    wire_same = (actual.observations.get("egress_only") and {actual.verdict, expected.verdict} <= {"forward", "reflect"}
                 and actual.port == expected.port)
    if actual.verdict != expected.verdict and not wire_same:
        out.lines.append(f"verdict: expected {expected.verdict}, got {actual.verdict}")
    if expected.verdict == "forward" and actual.port != expected.port:
        out.lines.append(f"port: expected {expected.port}, got {actual.port}")
    if expected.verdict != "drop" and actual.verdict == "drop":
        # no frame left: listing every header field as "got (absent)" would only repeat the verdict line
        out.lines.append(f"  expected: {expected.data.hex()}")
        out.lines.append("  actual:   (dropped, no frame)")
    elif expected.verdict != "drop" and not actual.observations.get("frame_unseen"):
        # (frame_unseen: the target reports where the frame went but could not capture it, e.g. BMv2 sending
        # to a port without an interface; the verdict and port are still compared)
        e, a, m = expected.data, actual.data, expected.care_mask
        same = len(e) == len(a) and all(
            ((x ^ y) & (m[i] if m else 0xFF)) == 0 for i, (x, y) in enumerate(zip(e, a, strict=True))
        )
        if not same:
            layout = layout_for(e) if layout_for is not None else []
            out.fields = differing_fields(e, a, m, layout)
            out.lines.append(f"bytes differ ({len(e)} expected, {len(a)} got) in: {', '.join(out.fields)}")
            by_name = {s.name: s for s in layout}
            for name in out.fields[:8]:
                span = by_name.get(name)
                if span is not None and span.width <= 128:
                    ev, av = _field_values(e, span), _field_values(a, span)
                    out.lines.append(f"  {name}: expected {_fmt(ev)}, got {_fmt(av)}")
            out.lines.append(f"  expected: {e.hex()}")
            out.lines.append(f"  actual:   {a.hex()}")
            if m is not None:
                out.lines.append(f"  care:     {m.hex()}")
    if expected.counters is not None:
        for key in sorted(set(expected.counters) | set(actual.counters)):
            ec = expected.counters.get(key, (0, 0))
            ac = actual.counters.get(key, (0, 0))
            if ec != ac:
                out.lines.append(
                    f"counter {key[0]}[{key[1]}]: expected {ec[0]} packets/{ec[1]} bytes, got {ac[0]}/{ac[1]}"
                )
    if expected.registers is not None:
        for rkey in sorted(expected.registers):
            ev2, av2 = expected.registers[rkey], actual.registers.get(rkey, 0)
            if ev2 != av2:
                out.lines.append(f"register {rkey[0]}[{rkey[1]}]: expected {ev2:#x}, got {av2:#x}")
    return out


def _fmt(v: int | None) -> str:
    return "(absent)" if v is None else f"{v:#x}"
