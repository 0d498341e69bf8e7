"""CRC registers kept in table entries (targets/xdp/crcpre.py): which hashes start from an entry's register,
where the register goes in the value, and, in the kernel, that hits (installed or inserted and modified at run
time) and misses through a default that runs the same action give the reference interpreter's hash, in every
exact table structure (cuckoo, the kernel's hash map, direct)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.ir import KeyElem
from conformance.checksums import crc16_arc, crc32
from conformance.interpreter import Interpreter
from conformance.model import ControlOp, ControlState, EntryState, PacketIn
from targets.xdp import crc
from targets.xdp import layout as L
from targets.xdp.crcpre import PACK_SHIFT, sites
from tests.conftest import ROOT, need_bpf

SPEC = """
c3po: 1
program: crc_prefix
include: [{eth}]
headers:
  sums:
    fields: {{s16: 16, s32: 32, t16: 16, u32: 32}}
metadata:
  m: 8
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet, next: sums}}
    sums: {{extract: sums}}
tables:
  by_mac:                 # cuckoo (auto)
    key: {{meta.m: exact, ethernet.dst: exact}}
    actions: [spread, whole, late, other, two, nop]
    default: nop
    size: 64
  by_mac_map:
    key: {{ethernet.dst: exact}}
    actions: [spread, nop]
    default: nop
    size: 64
    impl: hash
  by_port:                # direct
    key: {{std.ingress_port: exact}}
    actions: [port_hash, nop]
    default: nop
    size: 16
actions:
  spread:                 # the VXLAN gateway's source port: dst is the key, src and type the rest
    params: {{port: 16}}
    do:
      - sums.s16 = hash(crc16, ethernet.dst, ethernet.src, ethernet.ethertype)
      - forward(port)
  whole:                  # every argument a key: the hash is the entry's constant
    params: {{port: 16}}
    do:
      - sums.s32 = hash(crc32, meta.m, ethernet.dst)
      - forward(port)
  late:                   # the key's header written first: not taken
    params: {{port: 16}}
    do:
      - ethernet.src = ethernet.dst
      - sums.s16 = hash(crc16, ethernet.dst, ethernet.src)
      - forward(port)
  other:                  # the first argument is not a key: not taken
    params: {{port: 16}}
    do:
      - sums.s16 = hash(crc16, ethernet.src, ethernet.dst)
      - forward(port)
  two:                    # two hashes, no small host-order parameter: two slots of their own
    params: {{mac: 48}}
    do:
      - sums.t16 = hash(crc16, ethernet.dst, ethernet.ethertype)
      - sums.u32 = hash(crc32, meta.m, ethernet.dst, ethernet.src)
      - ethernet.src = mac
      - forward(1)
  port_hash:
    params: {{port: 16}}
    do:
      - sums.s16 = hash(crc16, std.ingress_port, ethernet.src)
      - forward(port)
control:
  - meta.m = (bit<8>) ethernet.ethertype
  - apply: by_port
  - apply: by_mac
  - apply: by_mac_map
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = tmp_path_factory.mktemp("crcpre") / "crc_prefix.yaml"
    spec.write_text(SPEC.format(eth=ROOT / "spec/protocols/ethernet.yaml"), encoding="utf-8")
    return load_program(spec).program


def test_only_hashes_that_start_with_unwritten_exact_keys_are_taken(program) -> None:  # type: ignore[no-untyped-def]
    t = program.tables["by_mac"]
    found = {a: [k for _, k in sites(t, program.actions[a])] for a in t.actions}
    assert found == {"spread": [(1,)], "whole": [(0, 1)], "late": [], "other": [], "two": [(1,), (0, 1)],
                     "nop": []}
    assert [k for _, k in sites(program.tables["by_port"], program.actions["port_hash"])] == [(0,)]
    # the VXLAN gateway: the FDB's to_remote starts its source-port hash from ethernet.dst (key 1)
    vx = load_program(ROOT / "spec/examples/vxlan_gateway.yaml").program
    lay = L.table_layout(vx, vx.tables["fdb"])
    assert [(p.algorithm, p.keys, p.slot, p.shift) for p in lay.crc["to_remote"]] == [("crc16", (1,), 0, 32)]
    assert lay.slots == 5  # packed beside the 16-bit port: the value does not grow


def test_registers_are_packed_beside_small_parameters_or_get_slots_of_their_own(program) -> None:  # type: ignore[no-untyped-def]
    lay = L.table_layout(program, program.tables["by_mac"])
    assert set(lay.crc) == {"spread", "whole", "two"}
    assert [(p.slot, p.shift) for p in lay.crc["spread"]] == [(0, PACK_SHIFT)]
    assert [(p.slot, p.shift) for p in lay.crc["two"]] == [(1, 0), (2, 0)]  # after the raw MAC's slot
    assert lay.slots == 3
    match = (KeyElem("value", 0x08), KeyElem("value", 0x0200_0000_0001))
    value = L.encode_value(lay, "spread", (7,), 3, match)
    slot0 = int.from_bytes(value[8:16], "little")
    # the register after the key (dst), advanced over the 8 bytes the data plane hashes from 0 (src, type)
    spread_reg = crc.register("crc16", bytes(8), crc.register("crc16", bytes.fromhex("020000000001")))
    assert [p.rest for p in lay.crc["spread"]] == [8]
    assert slot0 & 0xFFFF == 7 and slot0 >> PACK_SHIFT == spread_reg
    assert L.slot_args(lay, "spread", [slot0, 0, 0]) == (7,)  # read back without the register
    two = L.encode_value(lay, "two", (0xAABBCCDDEEFF,), 3, match)
    assert [p.rest for p in lay.crc["two"]] == [2, 6]
    assert int.from_bytes(two[24:32], "little") == crc.register("crc32", bytes(6), crc.register("crc32", bytes.fromhex("08020000000001")))
    # a default holds none; an entry without its match is refused rather than written wrong
    assert L.encode_value(lay, "spread", (7,), L.DEFAULT_ENTRY, None)[8:16] == (7).to_bytes(8, "little")
    with pytest.raises(ValueError, match="needs its match"):
        L.encode_value(lay, "spread", (7,), 3, None)


