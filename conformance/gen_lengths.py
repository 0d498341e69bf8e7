"""Frames of both length parities for actions that read the packet's length (issue 14's gateway survivor).

An action that computes a header field from `std.packet_length` (the VXLAN gateway's outer IPv4 total length and
UDP length) is wrong in a way the generated vectors cannot see if a target drops the length's low bit
(`c3po_pkt_len & 0xfffe`): every frame the parse paths build is a whole number of 16-bit words (headers, then a
24-byte payload), so the right and the wrong length agree. So, CLASS (`length_parity`): per table, action that reads
`std.packet_length` and parse path on which a generated vector runs the action (at most MAX_PATHS), the vector's
frame with one more payload byte, so the action sees a length of the other parity. The item
`<table>.<action>@<path>` is covered when the oracle still runs the action on the longer frame. Expected results
come from the oracle. Tags: `length_parity`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from c3po_compiler import ir

from .gen_coverage import ClassCoverage
from .gen_fullwidth import first_per_path
from .model import Vector

__all__ = ["CLASS", "MAX_PATHS", "length_actions", "length_parity_vectors"]

CLASS = "length_parity"
MAX_PATHS = 8
MAX_VECTORS = 96  # gen_classes.MAX_PER_CLASS: the cap every class has
PAD = 0x5A  # the appended byte: not zero, so a target that reads it as padding differs too


def _reads_length(stmts: list[ir.Stmt]) -> bool:
    for st in ir.walk_stmts(stmts):
        for e in ir.stmt_exprs(st):
            if any(isinstance(x, ir.StdRef) and x.name == "packet_length" for x in ir.walk_expr(e)):
                return True
    return False


def length_actions(prog: ir.Program) -> set[str]:
    """The user actions whose body reads std.packet_length."""
    return {name for name, act in prog.user_actions.items() if _reads_length(act.body)}


def _runs(table: str, action: str) -> Callable[[Vector, dict[str, Any]], bool]:
    """A vector's packet runs the action at the table, hit or default (first_per_path's test)."""
    return lambda _v, obs: obs.get("tables", {}).get(table) == action


def length_parity_vectors(ctx: Any) -> None:
    """Called with gen_classes' ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    actions = length_actions(prog)
    if not actions:
        return
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    left = MAX_VECTORS
    for tname, t in prog.tables.items():
        for aname in t.actions:
            if aname not in actions:
                continue
            bases = first_per_path(ctx.vectors, MAX_PATHS, _runs(tname, aname))
            if not bases:
                item = f"{tname}.{aname}"
                part.all.append(item)
                part.infeasible[item] = "no generated vector runs the action at this table"
                continue
            for path, base in bases.items():
                where = ">".join(path)
                item = f"{tname}.{aname}@{where}"
                part.all.append(item)
                if left <= 0:
                    part.infeasible[item] = f"not generated: the class's cap of {MAX_VECTORS} vectors was reached"
                    continue
                left -= 1
                p = base.packets[0]
                parity = "odd" if len(p.data) % 2 == 0 else "even"
                r = ctx.emit(f"length.{tname}.{aname}.{parity}.{where}", int(base.provenance.get("path", 0)),
                             base.control, p.data + bytes([PAD]), [CLASS, parity], p.port, {})
                if r.observations.get("tables", {}).get(tname) == aname:
                    part.covered.add(item)
                else:
                    part.infeasible[item] = "with one more byte the packet no longer runs the action (a vector is kept)"
