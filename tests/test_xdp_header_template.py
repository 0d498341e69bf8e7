"""New headers built from constants (targets/xdp/images.py): the image's bytes are what the field-by-field
writes would leave, the checksum's compile-time partial sum gives the full RFC 1071 sum (0x0000 and
0xffff edges included), and the VXLAN gateway's encapsulated frame leaves the kernel as the reference says."""

from __future__ import annotations

import random
from pathlib import Path

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn
from targets.xdp import images
from tests.conftest import ROOT, need_bpf

VXLAN = ROOT / "spec/examples/vxlan_gateway.yaml"
GRE = ROOT / "spec/examples/gre_tunnel.yaml"


def by_fields(inst: ir.Instance, values: dict[str, int]) -> bytes:
    """The header's bytes after zeroing it and writing each field bit by bit, most significant bit first (the
    field-by-field code's result, computed independently of images.Image)."""
    bits = [0] * (8 * inst.type.fixed_bytes)
    for name, v in values.items():
        f = inst.type.field(name)
        assert f is not None
        for k in range(f.width):
            bits[f.offset + k] = (v >> (f.width - 1 - k)) & 1
    return bytes(sum(bits[8 * i + k] << (7 - k) for k in range(8)) for i in range(len(bits) // 8))


def image(inst: ir.Instance, consts: dict[str, int], dynamic: tuple[str, ...] = ()) -> images.Image:
    img = images.Image(inst)
    for name, v in consts.items():
        f = inst.type.field(name)
        assert f is not None
        img.put(f, v)
    for name in dynamic:
        f = inst.type.field(name)
        assert f is not None
        img.dynamic |= img.bytes_of(f)
    return img


IPV4_CONSTS = {"version": 4, "ihl": 5, "flags": 2, "ttl": 64, "protocol": 17}
IPV4_DYNAMIC = ("total_len", "src", "dst")


def test_template_bytes_are_the_field_writes() -> None:
    vx = load_program(VXLAN).program
    gre = load_program(GRE).program
    cases = [
        (vx.instances["outer_ipv4"], IPV4_CONSTS),  # version/ihl and flags/frag_offset share bytes
        (vx.instances["outer_ipv4"], {"ecn": 3, "dscp": 0x2e, "frag_offset": 0x1abc, "flags": 5, "ttl": 1}),
        (vx.instances["outer_udp"], {"dst_port": 4789, "checksum": 0}),
        (vx.instances["vxlan"], {"flags": 0x08}),
        (gre.instances["gre_encap"], {"k": 1, "s": 1, "protocol": 0x0800}),  # single bits
    ]
    for inst, consts in cases:
        assert images.frame_bytes(image(inst, consts)) == by_fields(inst, consts), (inst.name, consts)


def rfc1071(data: bytes) -> int:
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def c_fold(s: int) -> int:
    """c3po_csum_fold."""
    s = (s & 0xFFFFFFFF) + (s >> 32)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return s & 0xFFFF


def generated(img: images.Image, frame: bytes, ck: int) -> bytes:
    """The checksum bytes the generated code stores: ~fold(constant + the run-time words, loaded little-endian)."""
    const, loads = images.partial_sum(img, ck)
    s = const + sum(int.from_bytes(frame[o:o + n], "little") for o, n in loads)
    return (~c_fold(s) & 0xFFFF).to_bytes(2, "little")


def full(frame: bytes, ck: int) -> bytes:
    """The full sum as the generated code takes it otherwise (c3po_csum_fixed: 32-bit little-endian loads)."""
    z = frame[:ck] + b"\0\0" + frame[ck + 2:]
    s = sum(int.from_bytes(z[i:i + 4], "little") for i in range(0, len(z) - 3, 4))
    return (~c_fold(s) & 0xFFFF).to_bytes(2, "little")


def test_partial_sum_is_the_full_sum() -> None:
    prog = load_program(VXLAN).program
    inst = prog.instances["outer_ipv4"]
    rng = random.Random(14)
    cases = [(IPV4_CONSTS, IPV4_DYNAMIC), ({}, IPV4_DYNAMIC), ({"ttl": 255, "protocol": 255}, ("src",)),
             ({}, tuple(f.name for f in inst.type.fields if f.name != "checksum"))]
    for consts, dynamic in cases:
        img = image(inst, consts, dynamic)
        _, loads = images.partial_sum(img, 10)
        assert all(o != 10 for o, _ in loads)
        for trial in range(300):
            frame = bytearray(images.frame_bytes(img))
            for i in sorted(img.dynamic):
                frame[i] = rng.randrange(256) if trial % 3 else rng.choice([0, 0xFF])
            if trial % 5 == 0 and img.dynamic:  # steer the sum to 0xffff: the checksum is then 0x0000
                frame[10:12] = b"\0\0"
                last = max(o for o, _ in loads)
                frame[last:last + 2] = b"\0\0"
                need = (~rfc1071(bytes(frame))) & 0xFFFF  # the one's-complement sum so far
                frame[last:last + 2] = (0xFFFF - need).to_bytes(2, "big")
            if trial == 1:  # every run-time byte 0
                for i in img.dynamic:
                    frame[i] = 0
            got = generated(img, bytes(frame), 10)
            assert got == full(bytes(frame), 10), (consts, dynamic, frame.hex())
            out = frame[:10] + got + frame[12:]
            if any(out[:10] + out[12:]):
                assert rfc1071(bytes(out)) == 0  # verifies
            if trial % 5 == 0 and img.dynamic and any(frame[:10] + frame[12:]):
                assert got == b"\0\0"
    # nothing constant but zeros and nothing at run time non-zero: the sum is 0, the checksum 0xffff both ways
    img = image(inst, {}, ("src",))
    assert images.partial_sum(img, 10)[0] == 0
    assert generated(img, bytes(20), 10) == full(bytes(20), 10) == b"\xff\xff"


def test_vxlan_encap_in_the_kernel(tmp_path: Path) -> None:
    need_bpf()
    from targets.xdp.driver import XdpDriver

    prog = load_program(VXLAN).program
    mac = 0x02_00_00_00_00_42
    entries = (EntryState("port_vni", (KeyElem("value", 3),), "set_vni", (5000,)),
               EntryState("fdb", (KeyElem("value", 5000), KeyElem("value", mac)), "to_remote",
                          (9, 0x0A000001, 0xC0A8FFFE, 0x02_11_22_33_44_55, 0x02_66_77_88_99_AA)))
    control = ControlState(entries=entries)
    rng = random.Random(7)
    packets = []
    for n in (60, 61, 64, 200, 1400):
        inner = mac.to_bytes(6, "big") + rng.randbytes(6) + rng.randbytes(2) + rng.randbytes(n - 14)
        packets.append(PacketIn(3, inner))
    ref = Interpreter(prog)
    ref.install(control)
    want = ref.run(packets, {})
    with XdpDriver() as drv:
        drv.open(prog, tmp_path)
        drv.install(control)
        got = drv.run(packets, {})
    for p, g, w in zip(packets, got, want, strict=True):
        assert (g.verdict, g.port, g.data) == (w.verdict, w.port, w.data), len(p.data)
        assert g.port == 9 and len(g.data) == len(p.data) + 50
        assert rfc1071(g.data[14:34]) == 0  # the outer IPv4 header verifies
    src = next(tmp_path.rglob("*.bpf.c")).read_text()
    assert "0x11c5ULL + *(__u16 *)(h_outer_ipv4 + 2)" in src  # the partial sum, not c3po_csum_fixed
