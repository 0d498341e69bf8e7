"""Option areas behind which the control rewrites a later header (issue 16, found by reading survivors of the
fifth round's targeted runs).

A variable-length header moves every header after it. The length classes (`length_edges`, `varlen_truncation`)
give headers their options under whatever control state the packet came with, which in nat44 is one where
nothing after the IPv4 header is written: an xdp mutant that forgets to step over the IPv4 options
(`cur += vl_ipv4` dropped) then reads and writes the TCP header 4..40 bytes early, and survived. Here, per parse
path that extracts a header after a variable-length one: a generated vector on that path whose oracle output
differs from its input after the variable-length header (the control writes a later header: a NAT's incremental
TCP/UDP checksum), grown by one word of options and by the most options the header allows, under the vector's
own control state, kept when the oracle still takes the same path and gives the same verdict. Items
"INST+NB@PATH" in the class `options_behind`; expected results are the oracle's.

`end_padding`: the bytes after an end-of-options singleton are padding the walk skips, and a target skips them
with its own arithmetic (p4's v1model parser extracts them into a varbit, `left << 3` bits; the fifth round's
`<< 4` survived, as no vector had padding after the end option where the bytes behind the header decide
anything). Per parse path and option header with an end singleton: a vector on that path whose outcome changes
when a byte behind the header changes (acl_firewall's rules read the TCP/UDP ports there), its options replaced
by the end singleton and padding (one word, and the most options), the padding bytes not zero so a target that
walks on into them is seen too. Items "INST+endNB@PATH".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial

from c3po_compiler import ir

from .gen_classes import ClassContext, _Area, _Budget, _find_area, _tlv_fill, _with_area
from .gen_coverage import ClassCoverage, path_key
from .model import Result, Vector

__all__ = ["end_padding", "options_behind"]

MAX_VECTORS = 64
MAX_BASES = 6  # vectors of a path tried, in generation order
WORD = 4
PROBE_BYTES = 24  # bytes behind the header flipped one at a time to see whether they decide the outcome
MAX_PROBED = 12  # vectors of a path probed that way


def _by_path(ctx: ClassContext, keep: Callable[[Vector], bool], limit: int) -> dict[int, list[Vector]]:
    """Single-packet generated vectors (no registers, not truncated) that `keep` takes, by parse path, the first
    `limit` of each path in generation order."""
    by_path: dict[int, list[Vector]] = {}
    for v in ctx.vectors:
        pid = int(v.provenance.get("path", -1))
        if len(v.packets) == 1 and not v.registers and 0 <= pid < len(ctx.paths) and "truncated" not in v.tags \
                and v.expected and keep(v):
            got = by_path.setdefault(pid, [])
            if len(got) < limit:
                got.append(v)
    return by_path


def _varlen_before_more(ctx: ClassContext) -> Iterator[tuple[int, str, str, ir.VarLen]]:
    """(path id, path key, instance, its varlen) for each variable-length header, not a stack element, that an
    accepted parse path extracts with another header after it."""
    for pid, path in enumerate(ctx.paths):
        if path.end != "accept":
            continue
        extracts = [ctx.prog.parser.states[s.state].extract for s in path.steps]
        insts = [i for i in extracts if i is not None]
        for inst in dict.fromkeys(insts[:-1]):
            vl = ctx.prog.instances[inst].type.varlen
            if vl is not None and not ctx.prog.instances[inst].stack:
                yield pid, path_key([s.state for s in path.steps]), inst, vl


def options_behind(ctx: ClassContext) -> None:
    part = ctx.classes.setdefault("options_behind", ClassCoverage())
    cap = _Budget(part, MAX_VECTORS)
    by_path = _by_path(ctx, lambda v: v.expected[0].verdict == "forward", 8 * MAX_BASES)
    for pid, via, inst, vl in _varlen_before_more(ctx):
        bases = _rewritten_behind(ctx, by_path.get(pid, []), inst)
        if not bases:
            continue  # the control writes nothing behind the header on this path: no item
        _each_length(part, vl, f"{inst}+{{}}B@{via}", partial(_grow, ctx, part, cap, bases=bases, inst=inst, vl=vl))


def _each_length(part: ClassCoverage, vl: ir.VarLen, name: str, attempt: Callable[..., str | None]) -> None:
    """One item per length of the variable part a class tries (a word, and the most the header holds), `name`
    with the length in its `{}`: covered by `attempt(item=, n=)`, or infeasible for the reason it returns."""
    for n in dict.fromkeys((WORD, vl.max_bytes)):
        item = name.format(n)
        part.all.append(item)
        why = attempt(item=item, n=n)
        if why is not None:
            part.infeasible[item] = why


def _rewritten_behind(ctx: ClassContext, cands: list[Vector], inst: str) -> list[tuple[Vector, _Area]]:
    """Forwarded vectors whose header `inst` has no options and whose bytes after it the control rewrote."""
    out: list[tuple[Vector, _Area]] = []
    for v in cands:
        p, e = v.packets[0], v.expected[0]
        if e.data is None or len(e.data) != len(p.data) or e.data == p.data:
            continue  # nothing rewritten in place
        at = _find_area(ctx, p.data, p.port, inst)
        if at is None or at.n or e.data[at.start:] == p.data[at.start:]:
            continue
        out.append((v, at))
        if len(out) >= MAX_BASES:
            break
    return out


def _grow(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str, bases: list[tuple[Vector, _Area]],
          inst: str, n: int, vl: ir.VarLen) -> str | None:
    why = ""
    for v, at in bases:
        p = v.packets[0]
        rng = random.Random(f"{ctx.seed}/{v.name}/options_behind/{n}")
        area = _tlv_fill(vl.tlv, n, rng) if vl.tlv is not None else bytes(n)
        data = None if area is None else _with_area(ctx, p.data, inst, at, area, False)
        if data is None:
            why = f"{inst} cannot carry {n} bytes of options here"
            continue
        r0 = ctx.run_with(v.control, p.data, p.port, {})
        r = ctx.run_with(v.control, data, p.port, {})
        if r.verdict != r0.verdict or r.observations.get("path") != r0.observations.get("path"):
            why = f"with {n} bytes of {inst} options the packet ends otherwise (the options change the outcome)"
            continue
        if not cap.take(item):
            return part.infeasible[item]
        ctx.emit(f"options_behind.{inst}.{n}.{v.name}", int(v.provenance.get("path", 0)), v.control, data,
                 ["options_behind"], p.port, {})
        part.covered.add(item)
        return None
    return why


def end_padding(ctx: ClassContext) -> None:
    part = ctx.classes.setdefault("end_padding", ClassCoverage())
    cap = _Budget(part, MAX_VECTORS)
    by_path = _by_path(ctx, lambda v: True, 4 * MAX_PROBED)
    for pid, via, inst, vl in _varlen_before_more(ctx):
        tlv = vl.tlv
        if tlv is None or not tlv.end:
            continue
        bases = _decided_behind(ctx, by_path.get(pid, []), inst)
        if not bases:
            continue  # nothing behind the header decides anything on this path: no item
        _each_length(part, vl, f"{inst}+end{{}}B@{via}",
                     partial(_end_then_pad, ctx, part, cap, bases=bases, inst=inst, tlv=tlv))


def _decision(r: Result, at: int) -> tuple[object, ...]:
    """What a target shows of a packet, with the byte inverted at `at` put back (it passes through in the
    frame: only a change elsewhere, a rewrite that depends on it, counts)."""
    data = r.data
    if at < len(data):
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    return r.verdict, r.port, data, sorted(r.counters.items())


def _decided_behind(ctx: ClassContext, cands: list[Vector], inst: str) -> list[tuple[Vector, _Area]]:
    """Vectors whose header `inst` has no options and whose outcome changes, on the same parse path, when one
    byte behind the header is inverted: there the padding's length decides which bytes a target reads."""
    out: list[tuple[Vector, _Area]] = []
    for v in cands[:MAX_PROBED]:
        p = v.packets[0]
        at = _find_area(ctx, p.data, p.port, inst)
        if at is None or at.n:
            continue
        r0 = ctx.run_with(v.control, p.data, p.port, {})
        behind = at.start
        for i in range(behind, min(len(p.data), behind + PROBE_BYTES)):
            flipped = p.data[:i] + bytes([p.data[i] ^ 0xFF]) + p.data[i + 1:]
            r = ctx.run_with(v.control, flipped, p.port, {})
            if r.observations.get("path") == r0.observations.get("path") and _decision(r, i) != _decision(r0, len(r0.data)):
                out.append((v, at))
                break
        if len(out) >= MAX_BASES:
            break
    return out


