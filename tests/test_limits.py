"""Size limits (issue 12, class 2): the language's limits (docs/spec-reference.md section 13), each refused with
a positioned error naming the limit and accepted at the limit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from c3po_compiler.cli import main
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "spec" / "protocols"
PROBLEM = re.compile(r"^\S+\.yaml:\d+:\d+: error: .+ \(at \$[^)]*\)$")


def spec(tmp_path: Path, *, stack: int = 2, counter: int = 8, register: int = 8, table: int = 64,
         priority: int = 5) -> Path:
    text = f"""c3po: 1
program: lim
include: [{PROTOCOLS}/ethernet.yaml, {PROTOCOLS}/vlan.yaml]
instances:
  vlan: {{type: vlan, stack: {stack}}}
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {{"0x8100": vlan}}
      default: accept
    vlan:
      extract: vlan
      select: vlan.last.ethertype
      cases: {{"0x8100": vlan}}
      default: accept
counters: {{c: {{size: {counter}}}}}
registers: {{r: {{width: 32, size: {register}}}}}
tables:
  t:
    key: {{ethernet.dst: ternary}}
    actions: [forward, drop]
    default: drop
    size: {min(table, 64)}
    entries:
      - {{match: {{ethernet.dst: "0x1&&&0xff"}}, action: drop, priority: {priority}}}
  e:
    key: {{ethernet.src: exact}}
    actions: [forward, drop]
    default: drop
    size: {table}
control:
  - count(c, 1)
  - r[1] = r[1] + 1
  - apply: t
  - apply: e
"""
    path = tmp_path / "lim.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("field", "over", "message", "where"), [
    ("stack", 65, "header stack 'vlan' has 65 elements, more than the limit of 64", "$.instances.vlan.stack"),
    ("counter", 1 << 20 | 1, "counter 'c' has 1,048,577 elements, more than the limit of 1,048,576 (2^20)",
     "$.counters.c.size"),
    ("register", 10**9, "register 'r' has 1,000,000,000 elements, more than the limit of 1,048,576 (2^20)",
     "$.registers.r.size"),
    ("table", 1 << 20 | 1, "1048577 is out of range 1..1048576", "$.tables.e.size"),  # the schema's maximum
    ("priority", 1 << 32, "priority 4294967296 is out of range 0..2147483647 (2^31 - 1)",
     "$.tables.t.entries[0].priority"),
])
def test_past_the_limit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, over: int,
                                   message: str, where: str) -> None:
    code, out, err = run(capsys, "check", str(spec(tmp_path, **{field: over})))
    assert code == 1 and out == ""
    lines = err.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err  # no follow-on errors
    assert PROBLEM.match(errors[0]) and message in errors[0] and where in errors[0], err
    assert "Traceback" not in err


def test_at_the_limits_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec(tmp_path, stack=64, counter=1 << 20, register=1 << 20, table=1 << 20, priority=(1 << 31) - 1)
    code, _out, err = run(capsys, "check", str(path))
    assert code == 0, err


def test_build_prints_every_targets_state_footprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_tool("clang", "gcc")
    path = spec(tmp_path, counter=1 << 20)
    code, out, err = run(capsys, "build", str(path), "-t", "xdp,p4,nic", "-o", str(tmp_path / "out"))
    assert code == 0, err
    for target in ("xdp", "p4", "nic"):
        assert re.search(rf"^{target}: state total: [\d,]+ bytes \(", out, re.MULTILINE), out
    # a per-CPU map is counted once per CPU of this machine, and says so
    assert re.search(r"^xdp: map c_c: [\d,]+ bytes \(1048576 entries x 16 bytes x \d+ CPUs\)$", out,
                     re.MULTILINE), out
    assert "p4: counter c: 16,777,216 bytes (1048576 elements x 16 bytes)" in out


def test_build_past_the_memory_budget_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec(tmp_path, register=1 << 20)  # 4 MiB of register on p4 (an estimate, with or without p4c)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "build", str(path), "-t", "p4", "-o", str(out_dir), "--memory-budget", "4M")
    assert code == 1 and "wrote" not in out
    assert re.search(r"^\S+lim\.yaml:\d+:\d+: error: target 'p4' needs [\d,]+ bytes of state \([\d.]+ MiB\), more "
                     r"than the memory budget of 4 MiB \(at \$\)$", err, re.MULTILINE), err
    assert "--memory-budget" in err and "Traceback" not in err
    assert not [p for p in out_dir.rglob("*") if p.is_file()]  # nothing left to load by mistake
    code, out, err = run(capsys, "build", str(path), "-t", "p4", "-o", str(out_dir), "--memory-budget", "5MiB")
    assert code == 0, err
    assert "p4: register r: 4,194,304 bytes (1048576 elements x 4 bytes)" in out


def test_memory_budget_must_be_a_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", str(spec(tmp_path)), "-t", "p4", "--memory-budget", "lots"])
    assert exc.value.code == 2
    assert "'lots' is not a size" in capsys.readouterr().err


APPLIED_TWICE = """c3po: 1
program: twice
headers:
  h0:
    fields: {f0: 8, f1: 8}
parser:
  start: s0
  states:
    s0: {extract: h0}
tables:
  t:
    key: {h0.f0: exact}
    actions: [forward, drop]
    default: drop
    size: 1000
    counters: true
  unused:
    key: {h0.f1: ternary}
    actions: [forward, drop]
    default: drop
    size: 500
control:
  - if: 'h0.f1 == 1'
    then: [{apply: t}]
    else: [{apply: t}]
  - apply: t
"""


def test_p4_footprint_counts_a_table_per_apply_site_as_the_json_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """p4c's JSON holds one table per apply site ('t', 't__2', 't__3', each with its max_size and direct
    counters) and none for a table never applied: the footprint (and so the memory budget) counts the same."""
    import json

    from tests.conftest import need_p4

    path = tmp_path / "twice.yaml"
    path.write_text(APPLIED_TWICE, encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "build", str(path), "-t", "p4", "-o", str(out_dir))
    assert code == 0, err
    per_entry = 1 + 2 + 8 + 16  # key, action data (forward's port), action id and priority, counters
    assert (f"p4: table t: {3 * 1000 * per_entry:,} bytes (3 P4 tables (one per apply) x 1000 entries x "
            "(1 key + 2 action data + 8 + 16 counters) bytes)") in out
    assert "p4: table unused: 0 bytes (never applied: p4c leaves it out)" in out
    assert f"p4: state total: {3 * 1000 * per_entry:,} bytes" in out
    code, out, err = run(capsys, "build", str(path), "-t", "p4", "-o", str(out_dir), "--memory-budget", "64K")
    assert code == 1 and "more than the memory budget" in err  # 81,000 bytes; one copy alone would fit
    need_p4()
    code, out, err = run(capsys, "build", str(path), "-t", "p4", "-o", str(out_dir))
    assert code == 0, err
    bmv2 = json.loads((out_dir / "twice.json").read_text(encoding="utf-8"))
    tables = {t["name"]: t for p in bmv2["pipelines"] for t in p["tables"] if t["key"]}
    assert sorted(tables) == ["t", "t__2", "t__3"]
    assert all(t["max_size"] == 1000 and t["with_counters"] for t in tables.values())
