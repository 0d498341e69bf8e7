"""Throughput of the reference interpreter on spec/examples/router.yaml with a realistic traffic mix.

Run: .venv/bin/python benchmarks/bench_interpreter.py [--packets N] [--rounds R]
Prints the median packets/s over the rounds (single core, one `Interpreter.run` call per round), and the same
for a baseline measured in the same run: a minimal program (extract Ethernet, forward) on the same frames, the
per-packet floor of the interpreter, so the ratio is comparable across machines and loads.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from c3po_compiler import load_program  # noqa: E402
from c3po_compiler.expr import KeyElem  # noqa: E402
from conformance.interpreter import Interpreter  # noqa: E402
from conformance.model import ControlState, EntryState, PacketIn  # noqa: E402

ROUTER_MAC = "02:00:00:00:00:01"
N_ROUTES = 2000
N_NEXTHOPS = 64
MINIMAL_SPEC = """
c3po: 1
program: minimal
include: [{ethernet}]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet}}
control: [forward(1)]
"""


def control_state(rng: random.Random) -> tuple[ControlState, list[int], list[int]]:
    entries = [EntryState("router_mac", (KeyElem("value", int(ROUTER_MAC.replace(":", ""), 16)),), "nop")]
    v4: list[int] = []
    v6: list[int] = []
    for _ in range(N_ROUTES):
        plen = rng.choice([8, 16, 20, 24, 24, 24, 32])
        net = (rng.randrange(1, 223) << 24 | rng.getrandbits(24)) & (((1 << plen) - 1) << (32 - plen))
        v4.append(net)
        entries.append(EntryState("routes_v4", (KeyElem("prefix", net, plen),), "set_nexthop",
                                  (rng.randrange(N_NEXTHOPS),)))
        plen6 = rng.choice([32, 48, 56, 64])
        net6 = (0x2001 << 112 | rng.getrandbits(112)) & (((1 << plen6) - 1) << (128 - plen6))
        v6.append(net6)
        entries.append(EntryState("routes_v6", (KeyElem("prefix", net6, plen6),), "set_nexthop",
                                  (rng.randrange(N_NEXTHOPS),)))
    for nh in range(N_NEXTHOPS - 4):  # a few next hops unresolved: those go to the host
        entries.append(EntryState("nexthops", (KeyElem("value", nh),), "next_hop",
                                  (nh % 8, 0x020000000100 + nh, 0x020000000200 + nh)))
    return ControlState(tuple(entries)), v4, v6


def traffic(rng: random.Random, v4: list[int], v6: list[int], n: int) -> list[PacketIn]:
    """60% IPv4 (mostly routed, some misses, TTL expiry, options), 30% IPv6, 10% other (ARP, foreign MAC)."""
    templates: list[bytes] = []
    for _ in range(400):
        r = rng.random()
        eth = Ether(dst=ROUTER_MAC, src="02:00:00:00:09:09")
        if r < 0.6:
            dst = rng.choice(v4) | rng.getrandbits(8) if rng.random() < 0.85 else rng.getrandbits(32)
            ttl = 1 if rng.random() < 0.05 else rng.randrange(2, 255)
            l4 = TCP(sport=rng.randrange(65536), dport=443) if rng.random() < 0.7 else UDP(dport=53)
            pkt = eth / IP(src="192.0.2.7", dst=str(dst_v4(dst)), ttl=ttl) / l4 / (b"x" * rng.randrange(0, 200))
        elif r < 0.9:
            dst = rng.choice(v6) | rng.getrandbits(16) if rng.random() < 0.85 else rng.getrandbits(128)
            hlim = 1 if rng.random() < 0.05 else 64
            pkt = eth / IPv6(src="2001:db8::7", dst=dst_v6(dst), hlim=hlim) / UDP(dport=53) / (b"y" * 64)
        elif r < 0.95:
            pkt = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="192.0.2.1")
        else:
            pkt = Ether(dst="02:00:00:00:77:77") / IP(dst="10.0.0.1") / UDP()
        templates.append(bytes(pkt))
    return [PacketIn(rng.randrange(8), templates[i % len(templates)]) for i in range(n)]


def dst_v4(v: int) -> str:
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


def dst_v6(v: int) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(v))


def measure(fn: object, n: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, so the number does not depend on the scheduler
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = random.Random(1)
    prog = load_program(ROOT / "spec" / "examples" / "router.yaml").program
    interp = Interpreter(prog)
    control, v4, v6 = control_state(rng)
    interp.install(control)
    packets = traffic(rng, v4, v6, args.packets)
    results = interp.run(packets, {})
    mix: dict[str, int] = {}
    for r in results:
        mix[r.verdict] = mix.get(r.verdict, 0) + 1
    print(f"router.yaml, {len(control.entries)} entries, {args.packets} packets, verdicts {dict(sorted(mix.items()))}")
    full = measure(lambda: interp.run(packets, {}), args.packets, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        minimal = Path(tmp) / "minimal.yaml"
        minimal.write_text(MINIMAL_SPEC.format(ethernet=ROOT / "spec" / "protocols" / "ethernet.yaml"))
        floor_interp = Interpreter(load_program(minimal).program)
    floor = measure(lambda: floor_interp.run(packets, {}), args.packets, args.rounds)
    print(f"router: median {full:,.0f} packets/s over {args.rounds} rounds")
    print(f"baseline (extract ethernet, forward): median {floor:,.0f} packets/s; router/baseline {full / floor:.2f}")


if __name__ == "__main__":
    main()
