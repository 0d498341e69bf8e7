"""Multibit tries (`impl: multibit_trie`, targets/xdp/trie.py): the control plane's slot arithmetic against a
brute-force longest-prefix match, node reuse and collapse, capacity refusals, and the kernel program walking
what the control plane wrote (conformance of every lpm example runs the same path through the driver)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from c3po_compiler.problems import SpecError
from targets.xdp import layout as L
from targets.xdp.trie import FANOUT, FIRST_NODE, TRIE_LINK, Trie, TrieFull, build, node_of, replacement_for

from .conftest import ROOT, need_bpf


def program_of(text: str) -> ir.Program:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "t.yaml"
        spec.write_text(text, encoding="utf-8")
        return load_program(spec).program


def _trie(width: int, nodes: int) -> tuple[Trie, dict[int, int]]:
    plens: dict[int, int] = {}
    buf = memoryview(bytearray(4 * (FIRST_NODE + nodes) * FANOUT)).cast("I")
    return Trie(buf, nodes, width, plens.__getitem__), plens


def _brute(routes: dict[tuple[int, int], int], key: int, width: int) -> int | None:
    best: tuple[int, int] | None = None
    for (plen, prefix), entry in routes.items():
        mask = ((1 << plen) - 1) << (width - plen) if plen else 0
        if key & mask == prefix and (best is None or plen > best[0]):
            best = (plen, entry)
    return best[1] if best else None


@pytest.mark.parametrize("leaves", [False, True])
@pytest.mark.parametrize("width", [32, 128])
def test_a_built_image_is_the_one_inserts_make(width: int, leaves: bool) -> None:
    """`build` fills regions at once where an insert writes slot by slot: over nested routes of every length,
    on an array that held another table before (a trie opened `empty`), the slots packets read (root copy
    included) are those of inserting the routes one by one into a fresh trie, and lookups match the brute force."""
    rng = random.Random(width + leaves)
    bases = [rng.getrandbits(width) for _ in range(5)]
    lengths = [0, 1, 8, 15, 16, 17, 23, 24, 25, 31, 32] + ([40, 48, 64, 127, 128] if width == 128 else [])
    routes: dict[tuple[int, int], int] = {}
    for entry in range(60):
        plen = rng.choice(lengths)
        prefix = rng.choice(bases) & (((1 << plen) - 1) << (width - plen)) if plen else 0
        routes.setdefault((plen, prefix), entry)
    plens = {e: plen for (plen, _), e in routes.items()}
    leaf_of = (lambda e: 0x100 + 7 * e) if leaves else None
    nodes, copied = 200, (FIRST_NODE + 2) * FANOUT

    def arrays() -> tuple[memoryview, memoryview]:
        return (memoryview(bytearray(4 * (FIRST_NODE + nodes) * FANOUT)).cast("I"),
                memoryview(bytearray(4 * copied)).cast("I"))

    one_by_one, root1 = arrays()
    fresh = Trie(one_by_one, nodes, width, plens.__getitem__, leaf_of, root=root1)
    for (plen, prefix), e in sorted(routes.items(), key=lambda r: (-r[0][0], r[1])):  # longest first: no bulk
        fresh.insert(prefix, plen, e)
    built, root2 = arrays()
    for i in range(len(built)):  # what an earlier table left behind
        built[i] = rng.getrandbits(30)  # leaves and entries, never a link (bit 30)
    trie = Trie(built, nodes, width, plens.__getitem__, leaf_of, root=root2, empty=True)
    with pytest.raises(TrieFull):  # opened without reading the array: no node is known free before `build`
        trie.insert(1 << (width - 1), 24, 0)
    build(trie, [(prefix, plen, e) for (plen, prefix), e in routes.items()])
    for key in [rng.getrandbits(width) for _ in range(300)] + [p for _, p in routes]:
        assert trie.lookup(key) == fresh.lookup(key) == _brute(routes, key, width), hex(key)
        assert trie.slot_of(key) == fresh.slot_of(key), hex(key)
    assert root2.tolist() == built[:copied].tolist(), "the root copy holds what the array holds"
    assert trie.used_nodes == fresh.used_nodes
    link = TRIE_LINK
    assert [s if not s & link else link for s in built[: 1 << 16]] == \
        [s if not s & link else link for s in one_by_one[: 1 << 16]], "the root's leaves and where it links"


@pytest.mark.parametrize("width", [32, 128])
def test_random_inserts_and_deletes_match_a_brute_force_lpm(width: int) -> None:
    """Prefixes at every interesting length (0, inside the root, at its edge, splitting a node, host routes),
    clustered so that they nest and share nodes; after every change, lookups agree with the brute force."""
    rng = random.Random(width)
    trie, plens = _trie(width, 96)
    routes: dict[tuple[int, int], int] = {}
    bases = [rng.getrandbits(width) for _ in range(6)]
    lengths = [0, 1, 8, 15, 16, 17, 23, 24, 25, 31, 32] + ([40, 48, 63, 64, 65, 127, 128] if width == 128 else [])
    entry = 0
    for step in range(1500):
        if routes and rng.random() < 0.4:
            (plen, prefix), e = rng.choice(sorted(routes.items()))
            del routes[(plen, prefix)]
            trie.delete(prefix, plen, e, replacement_for(prefix, plen, width, routes))
        else:
            plen = rng.choice(lengths)
            prefix = rng.choice(bases) & (((1 << plen) - 1) << (width - plen)) if plen else 0
            if (plen, prefix) in routes or trie.needed(prefix, plen) > len(trie.free):
                continue
            plens[entry] = plen
            trie.insert(prefix, plen, entry)
            routes[(plen, prefix)] = entry
            entry += 1
        probes = [rng.getrandbits(width) for _ in range(4)]
        probes += [b ^ (1 << rng.randrange(width)) for b in rng.sample(bases, 3)] + [p for _, p in routes]
        for key in probes:
            assert trie.lookup(key) == _brute(routes, key, width), (step, hex(key))
    used = trie.used_nodes
    trie.scan()  # another process reads the same array: the same nodes are in use
    assert trie.used_nodes == used
    for (plen, prefix), e in sorted(routes.items(), reverse=True):
        del routes[(plen, prefix)]
        trie.delete(prefix, plen, e, replacement_for(prefix, plen, width, routes))
    assert trie.used_nodes == 0, "deleting every route gives every node back"
    assert not any(trie.a[: 1 << 16].tolist())


def test_a_node_is_filled_before_it_is_linked_and_freed_nodes_are_reused_last() -> None:
    trie, plens = _trie(32, 4)
    plens.update({0: 8, 1: 24, 2: 24})
    trie.insert(0x0A000000, 8, 0)                      # 10/8: 256 root slots
    trie.insert(0x0A010100, 24, 1)                     # 10.1.1/24: a node under 10.1, the rest of it 10/8
    node = node_of(trie.a[0x0A01])
    assert trie.a[0x0A01] == TRIE_LINK | FIRST_NODE * 256 and node == FIRST_NODE  # the node's first slot, flagged
    assert trie.lookup(0x0A0101FF) == 1 and trie.lookup(0x0A0102FF) == 0 and trie.lookup(0x0B000000) is None
    trie.delete(0x0A010100, 24, 1, 0)                  # the node now means 10/8 everywhere: back to a leaf
    assert trie.a[0x0A01] == 1 and trie.used_nodes == 0
    trie.insert(0x0A020200, 24, 2)
    assert node_of(trie.a[0x0A02]) == FIRST_NODE + 1, "the node just freed waits behind never-used ones"


def test_an_insert_that_needs_more_nodes_than_are_free_writes_nothing() -> None:
    trie, plens = _trie(128, 3)
    plens[0] = 64
    before = bytes(trie.a.cast("B"))
    assert trie.needed(1 << 100, 64) == 6
    with pytest.raises(TrieFull, match="3 free nodes"):
        trie.insert(1 << 100, 64, 0)
    assert bytes(trie.a.cast("B")) == before


SPEC = """
c3po: 1
program: t
include: [std/ethernet, std/ipv4]
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}}
    ipv4: {extract: ipv4}
