"""Constant entries, bit by bit (issue 16): the classes that tell a target's image of each constant entry apart
from a mutated one.

- const_dont_care: every constant entry hit with all its don't-care key bits set to 1 (a wildcard key at its
  largest value, a ternary key's unmasked bits, an LPM key's host bits, a range the entry does not constrain
  at its maximum) and once with them all 0. A target that stores the entry's mask or value image with one
  bit too many (a mask bit where the spec has a wildcard) makes the entry require that bit to be 0: the
  all-ones vector misses it there. Where setting every such bit at once makes another entry win (a
  higher-priority entry that wants one of them), each key is set on its own, keeping what still wins; what
  never can is listed as infeasible with the entry that wins instead (a mutant there is equivalent).
- const_mask_bits: every constant entry's key just outside it at the first and last bit of each byte of its
  mask (a ternary key's cared bits, an LPM key's prefix bits, an exact key's value): a target whose image
  lost that mask bit (0xff stored as 0x7f or 0xfe) or holds the value bit flipped matches the entry there.
  Another entry or the default must then decide (the counters say which).
- const_overlaps: for each pair of constant entries of one table that a single key matches, a vector whose
  key matches both: a mutated priority or tie order changes which entry wins (the counters say which).

Keys are steered from packet fields by gen_classes._steer, expected results are the oracle's.
"""

from __future__ import annotations

import itertools
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .gen_classes import ClassContext, _Budget, _canonical_entries, _const_lookup, _pool, _steer, _winning_key
from .gen_coverage import ClassCoverage
from .interp_tables import _elem_matches

__all__ = ["CONST_CLASSES", "const_vectors"]

CONST_CLASSES = ("const_dont_care", "const_overlaps", "const_mask_bits")
MAX_DONT_CARE_VECTORS = 320  # in all; each entry takes at most one vector per variant (ones, zeros)
MAX_OVERLAP_VECTORS = 192
MAX_MASK_BIT_VECTORS = 320
MAX_OVERLAP_PAIRS = 96  # pairs per table looked at


def const_vectors(ctx: ClassContext) -> None:
    for name in CONST_CLASSES:
        ctx.classes.setdefault(name, ClassCoverage())
    _dont_care(ctx)
    _overlaps(ctx)
    _mask_bits(ctx)


# ---------------------------------------------------------------------------------------------- don't-care bits


def _dont_care_value(e: KeyElem, width: int, ones: bool) -> int | None:
    """The element's value with its don't-care bits all 1 (ones) or all 0; None when it has none."""
    m = (1 << width) - 1
    if e.kind == "any":
        return m if ones else 0
    if e.kind == "mask":
        free = ~e.b & m
        return None if not free else (e.a & e.b) | (free if ones else 0)
    if e.kind == "prefix":
        host = (1 << (width - e.b)) - 1 if e.b < width else 0
        return None if not host else (e.a & ~host & m) | (host if ones else 0)
    if e.kind == "range" and e.a == 0 and e.b == m:  # a range the entry does not constrain
        return m if ones else 0
    return None


def _emit_hit(ctx: ClassContext, t: ir.Table, i: int, key: tuple[int, ...], name: str, tag: str,
              salt: str) -> str | None:
    """Steer `key` to the table and emit; None when done, else why not."""
    got = _steer(ctx, t.name, key, salt)
    if isinstance(got, str):
        return got
    pid, data, port, control, regs = got
    r = ctx.emit(name, pid, control, data, [tag], port, regs)
    if not r.observations.get("hit", {}).get(t.name):
        return "the packet steered to the key did not hit the table"
    return None


def _winner(ctx: ClassContext, t: ir.Table, key: tuple[int, ...]) -> str:
    w = _const_lookup(ctx, t.name, key)
    return "the key misses every entry" if w is None else f"entry #{w} wins there"


def _dont_care(ctx: ClassContext) -> None:
    part = ctx.classes["const_dont_care"]
    cap = _Budget(part, MAX_DONT_CARE_VECTORS)
    for t in ctx.prog.tables.values():
        if not t.entries:
            continue
        for i, match in enumerate(_canonical_entries(ctx, t)):
            for ones in (True, False):
                _dont_care_entry(ctx, t, i, match, ones, part, cap)


