"""A parser state selecting on one 16- or 32-bit whole-byte field with distinct single-value cases is a `switch` on
the field as the packet holds it, the case values byte-swapped (emitter.raw_select): clang compiles the `if` chain
on the host-order value into a select of a state number and a second dispatch. Checked as text, and in the
kernel against the reference interpreter on frames for every case, near misses (one byte or the halves swapped)
and the default."""

from __future__ import annotations

import struct
from pathlib import Path

from c3po_compiler import load_program
from targets.xdp import XdpTarget

from .conftest import ROOT, kernel_matches_interpreter, need_bpf

SPEC = """
c3po: 1
program: sel
include: [std/ethernet]
headers:
  tag:
    fields: {kind: 16, id: 32, rest: 16}
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x88b5": tag, "0x0800": accept, "0x86dd": accept}}
    tag:
      {extract: tag, select: tag.id, cases: {"0x01020304": a, "0xa0b0c0d0": b, "0x00000001": c, "0x12345678": c},
       default: accept}
    a: {select: tag.kind, cases: {"0x0001": accept, "0xff00": reject}, default: reject}
    b: {select: tag.rest, cases: {"0x0000 &&& 0xff00": accept}, default: reject}
    c: {}
control:
  - if: "valid(tag) && tag.rest == 7"
    then: ["forward(7)"]
    else:
      - if: "valid(tag)"
        then: ["forward(tag.rest & 0xff)"]
"""


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "sel.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def _frame(ethertype: int, body: bytes = b"") -> bytes:
    return bytes.fromhex("020000000001020000000002") + struct.pack("!H", ethertype) + body + bytes(max(0, 46 - len(body)))


def test_single_value_selects_switch_on_the_raw_field() -> None:
    text = XdpTarget().render(load_program(ROOT / "spec" / "examples" / "router.yaml").program)["router.bpf.c"]
    state = text[text.index("st_ethernet: /*"):text.index("st_ipv4: /*")]
    assert "switch (*(__u16 *)(h_ethernet + 12))" in state
    assert "case 0x8: /* 0x800 " in state and "case 0xdd86: /* 0x86dd " in state
    assert "sel0" not in state


def test_masks_and_single_cases_keep_the_if_chain(tmp_path: Path) -> None:
    text = XdpTarget().render(load_program(_spec(tmp_path)).program)["sel.bpf.c"]
    states = {name: text[text.index(f"st_{name}: /*"):] for name in ("ethernet", "tag", "a", "b")}
    assert "switch (*(__u16 *)(h_ethernet + 12))" in states["ethernet"]
    assert "switch (*(__u32 *)(h_tag + 2))" in states["tag"]  # tag.id at byte 2
    assert "case 0x4030201: /* 0x1020304 " in states["tag"] and "case 0x78563412: /* 0x12345678 " in states["tag"]
    a = states["a"][:states["a"].index("st_b: /*")]
    assert "switch (" in a  # two cases on a 16-bit field
    b = states["b"][:states["b"].index("st_c: /*")]
    assert "switch (" not in b and "sel0 = " in b  # a mask: the if chain


def test_the_kernel_takes_the_case_the_interpreter_takes(tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(_spec(tmp_path)).program
    bodies = []
    for kind in (0x0001, 0xFF00, 0x0100, 0x0000):
        for tag_id in (0x01020304, 0x04030201, 0x01020305, 0xA0B0C0D0, 0xD0C0B0A0, 0x00000001, 0x01000000,
                       0x12345678, 0x56781234, 0):
            for rest in (7, 0x0009, 0x0109, 0x0900):
                bodies.append(struct.pack("!HIH", kind, tag_id, rest))
    frames = [_frame(0x88B5, b) for b in bodies]
    frames += [_frame(t) for t in (0x0800, 0x86DD, 0x0008, 0xDD86, 0x88B4, 0xB588)]
    frames += [_frame(0x88B5)[:14 + k] for k in (0, 3, 7)]  # truncated tags
    want = kernel_matches_interpreter(prog, frames, tmp_path)
    assert {verdict for verdict, _, _ in want} >= {"forward", "to_host", "drop"}  # every way out was taken
