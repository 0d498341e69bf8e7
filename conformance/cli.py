"""`c3po conformance gen|run|suite|convert`: the vendor-facing commands (registered through c3po.commands).

Exit status: 0 all passed; 1 a vector failed or errored, or bad input (spec, vector file); 2 a requested
target cannot run (except a p4 skip when another target ran, see `runner.exit_status`) or an unknown
target name; 130 interrupted (SIGINT), 143 terminated (SIGTERM), after the workers have closed their drivers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from c3po_compiler import SpecError, load_program
from c3po_compiler.target_api import atomic_output, write_atomic
from c3po_compiler.text import terminal_text

from .expected_failures import ExpectedFailuresError, load_expected_failures
from .model import Vector
from .vector_io import VectorFileError, load_vectors, read_coverage, save_vectors

SUITE_DIR = Path(__file__).resolve().parent / "suite"


def _load(spec: str) -> Any:
    try:
        return load_program(spec)
    except SpecError as exc:
        for p in exc.problems:
            print(p.format(), file=sys.stderr)
        return None
    except OSError as exc:
        print(f"{terminal_text(spec)}: cannot read: {terminal_text(exc.strerror)}", file=sys.stderr)
        return None


def cmd_gen(args: argparse.Namespace) -> int:
    from .generate import generate

    loaded = _load(args.spec)
    if loaded is None:
        return 1
    prog = loaded.program
    g = generate(prog, seed=args.seed, fuzz=args.fuzz)
    # written under a temporary name, then renamed; the header carries the coverage for reports
    save_vectors(args.output, g.vectors, prog, args.spec, g.coverage)
    print(f"wrote {len(g.vectors)} vectors to {terminal_text(args.output)}")
    heading = False
    for part, c in g.coverage.items():
        if c.get("class"):
            if not c["total"]:
                continue  # a gap class with nothing to cover in this program (no constant entries...)
            if not heading:
                print("  gap classes (mutation analysis):")
                heading = True
        line = (
            f"  {part.replace('_', ' ')}: {c['covered']}/{c['feasible']} feasible covered ({c['percent']}%)"
        )
        if c["infeasible"]:
            line += f", {len(c['infeasible'])} infeasible"
        print(line)
        for item in c["uncovered"][:5]:
            print(f"      not covered: {terminal_text(item)}")
        for inf in c["infeasible"][:3]:
            print(f"      infeasible: {terminal_text(inf['item'])}: {terminal_text(inf['reason'])}")
    if args.coverage:
        write_atomic(args.coverage, json.dumps(g.coverage, indent=1, sort_keys=True) + "\n")
    return 0


def _targets(text: str) -> list[str] | None:
    from .driver import available_drivers

    names = [t.strip() for t in text.split(",") if t.strip()]
    known = available_drivers()
    unknown = [n for n in names if not n.startswith(("cmd:", "py:")) and n not in known]
    if unknown or not names:
        print(
            f"c3po conformance: unknown target {terminal_text(', '.join(map(repr, unknown))) or '(none)'}; "
            f"available: {', '.join(sorted(known))}, cmd:PROGRAM for a subprocess plugin, or py:MODULE:CLASS",
            file=sys.stderr,
        )
        return None
    return names


def _execute(args: argparse.Namespace, requests: list[Any], targets: list[str], suite: bool) -> int:
    from tqdm import tqdm

    from . import reports
    from .runner import exit_status, run_conformance

    xfail = None
    if args.xfail:
        try:
            xfail = load_expected_failures(args.xfail)
        except ExpectedFailuresError as exc:
            print(f"c3po conformance: {terminal_text(exc)}", file=sys.stderr)
            return 1
    total = sum(len(r.vectors) for r in requests) * len(targets)
    with tqdm(
        total=total, desc="conformance", unit="vec", file=sys.stderr, disable=args.quiet or None, leave=False
    ) as bar:

        def tick(n: int) -> None:
            bar.update(n)

        results = run_conformance(
            requests, targets, timeout=args.timeout, jobs=args.jobs, xfail=xfail, progress=tick
        )
    print(reports.terminal(results, verbose=args.verbose, notes=not suite))
    if suite:
        print()
        print(reports.feature_table(results))
    if args.report:
        for p in reports.write_report_dir(results, args.report):
            print(f"wrote {terminal_text(p)}")
    if args.junit:
        with atomic_output(args.junit) as tmp:
            reports.write_junit(results, tmp)
    if args.json:
        with atomic_output(args.json) as tmp:
            reports.write_json(results, tmp)
    return exit_status(results)


def cmd_run(args: argparse.Namespace) -> int:
    from .generate import generate
    from .runner import RunRequest

    targets = _targets(args.targets)
    if targets is None:
        return 2
    loaded = _load(args.spec)
    if loaded is None:
        return 1
    prog = loaded.program
    vectors: list[Vector] = []
    coverage: dict[str, Any] | None = None  # the report's per-class table: from the generator, or a file's header
    try:
        for f in args.vectors or []:
            vectors += load_vectors(f, prog)
            coverage = coverage or read_coverage(f)
    except VectorFileError as exc:
        print(f"c3po conformance: {terminal_text(exc)}", file=sys.stderr)
        return 1
    if args.gen or args.fuzz or not args.vectors:
        g = generate(prog, seed=args.seed, fuzz=args.fuzz)
        vectors += g.vectors
        coverage = g.coverage
    return _execute(args, [RunRequest(args.spec, vectors, coverage=coverage)], targets, suite=False)


def suite_programs(directory: Path = SUITE_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(".vectors.yaml"))


def cmd_suite(args: argparse.Namespace) -> int:
    from .generate import generate
    from .runner import RunRequest

    targets = _targets(args.targets)
    if targets is None:
        return 2
    requests = []
    for spec in suite_programs(Path(args.suite_dir)):
        if args.only and not any(o in spec.stem for o in args.only.split(",")):
            continue
        loaded = _load(str(spec))
        if loaded is None:
            return 1
        prog = loaded.program
        vectors: list[Vector] = []
        hand = spec.with_name(spec.stem + ".vectors.yaml")
        try:
            if hand.exists():
                vectors += load_vectors(hand, prog)
        except VectorFileError as exc:
            print(f"c3po conformance: {terminal_text(exc)}", file=sys.stderr)
            return 1
        g = generate(prog, seed=args.seed, fuzz=args.fuzz)
        vectors += g.vectors
        requests.append(RunRequest(str(spec), vectors, coverage=g.coverage))
    return _execute(args, requests, targets, suite=True)


def cmd_convert(args: argparse.Namespace) -> int:
    loaded = _load(args.spec)
    if loaded is None:
        return 1
    try:
        vectors = load_vectors(args.input, loaded.program)
        save_vectors(args.output, vectors, loaded.program, args.spec)
    except VectorFileError as exc:
        print(f"c3po conformance: {terminal_text(exc)}", file=sys.stderr)
        return 1
    print(f"wrote {len(vectors)} vectors to {terminal_text(args.output)}")
    return 0


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Files that cannot be written (reports, vectors) end the command with one line, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except OSError as exc:
            print(f"c3po conformance: {terminal_text(exc.filename or '')}: {terminal_text(exc.strerror or exc)}",
                  file=sys.stderr)
            return 1

    return run


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--targets",
        default="ref",
        help="comma-separated: ref, xdp, nic, p4, cmd:PROGRAM, py:MODULE:CLASS (default ref)",
    )
    p.add_argument("--fuzz", type=int, default=0, metavar="N", help="add N seeded random packets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", metavar="DIR", help="write report.html, report.json and junit.xml here")
    p.add_argument("--junit", metavar="FILE")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--xfail", metavar="FILE", help="expected failures (YAML)")
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-vector timeout (default 10 s)"
    )
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="parallel target workers (default 2)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="full mismatch details")


def register(subparsers: Any) -> None:
    top = subparsers.add_parser(
        "conformance", help="generate test vectors and compare targets with the oracle"
    )
    sub = top.add_subparsers(dest="conformance_command", required=True)
    p = sub.add_parser("gen", help="generate vectors covering the parse graph, tables and branches")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, help="output: .jsonl (default), .yaml, .pcap or .stf")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fuzz", type=int, default=0, metavar="N")
    p.add_argument("--coverage", metavar="FILE", help="write the coverage report as JSON")
    p.set_defaults(func=_guarded(cmd_gen))
    p = sub.add_parser("run", help="run vectors on targets and compare with the reference interpreter")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument(
        "--vectors", action="append", metavar="FILE", help=".yaml, .jsonl, .pcap or .stf (repeatable)"
    )
    p.add_argument("--gen", action="store_true", help="also generate vectors (the default without --vectors)")
    _run_options(p)
    p.set_defaults(func=_guarded(cmd_run))
    p = sub.add_parser("suite", help="run the standard conformance suite: one feature x target table")
    p.add_argument("--suite-dir", default=str(SUITE_DIR))
    p.add_argument("--only", help="comma-separated substrings of suite program names")
    _run_options(p)
    p.set_defaults(func=_guarded(cmd_suite))
    p = sub.add_parser("convert", help="convert vectors between .yaml, .jsonl, .pcap and .stf")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=_guarded(cmd_convert))
    from .mutate import register_mutate  # `conformance mutate`: its options live beside its code

    register_mutate(sub, _guarded)
