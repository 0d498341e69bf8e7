"""The p4 conformance driver's throughput on BMv2, beside BMv2's own packet rate measured in the same run.

    .venv/bin/python benchmarks/bench_p4.py [--repeat 3] [--fuzz 1000] [--only router,acl]

Per program: its generated vectors plus `--fuzz` fuzzed frames, installed and run through `P4Driver` as the
runner does (one install per control state, vectors handed over in batches of 64), switch already open;
vectors/s is the median over `--repeat` runs. Programs without counters or registers overlap their vectors;
programs with them run one vector at a time (fresh state, state read after every packet), so they are listed
separately.

The baseline is BMv2 itself: the same switch with logging off (what `simple_switch` does with no one watching),
fed the same frames from every port at once with no per-frame bookkeeping; its rate is frames out / seconds
from the first send to the last frame out. Needs root, p4c and simple_switch_grpc.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from c3po_compiler import load_program
from conformance.generate import generate
from conformance.runner import BATCH, group_by_control
from targets.p4.driver import P4Driver
from targets.p4.pktio import kernel_refuses

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = [
    "spec/examples/router.yaml", "spec/examples/acl_firewall.yaml", "spec/examples/vxlan_gateway.yaml",
    "spec/examples/l2_switch.yaml", "conformance/suite/select_tuple.yaml", "conformance/suite/match_lpm.yaml",
    "conformance/suite/registers.yaml", "conformance/suite/table_counters.yaml",
]


def driver_rate(spec: Path, fuzz: int, repeat: int) -> tuple[float, int, bool]:
    prog = load_program(spec).program
    assert prog is not None
    vectors = generate(prog, seed=1, fuzz=fuzz).vectors
    groups = group_by_control(vectors)
    times = []
    with P4Driver() as drv, tempfile.TemporaryDirectory() as work:
        drv.open(prog, Path(work))
        for _ in range(repeat):
            t0 = time.perf_counter()
            for control, group in groups:
                drv.install(control)
                for start in range(0, len(group), BATCH):
                    drv.run_batch([(v.packets, v.registers) for v in group[start:start + BATCH]])
            times.append(time.perf_counter() - t0)
        stateful = drv.stateful
    return len(vectors) / statistics.median(times), len(vectors), stateful


def bmv2_rate(spec: Path, fuzz: int, repeat: int) -> float:
    """Frames/s BMv2 forwards with logging off, every port sending at once, no per-frame waiting."""
    prog = load_program(spec).program
    assert prog is not None
    vectors = generate(prog, seed=1, fuzz=fuzz).vectors
    control, group = max(group_by_control(vectors), key=lambda g: len(g[1]))
    frames = [p for v in group for p in v.packets if kernel_refuses(p.data) is None and p.port < 16]
    rates = []
    with P4Driver(log_level="off") as drv, tempfile.TemporaryDirectory() as work:
        drv.open(prog, Path(work))
        drv.install(control)
        socks = drv.socks
        assert socks is not None
        for _ in range(repeat):
            socks.take()
            t0 = time.perf_counter()
            for p in frames:
                socks.send(p.port, p.data)
            last, seen = t0, 0
            while True:
                socks.drain(0.3)
                n = sum(len(v) for v in socks.captured.values())
                if n == seen:
                    break
                seen, last = n, time.perf_counter()
            rates.append(seen / (last - t0))
    return statistics.median(rates)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fuzz", type=int, default=1000)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    reason = P4Driver.unavailable()
    if reason:
        print(f"bench_p4: {reason}", file=sys.stderr)
        return 2
    only = [o for o in args.only.split(",") if o]
    print(f"{'program':<16} {'vectors':>8} {'state':>9} {'vectors/s':>10}")
    for rel in PROGRAMS:
        spec = ROOT / rel
        if only and not any(o in spec.stem for o in only):
            continue
        rate, n, stateful = driver_rate(spec, args.fuzz, args.repeat)
        print(f"{spec.stem:<16} {n:>8} {'per vector' if stateful else 'overlapped':>9} {rate:>10,.0f}", flush=True)
    spec = ROOT / "spec" / "examples" / "l2_switch.yaml"
    print(f"\nBMv2 itself (logging off, {spec.stem}, all ports at once): "
          f"{bmv2_rate(spec, args.fuzz, args.repeat):,.0f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
