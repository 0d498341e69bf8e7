"""Route insertion rate and memory of the generated router's IPv4 multibit trie (issue 14), for 10,000 and
100,000 routes.

    .venv/bin/python benchmarks/bench_tables.py [--routes 10000,100000] [--repeat 3] [--api]

Two route sets, each inserted one route at a time from an empty trie:
- dense: consecutive /24s from 10.0.0.0 (as bench_apply.py), which share their /16 nodes;
- bgp-like: unique prefixes over 1.0.0.0-223.255.255.255 with the length mix of a global routing table (58% /24,
  27% /19../23, 10% /15../18, 3% /8../14, 3% /25../32), which share few nodes.

Measured:
- structure: targets/xdp/trie.py's Trie.insert on a bytearray (the slot writes and node allocation alone, no
  kernel), with a node pool large enough for the set; nodes used, and memory = nodes x 1 KiB + the 256 KiB root +
  the value array (16 bytes per route: tv_routes_v4's value);
- with --api (root, BPF): c3po's Dataplane.apply inserting the same routes into a live router built from
  spec/examples/router.yaml with routes_v4 resized to hold them (size and trie nodes given by `impl`), loaded
  with `c3po load` on a veth in a namespace made here (removed after): what a controller pays per route,
  including the record map and the mmap writes.
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
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from targets.xdp.trie import FANOUT, FIRST_NODE, ROOT_BITS, Trie  # noqa: E402

VALUE_BYTES = 16  # tv_routes_v4: action, entry, one argument word
LENGTHS = [(24, 60), (23, 8), (22, 10), (21, 4), (20, 3), (19, 3), (18, 2), (17, 2), (16, 5)] + \
    [(n, 1) for n in (8, 10, 12, 14)] + [(n, 1) for n in (15, 25, 28, 32)]


def dense(n: int) -> list[tuple[int, int]]:
    return [(0x0A000000 + (i << 8), 24) for i in range(n)]


def bgp_like(n: int, seed: int = 14) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    lens, weights = zip(*LENGTHS, strict=True)
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    while len(out) < n:
        plen = rng.choices(lens, weights)[0]
        addr = rng.randrange(0x01000000, 0xE0000000) & (((1 << plen) - 1) << (32 - plen))
        if (addr, plen) not in seen:
            seen.add((addr, plen))
            out.append((addr, plen))
    return out


def structure(routes: list[tuple[int, int]], nodes: int) -> tuple[float, int]:
    """Seconds to insert the routes one by one into an empty trie of `nodes` nodes, and the nodes it used."""
    mem = memoryview(bytearray((FIRST_NODE + nodes) * FANOUT * 4)).cast("I")
    plens = [p for _, p in routes]
    trie = Trie(mem, nodes, 32, lambda e: plens[e])
    t0 = time.perf_counter()
    for i, (a, p) in enumerate(routes):
        trie.insert(a, p, i)
    dt = time.perf_counter() - t0
    return dt, trie.used_nodes


def memory(routes: int, nodes: int) -> int:
    return nodes * FANOUT * 4 + (1 << ROOT_BITS) * 4 + routes * VALUE_BYTES


def api(sets: dict[str, list[tuple[int, int]]], repeat: int) -> dict[str, float]:
    """Median seconds of Dataplane.apply for each route set, into a live router sized for the largest."""
    from c3po_compiler.cli import main
    from dataplane import registry
    from dataplane.cli import load_entries
    from dataplane.targets import control_module

    most = max(len(r) for r in sets.values())
    name, ns = "bench_tables", f"c3po-tables-{os.getpid()}"
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["C3PO_RUN_DIR"] = str(work / "run")
        spec = yaml.safe_load((ROOT / "spec/examples/router.yaml").read_text())
        spec["include"] = [str(ROOT / "spec/protocols" / Path(p).name) for p in spec["include"]]
        spec["tables"]["routes_v4"]["size"] = 1 << (most - 1).bit_length()
        spec["tables"]["routes_v4"]["impl"] = {"kind": "multibit_trie", "nodes": 65536}
        (work / "router.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

        def run(argv: list[str]) -> None:
            if main(argv) != 0:
                raise SystemExit(f"c3po {' '.join(argv)} failed")

        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "add", "b0", "type", "veth", "peer", "name", "b1"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "b0", "up"], check=True)
            run(["load", str(work / "router.yaml"), "-t", "xdp", "--netns", ns, "--dev", "b0", "--name", name])
            try:
                record, prog = registry.get(name)
                dp = control_module("xdp").open(prog, record)
                try:
                    for label, routes in sets.items():
                        path = work / f"{label}.json"
                        rows = [{"table": "routes_v4", "match": {"ipv4.dst": f"{a >> 24}.{a >> 16 & 255}."
                                                                               f"{a >> 8 & 255}.{a & 255}/{p}"},
                                 "action": f"set_nexthop({1 + i % 64})"} for i, (a, p) in enumerate(routes)]
                        path.write_text(json.dumps({"entries": rows}))
                        tables, defaults = load_entries(str(path), prog)
                        times = []
                        for _ in range(repeat):
                            dp.apply({"routes_v4": []}, {}, only=["routes_v4"])
                            t0 = time.perf_counter()
                            dp.apply(tables, defaults, only=["routes_v4"])
                            times.append(time.perf_counter() - t0)
                        dp.apply({"routes_v4": []}, {}, only=["routes_v4"])
                        out[label] = statistics.median(times)
                finally:
                    dp.close()
            finally:
                run(["unload", name])
        finally:
            subprocess.run(["ip", "netns", "delete", ns], check=False)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", default="10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--api", action="store_true", help="also time Dataplane.apply into a live program (root)")
    args = ap.parse_args()
    sets: dict[str, list[tuple[int, int]]] = {}
    for n in (int(x) for x in args.routes.split(",")):
        sets[f"dense {n:,}"] = dense(n)
        sets[f"bgp-like {n:,}"] = bgp_like(n)
    api_s = api(sets, args.repeat) if args.api else {}
    print("| routes | nodes used | memory (nodes x 1 KiB + 256 KiB root + 16 B/route) | structure: routes/s "
          "| default node pool (size / 8) holds it | Dataplane.apply: routes/s |")
    print("|---|---:|---:|---:|---|---:|")
    for label, routes in sets.items():
        times, used = [], 0
        for _ in range(args.repeat):
            dt, used = structure(routes, 65536)
            times.append(dt)
        size = 1 << (len(routes) - 1).bit_length()
        pool = max(64, min(65536, size // 8))
        rate = f"{len(routes) / api_s[label]:,.0f}" if label in api_s else "-"
        print(f"| {label} | {used:,} | {memory(len(routes), used) / 2**20:.1f} MiB | "
              f"{len(routes) / statistics.median(times):,.0f} | {'yes' if used <= pool else 'no'} ({pool:,} nodes "
              f"for size {size:,}) | {rate} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
