"""Generated condition terms (issue 16, tlv_parser's third-round survivors): each `valid(option)` term of an
`&&` condition made false alone, the other terms kept true.

`if valid(tcp.sack_permitted) && valid(tcp.mss) && tcp.mss.value < 1000` was only ever reached with all three
true, or with the SYN flags or the value deciding: a target that takes the MSS option for SACK-permitted (an
option kind read two bytes wide: `0x0204` is not 4, but MSS's `len` byte is), or that tests the SACK pointer
against 1 instead of 0, passed. For each such term, each generated vector (at most MAX_BASES per condition,
spread over parse paths) on which the reference takes the condition's `then` gets a twin with that option hidden:
its key field (the option kind) set to a value no named option and no singleton has, its length kept, so the
reference walks past it as an unknown option and every other option stays where it was (a header checksum over
the area is recomputed). Covered when the reference then takes the `else`.

Items are `<if statement>:<option>@<path>` (the path's parse states joined by `>`), reported under CLASS.
Expected results come from the oracle. Tags: `condition_term`.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir

from .gen_classes import _find_area, _recompute_checksum, _set_bits, _tlv_chunks, _tlv_named, _tlv_unknown_key
from .gen_coverage import ClassCoverage
from .packets import header_spans
from .tracing import stmt_id

__all__ = ["CLASS", "MAX_BASES", "condterm_vectors", "hide_option"]

CLASS = "condition_terms"
MAX_BASES = 4  # vectors per condition (distinct parse paths first)
MAX_SCAN = 600  # generated vectors run through the reference to find those taking a condition's then


def _terms(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.Binary) and e.op == "&&":
        return _terms(e.left) + _terms(e.right)
    return [e]


def _option_terms(prog: ir.Program) -> list[tuple[ir.If, list[str]]]:
    """Every `if` whose condition is a conjunction of two or more terms, with the TLV options it tests valid."""
    out = []
    for body in [prog.control, *(a.body for a in prog.user_actions.values())]:
        for st in ir.walk_stmts(body):
            if not isinstance(st, ir.If):
                continue
            terms = _terms(st.cond)
            opts = [t.instance for t in terms if isinstance(t, ir.Valid)
                    and prog.instances[t.instance].tlv_parent is not None]
            if len(terms) > 1 and opts:
                out.append((st, list(dict.fromkeys(opts))))
    return out


def hide_option(ctx: Any, data: bytes, port: int, opt_inst: str) -> bytes | None:
    """`data` with the first occurrence of the option turned into an unknown option of the same length."""
    prog = ctx.prog
    inst = prog.instances[opt_inst]
    parent, opt = inst.tlv_parent, inst.tlv_option
    vl = prog.instances[parent].type.varlen if parent else None
    if parent is None or opt is None or vl is None or vl.tlv is None:
        return None
    tlv = vl.tlv
    at = _find_area(ctx, data, port, parent)
    if at is None:
        return None
    pos = 0
    for chunk in _tlv_chunks(tlv, data[at.start:at.start + at.n], keep_padding=True) or []:
        if _tlv_named(tlv, chunk) is opt:
            buf = bytearray(data)
            bit = 0
            unknown = _tlv_unknown_key(tlv)
            for f in tlv.header:
                if f.name in unknown:
                    _set_bits(buf, (at.start + pos) * 8 + bit, f.width, unknown[f.name])
                bit += f.width
            ht = prog.instances[parent].type
            return _recompute_checksum(ht, bytes(buf), at.off, header_spans(parent, ht, bytes(buf), at.off)[1])
        pos += len(chunk)
    return None


def condterm_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    wanted = _option_terms(prog)
    if not wanted:
        return
    sids = {stmt_id(st): opts for st, opts in wanted}
    bases: dict[str, dict[tuple[str, ...], Any]] = {sid: {} for sid in sids}
    for v in [v for v in ctx.vectors if len(v.packets) == 1 and not v.registers][:MAX_SCAN]:
        p = v.packets[0]
        r = ctx.run_with(v.control, p.data, p.port, {})
        path = tuple(r.observations.get("path", []))
        for x in r.observations.get("trace", []):
            if x[0] == "if" and x[1] in bases and x[2] and len(bases[x[1]]) < MAX_BASES:
                bases[x[1]].setdefault(path, v)
    for sid, opts in sids.items():
        for opt in opts:
            if not bases[sid]:
                item = f"{sid}:{opt}"
                part.all.append(item)
                part.infeasible[item] = "no generated vector takes the condition's then"
                continue
            for path, v in bases[sid].items():
                item = f"{sid}:{opt}@{'>'.join(path)}"
                part.all.append(item)
                p = v.packets[0]
                data = hide_option(ctx, p.data, p.port, opt)
                if data is None:
                    part.infeasible[item] = "the option could not be found in the packet"
                    continue
                r = ctx.run_with(v.control, data, p.port, {})
                if not any(x[0] == "if" and x[1] == sid and not x[2] for x in r.observations.get("trace", [])):
                    part.infeasible[item] = "with the option hidden the condition does not go to its else"
                    continue
                ctx.emit(f"condterm.{sid.rsplit('/', 1)[-1]}.{opt}.{'-'.join(path)}",
                         int(v.provenance.get("path", 0)), v.control, data, ["condition_term"], p.port, {})
                part.covered.add(item)
