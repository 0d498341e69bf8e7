"""The generated NIC C against the reference interpreter, natively (ctypes).

Every example runs its generated vectors (every parse path, error cases, table/action coverage, seeded fuzz)
plus seeded random mutations and truncations of them; a feature program covers what the examples do not
(unaligned and wide fields, lookahead, select ranges/masks, crc16, wide registers). Scenario tests state
explicit expectations built with scapy, so a bug shared by the interpreter and the target cannot hide.
"""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from c3po_compiler import load_program
from c3po_compiler.expr import KeyElem
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn, Result
from targets.nic.driver import NicDriver, SharedObject
from tests.conftest import EXAMPLES, ROOT, need_tool, shared_vectors

pytestmark = pytest.mark.gcc

EX = ROOT / "spec" / "examples"
PROTOCOLS = ROOT / "spec" / "protocols"


def same(a: Result, b: Result) -> bool:
    regs = set(a.registers) | set(b.registers)
    return ((a.verdict, a.port, a.data, a.counters) == (b.verdict, b.port, b.data, b.counters)
            and all(a.registers.get(k, 0) == b.registers.get(k, 0) for k in regs))


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    if b and rng.random() < 0.4:
        b = b[:rng.randrange(len(b))]
    return bytes(b)


def compare_program(prog_path: Path, tmp_path: Path, fuzz: int = 100, mutations: int = 2,
                    shared: bool = False) -> int:
    """Runs generated vectors (the run's shared generation if `shared`, else made with seed 3) and mutations
    through both; returns the packet count (asserts equality)."""
    prog = load_program(prog_path).program
    vectors = shared_vectors(prog_path, fuzz) if shared else generate(prog, seed=3, fuzz=fuzz).vectors
    rng = random.Random(11)
    ref = Interpreter(prog)
    n = 0
    with NicDriver(sanitize=False) as drv:
        drv.open(prog, tmp_path)
        for v in vectors:
            packets = list(v.packets)
            for p in v.packets:
                packets += [PacketIn(p.port, mutate(rng, p.data)) for _ in range(mutations)]
            ref.install(v.control)
            drv.install(v.control)
            want = ref.run(packets, v.registers)
            got = drv.run(packets, v.registers)
            for p, g, w in zip(packets, got, want, strict=True):
                assert same(g, w), f"{v.name}: {p.data.hex()}\n nic {g}\n ref {w}"
            n += len(packets)
    return n


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_example_matches_reference(spec: Path, tmp_path: Path) -> None:
    need_tool("gcc")
    assert compare_program(spec, tmp_path, shared=True) > 100


FEATURES_SPEC = """
c3po: 1
program: nic_features
include: [{p}/ethernet.yaml, {p}/vlan.yaml, {p}/ipv4.yaml, {p}/ipv6.yaml, {p}/udp.yaml]
instances:
  vlan: {{type: vlan, stack: 3}}
metadata: {{wide: 128, odd: 13, cls: 8}}
registers:
  big: {{width: 128, size: 4}}
  odd: {{width: 13, size: 8}}
counters:
  by_class: {{size: 16}}
parser:
  start: ethernet
  on_error: {{default: drop, truncated: to_host}}
  states:
    ethernet:
      extract: ethernet
      select: [ethernet.ethertype, "lookahead(0, 4)"]
      cases:
        "0x8100, _": vlan
        "0x0800, 4": ipv4
        "0x86dd &&& 0xffff, 6": ipv6
      default: accept
    vlan:
      extract: vlan
      select: vlan.last.ethertype
      cases: {{"0x8100": vlan, "0x0800": ipv4}}
      default: accept
    ipv4:
      extract: ipv4
      select: [ipv4.protocol, ipv4.ttl]
      cases: {{"17, 2 .. 255": udp}}
      default: accept
    ipv6:
      extract: ipv6
      select: ipv6.next_hdr
      cases: {{17: udp}}
      default: accept
    udp:
      extract: udp
tables:
  classify:
    key: {{ipv4.dscp: ternary, udp.dst_port: range, "vlan[0].vid": exact}}
    actions: [set_class]
    default: set_class(3)
    size: 32
    counters: true
  v6:
    key: {{ipv6.src: lpm, ipv6.flow_label: exact}}
    actions: [set_class, reflect]
    size: 32
actions:
  set_class:
    params: {{c: 8}}
    do:
      - meta.cls = c
control:
  - apply: classify
  - if: valid(ipv6)
    then:
      - apply: v6
      - meta.wide = ipv6.src ^ (ipv6.dst >> 3) + ((bit<128>) meta.cls << 120)
      - big[meta.cls[1:0]] = meta.wide - big[1]
      - ipv6.dst = ~meta.wide
      - ipv6.flow_label = ipv6.flow_label + 1
  - meta.odd = (bit<13>) hash(crc16, ethernet.src, vlan[0].vid, meta.cls) * 7
  - odd[meta.cls] = odd[meta.cls] + meta.odd
  - count(by_class, meta.cls)
  - if: "valid(vlan[1])"
    then:
      - vlan[1].pcp = vlan[0].pcp + 1
      - vlan[0].vid = vlan[1].vid
  - if: "meta.cls == 5"
    then: [drop]
  - if: "valid(udp) && udp.src_port == 7"
    then: [reflect]
  - if: "valid(udp) && udp.src_port == 9"
    then: ["forward(udp.dst_port ^ 0x8001)"]
default_verdict: to_host
"""


