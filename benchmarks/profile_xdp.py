"""XDP: where the generated program and the best hand-written one spend their time, per machine instruction of
the kernel's JIT code and per kernel helper they call: a cpu-clock profile (`perf record -g`) of the
benchmark's own loop (bench_xdp.time_mix) over one class of packet.

bench_xdp.py says how much slower a program is; this says where. Samples land on the instruction the CPU waits
at, so a cache miss shows on the instruction after the load that missed, a mispredicted branch on its target.
Several copies of each program are loaded and run in turns, so a difference between the programs can be told
from a difference between two loads of the same one; a placeholder copy of the best program is loaded first
and never run, because the first program a process loads lands where the JIT's code runs slower on this
machine (tens of ns on the gateway's encapsulation: docs/performance.md, 2026-12-07). A helper's samples are
charged to the program that called it (the call chain through the JIT's frame pointers).

    .venv/bin/python benchmarks/profile_xdp.py [--only vxlan|router|acl] [--class encapsulated]
        [--copies 2] [--seconds 30] [--annotate gen|best]

Needs root, perf and objdump (binutils). Without hardware counters (this VM has none) the sampling clock is the
kernel's timer: its rate of 20 kHz perturbs what it measures, so compare programs within one run, not the
absolute numbers across runs. The timings printed are time_mix's (fastest 80% of single runs, minus an empty
program), taken while sampling.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_xdp as B  # noqa: E402
import bench_xdp_classes as C  # noqa: E402

from c3po_compiler import load_program  # noqa: E402
from targets.xdp import compile_object  # noqa: E402
from targets.xdp.driver import XdpDriver  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner, jited  # noqa: E402


def samples(script: str) -> list[list[tuple[int, str]]]:
    """perf script's call chains: per sample, (address, symbol+offset) from the leaf outwards."""
    out = []
    for block in script.split("\n\n"):
        chain = []
        for line in block.strip().splitlines():
            parts = line.split()
            if len(parts) >= 2 and re.fullmatch(r"[0-9a-f]+", parts[0]):
                chain.append((int(parts[0], 16), parts[1]))
        if chain:
            out.append(chain)
    return out


