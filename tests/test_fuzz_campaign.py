"""The hostile-input campaign script (scripts/fuzz_campaign.py, issue 12) at CI size, and proof that it notices
what it is there to notice: an exception that would be exit 70, and a hang.

The long run (100,000 mutants) was made once; its figures are in docs/robustness.md. Here 200 mutants of every
kind must give no internal error, no hang and no other finding, within the CI time budget.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "fuzz_campaign.py"


@pytest.fixture(scope="module")
def campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_campaign", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_campaign"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_200_mutants_no_internal_error_no_hang(tmp_path: Path) -> None:
    out = tmp_path / "campaign.json"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--count", "200", "--seed", "12", "--working-tree",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["finished"] and report["mutants"] == 200, proc.stderr
    assert report["findings"] == 0, json.dumps(report["findings_listed"], indent=1)
    for bad in ("internal", "hang", "memory"):
        assert report["outcomes"].get(bad, 0) == 0, report["outcomes"]
    assert proc.returncode == 0, proc.stderr
    # every kind of mutant was made, and both outcomes a mutant can cleanly have occurred
    assert all(sum(counts.values()) > 0 for counts in report["by_kind"].values()), report["by_kind"]
    assert report["outcomes"]["accepted"] > 0 and report["outcomes"]["rejected"] > 0
    assert report["max_seconds"]["seconds"] < 10 and report["max_peak_rss"]["peak_kib"] < 1 << 20
    assert "[200/200]" in proc.stderr  # the progress count
    assert time.monotonic() - start < 60


def test_mutants_are_a_function_of_seed_and_index(campaign: ModuleType, tmp_path: Path) -> None:
    corpus = campaign.build_corpus(campaign.snapshot(None, tmp_path))
    one = [campaign.make_mutant(corpus, 3, i) for i in range(30)]
    again = [campaign.make_mutant(corpus, 3, i) for i in range(30)]
    other = [campaign.make_mutant(corpus, 4, i) for i in range(30)]
    assert [m.data for m in one] == [m.data for m in again]
    assert [m.data for m in one] != [m.data for m in other]
    assert all(m.data != m.source.text.encode() for m in one[:10] if m.kind.endswith("text"))


@pytest.fixture
def runner(campaign: ModuleType, tmp_path: Path) -> Iterator[Any]:
    tree = campaign.snapshot(None, tmp_path / "work")  # the checkout's files, as this test process imports them
    r = campaign.Runner(tree, campaign.build_corpus(tree), tmp_path / "repro")
    yield r
    r.close()


def _unchanged_spec(campaign: ModuleType, runner: Any) -> Any:
    source = next(s for s in runner.corpus.specs if s.rel.endswith("router.yaml"))
    return campaign.Mutant(7, "spec-text", source, source.text.encode())


def test_an_exception_is_an_internal_error_with_a_reproducer(campaign: ModuleType, runner: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mutant = _unchanged_spec(campaign, runner)
    assert runner.run(mutant, 10.0)["outcome"] == "accepted"

    def broken(path: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr("c3po_compiler.cli.load_program", broken)
    result = runner.run(mutant, 10.0)
    assert result["outcome"] == "internal"
    assert "KeyError: 'a bug'" in result["findings"][0]
    saved = Path(result["reproducer"])
    assert saved.read_bytes() == mutant.data
    note = json.loads(saved.with_name(saved.name + ".json").read_text(encoding="utf-8"))
    assert note["command"][:2] == ["c3po", "check"] and note["replaces"] == "spec/examples/router.yaml"


def test_a_slow_mutant_is_a_hang(campaign: ModuleType, runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("c3po_compiler.cli.load_program", lambda path: time.sleep(5))
    start = time.monotonic()
    result = runner.run(_unchanged_spec(campaign, runner), 0.3)
    assert result["outcome"] == "hang" and result["restart"]
    assert time.monotonic() - start < 2


def test_forged_output_and_missing_hints_are_findings(campaign: ModuleType, runner: Any) -> None:
    mutant = _unchanged_spec(campaign, runner)
    assert runner.judge(mutant, "rejected", "", "s.yaml:1:2: error: bad (at $)\n    hint: fix it\ns.yaml: 1 error\n") == []
    found = runner.judge(mutant, "rejected", "", "s.yaml:1:2: error: bad (at $)\ns.yaml: 1 error\n")
    assert found and found[0].startswith("error without a hint")
    found = runner.judge(mutant, "rejected", "", "s.yaml:1:2: error: \x1b[31mbad (at $)\n    hint: x\n")
    assert found and found[0].startswith("unsafe output line")
