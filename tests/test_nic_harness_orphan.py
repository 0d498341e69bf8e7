"""The sanitizer harness dies with the process that started it (targets/nic/driver.py `_die_with_parent`): the
conformance runner kills a worker whose vector hangs, and a harness looping in a mutant used to go on spinning,
orphaned — a mutation campaign left dozens of them at load 50."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .conftest import ROOT

STARTER = """
import subprocess, sys
from targets.nic.driver import _die_with_parent
child = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent)
print(child.pid, flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_harness_child_dies_when_its_starter_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert starter.stdout is not None
    pid = int(starter.stdout.readline())
    try:
        assert _alive(pid)
        starter.send_signal(signal.SIGKILL)  # as the runner stops a hung worker
        starter.wait()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the child outlived the process that started it"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
