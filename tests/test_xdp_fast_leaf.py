"""A header with a variable part whose state's select then accepts gets a parse path of its own for the common
case, tested first (emitter.fast_leaf: IPv4 with IHL 5 and version 4 is `h_ipv4[0] == 0x45`), and that path's copy
of the control reads the fields it fixed as constants (and the other copy, the values left to them: IHL 6..15
there). Checked as text, and in the kernel against the reference
interpreter on every combination of version and IHL around the fast case, with good and bad checksums, options
present and truncated, and TTLs that take each branch of a control that reads the fixed fields."""

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
    assert "if (h_ipv4[0] == 0x45) {" in st
    assert st.index("goto parsed_st_ipv4__fixed;") < st.index("goto parsed_st_ipv4;")
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
