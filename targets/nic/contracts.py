"""What the nic driver checks of the generated code beyond the vectors: a table filled to its declared size.

The vectors fill a table to at most 1,024 entries (`full_cycle`; more exceeds BMv2's install time and the vector
line limit), but the examples' tables hold 4,096..65,536: the table API's handle bounds at `size`, `_init`'s
free list and the refill after deletes are then reached by no vector. So once per program build the driver
fills every table, through the generated C table API, to exactly its declared size and empties it again
(`check_table`), on a freshly initialised state before any vector's state is installed; a wrong answer is
reported as an ERROR of every vector of the run (`NicDriver.install`), naming the table and the check.

What the API promises (docs/targets/nic.md, "Control plane") and is checked here, per table:
- `size` entries fit, counting the constant entries `_init` installed: exactly `size` minus those adds succeed
  (an add of a constant entry's match may answer EXISTS), and the next ones answer FULL;
- the handles given out are 0..size-1, each once (the constant entries keep theirs), and `_lookup` of each
  match finds its handle;
- at the full table, `_modify` and `_counter` of the last handle (size-1) succeed (`_counter` answers NOENT in a
  table without counters, and writes 0s in both cases);
- deletes, some between others in a full table, each succeed; `_lookup` then finds every entry left and none
  deleted; once all are deleted, the deleted handles answer NOENT and the constant entries are still found at
  their handles;
- the emptied table takes exactly as many entries again, at the same handles.

The keys are distinct by construction (an index times an odd constant, modulo the key's total width, split
over the keys; lpm at full length, ternary under a full mask, range lo = hi), spread over the hash tables'
slots and colliding in them as the load reaches one half. A table whose key space cannot hold its size plus a
margin is skipped. The calls go through `Backend.batch` (the sanitizer harness pipelines them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from c3po_compiler import ir

from .emitter import nbytes

OK, FULL, EXISTS, ARG, NOENT = 0, -1, -2, -3, -4
ERRORS = {-1: "FULL", -2: "EXISTS", -3: "ARG", -4: "NOENT"}
SPARE = 8  # adds tried past the table's size (each must answer FULL)
INTERLEAVED = 512  # of the last entries added, every other one is deleted first (holes in a full table)
_MULT = 0x9E3779B97F4A7C15
COUNTER_SENTINEL = 0x5A5A5A5A5A5A5A5A  # what `_counter`'s outputs hold before the call


class Batch(Protocol):
    def table_calls(self, op: str, table: int, subjects: Sequence[bytes] | Sequence[int], action: int = 0,
                    args: bytes = b"") -> list[int]: ...
    def lookup(self, table: int, match: bytes, priority: int) -> int: ...


def _code(c: int) -> str:
    return ERRORS.get(c, str(c))


def fill_keys(t: ir.Table, count: int) -> list[bytes] | None:
    """`count` distinct wire matches for table `t`, or None when its keys cannot hold that many."""
    bits = sum(k.width for k in t.keys)
    if not t.keys or bits > 4096 or (1 << bits) < count:
        return None
    full = (1 << bits) - 1
    mult = (_MULT & full) | 1  # odd: j -> j * mult mod 2^bits is a bijection
    parts = []
    shift = bits
    for k in t.keys:
        shift -= k.width
        parts.append((k.kind, shift, (1 << k.width) - 1, nbytes(k.width)))
    if all(k.kind in ("exact", "lpm") and k.width % 8 == 0 for k in t.keys):  # byte-aligned: slices of v
        cuts, at = [], 0
        for k in t.keys:
            cuts.append((at, at + k.width // 8, bytes([k.width]) if k.kind == "lpm" else b""))
            at += k.width // 8
        raw = [((j * mult) & full).to_bytes(at, "big") for j in range(count)]
        if len(cuts) == 1 and not cuts[0][2]:
            return raw
        return [b"".join(r[a:b] + tail for a, b, tail in cuts) for r in raw]
    out = []
    for j in range(count):
        v = (j * mult) & full
        b = bytearray()
        for kind, sh, mask, nb in parts:
            x = ((v >> sh) & mask).to_bytes(nb, "big")
            if kind == "exact":
                b += x
            elif kind == "lpm":
                b += x + bytes([mask.bit_length()])
            elif kind == "ternary":
                b += x + mask.to_bytes(nb, "big")
            else:
                b += x + x
        out.append(bytes(b))
    return out


def check_table(be: Batch, t: ir.Table, tid: int, action: tuple[int, bytes],
                constants: list[tuple[bytes, int, int]],
                counter: Callable[[int], tuple[int, int, int] | None]) -> str | None:
    """Fill table `t` (id `tid`) of a freshly initialised state to its size and empty it again (module doc).
    `action`: an action id the table allows and its argument bytes; `constants`: the constant entries' (match,
    priority, handle) as `_init` installs them; `counter(handle)`: `_counter`'s (code, packets, bytes), None
    where the backend cannot call it. Returns what went wrong, or None. Leaves the table changed."""
    size, where = t.size, f"table '{t.name}' filled to its size ({t.size})"
    const_handles = {h for _, _, h in constants}
    free = size - len(const_handles)
    keys = fill_keys(t, size + SPARE)
    if keys is None or free <= 0:
        return None
    aid, args = action

    def adds() -> dict[int, bytes] | str:
        """Every key added: the handle -> match of those that succeeded, or what went wrong."""
        codes = be.table_calls("add", tid, keys, aid, args)
        handles: dict[int, bytes] = {}
        exists = 0
        for j, c in enumerate(codes):
            if c in handles or c in const_handles:
                return f"{where}: add {j + 1} gives out handle {c}, which an entry holds"
            if c >= 0 and len(handles) < free:
                handles[c] = keys[j]
            elif c == EXISTS and exists < len(constants):
                exists += 1  # a constant entry's match
            elif c != FULL or len(handles) < free:
                got = "succeeds" if c >= 0 else f"answers {_code(c)}"
                return (f"{where}: add {j + 1} {got} after {len(handles)} entries were added ({free} fit beside "
                        f"{len(const_handles)} constant entries)")
        if sorted([*handles, *const_handles]) != list(range(size)):
            return f"{where}: the handles given out are not 0..{size - 1}, each once"
        return handles

    live = adds()
    if isinstance(live, str):
        return live
    order = list(live)
    found = be.table_calls("lookup", tid, [live[h] for h in order])
    for h, got in zip(order, found, strict=True):
        if got != h:
            return f"{where}: lookup of the entry added as handle {h} finds {_code(got)}"
    last = size - 1
    if last in live:
        rc = be.table_calls("modify", tid, [last], aid, args)[0]
        if rc != OK:
            return f"{where}: modify of the last handle ({last}) answers {_code(rc)}, not OK"
        got_counter = counter(last)
        if got_counter is not None:
            rc, pk, by = got_counter
            want = OK if t.counters else NOENT
            if rc != want or (pk, by) != (0, 0):
                return (f"{where}: counter of the last handle ({last}) answers {_code(rc)} with ({pk}, {by}), "
                        f"not {_code(want)} with (0, 0)")
    holes = order[-INTERLEAVED:][1::2][::-1]
    punched = set(holes)
    rest = [h for h in order if h not in punched][::-1]
    for batch_handles in (holes, rest):
        codes = be.table_calls("delete", tid, batch_handles)
        for h, rc in zip(batch_handles, codes, strict=True):
            if rc != OK:
                return f"{where}: delete of handle {h} answers {_code(rc)}, not OK"
        gone = punched if batch_handles is holes else set(order)
        found = be.table_calls("lookup", tid, [live[h] for h in order])
        for h, got in zip(order, found, strict=True):
            want = NOENT if h in gone else h
            if got != want:
                return (f"{where}: after {len(gone)} deletes, lookup of the entry added as handle {h} finds "
                        f"{_code(got)}, not {_code(want) if want < 0 else f'handle {want}'}")
    stale = [min(order), max(order)]
    for h, rc in zip(stale, be.table_calls("delete", tid, stale), strict=True):
        if rc != NOENT:
            return f"{where}: delete of handle {h} (deleted) answers {_code(rc)}, not NOENT"
    for m, prio, h in constants:
        if (got := be.lookup(tid, m, prio)) != h:
            return f"{where}: once emptied, lookup of the constant entry at handle {h} finds {_code(got)}"
    again = adds()
    if isinstance(again, str):
        return f"{where}, emptied and filled again: {again.split(': ', 1)[1]}"
    if sorted(again) != sorted(live):
        return f"{where}: emptied and filled again, it gives out other handles"
    return None
