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


def test_acl_gets_padding_after_the_end_option_where_the_ports_decide() -> None:
    """p4's parser skips the padding after END with its own arithmetic (`left << 3` bits); `<< 4` survived the
    fifth round, as no vector had padding after END where the bytes behind the IPv4 header decide anything."""
    from conformance.interpreter import Interpreter
    from conformance.model import PacketIn

    prog = load_program(str(ROOT / "spec" / "examples" / "acl_firewall.yaml")).program
    gen = generate(prog, seed=0)
    grown = [v for v in gen.vectors if "end_padding" in v.tags]
    assert {int(v.name.split(".")[2]) for v in grown} == {4, 40}
    interp = Interpreter(prog)
    decided = 0
    for v in grown:
        frame = v.packets[0].data
        interp.install(v.control)
        got = interp.run([PacketIn(v.packets[0].port, frame)], {})[0]
        assert got.verdict == v.expected[0].verdict
        ip = got.observations["offsets"]["ipv4"]
        ihl = frame[ip] & 0x0F
        assert 4 * ihl - 20 == int(v.name.split(".")[2])
        area = frame[ip + 20:ip + 4 * ihl]
        assert area[0] == 0 and all(area[1:]), area.hex()  # END, then padding that is not zero
        l4 = ip + 4 * ihl
        for i in range(l4, min(len(frame), l4 + 24)):
            flipped = frame[:i] + bytes([frame[i] ^ 0xFF]) + frame[i + 1:]
            other = interp.run([PacketIn(v.packets[0].port, flipped)], {})[0]
            if (other.verdict, other.counters) != (got.verdict, got.counters):
                decided += 1
                break
    assert decided == len(grown)  # each one: a byte behind the options decides the outcome
    cov = gen.coverage["end_padding"]
    assert cov["covered"] == cov["total"] > 0 and not cov["infeasible"]
    router = load_program(str(ROOT / "spec" / "examples" / "router.yaml")).program
    assert generate(router, seed=0).coverage["end_padding"]["total"] == 0  # nothing behind IPv4 decides there
