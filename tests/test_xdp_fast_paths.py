"""The common cases through a header with a variable part get parse paths of their own, tested first as one test
(emitter.fast_paths: IPv4 with IHL 5 and version 4 is `cur + 20 <= end && cur[0] == 0x45`; on to UDP, one bounds
check for both headers and the protocol's value), and each path's copy of the control reads the fields it fixed
as constants (and the general copy beside it, the values left to them: IHL 6..15 there). Checked as text, and in
the kernel against the reference interpreter on every combination of version and IHL around the fast case, with
good and bad checksums, options present and truncated, TTLs that take each branch of a control that reads the
fixed fields, and for paths over two or three headers every frame length around their bounds."""

from __future__ import annotations

import struct
from pathlib import Path

from c3po_compiler import load_program
from conformance.checksums import ipv4_header_checksum
from targets.xdp import XdpTarget
from targets.xdp.emitter import Emitter

from .conftest import ROOT, kernel_matches_interpreter, need_bpf

SPEC = """
c3po: 1
program: fastleaf
include: [std/ethernet, std/ipv4]
parser:
  start: ethernet
  on_error: {default: drop, checksum: drop, reject: to_host}
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}, default: accept}
    ipv4:
      extract: ipv4
      verify: [ipv4]
      select: ipv4.version
      cases: {4: accept}
      default: reject
control:
  - if: "valid(ipv4) && (ipv4.ihl != 5 || ipv4.ttl <= 1)"
    then: ["forward((bit<16>) ipv4.ihl + 100)"]
    else:
      - if: "valid(ipv4)"
        then: ["ipv4.ttl = ipv4.ttl - 1", "update_checksum(ipv4)", "forward((bit<16>) ipv4.version + (bit<16>) ipv4.ihl)"]
"""


def _spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "fastleaf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _frame(first: int, ttl: int, options: bytes = b"", good: bool = True, pad: int = 26) -> bytes:
    h = bytearray(struct.pack("!BBHHHBBH4s4s", first, 0, 60, 7, 0, ttl, 17, 0, b"\x0a\0\0\1", b"\x0a\0\0\2"))
    h += options
    h[10:12] = (ipv4_header_checksum(bytes(h)) ^ (0 if good else 0x0100)).to_bytes(2, "big")
    return bytes(6 * [2]) + bytes(6 * [4]) + b"\x08\x00" + bytes(h) + bytes(range(pad))


def test_the_common_case_is_one_byte_compare_and_its_control_knows_the_fields() -> None:
    c = XdpTarget().render(load_program(ROOT / "spec" / "examples" / "router.yaml").program)["router.bpf.c"]
    st = c[c.index("st_ipv4: "):c.index("st_ipv6: ")]
    assert "if (cur + 20 <= end && cur[0] == 0x45) {" in st
    assert st.index("goto parsed_st_ipv4__fixed;") < st.index("cur + 20 > end)") < st.index("goto parsed_st_ipv4;")
    fixed = c[c.index("parsed_st_ipv4__fixed:;"):c.index("parsed_st_ipv4:;")]
    general = c[c.index("parsed_st_ipv4:;"):c.index("parsed_st_ipv6:;")]
    # the router's `ipv4.ttl <= 1 || ipv4.ihl != 5`: the IHL is 5 on the fast path, and not 5 on the other
    assert "if ((c3po_get(h_ipv4 + 8, 1, 0, 8) <= 1ULL)) {" in fixed and "h_ipv4 + 0, 1, 0, 4" not in fixed
    assert "/* spec/examples/router.yaml:95: true on this path */" in general
    assert general.count("return C3PO_RET(") == 1 and "apply router_mac" not in general  # to the host, no more


