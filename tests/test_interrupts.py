"""Interrupts and faults (issue 12, class 7): Ctrl-C and SIGTERM stop a conformance run within seconds with one
line and 130/143, workers and their drivers included (no temp dirs, namespaces or switches left); a later run
sweeps what a killed one left; outputs are written to a temporary name and renamed."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from c3po_compiler import target_api
from c3po_compiler.cli import main as c3po_main
from conformance.runner import sweep_stale, workdir_prefix

from .conftest import ROOT, need_bpf, need_p4_driver

SPEC = ROOT / "conformance" / "suite" / "action_drop.yaml"
NETNS = Path("/run/netns")
STOP_WITHIN = 4.0  # seconds from the signal to the exit, Python's own exit included (the aim is 2 s)


def _namespaces() -> set[str]:
    return {p.name for p in NETNS.glob("c3po-p4-*")} if NETNS.is_dir() else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_with(env_entry: bytes) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if env_entry in (d / "environ").read_bytes().split(b"\0"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR short enough for the p4 driver's gRPC socket path (at most 107 characters), unlike pytest's."""
    d = Path(tempfile.mkdtemp(prefix="t12-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _start(tmp_path: Path, targets: str, ready: str) -> tuple[subprocess.Popen[bytes], Path]:
    """The run in its own session (as a terminal job would be), once the file `ready` (a glob under a temp dir
    of the run) exists: the target's program is built and being loaded."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    err = tmp_path / "stderr"
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("C3PO_TRACEBACK", None)
    with err.open("wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "c3po_compiler.cli", "conformance", "run", str(SPEC), "--targets", targets,
             "--gen", "--fuzz", "20000"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not list(tmp.glob(f"c3po-*-{proc.pid}-*/{ready}")):
        assert proc.poll() is None, f"the run ended early: {err.read_text()}"
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    return proc, err


def _interrupt(proc: subprocess.Popen[bytes], sig: int, group: bool) -> tuple[int, float]:
    t0 = time.monotonic()
    if group:  # Ctrl-C: the terminal signals the whole foreground process group, workers and compilers too
        os.killpg(proc.pid, sig)
    else:  # kill PID
        os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError("the run did not stop within 30 s") from None
    return code, time.monotonic() - t0


def _check_clean(proc: subprocess.Popen[bytes], err: Path, code: int, seconds: float, want: int,
                 before: set[str]) -> None:
    text = err.read_text(errors="replace")
    assert code == want, text
    assert seconds < STOP_WITHIN, f"took {seconds:.1f} s"
    assert "Traceback" not in text
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    assert lines == [f"c3po conformance: {'interrupted' if want == 130 else 'terminated'}"], text
    tmp = err.parent / "tmp"
    assert not [p for p in tmp.iterdir() if p.name.startswith("c3po-")], list(tmp.iterdir())
    # No process of the run is left (workers, compilers, a switch in its own session): they all inherited TMPDIR.
    deadline = time.monotonic() + 1.0  # multiprocessing's resource tracker leaves when it sees the run gone
    while (left := _processes_with(f"TMPDIR={tmp}".encode())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, [(Path(f"/proc/{p}/cmdline").read_bytes(), Path(f"/proc/{p}/stat").read_text()) for p in left]
    # Namespaces made during the run whose worker is gone (another run's live ones are not ours to judge).
    leaked = [n for n in _namespaces() - before if not _alive(int(n.split("-")[2]))]
    assert not leaked


@pytest.mark.parametrize(("sig", "want", "group"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_xdp_run_stops_promptly_and_cleanly(tmp_path: Path, sig: int, want: int, group: bool) -> None:
    need_bpf()
    before = _namespaces()
    proc, err = _start(tmp_path, "ref,xdp", "*.bpf.o")
    time.sleep(0.3)  # loaded and running vectors
    code, seconds = _interrupt(proc, sig, group)
    _check_clean(proc, err, code, seconds, want, before)


@pytest.mark.parametrize(("sig", "want", "group"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_p4_run_stops_promptly_and_removes_its_namespace(short_tmp: Path, sig: int, want: int, group: bool) -> None:
    need_p4_driver()
    before = _namespaces()
    proc, err = _start(short_tmp, "ref,p4", "switch.txt")
    deadline = time.monotonic() + 30
    while not _namespaces() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the switch is up and answering
    code, seconds = _interrupt(proc, sig, group)
    _check_clean(proc, err, code, seconds, want, before)


def test_a_run_sweeps_what_a_killed_run_left(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"c3po-xdp-{dead.pid}-abcd1234"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "prog.bpf.o").write_bytes(b"x")
    live = tmp_path / f"{workdir_prefix('ref')}abcd1234"  # this process's: alive, kept
    live.mkdir()
    other = tmp_path / "c3po-pytest-abcd1234"  # not a run's temp dir
    other.mkdir()
    removed = sweep_stale(tmp_path, netns_dir=tmp_path / "no-netns")
    assert removed == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()


def test_the_command_sweeps_stale_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"c3po-ref-{dead.pid}-zz_9abcd"
    stale.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "c3po_compiler.cli", "conformance", "run", str(SPEC), "-q"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("c3po-")]


def _failing_write(path: Path, data: str, *args: object, **kwargs: object) -> int:
    with open(path, "w", encoding="utf-8") as f:  # the file exists, half written, when the disk fills up
        f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_build_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(Path, "write_text", _failing_write)
    code = c3po_main(["build", str(SPEC), "--target", "nic", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        f"c3po build: cannot write '{out}': {os.strerror(errno.ENOSPC)}"]
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_a_failed_vector_write_keeps_the_old_file_and_says_so_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.jsonl"
    out.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(Path, "write_text", _failing_write)
    code = c3po_main(["conformance", "gen", str(SPEC), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        f"c3po conformance: {out}: {os.strerror(errno.ENOSPC)}"]
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.jsonl"]


def test_atomic_output_replaces_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "a.txt"
    target_api.write_atomic(out, "one")
    with pytest.raises(RuntimeError), target_api.atomic_output(out) as tmp:
        tmp.write_text("two", encoding="utf-8")
        raise RuntimeError
    assert out.read_text(encoding="utf-8") == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# -- compiler outputs and report directories: renamed into place only when complete ------------------------------------

_FAKE_TOOL = """#!/bin/sh
# writes part of every output it is given (-o FILE, --p4runtime-files FILE), then exits with $FAKE_STATUS
while [ $# -gt 0 ]; do
  case "$1" in -o|--p4runtime-files) printf 'half' > "$2"; echo "$2" >> "$FAKE_LOG";; esac
  shift
done
exit "${FAKE_STATUS:-1}"
"""


def _fake_tool(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(_FAKE_TOOL, encoding="utf-8")
    tool.chmod(0o755)
    return tool


def test_a_failed_compile_leaves_no_output_under_the_real_name(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The nic driver loads lib<prog>_nic.so and executes <prog>_harness by name: a compiler that fails (or is
    killed) half-way must leave the previous file, or none, and no temporary file."""
    from targets.nic.toolchain import ToolchainError, run_cc

    cc = _fake_tool(tmp_path / "bin", "cc")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    out = tmp_path / "out" / "libp_nic.so"
    out.parent.mkdir()
    out.write_bytes(b"old")
    monkeypatch.setenv("FAKE_STATUS", "1")
    with pytest.raises(ToolchainError) as info:
        run_cc([str(cc), "-O2", "p.c", "-o", str(out)])
    assert str(out) in str(info.value)  # the command as the user would run it, with the real name
    assert out.read_bytes() == b"old" and [p.name for p in out.parent.iterdir()] == ["libp_nic.so"]
    written = (tmp_path / "log").read_text(encoding="utf-8").split()
    assert written and str(out) not in written  # the compiler was given another name
    monkeypatch.setenv("FAKE_STATUS", "0")
    run_cc([str(cc), "-O2", "p.c", "-o", str(out)])
    assert out.read_bytes() == b"half" and [p.name for p in out.parent.iterdir()] == ["libp_nic.so"]


def test_a_failed_p4c_leaves_no_json_or_p4info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from c3po_compiler import load_program
    from targets.p4 import P4Target

    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "p4c-bm2-ss")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    prog = load_program(SPEC).program
    out = tmp_path / "out"
    monkeypatch.setenv("FAKE_STATUS", "1")
    with pytest.raises(target_api.BuildError):
        P4Target().build(prog, out)
    assert sorted(p.name for p in out.iterdir()) == ["action_drop.entries.json", "action_drop.p4"]
    assert len((tmp_path / "log").read_text(encoding="utf-8").split()) == 2  # both outputs were being written
    monkeypatch.setenv("FAKE_STATUS", "0")
    result = P4Target().build(prog, out)
    assert result.files["bmv2_json"].read_bytes() == b"half" and result.files["p4info"].read_bytes() == b"half"
    assert sorted(p.name for p in out.iterdir()) == ["action_drop.entries.json", "action_drop.json",
                                                    "action_drop.p4", "action_drop.p4info.txtpb"]


def test_a_failed_report_write_leaves_no_partial_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("the previous run's\n", encoding="utf-8")
    monkeypatch.setattr(Path, "write_text", _failing_write)
    code = c3po_main(["conformance", "run", str(SPEC), "--targets", "ref", "-q", "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 1
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        f"c3po conformance: {report / 'report.html'}: {os.strerror(errno.ENOSPC)}"]
    assert [p.name for p in report.iterdir()] == ["report.html"]
    monkeypatch.undo()
    assert (report / "report.html").read_text(encoding="utf-8") == "the previous run's\n"
