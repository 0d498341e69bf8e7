"""Table structures in globals (issue 14: the best programs keep them in .bss): a direct table without counters
is read by packets from a copy `td_<table>` (layout.direct_global; the best VXLAN gateway's port -> VNI array),
and a cuckoo table's buckets are the global `th_<table>` (layout.cuckoo_global): one load instead of an
array-map lookup with its key on the stack and a NULL test. A direct table's array map stays the record the
control plane reads entries from; every write goes to both, through the run-time table API and through the
conformance driver's install. A multibit trie is copied to `c3po_tries.<table>` in .bss (up to 128 MiB; a bigger
one, its root and first nodes, deeper nodes read from the array map). Direct tables and cuckoo buckets too big for
a global of their own (4 MiB: a .data section's bytes are in the object file) stay array maps."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from targets.xdp import layout as L

from .conftest import need_bpf

SPEC = """
c3po: 1
program: t
include: [std/ethernet]
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet}
tables:
  hops:
    key: {ethernet.ethertype: exact}
    actions: [rewrite, drop]
    default: drop
    size: 64
  counted:
    key: {ethernet.ethertype: exact}
    actions: [rewrite]
    size: 16
    counters: true
  wide:
    key: {ethernet.ethertype: exact}
    actions: [many]
    size: 16
  small_hash:
    key: {ethernet.src: exact, ethernet.ethertype: exact}
    actions: [rewrite]
    size: 16
  edge_hash:
    key: {ethernet.dst: exact}
    actions: [rewrite]
    size: 131072
  big_hash:
    key: {ethernet.dst: exact, ethernet.ethertype: exact}
    actions: [rewrite]
    size: 262144
actions:
  rewrite:
    params: {port: 16, smac: 48}
    do:
      - ethernet.src = smac
      - forward(port)
  many:
    params: {a: 64, b: 64, c: 64, d: 64, e: 64, f: 64, g: 64, h: 64, i: 64}
    do: [drop]
control:
  - apply: hops
  - if: "ethernet.ethertype == 0x0001"
    then: [apply: counted, apply: wide]
  - if: "ethernet.ethertype == 0x0002"
    then: [apply: small_hash, apply: edge_hash, apply: big_hash]
