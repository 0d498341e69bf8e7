"""`c3po conformance mutate`: operator sites, sampling, classification (killed, equivalent, survived) and the
command's report and exit statuses. Builds go through gcc (nic) and clang + BPF_PROG_TEST_RUN (xdp); each test
picks a handful of mutants so the whole file stays fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.cli import main as c3po_main
from conformance.generate import generate
from conformance.mutate import (
    MutantResult,
    MutationRun,
    NicBuilder,
    elf_code_hash,
    format_report,
    mutate,
    sample_mutants,
)
from conformance.mutate_ops import Mutant, find_mutants

from .conftest import ROOT, need_bpf, need_tool

SPEC = str(ROOT / "conformance" / "suite" / "match_exact.yaml")

C_SOURCE = """#include <stdint.h>
/* ---- table t (demo.yaml:15): exact */
static int f(const uint8_t *p, const uint8_t *end, struct s *st) {
    uint32_t n = 3; /* a < b in a comment is not a site */
    if (p + 14 > end) return 0;
    st->x = n << 2;  // shifts and arrows are not relational operators
    st->y = bpf_htons(n) + 1;
    return XDP_PASS;
}
"""


def _sites(text: str, lang: str = "c") -> list[tuple[str, str, str]]:
    return [(m.operator, m.original, m.replacement) for m in find_mutants(text, "demo.c", lang, "demo")]


def test_sites_come_from_code_only_with_their_origin() -> None:
    sites = _sites(C_SOURCE)
    assert ("relational", ">", ">=") in sites
    assert ("bounds", "p + 14 > end", "0") in sites
    assert ("byteorder", "bpf_htons", "") in sites
    assert ("verdict", "XDP_PASS", "XDP_DROP") in sites
    assert ("arithmetic", "+", "-") in sites
    assert ("constant", "14", "15") in sites and ("constant", "14", "13") in sites
    assert ("statement", "st->x = n << 2;", ";") in sites
    # never inside a comment, an #include, `->` or `<<`; a declaration is not deleted
    originals = {o for _, o, _ in sites}
    assert not originals & {"<", "<<", "->", "uint32_t n = 3;"}
    assert all(m.origin == "demo.yaml:15" for m in find_mutants(C_SOURCE, "demo.c", "c", "demo"))
    m = next(m for m in find_mutants(C_SOURCE, "demo.c", "c", "demo") if m.operator == "bounds")
    assert (m.line, m.line_before, m.line_after) == (5, "if (p + 14 > end) return 0;", "if (0) return 0;")
    assert m.apply(C_SOURCE).count("if (0) return 0;") == 1


def test_p4_type_brackets_are_not_comparisons() -> None:
    p4 = """control C(inout bit<16> x) {
    register<bit<32>>(4) r;
    apply {
        if (x < 16w5) { meta.c3po_verdict = 2w3; mark_to_drop(standard_metadata); }
    }
}
"""
    sites = _sites(p4, "p4")
    assert [s for s in sites if s[0] == "relational"] == [("relational", "<", "<=")]
    assert ("verdict", "2w3", "2w0") in sites
    assert ("statement", "mark_to_drop(standard_metadata);", ";") in sites
    assert ("constant", "16w5", "16w6") in sites


def test_sampling_is_deterministic() -> None:
    mutants = find_mutants(C_SOURCE * 5, "demo.c", "c", "demo")
    a = [m.id for m in sample_mutants(mutants, 7, seed=3)]
    assert a == [m.id for m in sample_mutants(mutants, 7, seed=3)]
    assert a == sorted(a) and len(set(a)) == 7
    assert a != [m.id for m in sample_mutants(mutants, 7, seed=4)]
    assert len(sample_mutants(mutants, 10_000, seed=0)) == len(mutants)


def test_report_lists_every_survivor_with_its_place_and_spec_line() -> None:
    ms = find_mutants(C_SOURCE, "demo.c", "c", "demo")
    run = MutationRun("demo.yaml", "demo", "nic", "demo.c", len(ms), 0, 5, {"PASS": 5})
    run.results = [MutantResult(ms[0], "killed", "v1: FAIL"), MutantResult(ms[1], "survived"),
                   MutantResult(ms[2], "equivalent"), MutantResult(ms[3], "stillborn", "does not build")]
    text = "\n".join(format_report(run))
    assert "mutation score: 50.0% (1/2)" in text
    assert f"demo.c:{ms[1].line}:{ms[1].column}: {ms[1].operator}" in text
    assert "<- demo.yaml:15" in text and "survivors (1), by function: f 1" in text
    assert run.to_json()["counts"] == {"killed": 1, "survived": 1, "equivalent": 1, "stillborn": 1}


def test_bad_target_and_bad_spec_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "fpga"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown target 'fpga'" in err[0]
    assert c3po_main(["conformance", "mutate", str(tmp_path / "none.yaml"), "--target", "nic"]) == 1
    err = capsys.readouterr().err
    assert "spec file not found" in err.splitlines()[0] and "Traceback" not in err


def test_missing_tools_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(NicBuilder, "unavailable", lambda self: "the nic driver needs a C compiler")
    assert c3po_main(["conformance", "mutate", SPEC, "--target", "nic", "--sample", "1"]) == 2
    assert "needs a C compiler" in capsys.readouterr().err


Site = tuple[str, str, str]  # (operator, text in the site's line, replacement)


def _run(target: str, tmp_path: Path, pick: list[Site], jobs: int = 1) -> dict[Site, str]:
    """Status of each picked mutant, named (operator, text in its line, replacement)."""
    prog = load_program(SPEC).program

    def chosen(m: Mutant) -> bool:
        return any(m.operator == op and text in m.line_before and m.replacement == repl for op, text, repl in pick)

    run = mutate(SPEC, prog, target, generate(prog, seed=0).vectors, tmp_path, select=chosen, jobs=jobs)
    out: dict[Site, str] = {}
    for r in run.results:
        for op, text, repl in pick:
            if r.mutant.operator == op and text in r.mutant.line_before and r.mutant.replacement == repl:
                out.setdefault((op, text, repl), r.status)
    assert set(out) == set(pick), f"sites not found in the generated code: {set(pick) - set(out)}"
    return out


def test_nic_verdict_flip_is_killed_and_identical_code_is_equivalent(tmp_path: Path) -> None:
    need_tool("gcc")
    killed = ("verdict", "case MATCH_EXACT_ACTION_drop: c->verdict = MATCH_EXACT_DROP", "MATCH_EXACT_TO_HOST")
    # every parser error returns DROP: which error code the truncation check stores compiles to the same code
    same = ("constant", "{ err = 1; goto parse_error; }", "2")
    got = _run("nic", tmp_path, [killed, same], jobs=2)  # two slots built and run at once
    assert got == {killed: "killed", same: "equivalent"}


def test_xdp_verdict_flip_is_killed_and_dead_store_is_equivalent(tmp_path: Path) -> None:
    need_bpf()
    killed = ("verdict", "return C3PO_RET(XDP_DROP); /* nothing to deparse", "XDP_PASS")
    dead = ("verdict", "__u32 verdict = C3PO_V_TO_HOST;", "C3PO_V_DROP")  # the variable is never read
    got = _run("xdp", tmp_path, [killed, dead])
    assert got == {killed: "killed", dead: "equivalent"}


def test_command_reports_score_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_tool("gcc")
    out = tmp_path / "m.json"
    args = ["conformance", "mutate", SPEC, "--target", "nic", "--sample", "3", "--seed", "5", "-q",
            "--json", str(out), "--operators", "verdict,relational"]
    assert c3po_main(args) == 0
    text = capsys.readouterr().out
    assert "match_exact on nic: 3 of" in text and "mutation score:" in text
    first = json.loads(out.read_text())
    assert first["sampled"] == 3 and sum(first["counts"].values()) == 3
    assert {m["operator"] for m in first["mutants"]} <= {"verdict", "relational"}
    assert all(m["origin"].endswith(tuple(f":{n}" for n in range(1, 100))) for m in first["mutants"] if m["origin"])
    assert c3po_main(args) == 0  # the same seed samples the same mutants
    again = json.loads(out.read_text())
    assert [m["id"] for m in again["mutants"]] == [m["id"] for m in first["mutants"]]


def test_equivalence_ignores_debug_information(tmp_path: Path) -> None:
    need_tool("gcc")
    import subprocess

    objs = []
    for i, body in enumerate(["int f(int x) { return x + 1; }\n", "int f(int x) {\n  return x + 1; /* c */ }\n",
                              "int f(int x) { return x + 2; }\n"]):
        src, obj = tmp_path / f"s{i}" / "f.c", tmp_path / f"s{i}" / "f.o"
        src.parent.mkdir()
        src.write_text(body)
        subprocess.run(["gcc", "-O2", "-g", "-c", str(src), "-o", str(obj)], check=True)
        objs.append(elf_code_hash(obj))
    assert objs[0] == objs[1] != objs[2]


def test_p4_equivalence_ignores_source_paths_and_lines(tmp_path: Path) -> None:
    from conformance.mutate import bmv2_code_hash

    info = tmp_path / "p4info.txtpb"
    info.write_text("tables {}\n")

    def hashed(name: str, doc: dict[str, object]) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return bmv2_code_hash(path, info)

    action = {"name": "drop", "primitives": [{"op": "mark_to_drop"}]}
    a = hashed("a.json", {"program": "/a/x.p4", "actions": [{**action, "source_info": {"line": 3}}]})
    b = hashed("b.json", {"program": "/b/x.p4", "actions": [{**action, "source_info": {"line": 9}}]})
    c = hashed("c.json", {"program": "/a/x.p4", "actions": [{"name": "drop", "primitives": []}]})
    assert a == b != c
