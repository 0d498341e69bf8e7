"""Statement coverage of generated vectors, and that it means something: nat44's vectors must exercise the
incremental L4 checksum update with a translated address, so a target that skips the update fails them.

The mutation is made on the oracle itself (an interpreter whose L4 update does nothing): the generated
vectors' expected results must tell it apart from the real one. Before statement coverage counted an
update_checksum only when it changed a checksum, the generator stopped at a TCP packet that missed every
NAT table, and a target with the L4 update disabled passed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from conformance.gen_coverage import Coverage
from conformance.generate import generate
from conformance.interp_runtime import Ctx
from conformance.interpreter import Interpreter
from conformance.model import ControlState, Vector
from conformance.tracing import TracingInterpreter, statement_points, stmt_id

from .conftest import EXAMPLES, ROOT

NAT44 = ROOT / "spec" / "examples" / "nat44.yaml"


@cache
def program(path: Path) -> ir.Program:
    return load_program(path).program


class _NoL4Update(Interpreter):
    """The mutant: L4 checksum updates are requested but leave the checksum as it was."""

    def _update_checksum(self, c: Ctx, request: tuple[str, str | None]) -> None:
        if request[1] is None:
            super()._update_checksum(c, request)


def _l4_update_ids(prog: ir.Program, l4: str) -> list[str]:
    return [
        f"stmt:{stmt_id(s)}"
        for s in ir.walk_stmts(prog.control)
        if isinstance(s, ir.UpdateChecksum) and s.instance == l4 and s.pseudo is not None
    ]


def _outputs(interp: Interpreter, v: Vector) -> list[tuple[str, int | None, bytes]]:
    interp.install(v.control)
    return [(r.verdict, r.port, r.data) for r in interp.run(v.packets, dict(v.registers))]


@pytest.mark.parametrize("l4", ["tcp", "udp"])
def test_nat44_vectors_catch_a_target_without_the_l4_update(l4: str) -> None:
    prog = program(NAT44)
    vectors = generate(prog, seed=0).vectors
    real, mutant = Interpreter(prog), _NoL4Update(prog)
    caught = []
    for v in vectors:
        expected = [(e.verdict, e.port, e.data) for e in v.expected]
        assert _outputs(real, v) == expected, v.name  # the vectors hold the oracle's results
        if _outputs(mutant, v) != expected:
            caught.append(v)
    on_l4 = [v for v in caught if l4 in real.parse(v.packets[0].data).valid]
    assert on_l4, f"no generated vector tells a missing {l4} checksum update apart"
    # and the difference is the one the update makes: a translated address, a changed L4 checksum
    v = on_l4[0]
    before = real.parse(v.packets[0].data)
    after = real.parse(v.expected[0].data)
    assert (before.values["ipv4.src"], before.values["ipv4.dst"]) != (
        after.values["ipv4.src"],
        after.values["ipv4.dst"],
    )
    assert before.values[f"{l4}.checksum"] != after.values[f"{l4}.checksum"]
    assert after.error is None  # the output still verifies (ipv4 checksum recomputed)


def test_an_update_over_unchanged_fields_does_not_count_as_covered() -> None:
    prog = program(NAT44)
    g = generate(prog, seed=0)
    tcp_update = _l4_update_ids(prog, "tcp")
    assert tcp_update
    assert not set(tcp_update) & set(g.coverage["statements"]["uncovered"])
    parse = Interpreter(prog).parse
    translated = next(
        v
        for v in g.vectors
        if "tcp" in parse(v.packets[0].data).valid and any(e.table == "snat" for e in v.control.entries)
    )
    interp = TracingInterpreter(prog)
    cov = Coverage(stmts_all=[f"stmt:{sid}" for sid, _, _ in statement_points(prog)])
    interp.install(ControlState())  # no NAT entry: nothing changes, the update runs but is a no-op
    (r,) = interp.run(translated.packets, {})
    untranslated = cov.items(r)
    assert any(it.startswith("stmt:") for it in untranslated)  # other statements did run
    assert not set(tcp_update) & untranslated
    interp.install(translated.control)  # source translated: the same statement now counts
    (r,) = interp.run(translated.packets, {})
    assert set(tcp_update) <= cov.items(r)


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_feasible_statement_is_executed(spec: Path) -> None:
    prog = program(spec)
    stmts = generate(prog, seed=0).coverage["statements"]
    assert stmts["total"] == len(statement_points(prog)) > 0
    assert stmts["uncovered"] == [], f"{spec.stem}: {stmts['uncovered']}"
    for inf in stmts["infeasible"]:
        assert inf["reason"], inf
