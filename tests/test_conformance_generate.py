"""Vector generation: full coverage of the feasible on every example, determinism, and error cases."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from conformance.generate import enumerate_paths, generate
from conformance.runner import RunRequest, run_conformance
from conformance.vector_io import dumps_jsonl

from .conftest import EXAMPLES, FUZZ, ROOT, SUITE, SUITE_FUZZ, generated


@cache
def program(path: Path) -> ir.Program:
    return load_program(path).program


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_feasible_item_is_covered(spec: Path) -> None:
    g = generated(spec, 1, FUZZ)  # the run's shared generation (coverage is taken before the fuzz)
    for part, c in g.coverage.items():
        assert c["feasible"] > 0 or part in ("table_actions", "branches") or c.get("class"), part
        assert c["uncovered"] == [], f"{spec.stem}: {part} not covered: {c['uncovered']}"
        for inf in c["infeasible"]:
            assert inf["reason"], inf
    assert g.coverage["parse_paths"]["covered"] == len(
        {
            v.provenance["path"]
            for v in g.vectors
            if "parse" in v.tags or any(t.startswith("parse_error") for t in v.tags)
        }
    )


SUITE_PROGRAMS = [p for p in SUITE if not p.name.endswith(".vectors.yaml")]


def test_suite_has_thirty_programs_and_they_are_fully_covered() -> None:
    assert len(SUITE_PROGRAMS) >= 30
    for spec in SUITE_PROGRAMS:  # the generation the scale and p4 tests run (coverage is taken before the fuzz)
        g = generated(spec, 1, SUITE_FUZZ)
        for part, c in g.coverage.items():
            assert c["uncovered"] == [], f"{spec.stem}: {part}: {c['uncovered']}"


def test_same_seed_same_bytes_other_seed_other_packets() -> None:
    prog = program(ROOT / "spec" / "examples" / "tlv_parser.yaml")
    a = dumps_jsonl(generate(prog, seed=5, fuzz=20).vectors, prog)
    b = dumps_jsonl(generate(prog, seed=5, fuzz=20).vectors, prog)
    c = dumps_jsonl(generate(prog, seed=6, fuzz=20).vectors, prog)
    assert a == b
    assert a != c


def test_error_paths_are_generated_and_expected_by_the_oracle() -> None:
    prog = program(ROOT / "conformance" / "suite" / "header_stack.yaml")
    g = generate(prog, seed=0)
    errors = {v.expected[0].observations.get("parser_error") for v in g.vectors}
    assert {"stack_overflow", "truncated"} <= errors
    prog = program(ROOT / "conformance" / "suite" / "checksum_verify.yaml")
    assert any(v.expected[0].observations.get("parser_error") == "checksum" for v in generate(prog).vectors)


def test_stack_loops_unroll_to_the_stack_size() -> None:
    prog = program(ROOT / "conformance" / "suite" / "header_stack.yaml")
    labels = [p.label for p in enumerate_paths(prog)]
    assert "ethernet-vlan-vlan-accept" in labels
    assert "ethernet-vlan-vlan-vlan-stack_overflow" in labels
    assert not any(label.count("vlan") > 3 for label in labels)


def test_infeasible_items_are_explained() -> None:
    g = generate(program(ROOT / "spec" / "examples" / "mpls_lsr.yaml"))
    inf = g.coverage["parse_paths"]["infeasible"]
    assert inf and all("every value matches an earlier case" in i["reason"] for i in inf)


def test_fuzz_vectors_pass_on_the_reference() -> None:
    spec = ROOT / "spec" / "examples" / "gre_tunnel.yaml"
    vectors = generate(program(spec), seed=3, fuzz=40).vectors
    fuzz = [v for v in vectors if "fuzz" in v.tags]
    assert len(fuzz) == 40 and {t for v in fuzz for t in v.tags} >= {"valid", "mutated", "truncated"}
    (report,) = run_conformance([RunRequest(str(spec), fuzz)], ["ref"], jobs=1)
    assert {o.outcome for o in report.outcomes} == {"PASS"}


def test_output_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    spec = ROOT / "spec" / "examples" / "l2_switch.yaml"
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"{hash_seed}.jsonl"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "c3po_compiler.cli",
                "conformance",
                "gen",
                str(spec),
                "-o",
                str(out),
                "--fuzz",
                "5",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize(
    ("spec", "label", "winner"),
    [
        ("match_ternary", "priority_wins", "highest priority"),
        ("match_ternary", "tie_first_installed", "first installed"),
        ("match_lpm", "longest_prefix", "longest prefix"),
        ("match_lpm", "longest_prefix_installed_first", "longest prefix"),
    ],
)
def test_match_semantics_vectors_tell_the_entries_apart(spec: str, label: str, winner: str) -> None:
    prog = program(ROOT / "conformance" / "suite" / f"{spec}.yaml")
    v = next(x for x in generate(prog).vectors if x.name == f"sem.t.{label}")
    a, b = v.control.entries[-2:]
    assert a.args != b.args, "the two entries must lead to different results"
    if winner == "highest priority":
        expected = max((a, b), key=lambda e: e.priority)
    elif winner == "first installed":
        assert a.priority == b.priority
        expected = a
    else:
        expected = max((a, b), key=lambda e: next(m.b for m in e.match if m.kind == "prefix"))
    assert v.expected[0].verdict == "forward" and v.expected[0].port == expected.args[0]


@pytest.mark.parametrize(
    "spec",
    [
        ROOT / "spec" / "examples" / "gre_tunnel.yaml",  # a lookahead default edge fixes the IPv4 IHL byte
        ROOT / "spec" / "examples" / "l2_switch.yaml",  # a branch needing a unicast frame on a port argument
        ROOT / "conformance" / "suite" / "shift_and_slice.yaml",  # a condition on a computed value
    ],
    ids=lambda p: p.stem,
)
def test_full_coverage_does_not_depend_on_a_lucky_seed(spec: Path) -> None:
    """Each of these once lost coverage on some seeds (1, 2 or 3) that seed 0 happened to avoid."""
    for seed in range(1, 6):
        g = generate(program(spec), seed=seed)
        for part, c in g.coverage.items():
            assert c["uncovered"] == [], f"{spec.stem} seed {seed}: {part}: {c['uncovered']}"
            assert not any("varlen length" in inf["reason"] for inf in c["infeasible"]), (seed, part)
