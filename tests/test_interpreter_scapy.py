"""The interpreter's parser against an independent dissector: scapy.

Real protocol stacks are built with scapy from seeded random field values (QinQ, MPLS label stacks, IPv4 with
options, IPv6 extension-header chains, TCP options, GRE with key/sequence, VXLAN, Geneve with options); every
field the interpreter extracts must equal scapy's dissection of the same bytes, and every header must sit at the
byte offset scapy found it at. A layout or TLV-walk bug shared by every target cannot hide from this.
"""

from __future__ import annotations

import itertools
import random
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import (
    IP,
    TCP,
    UDP,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
)
from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Jumbo,
    PadN,
    RouterAlert,
)
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from c3po_compiler import ir, load_program
from conformance.interpreter import Interpreter

from .conftest import ROOT

PROTOCOLS = ROOT / "spec" / "protocols"

# Every supported header along one parse graph. The control reads every TLV option so the areas are walked.
SPEC = """
c3po: 1
program: dissect
include: [{includes}]
instances:
  vlan: {{type: vlan, stack: 2}}
  mpls: {{type: mpls, stack: 4}}
  dest1: {{type: ipv6_dest_opts}}
  dest2: {{type: ipv6_dest_opts}}
  inner_ethernet: {{type: ethernet}}
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {{0x88a8: vlan, 0x8100: vlan, 0x8847: mpls, 0x0800: ipv4, "0x86dd": ipv6}}
      default: accept
    vlan:
      extract: vlan
      select: vlan.last.ethertype
      cases: {{0x8100: vlan, 0x8847: mpls, 0x0800: ipv4, "0x86dd": ipv6}}
      default: accept
    mpls:
      extract: mpls
      select: mpls.last.bos
      cases: {{0: mpls, 1: mpls_payload}}
    mpls_payload:
      select: lookahead(4)
      cases: {{4: ipv4, 6: ipv6}}
      default: accept
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {{6: tcp, 17: udp, 47: gre}}
      default: accept
    ipv6:
      extract: ipv6
      select: ipv6.next_hdr
      cases: {{0: hbh, 60: dest1, 43: routing, 44: fragment, 6: tcp, 17: udp, 47: gre}}
      default: accept
    hbh:
      extract: ipv6_hop_by_hop
      select: ipv6_hop_by_hop.next_hdr
      cases: {{60: dest1, 43: routing, 44: fragment, 6: tcp, 17: udp, 47: gre}}
      default: accept
    dest1:
      extract: dest1
      select: dest1.next_hdr
      cases: {{43: routing, 44: fragment, 6: tcp, 17: udp, 47: gre}}
      default: accept
    routing:
      extract: ipv6_routing
      select: ipv6_routing.next_hdr
      cases: {{44: fragment, 60: dest2, 6: tcp, 17: udp, 47: gre}}
      default: accept
    fragment:
      extract: ipv6_fragment
      select: ipv6_fragment.next_hdr
      cases: {{60: dest2, 6: tcp, 17: udp, 47: gre}}
      default: accept
    dest2:
      extract: dest2
      select: dest2.next_hdr
      cases: {{6: tcp, 17: udp, 47: gre}}
      default: accept
    tcp:
      extract: tcp
    udp:
      extract: udp
      select: udp.dst_port
      cases: {{4789: vxlan, 6081: geneve}}
      default: accept
    vxlan:
      extract: vxlan
      next: inner_ethernet
    geneve:
      extract: geneve
      select: geneve.protocol_type
      cases: {{0x6558: inner_ethernet}}
      default: accept
    gre:
      extract: gre
    inner_ethernet:
      extract: inner_ethernet
control:
  - if: >-
      valid(tcp.mss) || valid(tcp.wscale) || valid(tcp.sack_permitted) || valid(tcp.timestamps) ||
      valid(ipv4.router_alert) || valid(ipv6_hop_by_hop.router_alert) || valid(ipv6_hop_by_hop.jumbo_payload) ||
      valid(dest1.home_address) || valid(dest2.home_address) || valid(geneve.ovn)
    then: [to_host]
"""


