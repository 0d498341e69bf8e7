"""A TLV option the program never reads is skipped by its size on every target, like an unknown one, even when it
is too short for the fields its type declares (docs/spec-reference.md section 2, "TLV areas"): the xdp walker
recognises only the options its instance reads (found by a generated edge vector, issue 16)."""

from __future__ import annotations

import struct
from pathlib import Path

from c3po_compiler import load_program
from conformance.interpreter import Interpreter
from conformance.model import ControlState, PacketIn

from .conftest import ROOT, need_bpf


def _syn(options: bytes) -> bytes:
    """Ethernet/IPv4/TCP SYN with `options` (padded to 4 bytes), checksums right."""
    options += bytes(-len(options) % 4)
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, (5 + len(options) // 4) << 4, 0x02, 1024, 0, 0) + options
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, 0x0A000001, 0x0A000002)

    def csum(b: bytes) -> int:
        b += bytes(len(b) % 2)
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + tcp


def test_a_short_unread_option_is_skipped_on_xdp_as_by_the_reference(tmp_path: Path) -> None:
    need_bpf()
    from targets.xdp.driver import XdpDriver

    prog = load_program(ROOT / "spec/examples/tlv_parser.yaml").program
    frames = [
        _syn(bytes([8, 4, 0, 0]) + bytes([2, 4, 0x05, 0xB4])),  # timestamps (unread) 4 bytes, not 10; then MSS 1460
        _syn(bytes([2, 4, 0x05, 0xB4, 8, 4, 0, 0])),  # MSS, then the short timestamps
        _syn(bytes([2, 3, 0x05])),  # MSS (read) too short for its field: malformed everywhere
    ]
    ref = Interpreter(prog)
    ref.install(ControlState())
    want = [ref.run([PacketIn(1, f)], {})[0] for f in frames]
    assert want[0].verdict != "drop" and want[1].verdict != "drop"
    assert want[2].verdict == "drop"
    driver = XdpDriver()
    try:
        driver.open(prog, tmp_path)
        driver.install(ControlState())
        got = driver.run([PacketIn(1, f) for f in frames], {})
    finally:
        driver.close()
    assert [(r.verdict, r.data) for r in got] == [(w.verdict, w.data) for w in want]
