"""`c3po trace SPEC --packet HEX | --pcap FILE`: explain what the spec does with one packet, step by step.

A failing conformance vector says *that* a target differs; the trace says *why* the reference did what it did
(parse path, selects, lookups, assignments, verdict) and, with `--target`, where the target first departs
from it. Exit status: 0 explained (and the target agreed), 1 the target differed or bad input, 2 the target
cannot run here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.text import terminal_text

from .compare import compare, layout_from_headers
from .model import ControlState, EntryState, Expected, PacketIn, Result
from .trace import Event, ExplainingInterpreter


def load_control(path: str, prog: ir.Program) -> ControlState:
    """The entries file as `c3po apply` reads it, turned into the conformance control state."""
    from dataplane.cli import load_entries

    tables, defaults = load_entries(path, prog)
    entries = tuple(EntryState(t, e.match, e.action, e.args, e.priority) for t, es in tables.items() for e in es)
    return ControlState(entries, tuple((t, a, args) for t, (a, args) in defaults.items()))


def explain(prog: ir.Program, packet: PacketIn, control: ControlState) -> tuple[Result, list[Event]]:
    interp = ExplainingInterpreter(prog)
    interp.install(control)
    r = interp.run([packet], {})[0]
    return r, list(r.observations.pop("events"))


def run_on_target(target: str, prog: ir.Program, packet: PacketIn, control: ControlState) -> Result:
    """The packet through the target's conformance driver, opened, installed and run as the runner does."""
    from .driver import load_driver_class

    cls = load_driver_class(target)
    why = cls.unavailable()
    if why is not None:
        raise RuntimeError(f"target {target} cannot run here: {why}")
    with tempfile.TemporaryDirectory(prefix="c3po-trace-") as tmp:
        driver = cls()
        try:
            driver.open(prog, Path(tmp))
            driver.install(control)
            return driver.run([packet], {})[0]
        finally:
            driver.close()


def first_difference(prog: ir.Program, ref: Result, got: Result) -> list[str]:
    """Empty when the target's result equals the reference's; else the first point of difference first
    (verdict, port, first differing byte and its header field), then the full comparison."""
    if got.error:
        return [f"target error: {got.error}"]
    expected = Expected.from_result(ref)
    headers = sorted(ref.observations.get("offsets", {}).items(), key=lambda kv: kv[1])

    def layout_for(data: bytes) -> Any:
        return layout_from_headers(prog, data, headers)

    m = compare(expected, got, layout_for)
    if not m:
        return []
    first: str
    if got.verdict != ref.verdict:
        first = f"first difference: verdict (reference {ref.verdict}, target {got.verdict})"
    elif ref.verdict == "forward" and got.port != ref.port:
        first = f"first difference: port (reference {ref.port}, target {got.port})"
    elif ref.data != got.data:
        n = min(len(ref.data), len(got.data))
        i = next((j for j in range(n) if ref.data[j] != got.data[j]), n)
        where = next((s.name for s in layout_for(ref.data) if s.bit_offset <= i * 8 < s.bit_offset + s.width),
                     "beyond the reference frame")
        first = f"first difference: byte {i} ({where})"
    else:
        first = "first difference: counters or registers"
    return [first, *m.lines]


def _diff_marks(before: bytes, after: bytes) -> str:
    return "".join("^^" if i >= len(before) or i >= len(after) or before[i] != after[i] else "  "
                   for i in range(len(after)))


def trace_lines(packet: PacketIn, r: Result, events: list[Event]) -> list[str]:
    out = [f"packet: {len(packet.data)} bytes on port {packet.port}", f"  {packet.data.hex()}"]
    out += [e.text for e in events]
    for (name, index), (pk, by) in sorted(r.counters.items()):
        out.append(f"counter {name}[{index}] = {pk} packets, {by} bytes")
    port = f" port {r.port}" if r.port is not None else ""
    out.append(f"result: {r.verdict}{port}")
    if r.verdict != "drop":
        out.append(f"output: {r.data.hex()}")
        marks = _diff_marks(packet.data, r.data)
        if marks.strip():
            out.append(f"        {marks.rstrip()}")
        else:
            out.append("        (unchanged)")
    return out


