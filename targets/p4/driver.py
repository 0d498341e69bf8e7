"""Runs generated P4 on BMv2 simple_switch: compile, a private network namespace with veth pairs, the switch,
entries through simple_switch_CLI, frames through raw sockets.

Fixed phases as the Driver base class defines them. Everything started here (namespace, switch) is torn down in
`close`, which is also called after a failed `open`. The pure pieces (names, command lines, CLI output parsing,
mapping a capture to a Result) are functions so they can be tested where BMv2 is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from conformance.driver import Driver, DriverUnavailable
from conformance.model import ControlState, PacketIn, Registers, Result

from . import P4_FEATURES, P4Target, compile_command
from .emitter import DEFAULT_CPU_PORT
from .entries import all_entries, describe, to_cli

INSTALL_HINT = ("install p4c and BMv2 (p4lang/p4c, p4lang/behavioral-model; Ubuntu packages from the "
                "OBS repository home:p4lang, see docs/targets/p4.md)")
DATA_PORTS = 8
THRIFT_PORT = 9090
CAPTURE_TIMEOUT = 1.0

_counter = 0


def namespace_name(pid: int, n: int) -> str:
    """Unique per driver instance, recognisably ours, short enough for `ip netns`."""
    return f"c3po-p4-{pid}-{n}"


def veth_names(port: int) -> tuple[str, str]:
    """(switch side, test side); interface names are at most 15 characters."""
    return f"sw{port}", f"tp{port}"


def switch_command(json_path: Path, ports: list[int], log: Path) -> list[str]:
    cmd = ["simple_switch", "--thrift-port", str(THRIFT_PORT), "--log-file", str(log), "--log-flush"]
    for p in ports:
        cmd += ["-i", f"{p}@{veth_names(p)[0]}"]
    return [*cmd, str(json_path)]


def netns_setup_commands(ns: str, ports: list[int]) -> list[list[str]]:
    cmds = [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"]]
    for p in ports:
        sw, tp = veth_names(p)
        # IPv6 off before the links come up: no router solicitations or DAD frames to mistake for output.
        cmds += [["ip", "-n", ns, "link", "add", sw, "type", "veth", "peer", "name", tp],
                 ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{tp}.disable_ipv6=1"],
                 ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{sw}.disable_ipv6=1"],
                 ["ip", "-n", ns, "link", "set", sw, "up"], ["ip", "-n", ns, "link", "set", tp, "up"]]
    return cmds


def reset_commands(desc: dict[str, Any], registers: Registers, prog: ir.Program) -> list[str]:
    """Zero every counter and register, then write the vector's register values."""
    out = [f"counter_reset {c}" for c in sorted(prog.counters)]
    for t in desc["tables"]:
        if t["counters"]:
            for p4t in t["p4_tables"]:
                out += [f"counter_reset {p4t}__counter", f"counter_reset {p4t}__miss"]
    out += [f"register_reset {r}" for r in sorted(prog.registers)]
    out += [f"register_write {name} {idx} {value}" for (name, idx), value in sorted(registers.items())]
    return out


_HANDLE = re.compile(r"Entry has been added with handle (\d+)")
_REG = re.compile(r"(?:^|RuntimeCmd: )(\w+)\[(\d+)\]\s*=\s*(\d+)", re.M)
_REG_ALL = re.compile(r"(?:^|RuntimeCmd: )(\w+)=\s*(\d+(?:,\s*\d+)*)\s*$", re.M)
_COUNTER = re.compile(r"\w+\[\d+\]=\s*\((\d+) bytes, (\d+) packets\)")
_ERROR = re.compile(r"^.*\b(?:Error|Invalid|invalid|not found|Exception)\b.*$", re.M)


def parse_handles(cli_output: str) -> list[int]:
    return [int(h) for h in _HANDLE.findall(cli_output)]


