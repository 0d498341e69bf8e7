"""Generated per-copy parser edges (issue 16, third round's survivors): the parser-edge vectors of one parse path
replayed on the other paths that reach the same parse state.

The xdp target's parser is a tree: it copies a parse state per context it is reached in (acl_firewall's `tcp`,
`ipv4`, `hop_by_hop`, ... once per VLAN depth), so a bound (the TCP data offset, the 40-byte option limits, a
variable-length header one byte short) checked in one copy says nothing of the others. The edge classes
(`tlv_edges`, `length_edges`, `varlen_truncation`, `truncation_edges`) each build their vectors on one or a few
paths. This class takes each of their vectors, finds its anchor (the last parse state on its path whose header
the reference located, not the start state), and splices its bytes from the anchor on behind the prefix of other
generated packets that reach the same state by another way (other VLAN depths, IPv4 or IPv6, with or without
extension headers): `donor[:offset of the anchor] + vector[offset of the anchor:]`, the vector's control state
kept. Prefixes are picked as select_edges picks paths (spread over the header-stack fill levels, the shortest of
each first), at most MAX_PREFIXES per source vector, at most a share CAP_SHARE of the vectors generated before.

Items are `<class>:<anchor>:<n>@<prefix>` (n: the source's suffix, numbered per anchor; prefix: the parse states
before the anchor joined by `>`), reported under CLASS; covered when the oracle's parse path is the donor's prefix
followed by the source's path from the anchor, ending with the source's parser error (or none). An item the source
already has (its own prefix) is not repeated. Expected results come from the oracle. Tags: `per_copy` and the
source's class.
"""

from __future__ import annotations

import hashlib
from typing import Any

from c3po_compiler import ir

from .gen_classes import _path_prefixes
from .gen_coverage import ClassCoverage

__all__ = ["CAP_SHARE", "CLASS", "MAX_PREFIXES", "SOURCES", "percopy_vectors"]

CLASS = "per_copy_edges"
SOURCES = ("tlv_edge", "length_edge", "varlen_truncation", "truncation_edge")  # tags of the source classes
MAX_PREFIXES = 6
CAP_SHARE = 0.12  # of the vectors generated before this class
MIN_CAP = 48  # small programs (tlv_parser: about 460 vectors) stay within 15 % too

Donor = tuple[tuple[str, ...], bytes, int]  # (states before the anchor, bytes before it, path id)


def _offset_key(prog: ir.Program, path: list[str], i: int, offsets: dict[str, int]) -> int | None:
    """Where the i-th state of the path starts in the packet (its extracted header's offset), None if unknown."""
    inst = prog.parser.states[path[i]].extract if path[i] in prog.parser.states else None
    if inst is None:
        return None
    if inst in offsets:
        return offsets[inst]
    k = sum(1 for s in path[:i] if prog.parser.states[s].extract == inst)
    return offsets.get(f"{inst}[{k}]")


def _anchor(prog: ir.Program, path: list[str], offsets: dict[str, int]) -> tuple[int, int] | None:
    for i in range(len(path) - 1, 0, -1):
        off = _offset_key(prog, path, i, offsets)
        if off is not None:
            return i, off
    return None


def _donors(ctx: Any) -> dict[str, list[Donor]]:
    """Per parse state, the distinct prefixes (states before it, and their bytes) of the generated packets."""
    prog = ctx.prog
    out: dict[str, dict[tuple[str, ...], Donor]] = {}
    for v in ctx.vectors:
        if len(v.packets) != 1 or v.registers:
            continue
        obs = v.expected[0].observations
        path, offsets = obs.get("path", []), obs.get("offsets", {})
        for i in range(1, len(path)):
            off = _offset_key(prog, path, i, offsets)
            if off is None:
                continue
            pre = tuple(path[:i])
            out.setdefault(path[i], {}).setdefault(pre, (pre, v.packets[0].data[:off], int(v.provenance.get("path", 0))))
    return {s: list(d.values()) for s, d in out.items()}


def _diverse(prog: ir.Program, donors: list[Donor], own: tuple[str, ...]) -> list[Donor]:
    """Up to MAX_PREFIXES donors other than the source's own prefix, spread over the header-stack fill levels
    first (select_edges' choice of paths: the xdp tree copies states per fill level), the shortest of each first."""
    by_pre = {d[0]: d for d in donors if d[0] != own}
    return [by_pre[p] for p in _path_prefixes(prog, list(by_pre))][:MAX_PREFIXES]


def percopy_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    left = max(MIN_CAP, int(len(ctx.vectors) * CAP_SHARE))
    donors = _donors(ctx)
    sources = [v for cls in SOURCES for v in list(ctx.vectors)
               if cls in v.tags and len(v.packets) == 1 and not v.registers]
    seen: set[tuple[str, str, bytes]] = set()
    numbers: dict[str, int] = {}
    plans: list[list[tuple[str, Donor, Any, str, bytes, list[str], Any]]] = []
    for v in sources:
        cls = next(c for c in SOURCES if c in v.tags)
        obs = v.expected[0].observations
        path = obs.get("path", [])
        got = _anchor(prog, path, obs.get("offsets", {}))
        if got is None:
            continue
        i, off = got
        suffix = v.packets[0].data[off:]
        if (cls, path[i], suffix) in seen:
            continue
        seen.add((cls, path[i], suffix))
        n = numbers[path[i]] = numbers.get(path[i], 0) + 1
        plans.append([(f"{cls}:{path[i]}:{n}@{'>'.join(d[0])}", d, v, cls, suffix, path[i:], obs.get("parser_error"))
                      for d in _diverse(prog, donors.get(path[i], []), tuple(path[:i]))])
    # round-robin: every source gets its most different prefix before any gets its second
    for k in range(MAX_PREFIXES):
        for plan in plans:
            if k >= len(plan):
                continue
            item, (pre, head, pid), v, cls, suffix, tail, err = plan[k]
            part.all.append(item)
            if left <= 0:
                part.infeasible[item] = "not generated: the class's cap was reached"
                continue
            left -= 1
            tag = hashlib.sha256(head + suffix).hexdigest()[:8]
            r = ctx.emit(f"percopy.{item.split('@')[0].replace(':', '.')}.{tag}", pid, v.control, head + suffix,
                         ["per_copy", cls], v.packets[0].port, {})
            if r.observations.get("path") == [*pre, *tail] and r.observations.get("parser_error") == err:
                part.covered.add(item)
            else:
                part.infeasible[item] = ("behind this prefix the packet parses differently (a length or select "
                                         "of the prefix decides)")
