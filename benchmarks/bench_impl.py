"""What each table implementation buys on XDP: the same spec built with `impl: auto` and with one structure at a
time switched back to the kernel's map (lpm_trie for the LPM tables, hash for the exact ones), timed in one run.

    .venv/bin/python benchmarks/bench_impl.py [--trials 9] [--runs 40]

Programs and mixes are bench_xdp.py's (router: 1,000 IPv4 + 200 IPv6 routes; VXLAN gateway: 4,096 FDB entries),
installed through the conformance driver, so every variant holds the same entries. Times are bench_xdp.py's
`time_mix`: single runs, turns rotated, the fastest 80% per packet, the median over trials, minus an empty XDP
program timed alike. Needs root, clang and BPF.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_xdp import (  # noqa: E402
    EMPTY_XDP,
    compile_object_from_text,
    control,
    scenario,
    time_mix,
    vxlan_control,
    vxlan_scenario,
)
from c3po_compiler import ir, load_program  # noqa: E402
from targets.xdp.driver import XdpDriver  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner  # noqa: E402

# (variant name, {table: impl}) per program; "auto" first
VARIANTS = {
    "router": [("auto (tries + cuckoo)", {}),
               ("router_mac as hash", {"router_mac": "hash"}),
               ("routes as lpm_trie", {"routes_v4": "lpm_trie", "routes_v6": "lpm_trie"}),
               ("all kernel maps", {"router_mac": "hash", "routes_v4": "lpm_trie", "routes_v6": "lpm_trie"})],
    "vxlan_gateway": [("auto (cuckoo)", {}),
                      ("all kernel maps", {"fdb": "hash", "local_vtep": "hash"})],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    rng = random.Random(2026)
    v4, v6, router_frames = scenario(rng)
    fdb, vxlan_mix = vxlan_scenario(random.Random(2026))
    cases = {"router": (control(v4, v6), [(b"", f) for f in router_frames]),
             "vxlan_gateway": (vxlan_control(fdb), vxlan_mix)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        compile_object_from_text(EMPTY_XDP, work / "empty.c")
        empty = BpfObject(work / "empty.o")
        for name, (state, mix) in cases.items():
            drivers: list[XdpDriver] = []
            try:
                for k, (_, impls) in enumerate(VARIANTS[name]):
                    prog = load_program(ROOT / "spec" / "examples" / f"{name}.yaml").program
                    for table, kind in impls.items():
                        if table in prog.tables:
                            prog.tables[table].impl = ir.TableImpl(kind)
                    drv = XdpDriver(observe=False)  # the production build, as loaded on an interface
                    drivers.append(drv)
                    drv.open(prog, work / f"{name}{k}")
                    drv.install(state)
                runners = [TestRunner(d.bpf.prog_fd) for d in drivers if d.bpf] + [TestRunner(empty.prog_fd)]
                assert len(runners) == len(VARIANTS[name]) + 1
                first = [runners[0].run(f, meta)[:2] for meta, f in mix]
                same = [sum(r.run(f, meta)[:2] == first[i] for i, (meta, f) in enumerate(mix)) for r in runners[1:-1]]
                trials = [time_mix(runners, mix, args.runs) for _ in range(args.trials)]
                base = statistics.median(t[-1] for t in trials)
                ns = [statistics.median(t[i] for t in trials) - base for i in range(len(drivers))]
                print(f"\n{name}: median of {args.trials} trials minus the empty program ({base:.1f} ns)\n")
                print("| variant | ns/pkt | vs auto | same result as auto |")
                print("|---|---:|---:|---:|")
                for i, (variant, _) in enumerate(VARIANTS[name]):
                    agree = f"{same[i - 1]}/{len(mix)}" if i else "-"
                    print(f"| {variant} | {ns[i]:.1f} | {ns[i] / ns[0]:.2f}x | {agree} |")
            finally:
                for d in drivers:
                    d.close()
        empty.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
