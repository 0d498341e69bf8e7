"""Diagnostics (issue 12, class 8): a spec cannot forge error lines, every error has a hint, schema errors speak
the project's words.

* Whatever a spec's keys, values or file name contain (ESC sequences, newlines, NUL, bidi overrides, line
  separators), one problem prints as exactly its message line and its hint line, and no control character
  reaches the terminal: `Problem.format` escapes through `text.terminal_text`.
* Every error of the bad-spec corpus, and of the hostile specs here, has a hint.
* Schema errors never show jsonschema's text ("is not of type", "is a required property") or Python's type
  names (NoneType, str).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c3po_compiler import load_program
from c3po_compiler.cli import main
from c3po_compiler.problems import Loc, Problem, SpecError, error
from c3po_compiler.text import terminal_lines, terminal_text

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "spec" / "protocols"
BAD_SPECS = sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml")) + sorted(
    p for p in (ROOT / "conformance" / "suite").glob("*.yaml") if not p.name.endswith(".vectors.yaml"))
PROBLEM_LINE = re.compile(r"^.+:\d+:\d+: (error|warning): .+ \(at \$.*\)$")
HINT_LINE = re.compile(r"^    hint: .+$")
SUMMARY_LINE = re.compile(r"^.+: \d+ errors?$")
HOSTILE = ["\x1b[31m", "\x1b]0;owned\x07", "\n", "\r", "\x00", "\u202e", "\u2066", "\u2028", "\u2029", "\x85",
           "\x9b", "\x7f", "\t", "\u200b", "\x1b[2K\rfake.yaml:1:1: error: forged"]
JSONSCHEMA_WORDS = ("NoneType", "is not of type", "is a required property", "does not match", "is not one of",
                    "Additional properties", "is not valid under any", "should be non-empty", "is too long",
                    "is less than", "is greater than", "found str", "found int", "found dict", "found list",
                    "found bool")

SPEC = f"""\
c3po: 1
program: diag
include: [{PROTOCOLS / 'ethernet.yaml'}, {PROTOCOLS / 'ipv4.yaml'}]
metadata: {{nexthop: 16}}
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {{0x0800: ipv4}}
      default: accept
    ipv4:
      extract: ipv4
tables:
  routes_v4:
    key: {{ipv4.dst: lpm}}
    actions: [set_port, drop]
    default: drop
    size: 16
actions:
  set_port:
    params: {{port: 16}}
    do: [forward(port)]
control:
  - if: valid(ipv4)
    then: [apply: routes_v4]
