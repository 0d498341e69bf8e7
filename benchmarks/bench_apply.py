"""Entries per second written into a live XDP program: `c3po apply` of 10,000 LPM routes (issue 13's goal:
20,000/s or more), beside the baseline of the same run.

    .venv/bin/python benchmarks/bench_apply.py [--routes 10000] [--repeat 5]

The router example is loaded with `c3po load` on a veth in a namespace made here (removed after). Measured, each
the median of `--repeat` runs from empty tables:
- `c3po apply` as a user runs it (YAML, and the JSON `c3po dump --json` writes): reads and checks the file, reads
  the live tables, writes the difference;
- `Dataplane.apply` alone, entries already parsed (what a Python controller pays);
- baseline: the fastest a program can write the same routes through the kernel's map API one by one (the LPM
  trie has no batch update): `bpf_map_update_elem` in a tight ctypes loop over keys and values encoded
  beforehand, no checks at all. It bounds what any tool writing entries one at a time can reach from Python.
Needs root, clang and BPF.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from c3po_compiler.cli import main  # noqa: E402
from dataplane import registry  # noqa: E402
from dataplane.cli import load_entries  # noqa: E402
from dataplane.targets import control_module  # noqa: E402
from targets.xdp import layout as L  # noqa: E402
from targets.xdp.readme import entry_key  # noqa: E402

NAME = "bench_apply"


def entries_file(path: Path, routes: int) -> None:
    rows = [{"table": "routes_v4", "match": {"ipv4.dst": f"10.{i >> 8 & 255}.{i & 255}.0/24"},
             "action": f"set_nexthop({1 + i % 64})"} for i in range(routes)]
    path.write_text(yaml.safe_dump({"entries": rows}, sort_keys=False))
    path.with_suffix(".json").write_text(json.dumps({"entries": rows}))


def run(argv: list[str]) -> None:
    if main(argv) != 0:
        raise SystemExit(f"c3po {' '.join(argv)} failed")


def main_bench() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ns = f"c3po-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["C3PO_RUN_DIR"] = str(Path(tmp) / "run")
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "add", "b0", "type", "veth", "peer", "name", "b1"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "b0", "up"], check=True)
            run(["load", str(ROOT / "spec/examples/router.yaml"), "-t", "xdp", "--netns", ns, "--dev", "b0",
                 "--name", NAME])
            try:
                measure(Path(tmp), args.routes, args.repeat)
            finally:
                run(["unload", NAME])
        finally:
            subprocess.run(["ip", "netns", "delete", ns], check=False)


def measure(tmp: Path, routes: int, repeat: int) -> None:
    path = tmp / "routes.yaml"
    entries_file(path, routes)
    record, prog = registry.get(NAME)
    dp = control_module("xdp").open(prog, record)
    tables, defaults = load_entries(str(path), prog)
    table = dp.table("routes_v4")

    def empty() -> None:
        dp.apply({"routes_v4": []}, {}, only=["routes_v4"])

    cli, cli_json, api, base = [], [], [], []
    lay = L.table_layout(prog, prog.tables["routes_v4"])
    encoded = [(entry_key(lay, list(e.match)), L.encode_value(lay, e.action, e.args, i))
               for i, e in enumerate(tables["routes_v4"])]
    for _ in range(repeat):
        empty()
        t0 = time.perf_counter()
        run(["apply", NAME, str(path), "--show", "0"])
        cli.append(time.perf_counter() - t0)
        empty()
        t0 = time.perf_counter()
        run(["apply", NAME, str(path.with_suffix(".json")), "--show", "0"])
        cli_json.append(time.perf_counter() - t0)
        empty()
        t0 = time.perf_counter()
        dp.apply(tables, defaults, only=["routes_v4"])
        api.append(time.perf_counter() - t0)
        assert len(table.entries(counters=False)) == routes + len(prog.tables["routes_v4"].entries)
        empty()
        fd = dp._map("t_routes_v4")
        update = dp.lb.bpf_map_update_elem
        t0 = time.perf_counter()
        for k, v in encoded:
            if update(fd, k, v, 0) != 0:
                raise OSError(ctypes.get_errno(), "bpf_map_update_elem")
        base.append(time.perf_counter() - t0)
    empty()
    dp.close()
    rows = [("c3po apply ENTRIES.yaml", cli), ("c3po apply ENTRIES.json", cli_json), ("Dataplane.apply (parsed entries)", api),
            ("baseline: bpf_map_update_elem loop", base)]
    b = statistics.median(base)
    print(f"{routes} IPv4 /24 routes into routes_v4 (LPM trie), median of {repeat}:")
    for label, times in rows:
        t = statistics.median(times)
        print(f"  {label:38s} {t:7.3f} s  {routes / t:10,.0f} entries/s  ({t / b:5.1f}x the baseline's time)")


if __name__ == "__main__":
    main_bench()
