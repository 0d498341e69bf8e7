"""XDP tables whose action data and per-entry counter share one per-CPU element (`layout.percpu`), and action
parameters kept in network order where the action only copies them into the frame (`layout.raw_params`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from targets.xdp import layout as L

from .conftest import ROOT, need_bpf

SPEC = """
c3po: 1
program: t
include: [std/ethernet]
metadata: {tag: 16}
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet}
tables:
  hops:
    key: {ethernet.ethertype: exact}
    actions: [rewrite, tagged, drop]
    default: drop
    size: 64
    counters: true
    IMPL
  plain:
    key: {meta.tag: exact}
    actions: [rewrite]
    size: 16
actions:
  rewrite:
    params: {port: 16, smac: 48, dmac: 48}
    do:
      - ethernet.src = smac
      - ethernet.dst = dmac
      - forward(port)
  tagged:
    params: {port: 16, mac: 48}
    do:
      - ethernet.src = mac
      - if: "mac == 0"
        then: [drop]
        else: [forward(port)]
control:
  - apply: hops
"""


def _program(tmp_path: Path, impl: str = "") -> ir.Program:
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC.replace("IMPL", impl), encoding="utf-8")
    return load_program(spec).program


def test_direct_tables_with_counters_are_percpu_and_copied_params_raw(tmp_path: Path) -> None:
    prog = _program(tmp_path)
    hops = L.table_layout(prog, prog.tables["hops"])
    plain = L.table_layout(prog, prog.tables["plain"])
    assert hops.percpu and not plain.percpu  # only a table with counters needs the element
    assert hops.elem_size == hops.value_size + L.COUNTER_BYTES and hops.default_elem == 1 << 16
    # smac and dmac are only copied into ethernet fields of their width; port goes to forward, and `tagged`'s
    # mac is also compared: both stay host-order integers
    assert hops.raw == {"rewrite": ("smac", "dmac")}
    args = (3, 0x0211_2233_4455, 0x02AA_BBCC_DDEE)
    slots = L.arg_slots(hops, "rewrite", args)
    assert slots[0] == 3 and slots[1].to_bytes(8, "little")[:6] == bytes.fromhex("021122334455")
    assert L.slot_args(hops, "rewrite", slots) == args
    assert L.slot_args(hops, "tagged", L.arg_slots(hops, "tagged", (1, 0x0211_2233_4455))) == (1, 0x0211_2233_4455)
    value = L.encode_value(hops, "rewrite", args, 5, None)
    elem = L.percpu_elem(hops, 2, value)
    assert len(elem) == 2 * hops.elem_size and elem[:len(value)] == value
    counted = bytearray(elem)
    for cpu, (pk, by) in enumerate([(1, 60), (2, 128)]):
        off = cpu * hops.elem_size + hops.value_size
        counted[off:off + 16] = pk.to_bytes(8, "little") + by.to_bytes(8, "little")
    assert L.percpu_counter(hops, 2, bytes(counted)) == (3, 188)
    # a modify keeps each CPU's count; an insert starts from zero
    other = L.encode_value(hops, "drop", (), 5, None)
    assert L.percpu_counter(hops, 2, L.percpu_elem(hops, 2, other, bytes(counted))) == (3, 188)
    assert L.percpu_elem(hops, 2, other, bytes(counted))[:len(other)] == other


def test_generated_code_counts_in_the_element_and_stores_raw_params(tmp_path: Path) -> None:
    from targets.xdp import XdpTarget

    prog = _program(tmp_path)
    src = XdpTarget().build(prog, tmp_path / "b").files["source"].read_text(encoding="utf-8")
    assert "tc_hops" not in src and "BPF_MAP_TYPE_PERCPU_ARRAY);\n\t__uint(max_entries, 65537)" in src
    assert "e->c.packets += 1;" in src and "k = 65536;" in src
    assert "c3po_st_raw(h_ethernet + 6, 6, arg1)" in src and "c3po_st_raw(h_ethernet + 0, 6, arg2)" in src
    assert "p_mac = (arg1 & 0xffffffffffffULL)" in src  # tagged's mac is compared: a host-order integer


def test_cuckoo_and_trie_tables_with_counters_keep_them_beside_the_action_data(tmp_path: Path) -> None:
    from targets.xdp import XdpTarget

    prog = _program(tmp_path, "impl: cuckoo")
    lay = L.table_layout(prog, prog.tables["hops"])
    assert lay.cuckoo_buckets and lay.percpu and lay.default_elem == 64  # the entry index; 64 = the default
    src = XdpTarget().build(prog, tmp_path / "b").files["source"].read_text(encoding="utf-8")
    assert "tc_hops" not in src and "__uint(max_entries, 65);\n\t__type(key, __u32);\n\t__type(value, struct t_hops_elem)" in src
    assert "__u32 k = ce ? ce - 1 : 64;" in src
    router = load_program(ROOT / "spec/examples/router.yaml").program
    src = XdpTarget().build(router, tmp_path / "r").files["source"].read_text(encoding="utf-8")
    assert "tv_routes_v4 SEC" in src and not L.table_layout(router, router.tables["routes_v4"]).percpu  # no counters
    # router_mac's entries can only be nop: a hit reads a constant, not the entry's data
    assert "v = (struct t_router_mac_value *)&t_router_mac_hit;" in src
    assert "bpf_map_lookup_elem(&tv_router_mac" not in src


@pytest.mark.parametrize("impl", ["", "impl: cuckoo"])
def test_the_kernel_program_counts_per_entry_and_the_control_plane_sums_cpus(tmp_path: Path, impl: str) -> None:
    """Entries through the table API; frames through BPF_PROG_TEST_RUN; counts read back per entry and for the
    default; a modify keeps the entry's count, a delete and re-insert starts it again, `_zero_counter` zeroes:
    in a direct table and in a cuckoo hash's action data array."""
    need_bpf()
    from conformance.model import ControlState, PacketIn
    from dataplane.syntax import parse_match
    from targets.xdp.driver import DriverTables, XdpDriver

    prog, driver = _program(tmp_path, impl), XdpDriver()
    try:
        driver.open(prog, tmp_path / "build")
        driver.install(ControlState())
        dp, tbl = DriverTables(prog, driver.bpf, driver.prio_fds), prog.tables["hops"]  # type: ignore[arg-type]

        def m(et: int) -> tuple[ir.KeyElem, ...]:
            return parse_match(tbl, [f"ethernet.ethertype={et:#x}"])

        def send(et: int, n: int = 1) -> list[tuple[str, int | None, bytes]]:
            frame = bytes.fromhex("020000000001 020000000002") + et.to_bytes(2, "big") + bytes(46)
            return [(r.verdict, r.port, r.data) for r in driver.run([PacketIn(1, frame)] * n, {})]

        def counts() -> dict[int, tuple[int, int]]:
            return {e.match[0].a: e.counter for e in dp.table("hops").entries(counters=True)
                    if e.counter is not None}

        with dp.locked():
            t = dp.table("hops")
            t.add(m(0x0800), "rewrite", (7, 0x0211_2233_4455, 0x02AA_BBCC_DDEE))
            t.add(m(0x86DD), "tagged", (9, 0x0266_7788_99AA))
        [(verdict, port, frame)] = send(0x0800)
        assert (verdict, port) == ("forward", 7)
        assert frame[:12] == bytes.fromhex("02aabbccddee 021122334455")  # dmac, then smac, in network order
        [(verdict, port, frame)] = send(0x86DD)
        assert (verdict, port, frame[6:12]) == ("forward", 9, bytes.fromhex("0266778899aa"))
        send(0x0800, 2)
        send(0x1234, 3)  # misses: the default's element
        with dp.locked():
            assert counts() == {0x0800: (3, 180), 0x86DD: (1, 60)}
            assert dp.table("hops").default_counter() == (3, 180)
            dp.table("hops").modify(m(0x0800), "rewrite", (8, 0x0211_2233_4455, 0x02AA_BBCC_DDEE))
            assert counts()[0x0800] == (3, 180)  # the modify kept the count
            [e] = [e for e in dp.table("hops").entries() if e.match[0].a == 0x0800]
            assert e.args == (8, 0x0211_2233_4455, 0x02AA_BBCC_DDEE)  # read back from the element, decoded
        assert send(0x0800)[0][:2] == ("forward", 8)
        with dp.locked():
            dp.table("hops").delete(m(0x86DD))
            dp.table("hops").add(m(0x86DD), "drop")
            assert counts()[0x86DD] == (0, 0)
            _, (_, index, _) = dp._state("hops").find(dp.table("hops").entries()[0])
            dp._zero_counter("hops", index)
            dp._zero_counter("hops", -1)
            assert counts()[0x0800] == (0, 0) and dp.table("hops").default_counter() == (0, 0)
    finally:
        driver.close()
