"""Known failures a vendor declares up front, so a run stays green while a bug is tracked, and an
unexpected pass (the bug got fixed) is reported as XPASS instead of going unnoticed.

File format (YAML), a list of rules:

    - vector: "router/ttl_*"     # glob on "program/vector" or the vector name; or
      feature: wide_fields       # glob on a feature the vector's program uses or the vector requires
      target: xdp                # glob on the target name (default "*")
      reason: "TTL .* not decremented"   # optional regex the failure text must match
      note: "bug #123"           # free text, shown in reports

A rule for every vector (`vector: "*"`, no feature) with a `reason` describes a kind of failure, not vectors
that fail: it turns the failures it explains into XFAIL, and a vector that passes stays PASS (not XPASS).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import yaml


class ExpectedFailuresError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    vector: str | None
    feature: str | None
    target: str
    reason: re.Pattern[str] | None
    note: str

    def covers(self, program: str, vector: str, features: set[str], target: str) -> bool:
        if not fnmatch.fnmatchcase(target, self.target):
            return False
        if self.vector is not None and not (
            fnmatch.fnmatchcase(vector, self.vector)
            or fnmatch.fnmatchcase(f"{program}/{vector}", self.vector)
        ):
            return False
        return self.feature is None or any(fnmatch.fnmatchcase(f, self.feature) for f in features)

    @property
    def expects_failure(self) -> bool:
        """Whether a pass under this rule is news (XPASS): not for a rule describing a kind of failure."""
        return not (self.vector == "*" and self.feature is None and self.reason is not None)

    def explains(self, failure_text: str) -> bool:
        return self.reason is None or self.reason.search(failure_text) is not None


@dataclass
class ExpectedFailures:
    rules: list[Rule]

    def match(self, program: str, vector: str, features: set[str], target: str) -> Rule | None:
        for r in self.rules:
            if r.covers(program, vector, features, target):
                return r
        return None


def load_expected_failures(path: str | Path) -> ExpectedFailures:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExpectedFailuresError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ExpectedFailuresError(f"{p}: not valid YAML: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get("expected_failures")
    if not isinstance(doc, list):
        raise ExpectedFailuresError(
            f"{p}: expected a list of rules with 'vector' or 'feature', 'target', 'reason'"
        )
    rules = []
    for i, r in enumerate(doc):
        where = f"{p}: rule {i}"
        if not isinstance(r, dict) or not ({"vector", "feature"} & set(r)):
            raise ExpectedFailuresError(f"{where}: needs 'vector' or 'feature'")
        unknown = set(r) - {"vector", "feature", "target", "reason", "note"}
        if unknown:
            raise ExpectedFailuresError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            reason = re.compile(str(r["reason"])) if r.get("reason") else None
        except re.error as exc:
            raise ExpectedFailuresError(f"{where}: 'reason' is not a regular expression: {exc}") from None
        rules.append(
            Rule(r.get("vector"), r.get("feature"), str(r.get("target", "*")), reason, str(r.get("note", "")))
        )
    return ExpectedFailures(rules)
