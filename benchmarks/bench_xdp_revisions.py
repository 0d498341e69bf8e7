"""XDP: the generated program of this checkout against the same spec compiled by another revision of c3po, and the
best hand-written program, paired per load and per class of packet: what a compiler change moved.

The noise of a single load (where the kernel puts a program moves its time by up to ~30%) hides a change of a few
instructions, and two runs of bench_xdp.py an hour apart differ more than that. Here every load puts the two
generated programs and the best one side by side, times each class of packet on all three in turns
(`bench_xdp.time_mix`: single runs, fastest 80%, minus an empty program), and reports medians over the loads of
the per-load differences. The other revision is checked out in a temporary git worktree and only renders the C
(in a subprocess, with its own code); both builds are loaded through this checkout's driver, so the revision must
lay out the tables as this one does (the same maps): compare revisions of the code generation, not of the table
implementations. REV may also be a C file: this checkout's rendered program edited by hand (a proxy that bounds
what a change of the code generation could gain before it is built; `--render` writes the file to start from).

    .venv/bin/python benchmarks/bench_xdp_revisions.py REV|FILE.c [--only router|vxlan|acl] [--loads 40]
    .venv/bin/python benchmarks/bench_xdp_revisions.py --render OUT.c [--only router|vxlan|acl]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_xdp as B  # noqa: E402
import bench_xdp_classes as C  # noqa: E402

import targets.xdp.driver as driver_module  # noqa: E402
from c3po_compiler import ir, load_program  # noqa: E402
from conformance.model import ControlState  # noqa: E402
from targets.xdp import XdpTarget, compile_object  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner  # noqa: E402

RENDER = """
import json, sys
sys.path.insert(0, ".")
from c3po_compiler import load_program
from targets.xdp import XdpTarget
prog = load_program(sys.argv[1]).program
files = XdpTarget().render(prog)
print(json.dumps({k: v for k, v in files.items() if k.endswith((".bpf.c", ".h"))}))
"""


class _Replaced(XdpTarget):
    """The xdp target with its C files replaced by another revision's (None: this checkout's own)."""

    files: dict[str, str] | None = None

    def render(self, prog: ir.Program) -> dict[str, str]:
        out = super().render(prog)
        if _Replaced.files is not None:
            out.update(_Replaced.files)
        return out


def render_at(rev: str, spec: Path) -> dict[str, str]:
    """The xdp C files of `spec` as revision `rev` of c3po writes them."""
    with tempfile.TemporaryDirectory(prefix="c3po-rev-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            proc = subprocess.run([sys.executable, "-c", RENDER, str(spec)], cwd=tree, capture_output=True,
                                  text=True, check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
            if proc.returncode != 0:
                raise SystemExit(f"rendering {spec.name} at {rev} failed:\n{proc.stderr[-2000:]}")
            files: dict[str, str] = json.loads(proc.stdout)
            return files
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="the other revision (a commit, tag or branch of this repository), or a .c file")
    ap.add_argument("--render", action="store_true", help="write this checkout's program for --only to REV and stop")
    ap.add_argument("--only", default="router", help="router, vxlan or acl")
    ap.add_argument("--loads", type=int, default=40, help="fresh loads of the three programs (medians over them)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="single runs per packet and trial")
    args = ap.parse_args()
    rng = random.Random(2026)  # the same scenarios as bench_xdp.py (same draws in the same order)
    v4, v6, router_frames = B.scenario(rng)
    rules, acl_frames = B.acl_scenario(rng)
    fdb, vxlan_mix = B.vxlan_scenario(rng)
    hand = ROOT / "benchmarks" / "handwritten"
    driver_module.XdpTarget = _Replaced  # type: ignore[misc]  # the driver builds through it
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        acl_spec = work / "acl_bench.yaml"
        acl_spec.write_text(B.ACL_SPEC.format(p=os.path.relpath(ROOT / "spec" / "protocols", work)), encoding="utf-8")
        cases: dict[str, tuple[Path, ControlState, Path, Callable[[BpfObject], None], list[B.Frame],
                               Callable[[bytes], str]]] = {
            "router": (ROOT / "spec/examples/router.yaml", B.control(v4, v6), hand / "xdp_router_best.c",
                       lambda b: B.install_router_best(b, v4, v6), [(b"", f) for f in router_frames],
                       C.router_class),
            "vxlan": (ROOT / "spec/examples/vxlan_gateway.yaml", B.vxlan_control(fdb), hand / "xdp_vxlan_best.c",
                      lambda b: B.install_vxlan_best(b, fdb), vxlan_mix, C.vxlan_class),
            "acl": (acl_spec, B.acl_control(rules), hand / "xdp_acl_best.c", lambda b: B.install_acl_best(b, rules),
                    [(b"", f) for f in acl_frames], lambda f: "all frames"),
        }
        if args.only not in cases:
            raise SystemExit(f"--only: one of {', '.join(cases)}")
        spec, state, best_src, best_load, mix, classify = cases[args.only]
        prog = load_program(spec).program
        c_name = next(n for n in XdpTarget().render(prog) if n.endswith(".bpf.c"))
        if args.render:
            Path(args.rev).write_text(XdpTarget().render(prog)[c_name], encoding="utf-8")
            return 0
        if args.rev.endswith(".c"):
            other = {c_name: Path(args.rev).read_text(encoding="utf-8")}
        else:
            other = render_at(args.rev, spec)
        groups: dict[str, list[B.Frame]] = {}
        for meta, f in mix:
            groups.setdefault(classify(f), []).append((meta, f))
        groups["whole mix"] = mix
        B.compile_object_from_text(B.EMPTY_XDP, work / "empty.c")
        compile_object(best_src, work / "best.o")
        empty = BpfObject(work / "empty.o")
        names = ("this checkout", args.rev, "best")
        ns: dict[str, dict[str, list[float]]] = {g: {n: [] for n in names} for g in groups}
        try:
            for k in range(args.loads):
                drivers: list[driver_module.XdpDriver] = []
                order = [None, other] if k % 2 == 0 else [other, None]  # both load orders, in turns
                for files in order:
                    _Replaced.files = files
                    d = driver_module.XdpDriver(observe=False)
                    d.open(prog, work / f"gen{k}_{len(drivers)}")
                    d.install(state)
                    drivers.append(d)
                _Replaced.files = None
                if k % 2:
                    drivers.reverse()
                best = BpfObject(work / "best.o")
                try:
                    best_load(best)
                    fds = [d.bpf.prog_fd for d in drivers if d.bpf is not None] + [best.prog_fd, empty.prog_fd]
                    runners = [TestRunner(fd) for fd in fds]
                    for g, frames in groups.items():
                        trials = [B.time_mix(runners, frames, args.runs) for _ in range(args.trials)]
                        meds = [statistics.median(t[i] for t in trials) for i in range(len(runners))]
                        for i, n in enumerate(names):
                            ns[g][n].append(meds[i] - meds[-1])
                finally:
                    best.close()
                    for d in drivers:
                        d.close()
                print(f"\rload {k + 1}/{args.loads}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            empty.close()
    print(f"{args.only}: this checkout against {args.rev} and the best hand-written program, {args.loads} loads of "
          f"each (both load orders), per load the median of {args.trials} trials of {args.runs} single runs per "
          "packet minus an empty program; medians over the loads of the per-load differences")
    print()
    print(f"| class | best ns | this − best | {args.rev} − best | this − {args.rev} (quartiles) | this ÷ best |")
    print("|---|---:|---:|---:|---:|---:|")
    for g in groups:
        this, rev, best_ns = ns[g][names[0]], ns[g][names[1]], ns[g]["best"]
        d_this = statistics.median(a - b for a, b in zip(this, best_ns, strict=True))
        d_rev = statistics.median(a - b for a, b in zip(rev, best_ns, strict=True))
        diffs = [a - b for a, b in zip(this, rev, strict=True)]
        q = statistics.quantiles(diffs, n=4, method="inclusive") if len(diffs) > 1 else [diffs[0]] * 3
        print(f"| {g} | {statistics.median(best_ns):.1f} | {d_this:+.1f} | {d_rev:+.1f} | "
              f"{statistics.median(diffs):+.1f} ({q[0]:+.1f}…{q[2]:+.1f}) | "
              f"{statistics.median(this) / statistics.median(best_ns):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