@pytest.fixture(scope="module")
def interp(tmp_path_factory: pytest.TempPathFactory) -> Interpreter:
    files = ["ethernet", "vlan", "mpls", "ipv4", "ipv6", "ipv6_ext", "tcp", "udp", "gre", "vxlan", "geneve"]
    path = tmp_path_factory.mktemp("dissect") / "dissect.yaml"
    path.write_text(textwrap.dedent(SPEC).format(includes=", ".join(str(PROTOCOLS / f"{f}.yaml") for f in files)))
    prog: ir.Program = load_program(path).program
    return Interpreter(prog)


# -- random stacks -------------------------------------------------------------------------------------------


def rmac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


def rv4(rng: random.Random) -> str:
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def rv6(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(65536):x}" for _ in range(8))


def ipv4_layer(rng: random.Random, proto: int) -> Packet:
    options: list[Packet] = []
    for _ in range(rng.randrange(4)):
        kind = rng.choice(["ra", "nop", "rr"])
        options.append(IPOption_Router_Alert(alert=rng.randrange(65536)) if kind == "ra"
                       else IPOption_NOP() if kind == "nop"
                       else IPOption_RR(routers=[rv4(rng) for _ in range(rng.randrange(1, 3))]))
    return IP(src=rv4(rng), dst=rv4(rng), ttl=rng.randrange(256), tos=rng.randrange(256), id=rng.randrange(65536),
              flags=rng.randrange(8), frag=0, proto=proto, options=options)


def ipv6_chain(rng: random.Random, last_nh: int) -> list[Packet]:
    """An extension-header chain in RFC 8200 section 4.1 order, each header present or not."""
    chain: list[Packet] = [IPv6(src=rv6(rng), dst=rv6(rng), tc=rng.randrange(256), fl=rng.randrange(1 << 20),
                                hlim=rng.randrange(256))]
    if rng.random() < 0.5:
        opts: list[Packet] = []
        if rng.random() < 0.7:
            opts.append(RouterAlert(value=rng.randrange(65536)))
        if rng.random() < 0.4:
            opts.append(PadN(optdata=b"\0" * rng.randrange(4)))
        if rng.random() < 0.5:
            opts.append(Jumbo(jumboplen=rng.getrandbits(32)))
        chain.append(IPv6ExtHdrHopByHop(options=opts))
    if rng.random() < 0.4:
        chain.append(IPv6ExtHdrDestOpt(options=[HAO(hoa=rv6(rng))] if rng.random() < 0.6 else []))
    if rng.random() < 0.4:
        chain.append(IPv6ExtHdrRouting(addresses=[rv6(rng) for _ in range(rng.randrange(3))],
                                       segleft=rng.randrange(3)))
    if rng.random() < 0.4:
        chain.append(IPv6ExtHdrFragment(offset=0, m=0, id=rng.getrandbits(32), res1=0, res2=0))
    if rng.random() < 0.3 and len(chain) > 1 and not isinstance(chain[-1], IPv6ExtHdrDestOpt):
        chain.append(IPv6ExtHdrDestOpt(options=[HAO(hoa=rv6(rng))]))
    numbers: dict[type, int] = {IPv6ExtHdrHopByHop: 0, IPv6ExtHdrDestOpt: 60, IPv6ExtHdrRouting: 43,
                                IPv6ExtHdrFragment: 44}
    for layer, after in itertools.pairwise(chain):
        layer.nh = numbers[type(after)]
    chain[-1].nh = last_nh
    return chain


def tcp_layer(rng: random.Random) -> Packet:
    choices: list[tuple[str, Any]] = [("MSS", rng.randrange(65536)), ("NOP", None), ("WScale", rng.randrange(15)),
                                      ("SAckOK", b""), ("Timestamp", (rng.getrandbits(32), rng.getrandbits(32))),
                                      ("SAck", (rng.getrandbits(32), rng.getrandbits(32)))]
    options: list[tuple[str, Any]] = []
    size = 0
    for opt in rng.sample(choices, rng.randrange(len(choices) + 1)):
        n = {"MSS": 4, "NOP": 1, "WScale": 3, "SAckOK": 2, "Timestamp": 10, "SAck": 10}[opt[0]]
        if size + n <= 40:
            options.append(opt)
            size += n
    if rng.random() < 0.3 and size + 4 <= 40:
        options.append(("MSS", rng.randrange(65536)))  # a second MSS: the first one wins
    return TCP(sport=rng.randrange(65536), dport=rng.randrange(65536), seq=rng.getrandbits(32),
               ack=rng.getrandbits(32), flags=rng.getrandbits(9), window=rng.randrange(65536),
               urgptr=rng.randrange(65536), options=options)


