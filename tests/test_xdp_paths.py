"""Static header worlds (targets/xdp/paths.py): what the emitter may assume on each path, and what it makes of it.

Correctness in the kernel is covered by tests/test_xdp_kernel.py and tests/test_conformance_scale.py (every
example and suite program against the reference interpreter); these tests pin down the analysis itself.
"""

from __future__ import annotations

from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.loader import load_program
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
