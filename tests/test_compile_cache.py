"""The compile cache (c3po_compiler/compile_cache.py): a run is reused only when the tool, its command line (up
to the paths) and every input's bytes, included headers too, are the same; failures are never kept; without
C3PO_CACHE_DIR nothing is cached. A fake compiler logs each time it really runs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from c3po_compiler import compile_cache
from c3po_compiler.target_api import run_to_outputs

# A "compiler": cat the source and the header it includes into -o, say so on stderr, log the run; a source
# containing FAIL fails after writing half its output.
TOOL = """#!/bin/sh
echo run >> "$LOG"
out=$3
cat "$1" "$(dirname "$1")/$(sed -n 's/^#include "\\(.*\\)"/\\1/p' "$1")" > "$out"
chmod 755 "$out"
echo "warning: $(basename "$1")" >&2
if grep -q FAIL "$1"; then exit 1; fi
"""


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    exe = tmp_path / "bin" / "fakecc"
    exe.parent.mkdir()
    exe.write_text(TOOL, encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "runs.log"
    monkeypatch.setenv("LOG", str(log))
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "cache"))
    return exe, log


def sources(d: Path, body: str = "int x;", header: str = "#define H 1") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "h.h").write_text(header + "\n", encoding="utf-8")
    src = d / "p.c"
    src.write_text(f'#include "h.h"\n{body}\n', encoding="utf-8")
    return src


def compile_in(exe: Path, d: Path, **kw: str) -> tuple[int, str, bytes]:
    src = sources(d, **kw)
    out = d / "p.o"
    proc = run_to_outputs([str(exe), str(src), "-o", str(out), f"-I{d}"], [out])
    return proc.returncode, proc.stderr, out.read_bytes() if out.exists() else b""


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_same_inputs_in_another_directory_hit(tool: tuple[Path, Path], tmp_path: Path) -> None:
    exe, log = tool
    first = compile_in(exe, tmp_path / "a")
    second = compile_in(exe, tmp_path / "b")
    assert runs(log) == 1
    assert first == second == (0, "warning: p.c\n", b'#include "h.h"\nint x;\n#define H 1\n')
    assert os.access(tmp_path / "b" / "p.o", os.X_OK)  # a harness a hit copies can still be run


def test_a_changed_source_header_or_tool_runs_again(tool: tuple[Path, Path], tmp_path: Path) -> None:
    exe, log = tool
    compile_in(exe, tmp_path / "a")
    assert compile_in(exe, tmp_path / "b", body="int y;")[2].endswith(b"int y;\n#define H 1\n")
    assert runs(log) == 2
    assert compile_in(exe, tmp_path / "c", header="#define H 2")[2].endswith(b"#define H 2\n")
    assert runs(log) == 3
    other = exe.with_name("othercc")
    other.write_bytes(exe.read_bytes() + b"\n")  # another tool (size and path differ)
    other.chmod(exe.stat().st_mode)
    compile_in(other, tmp_path / "d")
    assert runs(log) == 4
    compile_in(exe, tmp_path / "e")  # the first again: a hit
    assert runs(log) == 4


def test_failures_are_not_kept_and_leave_no_output(tool: tuple[Path, Path], tmp_path: Path) -> None:
    exe, log = tool
    for d in ("a", "b"):
        code, err, out = compile_in(exe, tmp_path / d, body="FAIL")
        assert code == 1 and "warning" in err and out == b""
    assert runs(log) == 2


def test_without_the_variable_nothing_is_cached(tool: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    exe, log = tool
    monkeypatch.delenv(compile_cache.ENV)
    compile_in(exe, tmp_path / "a")
    compile_in(exe, tmp_path / "b")
    assert runs(log) == 2
    assert not (tmp_path / "cache").exists()


def test_a_damaged_entry_is_a_miss(tool: tuple[Path, Path], tmp_path: Path) -> None:
    exe, log = tool
    compile_in(exe, tmp_path / "a")
    [entry] = [p for p in (tmp_path / "cache").glob("*/*") if p.is_dir()]
    (entry / "run.json").write_text("{", encoding="utf-8")
    assert compile_in(exe, tmp_path / "b")[0] == 0
    assert runs(log) == 2


def test_the_test_run_compiles_through_its_own_cache() -> None:
    """conftest gives the run one cache directory: the p4 and xdp tests' repeated compiles of a program hit."""
    where = os.environ.get(compile_cache.ENV)
    assert where and Path(where).is_dir() and Path(where).name.startswith("c3po-test-cache-")