@pytest.mark.parametrize("algorithm,full", [("crc16", crc16_arc), ("crc32", crc32)])
def test_a_register_goes_on_to_the_whole_crc(algorithm: str, full) -> None:  # type: ignore[no-untyped-def]
    """The register after a prefix, continued over the rest, is the CRC of the whole (the interpreter's, and
    the data plane's steps as test_xdp_crc_pairs models them)."""
    from tests.test_xdp_crc_pairs import pairs_model

    rng = random.Random(algorithm)
    poly = crc.ALGORITHMS[algorithm][0]
    for n, m in [(6, 8), (1, 13), (7, 0), (2, 2), (12, 9)]:
        pre, rest = rng.randbytes(n), rng.randbytes(m)
        c = crc.register(algorithm, pre)
        for b in rest:
            c ^= b
            for _ in range(8):
                c = (c >> 1) ^ poly if c & 1 else c >> 1
        final = c & 0xFFFF if algorithm == "crc16" else ~c & 0xFFFFFFFF
        assert final == full(pre + rest) == pairs_model(algorithm, pre + rest)
        # what the data plane does with an entry's register (crcpre.py): the rest's CRC from a zero register,
        # XORed with the register advanced over as many zero bytes
        ahead = crc.register(algorithm, bytes(m), crc.register(algorithm, pre))
        from_zero = crc.register(algorithm, rest, 0)
        fin = (from_zero ^ ahead) & 0xFFFF if algorithm == "crc16" else ~(from_zero ^ ahead) & 0xFFFFFFFF
        assert fin == final


def _frames(rng: random.Random, dsts: list[bytes]) -> list[PacketIn]:
    out = []
    for d in dsts:
        for ethertype in (b"\x08\x00", b"\x86\xdd"):
            for port in (1, 3):
                out.append(PacketIn(port, d + rng.randbytes(6) + ethertype + rng.randbytes(12 + 20)))
    return out


def test_hits_and_misses_give_the_interpreters_hashes_in_the_kernel(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need_bpf()
    from targets.xdp.driver import XdpDriver

    rng = random.Random(30)
    macs = [bytes.fromhex(f"0200000000{i:02x}") for i in range(1, 7)]
    mac = [int.from_bytes(m, "big") for m in macs]
    v = lambda x: KeyElem("value", x)  # noqa: E731
    installed = ControlState(
        entries=(EntryState("by_mac", (v(0x00), v(mac[0])), "spread", (5,)),
                 EntryState("by_mac", (v(0x00), v(mac[1])), "whole", (6,)),
                 EntryState("by_mac", (v(0xDD), v(mac[2])), "two", (0x0A0B0C0D0E0F,)),
                 EntryState("by_mac", (v(0x00), v(mac[3])), "late", (7,)),
                 EntryState("by_mac_map", (v(mac[4]),), "spread", (8,)),
                 EntryState("by_port", (v(3),), "port_hash", (9,))),
        # a miss in by_mac runs spread from the default: the whole hash
        defaults=(("by_mac", "spread", (4,)),))
    at_run_time = ControlState(ops=(
        ControlOp("insert", "by_mac", (v(0x00), v(mac[0])), "whole", (2,)),
        ControlOp("modify", "by_mac", (v(0x00), v(mac[0])), "spread", (5,)),
        ControlOp("insert", "by_mac", (v(0xDD), v(mac[5])), "two", (1,)),
        ControlOp("insert", "by_mac_map", (v(mac[4]),), "spread", (3,)),
        ControlOp("insert", "by_port", (v(1),), "port_hash", (2,)),
        ControlOp("default", "by_mac", (), "whole", (6,))))
    packets = _frames(rng, [*macs, bytes.fromhex("020000000077")])
    for control in (installed, at_run_time):
        ref = Interpreter(program)
        ref.install(control)
        want = ref.run(packets, {})
        with XdpDriver() as drv:
            drv.open(program, tmp_path / "out")
            drv.install(control)
            got = drv.run(packets, {})
        for p, g, w in zip(packets, got, want, strict=True):
            assert (g.verdict, g.port, g.data) == (w.verdict, w.port, w.data), (p.port, p.data.hex())
        assert len({w.data[14:16] for w in want}) > 10  # the hashes differ: the comparison means something
    src = next((tmp_path / "out").rglob("*.bpf.c")).read_text()
    # the table loads do not wait for the entry: the rest from a zero register, the entry's term XORed after
    assert ("(hit ? (c3po_crc16_pairs_on(0, h_ethernet + 6, 8) ^ (__u32)(arg0 >> 32)) : "
            "c3po_crc16_pairs(h_ethernet + 0, 14))") in src
    assert "(hit ? (~(__u32)(arg0 >> 32) & 0xffffffff) :" in src  # all arguments keys: no CRC steps on a hit