def test_feature_program_matches_reference(tmp_path: Path) -> None:
    need_tool("gcc")
    spec = tmp_path / "nic_features.yaml"
    spec.write_text(FEATURES_SPEC.format(p=PROTOCOLS))
    assert compare_program(spec, tmp_path / "build", fuzz=300, mutations=3) > 300


# ----------------------------------------------------------------------------------------- scenarios


def _open(name: str, tmp_path: Path, control: ControlState) -> tuple[NicDriver, Interpreter]:
    prog = load_program(EX / f"{name}.yaml").program
    drv = NicDriver(sanitize=False)
    drv.open(prog, tmp_path)
    drv.install(control)
    ref = Interpreter(prog)
    ref.install(control)
    return drv, ref


def _run(drv: NicDriver, ref: Interpreter, packets: list[PacketIn]) -> list[Result]:
    got = drv.run(packets, {})
    want = ref.run(packets, {})
    for g, w in zip(got, want, strict=True):
        assert same(g, w), f"nic {g}\nref {w}"
    return got


def test_router_forwards_with_ttl_checksum_and_counters(tmp_path: Path) -> None:
    need_tool("gcc")
    mac = 0x020000000001
    control = ControlState((
        EntryState("router_mac", (KeyElem("value", mac),), "nop"),
        EntryState("routes_v4", (KeyElem("prefix", 0x0A000000, 8),), "set_nexthop", (7,)),
        EntryState("nexthops", (KeyElem("value", 7),), "next_hop", (5, 0x02AA00000001, 0x02BB00000002)),
    ))
    drv, ref = _open("router", tmp_path, control)
    frame = bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst="10.9.8.7",
                                                                                ttl=64) / UDP() / b"payload")
    [r] = _run(drv, ref, [PacketIn(1, frame)])
    assert (r.verdict, r.port) == ("forward", 5)
    out = Ether(r.data)
    assert out.dst == "02:bb:00:00:00:02" and out.src == "02:aa:00:00:00:01"
    assert out[IP].ttl == 63
    sent_checksum = out[IP].chksum
    del out[IP].chksum
    assert IP(bytes(out[IP]))[IP].chksum == sent_checksum
    # per-entry counters: the constant routes come first, the nexthop entry is index 0 of its table
    assert r.counters == {("table.nexthops", 0): (1, len(frame))}
    drv.close()


def test_nat_rewrites_address_and_keeps_tcp_checksum_valid(tmp_path: Path) -> None:
    need_tool("gcc")
    control = ControlState((
        EntryState("snat", (KeyElem("value", 0xC0A80002),), "rewrite_src", (0xCB007105,)),
        EntryState("routes", (KeyElem("prefix", 0, 0),), "next_hop", (3, 0x020000000001, 0x020000000002)),
    ))
    drv, ref = _open("nat44", tmp_path, control)
    frame = bytes(Ether() / IP(src="192.168.0.2", dst="198.51.100.1", ttl=9) / TCP(sport=1234, dport=80) / (b"x" * 9))
    [r] = _run(drv, ref, [PacketIn(0, frame)])
    assert r.verdict == "forward" and r.port == 3
    out = Ether(r.data)
    assert out[IP].src == "203.0.113.5"
    sent = out[TCP].chksum
    del out[TCP].chksum
    assert Ether(bytes(out))[TCP].chksum == sent  # the incremental update equals a full recompute
    drv.close()


