"""The `c3po` command: check, graph, build; other packages add commands (conformance) by entry point.

Every spec problem is printed as `file:line:col: error: ...` and the exit status is 1; a traceback reaching the
user is a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from .graph import GraphvizMissing, write_graph
from .loader import Loaded, load_program
from .problems import SpecError, error
from .target_api import BuildError, atomic_output, available_targets, load_target
from .text import terminal_lines, terminal_text

# Commands contributed by other packages (conformance registers `conformance` here through its entry point,
# so the compiler never imports the conformance package).
COMMAND_GROUP = "c3po.commands"
BUILTIN_COMMANDS: dict[str, str] = {}
# Exit statuses: 0 ok, 1 problems in the spec (or a target refused or failed), 2 usage, 70 a bug in c3po,
# 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM): 128 + the signal, as a shell reports it.
INTERNAL_ERROR = 70
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT, so clean-up code runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _load(spec: str) -> Loaded | None:
    try:
        loaded = load_program(spec)
    except SpecError as exc:
        for p in exc.problems:
            print(p.format(), file=sys.stderr)
        n = sum(p.severity == "error" for p in exc.problems)
        print(f"{terminal_text(spec)}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return None
    for w in loaded.warnings:
        print(w.format(), file=sys.stderr)
    return loaded


def cmd_check(args: argparse.Namespace) -> int:
    status = 0
    for spec in args.specs:
        loaded = _load(spec)
        if loaded is None:
            status = 1
            continue
        prog = loaded.program
        if not args.quiet:
            print(f"{terminal_text(spec)}: ok — program '{prog.name}': {len(prog.parser.states)} parser states, "
                  f"{len([i for i in prog.instances.values() if i.tlv_option is None])} headers, "
                  f"{len(prog.tables)} tables, {len(prog.user_actions)} actions")
    return status


def cmd_graph(args: argparse.Namespace) -> int:
    loaded = _load(args.spec)
    if loaded is None:
        return 1
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:
            write_graph(loaded.program, tmp)
    except GraphvizMissing as exc:
        print(f"c3po graph: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError:
        print(f"c3po graph: Graphviz could not write '{terminal_text(out)}' (is '{terminal_text(out.suffix)}' a format it knows? "
              "try .svg, .png, .pdf or .dot)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"c3po graph: cannot write '{terminal_text(out)}': {terminal_text(exc.strerror or exc)}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    names = [t.strip() for t in args.target.split(",") if t.strip()]
    known = available_targets()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"c3po build: unknown target {', '.join(repr(u) for u in unknown)}; "
              f"available: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    loaded = _load(args.spec)
    if loaded is None:
        return 1
    prog = loaded.program
    status = 0
    for name in names:
        try:
            target = load_target(name)
        except Exception as exc:  # a broken target plugin is reported, not a traceback
            print(f"c3po build: target '{name}' cannot be loaded: {type(exc).__name__}: {terminal_text(exc)}",
                  file=sys.stderr)
            status = 1
            continue
        refusals = target.refusals(prog)
        if refusals:
            for p in refusals:
                print(p.format(), file=sys.stderr)
            status = 1
            continue
        outdir = Path(args.output) / name if len(names) > 1 or args.output == "build" else Path(args.output)
        if args.output == "build":
            outdir = Path("build") / prog.name / name
        try:
            result = target.build(prog, outdir)
        except BuildError as exc:
            print(f"c3po build: target '{name}' failed:\n{terminal_lines(exc)}", file=sys.stderr)
            status = 1
            continue
        except OSError as exc:
            print(f"c3po build: cannot write '{terminal_text(outdir)}': {terminal_text(exc.strerror or exc)}",
                  file=sys.stderr)
            status = 1
            continue
        if result.footprint is not None and result.footprint > args.memory_budget:
            for note in result.notes:
                print(f"{name}: {note}", file=sys.stderr)
            for path in result.files.values():  # nothing to load by mistake
                with contextlib.suppress(OSError):
                    path.unlink()
            print(error(prog.loc, f"target '{name}' needs {result.footprint:,} bytes of state "
                        f"({format_size(result.footprint)}), more than the memory budget of "
                        f"{format_size(args.memory_budget)}",
                        "reduce table, counter or register sizes (the lines above give each one), or raise the "
                        "budget with --memory-budget SIZE").format(), file=sys.stderr)
            status = 1
            continue
        for _rel, path in sorted(result.files.items()):
            print(f"{name}: wrote {path}")
        for note in result.notes:
            print(f"{name}: {note}")
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    """Where the installed package keeps its JSON Schemas (and protocol library): an editor outside the clone is
    pointed at this path, which moves with every virtualenv and install."""
    from .loader import LIBRARIES, SCHEMA_PATH, VECTORS_SCHEMA_PATH

    path = LIBRARIES[max(LIBRARIES)] if args.library else VECTORS_SCHEMA_PATH if args.vectors else SCHEMA_PATH
    if not path.exists():
        print(f"c3po schema: '{terminal_text(path)}' is missing: this installation of c3po is incomplete "
              "(reinstall it)", file=sys.stderr)
        return 1
    print(path)
    return 0


DEFAULT_MEMORY_BUDGET = "1GiB"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """`1073741824`, `512M`, `1GiB`, `2g`, `64KB`: binary units (K = 1024)."""
    m = re.fullmatch(r"\s*(\d{1,15})\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size: write bytes or a number with K, M, G or T "
                                         "(binary units), e.g. 512M or 1GiB")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def format_size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def build_parser(extra: dict[str, Callable[[argparse._SubParsersAction], None]] | None = None,  # type: ignore[type-arg]
                 ) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="c3po", description="Compile c3po packet-processing specs to XDP, P4 and NIC C.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate specs and report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("graph", help="draw the parse graph (DOT, or SVG/PNG with Graphviz)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, help="output file: .dot, .svg, .png or .pdf")
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("build", help="generate (and compile, where the toolchain is present) target code")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-t", "--target", required=True, help="comma-separated targets: " + ", ".join(available_targets()))
    p.add_argument("-o", "--output", default="build", help="output directory (default build/PROGRAM/TARGET)")
    p.add_argument("--memory-budget", metavar="SIZE", type=parse_size, default=parse_size(DEFAULT_MEMORY_BUDGET),
                   help="refuse a target whose state (tables, counters, registers, maps) needs more memory than this "
                        f"(bytes, or K/M/G/T binary units; default {DEFAULT_MEMORY_BUDGET})")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("schema", help="print the path of the installed JSON Schema of specs (for editors)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--vectors", action="store_true", help="the schema of conformance vector files instead")
    which.add_argument("--library", action="store_true",
                       help="the directory of the protocol library ('include: [std/NAME]') instead")
    p.set_defaults(func=cmd_schema)
    for register in (extra or {}).values():
        register(sub)
    return ap


def _command_plugins() -> dict[str, Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    import importlib

    found: dict[str, str] = dict(BUILTIN_COMMANDS)
    for ep in entry_points(group=COMMAND_GROUP):
        found.setdefault(ep.name, ep.value)
    out: dict[str, Callable[[argparse._SubParsersAction], None]] = {}  # type: ignore[type-arg]
    for name, spec in found.items():
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        out[name] = getattr(module, attr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    in_main = threading.current_thread() is threading.main_thread()
    previous = (signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _on_sigterm)) if in_main else None
    command = "c3po"
    try:
        ap = build_parser(_command_plugins())
        args = ap.parse_args(argv)
        command = f"c3po {args.command}"
        code: int = args.func(args)
    except (KeyboardInterrupt, Terminated) as exc:
        # The command has cleaned up on the way out (workers stopped, temporary files removed): one line.
        if in_main:  # a second Ctrl-C while the line is printed must not become a traceback
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if argv is None:  # the command itself: stay deaf to them until the interpreter has exited
                previous = None
        term = isinstance(exc, Terminated)
        with contextlib.suppress(OSError):
            print(f"{command}: {'terminated' if term else 'interrupted'}", file=sys.stderr, flush=True)
        return TERMINATED if term else INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # A bug in c3po, not in the spec: one line for the user, the traceback on request.
        if os.environ.get("C3PO_TRACEBACK"):
            raise
        print(f"{command}: internal error: {type(exc).__name__}: {terminal_text(exc)}\n"
              "    this is a bug in c3po, not in your spec; rerun with C3PO_TRACEBACK=1 for the traceback",
              file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        if previous is not None:
            for signum, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return code


if __name__ == "__main__":
    sys.exit(main())