def parse_register_read(cli_output: str) -> dict[tuple[str, int], int]:
    """`register_read r i` prints `r[i]= v`; `register_read r` prints the whole array `r= v0, v1, ...`."""
    out = {(n, int(i)): int(v) for n, i, v in _REG.findall(cli_output)}
    for name, values in _REG_ALL.findall(cli_output):
        out.update({(name, i): int(v) for i, v in enumerate(values.split(","))})
    return out


def cli_errors(cli_output: str) -> list[str]:
    """simple_switch_CLI exits 0 whatever happens; its complaints are lines of its output."""
    return [m.strip() for m in _ERROR.findall(cli_output)]


def parse_counter_reads(cli_output: str) -> list[tuple[int, int]]:
    return [(int(p), int(b)) for b, p in _COUNTER.findall(cli_output)]


def state_read_commands(prog: ir.Program, desc: dict[str, Any], handles: dict[str, list[int]]
                        ) -> tuple[list[str], list[tuple[str, int]]]:
    """CLI commands reading all counters and registers, and for each counter read the (name, index) it fills."""
    cmds: list[str] = []
    slots: list[tuple[str, int]] = []
    for c in sorted(prog.counters.values(), key=lambda c: c.name):
        for i in range(c.size):
            cmds.append(f"counter_read {c.name} {i}")
            slots.append((c.name, i))
    for t in desc["tables"]:
        if not t["counters"]:
            continue
        for p4t in t["p4_tables"]:
            for i, h in enumerate(handles.get(p4t, [])):
                cmds.append(f"counter_read {p4t}__counter {h}")
                slots.append((f"table.{t['name']}", i))
            cmds.append(f"counter_read {p4t}__miss 0")
            slots.append((f"table.{t['name']}", -1))
    cmds += [f"register_read {r}" for r in sorted(prog.registers)]
    return cmds, slots


def counters_from_reads(slots: list[tuple[str, int]], values: list[tuple[int, int]]
                        ) -> dict[tuple[str, int], tuple[int, int]]:
    """Sum the reads per (name, index) (table copies add up); zero counters are left out, as the reference does."""
    if len(values) != len(slots):
        raise RuntimeError(f"expected {len(slots)} counter values from simple_switch_CLI, got {len(values)}")
    total: dict[tuple[str, int], tuple[int, int]] = {}
    for key, (p, b) in zip(slots, values, strict=True):
        old = total.get(key, (0, 0))
        total[key] = (old[0] + p, old[1] + b)
    return {k: v for k, v in total.items() if v != (0, 0)}


def result_from_capture(in_port: int, out: list[tuple[int, bytes]], cpu_port: int) -> Result:
    """BMv2 shows only where a frame left: nothing is drop, the CPU port is to_host, the ingress port is
    reflect (forward to the ingress port looks the same), any other port is forward."""
    if not out:
        return Result("drop", None, b"")
    port, data = out[0]
    if port == cpu_port:
        return Result("to_host", None, data)
    if port == in_port:
        return Result("reflect", port, data)
    obs: dict[str, Any] = {"copies": len(out)} if len(out) > 1 else {}
    return Result("forward", port, data, observations=obs)