def annotate(image: bytes, offsets: collections.Counter[int], work: Path) -> str:
    """objdump's listing of the JIT image with the samples at each instruction in front."""
    path = work / "image.bin"
    path.write_bytes(image)
    asm = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", str(path)], capture_output=True,
                         text=True, check=True).stdout
    total = max(1, sum(offsets.values()))
    rows = []
    for line in asm.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\t(.*)", line)
        if not m:
            continue
        n = offsets.get(int(m.group(1), 16), 0)
        rows.append(f"{n:6d} {100 * n / total:5.1f}%  {line.strip()}" if n else f"{'':14s}{line.strip()}")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="vxlan", help="vxlan, router or acl")
    ap.add_argument("--class", dest="cls", default="", help="only the frames whose class (bench_xdp_classes) "
                    "contains this, e.g. 'encapsulated', 'VXLAN frames', 'IPv4 routed' (default: the whole mix)")
    ap.add_argument("--copies", type=int, default=2, help="loads of each program, run in turns")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to sample")
    ap.add_argument("--freq", type=int, default=20000, help="samples per second")
    ap.add_argument("--annotate", choices=["gen", "best"], help="print that program's JIT code with its samples "
                    "(summed over its copies)")
    args = ap.parse_args()
    missing = [t for t in ("perf", "objdump") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        raise SystemExit(f"profile_xdp needs root and {', '.join(missing) or 'perf, objdump'}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = C.cases(work)
        if args.only not in cases:
            raise SystemExit(f"--only: one of {', '.join(cases)}")
        spec, state, best_src, best_load, mix, classify = cases[args.only]
        frames = [(m, f) for m, f in mix if args.cls in classify(f)]
        if not frames:
            raise SystemExit(f"no frame of {args.only}'s mix has a class containing '{args.cls}'")
        prog = load_program(spec).program
        compile_object(best_src, work / "best.o")
        B.compile_object_from_text(B.EMPTY_XDP, work / "empty.c")
        placeholder = BpfObject(work / "best.o")  # takes the slot the first load gets, never run
        drivers: list[XdpDriver] = []
        objs: list[BpfObject] = [placeholder]
        fds: list[tuple[str, int]] = []
        try:
            for k in range(args.copies):
                d = XdpDriver(observe=False)
                drivers.append(d)
                d.open(prog, work / f"gen{k}")
                d.install(state)
                assert d.bpf is not None
                fds.append(("gen", d.bpf.prog_fd))
                objs.append(BpfObject(work / "best.o"))
                best_load(objs[-1])
                fds.append(("best", objs[-1].prog_fd))
            objs.append(BpfObject(work / "empty.o"))
            runners = [TestRunner(fd) for _, fd in fds] + [TestRunner(objs[-1].prog_fd)]
            images = [jited(fd) for _, fd in fds]  # (address, code) of each copy
            record = work / "perf.data"
            perf = subprocess.Popen(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", str(args.freq), "-p",
                                     str(os.getpid()), "-o", str(record), "--", "sleep", str(args.seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # perf attached
            trials = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.seconds:
                trials.append(B.time_mix(runners, frames, 20))
                print(f"\rsampling: {time.monotonic() - t0:.0f}/{args.seconds:.0f} s", end="", file=sys.stderr,
                      flush=True)
            print(file=sys.stderr)
            perf.wait()
            script = subprocess.run(["perf", "script", "-i", str(record), "-F", "ip,sym,symoff"], capture_output=True,
                                    text=True, check=True).stdout
        finally:
            for d in drivers:
                d.close()
            for o in objs:
                o.close()
    order = sorted(range(len(images)), key=lambda j: images[j][0])
    addrs = [images[j][0] for j in order]
    charged: list[collections.Counter[str]] = [collections.Counter() for _ in fds]
    offsets: list[collections.Counter[int]] = [collections.Counter() for _ in fds]
    for chain in samples(script):
        for depth, (ip, _) in enumerate(chain):
            i = bisect.bisect_right(addrs, ip) - 1
            if i < 0 or ip - addrs[i] >= len(images[order[i]][1]):
                continue
            j = order[i]
            charged[j]["(the program)" if depth == 0 else chain[0][1].rpartition("+0x")[0]] += 1
            if depth == 0:
                offsets[j][ip - addrs[i]] += 1
            break
    empty_ns = statistics.median(t[-1] for t in trials)
    print(f"{args.only}, {len(frames)} frames ({args.cls or 'the whole mix'}), {len(trials)} trials of time_mix "
          f"while sampling for {args.seconds:.0f} s at {args.freq} Hz; samples in each program and in the helpers it "
          "called")
    print()
    print("| program | loaded at | ns (minus empty) | samples | in the program | at its entry | helpers (samples) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for j, (which, _fd) in enumerate(fds):
        ns = statistics.median(t[j] for t in trials) - empty_ns
        c = charged[j]
        entry = sum(n for off, n in offsets[j].items() if off <= 8)
        helpers = ", ".join(f"{h} {n}" for h, n in c.most_common() if h != "(the program)")
        print(f"| {which} | {images[j][0]:#x} | {ns:.1f} | {sum(c.values())} | {c['(the program)']} | {entry} | "
              f"{helpers} |")
    if args.annotate:
        mine = [j for j, (which, _) in enumerate(fds) if which == args.annotate]
        summed: collections.Counter[int] = collections.Counter()
        for j in mine:  # copies of one program: the same code at the same offsets
            summed.update(offsets[j])
        print()
        with tempfile.TemporaryDirectory() as tmp:
            print(annotate(images[mine[0]][1], summed, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