"""


def safe(text: str) -> bool:
    """No character a terminal would act on: every line printable."""
    return all(line.isprintable() for line in text.split("\n"))


def check_output(err: str) -> None:
    for line in err.splitlines():
        assert line.isprintable(), repr(line)
        assert PROBLEM_LINE.match(line) or HINT_LINE.match(line) or SUMMARY_LINE.match(line), repr(line)


def check_problem(p: Problem) -> None:
    text = p.format()
    assert safe(text), repr(text)
    lines = text.split("\n")
    assert len(lines) == (2 if p.hint else 1), repr(text)
    assert PROBLEM_LINE.match(lines[0]), repr(lines[0])


def problems_of(path: Path) -> list[Problem]:
    try:
        return load_program(path).warnings
    except SpecError as exc:
        return list(exc.problems)


def run_check(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(path)])
    return code, out.getvalue(), err.getvalue()


# -- escaping ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", HOSTILE)
def test_terminal_text_escapes_every_control_character(bad: str) -> None:
    shown = terminal_text(f"a{bad}b")
    assert shown.isprintable() and "\n" not in shown
    assert shown.startswith("a") and shown.endswith("b")


def test_terminal_text_leaves_ordinary_text_alone() -> None:
    for text in ("spec/examples/router.yaml", "expected one of: exact, lpm", "café → ünïcode", "a\\nb"):
        assert terminal_text(text) == text
    assert terminal_text("\x1b[31m\n\u202e\x00") == "\\x1b[31m\\n\\u202e\\x00"
    assert terminal_lines("one\x1b\ntwo\u2028") == "one\\x1b\ntwo\\u2028"


def test_a_problem_is_exactly_its_lines() -> None:
    loc = Loc("a\x1b[2J\n.yaml", 3, 4, "$.x['\n']")
    p = error(loc, "unknown key '\x1b[31m\nfake.yaml:1:1: error: forged'", "did you mean '\u202eabc'?\n\x00")
    check_problem(p)
    assert "\\x1b[31m\\nfake.yaml:1:1: error: forged" in p.format()


@pytest.mark.parametrize("bad", HOSTILE, ids=[repr(b) for b in HOSTILE])
def test_hostile_keys_values_and_file_name(tmp_path: Path, bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quoted = bad.encode("unicode_escape").decode().replace('"', '\\"')
    text = (SPEC.replace("    size: 16", f'    "size{quoted}": "x{quoted}"')
            .replace("program: diag", f'program: "diag{quoted}"')
            .replace("default: drop", f'default: "drop{quoted}"')
            .replace("do: [forward(port)]", f'do: ["forward(port{quoted})"]')
            .replace("    ipv4:\n      extract: ipv4", f'    ipv4:\n      extract: "ipv4{quoted}"'))
    name = "spec" + bad.replace("\x00", "") .replace("/", "") + ".yaml"
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    problems = problems_of(Path(name))
    assert [p for p in problems if p.severity == "error"], "the hostile spec was accepted"
    for p in problems:
        check_problem(p)
    code, out, err = run_check(Path(name))
    assert code == 1
    assert safe(out)
    check_output(err)
    assert len([line for line in err.splitlines() if PROBLEM_LINE.match(line)]) == len(problems)


def test_raw_control_characters_in_the_yaml_text(tmp_path: Path) -> None:
    spec = tmp_path / "raw.yaml"
    spec.write_text(SPEC.replace("program: diag", "program: diag\x1b[31m\x00"), encoding="utf-8")
    code, out, err = run_check(spec)
    assert code == 1 and safe(out)
    check_output(err)


_CHARS = st.sampled_from(HOSTILE) | st.characters(max_codepoint=0x3000).map(str)
# Structural edits too: YAML and expression syntax, wrong types, names, out-of-range values.
_WORDS = st.sampled_from(["", ": ", "- ", "[", "}", "(", "&&", "==", "null", "true", "abc", "-5", "99999999999",
                          "{}", "[]", "x(1)", "vlan[9]", "1.2.3", "accept", "\n  bogus: 1\n", "\t"])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module-scoped because hypothesis refuses function-scoped fixtures (they are not reset between examples); a
    directory of pytest's, unlike the mkdtemp at import this replaces, which left one behind per run and worker."""
    return tmp_path_factory.mktemp("diag")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(EXAMPLES), edits=st.lists(st.tuples(st.floats(0, 1), _CHARS | _WORDS, st.integers(0, 8)),
                                                       min_size=1, max_size=4))
def test_mutated_specs_never_forge_a_line_and_every_error_has_a_hint(work: Path, spec: Path,
                                                                    edits: list[tuple[float, str, int]]) -> None:
    text = spec.read_text(encoding="utf-8")
    for where, bad, cut in edits:
        i = int(where * len(text))
        text = text[:i] + bad + text[i + cut:]
    path = work / spec.name
    path.write_text(text.replace("../../spec/protocols/", f"{PROTOCOLS}/").replace("../protocols/", f"{PROTOCOLS}/"),
                    encoding="utf-8")
    for p in problems_of(path):
        check_problem(p)
        assert p.severity != "error" or p.hint, p.format()
    code, out, err = run_check(path)
    assert code in (0, 1)
    assert safe(out)
    check_output(err)


# -- hints ------------------------------------------------------------------------------------------------------


def _all_errors() -> list[tuple[str, Problem]]:
    found: list[tuple[str, Problem]] = []
    for spec in BAD_SPECS:
        found += [(spec.name, p) for p in problems_of(spec) if p.severity == "error"]
    return found


def test_every_error_has_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    errors = _all_errors()
    assert len(errors) >= 100
    missing = [f"{name}: {p.format()}" for name, p in errors if not p.hint]
    assert not missing, "errors without a hint:\n" + "\n".join(missing)
    for spec in BAD_SPECS[:20]:
        _, _, err = run_check(spec)
        lines = err.splitlines()
        for i, line in enumerate(lines):
            if PROBLEM_LINE.match(line) and ": error: " in line:
                assert i + 1 < len(lines) and HINT_LINE.match(lines[i + 1]), f"{spec.name}: {line}"


# -- schema messages --------------------------------------------------------------------------------------------


