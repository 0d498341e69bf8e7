"""Table lookup for the reference interpreter: the match semantics of docs/spec-reference.md section 6.

Three plainly different strategies, chosen per table from its key kinds:
- exact keys only: one dict;
- an lpm key and otherwise exact keys: the longest prefix wins, one dict per prefix length, longest first;
- any ternary or range key: the highest priority wins, ties to the entry installed first (a linear scan in that
  order).
In every case, two entries with identical matches resolve to the one installed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

__all__ = ["InstalledEntry", "Matcher", "canonical"]


@dataclass(frozen=True)
class InstalledEntry:
    index: int  # install order within the table: the counter index and the priority tie-break
    match: tuple[KeyElem, ...]
    action: str
    args: tuple[int, ...]
    priority: int


def canonical(elem: KeyElem, kind: str, width: int) -> KeyElem:
    """One shape per key kind, whatever shorthand the control plane used (value for a full match...)."""
    full = (1 << width) - 1
    if elem.kind == "any":
        if kind == "exact":
            raise ValueError("an exact key cannot be a wildcard")
        return elem
    if kind == "exact":
        if elem.kind != "value":
            raise ValueError(f"an exact key takes a value, not {elem.kind!r}")
        return elem
    if kind == "lpm":
        if elem.kind == "value":
            return KeyElem("prefix", elem.a, width)
        if elem.kind == "prefix":
            plen = elem.b
            mask = full ^ ((1 << (width - plen)) - 1) if plen else 0
            return KeyElem("prefix", elem.a & mask, plen)
    if kind == "ternary":
        if elem.kind == "value":
            return KeyElem("mask", elem.a, full)
        if elem.kind == "mask":
            return KeyElem("mask", elem.a & elem.b, elem.b)
    if kind == "range":
        if elem.kind == "value":
            return KeyElem("range", elem.a, elem.a)
        if elem.kind == "range":
            return elem
    raise ValueError(f"a {kind} key cannot take a {elem.kind!r} match")


def _elem_matches(elem: KeyElem, width: int, v: int) -> bool:
    if elem.kind == "any":
        return True
    if elem.kind == "value":
        return v == elem.a
    if elem.kind == "prefix":
        shift = width - elem.b
        return (v >> shift) == (elem.a >> shift)
    if elem.kind == "mask":
        return (v & elem.b) == elem.a
    return elem.a <= v <= elem.b


class Matcher:
    """The installed entries of one table, organised for lookup."""

    def __init__(self, table: ir.Table, entries: list[InstalledEntry]) -> None:
        self.widths = [k.width for k in table.keys]
        self.entries = entries
        lpm = table.lpm_key
        if table.uses_priority or not table.keys:
            self.mode = "priority"
            self.ordered = sorted(entries, key=lambda e: (-e.priority, e.index))
        elif lpm is None:
            self.mode = "exact"
            self.exact: dict[tuple[int, ...], InstalledEntry] = {}
            for e in entries:
                self.exact.setdefault(tuple(m.a for m in e.match), e)
        else:
            self.mode = "lpm"
            self.lpm = lpm
            width = self.widths[lpm]
            by_len: dict[int, dict[tuple[int, ...], InstalledEntry]] = {}
            for e in entries:
                plen = 0 if e.match[lpm].kind == "any" else e.match[lpm].b
                key = tuple(0 if i == lpm and plen == 0 else m.a for i, m in enumerate(e.match))
                by_len.setdefault(plen, {}).setdefault(key, e)
            full = (1 << width) - 1
            self.levels = [(full ^ ((1 << (width - plen)) - 1) if plen else 0, by_len[plen])
                           for plen in sorted(by_len, reverse=True)]

    def lookup(self, key: tuple[int, ...]) -> InstalledEntry | None:
        if self.mode == "exact":
            return self.exact.get(key)
        if self.mode == "lpm":
            p = self.lpm
            if len(key) == 1:
                v = key[0]
                for mask, d in self.levels:
                    hit = d.get((v & mask,))
                    if hit is not None:
                        return hit
                return None
            for mask, d in self.levels:
                hit = d.get((*key[:p], key[p] & mask, *key[p + 1:]))
                if hit is not None:
                    return hit
            return None
        widths = self.widths
        for e in self.ordered:
            if all(_elem_matches(m, w, v) for m, w, v in zip(e.match, widths, key, strict=True)):
                return e
        return None
