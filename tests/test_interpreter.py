"""Behaviour of the reference interpreter (conformance/interpreter.py) against docs/spec-reference.md.

Expected values are computed independently in the tests (scapy for packet bytes and checksums, zlib and a
bitwise CRC-16/ARC for hashes, plain Python arithmetic for wraparound), never copied from the interpreter.
"""

from __future__ import annotations

import ipaddress
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from c3po_compiler.features import FEATURES
from conformance.driver import load_driver_class
from conformance.interp_tables import InstalledEntry, Matcher, canonical
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn, Registers, Result
from conformance.ref_driver import RefDriver

from .conftest import ROOT

PROTOCOLS = ROOT / "spec" / "protocols"
EXAMPLES = ROOT / "spec" / "examples"
ROUTER_MAC = "02:00:00:00:00:01"


# -- helpers -------------------------------------------------------------------------------------------------


def make_program(tmp_path: Path, body: str, includes: tuple[str, ...] = ()) -> ir.Program:
    """A spec written for the test, including the real protocol library by absolute path."""
    head = "c3po: 1\nprogram: t\n"
    if includes:
        head += "include:\n" + "".join(f"  - {PROTOCOLS / name}.yaml\n" for name in includes)
    path = tmp_path / "t.yaml"
    path.write_text(head + textwrap.dedent(body))
    return load_program(path).program


def run(prog: ir.Program, frames: list[bytes | tuple[int, bytes]], control: ControlState | None = None,
        registers: Registers | None = None) -> list[Result]:
    interp = Interpreter(prog)
    interp.install(control or ControlState())
    packets = [PacketIn(*f) if isinstance(f, tuple) else PacketIn(1, f) for f in frames]
    return interp.run(packets, registers or {})


def one(prog: ir.Program, frame: bytes, control: ControlState | None = None, port: int = 1) -> Result:
    return run(prog, [(port, frame)], control)[0]


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def rfc1071_sum(data: bytes) -> int:
    """Independent one's-complement sum, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def crc16_arc_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def exact(v: int) -> KeyElem:
    return KeyElem("value", v)


# -- router example: LPM, TTL, IPv4 checksum -----------------------------------------------------------------


@pytest.fixture(scope="module")
def router() -> ir.Program:
    return load_program(EXAMPLES / "router.yaml").program


def router_control() -> ControlState:
    return ControlState((
        EntryState("router_mac", (exact(mac(ROUTER_MAC)),), "nop"),
        EntryState("routes_v4", (KeyElem("prefix", ip4("10.0.0.0"), 8),), "set_nexthop", (1,)),
        EntryState("routes_v4", (KeyElem("prefix", ip4("10.1.2.0"), 24),), "set_nexthop", (3,)),
        EntryState("routes_v4", (KeyElem("prefix", ip4("10.1.0.0"), 16),), "set_nexthop", (2,)),
        EntryState("routes_v6", (KeyElem("prefix", 0x2001_0DB8 << 96, 32),), "set_nexthop", (2,)),
        EntryState("nexthops", (exact(1),), "next_hop", (11, mac("02:00:00:00:01:01"), mac("02:00:00:00:01:02"))),
        EntryState("nexthops", (exact(2),), "next_hop", (12, mac("02:00:00:00:02:01"), mac("02:00:00:00:02:02"))),
        EntryState("nexthops", (exact(3),), "next_hop", (13, mac("02:00:00:00:03:01"), mac("02:00:00:00:03:02"))),
    ))


def v4_frame(dst: str, ttl: int = 64, payload: bytes = b"payload!", **ip: Any) -> bytes:
    return bytes(Ether(dst=ROUTER_MAC, src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst=dst, ttl=ttl, **ip)
                 / UDP(sport=1234, dport=53) / Raw(payload))


def test_installing_states_in_turn_gives_each_its_own_results(router: ir.Program) -> None:
    """install() skips a state the tables already hold (the vector generator installs before every run): the
    skip must not leave another state's tables behind; a state that fails to install changes nothing."""
    interp = Interpreter(router)
    routed, empty = router_control(), ControlState()
    frame = v4_frame("10.1.2.3")
    interp.install(routed)
    first = interp.run([PacketIn(1, frame)], {})[0]
    assert (first.verdict, first.port) == ("forward", 13)
    interp.install(empty)
    assert interp.run([PacketIn(1, frame)], {})[0].verdict == "to_host"  # router_mac misses
    interp.install(ControlState(routed.entries))  # an equal state, another object: the same tables as routed
    again = interp.run([PacketIn(1, frame)], {})[0]
    assert (again.verdict, again.port, again.data) == (first.verdict, first.port, first.data)
    bad = ControlState((*routed.entries, EntryState("no_such_table", (exact(1),), "nop")))
    with pytest.raises(ValueError, match="no_such_table"):
        interp.install(bad)
    assert interp.run([PacketIn(1, frame)], {})[0].port == 13
    interp.install(empty)
    with pytest.raises(ValueError, match="no_such_table"):
        interp.install(bad)
    assert interp.run([PacketIn(1, frame)], {})[0].verdict == "to_host"