def test_icmp_echo_is_reflected_with_valid_checksums(tmp_path: Path) -> None:
    need_tool("gcc")
    control = ControlState((EntryState("local_ipv4", (KeyElem("value", 0xC0000201),), "echo_reply_v4"),))
    drv, ref = _open("icmp_responder", tmp_path, control)
    frame = bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / IP(src="198.51.100.7", dst="192.0.2.1")
                  / ICMP(type=8, id=1, seq=2) / b"ping")
    [r] = _run(drv, ref, [PacketIn(4, frame)])
    assert (r.verdict, r.port) == ("reflect", 4)
    out = Ether(r.data)
    assert out[ICMP].type == 0 and out[IP].dst == "198.51.100.7" and out.dst == "02:00:00:00:00:02"
    ip_sum, icmp_sum = out[IP].chksum, out[ICMP].chksum
    del out[IP].chksum, out[ICMP].chksum
    again = Ether(bytes(out))
    assert (again[IP].chksum, again[ICMP].chksum) == (ip_sum, icmp_sum)
    drv.close()


def test_vxlan_encap_grows_and_decap_shrinks_the_frame(tmp_path: Path) -> None:
    need_tool("gcc")
    control = ControlState((
        EntryState("port_vni", (KeyElem("value", 2),), "set_vni", (5000,)),
        EntryState("fdb", (KeyElem("value", 5000), KeyElem("value", 0x020000000BBB)), "to_remote",
                   (9, 0xC0000201, 0xC0000202, 0x02000000AAAA, 0x02000000CCCC)),
        EntryState("local_vtep", (KeyElem("value", 0xC0000201),), "nop"),
        EntryState("fdb", (KeyElem("value", 5000), KeyElem("value", 0x020000000DDD)), "to_local", (3,)),
    ))
    drv, ref = _open("vxlan_gateway", tmp_path, control)
    inner = bytes(Ether(dst="02:00:00:00:0b:bb", src="02:00:00:00:0d:dd") / IP(dst="10.0.0.1") / UDP() / (b"t" * 20))
    under = bytes(Ether(dst="02:00:00:00:aa:aa") / IP(src="192.0.2.2", dst="192.0.2.1") / UDP(sport=5, dport=4789)
                  / VXLAN(vni=5000) / Ether(dst="02:00:00:00:0d:dd", src="02:00:00:00:0b:bb") / IP() / (b"u" * 10))
    enc, dec = _run(drv, ref, [PacketIn(2, inner), PacketIn(1, under)])
    assert (enc.verdict, enc.port) == ("forward", 9) and len(enc.data) == len(inner) + 50
    outer = Ether(enc.data)
    assert outer[VXLAN].vni == 5000 and outer[IP].dst == "192.0.2.2" and bytes(outer[VXLAN].payload) == inner
    assert (dec.verdict, dec.port) == ("forward", 3)
    assert dec.data == under[50:]
    drv.close()


def test_encapsulation_that_does_not_fit_the_buffer_is_dropped(tmp_path: Path) -> None:
    """The C entry point never writes past `cap`: a frame that cannot grow is dropped, not overflowed."""
    need_tool("gcc")
    control = ControlState((
        EntryState("port_vni", (KeyElem("value", 2),), "set_vni", (1,)),
        EntryState("fdb", (KeyElem("value", 1), KeyElem("value", 0x020000000BBB)), "to_remote",
                   (9, 1, 2, 3, 4)),
    ))
    drv, _ = _open("vxlan_gateway", tmp_path, control)
    backend = drv.backend_object()
    assert isinstance(backend, SharedObject)
    lib = backend.lib
    lib.shim_process.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
                                 ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]
    frame = bytes(Ether(dst="02:00:00:00:0b:bb") / IP() / (b"z" * 30))
    for cap, verdict in ((len(frame) + 49, 0), (len(frame) + 50, 3)):
        buf = ctypes.create_string_buffer(frame, cap)
        n, port = ctypes.c_uint32(len(frame)), ctypes.c_uint32(0)
        assert lib.shim_process(backend.handle, buf, ctypes.byref(n), cap, 2, ctypes.byref(port)) == verdict
        if verdict == 3:
            assert n.value == cap
    drv.close()


