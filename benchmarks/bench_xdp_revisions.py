"""XDP: the generated program of this checkout against the same spec compiled by another revision of c3po, and the
best hand-written program, paired per load and per class of packet: what a compiler change moved.

The noise of a single load (where the kernel puts a program moves its time by up to ~30%) hides a change of a few
instructions, and two runs of bench_xdp.py an hour apart differ more than that. Here every load puts the two
generated programs and the best one side by side, times each class of packet on all three in turns
(`bench_xdp.time_mix`: single runs, fastest 80%, minus an empty program), and reports medians over the loads of
the per-load differences. The other revision is checked out in a temporary git worktree; for each load a
subprocess there builds the program, loads it and installs the tables with that revision's own driver (so a
change of the tables' layout compares too), pins the program in bpffs and exits, and the program is timed here
through the pin. REV may also be a C file: this checkout's rendered program edited by hand, loaded through this
checkout's driver (a proxy that bounds what a change of the code generation could gain before it is built;
`--render` writes the file to start from).

    .venv/bin/python benchmarks/bench_xdp_revisions.py REV|FILE.c [--only router|vxlan|acl] [--loads 40]
    .venv/bin/python benchmarks/bench_xdp_revisions.py --render OUT.c [--only router|vxlan|acl]
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_xdp as B  # noqa: E402
import bench_xdp_classes as C  # noqa: E402

import targets.xdp.driver as driver_module  # noqa: E402
from c3po_compiler import ir, load_program  # noqa: E402
from targets.xdp import XdpTarget, compile_object  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner, lib  # noqa: E402


class _Replaced(XdpTarget):
    """The xdp target with its C files replaced by another revision's (None: this checkout's own)."""

    files: dict[str, str] | None = None

    def render(self, prog: ir.Program) -> dict[str, str]:
        out = super().render(prog)
        if _Replaced.files is not None:
            out.update(_Replaced.files)
        return out


LOAD = """
import ctypes, random, sys
from pathlib import Path
sys.path[:0] = [".", "benchmarks"]
import bench_xdp as B
from c3po_compiler import load_program
from targets.xdp.driver import XdpDriver
from targets.xdp.libbpf import lib
case, spec, work, pin = sys.argv[1:5]
rng = random.Random(2026)
v4, v6, _ = B.scenario(rng)
rules, _ = B.acl_scenario(rng)
fdb, _ = B.vxlan_scenario(rng)
state = {"router": lambda: B.control(v4, v6), "vxlan": lambda: B.vxlan_control(fdb),
         "acl": lambda: B.acl_control(rules)}[case]()
d = XdpDriver(observe=False)
d.open(load_program(spec).program, Path(work))
d.install(state)
lb = lib()
lb.bpf_obj_pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
if lb.bpf_obj_pin(d.bpf.prog_fd, pin.encode()) != 0:
    raise SystemExit("bpf_obj_pin failed")
