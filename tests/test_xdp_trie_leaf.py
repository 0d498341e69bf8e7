"""Multibit tries whose leaves hold the route's action data (layout.TrieLeaf, ENTRY_INDIRECT of issue 14): which
tables get the form, the control plane's owners against a brute-force longest-prefix match while routes with the
same data nest, are modified and deleted, an array reopened by another process (`Trie` rebuilt from the routes),
the root's global copy kept equal to the array's root, and the kernel program reading what the table API wrote."""

from __future__ import annotations

import functools
import random
from pathlib import Path

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from targets.xdp import layout as L
from targets.xdp.trie import FANOUT, FIRST_NODE, TRIE_LINK, Trie, replacement_for

from .conftest import ROOT, need_bpf
from .test_xdp_trie import _brute, _spec, program_of


def test_router_routes_hold_their_data_in_the_leaves_and_counted_or_wide_tables_do_not() -> None:
    router = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    for name in ("routes_v4", "routes_v6"):
        leaf = L.table_layout(router, router.tables[name]).leaf
        assert leaf is not None and leaf.act_shift == 16 and leaf.fields == ((0, 0, 16),)  # set_nexthop(id: 16)
    lay = L.table_layout(router, router.tables["routes_v4"])
    ids = lay.action_ids
    assert lay.leaf is not None
    assert lay.leaf.encode(ids["set_nexthop"], [0x1234]) == ids["set_nexthop"] << 16 | 0x1234
    assert lay.leaf.decode(L.leaf_of_value(lay, L.encode_value(lay, "set_nexthop", (7,), 3, None)), 1) == \
        (ids["set_nexthop"], [7])
    counted = program_of(_spec("counters: true"))
    assert L.table_layout(counted, counted.tables["routes"]).leaf is None  # the entry index is the counter's
    wide = program_of(_spec("").replace("actions: [forward, drop]", "actions: [wide, drop]") + """
actions:
  wide:
    params: {v: 32}
    do: ["ipv4.dst = v"]
""")
    lay = L.table_layout(wide, wide.tables["routes"])
    assert lay.trie_nodes and lay.leaf is None, "32 bits of data and an action id do not fit 30 bits"

    def program_for(width: int) -> ir.Program:
        return program_of(_spec("").replace("actions: [forward, drop]", "actions: [wide, drop]") + f"""
actions:
  wide:
    params: {{v: {width}}}
    do: ["ipv4.dst = (bit<32>) v"]
""")

    def leaf_for(width: int) -> L.TrieLeaf | None:
        p = program_for(width)
        return L.table_layout(p, p.tables["routes"]).leaf

    widest = max(w for w in range(16, 31) if leaf_for(w) is not None)
    ids = L.action_ids(program_for(widest))
    top_id = max(ids["wide"], ids["drop"])
    assert leaf_for(widest + 1) is None and widest + top_id.bit_length() == L.TRIE_LEAF_BITS == 30
    leaf = leaf_for(widest)
    assert leaf is not None
    assert not leaf.encode(top_id, [(1 << widest) - 1]) & TRIE_LINK  # the fullest leaf never reads as a link


def test_the_generated_walk_reads_the_leaf_and_no_action_data_array() -> None:
    from targets.xdp import XdpTarget

    router = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    src = XdpTarget().render(router)["router.bpf.c"]
    assert "nodes, the action data in the leaves)" in src  # the table's line says which form
    assert "bpf_map_lookup_elem(&tv_routes_v4" not in src and "act = ts >> 16;" in src
    assert "__u64 ts = c3po_tries.routes_v4[ti];" in src  # the root from its global copy: no map lookup
    assert "c3po_trie_slot(" not in src  # every node is in the copy: no map lookup at any level
    assert "} tt_routes_v4 SEC" not in src  # and the copy is the trie: no array map holding it again
    assert "arg0 = ts & 0xffff" in src


def _leaf_trie(width: int, nodes: int, data: dict[int, int], plens: dict[int, int], root: memoryview,
               out: memoryview | None = None, routes: list[tuple[int, int, int]] | None = None) -> Trie:
    if out is None:
        out = memoryview(bytearray(4 * (FIRST_NODE + nodes) * FANOUT)).cast("I")
    return Trie(out, nodes, width, plens.__getitem__, lambda e: 1 << 16 | data[e], routes or [], root)