@pytest.mark.parametrize(("dst", "port", "nexthop_entry"), [
    ("10.1.2.3", 13, 2),    # /8, /16 and /24 match: the /24 wins although it was installed before the /16
    ("10.1.9.9", 12, 1),    # /8 and /16
    ("10.200.0.1", 11, 0),  # /8 only
])
def test_lpm_longest_prefix_and_ttl_checksum(router: ir.Program, dst: str, port: int, nexthop_entry: int) -> None:
    frame = v4_frame(dst)
    r = one(router, frame, router_control())
    assert (r.verdict, r.port) == ("forward", port)
    out = Ether(r.data)
    sent = Ether(frame)
    assert out[IP].ttl == 63
    assert out.dst == f"02:00:00:00:0{port - 10}:02" and out.src == f"02:00:00:00:0{port - 10}:01"
    header = r.data[14:34]
    assert rfc1071_sum(header) == 0xFFFF  # the updated checksum verifies
    rebuilt = IP(header)
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == out[IP].chksum  # and equals a full recomputation
    assert bytes(out[UDP]) == bytes(sent[UDP])  # everything after IPv4 is carried verbatim
    assert r.counters == {("table.nexthops", nexthop_entry): (1, len(frame))}
    assert r.observations["hit"] == {"router_mac": True, "routes_v4": True, "nexthops": True}
    assert r.observations["offsets"] == {"ethernet": 0, "ipv4": 14}


def test_router_misses_and_slow_path(router: ir.Program) -> None:
    control = router_control()
    unrouted = one(router, v4_frame("11.0.0.1"), control)
    assert unrouted.verdict == "drop" and unrouted.data == b""  # routes_v4 default: drop
    assert unrouted.observations["hit"]["routes_v4"] is False
    expiring = v4_frame("10.1.2.3", ttl=1)
    r = one(router, expiring, control)
    assert (r.verdict, r.port, r.data) == ("to_host", None, expiring)
    multicast = one(router, v4_frame("224.0.0.5"), control)  # a constant entry of the spec
    assert multicast.verdict == "to_host" and multicast.observations["tables"]["routes_v4"] == "to_host"
    foreign = bytes(Ether(dst="02:00:00:00:77:77") / IP(dst="10.1.2.3") / UDP())
    r = one(router, foreign, control)
    assert (r.verdict, r.data) == ("to_host", foreign) and r.observations["hit"] == {"router_mac": False}
    v6 = bytes(Ether(dst=ROUTER_MAC) / IPv6(dst="2001:db8::1", hlim=9) / UDP())
    r = one(router, v6, control)
    assert (r.verdict, r.port) == ("forward", 12) and Ether(r.data)[IPv6].hlim == 8
    assert r.data[22:] == v6[22:]


def test_router_parser_errors(router: ir.Program) -> None:
    bad = bytearray(v4_frame("10.1.2.3"))
    bad[24] ^= 0xFF  # IPv4 checksum byte
    r = one(router, bytes(bad), router_control())
    assert (r.verdict, r.data, r.observations["parser_error"]) == ("drop", b"", "checksum")
    wrong_version = bytes(Ether(dst=ROUTER_MAC) / IP(version=6, dst="10.1.2.3") / UDP())
    r = one(router, wrong_version, router_control())
    assert (r.verdict, r.data, r.observations["parser_error"]) == ("to_host", wrong_version, "reject")
    assert r.counters == {} and r.observations["tables"] == {}


# -- parser errors --------------------------------------------------------------------------------------------

ERRORS_SPEC = """
instances:
  vlan: {type: vlan, stack: 2}
parser:
  start: ethernet
  on_error: {default: to_host}
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {0x8100: vlan, 0x0800: ipv4}
      default: accept
    vlan:
      extract: vlan
      select: vlan.last.ethertype
      cases: {0x8100: vlan, 0x0800: ipv4}
      default: accept
    ipv4:
      extract: ipv4
      verify: [ipv4]
      select: [ipv4.version, ipv4.protocol]
      cases: {"4, 6": tcp, "4, _": accept}
      default: reject
    tcp:
      extract: tcp
control:
  - ethernet.src = 0
  - if: "valid(tcp.mss)"
    then: [forward(7)]
    else: [forward(8)]
"""