def _dont_care_entry(ctx: ClassContext, t: ir.Table, i: int, match: tuple[KeyElem, ...], ones: bool,
                     part: ClassCoverage, cap: _Budget) -> None:
    label = "ones" if ones else "zeros"
    targets = {j: v for j, (e, k) in enumerate(zip(match, t.keys, strict=True))
               if (v := _dont_care_value(e, k.width, ones)) is not None}
    items = {j: f"{t.name}#{i}.{t.keys[j].text}:dont_care_{label}" for j in targets}
    part.all.extend(items.values())
    if not targets:
        return
    base = _winning_key(ctx, t, i, match)
    if base is None:
        why = ("an empty range (lo > hi): the entry can never match" if any(e.kind == "range" and e.a > e.b for e in match)
               else "no key value makes it win: an earlier or higher-priority entry shadows it")
        for item in items.values():
            part.infeasible[item] = why
        return
    # every don't-care bit at once; else greedily, each key set in turn and kept where the entry still wins and
    # a packet still carries the key (a port range's maximum needs a TCP or UDP header an ICMP entry's packets
    # lack); the keys the first pass could not add lead a second pass (a VLAN entry hit by TCP with ACK set)
    whole = tuple(targets.get(j, v) for j, v in enumerate(base))
    if _const_lookup(ctx, t.name, whole) == i:
        got = _steer(ctx, t.name, whole, f"dc{i}.{label}")
        if not isinstance(got, str):
            _emit_dc(ctx, t, i, f"{label}", got, [items[j] for j in targets], part, cap)
            return
    order = list(targets)
    for attempt in range(2):
        cur, kept, last, failed = list(base), [], None, []
        for j in order:
            trial = tuple(targets[j] if n == j else x for n, x in enumerate(cur))
            if _const_lookup(ctx, t.name, trial) != i:
                part.infeasible.setdefault(items[j], f"with these bits set {_winner(ctx, t, trial)}: a bit there "
                                                     "cannot show")
                continue
            step = _steer(ctx, t.name, trial, f"dc{i}.{j}.{label}.{attempt}")
            if isinstance(step, str):
                failed.append(j)
                part.infeasible.setdefault(items[j], step)
                continue
            cur[j] = targets[j]
            kept.append(j)
            last = step
        new = [items[j] for j in kept if items[j] not in part.covered]
        if last is not None and new:
            _emit_dc(ctx, t, i, f"{label}.{attempt}" if attempt else label, last, new, part, cap)
        failed = [j for j in failed if items[j] not in part.covered]
        if not failed:
            return
        order = failed + [j for j in order if j not in failed]
    # the key contradicts the others' values (the established bit of a TCP packet under a protocol of 255): the
    # other keys as a packet that reached the table has them, where the entry allows
    for j in failed:
        _dont_care_from_pool(ctx, t, i, match, base, j, targets[j], items[j], label, part, cap)


MAX_POOL_KEYS = 8


def _dont_care_from_pool(ctx: ClassContext, t: ir.Table, i: int, match: tuple[KeyElem, ...], base: tuple[int, ...],
                         j: int, value: int, item: str, label: str, part: ClassCoverage, cap: _Budget) -> None:
    tried = 0
    seen: set[tuple[int, ...]] = set()
    # packets that already give the key its value first, then those where it is non-zero (the header that
    # carries it is there), then those that need fewer of the entry's own keys replaced
    pool = sorted((r[5] for r in _pool(ctx, t.name)), key=lambda keys: (
        keys[j] != value, keys[j] == 0,
        sum(not _elem_matches(e, k.width, v) for e, k, v in zip(match, t.keys, keys, strict=True))))
    for keys in pool:
        key = tuple(value if n == j else v if _elem_matches(e, k.width, v) else b
                    for n, (e, k, v, b) in enumerate(zip(match, t.keys, keys, base, strict=True)))
        if key in seen or _const_lookup(ctx, t.name, key) != i:
            continue
        seen.add(key)
        tried += 1
        if tried > MAX_POOL_KEYS:
            return
        got = _steer(ctx, t.name, key, f"dc{i}.{j}.{label}.pool{tried}")
        if not isinstance(got, str):
            _emit_dc(ctx, t, i, f"{t.keys[j].text}.{label}", got, [item], part, cap)
            return


def _emit_dc(ctx: ClassContext, t: ir.Table, i: int, label: str, got: tuple[Any, ...], items: list[str],
             part: ClassCoverage, cap: _Budget) -> None:
    if not cap.take_all(items):
        return
    pid, data, port, control, regs = got
    r = ctx.emit(f"const_dc.{t.name}.e{i}.{label}", pid, control, data, ["const_dont_care"], port, regs)
    hit = bool(r.observations.get("hit", {}).get(t.name))
    for item in items:
        if hit:
            part.covered.add(item)
            part.infeasible.pop(item, None)
        else:
            part.infeasible[item] = "the packet steered to the key did not hit the table"


# --------------------------------------------------------------------------------------------------- mask bits


def _cared_bits(e: KeyElem, width: int) -> list[int]:
    """The first and last bit of each byte of the element's mask (bit 0 the least significant), where set."""
    got = _bits(e, width)
    care = got[0] if got is not None else 0
    return sorted({b for n in range(0, width, 8) for b in (n, min(n + 7, width - 1)) if care >> b & 1})


