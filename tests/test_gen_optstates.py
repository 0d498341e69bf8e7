"""Option areas behind which the control rewrites a later header (conformance/gen_optstates.py): nat44 rewrites
addresses and updates the TCP/UDP checksum incrementally; an xdp mutant that did not step over the IPv4 options
(`cur += vl_ipv4` dropped) wrote the TCP checksum inside the options and survived every earlier vector."""

from __future__ import annotations

from c3po_compiler import load_program
from conformance.generate import generate

from .conftest import ROOT


def test_nat44_gets_options_before_a_rewritten_transport_header() -> None:
    prog = load_program(str(ROOT / "spec" / "examples" / "nat44.yaml")).program
    gen = generate(prog, seed=0)
    grown = [v for v in gen.vectors if "options_behind" in v.tags]
    # one word and the most options (40 bytes), on the TCP and the UDP path
    assert sorted({(v.name.split(".")[2], v.packets[0].data[23]) for v in grown}) == \
        [("4", 6), ("4", 17), ("40", 6), ("40", 17)]
    for v in grown:
        frame, e = v.packets[0].data, v.expected[0]
        ihl = frame[14] & 0x0F
        assert ihl == 5 + int(v.name.split(".")[2]) // 4
        assert e.verdict == "forward" and e.data is not None and len(e.data) == len(frame)
        l4 = 14 + 4 * ihl
        csum = l4 + (16 if frame[23] == 6 else 6)
        # the transport checksum behind the options is what the control rewrote
        assert e.data[csum:csum + 2] != frame[csum:csum + 2]
        assert e.data[14 + 20:l4] == frame[14 + 20:l4]  # the options themselves pass unchanged
    cov = gen.coverage["options_behind"]
    assert cov["covered"] == 4 and not cov["uncovered"] and not cov["infeasible"]


def test_no_items_where_nothing_behind_the_options_is_written() -> None:
    prog = load_program(str(ROOT / "spec" / "examples" / "router.yaml")).program
    cov = generate(prog, seed=0).coverage.get("options_behind", {})
    assert cov.get("total", 0) == 0