class P4Driver(Driver):
    name = "p4"
    supports = P4_FEATURES

    def __init__(self, cpu_port: int = DEFAULT_CPU_PORT, data_ports: int = DATA_PORTS) -> None:
        global _counter
        _counter += 1
        self.cpu_port = cpu_port
        self.ports = [*range(data_ports), cpu_port]
        self.ns = namespace_name(os.getpid(), _counter)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ns_created = False
        self.prog: ir.Program | None = None
        self.desc: dict[str, Any] = {}
        self.handles: dict[str, list[int]] = {}
        self.control = ControlState()

    @classmethod
    def unavailable(cls) -> str | None:
        missing = [t for t in ("p4c-bm2-ss", "simple_switch", "simple_switch_CLI", "ip") if shutil.which(t) is None]
        if missing:
            return f"p4c / simple_switch not found ({', '.join(missing)} missing): {INSTALL_HINT}"
        if os.geteuid() != 0:
            return "the P4 driver needs root (network namespaces and raw sockets)"
        return None

    def _run(self, cmd: list[str], stdin: str | None = None, timeout: float = 60) -> str:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def cli(self, commands: list[str], *, check: bool = True) -> str:
        if not commands:
            return ""
        out = self._run(["ip", "netns", "exec", self.ns, "simple_switch_CLI", "--thrift-port", str(THRIFT_PORT)],
                        "\n".join(commands) + "\n")
        errors = cli_errors(out)
        if check and errors:
            raise RuntimeError("simple_switch_CLI: " + "; ".join(errors[:5]))
        return out

    def open(self, prog: ir.Program, workdir: Path) -> None:
        reason = self.unavailable()
        if reason:
            raise DriverUnavailable(reason)
        self.prog = prog
        target = P4Target(self.cpu_port)
        problems = [p for p in target.refusals(prog) if p.severity == "error"]
        if problems:
            raise DriverUnavailable("; ".join(p.message for p in problems))
        files = target.render(prog)
        workdir.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (workdir / rel).write_text(text, encoding="utf-8")
        self.desc = describe(prog, self.cpu_port)
        bmv2 = workdir / f"{prog.name}.json"
        self._run(compile_command("p4c-bm2-ss", workdir / f"{prog.name}.p4", bmv2), timeout=600)
        try:
            for cmd in netns_setup_commands(self.ns, self.ports):
                self._run(cmd)
                self.ns_created = True
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns,
                                          *switch_command(bmv2, self.ports, workdir / "switch.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 30
            while True:
                try:
                    self.cli(["show_ports"])
                    break
                except RuntimeError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.2)
        except BaseException:
            self.close()
            raise

    def install(self, control: ControlState) -> None:
        self.control = control
        clear = [f"table_clear {p4t}" for t in self.desc["tables"] for p4t in t["p4_tables"]]
        clear += [f"table_reset_default {p4t}" for t in self.desc["tables"] for p4t in t["p4_tables"]]
        self.cli(clear)
        out = self.cli(to_cli(self.desc, control))
        handles = parse_handles(out)
        # One handle per (entry, P4 copy), in the order to_cli issued them.
        self.handles = {}
        it = iter(handles)
        tables = {t["name"]: t for t in self.desc["tables"]}
        for e in all_entries(self.desc, control):
            for p4t in tables[e.table]["p4_tables"]:
                self.handles.setdefault(p4t, []).append(next(it, -1))

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        assert self.prog is not None
        self.cli(reset_commands(self.desc, registers, self.prog))
        results: list[Result] = []
        listen = {veth_names(p)[1]: p for p in self.ports}
        for pkt in packets:
            if pkt.port not in self.ports:
                results.append(Result("drop", None, b"", error=f"port {pkt.port} has no veth (0..{len(self.ports) - 2})"))
                continue
            req = json.dumps({"send": veth_names(pkt.port)[1], "frame": pkt.data.hex(), "listen": listen,
                              "timeout": CAPTURE_TIMEOUT})
            try:
                got = json.loads(self._run(["ip", "netns", "exec", self.ns, sys.executable, "-m", "targets.p4.pktio"],
                                           req, timeout=30))["out"]
                result = result_from_capture(pkt.port, [(p, bytes.fromhex(d)) for p, d in got], self.cpu_port)
                # Counters and registers as they stand after this packet, like the reference reports them.
                result.counters, result.registers = self.read_state()
                results.append(result)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results.append(Result("drop", None, b"", error=str(exc)))
        return results

    def read_state(self) -> tuple[dict[tuple[str, int], tuple[int, int]], Registers]:
        """One CLI call: every counter element, per-entry counters (-1 for misses, summed over table copies), and
        every register."""
        assert self.prog is not None
        cmds, slots = state_read_commands(self.prog, self.desc, self.handles)
        if not cmds:
            return {}, {}
        out = self.cli(cmds)
        return counters_from_reads(slots, parse_counter_reads(out)), \
            {k: v for k, v in parse_register_read(out).items() if v}

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
        if self.ns_created:
            subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True, check=False)
            self.ns_created = False
