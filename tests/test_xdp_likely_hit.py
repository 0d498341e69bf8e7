"""The straight-line hit of a per-CPU direct table's likely action (emitter.likely_hit): where it is built, where it
is not (the rest of the control applies another table: a copy would copy again), and in the kernel, the general
form it leaves behind is still reached and right (a miss under that action as the default, on every parse path:
the generator's defaults per path)."""

from __future__ import annotations

from pathlib import Path

from c3po_compiler import load_program
from conformance.compare import compare
from conformance.generate import generate
from targets.xdp import XdpTarget
from targets.xdp.emitter import likely_action
from targets.xdp.layout import table_layout

from .conftest import FUZZ, ROOT, generated, need_bpf

PPPOE = ROOT / "conformance" / "suite" / "proto_pppoe.yaml"


def _render(path: Path) -> str:
    prog = load_program(path).program
    return XdpTarget().render(prog)[f"{prog.name}.bpf.c"]


def test_the_router_next_hop_hit_is_straight_line_on_each_path() -> None:
    prog = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    t = prog.tables["nexthops"]
    assert likely_action(t, table_layout(prog, t)) == "next_hop"  # not the default, to_host
    c = _render(ROOT / "spec" / "examples" / "router.yaml")
    ids = [line for line in c.splitlines() if "the likely case" in line]
    assert len(ids) == 2  # the IPv4 and the IPv6 copy of the control
    for part in c.split(ids[0].strip())[1:]:
        hit, general = part.split("struct t_nexthops_value *v = NULL;", 1)
        assert "return C3PO_RET(c3po_forward(st, egress));" in hit  # the whole tail, to the verdict
        assert "e->c.packets += 1;" in hit
        assert "case 3: { /* next_hop */" in general  # still there: a miss under next_hop as the default


def test_no_copy_where_the_rest_of_the_control_applies_another_table(tmp_path: Path) -> None:
    text = PPPOE.read_text(encoding="utf-8")
    assert "the likely case" in _render(PPPOE)
    spec = tmp_path / "proto_pppoe.yaml"
    spec.write_text(text.replace("    then: [apply: sessions]", "    then: [apply: sessions, apply: more]").replace(
        "control:", "  more:\n    key: {ipv4.dst: exact}\n    actions: [drop, to_host]\n    default: to_host\ncontrol:", 1),
        encoding="utf-8")
    c = _render(spec)
    assert "apply more" in c
    assert "the likely case" not in c


def test_the_router_gets_each_default_on_each_path_that_applies_the_table() -> None:
    """The general form's next_hop case in the IPv6 copy is reached only by a miss under next_hop as the default
    on an IPv6 frame (test_gen_varlen_copies asserts the router's every return is taken)."""
    names = {v.name for v in generated(ROOT / "spec" / "examples" / "router.yaml", 1, FUZZ).vectors}
    per_path = {n for n in names if n.startswith("default.nexthops.next_hop.path")}
    assert per_path and "default.nexthops.next_hop" in names


def test_every_return_is_taken(tmp_path: Path) -> None:
    """Generated vectors (seed 1) on proto_pppoe, whose session table has the straight-line hit in two copies:
    every counted return of the program is taken, the general form's case of the likely action included."""
    need_bpf()
    from conformance.runner import group_by_control
    from targets.xdp.driver import XdpDriver

    prog = load_program(PPPOE).program
    vectors = generate(prog, seed=1).vectors
    xdp = XdpDriver()
    try:
        xdp.open(prog, tmp_path / "xdp")
        for control, group in group_by_control(vectors):
            xdp.install(control)
            for v in group:
                for exp, res in zip(v.expected, xdp.run(v.packets, v.registers), strict=True):
                    if res.error and res.error.startswith("N/A"):  # under 14 bytes: the kernel refuses it
                        continue
                    assert not compare(exp, res), (v.name, compare(exp, res).lines)
        cov = xdp.coverage()
    finally:
        xdp.close()
    assert cov is not None and cov["unreached"] == [], cov["unreached"]