def test_the_values_each_path_leaves_and_a_written_field_has_none(tmp_path: Path) -> None:
    written = SPEC.replace('"ipv4.ttl = ipv4.ttl - 1"', '"ipv4.ttl = ipv4.ttl - 1", "ipv4.version = 4"')
    em = Emitter(load_program(_spec(tmp_path, written)).program)
    em.emit()
    options = frozenset(range(6, 16))  # IHL 6..15: 4..40 bytes of options; below 5, bad_length
    assert em.leaf_values == {"parsed_st_ipv4__fixed": {("ipv4", "ihl"): {5}},
                              "parsed_st_ipv4": {("ipv4", "ihl"): options}}
    em = Emitter(load_program(_spec(tmp_path)).program)
    em.emit()
    assert em.leaf_values == {"parsed_st_ipv4__fixed": {("ipv4", "ihl"): {5}, ("ipv4", "version"): {4}},
                              "parsed_st_ipv4": {("ipv4", "ihl"): options, ("ipv4", "version"): {4}}}


def test_the_kernel_agrees_with_the_interpreter_around_the_fast_case(tmp_path: Path) -> None:
    need_bpf()
    frames = []
    for first in (0x45, 0x46, 0x47, 0x4F, 0x44, 0x40, 0x55, 0x65, 0x35, 0x05, 0xC5, 0x56):
        ihl = first & 15
        options = bytes([1] * max(0, 4 * ihl - 20))  # NOPs
        for ttl in (0, 1, 2, 64):
            for good in (True, False):
                frames.append(_frame(first, ttl, options, good))
        frames.append(_frame(first, 64, options, pad=0)[:14 + 20 + len(options) - 1])  # the options cut short
    frames.append(_frame(0x45, 64)[:14 + 19])
    want = kernel_matches_interpreter(load_program(_spec(tmp_path)).program, frames, tmp_path)
    ports = {port for verdict, port, _ in want if verdict == "forward"}
    assert {9, 105, 106, 115} <= ports  # routed (4 + 5), TTL expiring (100 + 5), options (100 + 6, 100 + 15)
    assert {verdict for verdict, _, _ in want} >= {"forward", "drop", "to_host"}


CHAIN = """
c3po: 1
program: fastchain
include: [std/ethernet, std/ipv4, std/udp, std/tcp]
metadata: {port: 16}
parser:
  start: ethernet
  on_error: {default: drop, checksum: to_host}
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}, default: accept}
    ipv4:
      extract: ipv4
      verify: [ipv4]
      select: [ipv4.frag_offset, ipv4.protocol]
      cases: {"0, 17": udp, "0, 6": tcp, "_, 17": accept}
      default: accept
    udp: {extract: udp}
    tcp: {extract: tcp}
control:
  - if: "valid(udp)"
    then: ["meta.port = udp.dst_port"]
  - if: "valid(tcp)"
    then: ["meta.port = tcp.dst_port + (bit<16>) tcp.data_offset"]
  - if: "valid(ipv4) && ipv4.ihl == 5 && ipv4.protocol == 17 && ipv4.frag_offset == 0"
    then: ["forward(meta.port + 1000)"]
    else:
      - if: "valid(ipv4)"
        then: ["forward(meta.port + (bit<16>) ipv4.ihl + (bit<16>) ipv4.protocol)"]
"""


def _l4_frame(ihl: int, proto: int, frag: int = 0, doff: int = 5, good: bool = True, pad: int = 8) -> bytes:
    options = bytes([1] * max(0, 4 * ihl - 20))
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 60, 7, frag, 64, proto, 0, b"\x0a\0\0\1",
                              b"\x0a\0\0\2")) + options
    h[10:12] = (ipv4_header_checksum(bytes(h)) ^ (0 if good else 0x0100)).to_bytes(2, "big")
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", 1234, 80, 1, 2, doff << 4, 0x10, 1000, 0, 0) + bytes([1] * max(0, 4 * doff - 20))
    else:
        l4 = struct.pack("!HHHH", 53, 4000, 8 + pad, 0)
    return bytes(6 * [2]) + bytes(6 * [4]) + b"\x08\x00" + bytes(h) + l4 + bytes(range(pad))