"""


def _program(tmp_path: Path) -> ir.Program:
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return load_program(spec).program


def test_only_small_direct_tables_without_counters_get_the_global(tmp_path: Path) -> None:
    from targets.xdp import XdpTarget

    prog = _program(tmp_path)
    hops, counted, wide = (L.table_layout(prog, prog.tables[n]) for n in ("hops", "counted", "wide"))
    assert hops.kind == counted.kind == wide.kind == "direct"
    # 24-byte values x 65,536 = 1.5 MiB: in; a counter needs the per-CPU element; 80-byte values (10 MiB) stay out
    assert hops.direct_global and not counted.direct_global and not wide.direct_global
    src = XdpTarget().build(prog, tmp_path / "b").files["source"].read_text(encoding="utf-8")
    assert "struct t_hops_value td_hops[65536] SEC(\".data.td_hops\")" in src
    assert "&td_hops[k]" in src and "bpf_map_lookup_elem(&t_hops," not in src
    assert "bpf_map_lookup_elem(&t_counted," in src and "bpf_map_lookup_elem(&t_wide," in src
    assert "td_counted" not in src and "td_wide" not in src


def test_cuckoo_buckets_are_a_global_up_to_4_mib(tmp_path: Path) -> None:
    from targets.xdp import XdpTarget

    prog = _program(tmp_path)
    small, edge, big = (L.table_layout(prog, prog.tables[n]) for n in ("small_hash", "edge_hash", "big_hash"))
    # one-word keys (at most 64 bits): 16 entries in 64 one-slot buckets of 16 bytes; larger tables 64-byte
    # buckets of four slots: 65,536 (4 MiB: the most a global holds), 131,072
    assert small.cuckoo_bytes == 64 * 16 and small.cuckoo_global and small.cuckoo_ways == 1
    assert edge.cuckoo_bytes == 4 << 20 and edge.cuckoo_global
    assert big.cuckoo_bytes == 8 << 20 and not big.cuckoo_global
    src = XdpTarget().build(prog, tmp_path / "b").files["source"].read_text(encoding="utf-8")
    assert "struct t_small_hash_bucket th_small_hash[64] SEC(\".data.th_small_hash\")" in src
    assert "&th_small_hash[cb]" in src and "bpf_map_lookup_elem(&th_small_hash," not in src
    assert "} th_big_hash SEC(\".maps\");" in src and "bpf_map_lookup_elem(&th_big_hash, &cb)" in src


def test_packets_see_every_write_through_the_api_and_the_driver(tmp_path: Path) -> None:
    need_bpf()
    from conformance.model import ControlState, EntryState, PacketIn
    from dataplane.syntax import parse_match
    from targets.xdp.driver import DriverTables, XdpDriver

    prog, driver = _program(tmp_path), XdpDriver()
    tbl = prog.tables["hops"]

    def m(et: int) -> tuple[ir.KeyElem, ...]:
        return parse_match(tbl, [f"ethernet.ethertype={et:#x}"])

    def send(et: int) -> tuple[str, int | None, bytes]:
        frame = bytes.fromhex("020000000001 020000000002") + et.to_bytes(2, "big") + bytes(46)
        [r] = driver.run([PacketIn(1, frame)], {})
        return r.verdict, r.port, r.data[6:12]

    try:
        driver.open(prog, tmp_path / "build")
        driver.install(ControlState())
        assert send(0x0800)[0] == "drop"
        dp = DriverTables(prog, driver.bpf, driver.prio_fds)  # type: ignore[arg-type]
        with dp.locked():
            dp.table("hops").add(m(0x0800), "rewrite", (7, 0x0211_2233_4455))
            dp.table("hops").add(m(0xFFFF), "rewrite", (9, 0x0266_7788_99AA))  # the last index
        assert send(0x0800) == ("forward", 7, bytes.fromhex("021122334455"))
        assert send(0xFFFF) == ("forward", 9, bytes.fromhex("0266778899aa"))
        assert send(0x0801)[0] == "drop"
        with dp.locked():
            dp.table("hops").modify(m(0x0800), "rewrite", (8, 0x0211_2233_4455))
            assert [(e.match[0].a, e.args) for e in dp.table("hops").entries()] == \
                [(0x0800, (8, 0x0211_2233_4455)), (0xFFFF, (9, 0x0266_7788_99AA))]  # the record, read back
        assert send(0x0800)[:2] == ("forward", 8)
        with dp.locked():
            dp.table("hops").delete(m(0x0800))
        assert send(0x0800)[0] == "drop" and send(0xFFFF)[:2] == ("forward", 9)
        # the conformance driver's install writes the copy too, and clears what the last state installed
        driver.install(ControlState(entries=(EntryState("hops", m(0x86DD), "rewrite", (3, 0x0200_0000_0003)),)))
        assert send(0x86DD)[:2] == ("forward", 3)
        driver.install(ControlState())
        assert send(0x86DD)[0] == "drop"
        # both cuckoo forms, through the API: ethertype 2 applies small_hash, edge_hash, big_hash in turn
        with dp.locked():
            src = parse_match(prog.tables["small_hash"], ["ethernet.src=02:00:00:00:00:02", "ethernet.ethertype=2"])
            edge = parse_match(prog.tables["edge_hash"], ["ethernet.dst=02:00:00:00:00:01"])
            dst = parse_match(prog.tables["big_hash"], ["ethernet.dst=02:00:00:00:00:01", "ethernet.ethertype=2"])
            dp.table("small_hash").add(src, "rewrite", (5, 0x0200_0000_0005))
            assert send(0x0002)[:2] == ("forward", 5)
            dp.table("edge_hash").add(edge, "rewrite", (4, 0x0200_0000_0004))
            assert send(0x0002)[:2] == ("forward", 4)  # the later apply's forward wins
            dp.table("big_hash").add(dst, "rewrite", (6, 0x0200_0000_0006))
            assert send(0x0002)[:2] == ("forward", 6)
            for name, m_ in (("small_hash", src), ("edge_hash", edge), ("big_hash", dst)):
                dp.table(name).delete(m_)
        assert send(0x0002)[0] == "drop"
    finally:
        driver.close()


def test_a_trie_walks_its_first_nodes_from_the_global_and_the_rest_from_the_map(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3,900 /24 routes in distinct /16s need a node each. With the copy capped at 4 MiB (the cap lowered from
    128 MiB, so the test need not fill 130,816 nodes) the first 3,840 nodes are in the global copy with the root,
    the last 60 only in the array map; packets find every route, and misses next to them."""
    need_bpf()
    monkeypatch.setattr(L, "TRIE_COPY_SLOTS_MAX", 1 << 20)
    from conformance.model import ControlState, EntryState, PacketIn
    from dataplane.syntax import parse_match
    from targets.xdp import XdpTarget
    from targets.xdp.driver import XdpDriver

    from .test_xdp_trie import _spec, program_of

    prog = program_of(_spec("impl: {kind: multibit_trie, nodes: 4000}").replace("size: 64", "size: 4096"))
    lay = L.table_layout(prog, prog.tables["routes"])
    assert L.trie_copied_slots(lay.trie_nodes) == 1 << 20  # the root and 3,840 of the 4,000 nodes
    src = XdpTarget().render(prog)["t.bpf.c"]
    assert "tn < 1048576 ? c3po_tries.routes[tn] : c3po_trie_slot(&tt_routes, tn)" in src
    small = program_of(_spec("impl: {kind: multibit_trie, nodes: 16}"))
    assert "tn < 69632 ? c3po_tries.routes[tn] : 0" in XdpTarget().render(small)["t.bpf.c"]  # every node copied

    n = 3900
    dsts = [f"{1 + i // 256}.{i % 256}.1.0" for i in range(n)]
    entries = tuple(EntryState("routes", parse_match(prog.tables["routes"], [f"ipv4.dst={d}/24"]), "forward",
                               (1 + i % 1000,)) for i, d in enumerate(dsts))
    driver = XdpDriver()

    def port(dst: str) -> int | None:
        ipv4 = bytes.fromhex("450000140000000040110000") + bytes(4) + bytes(int(x) for x in dst.split("."))
        [r] = driver.run([PacketIn(1, bytes(12) + b"\x08\x00" + ipv4)], {})
        return r.port if r.verdict == "forward" else None

    try:
        driver.open(prog, tmp_path)
        driver.install(ControlState(entries=entries))
        for i in (0, 1, 3839, 3840, 3841, 3899):  # the last four are in nodes past the copy
            hit = dsts[i].rsplit(".", 1)[0]
            assert port(hit + ".7") == 1 + i % 1000, dsts[i]
            assert port(hit[:hit.rindex(".")] + ".2.7") is None  # the same node, another /24: a miss
    finally:
        driver.close()


@pytest.mark.parametrize("example", ["router", "acl_firewall"])
def test_the_tries_are_all_of_bss_and_the_object_stays_small(example: str, tmp_path: Path) -> None:
    """The control plane maps trie copies at layout.trie_copies' offsets into the .bss map: that holds only if
    `c3po_tries` is all of .bss (nothing else of the program zero-initialised without a section). And .bss takes
    no bytes in the object file: the router's 84 MB of copies leave it under 1 MB (4 MiB .data copies made it 8)."""
    import subprocess

    from tests.conftest import need_tool

    need_tool("clang", "llvm-objdump")
    from targets.xdp import XdpTarget

    prog = load_program(Path(__file__).resolve().parent.parent / "spec" / "examples" / f"{example}.yaml").program
    build = XdpTarget().build(prog, tmp_path)
    obj = build.files["object"]
    layouts = {n: L.table_layout(prog, t) for n, t in prog.tables.items()}
    want = 4 * sum(n for _, n in L.trie_copies(layouts).values())
    heads = subprocess.run(["llvm-objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    bss = [int(line.split()[2], 16) for line in heads.splitlines() if line.split()[1:2] == [".bss"]]
    assert bss == ([want] if want else []), heads
    assert Path(obj).stat().st_size < 1 << 20
