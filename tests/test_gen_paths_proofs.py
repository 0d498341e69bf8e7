"""A path the caller's own planned values make impossible is given up at once, not redrawn.

`Builder.recs_for` redraws a path whose first draw left a select without a solution (RETRIES times): a random
value an earlier state kept may be what blocks it. When the select's fixed bits were all fixed by the caller's
overrides, no draw changes them, and the exhaustive search already proved the edge unreachable: redrawing only
costs time (the select-edge class tries many paths per edge; on a 64-label stack it was two thirds of the
generation)."""

from __future__ import annotations

import random

import pytest

from c3po_compiler import load_program
from conformance.gen_paths import Builder, enumerate_paths

from .conftest import ROOT


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    once = Builder._recs_once

    def counting(self: Builder, *args: object) -> object:
        calls[0] += 1
        return once(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Builder, "_recs_once", counting)
    return calls


def test_an_override_that_blocks_an_edge_is_a_proof(counted: list[int]) -> None:
    prog = load_program(ROOT / "spec" / "examples" / "mpls_lsr.yaml").program
    path = next(p for p in enumerate_paths(prog) if p.label == "ethernet-mpls-mpls-mpls_payload-accept")
    # every label's bottom-of-stack bit planned 1: the first label cannot take the 'more labels' case
    _, reason = Builder(prog, random.Random(0)).recs_for(path, {("mpls", "bos"): 1}, True)
    assert reason is not None and reason.endswith("given the planned values (exhaustive)"), reason
    assert counted[0] == 1


def test_without_the_plan_the_same_path_is_solved(counted: list[int]) -> None:
    """The control: it was the planned value that blocked the path, not the path."""
    prog = load_program(ROOT / "spec" / "examples" / "mpls_lsr.yaml").program
    path = next(p for p in enumerate_paths(prog) if p.label == "ethernet-mpls-mpls-mpls_payload-accept")
    recs, reason = Builder(prog, random.Random(0)).recs_for(path, {}, True)
    assert reason is None
    assert [r.values["bos"] for r in recs if r.instance == "mpls"] == [0, 1]
    assert counted[0] == 1
