"""Static header worlds (targets/xdp/paths.py): what the emitter may assume on each path, and what it makes of it.

Correctness in the kernel is covered by tests/test_xdp_kernel.py and tests/test_conformance_scale.py (every
example and suite program against the reference interpreter); these tests pin down the analysis itself.
"""

from __future__ import annotations

from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.loader import load_program
from targets.xdp import XdpTarget
from targets.xdp import paths as P
from targets.xdp.emitter import Emitter
from targets.xdp.view import build_view

ROOT = Path(__file__).resolve().parent.parent


def emitter(example: str) -> Emitter:
    return Emitter(load_program(ROOT / "spec" / "examples" / f"{example}.yaml").program)


def world(*ptrs: str) -> P.World:
    s = frozenset(ptrs)
    return P.World(s, s, frozenset())


def ptr_of(e: ir.Valid) -> str:
    return f"h_{e.instance}"


def test_parse_family_is_one_world_per_set_of_extracted_headers() -> None:
    fam = emitter("vxlan_gateway").parse_family
    assert fam is not None
    assert {w.parsed for w in fam} == {
        frozenset({"h_ethernet"}),
        frozenset({"h_outer_ethernet", "h_outer_ipv4", "h_outer_udp", "h_vxlan", "h_ethernet"}),
    }


def test_verifier_explores_the_null_side_of_a_valid_header() -> None:
    fam = frozenset({world("h_eth", "h_ipv4"), world("h_eth", "h_ipv6")})
    cond = ir.Valid("ipv4", None)
    then = P.refine(fam, cond, True, ptr_of)
    other = P.refine(fam, cond, False, ptr_of)
    assert then == frozenset({world("h_eth", "h_ipv4")})
    # at run time only the IPv6 world takes the else branch, but the verifier also walks it with ipv4 valid
    assert P.feasible(other) == frozenset({world("h_eth", "h_ipv6")})
    assert other is not None and len(other) == 2
    assert P.must_valid(other) == frozenset({"h_eth"})  # so h_ipv6 keeps its NULL check there


def test_set_valid_and_invalid_update_every_world() -> None:
    fam = P.set_valid(frozenset({world("h_eth")}), "h_outer", True)
    assert fam == frozenset({P.World(frozenset({"h_eth"}), frozenset({"h_eth"}), frozenset({"h_outer"}))})
    fam = P.set_valid(fam, "h_eth", False)
    assert fam is not None and next(iter(fam)).valid == frozenset({"h_outer"})


def test_vxlan_paths_end_in_specialised_deparsers() -> None:
    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    control = "\n".join(build_view(prog)["control"])
    # encapsulation: the frame start moves by the 50 new bytes before the outer headers are built, and they are
    # built where they end up (no scratch memory, no copy)
    assert "bpf_xdp_adjust_head(ctx, -50)" in control
    assert "h_ethernet = data + 50; /* moved with the frame start */" in control
    assert "h_vxlan = data + 42;" in control
    assert "sc->hdr" not in control
    # decapsulation: the outer headers are dropped by moving the frame start, nothing copied
    assert "bpf_xdp_adjust_head(ctx, 50)" in control
    # every path knows its layout: no run-time rebuild, no verdict switch
    assert "if (relayout)" not in control
    assert "switch (verdict)" not in control


def test_unknown_family_keeps_the_run_time_deparser() -> None:
    em = emitter("mpls_lsr")
    em.parse_family = None
    em.parser_nodes()
    lines = "\n".join(em.control())
    assert "switch (verdict)" in lines


def test_few_parse_paths_whose_validity_the_control_tests_make_a_tree() -> None:
    """The VXLAN gateway's two parse paths each end in their own copy of the control: every pointer is the frame
    start plus a constant there, so valid() folds and nothing is merged where the paths would have met."""
    em = emitter("vxlan_gateway")
    assert em.tree
    labels = [n.label for n in em.parser_nodes()]
    assert labels.count("st_tenant") == 1 and "st_tenant__2" in labels  # the shared state, once per path
    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    control = "\n".join(build_view(prog)["control"])
    assert "parsed_st_tenant:;" in control and "parsed_st_tenant__2:;" in control
    assert "asm volatile" not in control  # no merged pointer to hide from clang
    assert "(c3po_valid & (1ULL" not in control  # valid() is a constant in each copy, not a test


def test_a_control_that_does_not_test_validity_stays_one_copy() -> None:
    """Without valid() tests the copies would differ in nothing but would each cost the verifier a walk (a linear
    table search, 64 iterations, per copy)."""
    prog = load_program(ROOT / "conformance" / "suite" / "match_ternary.yaml").program
    em = Emitter(prog)
    assert not em.tree
    assert "parsed:;" in XdpTarget().render(prog)["match_ternary.bpf.c"]


def test_bounds_checks_an_earlier_check_covers_are_left_out() -> None:
    """The classifying lookahead checks 38 bytes: the outer Ethernet (14) and IPv4 (20) headers need no check of
    their own, the UDP header after them does."""
    nodes = {n.label: "\n".join(n.lines) for n in emitter("vxlan_gateway").parser_nodes()}
    assert "cur + 38 > end" in nodes["st_classify"]
    assert "> end" not in nodes["st_underlay"] and "> end" not in nodes["st_outer_ipv4"]
    assert "covered by an earlier bounds check" in nodes["st_underlay"]
    assert "cur + 8 > end" in nodes["st_outer_udp"]
    assert "> end" not in nodes["st_tenant"]  # 14 of the 38 bytes the lookahead checked
    assert "cur + 14 > end" in nodes["st_tenant__2"]  # after 50 bytes of outer headers


def test_new_headers_are_built_from_constant_images() -> None:
    """The outer IPv4 header of an encapsulation: its constant fields (version and IHL share a byte, so do the
    flags and the fragment offset) become two wide stores; no zeroing, no read-modify-write."""
    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    control = "\n".join(build_view(prog)["control"])
    assert "c3po_st(h_outer_ipv4 + 0, 2, 0x4500ULL);" in control
    assert "c3po_st(h_outer_ipv4 + 4, 8, 0x400040110000ULL);" in control
    assert "c3po_zero(h_outer" not in control
    assert "c3po_set(h_outer_ipv4 + 0, 1, 4, 4" not in control  # the version nibble, written alone