@pytest.fixture(scope="module")
def errors_prog(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return make_program(tmp_path_factory.mktemp("errors"), ERRORS_SPEC, ("ethernet", "vlan", "ipv4", "tcp"))


def tcp_frame(options: list[tuple[str, Any]] | bytes, vlans: int = 1, **ip: Any) -> bytes:
    eth: Any = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
    for i in range(vlans):
        eth = eth / Dot1Q(vlan=10 + i)
    tcp = TCP(sport=1, dport=2, flags="S")
    if isinstance(options, bytes):
        tcp = TCP(bytes(TCP(sport=1, dport=2, dataofs=5 + len(options) // 4)) + options)
    else:
        tcp.options = options
    return bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2", **ip) / tcp / Raw(b"data"))


def test_truncated_at_every_length_leaves_frame_unchanged(errors_prog: ir.Program) -> None:
    frame = tcp_frame([("MSS", 1460), ("NOP", None), ("WScale", 7)])
    headers_end = len(frame) - 4
    ok = one(errors_prog, frame)
    assert (ok.verdict, ok.port, ok.observations["parser_error"]) == ("forward", 7, None)
    assert ok.data == frame[:6] + b"\0" * 6 + frame[12:]
    interp = Interpreter(errors_prog)
    results = interp.run([PacketIn(1, frame[:n]) for n in range(headers_end)], {})
    for n, r in enumerate(results):
        assert (r.verdict, r.port, r.data) == ("to_host", None, frame[:n]), n
        assert r.observations["parser_error"] == "truncated", n
    # Cut exactly after the headers: nothing is missing, the payload is just empty.
    assert interp.run([PacketIn(1, frame[:headers_end])], {})[0].observations["parser_error"] is None


@pytest.mark.parametrize(("case", "error"), [
    ("reject", "reject"),
    ("checksum", "checksum"),
    ("three_tags", "stack_overflow"),
    ("ihl_4", "bad_length"),
    ("ihl_15_short", "truncated"),
    ("option_length_1", "bad_length"),
    ("option_past_area", "bad_length"),
    ("mss_too_short", "bad_length"),
])
def test_parser_error_kinds(errors_prog: ir.Program, case: str, error: str) -> None:
    frames = {
        "reject": lambda: tcp_frame([], version=5),
        "checksum": lambda: tcp_frame([], chksum=0x1234),
        "three_tags": lambda: tcp_frame([], vlans=3),
        "ihl_4": lambda: tcp_frame([], ihl=4),
        "ihl_15_short": lambda: tcp_frame([], ihl=15),
        "option_length_1": lambda: tcp_frame(b"\x01\x05\x01\x00"),
        "option_past_area": lambda: tcp_frame(b"\x02\x04\x05\xb4\x08\x0a\x00\x00"),
        "mss_too_short": lambda: tcp_frame(b"\x02\x03\x05\x00"),
    }
    frame = frames[case]()
    r = one(errors_prog, frame)
    assert (r.verdict, r.port, r.data) == ("to_host", None, frame)
    assert r.observations["parser_error"] == error


def test_tlv_walk(errors_prog: ir.Program) -> None:
    interp = Interpreter(errors_prog)
    # Unknown options (SACK blocks, kind 5) are skipped by their length; the first MSS wins.
    p = interp.parse(tcp_frame(b"\x01\x05\x06\x00\x00\x00\x01\x02\x04\x05\xb4\x02\x04\x00\x10"
                               + b"\x00" * 1))
    assert p.error is None and p.fields()["tcp.mss.value"] == 1460
    # After End of Option List the rest is padding: a would-be MSS there is not read, nor is garbage.
    p = interp.parse(tcp_frame(b"\x00\x02\x04\x05\xb4\x02\x01\x00"))
    assert p.error is None and "tcp.mss.value" not in p.fields()
    # 40 bytes of NOPs: exactly max_options (40) options, fine.
    p = interp.parse(tcp_frame(b"\x01" * 40))
    assert p.error is None


def test_tlv_area_not_walked_when_no_option_is_read(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        parser:
          start: ethernet
          states:
            ethernet: {extract: ethernet, next: ipv4}
            ipv4: {extract: ipv4, next: tcp}
            tcp: {extract: tcp}
        control: [reflect]
        """, ("ethernet", "ipv4", "tcp"))
    frame = bytes(Ether() / IP() / TCP(bytes(TCP(dataofs=6)) + b"\x01\x05\x01\x00") / Raw(b"x"))
    r = one(prog, frame, port=4)
    assert (r.verdict, r.port, r.data) == ("reflect", 4, frame)


def test_max_options_exceeded(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        headers:
          opts:
            fields: {len: 8}
            varlen:
              name: area
              length: "(bit<16>) len"
              max: 16
              tlv:
                type: 8
                length: 8
                singletons: {pad: 0}
                max_options: 3
                options:
                  four: {type: 4, fields: {v: 8}}
        parser:
          start: opts
          states:
            opts: {extract: opts}
        control:
          - if: "valid(opts.four)"
            then: ["forward((bit<16>) opts.four.v)"]
            else: [drop]
        """)
    assert one(prog, b"\x03\x04\x03\x2a").port == 0x2A
    assert one(prog, b"\x05\x00\x00\x04\x03\x2a").port == 0x2A  # 3 options
    r = one(prog, b"\x06\x00\x00\x00\x04\x03\x2a")  # 4 options
    assert (r.verdict, r.observations["parser_error"]) == ("drop", "bad_length")


# -- tables ---------------------------------------------------------------------------------------------------

ACL_SPEC = """
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, next: ipv4}
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {17: udp}
      default: accept
    udp: {extract: udp}
tables:
  acl:
    key: {ipv4.src: ternary, ipv4.dst: ternary}
    actions: [forward, drop]
    default: drop
    counters: true
  ports:
    key: {ipv4.protocol: exact, udp.dst_port: range}
    actions: [forward, drop]
    default: forward(99)
control:
  - if: "valid(udp)"
    then: [{apply: ports}]
    else: [{apply: acl}]
"""


def test_ternary_priority_and_ties(tmp_path: Path) -> None:
    prog = make_program(tmp_path, ACL_SPEC, ("ethernet", "ipv4", "udp"))
    t = KeyElem("mask", 0, 0)
    control = ControlState((
        EntryState("acl", (KeyElem("mask", ip4("10.0.0.0"), 0xFF000000), t), "forward", (1,), priority=10),
        EntryState("acl", (t, KeyElem("mask", ip4("192.168.0.0"), 0xFFFF0000)), "forward", (2,), priority=20),
        EntryState("acl", (t, KeyElem("mask", ip4("192.168.1.0"), 0xFFFFFF00)), "forward", (3,), priority=20),
        EntryState("acl", (KeyElem("any"), KeyElem("any")), "forward", (4,), priority=5),
    ))

    def port(src: str, dst: str) -> int | None:
        return one(prog, bytes(Ether() / IP(src=src, dst=dst, proto=6)), control).port

    assert port("10.1.1.1", "192.168.1.1") == 2  # priority 20 beats 10; the equal-priority tie goes to entry 1
    assert port("10.1.1.1", "8.8.8.8") == 1
    assert port("1.1.1.1", "1.1.1.1") == 4
    r = run(prog, [bytes(Ether() / IP(proto=6))] * 2, ControlState())
    assert r[1].verdict == "drop" and r[1].counters == {("table.acl", -1): (2, 2 * 34)}


def test_range_keys(tmp_path: Path) -> None:
    prog = make_program(tmp_path, ACL_SPEC, ("ethernet", "ipv4", "udp"))
    control = ControlState((
        EntryState("ports", (exact(17), KeyElem("range", 1000, 2000)), "forward", (1,), priority=1),
        EntryState("ports", (exact(17), KeyElem("range", 1500, 1600)), "forward", (2,), priority=2),
    ))
    got = {dport: one(prog, bytes(Ether() / IP() / UDP(dport=dport)), control).port
           for dport in (999, 1000, 1499, 1500, 1550, 1600, 1601, 2000, 2001)}
    assert got == {999: 99, 1000: 1, 1499: 1, 1500: 2, 1550: 2, 1600: 2, 1601: 1, 2000: 1, 2001: 99}


# -- values ---------------------------------------------------------------------------------------------------

VALUES_SPEC = """
headers:
  v:
    fields: {x: 8, y: 8, n: 8, wide: 16, r_add: 8, r_sub: 8, r_neg: 8, r_not: 8, r_mul: 8, r_shl: 8, r_shr: 8,
             r_hi: 8, r_cast: 8, r_cmp: 8, r_nib: 4, r_bit: 1, pad: 3}
parser:
  start: v
  states:
    v: {extract: v}
control:
  - v.r_add = v.x + v.y
  - v.r_sub = v.x - v.y
  - v.r_neg = -v.x
  - v.r_not = ~v.x
  - v.r_mul = v.x * v.y
  - v.r_shl = v.x << v.n
  - v.r_shr = v.x >> v.n
  - v.r_hi = ((bit<16>) v.x * (bit<16>) v.y)[15:8]
  - v.r_cast = (bit<8>) v.wide
  - if: "v.x > v.y && !(v.x == v.y) || v.n >= 200"
    then: [v.r_cmp = 1]
    else: [v.r_cmp = 2]
  - v.r_nib = v.x[7:4] + v.y[3:0]
  - v.r_bit = v.n[0:0]
  - reflect
"""


@pytest.mark.parametrize(("x", "y", "n"), [(200, 100, 1), (3, 250, 7), (255, 255, 8), (1, 2, 9), (77, 77, 255),
                                           (0, 0, 0), (128, 1, 200)])
def test_wraparound_and_shifts(tmp_path: Path, x: int, y: int, n: int) -> None:
    prog = make_program(tmp_path, VALUES_SPEC)
    wide = 0xABCD
    frame = bytes([x, y, n]) + wide.to_bytes(2, "big") + bytes(11)
    out = one(prog, frame).data
    assert out[:5] == frame[:5]
    assert out[5] == (x + y) % 256
    assert out[6] == (x - y) % 256
    assert out[7] == (256 - x) % 256
    assert out[8] == 255 - x
    assert out[9] == (x * y) % 256
    assert out[10] == ((x << n) % 256 if n < 8 else 0)
    assert out[11] == (x >> n if n < 8 else 0)
    assert out[12] == (x * y) >> 8
    assert out[13] == wide & 0xFF
    assert out[14] == (1 if (x > y and x != y) or n >= 200 else 2)
    assert out[15] >> 4 == ((x >> 4) + (y & 15)) % 16
    assert (out[15] >> 3) & 1 == n & 1
    assert len(out) == len(frame)


def test_hash_values(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        headers:
          h:
            fields: {a: 32, b: 8, c: 3, d: 13, r32: 32, r16: 16, s16: 16}
        parser:
          start: h
          states:
            h: {extract: h}
        control:
          - h.r32 = hash(crc32, h.a, h.b, h.c)
          - h.r16 = hash(crc16, h.a, h.d)
          - h.s16 = hash(crc32, h.c)[31:16]
          - to_host
        """)
    for a, b, c, d in [(0x0A000001, 6, 5, 0x1ABC), (0, 0, 0, 0), (0xFFFFFFFF, 0xFF, 7, 0x1FFF)]:
        frame = a.to_bytes(4, "big") + bytes([b, c << 5 | d >> 8, d & 0xFF]) + bytes(8)
        out = one(prog, frame).data
        assert int.from_bytes(out[7:11], "big") == zlib.crc32(a.to_bytes(4, "big") + bytes([b, c]))
        assert int.from_bytes(out[11:13], "big") == crc16_arc_bitwise(a.to_bytes(4, "big") + d.to_bytes(2, "big"))
        assert int.from_bytes(out[13:15], "big") == zlib.crc32(bytes([c])) >> 16
    assert crc16_arc_bitwise(b"123456789") == 0xBB3D  # the test's own CRC is the catalogued CRC-16/ARC


def test_invalid_header_reads_zero_and_writes_nothing(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        metadata: {m: 8}
        parser:
          start: ethernet
          states:
            ethernet:
              extract: ethernet
              select: ethernet.ethertype
              cases: {0x0800: ipv4, "0x86dd": ipv6}
            ipv4: {extract: ipv4}
            ipv6: {extract: ipv6}
        tables:
          by_v6:
            key: {ipv6.dst: exact}
            actions: [forward, drop]
            default: drop
        control:
          - ipv6.hop_limit = 99
          - meta.m = ipv6.hop_limit + 1
          - ipv4.ttl = meta.m
          - apply: by_v6
        """, ("ethernet", "ipv4", "ipv6"))
    control = ControlState((EntryState("by_v6", (exact(0),), "forward", (5,)),))
    frame = bytes(Ether() / IP(ttl=64) / UDP())
    r = one(prog, frame, control)
    assert (r.verdict, r.port) == ("forward", 5)  # the key of the invalid ipv6 header read 0
    assert len(r.data) == len(frame) and IP(r.data[14:]).ttl == 1  # 0 + 1: the write to ipv6 did nothing


def test_registers_and_counters_across_packets(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        registers: {seen: {width: 8, size: 4}}
        counters: {per_port: {size: 4}}
        parser:
          start: ethernet
          states:
            ethernet: {extract: ethernet}
        control:
          - seen[std.ingress_port] = seen[std.ingress_port] + 1
          - count(per_port, std.ingress_port)
          - ethernet.src = (bit<48>) seen[std.ingress_port]
          - forward(0)
        """, ("ethernet",))
    frame = bytes(Ether(src="00:00:00:00:00:00") / Raw(b"abc"))
    n = len(frame)
    results = run(prog, [(1, frame), (1, frame), (9, frame), (2, frame), (1, frame)],
                  registers={("seen", 2): 255, ("seen", 3): 7})
    assert [r.data[11] for r in results] == [1, 2, 0, 0, 3]  # port 9: out of range, reads 0; 255 + 1 wraps
    assert results[0].registers == {("seen", 1): 1, ("seen", 2): 255, ("seen", 3): 7}
    assert results[-1].registers == {("seen", 1): 3, ("seen", 3): 7}
    assert results[2].counters == {("per_port", 1): (2, 2 * n)}  # index 9 counts nothing
    assert results[-1].counters == {("per_port", 1): (3, 3 * n), ("per_port", 2): (1, n)}
    again = Interpreter(prog).run([PacketIn(1, frame)], {})  # a new run starts from fresh state
    assert again[0].counters == {("per_port", 1): (1, n)} and again[0].registers == {("seen", 1): 1}


def test_verdicts(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        parser:
          start: ethernet
          states:
            ethernet: {extract: ethernet}
        control:
          - if: "ethernet.ethertype == 1"
            then: [drop, to_host]
          - if: "ethernet.ethertype == 2"
            then: [to_host, drop]
          - if: "ethernet.ethertype == 3"
            then: [reflect]
          - if: "ethernet.ethertype == 4"
            then: ["forward(std.ingress_port + 100)"]
        default_verdict: drop
        """, ("ethernet",))

    def frame(t: int) -> bytes:
        return bytes(Ether(type=t) / Raw(b"zz"))

    got = [(r.verdict, r.port, r.data) for r in run(prog, [(3, frame(t)) for t in range(5)])]
    assert got == [("drop", None, b""), ("to_host", None, frame(1)), ("drop", None, b""),
                   ("reflect", 3, frame(3)), ("forward", 103, frame(4))]


# -- header shapes --------------------------------------------------------------------------------------------


def test_encap_and_decap(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        parser:
          start: ethernet
          states:
            ethernet:
              extract: ethernet
              select: ethernet.ethertype
              cases: {0x8100: vlan}
              default: accept
            vlan: {extract: vlan}
        deparse: [ethernet, vlan]
        control:
          - if: "valid(vlan)"
            then:
              - ethernet.ethertype = vlan.ethertype
              - set_invalid(vlan)
            else:
              - set_valid(vlan)
              - vlan.vid = 42
              - vlan.pcp = 5
              - vlan.ethertype = ethernet.ethertype
              - ethernet.ethertype = 0x8100
          - forward(1)
        """, ("ethernet", "vlan"))
    inner = IP(dst="10.0.0.1") / UDP() / Raw(b"payload")
    plain = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / inner
    tagged = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / Dot1Q(vlan=42, prio=5) / inner
    assert one(prog, bytes(plain)).data == bytes(tagged)
    assert one(prog, bytes(Ether(bytes(tagged)))).data == bytes(plain)


def test_gre_optional_groups(tmp_path: Path) -> None:
    from scapy.layers.l2 import GRE

    prog = make_program(tmp_path, """
        metadata: {k: 32}
        parser:
          start: ethernet
          states:
            ethernet: {extract: ethernet, next: ipv4}
            ipv4:
              extract: ipv4
              select: ipv4.protocol
              cases: {47: gre}
            gre: {extract: gre}
        control:
          - meta.k = gre.key_
          - if: "present(gre.with_key)"
            then: [gre.key_ = gre.key_ + 1]
          - gre.checksum = 0xbeef
          - gre.sequence = (bit<32>) gre.protocol
          - forward(1)
        """, ("ethernet", "ipv4", "gre"))
    key_seq = Ether() / IP() / GRE(key_present=1, seqnum_present=1, key=0xFFFFFFFF, sequence_number=5, proto=0x0800)
    out = Ether(one(prog, bytes(key_seq / Raw(b"in"))).data)
    assert out[GRE].key == 0 and out[GRE].sequence_number == 0x0800 and out[GRE].chksum is None
    assert bytes(out[GRE].payload) == b"in"
    seq_only = Ether() / IP() / GRE(seqnum_present=1, sequence_number=9, proto=0x0800) / Raw(b"in")
    interp = Interpreter(prog)
    fields = interp.parse(bytes(seq_only)).fields()
    assert fields["gre.sequence"] == 9 and "gre.key_" not in fields and interp.parse(bytes(seq_only)).error is None
    out = Ether(one(prog, bytes(seq_only)).data)
    assert out[GRE].sequence_number == 0x0800 and len(bytes(out)) == len(bytes(seq_only))


def test_stacks_pop_and_swap() -> None:
    from scapy.contrib.mpls import MPLS

    prog = load_program(EXAMPLES / "mpls_lsr.yaml").program
    control = ControlState((
        EntryState("lfib", (exact(100),), "pop", (3, mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b"))),
        EntryState("lfib", (exact(200),), "swap", (300, 4, mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b"))),
    ))
    eth = Ether(type=0x8847)
    inner = IP(ttl=50, dst="10.0.0.1") / UDP() / Raw(b"x")
    two = eth / MPLS(label=100, s=0, ttl=20) / MPLS(label=7, s=1, ttl=33) / inner
    r = one(prog, bytes(two), control)
    assert r.observations["offsets"] == {"ethernet": 0, "mpls[0]": 14, "mpls[1]": 18, "ipv4": 22}
    out = Ether(r.data)
    assert (r.verdict, r.port) == ("forward", 3)
    assert out[MPLS].label == 7 and out[MPLS].ttl == 19 and out[MPLS].s == 1 and bytes(out[IP]) == bytes(inner)
    bottom = eth / MPLS(label=100, s=1, ttl=20) / inner
    out = Ether(one(prog, bytes(bottom), control).data)
    assert out.type == 0x0800 and out[IP].ttl == 19 and rfc1071_sum(bytes(out[IP])[:20]) == 0xFFFF
    swap = Ether(one(prog, bytes(eth / MPLS(label=200, s=1, ttl=9) / inner), control).data)
    assert swap[MPLS].label == 300 and swap[MPLS].ttl == 8
    five = eth / MPLS(s=0) / MPLS(s=0) / MPLS(s=0) / MPLS(s=0) / MPLS(s=1) / inner
    r = one(prog, bytes(five), control)
    assert (r.verdict, r.data, r.observations["parser_error"]) == ("to_host", bytes(five), "stack_overflow")


def test_lookahead_mask_range_tuple_selects(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        headers:
          a: {fields: {k: 8, v: 8}}
          b: {fields: {x: 16}}
        parser:
          start: peek
          states:
            peek:
              select:
                - "lookahead(8, 8)"
                - "lookahead(4)"
              cases:
                "0x10 &&& 0xf0, _": masked
                "3 .. 5, 0 .. 7": ranged
                "_, 15": any_v
              default: accept
            masked: {extract: a, next: accept}
            ranged: {extract: b}
            any_v: {extract: a, next: accept}
        control: [to_host]
        """)
    interp = Interpreter(prog)
    paths = {data.hex(): interp.parse(data).path for data in
             [b"\x00\x1f", b"\x70\x04", b"\x80\x05", b"\xf0\x06", b"\x00\x06"]}
    assert paths == {"001f": ["peek", "masked"], "7004": ["peek", "ranged"], "8005": ["peek"],
                     "f006": ["peek", "any_v"], "0006": ["peek"]}
    assert interp.parse(b"\x00").error == "truncated"  # lookahead past the end


def test_unaligned_and_wide_fields(tmp_path: Path) -> None:
    prog = make_program(tmp_path, """
        headers:
          u: {fields: {a: 3, b: 17, c: 128, d: 4}}
        parser:
          start: u
          states:
            u: {extract: u}
        control:
          - u.b = u.b + 1
          - u.c = ~u.c
          - to_host
        """)
    a, b, c, d = 5, 0x1FFFF, (1 << 127) | 12345, 9
    value = ((a << 17 | b) << 128 | c) << 4 | d
    frame = value.to_bytes(19, "big") + b"tail"
    assert Interpreter(prog).parse(frame).fields() == {"u.a": a, "u.b": b, "u.c": c, "u.d": d}
    out = one(prog, frame).data
    expected = ((a << 17 | 0) << 128 | (c ^ ((1 << 128) - 1))) << 4 | d
    assert out == expected.to_bytes(19, "big") + b"tail"


NAT_SPEC = """
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, next: ipv4}
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {6: tcp, 17: udp}
    tcp: {extract: tcp}
    udp: {extract: udp}
control:
  - ipv4.src = 198.51.100.7
  - if: "valid(tcp)"
    then:
      - tcp.src_port = 40000
      - update_checksum(tcp, ipv4)
    else:
      - udp.src_port = 40001
      - update_checksum(udp, ipv4)
  - update_checksum(ipv4)
  - update_checksum(ipv4)
  - forward(2)
"""


def full_l4_checksum(frame: bytes, layer: type) -> int:
    pkt = Ether(frame)
    del pkt[layer].chksum
    del pkt[IP].chksum
    return int(Ether(bytes(pkt))[layer].chksum)


@pytest.mark.parametrize("seed", range(4))
def test_l4_incremental_checksum(tmp_path: Path, seed: int) -> None:
    import random

    rng = random.Random(seed)
    prog = make_program(tmp_path, NAT_SPEC, ("ethernet", "ipv4", "tcp", "udp"))
    payload = Raw(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 30))))
    ip = IP(src=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", dst="203.0.113.9", id=rng.randrange(65536))
    tcp = bytes(Ether() / ip / TCP(sport=rng.randrange(65536), seq=rng.getrandbits(32)) / payload)
    out = one(prog, tcp).data
    assert Ether(out)[IP].src == "198.51.100.7" and Ether(out)[TCP].sport == 40000
    assert Ether(out)[TCP].chksum == full_l4_checksum(out, TCP)
    assert rfc1071_sum(out[14:34]) == 0xFFFF
    udp = bytes(Ether() / ip / UDP(sport=rng.randrange(65536)) / payload)
    out = one(prog, udp).data
    assert Ether(out)[UDP].chksum == full_l4_checksum(out, UDP)
    no_checksum = bytearray(udp)
    no_checksum[40:42] = b"\0\0"
    out = one(prog, bytes(no_checksum)).data
    assert out[40:42] == b"\0\0"  # zero_means_none: UDP without checksum stays without


def test_vxlan_gateway_encap_decap() -> None:
    prog = load_program(EXAMPLES / "vxlan_gateway.yaml").program
    tenant = Ether(dst="02:00:00:00:aa:01", src="02:00:00:00:aa:02") / IP(dst="10.0.0.2") / UDP() / Raw(b"t")
    control = ControlState((
        EntryState("port_vni", (exact(3),), "set_vni", (5000,)),
        EntryState("local_vtep", (exact(ip4("192.0.2.1")),), "nop"),
        EntryState("fdb", (exact(5000), exact(mac("02:00:00:00:aa:01"))), "to_remote",
                   (1, ip4("192.0.2.1"), ip4("192.0.2.2"), mac("02:00:00:00:00:01"), mac("02:00:00:00:00:02"))),
        EntryState("fdb", (exact(5000), exact(mac("02:00:00:00:bb:01"))), "to_local", (3,)),
    ))
    r = one(prog, bytes(tenant), control, port=3)
    assert (r.verdict, r.port) == ("forward", 1)
    out = Ether(r.data)
    assert out[IP].src == "192.0.2.1" and out[IP].dst == "192.0.2.2" and out[UDP].dport == 4789
    assert out[VXLAN].vni == 5000 and bytes(out[VXLAN].payload) == bytes(tenant)
    assert out[IP].len == len(bytes(tenant)) + 36 and rfc1071_sum(r.data[14:34]) == 0xFFFF
    # hash(crc16, ethernet.dst, ethernet.src, ethernet.ethertype): the tenant's Ethernet header bytes in order
    expected_sport = crc16_arc_bitwise(bytes(tenant)[:14]) | 0xC000
    assert out[UDP].sport == expected_sport
    back = Ether(dst="02:00:00:00:00:01") / IP(src="192.0.2.2", dst="192.0.2.1") / UDP(sport=5, dport=4789) / \
        VXLAN(vni=5000) / Ether(dst="02:00:00:00:bb:01") / Raw(b"t")
    r = one(prog, bytes(back), control, port=1)
    assert (r.verdict, r.port, r.data) == ("forward", 3, bytes(back[VXLAN].payload))


# -- the driver -----------------------------------------------------------------------------------------------


def test_ref_driver(router: ir.Program, tmp_path: Path) -> None:
    assert load_driver_class("ref") is RefDriver
    assert RefDriver.supports == frozenset(FEATURES) and RefDriver.name == "ref"
    frame = v4_frame("10.1.2.3")
    with RefDriver() as driver:
        driver.open(router, tmp_path)
        driver.install(router_control())
        assert driver.run([PacketIn(1, frame)], {})[0].port == 13
        driver.install(ControlState())
        assert driver.run([PacketIn(1, frame)], {})[0].verdict == "to_host"  # router_mac emptied
    with pytest.raises(ValueError, match="no action"):
        Interpreter(router).install(ControlState((EntryState("routes_v4", (KeyElem("any"),), "next_hop"),)))


# -- the other examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_icmp_echo_replies_have_correct_checksums(seed: int) -> None:
    import random

    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest

    rng = random.Random(seed)
    prog = load_program(EXAMPLES / "icmp_responder.yaml").program
    me4, me6 = "192.0.2.1", "2001:db8::1"
    control = ControlState((EntryState("local_ipv4", (exact(ip4(me4)),), "echo_reply_v4"),
                            EntryState("local_ipv6", (exact(int(ipaddress.IPv6Address(me6))),), "echo_reply_v6")))
    payload = Raw(rng.randbytes(rng.randrange(1, 40)))
    request = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / \
        IP(src="198.51.100.9", dst=me4, ttl=rng.randrange(1, 255)) / \
        ICMP(type=8, id=rng.randrange(65536), seq=rng.randrange(65536)) / payload
    r = one(prog, bytes(request), control, port=6)
    assert (r.verdict, r.port) == ("reflect", 6)
    reply = Ether(r.data)
    assert (reply.dst, reply.src, reply[IP].src, reply[IP].dst, reply[ICMP].type) == \
        ("02:00:00:00:00:02", "02:00:00:00:00:01", me4, "198.51.100.9", 0)
    assert rfc1071_sum(bytes(reply[ICMP])) == 0xFFFF and rfc1071_sum(r.data[14:34]) == 0xFFFF
    request6 = Ether() / IPv6(src="2001:db8::99", dst=me6) / \
        ICMPv6EchoRequest(id=rng.randrange(65536), seq=rng.randrange(65536), data=rng.randbytes(12))
    r = one(prog, bytes(request6), control, port=2)
    reply6 = Ether(r.data)
    assert isinstance(reply6[IPv6].payload, ICMPv6EchoReply) and reply6[IPv6].dst == "2001:db8::99"
    recomputed = reply6.copy()
    del recomputed[ICMPv6EchoReply].cksum
    assert Ether(bytes(recomputed))[ICMPv6EchoReply].cksum == reply6[ICMPv6EchoReply].cksum


def test_tlv_parser_geneve_and_tcp_options() -> None:
    from scapy.contrib.geneve import GENEVE, GeneveOptions

    prog = load_program(EXAMPLES / "tlv_parser.yaml").program
    inner = Ether(dst="02:00:00:00:00:05") / Raw(b"inner")

    def geneve(options: list[GeneveOptions], vni: int = 5) -> bytes:
        return bytes(Ether() / IP() / UDP(sport=1000, dport=6081) /
                     GENEVE(vni=vni, proto=0x6558, options=options) / inner)

    other = GeneveOptions(classid=0x0999, type=1, data=b"\xff" * 8)
    ovn = GeneveOptions(classid=0x0102, type=0x80, data=(3 << 16 | 40).to_bytes(4, "big"))
    second = GeneveOptions(classid=0x0102, type=0x80, data=(3 << 16 | 41).to_bytes(4, "big"))
    results = run(prog, [geneve([other, ovn, second]), geneve([other]), geneve([ovn], vni=6)])
    assert (results[0].verdict, results[0].port) == ("forward", 40 - 1 + 16)  # the first OVN option wins
    assert results[0].counters == {("table.ovn_egress", 0): (1, len(geneve([other, ovn, second])))}
    assert results[1].verdict == "to_host" and results[1].observations["tables"] == {}
    assert results[2].verdict == "to_host" and results[2].observations["hit"] == {"ovn_egress": False}
    syn = bytes(Ether() / IP() / TCP(flags="S", options=[("SAckOK", b""), ("MSS", 500), ("WScale", 15)]))
    r = run(prog, [syn, syn])[1]
    assert r.verdict == "drop"
    assert r.counters[("option_anomalies", 0)] == (2, 2 * len(syn))
    assert r.counters[("option_anomalies", 1)] == (2, 2 * len(syn))
    assert r.counters[("option_anomalies", 2)] == (2, 2 * len(syn))


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_malformed_frames_never_raise(example: str) -> None:
    """Random bytes and bit-flipped real frames: every outcome is a verdict, parser errors leave the frame."""
    import random

    from scapy.contrib.mpls import MPLS

    prog = load_program(EXAMPLES / f"{example}.yaml").program
    rng = random.Random(example)
    seeds = [
        tcp_frame([("MSS", 1460), ("Timestamp", (1, 2)), ("WScale", 3)]),
        v4_frame("10.1.2.3", options=[IPOption_Router_Alert()]),
        bytes(Ether() / IPv6() / TCP(options=[("MSS", 9)])),
        bytes(Ether(type=0x8847) / MPLS(s=0) / MPLS(s=1) / IP() / UDP()),
        bytes(Ether() / IP() / UDP(dport=4789) / VXLAN(vni=5) / Ether() / IP()),
    ]
    frames = [rng.randbytes(rng.randrange(0, 120)) for _ in range(100)]
    for base in seeds:
        for _ in range(60):
            mutated = bytearray(base[:rng.randrange(len(base) + 1)] if rng.random() < 0.3 else base)
            for _ in range(rng.randrange(1, 4)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            frames.append(bytes(mutated))
    results = run(prog, [(rng.randrange(4), f) for f in frames])
    for frame, r in zip(frames, results, strict=True):
        assert r.verdict in ir.VERDICTS
        if r.observations["parser_error"] is not None:
            assert r.data == (b"" if r.verdict == "drop" else frame)
            assert r.verdict in ir.ERROR_VERDICTS
        if r.verdict == "drop":
            assert r.data == b""


# -- table matching against a brute-force reading of section 6 -------------------------------------------------


def brute_force(table: ir.Table, entries: list[InstalledEntry], key: tuple[int, ...]) -> InstalledEntry | None:
    def matches(e: InstalledEntry) -> bool:
        for m, k, v in zip(e.match, table.keys, key, strict=True):
            if m.kind == "value" and v != m.a:
                return False
            if m.kind == "prefix" and v >> (k.width - m.b) != m.a >> (k.width - m.b):
                return False
            if m.kind == "mask" and v & m.b != m.a & m.b:
                return False
            if m.kind == "range" and not m.a <= v <= m.b:
                return False
        return True

    candidates = [e for e in entries if matches(e)]
    if not candidates:
        return None
    lpm = table.lpm_key
    if lpm is not None and not table.uses_priority:
        def plen(e: InstalledEntry) -> int:
            return 0 if e.match[lpm].kind == "any" else e.match[lpm].b
        return max(candidates, key=lambda e: (plen(e), -e.index))
    if not table.uses_priority:
        return candidates[0]  # exact keys only: identical matches, the first installed wins
    return max(candidates, key=lambda e: (e.priority, -e.index))


@pytest.mark.parametrize("kinds", [("exact",), ("lpm",), ("exact", "lpm"), ("ternary",), ("range", "exact"),
                                   ("lpm", "ternary"), ("ternary", "range", "lpm")])
def test_matcher_agrees_with_brute_force(kinds: tuple[str, ...]) -> None:
    import random

    rng = random.Random(str(kinds))
    width = 6  # small, so random keys often hit random entries
    keys = [ir.TableKey(ir.MetaRef(f"k{i}", width=width), kind, f"meta.k{i}") for i, kind in enumerate(kinds)]
    table = ir.Table("t", keys, ["nop"], ir.ActionCall("nop", []), 1024)

    def random_elem(kind: str) -> KeyElem:
        if kind == "exact":
            return KeyElem("value", rng.randrange(1 << width))
        if rng.random() < 0.15:
            return KeyElem("any")
        if kind == "lpm":
            return canonical(KeyElem("prefix", rng.randrange(1 << width), rng.randrange(width + 1)), kind, width)
        if kind == "ternary":
            return canonical(KeyElem("mask", rng.randrange(1 << width), rng.randrange(1 << width)), kind, width)
        lo = rng.randrange(1 << width)
        return KeyElem("range", lo, rng.randrange(lo, 1 << width))

    for _ in range(30):
        entries = [InstalledEntry(i, tuple(random_elem(k) for k in kinds), "nop", (), rng.randrange(4))
                   for i in range(rng.randrange(1, 25))]
        matcher = Matcher(table, entries)
        for _ in range(40):
            key = tuple(rng.randrange(1 << width) for _ in kinds)
            assert matcher.lookup(key) == brute_force(table, entries, key), (entries, key)
