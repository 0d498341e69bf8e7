"""Select values one bit off where the select reads a lookahead (issue 16, found by reading the fourth round's
survivors).

`select_bits` (gen_gaps.py) flips the bits of select cases on header fields; a select on `lookahead(offset,
bits)` has no field to patch, so its bits were never flipped under a control state where the flip shows:
vxlan_gateway's classify reads the IPv4 version+IHL byte as `lookahead(112, 8)`, and an xdp mutant reading it 7
bits wide (so 0xc5 takes the VXLAN case of 0x45) survived. `select_edges` (gen_classes.py) writes lookahead
values too, but under an empty control state, where the case and the default both end in a drop.

Here, for every lookahead element of every case: each bit of an element up to 8 bits wide, the first and last bit
of each byte of a wider one, flipped in a generated packet that took the case, under that packet's control state,
kept when the oracle's outcome changes (verdict, port or bytes). Items "STATE#caseN[J]:bitB_flipped (lookahead)"
in the `select_bits` class; the packet is rewritten at the parser's cursor after the state's extract, and the
IPv4-style checksums of the headers parsed before are adjusted (a flip must not merely fail a checksum).
"""

from __future__ import annotations

from c3po_compiler import ir

from .gen_classes import ClassContext, _Budget, _offsets, _write_bits
from .gen_coverage import ClassCoverage
from .gen_gaps import MAX_BASES, _flip_bases, _flip_bits, emit_flip
from .model import Vector

__all__ = ["lookahead_bits"]

MAX_VECTORS = 120
CANDIDATES = 4 * MAX_BASES  # vectors through a case collected before the oracle sorts them


def lookahead_bits(ctx: ClassContext) -> None:
    part = ctx.classes.setdefault("select_bits", ClassCoverage())
    cap = _Budget(part, MAX_VECTORS)
    states = [st for st in ctx.prog.parser.states.values()
              if any(isinstance(sel, ir.Lookahead) for sel in st.select)]
    if not states:
        return
    through = _through_cases(ctx, {st.name for st in states})
    for st in states:
        for ci, case in enumerate(st.cases):
            bases = _flip_bases(ctx, through.get((st.name, ci), []), st, ci)
            for j, (sel, e) in enumerate(zip(st.select, case.keyset, strict=True)):
                if not isinstance(sel, ir.Lookahead) or e.kind not in ("value", "mask"):
                    continue
                care = (1 << sel.bits) - 1 if e.kind == "value" else e.b
                for b in _flip_bits(sel.bits, care):
                    item = f"{st.name}#case{ci}[{j}]:bit{b}_flipped (lookahead)"
                    part.all.append(item)
                    why = _flip(ctx, part, cap, item, bases, st, ci, sel, (e.a & care) ^ (1 << b))
                    if why is not None:
                        part.infeasible[item] = why


def _through_cases(ctx: ClassContext, names: set[str]) -> dict[tuple[str, int], list[Vector]]:
    """Single-packet vectors by the (state, case) their parse path took, for the states in `names`."""
    out: dict[tuple[str, int], list[Vector]] = {}
    for v in ctx.vectors:
        pid = int(v.provenance.get("path", -1))
        if len(v.packets) != 1 or v.registers or not 0 <= pid < len(ctx.paths) or "truncated" in v.tags:
            continue
        for step in ctx.paths[pid].steps:
            if step.state in names and step.edge is not None and step.edge >= 0:
                got = out.setdefault((step.state, step.edge), [])
                if len(got) < CANDIDATES:
                    got.append(v)
    return out


def _cursor(ctx: ClassContext, path: list[str], st: ir.ParserState, offsets: dict[str, int]) -> int | None:
    """The parser's cursor in bytes at `st`'s select: the end of the last header extracted up to it (None
    where that header's length is not fixed)."""
    upto = path[:path.index(st.name) + 1]
    for name in reversed(upto):
        inst = ctx.prog.parser.states[name].extract
        if inst is None:
            continue
        ht = ctx.prog.instances[inst].type
        key = inst if inst in offsets else max((k for k in offsets if k.startswith(inst + "[")), default=None)
        if key is None or not ht.is_fixed:
            return None
        return offsets[key] + ht.fixed_bytes
    return 0


def _flip(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, bases: list[tuple[Vector, object]],
          st: ir.ParserState, ci: int, sel: ir.Lookahead, value: int) -> str | None:
    def rewrite(v: Vector, r0: object) -> bytes | str:
        p = v.packets[0]
        offsets = _offsets(ctx, p.data, p.port)
        cursor = _cursor(ctx, r0.observations.get("path", []), st, offsets)  # type: ignore[attr-defined]
        if cursor is None or (cursor * 8 + sel.offset + sel.bits) > 8 * len(p.data):
            return "the lookahead is not at a fixed place in the packets that take the case"
        return _write_bits(ctx, p.data, offsets, [(cursor * 8 + sel.offset, sel.bits, value)])

    return emit_flip(ctx, part, cap, item, bases, rewrite, st, f"case{ci}.lookahead{sel.offset}.{value:x}")
