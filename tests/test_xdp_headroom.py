"""The xdp driver's dirty headroom: BPF_PROG_TEST_RUN zeroes the headroom a program pushes headers into, a NIC
does not; the driver fills the metadata area (which bpf_xdp_adjust_head leaves behind where the frame grows)
with non-zero bytes, so a pushed header byte the program never writes shows (vxlan_gateway without its VXLAN
header's last reserved byte), on both ingress paths (port 1's metadata, other ports' ifindex). Every example's
generated vectors passing with the dirty headroom is test_xdp_kernel's (the driver always runs that way)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.driver import Driver
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, PacketIn, Registers
from targets.xdp import RUNTIME_HEADER, XdpTarget, compile_object
from targets.xdp.driver import META_MAGIC, META_PORT, XdpDriver, max_push
from targets.xdp.libbpf import DIRTY, DIRTY_INVERTED, META_MAX, PUSH_ROOM, dirty_meta
from tests.conftest import ROOT, need_bpf

VXLAN = ROOT / "spec/examples/vxlan_gateway.yaml"
# the VXLAN header's last byte (reserved, constant 0), written into space bpf_xdp_adjust_head handed out
LAST_RESERVED = re.compile(r"^\s*c3po_st\(h_vxlan \+ 7, 1, 0x0ULL\);.*\n", re.M)


def test_dirty_meta_fills_to_the_limit_and_leaves_room_for_the_largest_push() -> None:
    port_meta = META_MAGIC.to_bytes(4, "little") + META_PORT.to_bytes(4, "little")
    assert dirty_meta(port_meta, 0) == port_meta + DIRTY[8:META_MAX]
    assert dirty_meta(b"", 50) == DIRTY and 0 not in DIRTY
    assert dirty_meta(b"", 50, inverted=True) == DIRTY_INVERTED and 0 not in DIRTY_INVERTED
    assert DIRTY_INVERTED[:4] != META_MAGIC.to_bytes(4, "little")
    assert DIRTY[:4] != META_MAGIC.to_bytes(4, "little")  # the ifindex path's padding is "no metadata"
    # a program that pushes more keeps its room: less padding (a multiple of 4), never less than the metadata
    assert len(dirty_meta(port_meta, PUSH_ROOM - 30)) == 28
    assert dirty_meta(port_meta, PUSH_ROOM - 8) == port_meta
    assert dirty_meta(port_meta, PUSH_ROOM) == port_meta
    assert dirty_meta(b"", PUSH_ROOM - 3) == b"" and dirty_meta(b"", PUSH_ROOM + 10) == b""


def test_max_push_bounds_what_a_program_adds() -> None:
    vx = load_program(VXLAN).program
    made = {s.instance for s in ir.walk_stmts(vx.control) + [s for a in vx.actions.values()
                                                             for s in ir.walk_stmts(a.body)]
            if isinstance(s, ir.SetValid) and s.valid}
    assert made and max_push(vx) >= sum(vx.instances[n].type.fixed_bytes for n in made)
    assert max_push(load_program(ROOT / "spec/examples/acl_firewall.yaml").program) == 0  # it pushes nothing


Case = tuple[ControlState, list[PacketIn], Registers]


def _on_port(case: Case, port: int) -> Case:
    """The same packets arriving on `port`, with the port -> VNI entry of port 1 moved there."""
    state, packets, regs = case
    moved = tuple(dataclasses.replace(e, match=(KeyElem("value", port),))
                  if e.table == "port_vni" and e.match == (KeyElem("value", META_PORT),) else e
                  for e in state.entries)
    return dataclasses.replace(state, entries=moved), [PacketIn(port, p.data) for p in packets], regs


@pytest.fixture(scope="module")
def encap_cases() -> tuple[ir.Program, list[Case]]:
    """vxlan_gateway's generated vectors that encapsulate (the reference's frame grows): a few of them."""
    prog = load_program(VXLAN).program
    ref = Interpreter(prog)
    cases: list[Case] = []
    for v in generate(prog, seed=0).vectors:
        ref.install(v.control)
        grown = [p for p, r in zip(v.packets, ref.run(v.packets, v.registers), strict=True)
                 if r.verdict == "forward" and len(r.data) > len(p.data) and p.port == META_PORT]
        if grown:
            cases.append((v.control, grown, v.registers))
    assert cases
    return prog, cases[:6]


def _mismatches(drv: Driver, prog: ir.Program, cases: list[Case]) -> tuple[int, int]:
    """(packets, differences from the reference)."""
    ref = Interpreter(prog)
    n = bad = 0
    for state, packets, regs in cases:
        drv.install(state)
        ref.install(state)
        for got, want in zip(drv.run(packets, regs), ref.run(packets, regs), strict=True):
            n += 1
            bad += (got.verdict, got.port, got.data) != (want.verdict, want.port, want.data)
    return n, bad


def test_an_unwritten_pushed_byte_mismatches(tmp_path: Path, encap_cases: tuple[ir.Program, list[Case]]) -> None:
    need_bpf()
    prog, cases = encap_cases
    build = XdpTarget(observe=True).build(prog, tmp_path / "ok")
    src = build.files["source"].read_text()
    assert LAST_RESERVED.search(src), "vxlan_gateway's xdp code no longer writes the byte this test drops"
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / RUNTIME_HEADER.name).write_bytes(RUNTIME_HEADER.read_bytes())
    (bad_dir / "vxlan_gateway.bpf.c").write_text(LAST_RESERVED.sub("", src, count=1))
    compile_object(bad_dir / "vxlan_gateway.bpf.c", bad_dir / "vxlan_gateway.bpf.o", observe=True)
    on_ifindex = [_on_port(c, 7) for c in cases]  # the production path: metadata without the magic

    drv = XdpDriver()
    with drv:
        drv.open(prog, tmp_path / "ok")
        # vxlan's 50-byte push leaves room; two fills, every bit inverted between them
        assert [len(m) for m in (*drv.meta_port, *drv.meta_ifindex)] == [META_MAX] * 4
        assert all(a ^ b == 0xFF for a, b in zip(drv.meta_port[0][8:], drv.meta_port[1][8:], strict=True))
        for path in (cases, on_ifindex):
            n, bad = _mismatches(drv, prog, path)
            assert n > 0 and bad == 0  # the generated program passes with a dirty headroom

    from conformance.mutate import _xdp_driver

    with _xdp_driver(bad_dir)() as bad_drv:
        bad_drv.open(prog, tmp_path / "bad")
        for path in (cases, on_ifindex):
            n, bad = _mismatches(bad_drv, prog, path)
            assert bad == n  # every encapsulated frame shows the headroom's byte where the 0 was not written
        assert isinstance(bad_drv, XdpDriver)  # with BPF_PROG_TEST_RUN's zeroed headroom, the mutant hides
        bad_drv.meta_port = [m[:8] for m in bad_drv.meta_port]
        bad_drv.meta_ifindex = [b"", b""]
        assert _mismatches(bad_drv, prog, cases)[1] == _mismatches(bad_drv, prog, on_ifindex)[1] == 0

