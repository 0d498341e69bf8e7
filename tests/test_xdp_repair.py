"""A command killed half-way through a change leaves the trie or cuckoo slots half-written; the next command
repairs them from the table's record (`Trie.repair`, `Cuckoo.repair`). Death is simulated at every write of a
change, in turn; the repaired structure must answer every lookup as the record says and take further changes."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest

from targets.xdp.cuckoo import Cuckoo
from targets.xdp.trie import FANOUT, FIRST_NODE, TRIE_LINK, Trie, replacement_for

from .test_xdp_trie import _brute


class Died(BaseException):
    """The writer is killed (a BaseException: nothing on the way catches it)."""


def _die_after(obj: Any, names: tuple[str, ...], budget: int) -> None:
    """Make obj's writing methods raise Died once `budget` writes are done."""
    left = [budget]
    for name in names:
        real: Callable[..., Any] = getattr(obj, name)

        def write(*args: Any, _real: Callable[..., Any] = real) -> Any:
            if left[0] == 0:
                raise Died
            left[0] -= 1
            return _real(*args)

        setattr(obj, name, write)


WIDTH, NODES = 32, 24


def _routes(rng: random.Random) -> dict[tuple[int, int], int]:
    """Nested routes around a few bases: /8s filling root spans, /20s, /24s and /32s needing nodes."""
    routes: dict[tuple[int, int], int] = {}
    bases = [rng.getrandbits(WIDTH) for _ in range(3)]
    for entry, plen in enumerate([0, 8, 12, 16, 20, 24, 24, 28, 32, 32]):
        prefix = rng.choice(bases) & (((1 << plen) - 1) << (WIDTH - plen)) if plen else 0
        routes.setdefault((plen, prefix), entry)
    return routes


def _open(out: memoryview, root: memoryview, plens: dict[int, int], data: dict[int, int] | None,
          routes: dict[tuple[int, int], int]) -> Trie:
    """The trie as the next command opens it: from the arrays and the record's routes."""
    leaf_of = None if data is None else (lambda e: 1 << 16 | data[e])
    return Trie(out, NODES, WIDTH, plens.__getitem__, leaf_of, [(p, n, e) for (n, p), e in routes.items()], root)


def _probes(routes: dict[tuple[int, int], int], rng: random.Random) -> list[int]:
    out = [p for _, p in routes] + [p | rng.getrandbits(WIDTH - n) if n < WIDTH else p for n, p in routes]
    return out + [rng.getrandbits(WIDTH) for _ in range(20)]


@pytest.mark.parametrize("leaves", [False, True], ids=["entry-slots", "leaf-slots"])
@pytest.mark.parametrize("change", ["insert", "delete"])
def test_a_change_killed_at_any_write_is_repaired_to_the_record(leaves: bool, change: str) -> None:
    """For k (every early one, then a sample), a fresh trie holding the record's routes gets one change whose writer dies after k slot
    writes (the control plane writes the record after an insert's slots and a delete's, so the record is the
    routes before the change); the next opener repairs, then every probe finds the record's longest match (its
    leaf too, in the copy of the root packets read), and redoing the change works and is right."""
    most = 0
    for seed in range(3):
        rng = random.Random(seed)
        record = _routes(rng)
        plens = {e: plen for (plen, _), e in record.items()}
        data = {e: e % 3 for e in plens} if leaves else None
        if change == "insert":
            plen = [32, 24, 12][seed]  # nodes made; a node made; 16 root slots
            prefix = rng.getrandbits(WIDTH) & (((1 << plen) - 1) << (WIDTH - plen))
            new = max(plens) + 1
            plens[new] = plen
            if data is not None:
                data[new] = 2
            after = {**record, (plen, prefix): new}
        else:
            # a /8 (256 root slots), the longest route (its nodes may collapse), one in a node
            (plen, prefix), new = sorted(record.items(), key=lambda r: (r[0][0] != [8, 32, 20][seed], r))[0]
            after = {k: e for k, e in record.items() if k != (plen, prefix)}
        for k in [*range(8), *range(8, 1000, 23)]:  # every early death, then a sample of the later ones
            out = memoryview(bytearray(4 * (FIRST_NODE + NODES) * FANOUT)).cast("I")
            root = memoryview(bytearray(4 * (FIRST_NODE + 2) * FANOUT)).cast("I")
            trie = _open(out, root, plens, data, {})
            for (n, p), e in sorted(record.items()):
                trie.insert(p, n, e)
            _die_after(trie, ("_set", "_fill"), k)
            try:
                if change == "insert":
                    trie.insert(prefix, plen, new)
                else:
                    trie.delete(prefix, plen, new, replacement_for(prefix, plen, WIDTH, after))
            except Died:
                pass
            else:
                break  # the change needed fewer than k writes: every point of death was tried
            again = _open(out, root, plens, data, record)
            again.repair([(p, n, e) for (n, p), e in record.items()])
            for key in _probes(after | record, rng):
                best = _brute(record, key, WIDTH)
                assert again.lookup(key) == best, (seed, k, hex(key))
                want = 0 if best is None else (1 << 16 | data[best] if data else best + 1)
                assert again.slot_of(key) == want, (seed, k, hex(key))
                if key >> 16 < len(root) // FANOUT * FANOUT and not out[key >> 16] & TRIE_LINK:
                    assert root[key >> 16] == out[key >> 16]
            if change == "insert":
                again.insert(prefix, plen, new)
            else:
                again.delete(prefix, plen, new, replacement_for(prefix, plen, WIDTH, after))
            for key in _probes(after | record, rng):
                assert again.lookup(key) == _brute(after, key, WIDTH), (seed, k, hex(key))
            assert root.tolist() == out[:len(root)].tolist()
            k += 1
        most = max(most, k)
    assert most > 16, "some change wrote many slots: deaths between them were tried"


def test_a_cuckoo_insert_killed_mid_move_or_a_delete_before_its_record_is_repaired() -> None:
    """A table nine tenths full and an insert that moves two keys (copy, then clear: a key is briefly in two
    slots), or a delete; the writer dies after k slot writes; the next opener's repair from the record (the keys
    before the change) leaves each key once, in one of its buckets, pointing at its entry, and no other."""
    twice = 0
    for change in ("insert", "delete"):
        for k in range(8):
            rng = random.Random(1)
            mem = memoryview(bytearray(64 * 4 * 16))
            c = Cuckoo(mem, 64, 1, 4)
            record: dict[tuple[int, int], int] = {}
            for e in range(230):
                key = (rng.getrandbits(48), 0)
                record[key] = e
                c.insert(*key, e)
            key = next(iter(record))
            while change == "insert" and (key in record or len(c._path(*key) or []) < 3):
                key = (rng.getrandbits(48), 0)  # one whose insert moves two keys
            _die_after(c, ("_write", "_clear"), k)
            with contextlib.suppress(Died):
                c.insert(*key, 999) if change == "insert" else c.delete(*key)
            keys = [(k0, k1) for b in range(64) for w in range(4) for k0, k1, e in [c._read(b, w)] if e]
            twice += len(keys) != len(set(keys))
            again = Cuckoo(mem, 64, 1, 4)
            again.repair(record)
            held = [again._read(b, w) for b in range(64) for w in range(4)]
            live = [(k0, k1) for k0, k1, e in held if e]
            assert sorted(live) == sorted(record) and len(set(live)) == len(live), (change, k)
            for (k0, k1), e in record.items():
                assert again.lookup(k0, k1) == e
            if change == "insert":
                again.insert(*key, 999)
                assert again.lookup(*key) == 999
    assert twice, "some insert died between a move's copy and its clear"