def _end_then_pad(ctx: ClassContext, part: ClassCoverage, cap: _Budget, item: str,
                  bases: list[tuple[Vector, _Area]], inst: str, n: int, tlv: ir.Tlv) -> str | None:
    unit = tlv.singleton_bytes
    end = tlv.singletons[tlv.end[0]]
    why = f"{inst} cannot carry {n} bytes of options here"
    for v, at in bases:
        p = v.packets[0]
        rng = random.Random(f"{ctx.seed}/{v.name}/end_padding/{n}")
        pad = bytes(rng.randrange(1, 256) for _ in range(n - unit))
        data = _with_area(ctx, p.data, inst, at, end.to_bytes(unit, "big") + pad, False)
        if data is None:
            continue
        r0 = ctx.run_with(v.control, p.data, p.port, {})
        r = ctx.run_with(v.control, data, p.port, {})
        if r.observations.get("path") != r0.observations.get("path"):
            why = f"with the end option and {n - unit} bytes of padding in {inst} the packet takes another path"
            continue
        if not cap.take(item):
            return part.infeasible[item]
        ctx.emit(f"end_padding.{inst}.{n}.{v.name}", int(v.provenance.get("path", 0)), v.control, data,
                 ["end_padding"], p.port, {})
        part.covered.add(item)
        return None
    return why
