"""CRC registers kept in table entries: a hash whose first arguments are exact keys of the table an action runs
from starts, on a hit, from the CRC register after those arguments, which the control plane computes when it
writes the entry (the key is the entry's own match). The data plane then hashes only the rest.

The VXLAN gateway's outer UDP source port, `hash(crc16, ethernet.dst, ethernet.src, ethernet.ethertype)` in
the FDB's `to_remote`, starts with `ethernet.dst`, an exact FDB key: on a hit, 8 bytes are hashed instead of
14 (two dependent table steps instead of four). A miss (the default action, whose data has no match) hashes
everything, so both hit and miss give the reference's value.

The register is stored advanced over as many zero bytes as the data plane hashes after it, and the data plane
XORs it into the CRC of the rest taken from a zero register: the register update is linear over GF(2) in the
register and the data together, so crc(r, d) = crc(0, d) ^ crc(r, 0...0). The table loads then depend on the
frame's bytes only, not on the entry's value: the processor issues them while the entry's cache line is still
on its way, instead of one chain of misses after the other (seen in a cpu-clock profile of the gateway's
encapsulation, docs/performance.md). A hash over nothing but keys is the entry's register itself.

Which hashes: those in an action's straight-line statements (up to its first branch, table or action call)
whose leading arguments are, in order, the table's exact keys themselves (the same field, metadata or
standard metadata) and nothing before the hash in the action writes them (no assignment to their header or
metadata, no set_valid/set_invalid or checksum update of the header, no forward for standard metadata): the
key was read before the action ran, so it still equals the hash's arguments.

Where the register goes (layout.TableLayout.crc): into the upper 32 bits of a parameter's slot of the same
action that holds a host-order value of at most 32 bits (the action masks the parameter to its width when it
reads it: the register costs no byte and no load), else into a slot of its own after the action's
parameters (the value grows only if that action has the most slots)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from c3po_compiler import ir

from . import crc

PACK_SHIFT = 32  # a register packed beside a parameter of at most 32 bits


@dataclass(frozen=True)
class CrcPrefix:
    algorithm: str
    keys: tuple[int, ...]  # table key indexes, in the hash's argument order
    widths: tuple[int, ...]  # their widths
    slot: int  # the value slot that holds the register
    shift: int  # its bit position in the slot (0 or PACK_SHIFT)
    rest: int  # bytes the data plane hashes after the prefix (the register is advanced over as many zeros)


Ref = tuple[str, ...]


def _ref(e: ir.Expr) -> Ref | None:
    if isinstance(e, ir.FieldRef):
        return ("f", e.instance, str(e.index), e.field_name, str(e.group))
    if isinstance(e, ir.MetaRef):
        return ("m", e.name)
    if isinstance(e, ir.StdRef):
        return ("s", e.name)
    return None


def _writes(s: ir.Stmt) -> set[str] | None:
    """What `s` may change of a key's value (header instances, `m:<meta>`, `s:*`); None: not a straight-line
    statement, stop looking."""
    if isinstance(s, ir.Assign):
        t = s.target
        return {t.instance} if isinstance(t, ir.FieldRef) else {f"m:{t.name}"} if isinstance(t, ir.MetaRef) else set()
    if isinstance(s, ir.SetValid | ir.UpdateChecksum):
        return {s.instance}
    if isinstance(s, ir.SetVerdict):
        return {"s:*"}
    if isinstance(s, ir.Count):
        return set()
    return None


def _owner(r: Ref) -> str:
    return r[1] if r[0] == "f" else f"m:{r[1]}" if r[0] == "m" else "s:*"


def sites(t: ir.Table, a: ir.Action) -> list[tuple[ir.Hash, tuple[int, ...]]]:
    """The hashes of `a` that can start from an entry's register when `a` runs from a hit in `t`, each with the
    table keys (indexes) of its prefix, in the order the layout and the emitter both walk them."""
    if a.builtin:
        return []
    exact = {r: i for i, k in enumerate(t.keys) if k.kind == "exact" and (r := _ref(k.expr)) is not None}
    if not exact:
        return []
    out: list[tuple[ir.Hash, tuple[int, ...]]] = []
    written: set[str] = set()
    for s in a.body:
        for e in ir.stmt_exprs(s):
            for h in ir.walk_expr(e):
                if not isinstance(h, ir.Hash) or h.algorithm not in crc.ALGORITHMS:
                    continue
                keys: list[int] = []
                for arg in h.args:
                    r = _ref(arg)
                    if r is None or r not in exact or _owner(r) in written or exact[r] in keys:
                        break
                    keys.append(exact[r])
                if keys:
                    out.append((h, tuple(keys)))
        w = _writes(s)
        if w is None:
            break
        written |= w
    return out


def place(t: ir.Table, a: ir.Action, params: list[tuple[str, int, int]], raw: tuple[str, ...],
          first_free: int) -> tuple[tuple[CrcPrefix, ...], int]:
    """The prefixes of `a`'s hashes (`sites`) with their slots; and the action's slot count after them."""
    free = [slot for name, width, slot in params if width <= PACK_SHIFT and name not in raw]
    out = []
    for h, keys in sites(t, a):
        widths = tuple(t.keys[i].width for i in keys)
        rest = sum((arg.width + 7) // 8 for arg in h.args[len(keys):])
        if free:
            out.append(CrcPrefix(h.algorithm, keys, widths, free.pop(0), PACK_SHIFT, rest))
        else:
            out.append(CrcPrefix(h.algorithm, keys, widths, first_free, 0, rest))
            first_free += 1
    return tuple(out), first_free


def register(p: CrcPrefix, match: Sequence[ir.KeyElem]) -> int:
    """What the entry with `match` holds: the CRC register after the prefix's key values (big-endian, whole
    bytes each, as the hash takes its arguments), advanced over `p.rest` zero bytes -- the term the data plane
    XORs into the CRC of the rest taken from 0 (see the module's doc)."""
    data = b"".join((match[i].a & ((1 << w) - 1)).to_bytes((w + 7) // 8, "big") for i, w in zip(p.keys, p.widths, strict=True))
    return crc.register(p.algorithm, bytes(p.rest), crc.register(p.algorithm, data))
