"""Tests moved ahead of a silent lookup (c3po_compiler/reorder.py): where the rewrite happens, where it must not,
and that the rewritten program is the same program: the reference interpreter gives every generated vector of the
router the same verdict, port, frame, counters and registers with the control as written and as rewritten. The
last test shows that comparison has teeth: forcing the rewrite onto a counted table changes the counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import ir, load_program, reorder
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.runner import group_by_control
from targets.xdp import XdpTarget

from .conftest import FUZZ, ROOT, generated

ROUTER = ROOT / "spec" / "examples" / "router.yaml"


def _variant(tmp_path: Path, edits: list[tuple[str, str]]) -> ir.Program:
    text = ROUTER.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    (tmp_path / "examples").mkdir(exist_ok=True)
    if not (tmp_path / "protocols").exists():
        (tmp_path / "protocols").symlink_to(ROUTER.parent.parent / "protocols")  # the spec's includes
    spec = tmp_path / "examples" / "router.yaml"
    spec.write_text(text, encoding="utf-8")
    return load_program(spec).program


def _outcomes(prog: ir.Program, vectors: list) -> list[tuple[object, ...]]:
    """Every packet's result through the interpreter, per vector, with the vectors' own table state."""
    interp = Interpreter(prog)
    out = []
    for control, group in group_by_control(vectors):
        interp.install(control)
        for v in group:
            out += [(v.name, r.verdict, r.port, r.data, r.counters, r.registers)
                    for r in interp.run(v.packets, v.registers)]
    return out


def _applies(stmts: list[ir.Stmt], table: str) -> int:
    return sum(1 for s in ir.walk_stmts(stmts) if isinstance(s, ir.Apply) and s.table == table)


def test_the_router_tests_ttl_and_ip_before_the_router_mac_lookup() -> None:
    prog = load_program(ROUTER).program
    before = [type(s) for s in prog.control]
    new = reorder.exits_before_lookups(prog).control
    assert [type(s) for s in prog.control] == before == [ir.Apply]  # the argument is left as it was
    top = new[0]
    assert isinstance(top, ir.If) and isinstance(top.cond, ir.Valid) and top.cond.instance == "ipv4"
    ttl = top.then[0]
    assert isinstance(ttl, ir.If) and [type(s) for s in ttl.then] == [ir.SetVerdict]  # to the host, no lookup
    assert [s.table for s in ttl.otherwise if isinstance(s, ir.Apply)] == ["router_mac"]
    # one router-MAC lookup per IP version, none for other frames (they go to the host either way)
    assert _applies(new, "router_mac") == 2
    other = top.otherwise[0]
    assert isinstance(other, ir.If) and [type(s) for s in other.otherwise] == [ir.SetVerdict]


def test_the_rewritten_router_is_the_same_program() -> None:
    prog = load_program(ROUTER).program
    vectors = generated(ROUTER, 1, FUZZ).vectors  # the run's shared generation: the conformance tests' vectors
    assert len(vectors) > 1000
    assert _outcomes(reorder.exits_before_lookups(prog), vectors) == _outcomes(prog, vectors)


MARK = ("actions:\n  set_nexthop:", "actions:\n  mark:\n    do:\n      - meta.nexthop = 7\n  set_nexthop:")


@pytest.mark.parametrize("edits", [
    [("    actions: [nop]\n    size: 64\n", "    actions: [nop]\n    size: 64\n    counters: true\n")],  # counted
    [("    actions: [nop]\n    size: 64\n", "    actions: [nop, mark]\n    size: 64\n"), MARK],  # an action's body
], ids=["counted", "an-action-with-a-body"])
def test_a_lookup_that_leaves_something_behind_stays_first(tmp_path: Path, edits: list[tuple[str, str]]) -> None:
    prog = _variant(tmp_path, edits)
    assert not reorder.is_silent(prog, prog.tables["router_mac"])
    assert reorder.same(reorder.exits_before_lookups(prog).control, prog.control)


def test_the_equivalence_check_catches_a_reorder_of_a_counted_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prog = _variant(tmp_path, [("    actions: [nop]\n    size: 64\n", "    actions: [nop]\n    size: 64\n    counters: true\n")])
    vectors = generate(prog, seed=3, fuzz=0).vectors
    monkeypatch.setattr(reorder, "is_silent", lambda prog, t: True)
    wrong = reorder.exits_before_lookups(prog)
    assert not reorder.same(wrong.control, prog.control)
    assert _outcomes(wrong, vectors) != _outcomes(prog, vectors)  # TTL-expiring packets no longer count a hit


def test_a_test_on_the_miss_side_moves_ahead_too(tmp_path: Path) -> None:
    """A hypothetical router that sends frames for its own MAC to the host and bridges the rest unless their TTL
    expires: the same rewrite with hit and miss exchanged, and the same results for every vector."""
    prog = _variant(tmp_path, [("  - apply: router_mac\n    miss: [to_host]\n    hit:\n",
                                "  - apply: router_mac\n    hit: [to_host]\n    miss:\n")])
    new = reorder.exits_before_lookups(prog)
    assert isinstance(new.control[0], ir.If) and _applies(new.control, "router_mac") == 2
    vectors = generate(prog, seed=5, fuzz=100).vectors
    assert _outcomes(new, vectors) == _outcomes(prog, vectors)


def test_a_silent_lookup_nothing_depends_on_is_gone(tmp_path: Path) -> None:
    prog = _variant(tmp_path, [("  - apply: router_mac\n    miss: [to_host]\n",
                                "  - apply: router_mac\n  - apply: router_mac\n    miss: [to_host]\n")])
    assert _applies(prog.control, "router_mac") == 2
    assert _applies(reorder.exits_before_lookups(prog).control, "router_mac") == 2  # the first one is gone


def test_same_ignores_only_where_things_were_written() -> None:
    prog = load_program(ROUTER).program
    to_host = [s for s in ir.walk_stmts(prog.control) if isinstance(s, ir.SetVerdict)]
    assert len({s.loc for s in to_host}) > 1 and reorder.same(to_host[0], to_host[1])
    ifs = [s for s in ir.walk_stmts(prog.control) if isinstance(s, ir.If)]
    assert not reorder.same(ifs[0], ifs[1]) and reorder.same(ifs[0], ifs[0])


def test_the_xdp_router_tests_the_ttl_before_it_hashes_the_mac() -> None:
    prog = load_program(ROUTER).program
    c = XdpTarget().render(prog)[f"{prog.name}.bpf.c"]
    copies = c.split("ends here: ")[1:]
    assert len(copies) == 4  # no IP, IPv4 with IHL 5, IPv4 with options (to the host: no lookup), IPv6
    looked_up = 0
    for copy in copies:
        lookup = copy.find("apply router_mac")
        head = copy.splitlines()[0]
        test = {"ipv4": "c3po_get(h_ipv4 + 8, 1, 0, 8) <= 1ULL", "ipv6": "c3po_get(h_ipv6 + 7, 1, 0, 8) <= 1ULL"}
        version = next((v for v in test if v in head), None)
        if lookup >= 0:
            assert version is not None and 0 <= copy.find(test[version]) < lookup, head
            looked_up += 1
    assert looked_up == 2