def _result_json(r: Result) -> dict[str, Any]:
    return {"verdict": r.verdict, "port": r.port, "data": r.data.hex(),
            "counters": [[k[0], k[1], v[0], v[1]] for k, v in sorted(r.counters.items())]}


def cmd_trace(args: argparse.Namespace) -> int:
    from dataplane.api import ControlError

    from .cli import _load
    from .pcap import read_pcap

    loaded = _load(args.spec)
    if loaded is None:
        return 1
    prog = loaded.program
    try:
        frames = [bytes.fromhex(args.packet)] if args.packet is not None else read_pcap(args.pcap)
    except ValueError:
        print("c3po trace: --packet is not hex", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"c3po trace: {terminal_text(args.pcap)}: {terminal_text(exc.strerror)}", file=sys.stderr)
        return 1
    control = ControlState()
    if args.entries:
        try:
            control = load_control(args.entries, prog)
        except ControlError as exc:
            print(f"c3po trace: {terminal_text(str(exc))}", file=sys.stderr)
            return 1
    status = 0
    docs: list[dict[str, Any]] = []
    lines: list[str] = []
    for data in frames:
        packet = PacketIn(args.port, data)
        r, events = explain(prog, packet, control)
        doc: dict[str, Any] = {"packet": data.hex(), "port": args.port,
                               "events": [{"kind": e.kind, "text": e.text, **e.data} for e in events],
                               "result": _result_json(r)}
        lines += trace_lines(packet, r, events)
        if args.target:
            try:
                got = run_on_target(args.target, prog, packet, control)
            except (RuntimeError, ValueError) as exc:
                print(f"c3po trace: {terminal_text(str(exc))}", file=sys.stderr)
                return 2
            diff = first_difference(prog, r, got)
            doc["target"] = {"name": args.target, "result": _result_json(got), "agrees": not diff,
                             "differences": diff}
            if diff:
                status = 1
                lines.append(f"target {args.target}: DIFFERS")
                lines += [f"  {d}" for d in diff]
            else:
                lines.append(f"target {args.target}: agrees (verdict, port, output bytes, counters)")
        lines.append("")
        docs.append(doc)
    if args.json:
        print(json.dumps(docs if args.pcap else docs[0], indent=1))
    else:
        print("\n".join(terminal_text(line) for line in lines).rstrip("\n"))
    return status


def command_line(spec: str, packet: PacketIn, entries: str | None = None) -> str:
    """The `c3po trace` command that reproduces one packet (what the conformance report shows per FAIL)."""
    extra = f" --entries {entries}" if entries else ""
    return f"c3po trace {spec} --packet {packet.data.hex()} --port {packet.port}{extra}"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("trace", help="explain one packet: parse path, lookups, assignments, verdict")
    p.add_argument("spec", metavar="SPEC")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--packet", metavar="HEX", help="the frame, in hex")
    src.add_argument("--pcap", metavar="FILE", help="trace every frame of a pcap")
    p.add_argument("--port", type=int, default=0, help="ingress port (default 0)")
    p.add_argument("--entries", metavar="FILE", help="control-plane state, as `c3po apply` reads it")
    p.add_argument("--target", choices=("xdp", "nic", "p4"), help="also run it there and compare")
    p.add_argument("--json", action="store_true", help="the events and results as JSON")
    p.set_defaults(func=cmd_trace)


def main_for_tests(argv: list[str]) -> int:
    """The subcommand without the `c3po` front end (what tests call: same parser, same function)."""
    parser = argparse.ArgumentParser(prog="c3po")
    register(parser.add_subparsers())
    args = parser.parse_args(["trace", *argv])
    status: int = args.func(args)
    return status
