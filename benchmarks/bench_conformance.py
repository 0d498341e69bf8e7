"""Conformance framework costs: generation per example, and vectors/s through the runner.

    .venv/bin/python benchmarks/bench_conformance.py [--repeat 3]

Baseline measured in the same run: the reference interpreter called directly. Ratios say what the runner's
process isolation (worker process, pickling) and the JSON-lines plugin protocol cost on top of it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from c3po_compiler import load_program
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.runner import RunRequest, group_by_control, run_conformance

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("generation (median seconds, vectors)")
    for spec in sorted((ROOT / "spec" / "examples").glob("*.yaml")):
        prog = load_program(spec).program
        n = len(generate(prog).vectors)
        print(f"  {spec.stem:<16} {median_time(lambda prog=prog: generate(prog), args.repeat):7.3f}s  {n:5d}")
    spec = ROOT / "spec" / "examples" / "router.yaml"
    prog = load_program(spec).program
    vectors = generate(prog, fuzz=300).vectors

    def direct() -> None:
        interp = Interpreter(prog)
        for control, group in group_by_control(vectors):
            interp.install(control)
            for v in group:
                interp.run(v.packets, v.registers)

    base = median_time(direct, args.repeat)
    print(f"\nrunning {len(vectors)} router vectors (median seconds, ratio to the direct interpreter)")
    print(f"  interpreter, direct      {base:7.3f}s  1.0x")
    plugin = f"cmd:{sys.executable} {ROOT / 'tests' / 'plugins' / 'ref_plugin.py'}"
    for target in ("ref", plugin):
        t = median_time(
            lambda target=target: run_conformance([RunRequest(str(spec), list(vectors))], [target], jobs=1),
            args.repeat,
        )
        label = "runner, ref worker" if target == "ref" else "runner, JSON-lines plugin"
        print(f"  {label:<24} {t:7.3f}s  {t / base:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