def test_nested_routes_with_the_same_data_are_told_apart_by_their_owners() -> None:
    """Random nested routes whose data often repeat (5 values), random modifies, deletes restoring the covering
    route; after every change each probe's leaf is the brute-force winner's current data, and a trie reopened on
    the same array from the routes alone (another process) finds the same owners and goes on agreeing."""
    width = 32
    rng = random.Random(5)
    data: dict[int, int] = {}
    plens: dict[int, int] = {}
    # the program's global copy: the root and the first 8 of the 48 nodes (trie_copied_slots)
    root = memoryview(bytearray(4 * (FIRST_NODE + 8) * FANOUT)).cast("I")
    trie = _leaf_trie(width, 48, data, plens, root)
    routes: dict[tuple[int, int], int] = {}
    bases = [rng.getrandbits(width) for _ in range(4)]
    entry = 0

    def check(t: Trie, step: int) -> None:
        probes = [rng.getrandbits(width) for _ in range(4)] + [p for _, p in routes]
        probes += [b ^ (1 << rng.randrange(width)) for b in bases]
        for key in probes:
            best = _brute(routes, key, width)
            assert t.slot_of(key) == (0 if best is None else 1 << 16 | data[best]), (step, hex(key))
            assert t.lookup(key) == best

    for step in range(400):
        r = rng.random()
        if routes and r < 0.3:
            (plen, prefix), e = rng.choice(sorted(routes.items()))
            del routes[(plen, prefix)]
            trie.delete(prefix, plen, e, replacement_for(prefix, plen, width, routes))
        elif routes and r < 0.55:
            (plen, prefix), e = rng.choice(sorted(routes.items()))
            data[e] = rng.randrange(5)
            trie.rewrite(prefix, plen, e)
        else:
            plen = rng.choice([0, 8, 12, 16, 20, 24, 28, 32])
            prefix = rng.choice(bases) & (((1 << plen) - 1) << (width - plen)) if plen else 0
            if (plen, prefix) in routes or trie.needed(prefix, plen) > len(trie.free):
                continue
            plens[entry], data[entry] = plen, rng.randrange(5)
            trie.insert(prefix, plen, entry)
            routes[(plen, prefix)] = entry
            entry += 1
        check(trie, step)
        if step % 100 == 99:
            assert root.tolist() == trie.out[:len(root)].tolist()
            again = _leaf_trie(width, 48, data, plens, root, trie.out, [(p, n, e) for (n, p), e in routes.items()])
            assert sorted(again.free) == sorted(trie.free)
            for n in [0, *sorted(set(range(FIRST_NODE, FIRST_NODE + 48)) - set(trie.free))]:  # freed: stale
                first, count = (0, FIRST_NODE * FANOUT) if n == 0 else (n * FANOUT, FANOUT)
                assert again.a[first:first + count].tolist() == trie.a[first:first + count].tolist(), n
            trie.close()
            trie = again
    trie.close()


def _match(prog: ir.Program, prefix: str) -> tuple[KeyElem, ...]:
    from dataplane.syntax import parse_match

    return parse_match(prog.tables["routes"], [f"ipv4.dst={prefix}"])


def test_the_kernel_program_takes_modified_and_restored_route_data(tmp_path: Path) -> None:
    """Through the table API on the driver's maps (the code `c3po apply`, the Python API and the P4Runtime server
    run), then packets through BPF_PROG_TEST_RUN: a /8 covering 256 root slots and the slots of a /16's node is
    modified (every address it wins takes the new port, the nested routes keep theirs); deleting the nested /24
    that has the same data as the /8 leaves its addresses to the /8's new data; a default change reaches misses.
    Each `locked()` block reads the tables again, so the trie is reopened from the kernel's array every time."""
    need_bpf()
    from conformance.model import ControlState, PacketIn
    from targets.xdp.driver import DriverTables, XdpDriver

    prog = program_of(_spec("impl: {kind: multibit_trie, nodes: 4}"))
    assert L.table_layout(prog, prog.tables["routes"]).leaf is not None
    driver = XdpDriver()

    def ports(*dsts: str) -> list[int | None]:
        out = []
        for dst in dsts:
            ipv4 = bytes.fromhex("450000140000000040110000") + bytes(4) + bytes(int(x) for x in dst.split("."))
            [r] = driver.run([PacketIn(1, bytes(12) + b"\x08\x00" + ipv4)], {})
            out.append(r.port if r.verdict == "forward" else None)
        return out

    try:
        driver.open(prog, tmp_path)
        driver.install(ControlState())
        assert driver.bpf is not None
        dp = DriverTables(prog, driver.bpf, driver.prio_fds)
        m = functools.partial(_match, prog)
        with dp.locked():
            t = dp.table("routes")
            t.add(m("10.0.0.0/8"), "forward", (1,))
            t.add(m("10.1.1.0/24"), "forward", (1,))  # the same data as the /8: the same leaf
            t.add(m("10.1.2.0/24"), "forward", (2,))
            t.add(m("10.1.2.128/25"), "forward", (3,))
        probes = ("10.9.9.9", "10.1.3.3", "10.1.1.1", "10.1.2.2", "10.1.2.200", "11.0.0.1")
        assert ports(*probes) == [1, 1, 1, 2, 3, None]
        with dp.locked():
            dp.table("routes").modify(m("10.0.0.0/8"), "forward", (7,))
        assert ports(*probes) == [7, 7, 1, 2, 3, None]
        with dp.locked():
            dp.table("routes").delete(m("10.1.1.0/24"))
            dp.table("routes").modify(m("10.1.2.128/25"), "forward", (4,))
        assert ports(*probes) == [7, 7, 7, 2, 4, None]
        with dp.locked():
            dp.table("routes").delete(m("10.1.2.0/24"))
            dp.table("routes").set_default("forward", (5,))
        assert ports(*probes) == [7, 7, 7, 7, 4, 5]
        fresh = DriverTables(prog, driver.bpf, driver.prio_fds)  # another process's view of the same maps
        with fresh.locked():
            fresh.table("routes").modify(m("10.0.0.0/8"), "drop", ())
            assert {e.action for e in fresh.table("routes").entries()} == {"drop", "forward"}
        assert ports(*probes) == [None, None, None, None, 4, 5]
    finally:
        driver.close()
