"""XDP: generated vs best hand-written program per class of packet (router: IPv4 and IPv6 routed, TTL expiring,
not for the router's MAC; VXLAN gateway: tenant frames encapsulated, bridged and broadcast, VXLAN frames),
to find where a gap is.

The whole-mix ratio of bench_xdp.py hides which path costs: a 3 ns difference on the 10% of frames that go to
the host weighs as much as 0.5 ns on the 60% that are routed. Here each class is timed on its own, with the same
method (`bench_xdp.time_mix`: single runs, turns rotated, fastest 80%, minus an empty program), over `--loads`
fresh loads of both programs, one pair loaded at a time (where the kernel puts a program moves its time by up to
~30%, so a single load decides nothing). Medians over the loads; the spread is printed per class.

    .venv/bin/python benchmarks/bench_xdp_classes.py [--only router|vxlan] [--loads 15] [--trials 5] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_xdp as B  # noqa: E402

from c3po_compiler import load_program  # noqa: E402
from conformance.model import ControlState  # noqa: E402
from targets.xdp import compile_object  # noqa: E402
from targets.xdp.driver import XdpDriver  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner  # noqa: E402

ROUTER_MAC = bytes.fromhex("020000000001")


def router_class(frame: bytes) -> str:
    if frame[:6] != ROUTER_MAC:
        return "not for the router's MAC"
    if frame[12:14] == b"\x08\x00":
        return "IPv4, TTL expiring" if frame[22] <= 1 else "IPv4 routed"
    return "IPv6, hop limit expiring" if frame[21] <= 1 else "IPv6 routed"


def vxlan_class(frame: bytes) -> str:
    """The mix's MACs carry their FDB entry's kind (bench_xdp.vxlan_scenario: entry i of a VNI is local when
    i % 4 == 0), so a tenant frame's destination tells its path."""
    if frame[12:14] == b"\x08\x00" and len(frame) >= 50 and frame[36:38] == b"\x12\xb5":
        return "VXLAN frames (decapsulated or dropped)"
    if frame[:6] == b"\xff" * 6:
        return "tenant: broadcast (to host)"
    if frame[5] % 4 == 0:
        return "tenant: to a local MAC (bridged, or dropped: port without VNI)"
    return "tenant: to a remote MAC (encapsulated)"


Case = tuple[Path, ControlState, Path, Callable[[BpfObject], None], list[B.Frame], Callable[[bytes], str]]


def cases(work: Path) -> dict[str, Case]:
    """The three programs as bench_xdp_revisions.py and profile_xdp.py take them: spec, control state, best
    hand-written source and its loader, the benchmark's mix and its classes. The scenarios are bench_xdp.py's
    (the same draws in the same order); the ACL's spec is written into `work`."""
    rng = random.Random(2026)
    v4, v6, router_frames = B.scenario(rng)
    rules, acl_frames = B.acl_scenario(rng)
    fdb, vxlan_mix = B.vxlan_scenario(rng)
    hand = ROOT / "benchmarks" / "handwritten"
    acl_spec = work / "acl_bench.yaml"
    acl_spec.write_text(B.ACL_SPEC.format(p=os.path.relpath(ROOT / "spec" / "protocols", work)), encoding="utf-8")
    return {
        "router": (ROOT / "spec/examples/router.yaml", B.control(v4, v6), hand / "xdp_router_best.c",
                   lambda b: B.install_router_best(b, v4, v6), [(b"", f) for f in router_frames], router_class),
        "vxlan": (ROOT / "spec/examples/vxlan_gateway.yaml", B.vxlan_control(fdb), hand / "xdp_vxlan_best.c",
                  lambda b: B.install_vxlan_best(b, fdb), vxlan_mix, vxlan_class),
        "acl": (acl_spec, B.acl_control(rules), hand / "xdp_acl_best.c", lambda b: B.install_acl_best(b, rules),
                [(b"", f) for f in acl_frames], lambda f: "all frames"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="router or vxlan (default both)")
    ap.add_argument("--loads", type=int, default=15, help="fresh loads of each program (medians over them)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="single runs per packet and trial")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        B.compile_object_from_text(B.EMPTY_XDP, work / "empty.c")
        empty = BpfObject(work / "empty.o")
        try:
            for name, (spec, state, best_src, best_load, mix, classify) in cases(work).items():
                if name == "acl" or (args.only and args.only != name):  # (the ACL's mix has one class)
                    continue
                groups: dict[str, list[B.Frame]] = {}
                for meta, f in mix:
                    groups.setdefault(classify(f), []).append((meta, f))
                compile_object(best_src, work / f"{name}_best.o")
                gen_ns: dict[str, list[float]] = {g: [] for g in groups}
                best_ns: dict[str, list[float]] = {g: [] for g in groups}
                for k in range(args.loads):  # one pair loaded at a time, each first in turn (the first program
                    # a process loads can land where the JIT's code runs slower: docs/performance.md)
                    drv = XdpDriver(observe=False)
                    best: BpfObject | None = None
                    try:
                        if k % 2:
                            best = BpfObject(work / f"{name}_best.o")
                        drv.open(load_program(spec).program, work / f"{name}{k}")
                        drv.install(state)
                        if best is None:
                            best = BpfObject(work / f"{name}_best.o")
                        best_load(best)
                        assert drv.bpf is not None
                        runners = [TestRunner(drv.bpf.prog_fd), TestRunner(best.prog_fd), TestRunner(empty.prog_fd)]
                        for g, frames in groups.items():
                            trials = [B.time_mix(runners, frames, args.runs) for _ in range(args.trials)]
                            g_ns, b_ns, e_ns = (statistics.median(t[i] for t in trials) for i in range(3))
                            gen_ns[g].append(g_ns - e_ns)
                            best_ns[g].append(b_ns - e_ns)
                    finally:
                        if best is not None:
                            best.close()
                        drv.close()
                print(f"{name}: median over {args.loads} loads of the median of {args.trials} trials, {args.runs} "
                      "single runs per packet, minus an empty program")
                print()
                print("| class | frames | generated ns | best ns | gen − best ns (range over loads) | gen ÷ best |")
                print("|---|---:|---:|---:|---:|---:|")
                for g, frames in groups.items():
                    gm, bm = statistics.median(gen_ns[g]), statistics.median(best_ns[g])
                    diffs = sorted(a - b for a, b in zip(gen_ns[g], best_ns[g], strict=True))
                    print(f"| {g} | {len(frames)} | {gm:.1f} | {bm:.1f} | {gm - bm:+.1f} ({diffs[0]:+.1f}…"
                          f"{diffs[-1]:+.1f}) | {gm / bm:.2f} |")
                print()
        finally:
            empty.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