def _mask_bits(ctx: ClassContext) -> None:
    part = ctx.classes["const_mask_bits"]
    cap = _Budget(part, MAX_MASK_BIT_VECTORS)
    for t in ctx.prog.tables.values():
        if not t.entries:
            continue
        for i, match in enumerate(_canonical_entries(ctx, t)):
            base = _winning_key(ctx, t, i, match)
            for j, (e, k) in enumerate(zip(match, t.keys, strict=True)):
                for b in _cared_bits(e, k.width):
                    item = f"{t.name}#{i}.{k.text}:bit{b}_flipped"
                    part.all.append(item)
                    if base is None:
                        part.infeasible[item] = "no key value makes the entry win"
                        continue
                    key = tuple(v ^ (1 << b) if n == j else v for n, v in enumerate(base))
                    if _const_lookup(ctx, t.name, key) == i:
                        part.infeasible[item] = "the entry still wins with the bit flipped"
                        continue
                    if not cap.take_all([item]):
                        continue
                    got = _steer(ctx, t.name, key, f"mb{i}.{j}.{b}")
                    if isinstance(got, str):
                        part.infeasible[item] = (f"{got}: no packet carries the flipped value with the entry's other "
                                                 "key values (an entry that lost the bit matches no more packets)")
                        continue
                    pid, data, port, control, regs = got
                    ctx.emit(f"const_mask_bit.{t.name}.e{i}.{k.text}.bit{b}", pid, control, data,
                             ["const_mask_bit"], port, regs)
                    part.covered.add(item)


# ---------------------------------------------------------------------------------------------------- overlaps


def _bits(e: KeyElem, width: int) -> tuple[int, int] | None:
    """(care mask, value) of a non-range element."""
    m = (1 << width) - 1
    if e.kind == "any":
        return 0, 0
    if e.kind == "value":
        return m, e.a & m
    if e.kind == "mask":
        return e.b & m, e.a & e.b & m
    if e.kind == "prefix":
        pm = m ^ ((1 << (width - e.b)) - 1) if e.b else 0
        return pm, e.a & pm
    return None


def _meet(a: KeyElem, b: KeyElem, width: int, natural: int) -> list[int]:
    """Values matched by both elements (a few: the natural value's free bits, all zeros, all ones)."""
    m = (1 << width) - 1
    ba, bb = _bits(a, width), _bits(b, width)
    out: list[int] = []
    if ba is not None and bb is not None:
        (ma, va), (mb, vb) = ba, bb
        care = ma | mb
        fixed = va | vb
        out = [fixed | (natural & ~care & m), fixed, fixed | (~care & m)]
    else:
        lo = max(x.a if x.kind == "range" else 0 for x in (a, b))
        hi = min(x.b if x.kind == "range" else m for x in (a, b))
        if lo <= hi:
            out = [min(max(natural, lo), hi), lo, hi]
            # a range against a mask: the range's own values
            out += [v for x in (a, b) if x.kind == "range" for v in (x.a, x.b)]
    return [v for v in dict.fromkeys(out)
            if _elem_matches(a, width, v) and _elem_matches(b, width, v)]


def _overlaps(ctx: ClassContext) -> None:
    part = ctx.classes["const_overlaps"]
    cap = _Budget(part, MAX_OVERLAP_VECTORS)
    for t in ctx.prog.tables.values():
        if len(t.entries) < 2:
            continue
        matches = _canonical_entries(ctx, t)
        natural = ctx.first_apply[t.name][5] if t.name in ctx.first_apply else tuple(0 for _ in t.keys)
        pairs = list(itertools.combinations(range(len(matches)), 2))[:MAX_OVERLAP_PAIRS]
        for i, j in pairs:
            lists = [_meet(a, b, k.width, v) for a, b, k, v in zip(matches[i], matches[j], t.keys, natural, strict=True)]
            if not all(lists):
                continue  # no key matches both: not an overlap
            item = f"{t.name}#{i}&#{j}"
            part.all.append(item)
            key: tuple[int, ...] | None = None
            third: int | None = None
            for combo in itertools.islice(itertools.product(*lists), 64):
                w = _const_lookup(ctx, t.name, combo)
                if w in (i, j):
                    key = combo
                    break
                third = w
            if key is None:
                part.infeasible[item] = f"entry #{third} wins on every key tried that matches both"
                continue
            if not cap.take_all([item]):
                continue
            why = _emit_hit(ctx, t, i, key, f"const_overlap.{t.name}.e{i}.e{j}", "const_overlap", f"ov{i}.{j}")
            if why is None:
                part.covered.add(item)
            else:
                part.infeasible[item] = why
