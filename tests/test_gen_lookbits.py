"""Select cases on a lookahead get their bits flipped under a control state where the flip shows
(conformance/gen_lookbits.py): vxlan_gateway's classify reads the IPv4 version+IHL byte as `lookahead(112, 8)`;
an xdp mutant reading it 7 bits wide took 0xc5 for 0x45 and survived every earlier vector."""

from __future__ import annotations

from c3po_compiler import load_program
from conformance.checksums import ones_sum
from conformance.generate import generate
from conformance.interpreter import Interpreter

from .conftest import ROOT

SPEC = str(ROOT / "spec" / "examples" / "vxlan_gateway.yaml")


def test_lookahead_bits_are_flipped_where_the_outcome_changes() -> None:
    prog = load_program(SPEC).program
    gen = generate(prog, seed=0)
    flipped = {v.name: v for v in gen.vectors if v.name.startswith("select_bit.classify.case0.lookahead")}
    # every bit of the 8-bit version+IHL element, the ends of each byte of the 16-bit ones
    ihl = sorted(int(n.rsplit(".", 1)[1], 16) for n in flipped if ".lookahead112." in n)
    assert ihl == sorted(0x45 ^ (1 << b) for b in range(8))
    v = flipped["select_bit.classify.case0.lookahead112.c5"]
    frame = v.packets[0].data
    assert frame[14] == 0xC5 and frame[12:14] == b"\x08\x00" and frame[23] == 17
    # the oracle ends it otherwise than the same frame with the case's value, under the vector's own state
    interp = Interpreter(prog)
    interp.install(v.control)
    took_case = bytearray(frame)
    took_case[14] = 0x45
    took_case[24:26] = b"\0\0"  # the outer IPv4 checksum, as the flip adjusted it
    took_case[24:26] = (~ones_sum(bytes(took_case[14:34])) & 0xFFFF).to_bytes(2, "big")
    got, case = (interp.run([type(v.packets[0])(v.packets[0].port, bytes(d))], {})[0] for d in (frame, took_case))
    assert (got.verdict, got.port, got.data) != (case.verdict, case.port, case.data)
    assert got.observations["path"][:2] == ["classify", "tenant"]
    cov = gen.coverage["select_bits"]
    missed = [str(x) for x in (*cov["uncovered"], *cov["infeasible"])]
    assert not [x for x in missed if "(lookahead)" in x]
    assert cov["covered"] >= 8 + 4 + 8 + 4  # the four lookahead elements' flips, besides the field selects


def test_same_seed_same_lookahead_vectors() -> None:
    prog = load_program(str(ROOT / "conformance" / "suite" / "select_lookahead.yaml")).program
    a, b = (generate(prog, seed=3).vectors for _ in range(2))
    names = [v.name for v in a if ".lookahead" in v.name]
    assert names and names == [v.name for v in b if ".lookahead" in v.name]
    assert [v.packets[0].data for v in a if ".lookahead" in v.name] == \
        [v.packets[0].data for v in b if ".lookahead" in v.name]
