"""What the compiler knows, statically, about the headers along each path through the control.

A generic deparser has to find out at run time which headers are valid, which came from the frame and which
set_valid made, and where they all go: that costs branches on every packet and, worse, verifier states (each
combination of NULL and non-NULL header pointers is a different state to the kernel's verifier). Yet on most
paths through a real program the answer is fixed: a VXLAN gateway's access-port branch always adds the same four
headers in front of the same Ethernet frame, its decapsulation branch always removes them.

So the emitter tracks a *family of worlds*: each world is one combination the packet can be in at a point of
the control (which frame headers are still valid, which headers set_valid made, which checksum updates were
requested, the verdict so far). The parser contributes one world per distinct set of headers a parse path
extracts; `valid(h)` conditions split the family; set_valid / set_invalid / verdicts update every world. Where
the family is a single world at the end of a path, the deparser for that path is emitted for exactly that
world: straight-line code with no run-time layout decisions. When branches of the control lead to different
worlds, the emitter emits the rest of the control once per branch (bounded by `TAIL_BUDGET`), so each copy ends
in its own specialised deparser.

This module is pure analysis over the IR; it knows nothing about C.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from c3po_compiler import ir

WORLD_LIMIT = 16  # distinct parse results tracked; beyond that the family is unknown (generic deparser)
TAIL_BUDGET = 24  # specialised copies of the rest of the control, per program


@dataclass(frozen=True)
class World:
    parsed: frozenset[str]  # header pointers the parse path extracted
    pkt: frozenset[str]  # of those, the ones still valid (they sit where the parser found them)
    new: frozenset[str]  # headers set_valid made (they live in scratch memory until the deparser)
    csum: frozenset[str] = frozenset()  # checksum-update flags raised
    verdict: str | None = None  # the verdict so far (None: depends on run-time values)
    feasible: bool = True  # False: no packet is in this world, but the kernel's verifier explores it

    @property
    def valid(self) -> frozenset[str]:
        return self.pkt | self.new


Family = frozenset[World] | None  # None: unknown (too many parse results, or analysis gave up)


def parse_family(edges: dict[str, set[str]], extracted: dict[str, str], start: str, verdict: str) -> Family:
    """The distinct sets of headers extracted on the parse paths that reach `parsed` (the unrolled parse graph is a
    DAG, so this is one pass in topological order)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(lbl: str) -> None:  # iterative DFS post-order: parse graphs can be deep
        stack: list[tuple[str, Iterable[str]]] = [(lbl, iter(sorted(edges.get(lbl, ()))))]
        seen.add(lbl)
        while stack:
            node, it = stack[-1]
            for nxt in it:
                if nxt not in seen and nxt in edges:
                    seen.add(nxt)
                    stack.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
            else:
                stack.pop()
                order.append(node)

    if start not in edges:
        return frozenset({World(frozenset(), frozenset(), frozenset(), verdict=verdict)})
    visit(start)
    sets: dict[str, set[frozenset[str]] | None] = {lbl: set() for lbl in order}
    sets[start] = {frozenset()}
    at_parsed: set[frozenset[str]] | None = set()
    for lbl in reversed(order):  # topological order
        mine = sets[lbl]
        if mine is None:
            outs = None
        else:
            x = extracted.get(lbl)
            outs = {s | {x} for s in mine} if x else set(mine)
        for nxt in edges.get(lbl, ()):
            if nxt == "parsed":
                at_parsed = None if outs is None or at_parsed is None else at_parsed | outs
            elif nxt in sets:
                cur = sets[nxt]
                sets[nxt] = None if outs is None or cur is None or len(cur | outs) > WORLD_LIMIT else cur | outs
        if at_parsed is not None and len(at_parsed) > WORLD_LIMIT:
            at_parsed = None
    if at_parsed is None or not at_parsed:
        return None
    return frozenset(World(s, s, frozenset(), verdict=verdict) for s in at_parsed)


def outcomes(e: ir.Expr, w: World, ptr_of: Callable[[ir.Valid], str | None], verifier: bool,
             exact: frozenset[str] = frozenset()) -> frozenset[bool]:
    """The values `e` can take in world `w`: at run time, or (`verifier`) on the paths the kernel's verifier
    explores. The verifier does not know that a packet pointer is never NULL, so it also follows the "NULL" side
    of a test on a valid header (a NULL pointer, though, it tracks exactly). Headers in `exact` are tested through
    their bit in a validity word, a constant on every path the verifier walks, so it follows only the real side."""
    both = frozenset({True, False})
    if isinstance(e, ir.Valid):
        p = ptr_of(e)
        if p is None:
            return both
        if p not in w.valid:
            return frozenset({False})
        return both if verifier and p not in exact else frozenset({True})
    if isinstance(e, ir.Unary) and e.op == "!":
        return frozenset(not v for v in outcomes(e.operand, w, ptr_of, verifier, exact))
    if isinstance(e, ir.Binary) and e.op in ("&&", "||"):
        a, b = outcomes(e.left, w, ptr_of, verifier, exact), outcomes(e.right, w, ptr_of, verifier, exact)
        if e.op == "&&":
            return frozenset(x and y for x in a for y in b)
        return frozenset(x or y for x in a for y in b)
    return both


def refine(fam: Family, cond: ir.Expr, outcome: bool, ptr_of: Callable[[ir.Valid], str | None],
           exact: frozenset[str] = frozenset()) -> Family:
    """The worlds the branch where `cond` is `outcome` is explored in: by the verifier (all of them), and at run
    time (those still `feasible`)."""
    if fam is None:
        return None
    out = set()
    for w in fam:
        if outcome in outcomes(cond, w, ptr_of, True, exact):
            feasible = w.feasible and outcome in outcomes(cond, w, ptr_of, False, exact)
            out.add(w if feasible == w.feasible else replace(w, feasible=feasible))
    return frozenset(out)


def feasible(fam: Family) -> Family:
    """The worlds packets can really be in (the others only the verifier explores)."""
    return None if fam is None else frozenset(w for w in fam if w.feasible)


def set_valid(fam: Family, ptr: str, valid: bool) -> Family:
    if fam is None:
        return None
    out = set()
    for w in fam:
        if valid:
            out.add(w if ptr in w.valid else replace(w, new=w.new | {ptr}))
        else:
            out.add(replace(w, pkt=w.pkt - {ptr}, new=w.new - {ptr}))
    return frozenset(out)


def with_verdict(fam: Family, verdict: str | None) -> Family:
    return None if fam is None else frozenset(replace(w, verdict=verdict) for w in fam)


def with_csum(fam: Family, flag: str) -> Family:
    return None if fam is None else frozenset(replace(w, csum=w.csum | {flag}) for w in fam)


def union(fams: Iterable[Family]) -> Family:
    out: set[World] = set()
    for f in fams:
        if f is None:
            return None
        out |= f
    return frozenset(out)


def must_valid(fam: Family) -> frozenset[str]:
    """Header pointers valid in every world, feasible or not (no NULL check needed: the verifier agrees)."""
    if not fam:
        return frozenset()
    return frozenset.intersection(*(w.valid for w in fam))