def l4_layers(rng: random.Random) -> tuple[int, list[Packet]]:
    kind = rng.choice(["tcp", "udp", "vxlan", "geneve", "gre"])
    sport = rng.randrange(1024, 65536)
    if kind == "tcp":
        return 6, [tcp_layer(rng)]
    if kind == "udp":
        return 17, [UDP(sport=sport, dport=rng.choice([53000, 9999]))]
    inner = Ether(dst=rmac(rng), src=rmac(rng), type=rng.randrange(1536, 65536))
    if kind == "vxlan":
        return 17, [UDP(sport=sport, dport=4789), VXLAN(vni=rng.randrange(1 << 24), flags=0x08), inner]
    if kind == "geneve":
        options = []
        for _ in range(rng.randrange(3)):
            if rng.random() < 0.5:
                options.append(GeneveOptions(classid=0x0102, type=0x80, data=rng.randbytes(4)))
            else:
                options.append(GeneveOptions(classid=rng.randrange(65536), type=rng.randrange(256),
                                             data=rng.randbytes(4 * rng.randrange(3))))
        return 17, [UDP(sport=sport, dport=6081), GENEVE(vni=rng.randrange(1 << 24), proto=0x6558,
                                                         oam=rng.randrange(2), critical=rng.randrange(2),
                                                         options=options), inner]
    gre = GRE(key_present=rng.randrange(2), seqnum_present=rng.randrange(2), chksum_present=rng.randrange(2),
              proto=rng.choice([0x0800, 0x86DD, 0x6558]))
    if gre.key_present:
        gre.key = rng.getrandbits(32)
    if gre.seqnum_present:
        gre.sequence_number = rng.getrandbits(32)
    return 47, [gre]


def random_stack(rng: random.Random) -> Packet:
    layers: list[Packet] = [Ether(dst=rmac(rng), src=rmac(rng))]
    l2 = rng.choice(["plain", "dot1q", "qinq", "mpls"])
    if l2 == "dot1q":
        layers.append(Dot1Q(prio=rng.randrange(8), dei=rng.randrange(2), vlan=rng.randrange(4096)))
    elif l2 == "qinq":
        layers += [Dot1AD(prio=rng.randrange(8), dei=rng.randrange(2), vlan=rng.randrange(4096)),
                   Dot1Q(prio=rng.randrange(8), dei=rng.randrange(2), vlan=rng.randrange(4096))]
    elif l2 == "mpls":
        n = rng.randrange(1, 5)
        layers += [MPLS(label=rng.randrange(1 << 20), cos=rng.randrange(8), s=int(i == n - 1), ttl=rng.randrange(256))
                   for i in range(n)]
    v6 = rng.random() < 0.5
    proto, l4 = l4_layers(rng)
    if v6:
        layers += ipv6_chain(rng, proto)
    else:
        layers.append(ipv4_layer(rng, proto))
    layers += l4
    pkt = layers[0]
    for layer in layers[1:]:
        pkt = pkt / layer
    return pkt / Raw(rng.randbytes(rng.randrange(8)))


# -- scapy's view, in the spec's names -----------------------------------------------------------------------


