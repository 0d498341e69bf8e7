"""The library's SCTP, GTP-U, PPPoE, NSH, SRv6 and IP-in-IPv6 headers against an independent dissector: scapy.

As tests/test_interpreter_scapy.py does for the older protocols: stacks built by scapy from seeded random field
values are parsed by the reference interpreter, and every field it extracts must equal scapy's dissection of the
same bytes, at the byte offset scapy found the layer at (so a field order, a width, the GTP-U optional group, the
NSH length arithmetic or an SRH segment count that disagrees with the protocol cannot hide behind every target
agreeing with the interpreter). Then each suite program's rewrite (conformance/suite/proto_*.yaml) is run and its
output dissected by scapy, which recomputes the checksums the program claims to keep valid.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.nsh import NSH, NSHTLV
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit
from scapy.packet import Packet, Raw

from c3po_compiler import load_program
from conformance.interpreter import Interpreter
from conformance.model import PacketIn, Result

from .conftest import ROOT
from .test_interpreter_scapy import rv4, rv6

SUITE = ROOT / "conformance" / "suite"

# Every new header along one parse graph; the control reads the NSH TLV option so the MD type 2 area is walked.
SPEC = """
c3po: 1
program: dissect_std
include: [std/ethernet, std/ipv4, std/ip_in_ipv6, std/udp, std/sctp, std/gtpu, std/pppoe, std/nsh, std/srv6]
instances:
  segments: {type: srv6_segment, stack: 3}
  inner_ipv4: {type: ipv4}
  inner_ipv6: {type: ipv6}
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {0x0800: ipv4, "0x86dd": ipv6, 0x8864: pppoe, 0x894f: nsh}
      default: accept
    pppoe:
      extract: pppoe
      next: ppp
    ppp:
      extract: ppp
      select: ppp.protocol
      cases: {0x0021: ipv4, 0x0057: ipv6}
      default: accept
    nsh:
      extract: nsh
      select: nsh.next_protocol
      cases: {1: ipv4, 2: ipv6}
      default: accept
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {17: udp, 132: sctp}
      default: accept
    ipv6:
      extract: ipv6
      select: ipv6.next_hdr
      cases: {17: udp, 132: sctp, 43: srh, 4: inner_ipv4, 41: inner_ipv6}
      default: accept
    srh:
      extract: ipv6_srh
      select: [ipv6_srh.routing_type, ipv6_srh.last_entry, ipv6_srh.hdr_ext_len]
      cases: {"4, 0, 2": seg_1, "4, 1, 4": seg_2, "4, 2, 6": seg_3}
      default: accept
    seg_3:
      extract: segments
      next: seg_2
    seg_2:
      extract: segments
      next: seg_1
    seg_1:
      extract: segments
      select: ipv6_srh.next_hdr
      cases: {4: inner_ipv4, 41: inner_ipv6, 17: udp}
      default: accept
    udp:
      extract: udp
      select: udp.dst_port
      cases: {2152: gtpu}
      default: accept
    gtpu:
      extract: gtpu
      select: [gtpu.message_type, gtpu.next_ext_type]
      cases: {"255, 0x85": pdu_session, "255, 0": gtpu_payload}
      default: accept
    pdu_session:
      extract: gtpu_pdu_session
      select: gtpu_pdu_session.next_ext_type
      cases: {0: gtpu_payload}
      default: accept
    gtpu_payload:
      select: lookahead(4)
      cases: {4: inner_ipv4, 6: inner_ipv6}
      default: accept
    sctp:
      extract: sctp
      next: sctp_chunk
    sctp_chunk:
      extract: sctp_chunk
    inner_ipv4:
      extract: inner_ipv4
    inner_ipv6:
      extract: inner_ipv6
control:
  - if: "valid(nsh.tenant_id)"
    then: [to_host]
