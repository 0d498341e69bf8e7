"""docs/targets.md publishes exactly the capabilities the targets declare, and refusals follow them."""

from __future__ import annotations

from c3po_compiler import load_program
from c3po_compiler.capability_matrix import DOC, render_doc
from c3po_compiler.features import FEATURES, program_features
from c3po_compiler.target_api import Target, available_targets, load_target

from .conftest import EXAMPLES


def test_targets_doc_matrix_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render_doc(text) == text, "run: python -m c3po_compiler.capability_matrix --write"


def test_every_declared_capability_is_a_known_feature() -> None:
    for name in available_targets():
        target = load_target(name)
        assert target.supports <= set(FEATURES), (name, sorted(target.supports - set(FEATURES)))


class _Narrow(Target):
    name = "narrow"
    supports = frozenset({"match_exact"})

    def render(self, prog):  # type: ignore[no-untyped-def]
        return {}


def test_refusal_names_each_missing_feature() -> None:
    prog = load_program(next(p for p in EXAMPLES if p.stem == "router")).program
    problems = _Narrow().refusals(prog)
    missing = program_features(prog) - {"match_exact"}
    assert len([p for p in problems if "cannot do" in p.message]) == len(missing)
    assert all("target 'narrow'" in p.message for p in problems)
