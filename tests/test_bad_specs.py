"""Every file in tests/bad_specs/ is a spec with one mistake; its header comment says exactly what c3po reports.

Format (see tests/bad_specs/README.md): one `# expect: [FILE:]LINE:COL: SEVERITY: MESSAGE [(hint: HINT)]` line per
diagnostic. FILE defaults to the spec itself (other files are named relative to it); the hint, when given, must
match exactly. The diagnostics reported must be exactly the expected ones — no more, no fewer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.problems import Problem, SpecError

BAD_SPECS = Path(__file__).resolve().parent / "bad_specs"
SPECS = sorted(BAD_SPECS.glob("*.yaml"))
_EXPECT = re.compile(
    r"^#\s*expect:\s*(?:(?P<file>[^:\s]+\.yaml):)?(?P<line>\d+):(?P<col>\d+):\s*(?P<sev>error|warning):\s*"
    r"(?P<msg>.*?)(?:\s+\(hint:\s*(?P<hint>.*)\))?\s*$"
)


@dataclass(frozen=True)
class Expected:
    file: Path
    line: int
    col: int
    severity: str
    message: str
    hint: str | None


def expectations(spec: Path) -> list[Expected]:
    out: list[Expected] = []
    for text in spec.read_text(encoding="utf-8").splitlines():
        m = _EXPECT.match(text)
        if m:
            file = (spec.parent / m["file"]).resolve() if m["file"] else spec.resolve()
            out.append(Expected(file, int(m["line"]), int(m["col"]), m["sev"], m["msg"], m["hint"]))
        elif text.startswith("# expect"):
            raise AssertionError(f"{spec.name}: malformed expectation line {text!r}")
    return out


def reported(spec: Path) -> list[Problem]:
    try:
        return load_program(spec).warnings
    except SpecError as exc:
        return list(exc.problems)


def matches(exp: Expected, p: Problem) -> bool:
    return (Path(p.loc.file).resolve() == exp.file and (p.loc.line, p.loc.col) == (exp.line, exp.col)
            and p.severity == exp.severity and p.message == exp.message
            and (exp.hint is None or p.hint == exp.hint))


def test_corpus_is_large_enough() -> None:
    assert len(SPECS) >= 40
    assert all(expectations(s) for s in SPECS), [s.name for s in SPECS if not expectations(s)]


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_bad_spec(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD_SPECS.parent.parent)  # messages name files relative to the working directory
    expected = expectations(spec)
    problems = reported(spec)
    shown = "\n".join(p.format() for p in problems) or "(nothing reported)"
    unmatched = [e for e in expected if not any(matches(e, p) for p in problems)]
    assert not unmatched, f"expected but not reported: {unmatched}\nreported:\n{shown}"
    extra = [p for p in problems if not any(matches(e, p) for e in expected)]
    assert not extra, "reported but not expected:\n" + "\n".join(p.format() for p in extra)