def mac_int(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip_int(text: str) -> int:
    import ipaddress

    return int(ipaddress.ip_address(text))


def layers(pkt: Packet) -> Iterator[Packet]:
    layer: Packet = pkt
    while layer is not None and not isinstance(layer, Raw) and layer.name != "NoPayload":
        yield layer
        layer = layer.payload if layer.payload else None  # type: ignore[assignment]


def scapy_view(pkt: Packet) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """(field values, header offsets, valid TLV options) as the interpreter names them."""
    data = bytes(pkt)
    values: dict[str, int] = {}
    offsets: dict[str, int] = {}
    options: set[str] = set()
    counts: dict[str, int] = {}

    def put(name: str, layer: Packet, fields: dict[str, int]) -> None:
        offsets[name] = len(data) - len(bytes(layer))
        for k, v in fields.items():
            values[f"{name}.{k}"] = int(v)

    def first(name: str, fields: dict[str, int]) -> None:
        if name not in options:
            options.add(name)
            for k, v in fields.items():
                values[f"{name}.{k}"] = int(v)

    for layer in layers(pkt):
        if isinstance(layer, Ether):
            name = "ethernet" if "ethernet" not in offsets else "inner_ethernet"
            put(name, layer, {"dst": mac_int(layer.dst), "src": mac_int(layer.src), "ethertype": layer.type})
        elif isinstance(layer, Dot1Q | Dot1AD):
            i = counts["vlan"] = counts.get("vlan", -1) + 1
            put(f"vlan[{i}]", layer, {"pcp": layer.prio, "dei": layer.dei, "vid": layer.vlan,
                                      "ethertype": layer.type})
        elif isinstance(layer, MPLS):
            i = counts["mpls"] = counts.get("mpls", -1) + 1
            put(f"mpls[{i}]", layer, {"label": layer.label, "tc": layer.cos, "bos": layer.s, "ttl": layer.ttl})
        elif isinstance(layer, IP):
            put("ipv4", layer, {"version": layer.version, "ihl": layer.ihl, "dscp": layer.tos >> 2,
                                "ecn": layer.tos & 3, "total_len": layer.len, "identification": layer.id,
                                "flags": int(layer.flags), "frag_offset": layer.frag, "ttl": layer.ttl,
                                "protocol": layer.proto, "checksum": layer.chksum, "src": ip_int(layer.src),
                                "dst": ip_int(layer.dst)})
            for opt in layer.options:
                if isinstance(opt, IPOption_Router_Alert):
                    first("ipv4.router_alert", {"value": opt.alert})
        elif isinstance(layer, IPv6):
            put("ipv6", layer, {"version": layer.version, "traffic_class": layer.tc, "flow_label": layer.fl,
                                "payload_len": layer.plen, "next_hdr": layer.nh, "hop_limit": layer.hlim,
                                "src": ip_int(layer.src), "dst": ip_int(layer.dst)})
        elif isinstance(layer, IPv6ExtHdrHopByHop):
            put("ipv6_hop_by_hop", layer, {"next_hdr": layer.nh, "hdr_ext_len": layer.len})
            for opt in layer.options:
                if isinstance(opt, RouterAlert):
                    first("ipv6_hop_by_hop.router_alert", {"value": opt.value})
                elif isinstance(opt, Jumbo):
                    first("ipv6_hop_by_hop.jumbo_payload", {"jumbo_len": opt.jumboplen})
        elif isinstance(layer, IPv6ExtHdrDestOpt):
            name = "dest1" if "dest1" not in offsets and "ipv6_routing" not in offsets and \
                "ipv6_fragment" not in offsets else "dest2"
            put(name, layer, {"next_hdr": layer.nh, "hdr_ext_len": layer.len})
            for opt in layer.options:
                if isinstance(opt, HAO):
                    first(f"{name}.home_address", {"address": ip_int(opt.hoa)})
        elif isinstance(layer, IPv6ExtHdrRouting):
            put("ipv6_routing", layer, {"next_hdr": layer.nh, "hdr_ext_len": layer.len,
                                        "routing_type": layer.type, "segments_left": layer.segleft})
        elif isinstance(layer, IPv6ExtHdrFragment):
            put("ipv6_fragment", layer, {"next_hdr": layer.nh, "reserved": layer.res1, "frag_offset": layer.offset,
                                         "res": layer.res2, "m": layer.m, "identification": layer.id})
        elif isinstance(layer, TCP):
            flags = int(layer.flags)
            bits = {name: (flags >> (7 - i)) & 1
                    for i, name in enumerate(["cwr", "ece", "urg", "ack", "psh", "rst", "syn", "fin"])}
            put("tcp", layer, {"src_port": layer.sport, "dst_port": layer.dport, "seq_no": layer.seq,
                               "ack_no": layer.ack, "data_offset": layer.dataofs,
                               "reserved": layer.reserved << 1 | flags >> 8, **bits, "window": layer.window,
                               "checksum": layer.chksum, "urgent_ptr": layer.urgptr})
            for kind, value in layer.options:
                if kind == "MSS":
                    first("tcp.mss", {"value": value})
                elif kind == "WScale":
                    first("tcp.wscale", {"shift": value})
                elif kind == "SAckOK":
                    first("tcp.sack_permitted", {})
                elif kind == "Timestamp":
                    first("tcp.timestamps", {"tsval": value[0], "tsecr": value[1]})
        elif isinstance(layer, UDP):
            put("udp", layer, {"src_port": layer.sport, "dst_port": layer.dport, "length": layer.len,
                               "checksum": layer.chksum})
        elif isinstance(layer, VXLAN):
            raw = bytes(layer)
            put("vxlan", layer, {"flags": int(layer.flags), "reserved1": int.from_bytes(raw[1:4], "big"),
                                 "vni": layer.vni, "reserved2": layer.reserved2})
        elif isinstance(layer, GENEVE):
            put("geneve", layer, {"ver": layer.version, "opt_len": layer.optionlen, "o": layer.oam,
                                  "c": layer.critical, "rsvd": layer.reserved, "protocol_type": layer.proto,
                                  "vni": layer.vni, "reserved": layer.reserved2})
            for opt in layer.options:
                if opt.classid == 0x0102 and opt.type == 0x80:
                    v = int.from_bytes(opt.data[:4], "big")
                    first("geneve.ovn", {"rsv": v >> 31, "logical_ingress": (v >> 16) & 0x7FFF,
                                         "logical_egress": v & 0xFFFF})
        elif isinstance(layer, GRE):
            fields = {"c": layer.chksum_present, "r": layer.routing_present, "k": layer.key_present,
                      "s": layer.seqnum_present, "version": layer.version, "protocol": layer.proto,
                      "reserved0": layer.strict_route_source << 8 | layer.recursion_control << 5 | layer.flags}
            if layer.chksum_present:
                fields |= {"checksum": layer.chksum, "reserved1": layer.offset}
            if layer.key_present:
                fields["key_"] = layer.key
            if layer.seqnum_present:
                fields["sequence"] = layer.sequence_number
            put("gre", layer, fields)
            break  # the GRE payload is not parsed by this spec
        else:
            raise AssertionError(f"the test has no mapping for scapy layer {layer.name}")
    return values, offsets, options


@pytest.mark.parametrize("seed", range(8))
def test_dissection_matches_scapy(interp: Interpreter, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(60):
        built = random_stack(rng)
        frame = bytes(built)
        dissected = Ether(frame)  # scapy's own reading of the bytes, with every length field filled in
        parsed = interp.parse(frame, 1)
        assert parsed.error is None, (i, dissected.summary())
        values, offsets, options = scapy_view(dissected)
        got = parsed.fields()
        assert parsed.offsets == offsets, (i, dissected.summary())
        assert {k: got.get(k) for k in values} == values, (i, dissected.summary())
        got_options = {k.rsplit(".", 1)[0] for k in got if k.count(".") == 2} | \
            {o for o in ("tcp.sack_permitted",) if o in parsed.valid}
        assert got_options == options, (i, dissected.summary())
        extra = set(got) - set(values)
        assert not extra, (i, extra)


def test_ipv4_option_tail_is_carried(interp: Interpreter) -> None:
    ip = IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_Router_Alert(), IPOption_NOP()])
    frame = bytes(Ether() / ip / UDP(dport=9999) / Raw(b"x"))
    parsed = interp.parse(frame)
    header = IP(frame[14:])
    assert header.ihl == 7 and parsed.tails["ipv4.options"] == bytes(header)[20:28]
    assert parsed.fields()["ipv4.router_alert.value"] == 0


def test_truncated_stacks_are_parser_errors(interp: Interpreter) -> None:
    rng = random.Random(99)
    for _ in range(40):
        frame = bytes(random_stack(rng))
        full = interp.parse(frame)
        end = max(full.offsets.values())
        for n in sorted({0, 13, end - 1, end, rng.randrange(1, len(frame))}):
            p = interp.parse(frame[:n])
            assert p.error in (None, "truncated")
            if n < end:
                assert p.error == "truncated", n
