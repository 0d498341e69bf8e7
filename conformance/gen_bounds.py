"""Bounds the differential hunt of nic survivors found unchecked (issue 16, docs/conformance.md "Hunting
survivors"):

- varlen_truncation: for each variable-length header on the first parse path to it at each depth (up to
  MAX_PATHS_PER_HEADER), frames that end inside its
  variable part with the part at its maximum length: right after the fixed part, at each 4-byte step into
  the part and one byte short of the header's end; with the part at an intermediate length, one byte short
  of its end. A parser that walks its cursor the wrong way past the fixed part (router's `cur += 20u` made
  `-=`) reads on where the spec drops the frame as truncated. truncation_edges (gen_classes.py) cuts only
  the first path's header around its fixed part and at its minimum length.
- key_top_bit: for every key of every table, an installed entry and a packet whose key has its top bit set:
  for a range key an entry `0 .. max` and one `top .. max` (lo with the top bit set), each hit by a key with
  the top bit set, and the second missed by `top - 1`; for exact/lpm/ternary keys an entry with the top bit
  set. A decoder that masks a bound or value one bit short (tlv_parser's `mss_policy` hi read as 15 bits)
  misses there. full_width (gen_classes.py) sets the top bit of action arguments and of fields actions read,
  key_edges an all-ones key through the header-field steering; here the key fields are TLV option fields
  too (set in place in a packet that carries the option).

Items: "PATH>INST:maxN@K" (frame cut K bytes into an N-byte variable part), "TABLE.KEY:LABEL"; what no vector
can reach is listed as infeasible with the reason. Expected results are the oracle's.
"""

from __future__ import annotations

import random

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .gen_classes import (
    ClassContext,
    _area_lengths,
    _Budget,
    _find_area,
    _meta_sources,
    _pool,
    _set_field,
    _steer,
    _tlv_fill,
    _with_area,
)
from .gen_control import entry_for
from .gen_coverage import ClassCoverage
from .model import ControlState, EntryState

__all__ = ["BOUND_CLASSES", "bound_vectors"]

BOUND_CLASSES = ("varlen_truncation", "key_top_bit")
MAX_TRUNC_VECTORS = 64
MAX_KEY_VECTORS = 48
MAX_PATHS_PER_HEADER = 4  # parse paths per header, the first at each depth (the xdp target copies states per
# context, such as the number of VLAN tags before it)
MAX_STEPPED = 40  # the largest variable part cut at every 4-byte step (IPv4 and TCP options)
MAX_SCAN = 400  # generated vectors looked at to find one carrying a key field the steering cannot set
MAX_TRIES = 12  # of them rewritten and run


def bound_vectors(ctx: ClassContext) -> None:
    for name in BOUND_CLASSES:
        ctx.classes.setdefault(name, ClassCoverage())
    _varlen_truncation(ctx)
    _key_top_bit(ctx)


# ------------------------------------------------------------------------------------ varlen truncation


def _area_bytes(vl: ir.VarLen, n: int, rng: random.Random) -> bytes:
    got = _tlv_fill(vl.tlv, n, rng) if vl.tlv is not None else None
    return got if got is not None else bytes(rng.getrandbits(8) for _ in range(n))


