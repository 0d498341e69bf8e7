"""Control copies behind a variable-length header's two cases (xdp's `emitter.fast_paths`): packets that reach the
control through a header with an empty variable part (IPv4 with IHL 5) replayed with a non-empty one, and packets
with a non-empty one replayed with it empty.

A target may give the common case of a header with a variable part its own copy of the control (the xdp target
does where the state then accepts: IPv4 with IHL 5 and version 4 tests one byte and runs a copy that reads the IHL
as 5). Generated packets mostly have empty option areas, so the copy for headers *with* options would see only the
few vectors of the option classes, none of which route, count or rewrite; and where a select steers the common
case elsewhere (gre_tunnel's lookahead sends 0x45 with GRE to the tunnel), the packets of the other path mostly
carry options, leaving the common case's copy bare. A mutant in a bare copy survives.

Per header and case, this class takes the generated packets that add a per-path coverage item
(gen_coverage.PathCoverage: parse path, copy, table action, branch or statement) or a new way through the control
(`_way`: every branch, each table's action and hit or miss, the verdict), greedily (each adds at least one item the
ones before did not), and replays each in the other case: with the smallest area the length field can express,
filled as the option walk accepts (no-op singletons where the TLV format has them), or with none; the length field
set and an IPv4-style header checksum recomputed (`gen_classes._with_area`). Items are the source packets' items
suffixed `(with <instance>.<area>)` or `(without ...)`, covered when the replay reaches the item. Expected results
come from the oracle. Tag: `varlen_copy`.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from c3po_compiler import ir

from .gen_classes import _area_lengths, _find_area, _tlv_fill, _with_area
from .gen_coverage import ClassCoverage

__all__ = ["CAP_SHARE", "CLASS", "MAX_CAP", "MIN_CAP", "varlen_copy_vectors"]

CLASS = "varlen_copies"
CAP_SHARE = 0.08  # of the vectors generated before this class
MIN_CAP = 24
MAX_CAP = 64  # acl_firewall's ways through its control would take 360 (7 % more vectors on every target)


def _empty_area_headers(prog: ir.Program) -> list[str]:
    """Instances with a variable part whose state extracts them (not stacks, not TLV options)."""
    out = []
    for name, inst in sorted(prog.instances.items()):
        if inst.type.varlen is None or inst.is_stack or inst.tlv_parent:
            continue
        if any(st.extract == name for st in prog.parser.states.values()):
            out.append(name)
    return out


def _area(ht: ir.HeaderType, lengths: dict[int, int], rng: random.Random) -> bytes | None:
    """The smallest non-empty area the length field can express, as the option walk accepts it."""
    vl = ht.varlen
    assert vl is not None
    for n in sorted(x for x in lengths if x > 0):
        if vl.tlv is None:
            return bytes(n)
        fill = _tlv_fill(vl.tlv, n, rng)
        if fill is not None:
            return fill
    return None


def _way(r: Any) -> str:
    """The way a run went, finer than the per-path items (which leave out the action a default ran, for one): its
    parse path, every branch, each table's action and hit or miss, and the verdict. A target that copies the
    control per branch and per action has a copy per way."""
    obs = r.observations
    ifs = " ".join(f"{a.rsplit('/', 1)[-1]}:{'then' if b else 'else'}" for kind, a, b in obs.get("trace", [])
                   if kind == "if")
    hits = obs.get("hit", {})
    tables = " ".join(f"{t}.{a}:{'hit' if hits.get(t) else 'miss'}" for t, a in sorted(obs.get("tables", {}).items()))
    return f"{'-'.join(obs.get('path', []))} way [{ifs}] [{tables}] {r.verdict}"


def varlen_copy_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    pc = ctx.per_path
    headers = _empty_area_headers(prog)
    if pc is None or not headers:
        return
    left = min(MAX_CAP, max(MIN_CAP, int(len(ctx.vectors) * CAP_SHARE)))
    want: dict[tuple[str, bool], set[str]] = {}  # per header and case, items already given a replay
    for v in list(ctx.vectors):
        if len(v.packets) != 1 or v.registers:
            continue
        p = v.packets[0]
        r = ctx.run_with(v.control, p.data, p.port, {})
        if r.verdict == "drop" and r.observations.get("parser_error") is not None:
            continue
        reached_here = pc.items(r) | {_way(r)}
        for inst in headers:
            at = _find_area(ctx, p.data, p.port, inst)
            if at is None:
                continue
            grow = at.n == 0  # the other case: an area where there is none, none where there is one
            items = reached_here - want.setdefault((inst, grow), set())
            if not items:
                continue
            ht = prog.instances[inst].type
            assert ht.varlen is not None
            got = _area_lengths(ht, at.values)
            area: bytes | None = None
            if got is not None:
                area = _area(ht, got[1], random.Random(f"{ctx.seed}/{inst}/{v.name}")) if grow else \
                    (b"" if 0 in got[1] else None)
            data = _with_area(ctx, p.data, inst, at, area, False) if area is not None else None
            suffix = f" ({'with' if grow else 'without'} {inst}.{ht.varlen.name})"
            names = sorted(items)
            want[(inst, grow)] |= items
            part.all.extend(f"{item}{suffix}" for item in names)
            if data is None:
                for item in names:
                    part.infeasible[f"{item}{suffix}"] = "the length field cannot express the other case"
                continue
            if left <= 0:
                for item in names:
                    part.infeasible[f"{item}{suffix}"] = "not generated: the class's cap was reached"
                continue
            left -= 1
            tag = hashlib.sha256(data).hexdigest()[:8]
            r2 = ctx.emit(f"varlen_copy.{inst}.{'with' if grow else 'without'}.{tag}", int(v.provenance.get("path", 0)),
                          v.control, data, ["varlen_copy"], p.port, {})
            reached = pc.items(r2) | {_way(r2)}
            for item in names:
                if item in reached:
                    part.covered.add(f"{item}{suffix}")
                else:
                    part.infeasible[f"{item}{suffix}"] = ("in the other case the packet takes another way (a "
                                                         "length, select or checksum the area changes decides)")