d.close()
"""


ORDERS = list(itertools.permutations(range(3)))  # load orders of (this checkout, the other, best), in turns


class Worktree:
    """Revision `rev` checked out beside this checkout, to load programs with its own code."""

    def __init__(self, rev: str) -> None:
        self.rev = rev
        self._tmp = tempfile.TemporaryDirectory(prefix="c3po-rev-")
        self.tree = Path(self._tmp.name) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(self.tree), rev], check=True)

    def run(self, script: str, *args: str) -> None:
        proc = subprocess.run([sys.executable, "-c", script, *args], cwd=self.tree, capture_output=True, text=True,
                              check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
        if proc.returncode != 0:
            raise SystemExit(f"revision {self.rev} failed:\n{proc.stderr[-2000:]}")

    def close(self) -> None:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.tree)], check=False)
        self._tmp.cleanup()


def pinned_fd(path: Path) -> int:
    """A program pinned in bpffs, as an fd of this process; the pin is removed (the fd keeps it loaded)."""
    lb = lib()
    lb.bpf_obj_get.argtypes, lb.bpf_obj_get.restype = [ctypes.c_char_p], ctypes.c_int
    fd = int(lb.bpf_obj_get(str(path).encode()))
    path.unlink()
    if fd < 0:
        raise SystemExit(f"bpf_obj_get {path} failed")
    return fd


def same_outputs(runners: list[TestRunner], mix: list[B.Frame], names: tuple[str, ...]) -> None:
    """Every program gives every packet of the mix the same XDP action and output frame: a hand-edited proxy
    that changed what the program does would time something else (checked on the first load; the programs and
    their tables are the same on every load)."""
    for n, (meta, f) in enumerate(mix):
        outs = [r.run(f, meta)[:2] for r in runners]
        for name, out in zip(names[1:], outs[1:], strict=True):
            if out != outs[0]:
                raise SystemExit(f"packet {n} of the mix: {name} gives action {out[0]} and {out[1].hex()}, "
                                 f"{names[0]} action {outs[0][0]} and {outs[0][1].hex()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="the other revision (a commit, tag or branch of this repository), or a .c file")
    ap.add_argument("--render", action="store_true", help="write this checkout's program for --only to REV and stop")
    ap.add_argument("--best", type=Path, help="time this C file as the best program (a hand-edited variant: cut at the "
                    "same point as a proxy in REV, it tells where a gap builds up)")
    ap.add_argument("--only", default="router", help="router, vxlan or acl")
    ap.add_argument("--loads", type=int, default=40, help="fresh loads of the three programs (medians over them)")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="single runs per packet and trial")
    args = ap.parse_args()
    driver_module.XdpTarget = _Replaced  # type: ignore[misc]  # the driver builds through it
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = C.cases(work)
        if args.only not in cases:
            raise SystemExit(f"--only: one of {', '.join(cases)}")
        spec, state, best_src, best_load, mix, classify = cases[args.only]
        best_src = args.best or best_src
        prog = load_program(spec).program
        c_name = next(n for n in XdpTarget().render(prog) if n.endswith(".bpf.c"))
        if args.render:
            Path(args.rev).write_text(XdpTarget().render(prog)[c_name], encoding="utf-8")
            return 0
        other: dict[str, str] | None = None
        tree: Worktree | None = None
        if args.rev.endswith(".c"):
            other = {c_name: Path(args.rev).read_text(encoding="utf-8")}
        else:
            tree = Worktree(args.rev)
        pins = Path("/sys/fs/bpf") / f"c3po-bench-{os.getpid()}"
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
                own: list[int] = []  # fds of programs the other revision loaded (closed here)
                fds: dict[int, int] = {}  # 0: this checkout's, 1: the other's, 2: the best program
                best: BpfObject | None = None
                try:
                    # Every load order in turn: the first program a process loads can land where the JIT's code
                    # runs slower (tens of ns on this machine, docs/performance.md), so no program may always
                    # come first.
                    for which in ORDERS[k % len(ORDERS)]:
                        if which == 2:
                            best = BpfObject(work / "best.o")
                            best_load(best)
                            fds[2] = best.prog_fd
                        elif which == 1 and tree is not None:
                            pin = pins.with_name(f"{pins.name}-{k}")
                            tree.run(LOAD, args.only, str(spec), str(work / f"rev{k}"), str(pin))
                            own.append(pinned_fd(pin))
                            fds[1] = own[-1]
                        else:
                            _Replaced.files = other if which == 1 else None
                            d = driver_module.XdpDriver(observe=False)
                            d.open(prog, work / f"gen{k}_{which}")
                            d.install(state)
                            drivers.append(d)
                            assert d.bpf is not None
                            fds[which] = d.bpf.prog_fd
                    _Replaced.files = None
                    runners = [TestRunner(fds[i]) for i in range(3)] + [TestRunner(empty.prog_fd)]
                    if k == 0:
                        same_outputs(runners[:3], mix, names)
                    for g, frames in groups.items():
                        trials = [B.time_mix(runners, frames, args.runs) for _ in range(args.trials)]
                        meds = [statistics.median(t[i] for t in trials) for i in range(len(runners))]
                        for i, n in enumerate(names):
                            ns[g][n].append(meds[i] - meds[-1])
                finally:
                    _Replaced.files = None
                    if best is not None:
                        best.close()
                    for d in drivers:
                        d.close()
                    for fd in own:
                        os.close(fd)
                print(f"\rload {k + 1}/{args.loads}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            empty.close()
            if tree is not None:
                tree.close()
    print(f"{args.only}: this checkout against {args.rev} and the best hand-written program, {args.loads} loads of "
          f"each (the six load orders in turns), per load the median of {args.trials} trials of {args.runs} single runs per "
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