tables:
  routes:
    key: {KEY: lpm}
    actions: [forward, drop]
    size: 64
    IMPL
control:
  - apply: routes
"""


def _spec(impl: str, key: str = "ipv4.dst") -> str:
    return SPEC.replace("IMPL", impl).replace("KEY", key)


def test_auto_builds_a_single_whole_byte_lpm_key_as_a_trie_and_impl_overrides_it() -> None:
    prog = program_of(_spec(""))
    assert L.table_layout(prog, prog.tables["routes"]).trie_nodes == L.TRIE_MIN_NODES
    prog = program_of(_spec("impl: lpm_trie"))
    assert L.table_layout(prog, prog.tables["routes"]).trie_nodes == 0
    prog = program_of(_spec("impl: {kind: multibit_trie, nodes: 5}"))
    assert L.table_layout(prog, prog.tables["routes"]).trie_nodes == 5
    prog = program_of(_spec("", key="ipv4.ttl"))  # 8 bits: under the 16-bit root
    assert L.table_layout(prog, prog.tables["routes"]).trie_nodes == 0


@pytest.mark.parametrize(("impl", "key", "message"), [
    ("impl: multibit_trie", "ipv4.ttl", "walks one lpm key of 16 to 128 bits"),
    ("impl: hash", "ipv4.dst", "'hash' matches exact keys only"),
    ("impl: {kind: lpm_trie, nodes: 4}", "ipv4.dst", "'nodes' sizes a multibit trie only"),
])
def test_an_impl_the_keys_cannot_have_is_one_error_with_a_hint(impl: str, key: str, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        program_of(_spec(impl, key))
    [problem] = exc.value.problems
    assert message in problem.message and problem.hint and "'auto'" in problem.hint


def test_the_kernel_program_walks_what_the_control_plane_wrote(tmp_path: Path) -> None:
    """Table API inserts and deletes on a small trie, then packets through BPF_PROG_TEST_RUN: each finds the
    longest prefix left, and an insert beyond the nodes is refused with the remedy, leaving the table as it was."""
    need_bpf()
    from targets.xdp.driver import XdpDriver

    prog = program_of(_spec("impl: {kind: multibit_trie, nodes: 2}"))
    driver = XdpDriver()
    try:
        _walk(driver, prog, tmp_path)
    finally:
        driver.close()


def _walk(driver: object, prog: ir.Program, tmp_path: Path) -> None:
    from conformance.model import ControlState, PacketIn
    from dataplane.api import ControlError
    from dataplane.syntax import parse_match
    from targets.xdp.driver import DriverTables, XdpDriver

    assert isinstance(driver, XdpDriver)
    driver.open(prog, tmp_path)
    driver.install(ControlState())
    assert driver.bpf is not None
    dp = DriverTables(prog, driver.bpf, driver.prio_fds)

    def m(prefix: str) -> tuple[KeyElem, ...]:
        return parse_match(prog.tables["routes"], [f"ipv4.dst={prefix}"])

    with dp.locked():
        t = dp.table("routes")
        t.add(m("10.0.0.0/8"), "forward", (1,))
        t.add(m("10.1.1.0/24"), "forward", (2,))
        t.add(m("10.1.1.128/25"), "forward", (3,))
        with pytest.raises(ControlError) as exc:
            t.add(m("10.2.2.0/24"), "forward", (4,))  # a third node: only 2
        assert exc.value.hint and "nodes: 4" in exc.value.hint
        assert len(t.entries()) == 3

    def port(dst: str) -> int | None:
        ip = bytes(int(x) for x in dst.split("."))
        ipv4 = bytes.fromhex("450000140000000040110000") + bytes(4) + ip
        frame = bytes(12) + b"\x08\x00" + ipv4
        [r] = driver.run([PacketIn(1, frame)], {})
        return r.port if r.verdict == "forward" else None

    assert [port(a) for a in ("10.9.9.9", "10.1.1.1", "10.1.1.200", "11.0.0.1")] == [1, 2, 3, None]
    with dp.locked():
        dp.table("routes").delete(m("10.1.1.0/24"))
    assert [port(a) for a in ("10.1.1.1", "10.1.1.200")] == [1, 3]
    with dp.locked():
        dp.table("routes").delete(m("10.1.1.128/25"))
        dp.table("routes").add(m("10.2.2.0/24"), "forward", (4,))  # its node came back
    assert [port(a) for a in ("10.1.1.200", "10.2.2.2")] == [1, 4]


def test_the_router_example_builds_its_routes_as_tries() -> None:
    prog = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    nodes = {n: L.table_layout(prog, t).trie_nodes for n, t in prog.tables.items()}
    assert nodes["routes_v4"] == 65536 and nodes["routes_v6"] == 16384 and nodes["nexthops"] == 0