"""


@pytest.fixture(scope="module")
def interp(tmp_path_factory: pytest.TempPathFactory) -> Interpreter:
    path = tmp_path_factory.mktemp("dissect_std") / "dissect_std.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return Interpreter(load_program(path).program)


# -- random stacks -------------------------------------------------------------------------------------------


def inner_ip(rng: random.Random) -> Packet:
    if rng.random() < 0.5:
        return IP(src=rv4(rng), dst=rv4(rng), ttl=rng.randrange(256), id=rng.randrange(65536), proto=59)
    return IPv6(src=rv6(rng), dst=rv6(rng), hlim=rng.randrange(256), fl=rng.randrange(1 << 20), nh=59)


def gtpu_layers(rng: random.Random) -> list[Packet]:
    e, s, pn = rng.randrange(2), rng.randrange(2), rng.randrange(2)
    gtp = GTP_U_Header(E=e, S=s, PN=pn, gtp_type=255, teid=rng.getrandbits(32))
    if e or s or pn:
        gtp.seq, gtp.npdu = rng.randrange(65536), rng.randrange(256)
        gtp.next_ex = 0x85 if e else 0
    layers: list[Packet] = [gtp]
    if e:
        layers.append(GTPPDUSessionContainer(type=rng.randrange(2), QFI=rng.randrange(64), NextExtHdr=0))
    return [*layers, inner_ip(rng)]


def l4_layers(rng: random.Random) -> list[Packet]:
    kind = rng.choice(["sctp_data", "sctp_init", "gtpu", "udp"])
    if kind.startswith("sctp"):
        chunk = SCTPChunkData(data=rng.randbytes(rng.randrange(1, 9)), tsn=rng.getrandbits(32),
                              beginning=rng.randrange(2), ending=rng.randrange(2)) if kind == "sctp_data" \
            else SCTPChunkInit(init_tag=rng.getrandbits(32))
        return [SCTP(sport=rng.randrange(65536), dport=rng.randrange(65536), tag=rng.getrandbits(32)), chunk]
    if kind == "gtpu":
        return [UDP(sport=rng.randrange(1024, 65536), dport=2152), *gtpu_layers(rng)]
    return [UDP(sport=rng.randrange(1024, 65536), dport=rng.choice([53, 9999]))]


def ip_layers(rng: random.Random) -> list[Packet]:
    if rng.random() < 0.4:
        return [IP(src=rv4(rng), dst=rv4(rng), ttl=rng.randrange(256), id=rng.randrange(65536)), *l4_layers(rng)]
    outer = IPv6(src=rv6(rng), dst=rv6(rng), hlim=rng.randrange(256), tc=rng.randrange(256))
    kind = rng.choice(["l4", "tunnel", "srh"])
    if kind == "l4":
        return [outer, *l4_layers(rng)]
    if kind == "tunnel":
        return [outer, inner_ip(rng)]
    srh = IPv6ExtHdrSegmentRouting(addresses=[rv6(rng) for _ in range(rng.randrange(1, 4))],
                                   segleft=rng.randrange(3), tag=rng.randrange(65536))
    return [outer, srh, rng.choice([inner_ip(rng), UDP(sport=1, dport=rng.choice([53, 80]))])]


def random_stack(rng: random.Random) -> Packet:
    layers: list[Packet] = [Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")]
    l2 = rng.choice(["plain", "pppoe", "nsh1", "nsh2"])
    if l2 == "pppoe":
        layers += [PPPoE(sessionid=rng.randrange(65536)), PPP()]
    elif l2 == "nsh1":
        layers.append(NSH(mdtype=1, spi=rng.getrandbits(24), si=rng.randrange(256), ttl=rng.randrange(64),
                          oam=rng.randrange(2), context_header=rng.randbytes(16)))
    elif l2 == "nsh2":
        tlvs = [NSHTLV(class_=rng.choice([0, 0, 0x100]), type=rng.choice([5, 5, 9]),
                       metadata=[rng.getrandbits(32) for _ in range(rng.randrange(1, 3))])
                for _ in range(rng.randrange(3))]
        layers.append(NSH(mdtype=2, spi=rng.getrandbits(24), si=rng.randrange(256), ttl=rng.randrange(64),
                          vlch=tlvs))
    rest = ip_layers(rng)
    if l2 == "pppoe":
        layers[-1].proto = 0x0021 if isinstance(rest[0], IP) else 0x0057
    elif l2.startswith("nsh"):
        layers[-1].nextproto = 1 if isinstance(rest[0], IP) else 2
    pkt = layers[0]
    for layer in [*layers[1:], *rest]:
        pkt = pkt / layer
    return pkt / Raw(rng.randbytes(rng.randrange(6)))


# -- scapy's view, in the spec's names -----------------------------------------------------------------------


def addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


def scapy_view(pkt: Packet) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """(field values, header offsets, valid TLV options) as the interpreter names them; stops where the spec's
    parse graph stops (after an inner IP header, after the first SCTP chunk)."""
    data = bytes(pkt)
    values: dict[str, int] = {}
    offsets: dict[str, int] = {}
    options: set[str] = set()

    def put(name: str, layer: Packet, fields: dict[str, int]) -> None:
        offsets[name] = len(data) - len(bytes(layer))
        values.update({f"{name}.{k}": int(v) for k, v in fields.items()})

    layer: Packet | None = pkt
    while layer is not None and not isinstance(layer, Raw) and layer.name != "NoPayload":
        raw = bytes(layer)
        if isinstance(layer, Ether):
            put("ethernet", layer, {"dst": int(layer.dst.replace(":", ""), 16),
                                    "src": int(layer.src.replace(":", ""), 16), "ethertype": layer.type})
        elif isinstance(layer, PPPoE):
            put("pppoe", layer, {"ver": layer.version, "type_": layer.type, "code": layer.code,
                                 "session_id": layer.sessionid, "length": layer.len})
        elif isinstance(layer, PPP):
            put("ppp", layer, {"protocol": layer.proto})
        elif isinstance(layer, NSH):
            fields = {"ver": layer.ver, "o": layer.oam, "u": layer.unused1, "ttl": layer.ttl,
                      "length": layer.length, "unassigned": layer.unused2, "md_type": layer.mdtype,
                      "next_protocol": layer.nextproto, "spi": layer.spi, "si": layer.si}
            if layer.mdtype == 1:
                ctx = bytes(layer.context_header)
                fields |= {f"context{i + 1}": int.from_bytes(ctx[4 * i:4 * i + 4], "big") for i in range(4)}
            put("nsh", layer, fields)
            for tlv in layer.vlch or []:
                if tlv.class_ == 0 and tlv.type == 5 and "nsh.tenant_id" not in options:
                    options.add("nsh.tenant_id")
                    values["nsh.tenant_id.value"] = tlv.metadata[0]
        elif isinstance(layer, IP):
            name = "ipv4" if "ipv4" not in offsets and "ipv6" not in offsets else "inner_ipv4"
            put(name, layer, {"version": layer.version, "ihl": layer.ihl, "dscp": layer.tos >> 2,
                              "ecn": layer.tos & 3, "total_len": layer.len, "identification": layer.id,
                              "flags": int(layer.flags), "frag_offset": layer.frag, "ttl": layer.ttl,
                              "protocol": layer.proto, "checksum": layer.chksum, "src": addr(layer.src),
                              "dst": addr(layer.dst)})
            if name == "inner_ipv4":
                break
        elif isinstance(layer, IPv6):
            name = "ipv6" if "ipv4" not in offsets and "ipv6" not in offsets else "inner_ipv6"
            put(name, layer, {"version": layer.version, "traffic_class": layer.tc, "flow_label": layer.fl,
                              "payload_len": layer.plen, "next_hdr": layer.nh, "hop_limit": layer.hlim,
                              "src": addr(layer.src), "dst": addr(layer.dst)})
            if name == "inner_ipv6":
                break
        elif isinstance(layer, IPv6ExtHdrSegmentRouting):
            put("ipv6_srh", layer, {"next_hdr": layer.nh, "hdr_ext_len": layer.len, "routing_type": layer.type,
                                    "segments_left": layer.segleft, "last_entry": layer.lastentry,
                                    "flags": raw[5], "tag": layer.tag})
            start = offsets["ipv6_srh"] + 8
            for i, sid in enumerate(layer.addresses):  # Segment List[0] first on the wire
                offsets[f"segments[{i}]"] = start + 16 * i
                values[f"segments[{i}].sid"] = addr(sid)
        elif isinstance(layer, UDP):
            put("udp", layer, {"src_port": layer.sport, "dst_port": layer.dport, "length": layer.len,
                               "checksum": layer.chksum})
        elif isinstance(layer, GTP_U_Header):
            fields = {"version": layer.version, "pt": layer.PT, "spare": layer.reserved, "e": layer.E,
                      "s": layer.S, "pn": layer.PN, "message_type": layer.gtp_type, "length": layer.length,
                      "teid": layer.teid}
            if layer.E or layer.S or layer.PN:
                fields |= {"sequence": layer.seq, "npdu_number": layer.npdu, "next_ext_type": layer.next_ex}
            put("gtpu", layer, fields)
        elif isinstance(layer, GTPPDUSessionContainer):
            put("gtpu_pdu_session", layer, {"length": layer.ExtHdrLen, "pdu_type": layer.type,
                                            "indicators": raw[1] & 0x0F, "ppp_rqi": raw[2] >> 6,
                                            "qfi": layer.QFI, "next_ext_type": layer.NextExtHdr})
        elif isinstance(layer, SCTP):
            put("sctp", layer, {"src_port": layer.sport, "dst_port": layer.dport,
                                "verification_tag": layer.tag, "checksum": layer.chksum})
        elif isinstance(layer, SCTPChunkData | SCTPChunkInit):
            put("sctp_chunk", layer, {"type_": layer.type, "flags": raw[1], "length": layer.len})
            break  # the spec reads the first chunk's header only
        else:
            raise AssertionError(f"the test has no mapping for scapy layer {layer.name}")
        layer = layer.payload if layer.payload else None
    return values, offsets, options


@pytest.mark.parametrize("seed", range(6))
def test_dissection_matches_scapy(interp: Interpreter, seed: int) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    for i in range(80):
        frame = bytes(random_stack(rng))
        dissected = Ether(frame)  # scapy's own reading of the bytes, every length field filled in
        parsed = interp.parse(frame, 1)
        assert parsed.error is None, (i, dissected.summary())
        values, offsets, options = scapy_view(dissected)
        got = parsed.fields()
        assert parsed.offsets == offsets, (i, dissected.summary())
        assert {k: got.get(k) for k in values} == values, (i, dissected.summary())
        assert {k.rsplit(".", 1)[0] for k in got if k.count(".") == 2} == options, (i, dissected.summary())
        assert not set(got) - set(values), (i, set(got) - set(values))
        seen |= set(offsets) | options
    # every header of the new library files occurs in each seed's frames (the test is not vacuous)
    assert {"pppoe", "ppp", "nsh", "sctp", "sctp_chunk", "gtpu", "ipv6_srh", "segments[0]", "inner_ipv4",
            "inner_ipv6"} <= seen, seen


def test_nsh_md1_with_a_wrong_length_is_bad_length(interp: Interpreter) -> None:
    """RFC 8300 section 2.4: MD type 1 has length 6; the library's length arithmetic makes any other a parser
    error instead of reading the context at the wrong place."""
    nsh = NSH(mdtype=1, nextproto=1, context_header=b"\x11" * 16)
    frame = bytearray(bytes(eth() / nsh / IP()))
    assert interp.parse(bytes(frame)).error is None
    frame[14 + 1] = (frame[15] & 0xC0) | 5  # length 6 -> 5 (the 6 bits after TTL's top two)
    assert interp.parse(bytes(frame)).error == "bad_length"


def test_gtpu_fields_after_the_group_move_with_it(interp: Interpreter) -> None:
    """With E, S and PN all clear the 4 optional bytes are absent and the inner packet starts 4 bytes earlier."""
    inner = IP(src="10.0.0.1", dst="10.0.0.2")
    short = interp.parse(bytes(eth() / IP() / UDP(dport=2152) / GTP_U_Header(teid=1) / inner))
    long = interp.parse(bytes(eth() / IP() / UDP(dport=2152) / GTP_U_Header(S=1, seq=9, teid=1) / inner))
    assert long.offsets["inner_ipv4"] - short.offsets["inner_ipv4"] == 4
    assert long.fields()["gtpu.sequence"] == 9 and "gtpu.sequence" not in short.fields()


# -- the suite programs' rewrites, judged by scapy -----------------------------------------------------------


def eth(ethertype: int | None = None) -> Ether:
    """An Ethernet header with fixed addresses (scapy would otherwise look up the destination's)."""
    header = Ether(dst="02:00:00:00:00:09", src="02:00:00:00:00:08")
    if ethertype is not None:
        header.type = ethertype
    return header


def run_suite(name: str, frame: Packet, port: int = 1) -> Result:
    prog = load_program(SUITE / f"proto_{name}.yaml").program
    [result] = Interpreter(prog).run([PacketIn(port, bytes(frame))], {})
    return result


def valid_ipv4_checksum(data: bytes) -> bool:
    """scapy recomputes the header checksum of the bytes it is given; the program's must equal it."""
    ip = IP(data)
    written = ip.chksum
    del ip.chksum
    return IP(bytes(ip)).chksum == written


def test_srv6_end_advances_to_the_next_segment() -> None:
    sids = ["fc00::a", "fc00::b", "fc00::1"]
    srh = IPv6ExtHdrSegmentRouting(addresses=sids, segleft=2)
    frame = eth() / IPv6(src="2001:db8::1", dst="fc00::1", hlim=9) / srh / IP(dst="10.1.1.1")
    result = run_suite("srv6", frame)
    assert (result.verdict, result.port) == ("forward", 2)
    out = Ether(result.data)
    assert out[IPv6].dst == "fc00::b" and out[IPv6].hlim == 8
    assert out[IPv6ExtHdrSegmentRouting].segleft == 1 and out[IPv6ExtHdrSegmentRouting].addresses == sids
    assert out[IP].dst == "10.1.1.1"


def test_gtpu_decap_leaves_the_inner_packet() -> None:
    inner = IP(src="10.9.0.1", dst="10.9.0.2", ttl=33) / UDP(sport=5, dport=6) / Raw(b"user data")
    frame = eth() / IP() / UDP(dport=2152) / \
        GTP_U_Header(E=1, teid=0x100, next_ex=0x85) / GTPPDUSessionContainer(type=0, QFI=9) / inner
    result = run_suite("gtpu", frame)
    assert (result.verdict, result.port) == ("forward", 7)
    assert result.data == bytes(eth() / inner)
    retag = run_suite("gtpu", eth() / IP() / UDP(dport=2152) / GTP_U_Header(teid=0x100) / inner)
    assert (retag.verdict, retag.port) == ("forward", 1) and Ether(retag.data)[GTP_U_Header].teid == 0x200


def test_pppoe_session_forwarding_and_termination() -> None:
    ip = IP(src="192.0.2.1", dst="198.51.100.7", ttl=20) / UDP(dport=53) / Raw(b"q")
    fwd = run_suite("pppoe", eth() / PPPoE(sessionid=1) / PPP(proto=0x0021) / ip)
    assert (fwd.verdict, fwd.port) == ("forward", 4)
    out = Ether(fwd.data)
    assert out[PPPoE].sessionid == 1 and out[IP].ttl == 19
    assert valid_ipv4_checksum(bytes(out[IP]))
    term = run_suite("pppoe", eth() / PPPoE(sessionid=2) / PPP(proto=0x0021) / ip)
    assert term.verdict == "to_host"
    assert term.data == bytes(eth(0x0800) / ip)


def test_nsh_service_function_forwarding() -> None:
    base = NSH(mdtype=1, spi=42, si=255, ttl=10, nextproto=1, context_header=b"\0" * 16)
    result = run_suite("nsh", eth() / base / IP())
    assert (result.verdict, result.port) == ("forward", 2)
    out = Ether(result.data)[NSH]
    assert (out.si, out.ttl, out.spi) == (254, 9, 42)
    tenant = NSH(mdtype=2, spi=1, si=1, ttl=10, nextproto=1, vlch=[NSHTLV(class_=0, type=5, metadata=[0xBEEF])])
    assert run_suite("nsh", eth() / tenant / IP()).port == 9


def test_ip_in_ipv6_decap_rewrites_the_ethertype_and_inner_ttl() -> None:
    inner = IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / UDP(dport=7)
    frame = eth() / IPv6(dst="2001:db8:1:2::5") / inner
    result = run_suite("ip_in_ipv6", frame)
    assert (result.verdict, result.port) == ("forward", 3)  # the /64 wins over the /48
    out = Ether(result.data)
    assert out.type == 0x0800 and out[IP].ttl == 63 and valid_ipv4_checksum(bytes(out[IP]))
    six = run_suite("ip_in_ipv6", eth() / IPv6(dst="2001:db8:1::9") / IPv6(hlim=5))
    assert (six.verdict, six.port) == ("forward", 2) and Ether(six.data)[IPv6].hlim == 4
    assert Ether(six.data).type == 0x86DD


def test_sctp_dscp_mark_keeps_the_ipv4_checksum_valid() -> None:
    frame = eth() / IP(src="10.0.0.1", dst="10.0.0.2") / SCTP(dport=5060, tag=1) / SCTPChunkData(data=b"INVITE")
    result = run_suite("sctp", frame)
    assert (result.verdict, result.port) == ("forward", 3)
    out = Ether(result.data)
    assert out[IP].tos >> 2 == 46 and valid_ipv4_checksum(bytes(out[IP]))
    init = eth() / IP() / SCTP(dport=3868, tag=0) / SCTPChunkInit()
    assert run_suite("sctp", init).verdict == "drop"


def test_every_suite_program_includes_the_library_by_name() -> None:
    """They are the examples of `include: [std/NAME]`; a relative path would not work in an installation."""
    for name in ("sctp", "gtpu", "pppoe", "nsh", "srv6", "ip_in_ipv6"):
        text = Path(SUITE / f"proto_{name}.yaml").read_text(encoding="utf-8")
        assert f"std/{name}" in text and "../" not in text.split("include:")[1].splitlines()[0]