def test_ipv6_routes_and_control_plane_defaults(tmp_path: Path) -> None:
    need_tool("gcc")
    mac = 0x020000000001
    control = ControlState(
        (EntryState("router_mac", (KeyElem("value", mac),), "nop"),
         EntryState("routes_v6", (KeyElem("prefix", 0x20010DB8 << 96, 32),), "set_nexthop", (1,)),
         EntryState("routes_v6", (KeyElem("prefix", 0x20010DB8_0001 << 80, 48),), "to_host"),
         EntryState("nexthops", (KeyElem("value", 1),), "next_hop", (2, 1, 2))),
        defaults=(("routes_v4", "to_host", ()),),
    )
    drv, ref = _open("router", tmp_path, control)
    mk = lambda dst: PacketIn(0, bytes(Ether(dst="02:00:00:00:00:01") / IPv6(dst=dst, hlim=5) / UDP()))  # noqa: E731
    v4 = PacketIn(0, bytes(Ether(dst="02:00:00:00:00:01") / IP(dst="203.0.113.1") / UDP()))
    a, b, c = _run(drv, ref, [mk("2001:db8:2::1"), mk("2001:db8:1::1"), v4])
    assert (a.verdict, a.port) == ("forward", 2) and IPv6(a.data[14:]).hlim == 4
    assert b.verdict == "to_host"
    assert c.verdict == "to_host"  # the default override
    drv.close()


def test_control_plane_api_add_lookup_modify_delete(tmp_path: Path) -> None:
    """The generated control-plane functions, through the host shim: handles are stable, duplicates and full
    tables are reported, modify and delete take effect on the next packet."""
    need_tool("gcc")
    prog = load_program(EX / "l2_switch.yaml").program
    drv = NicDriver(sanitize=False)
    drv.open(prog, tmp_path)
    be = drv.backend_object()
    assert isinstance(be, SharedObject)
    lib, h = be.lib, be.handle
    fdb = list(prog.tables).index("fdb")
    act = {n: i for i, n in enumerate(prog.actions)}
    match = (7).to_bytes(2, "big") + bytes.fromhex("020000000abc")
    frame = bytes(Ether(dst="02:00:00:00:0a:bc") / (b"x" * 50))
    frame = frame[:12] + b"\x81\x00\x00\x07" + frame[12:]  # VLAN 7

    def send() -> tuple[int, int]:
        buf = ctypes.create_string_buffer(frame, len(frame) + 16)
        n, port = ctypes.c_uint32(len(frame)), ctypes.c_uint32(0)
        return lib.shim_process(h, buf, ctypes.byref(n), len(frame) + 16, 1, ctypes.byref(port)), port.value

    consts = len(prog.tables["fdb"].entries)
    handle = lib.shim_add(h, fdb, match, 0, act["switch_to"], (9).to_bytes(2, "big"))
    assert handle == consts  # constant entries took the first handles
    assert lib.shim_add(h, fdb, match, 0, act["switch_to"], (3).to_bytes(2, "big")) == -2  # C3PO_ERR_EXISTS
    assert lib.shim_add(h, fdb, match, 0, act["reflect"], b"\0\0") == -3  # not one of the table's actions
    assert lib.shim_lookup(h, fdb, match, 0) == handle
    assert send() == (3, 9)
    assert lib.shim_modify(h, fdb, handle, act["drop"], b"") == 0
    assert send()[0] == 0
    assert lib.shim_delete(h, fdb, handle) == 0
    assert lib.shim_lookup(h, fdb, match, 0) == -4 and lib.shim_delete(h, fdb, handle) == -4
    assert send()[0] == 0  # default: drop
    # fill the table: the size from the spec is a hard bound
    size = prog.tables["fdb"].size
    added = sum(lib.shim_add(h, fdb, (1).to_bytes(2, "big") + i.to_bytes(6, "big"), 0, act["drop"], b"") >= 0
                for i in range(size + 5))
    assert added == size - consts
    drv.close()


def test_install_rejects_unknown_names(tmp_path: Path) -> None:
    need_tool("gcc")
    prog = load_program(EX / "l2_switch.yaml").program
    drv = NicDriver(sanitize=False)
    drv.open(prog, tmp_path)
    with pytest.raises(ValueError, match="unknown table"):
        drv.install(ControlState((EntryState("nope", (), "drop"),)))
    with pytest.raises(ValueError, match="no action"):
        drv.install(ControlState((EntryState("fdb", (KeyElem("value", 1), KeyElem("value", 2)), "reflect"),)))
    drv.close()
    drv.close()  # safe twice