def _cuts(n: int) -> list[int]:
    """Bytes into an n-byte variable part where the frame ends: right after the fixed part, one byte short of
    the end, then each 4-byte step (an area past MAX_STEPPED bytes: its first two, middle and last steps)."""
    if n <= 0:
        return []
    steps = range(4, n, 4) if n <= MAX_STEPPED else (4, 8, n // 2 & ~3, (n - 1) & ~3)
    return list(dict.fromkeys([0, n - 1, *steps]))


def _varlen_truncation(ctx: ClassContext) -> None:
    part = ctx.classes["varlen_truncation"]
    budget = _Budget(part, MAX_TRUNC_VECTORS)
    plans: list[tuple[str, int, bytes | None, str]] = []  # max-length cuts first, then intermediate lengths
    later: list[tuple[str, int, bytes | None, str]] = []
    seen: set[tuple[str, ...]] = set()
    depths: set[tuple[str, int]] = set()
    per_header: dict[str, int] = {}
    edge: set[str] = set()  # the cuts right after the fixed part and one byte short of the end
    for pid, _path, recs, data, _starts in ctx.accepted:
        for i, rec in enumerate(recs):
            vl = rec.ht.varlen
            prefix = tuple(r.instance for r in recs[: i + 1])
            if vl is None or prefix in seen or (rec.instance, i) in depths or per_header.get(rec.instance, 0) >= \
                    MAX_PATHS_PER_HEADER:
                continue
            seen.add(prefix)
            depths.add((rec.instance, i))
            per_header[rec.instance] = per_header.get(rec.instance, 0) + 1
            name = ">".join(prefix)
            inst = rec.instance
            at = _find_area(ctx, data, 1, inst)
            got = _area_lengths(rec.ht, at.values) if at is not None else None
            if at is None or got is None or not any(got[1]):
                plans.append((f"{name}:max", pid, None, "the header's variable part is not in the packet or its "
                              "length field gives no non-empty one"))
                continue
            sizes = sorted(x for x in got[1] if x)
            mid = sizes[len(sizes) // 2]
            for n, out, cuts in ((sizes[-1], plans, _cuts(sizes[-1])), (mid, later, [mid - 1])):
                if n == sizes[-1] and out is later:
                    continue
                area = _area_bytes(vl, n, random.Random(f"{ctx.seed}/{pid}/{name}/bounds{n}"))
                for k in cuts:
                    item = f"{name}:max{n}@{k}" if n == sizes[-1] else f"{name}:mid{n}@{k}"
                    if k in (0, n - 1):
                        edge.add(item)
                    # the bytes cut off are zero and the header's checksum covers them: a parser that reads on
                    # past the frame (into a zeroed buffer) finds the header valid and goes on, where the spec
                    # drops the frame as truncated
                    full = _with_area(ctx, data, inst, at, area[:k] + bytes(n - k), False)
                    out.append((item, pid, None if full is None else full[: at.start + k],
                                "no area of this length the generator can fill"))
    # both ends of every header's part first (_cuts lists them first), then the steps between, then the
    # intermediate lengths
    ends = [p for p in plans if p[0] in edge]
    for j, (item, pid, frame, why) in enumerate([*ends, *(p for p in plans if p not in ends), *later]):
        part.all.append(item)
        if frame is None:
            part.infeasible[item] = why
            continue
        if not budget.take(item):
            continue
        ctx.emit(f"p{pid:02d}.vcut{len(frame)}.{j}", pid, ControlState(), frame, ["truncated", "varlen_truncation"], 1, {})
        part.covered.add(item)


# -------------------------------------------------------------------------------------------- key top bit


def _carry(ctx: ClassContext, tname: str, i: int, value: int, salt: str) -> tuple[int, bytes, int, ControlState] | str:
    """A packet reaching table `tname` with key `i` at `value` (the other keys as they come): the header-field
    steering first, then a packet carrying the key field (a TLV option field too) set in place."""
    t = ctx.prog.tables[tname]
    want: tuple[int | None, ...] = tuple(value if j == i else None for j in range(len(t.keys)))
    got = _steer(ctx, tname, want, salt)
    if not isinstance(got, str):
        return got[0], got[1], got[2], got[3]
    e = t.keys[i].expr
    refs = [e] if isinstance(e, ir.FieldRef) else _meta_sources(ctx.prog).get(e.name, []) \
        if isinstance(e, ir.MetaRef) else []
    if not refs:
        return got
    cands: list[tuple[int, bytes, int, ControlState, set[str] | None]] = [
        (r[0], r[1], r[2], r[3], None) for r in _pool(ctx, tname)]
    for v in ctx.vectors[:MAX_SCAN]:
        obs = v.expected[0].observations if v.expected else {}
        if len(v.packets) == 1 and not v.registers and "truncated" not in v.tags and tname in obs.get("tables", {}):
            control = ControlState(tuple(x for x in v.control.entries if x.table != tname),
                                   tuple(d for d in v.control.defaults if d[0] != tname))
            cands.append((int(v.provenance.get("path", 0)), v.packets[0].data, v.packets[0].port, control,
                          set(obs.get("path", []))))
    tries = 0
    for pid, data, port, control, path in cands:
        for ref in refs:
            if path is not None and ref.instance not in path and ctx.prog.instances[ref.instance].tlv_parent is None:
                continue  # the packet does not carry the header
            patched = _set_field(ctx, data, port, ref, value)
            if patched is None:
                continue
            tries += 1
            r = ctx.run_with(control, patched, port, {})
            if any(kind == "apply" and tb == tname and k[i] == value
                   for kind, tb, k in r.observations.get("trace", [])):
                return pid, patched, port, control
            if tries >= MAX_TRIES:
                return got
    return got


def _key_top_bit(ctx: ClassContext) -> None:
    part = ctx.classes["key_top_bit"]
    budget = _Budget(part, MAX_KEY_VECTORS)
    prog = ctx.prog
    for t in prog.tables.values():
        act = next((a for a in t.actions if a != "nop"), t.actions[0] if t.actions else None)
        for i, k in enumerate(t.keys):
            w = k.width
            top, m = 1 << (w - 1), (1 << w) - 1
            low = random.Random(f"{ctx.seed}/{t.name}/{i}/top").getrandbits(w - 1) if w > 1 else 0
            if k.kind == "range":
                plans = [("range_full", KeyElem("range", 0, m), top | low),
                         ("range_top_lo", KeyElem("range", top, m), top | low),
                         ("range_top_lo:below", KeyElem("range", top, m), top - 1)]
            elif k.kind == "lpm":
                plans = [("top_bit", KeyElem("prefix", top, 1), top | low)]
            elif k.kind == "ternary":
                plans = [("top_bit", KeyElem("mask", top, top), top | low)]
            else:
                plans = [("top_bit", KeyElem("value", top | low), top | low)]
            for label, elem, value in plans:
                item = f"{t.name}.{k.text}:{label}"
                part.all.append(item)
                if act is None:
                    part.infeasible[item] = "the table has no action an entry could name"
                    continue
                got = _carry(ctx, t.name, i, value, f"top/{label}")
                if isinstance(got, str):
                    part.infeasible[item] = got
                    continue
                pid, data, port, control = got
                r = ctx.run_with(control, data, port, {})
                keys = next((kv for kind, tb, kv in r.observations.get("trace", []) if kind == "apply"
                             and tb == t.name), None)
                if keys is None:
                    part.infeasible[item] = "the packet no longer reaches the table"
                    continue
                base = entry_for(t, keys, act, prog)
                match = tuple(elem if j == i else e for j, e in enumerate(base.match))
                entry = EntryState(t.name, match, act, base.args, priority=1000)
                if not budget.take(item):
                    continue
                state = ControlState((*control.entries, entry), control.defaults)
                ctx.emit(f"topbit.{t.name}.{i}.{label.replace(':', '.')}", pid, state, data, ["key_top_bit"],
                         port, {})
                part.covered.add(item)