def test_a_path_over_several_headers_is_one_test_and_knows_their_values(tmp_path: Path) -> None:
    prog = load_program(_spec(tmp_path, CHAIN)).program
    c = XdpTarget().render(prog)["fastchain.bpf.c"]
    st = c[c.index("st_ipv4: "):c.index("st_udp: ")]
    # UDP: one bounds check for both headers, IHL 5, not a fragment, protocol 17; TCP: its data offset too
    assert ("if (cur + 28 <= end && (c3po_get(cur + 0, 1, 0, 4)) == 5ULL && (c3po_get(cur + 6, 2, 0, 13)) == 0ULL && "
            "(c3po_get(cur + 9, 1, 0, 8)) == 0x11ULL) {") in st
    assert "if (cur + 40 <= end && " in st and "(c3po_get((cur + 20) + 12, 1, 4, 4)) == 5ULL) {" in st
    assert st.index("goto parsed_st_udp__fixed_st_ipv4;") < st.index("cur + 20 > end)")
    em = Emitter(prog)
    em.emit()
    assert em.leaf_values["parsed_st_udp__fixed_st_ipv4"] == {("ipv4", "ihl"): {5}, ("ipv4", "frag_offset"): {0},
                                                              ("ipv4", "protocol"): {17}}
    assert em.leaf_values["parsed_st_tcp__fixed_st_ipv4"] == {("ipv4", "ihl"): {5}, ("ipv4", "frag_offset"): {0},
                                                              ("ipv4", "protocol"): {6}, ("tcp", "data_offset"): {5}}
    # beside the UDP path: the only way to udp, and IPv4 is the path's only variable header, so not IHL 5 there;
    # beside the TCP path, two variable headers: either may have failed, so IHL 5 stays possible
    options = frozenset(range(6, 16))
    assert em.leaf_values["parsed_st_udp"] == {("ipv4", "ihl"): options, ("ipv4", "frag_offset"): {0},
                                               ("ipv4", "protocol"): {17}}
    assert em.leaf_values["parsed_st_tcp"][("ipv4", "ihl")] == options | {5}
    fast_udp = c[c.index("parsed_st_udp__fixed_st_ipv4:;"):]
    fast_udp = fast_udp[:fast_udp.index("\nparsed_")]
    # the control's test of IHL 5, UDP and not a fragment folds: straight to port + 1000
    assert "h_ipv4 + 0, 1, 0, 4" not in fast_udp and "h_ipv4 + 9," not in fast_udp and "0x3e8ULL" in fast_udp


def test_the_kernel_agrees_with_the_interpreter_around_the_paths(tmp_path: Path) -> None:
    need_bpf()
    frames = []
    for ihl in (4, 5, 6, 15):
        for proto in (17, 6, 1):
            for frag in (0, 1, 0x2000):
                for doff in ((5, 6, 4) if proto == 6 else (5,)):
                    for good in (True, False):
                        frames.append(_l4_frame(ihl, proto, frag, doff, good))
                    whole = _l4_frame(ihl, proto, frag, doff, pad=0)
                    for cut in (1, 2, 8, 9):  # every bound around the headers' end: the fast test's sum
                        frames.append(whole[:len(whole) - cut])
                    frames.append(whole)
                    frames.append(_l4_frame(ihl, proto, frag, doff, False, pad=0)[:-1])  # which error comes first
    frames.append(_l4_frame(5, 17)[:14 + 19])
    want = kernel_matches_interpreter(load_program(_spec(tmp_path, CHAIN)).program, frames, tmp_path)
    ports = {port for verdict, port, _ in want if verdict == "forward"}
    assert {5000, 80 + 5 + 5 + 6, 80 + 6 + 5 + 6, 4000 + 6 + 17} <= ports
    assert {verdict for verdict, _, _ in want} >= {"forward", "drop", "to_host"}
