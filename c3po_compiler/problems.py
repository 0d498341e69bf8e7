"""One shape for every complaint about a spec.

Every stage (YAML, schema, IR lowering, semantic passes) reports through `Problem`, so a user sees the same
`file:line:col: error: message (at $.json.path)` line whatever found the mistake, and tests can compare them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .text import terminal_text

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Loc:
    """Where a spec node came from: file, 1-based line and column, and its JSON path in that file."""

    file: str
    line: int
    col: int
    path: str = "$"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN = Loc("<generated>", 0, 0, "$")


@dataclass(frozen=True)
class Problem:
    severity: Severity
    message: str
    loc: Loc
    hint: str | None = None

    def format(self) -> str:
        """The message line and, with a hint, the hint line: always exactly those lines, whatever text from the
        spec (file name, key, value) they echo, since `terminal_text` escapes every control character."""
        text = terminal_text(f"{self.loc}: {self.severity}: {self.message} (at {self.loc.path})")
        if self.hint:
            text += f"\n    hint: {terminal_text(self.hint)}"
        return text

    def __str__(self) -> str:
        return self.format()


class SpecError(Exception):
    """Raised with every problem found so far; the CLI prints them all and exits 1."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.loc.file, p.loc.line, p.loc.col, p.message))
        super().__init__("\n".join(p.format() for p in self.problems))


def error(loc: Loc, message: str, hint: str | None = None) -> Problem:
    return Problem("error", message, loc, hint)


def warning(loc: Loc, message: str, hint: str | None = None) -> Problem:
    return Problem("warning", message, loc, hint)


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """A hint naming the closest known names, as compilers do for typos."""
    candidates = sorted(set(known))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    if candidates and len(candidates) <= 8:
        return "known: " + ", ".join(candidates)
    return None


def suggest(name: str, known: Iterable[str]) -> str:
    """`did_you_mean`, or else what is known (the first 8 names of a longer list), or that nothing is: a hint
    for every misspelt name."""
    names = sorted(set(known))
    return did_you_mean(name, names) or ("none is defined here" if not names
                                         else "known: " + ", ".join(names[:8]) + ", ...")


def undefined(loc: Loc, kind: str, name: str, known: Iterable[str]) -> Problem:
    return error(loc, f"undefined {kind} '{name}'", suggest(name, known))


def duplicate(loc: Loc, kind: str, name: str, first: Loc) -> Problem:
    return error(loc, f"duplicate {kind} '{name}'", f"first defined at {first}")
