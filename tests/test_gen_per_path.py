"""Coverage per parse path and per copy of the control (issue 16, "paths the target duplicated"): the xdp target
writes the control once per parse path and, within a path, once per branch where the branches end in different
static views of the packet (verdict, valid headers, checksum requests); its deparser, with the checksum updates,
is at the end of every copy. The generator counts items per (path, copy) and explores until each is reached, so
every copy meets a vector."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.cli import main
from conformance.gen_coverage import PATH_PARTS, PathCoverage, SplitPoints, path_item
from conformance.gen_paths import ParsePath, enumerate_paths
from conformance.generate import Generated, generate
from conformance.model import PacketIn
from conformance.tracing import TracingInterpreter

from .conftest import ROOT

EXAMPLES = ROOT / "spec" / "examples"
NAT = "spec/examples/nat44.yaml"


@cache
def program(name: str) -> ir.Program:
    return load_program(EXAMPLES / f"{name}.yaml").program


@cache
def generated(name: str) -> Generated:
    return generate(program(name), seed=0)


def walk(name: str) -> PathCoverage:
    """The per-path items of an example, with the headers each accepted path extracts."""
    prog = program(name)
    paths: list[tuple[ParsePath, set[str], set[str]]] = []
    for p in enumerate_paths(prog):
        if p.end != "accept":
            continue
        counts: dict[str, int] = {}
        valid = set()
        for s in p.steps:
            inst = prog.parser.states[s.state].extract
            if inst:
                i = counts.get(inst, 0)
                counts[inst] = i + 1
                valid.add(f"{inst}[{i}]" if prog.instances[inst].is_stack else inst)
        paths.append((p, valid, set()))
    return PathCoverage.of(prog, paths)


def items(name: str) -> set[str]:
    return {x for part in PATH_PARTS for x in walk(name).all[part]}


def test_split_points_are_where_branches_end_in_different_views() -> None:
    sp = SplitPoints.of(program("nat44"))
    # ttl > 1 (to_host or not), valid(tcp) and valid(udp) (a checksum request or not); routes' actions set
    # different verdicts; snat and dnat rewrite addresses only, which no static view tells apart
    assert sp.ifs == {f"{NAT}:76:5", f"{NAT}:81:9", f"{NAT}:83:9"}
    assert sp.actions == {"routes"}
    assert sp.hitmiss == set()
    assert SplitPoints.of(program("router")).hitmiss == {"router_mac"}


def test_a_checksum_update_is_an_item_in_each_copy_that_deparses() -> None:
    got = items("nat44")
    ctx = (f"{NAT}:76:5:then", f"{NAT}:81:9:then", f"{NAT}:83:9:else")
    tcp_csum = f"stmt:{NAT}:82:17"
    for act in ("next_hop", "to_host"):
        assert path_item("ethernet-ipv4-tcp", (*ctx, f"routes.{act}"), tcp_csum) in got
    # a dropped frame is not deparsed: no checksum update in the drop copy
    assert path_item("ethernet-ipv4-tcp", (*ctx, "routes.drop"), tcp_csum) not in got
    # and no tcp checksum update on the udp path or the path without a transport header
    assert not any(x.endswith(tcp_csum) and not x.startswith("ethernet-ipv4-tcp ") for x in got)


def test_the_walk_follows_validity_metadata_and_select_values() -> None:
    # router: update_checksum(ipv4) in next_hop is also run by IPv6 packets, where ipv4 is not valid
    router_csum = "stmt:spec/examples/router.yaml:86:9"
    assert not any(x.startswith("ethernet-ipv6 ") and x.endswith(router_csum) for x in items("router"))
    # classifier: meta.family is never set on a path without IP, so `meta.family != 0` is false there
    assert not any(x.startswith("ethernet ") and "classify" in x for x in items("classifier"))
    # mpls_lsr: under one label mpls[0].bos is 1 (the select case to mpls_payload), so `bos == 0` is not taken
    assert not any(
        x.startswith("ethernet-mpls-mpls_payload ") and x.endswith("mpls_lsr.yaml:93:15:then") for x in items("mpls_lsr")
    )


@pytest.mark.parametrize("name", ["nat44", "router", "vxlan_gateway", "tlv_parser"])
def test_every_copy_is_reached(name: str) -> None:
    cov = generated(name).coverage
    for part in PATH_PARTS:
        assert cov[part]["total"] > 0
        assert cov[part]["uncovered"] == [], (part, cov[part]["uncovered"][:5])


def test_each_checksum_copy_meets_a_packet_whose_checksum_it_changes() -> None:
    """The incremental TCP/UDP update in each copy (next_hop, to_host) is reached by a vector with a non-zero
    transport checksum that the update changes (snat or dnat hit)."""
    prog = program("nat44")
    interp = TracingInterpreter(prog)
    pc = walk("nat44")
    ctx = (f"{NAT}:76:5:then", f"{NAT}:81:9:then", f"{NAT}:83:9:else")
    want = {
        path_item("ethernet-ipv4-tcp", (*ctx, f"routes.{act}"), f"stmt:{NAT}:82:17") for act in ("next_hop", "to_host")
    }
    udp_ctx = (f"{NAT}:76:5:then", f"{NAT}:81:9:else", f"{NAT}:83:9:then")
    want |= {
        path_item("ethernet-ipv4-udp", (*udp_ctx, f"routes.{act}"), f"stmt:{NAT}:84:17") for act in ("next_hop", "to_host")
    }
    found: set[str] = set()
    for v in generated("nat44").vectors:
        if len(v.packets) != 1 or v.control.ops:
            continue
        interp.install(v.control)
        r = interp.run([PacketIn(v.packets[0].port, v.packets[0].data)], dict(v.registers))[0]
        hit = pc.items(r) & want
        if not hit:
            continue
        l4 = r.observations["offsets"]["tcp" if "tcp" in next(iter(hit)) else "udp"]
        field = 16 if "tcp" in next(iter(hit)) else 6
        before = v.packets[0].data[l4 + field : l4 + field + 2]
        assert before != b"\0\0"
        assert r.data[l4 + field : l4 + field + 2] != before
        found |= hit
    assert found == want


def test_gen_prints_the_per_path_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "gen", str(EXAMPLES / "nat44.yaml"), "-o", str(tmp_path / "v.jsonl")]) == 0
    out = capsys.readouterr().out
    for part in PATH_PARTS:
        assert f"  {part.replace('_', ' ')}: " in out
    # after the structural parts, before the gap classes
    assert out.index("per path statements") < out.index("gap classes")