SCHEMA_CASES = [
    # (replace, with, expected message, a part of the expected hint)
    ("    size: 16", "    size: null", "expected an integer, found null", "write an integer here"),
    ("    size: 16", "    size: abc", "expected an integer, found 'abc'", "write an integer here"),
    ("    size: 16", "    size: true", "expected an integer, found true", "write an integer here"),
    ("    size: 16", "    size: [1]", "expected an integer, found a list", "write an integer here"),
    ("program: diag", "program: null", "expected a string, found null", "write a string here"),
    ("    size: 16", "    sise: 16", "unknown key 'sise'", "did you mean 'size'? (valid keys: actions,"),
    ("    size: 16", "    colour: 16", "unknown key 'colour'", "valid keys here: actions, counters"),
    ("key: {ipv4.dst: lpm}", "key: {ipv4.dst: fancy}", "'fancy' is not a valid", "expected one of: "),
    ("c3po: 1", "c3po: 2", "2 is not valid here", "expected 1"),
    ("    size: 16", "    size: 0", "0 is out of range", ""),
    ("c3po: 1\n", "", "missing required key 'c3po'", "every spec file starts with 'c3po: 1'"),
    ("    default: drop\n", "    default: drop\n    actions: [set_port, drop]\n", "duplicate key 'actions'", ""),
]


@pytest.mark.parametrize(("old", "new", "message", "hint"), SCHEMA_CASES, ids=[c[2] for c in SCHEMA_CASES])
def test_schema_messages_in_the_project_voice(tmp_path: Path, old: str, new: str, message: str, hint: str) -> None:
    assert old in SPEC
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace(old, new, 1), encoding="utf-8")
    errors = [p for p in problems_of(spec) if p.severity == "error"]
    assert any(message in p.message and p.hint and hint in p.hint for p in errors), \
        "\n".join(p.format() for p in errors)
    for p in errors:
        assert p.hint, p.format()
        for word in JSONSCHEMA_WORDS:
            assert word not in p.format(), p.format()


def test_a_long_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace("    size: 16", f"    size: {'x' * 5000}"), encoding="utf-8")
    (p,) = [p for p in problems_of(spec) if p.severity == "error"]
    assert p.message.startswith("expected an integer, found 'xxx") and len(p.message) < 120


@pytest.mark.parametrize("stmt", ["meta.nexthop = port[", "meta.nexthop = ipv4.ttl["])
def test_an_unclosed_index_at_the_end_is_an_error_not_a_crash(tmp_path: Path, stmt: str) -> None:
    """Found by the mutation campaign: `x[` at the end of an expression raised IndexError (exit 70)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace("do: [forward(port)]", f'do: [forward(port), "{stmt}"]'), encoding="utf-8")
    code, _, err = run_check(spec)
    assert code == 1
    check_output(err)
    assert "expected a value but found 'end of expression'" in err


# -- conformance runs: vector names and details from files ---------------------------------------------------------


def test_a_hostile_vector_name_reaches_the_terminal_escaped(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A vector's name is printed in the run's failure lines: an ESC sequence and a newline in it must neither
    colour the terminal nor start a line that looks like the report's own."""
    evil = "\x1b[31mevil\nFAIL forged/vector on xdp\x1b[0m"
    vectors = tmp_path / "v.yaml"
    vectors.write_text(json.dumps({"c3po_vectors": 1, "vectors": [{
        "name": evil, "packets": [{"port": 1, "data": "020000000002020000000001 88b5"}],
        "expected": [{"verdict": "forward", "port": 7, "data": ""}]}]}), encoding="utf-8")
    spec = ROOT / "conformance" / "suite" / "action_drop.yaml"
    code = main(["conformance", "run", str(spec), "--vectors", str(vectors), "--targets", "ref", "-q"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert safe(out) and safe(err), repr(out + err)
    assert "FAIL action_drop/\\x1b[31mevil\\nFAIL forged/vector on xdp\\x1b[0m on ref" in out.splitlines()
    assert not [line for line in out.splitlines() if line.startswith("FAIL forged")]


def test_report_lines_escape_target_names_and_reasons() -> None:
    """Target names come from the command line (`cmd:PROGRAM`), reasons from drivers: a reason keeps its line
    breaks (a compiler's output is several lines by design) but no line carries a control character."""
    from conformance import reports
    from conformance.runner import RunReport, TargetStatus, VectorOutcome

    run = RunReport("s.yaml", "p", [], [TargetStatus("cmd:x\x1b[2J", True), TargetStatus("nic", False,
                                                                                        "gcc failed:\nline\x07 2")],
                    [VectorOutcome("cmd:x\x1b[2J", "v\r1", "ERROR", ["plugin said \x1b]0;t\x07"])])
    for text in (reports.terminal([run]), reports.feature_table([run])):
        assert safe(text), repr(text)
    text = reports.terminal([run])
    assert "ERROR p/v\\r1 on cmd:x\\x1b[2J" in text and "    plugin said \\x1b]0;t\\x07" in text
    assert "nic: skipped (gcc failed:\nline\\x07 2)" in text
