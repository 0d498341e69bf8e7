"""conformance/gen_varlen_copies.py: packets replayed in the other case of a variable-length header (options added
where there were none, removed where there were), so a target's copy of the control for either case (the xdp
target's fast leaf for IHL 5 and its copy for IPv4 with options) meets the same variety of tables, branches and
verdicts. Checked on the generator's output, and in the kernel: with the class, every counted return of the xdp
router, NAT and GRE programs is taken by the generated vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.gen_varlen_copies import CLASS
from conformance.generate import generate

from .conftest import ROOT, need_bpf


def _ihl(data: bytes, at: int = 14) -> int:
    return data[at] & 0x0F


def test_replays_take_the_other_case_and_cover_their_items() -> None:
    g = generate(load_program(ROOT / "spec/examples/nat44.yaml").program, seed=1)
    part = g.coverage[CLASS]
    assert part["covered"] > 100 and part["uncovered"] == []
    replays = [v for v in g.vectors if "varlen_copy" in v.tags]
    assert replays
    names = {v.name.split(".")[1:3] == ["ipv4", "with"] for v in replays}
    assert names == {True, False}  # IPv4 options added, and (TCP) the other header's
    for v in replays:
        inst, case = v.name.split(".")[1:3]
        obs = v.expected[0].observations
        assert obs.get("parser_error") is None
        if inst == "ipv4":
            assert (_ihl(v.packets[0].data) > 5) == (case == "with")
        else:
            tcp = obs["offsets"]["tcp"]
            assert (v.packets[0].data[tcp + 12] >> 4 > 5) == (case == "with")


def test_a_lookahead_that_steers_ihl_5_elsewhere_gets_packets_without_options() -> None:
    """gre_tunnel sends 0x45 with protocol 47 to the tunnel; its plain IPv4 path is generated mostly with options,
    and replayed without them."""
    g = generate(load_program(ROOT / "spec/examples/gre_tunnel.yaml").program, seed=1)
    without = [v for v in g.vectors if v.name.startswith("varlen_copy.ipv4.without.")]
    assert without and all(_ihl(v.packets[0].data) == 5 for v in without)
    assert {v.expected[0].verdict for v in without} >= {"forward", "to_host"}


@pytest.mark.parametrize("example", ["router", "nat44", "gre_tunnel", "ddos_filter"])
def test_every_return_of_the_xdp_copies_is_taken(example: str, tmp_path: Path) -> None:
    need_bpf()
    from conformance.ref_driver import RefDriver
    from conformance.runner import group_by_control
    from targets.xdp.driver import XdpDriver

    prog = load_program(ROOT / f"spec/examples/{example}.yaml").program
    vectors = generate(prog, seed=1).vectors
    ref, xdp = RefDriver(), XdpDriver()
    try:
        ref.open(prog, tmp_path / "ref")
        xdp.open(prog, tmp_path / "xdp")
        for control, group in group_by_control(vectors):
            ref.install(control)
            xdp.install(control)
            for v in group:
                xdp.run(v.packets, v.registers)
        cov = xdp.coverage()
    finally:
        xdp.close()
    assert cov is not None and cov["total"] > 10
    assert cov["unreached"] == [], cov["unreached"]
