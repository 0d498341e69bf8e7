"""`c3po check | graph | build`: what a user sees on the terminal and the exit status scripts rely on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from c3po_compiler.cli import main
from c3po_compiler.target_api import available_targets
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "spec" / "examples" / "router.yaml"
L2 = ROOT / "spec" / "examples" / "l2_switch.yaml"
BAD = ROOT / "tests" / "bad_specs"
PROBLEM_LINE = re.compile(r"^\S+\.yaml:\d+:\d+: (error|warning): .+ \(at \$[^)]*\)$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_good_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", str(ROUTER), str(L2))
    assert code == 0, err
    assert out.count(": ok — program ") == 2
    assert "program 'router'" in out


def test_check_quiet_prints_nothing_for_a_good_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check", "-q", str(ROUTER)) == (0, "", "")


def test_check_reports_every_error_with_position_path_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    spec = BAD / "identifier_too_long.yaml"
    code, out, err = run(capsys, "check", str(spec))
    assert code == 1 and out == ""
    lines = err.splitlines()
    problems = [ln for ln in lines if PROBLEM_LINE.match(ln)]
    assert len(problems) == 2
    assert all(ln.startswith(f"{spec}:") or "identifier_too_long.yaml:" in ln for ln in problems)
    assert sum(ln.startswith("    hint: ") for ln in lines) == 2
    assert lines[-1].endswith(": 2 errors")


def test_check_one_bad_spec_among_good_ones_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", str(ROUTER), str(BAD / "undefined_table.yaml"))
    assert code == 1
    assert "program 'router'" in out
    assert "error: undefined table 'routes'" in err and err.rstrip().endswith(": 1 error")


def test_warnings_do_not_fail_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", str(BAD / "warning_unreachable_state.yaml"))
    assert code == 0
    assert "warning: parser state 'orphan' is unreachable from 'ethernet'" in err
    assert ": ok — " in out


def test_graph_writes_dot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "sub" / "router.dot"
    code, out, _ = run(capsys, "graph", str(ROUTER), "-o", str(out_file))
    assert code == 0 and f"wrote {out_file}" in out
    dot = out_file.read_text(encoding="utf-8")
    assert dot.startswith('digraph "router parser"')
    assert '"ethernet" -> "ipv4" [label="0x800"];' in dot
    assert '"ipv4" -> "reject" [label="default", style=dashed];' in dot


def test_graph_renders_svg_with_graphviz(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    need_tool("dot")
    out_file = tmp_path / "router.svg"
    assert run(capsys, "graph", str(ROUTER), "-o", str(out_file))[0] == 0
    assert "<svg" in out_file.read_text(encoding="utf-8")


def test_graph_unknown_format_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    need_tool("dot")
    code, _, err = run(capsys, "graph", str(ROUTER), "-o", str(tmp_path / "router.txt"))
    assert code == 2 and "Graphviz could not write" in err


def test_graph_of_a_bad_spec_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "graph", str(BAD / "undefined_state.yaml"), "-o", str(tmp_path / "g.dot"))
    assert code == 1 and "undefined parser state 'ipv6'" in err
    assert not (tmp_path / "g.dot").exists()


def test_build_unknown_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "build", str(ROUTER), "--target", "xdp,fpga", "-o", str(tmp_path))
    assert code == 2
    assert "unknown target 'fpga'" in err
    assert all(name in err for name in available_targets())
    assert not any(tmp_path.iterdir()), "nothing is built when a target name is wrong"


def test_build_of_a_bad_spec_fails_before_any_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "build", str(BAD / "width_mismatch_assign.yaml"), "--target", "xdp",
                       "-o", str(tmp_path))
    assert code == 1 and "width mismatch" in err
    assert not any(tmp_path.iterdir())


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["graph", str(ROUTER)])  # -o is required
    assert info.value.code == 2
    capsys.readouterr()


def test_installed_entry_point_exits_1_without_traceback() -> None:
    exe = Path(sys.executable).parent / "c3po"
    proc = subprocess.run([str(exe), "check", str(BAD / "include_cycle.yaml")], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error: include cycle: tests/bad_specs/lib/cycle_a.yaml -> " in proc.stderr


def test_an_internal_error_is_one_line_unless_a_traceback_is_asked_for(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_path: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr("c3po_compiler.cli.load_program", broken)
    monkeypatch.delenv("C3PO_TRACEBACK", raising=False)
    code, _, err = run(capsys, "check", str(ROUTER))
    assert code == 70
    assert err.startswith("c3po check: internal error: RuntimeError: boom\n")
    assert "Traceback" not in err
    monkeypatch.setenv("C3PO_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["check", str(ROUTER)])
