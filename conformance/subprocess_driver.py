"""Out-of-process vendor targets: any program that speaks JSON lines on stdin/stdout is a c3po driver.

Selected as `--targets cmd:./my_plugin` (the rest of the name is a shell-style command line). One request per
line, one reply per line, in order (docs/conformance.md has the full protocol):

    {"op": "open", "spec": PATH, "program": NAME, "workdir": DIR}      -> {"ok": true}
    {"op": "install", "control": {"entries": [...], "defaults": [...]}} -> {"ok": true}
    {"op": "run", "packets": [{"port": 1, "data": HEX}], "registers": [...]}
                                          -> {"ok": true, "results": [{"verdict", "port", "data", ...}]}
    {"op": "close"}                                                    -> {"ok": true}, then exit

A reply of {"ok": false, "error": TEXT} fails that step. A plugin that dies or stays silent past the timeout
fails the current vector only: the driver restarts it, reopens the program and reinstalls the control state
before the next vector, so one crashing packet never hangs or ends a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.features import FEATURES

from .driver import Driver, DriverUnavailable
from .model import ControlState, PacketIn, Registers, Result, final_state
from .packets import PacketBuildError, hex_bytes
from .vectors import control_to_data, registers_to_data

PROTOCOL_VERSION = 1
STDERR_TAIL_LINES = 20  # how much of a dead plugin's stderr an error message quotes


class PluginError(RuntimeError):
    """The plugin broke the protocol, crashed, or timed out; the message says which."""


class NotApplicable(RuntimeError):
    """The plugin declared it cannot run this vector (a feature it lacks): N/A, not a failure."""


def canonical_control(control: ControlState) -> list[dict[str, Any]]:
    """Entries in canonical numeric form too, so a plugin need not parse match strings."""
    return [
        {
            "table": e.table,
            "match": [[m.kind, m.a, m.b] for m in e.match],
            "action": e.action,
            "args": list(e.args),
            "priority": e.priority,
        }
        for e in control.entries
    ]


class SubprocessDriver(Driver):
    name = "cmd"
    supports = frozenset(FEATURES)

    def __init__(self, command: str, timeout: float = 10.0) -> None:
        self.command = shlex.split(command)
        self.name = f"cmd:{command}"
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._open_args: tuple[ir.Program, Path] | None = None
        self._control: ControlState | None = None
        self._stderr: Any = None  # a temporary file: a pipe nobody reads could fill and block the plugin

    # -- process handling ------------------------------------------------------------------------------
    def _start(self) -> None:
        if not self.command:
            raise DriverUnavailable("empty plugin command")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; _kill closes it
        try:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
            )
        except OSError as exc:
            self._stderr.close()
            self._stderr = None
            raise DriverUnavailable(f"cannot start plugin {self.command[0]!r}: {exc.strerror}") from None
        self._buf = b""

    def _kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for s in (self.proc.stdin, self.proc.stdout):
                if s is not None:
                    s.close()
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _stderr_tail(self) -> str:
        """The plugin's last stderr lines: the only place a plugin that dies on start-up (an import error, a
        missing library) says why, so every "plugin exited" message quotes them."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 65536))
        lines = self._stderr.read().decode("utf-8", "replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
        return "".join(f"\n    {line}" for line in lines)

    def _readline(self, deadline: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PluginError(f"plugin did not answer within {self.timeout:g}s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                try:
                    code: int | None = self.proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    code = None
                why = f"plugin exited (status {code})" if code is not None else "plugin closed stdout"
                tail = self._stderr_tail()
                raise PluginError(why + (f"; its stderr ends:{tail}" if tail else ""))
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self._restart()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            self.proc.stdin.flush()
            line = self._readline(time.monotonic() + self.timeout)
        except (PluginError, BrokenPipeError, OSError) as exc:
            self._kill()
            raise PluginError(
                str(exc) if isinstance(exc, PluginError) else "plugin closed its input"
            ) from None
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            self._kill()
            raise PluginError(f"plugin sent a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(reply, dict):
            raise PluginError("plugin reply is not a JSON object")
        if reply.get("not_applicable"):
            raise NotApplicable(str(reply["not_applicable"]))
        if not reply.get("ok"):
            raise PluginError(f"plugin: {reply.get('error', 'failed without a message')}")
        return reply

    def _restart(self) -> None:
        """A fresh plugin process in the state the runner expects: program open, control installed."""
        self._kill()
        self._start()
        if self._open_args is not None:
            prog, workdir = self._open_args
            self._send_open(prog, workdir)
            if self._control is not None:
                self._request({"op": "install", **self._install_body(self._control)})

    def _send_open(self, prog: ir.Program, workdir: Path) -> None:
        spec = str(Path(prog.files[-1]).resolve()) if prog.files else ""  # the main file comes last
        self._request(
            {
                "op": "open",
                "version": PROTOCOL_VERSION,
                "spec": spec,
                "program": prog.name,
                "workdir": str(workdir),
            }
        )

    def _install_body(self, control: ControlState) -> dict[str, Any]:
        assert self._open_args is not None
        # The protocol replaces every entry: a state with ops goes as the image they leave.
        control = final_state(self._open_args[0], control)
        return {
            "control": {
                **control_to_data(control, self._open_args[0]),
                "canonical": canonical_control(control),
            }
        }

    # -- Driver API ----------------------------------------------------------------------------------
    def open(self, prog: ir.Program, workdir: Path) -> None:
        self._start()
        self._open_args = (prog, workdir)
        self._send_open(prog, workdir)

    def install(self, control: ControlState) -> None:
        self._control = control
        self._request({"op": "install", **self._install_body(control)})

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        reply = self._request(
            {
                "op": "run",
                "packets": [{"port": p.port, "data": p.data.hex()} for p in packets],
                "registers": registers_to_data(registers),
            }
        )
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(packets):
            raise PluginError(
                f"plugin returned {len(results) if isinstance(results, list) else 'no'} results "
                f"for {len(packets)} packets"
            )
        return [result_from_json(r) for r in results]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(PluginError, NotApplicable):
                self._request({"op": "close"})
        self._kill()


def _int(v: Any) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def result_from_json(r: Any) -> Result:
    if not isinstance(r, dict) or "verdict" not in r:
        raise PluginError(f"plugin result without a verdict: {str(r)[:80]}")
    try:
        data = hex_bytes(r.get("data", ""), "result data")
    except PacketBuildError as exc:
        raise PluginError(str(exc)) from None
    counters = {
        (c["counter"], int(c["index"])): (_int(c["packets"]), _int(c["bytes"]))
        for c in r.get("counters") or []
    }
    regs = {(x["register"], int(x["index"])): _int(x["value"]) for x in r.get("registers") or []}
    return Result(
        str(r["verdict"]),
        r.get("port"),
        data,
        counters,
        regs,
        dict(r.get("observations") or {}),
        r.get("error"),
    )


def result_to_json(r: Result) -> dict[str, Any]:
    from .vectors import counters_to_data

    return {
        "verdict": r.verdict,
        "port": r.port,
        "data": r.data.hex(),
        "counters": counters_to_data(r.counters),
        "registers": registers_to_data(r.registers),
    }
