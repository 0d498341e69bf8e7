"""XDP target benchmark: c3po's generated router against a hand-written, tuned XDP router of the same behaviour
(benchmarks/handwritten/xdp_router.c), measured in the same run.

Reports the median ns/packet through BPF_PROG_TEST_RUN (repeat R) over a realistic packet mix, the verifier's
"processed N insns" for each object, their ratios (goal: time <= 1.05, insns <= 1.10), and the driver's
conformance throughput (single-packet vectors per second). Needs root, clang and libbpf.

    .venv/bin/python benchmarks/bench_xdp.py [--trials 9] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from c3po_compiler import load_program  # noqa: E402
from c3po_compiler.expr import KeyElem  # noqa: E402
from conformance.model import ControlState, EntryState, PacketIn  # noqa: E402
from targets.xdp import compile_object  # noqa: E402
from targets.xdp.driver import XdpDriver  # noqa: E402
from targets.xdp.libbpf import BpfObject, TestRunner, lib  # noqa: E402

ROUTER_MAC = bytes.fromhex("020000000001")
N_V4, N_V6, N_NH = 1000, 200, 16


def csum(b: bytes) -> int:
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(dst_mac: bytes, src: int, dst: int, ttl: int, size: int) -> bytes:
    payload = bytes(max(0, size - 34))
    h = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), 7, 0, ttl, 17, 0, src, dst))
    h[10:12] = struct.pack("!H", csum(bytes(h)))
    return dst_mac + bytes.fromhex("020000000099") + b"\x08\x00" + bytes(h) + payload


def ipv6(dst_mac: bytes, dst: int, hops: int, size: int) -> bytes:
    payload = bytes(max(0, size - 54))
    h = struct.pack("!IHBB16s16s", 0x60000000, len(payload), 17, hops, (1).to_bytes(16, "big"),
                    dst.to_bytes(16, "big"))
    return dst_mac + bytes.fromhex("020000000099") + b"\x86\xdd" + h + payload


def scenario(rng: random.Random) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[bytes]]:
    v4 = [(0x0A000000 | rng.randrange(1 << 16) << 8, 24) for _ in range(N_V4)]
    v6 = [(0x20010DB8 << 96 | rng.randrange(1 << 16) << 80, 48) for _ in range(N_V6)]
    mix: list[bytes] = []
    for i in range(200):
        size = rng.choice([64, 64, 128, 512, 1500])
        r = i % 20
        if r < 12:
            mix.append(ipv4(ROUTER_MAC, 0xC0000201, rng.choice(v4)[0] | rng.randrange(1, 255), 64, size))
        elif r < 16:
            mix.append(ipv6(ROUTER_MAC, rng.choice(v6)[0] | rng.randrange(1 << 64), 64, size))
        elif r < 18:
            mix.append(ipv4(ROUTER_MAC, 0xC0000201, rng.choice(v4)[0] | 9, 1, size))  # TTL expiring: host
        else:
            mix.append(ipv4(bytes.fromhex("02000000ffff"), 0xC0000201, 0x0A000001, 64, size))  # not for us
    return v4, v6, mix


def control(v4: list[tuple[int, int]], v6: list[tuple[int, int]]) -> ControlState:
    entries = [EntryState("router_mac", (KeyElem("value", int.from_bytes(ROUTER_MAC, "big")),), "nop")]
    entries += [EntryState("routes_v4", (KeyElem("prefix", a, n),), "set_nexthop", (i % N_NH,))
                for i, (a, n) in enumerate(v4)]
    entries += [EntryState("routes_v6", (KeyElem("prefix", a, n),), "set_nexthop", (i % N_NH,))
                for i, (a, n) in enumerate(v6)]
    entries += [EntryState("nexthops", (KeyElem("value", i),), "next_hop", (i % 4 + 1, 0x02AA00000000 + i,
                                                                         0x02BB00000000 + i))
                for i in range(N_NH)]
    return ControlState(entries=tuple(entries))


def install_handwritten(bpf: BpfObject, v4: list[tuple[int, int]], v6: list[tuple[int, int]]) -> None:
    lb = lib()

    def put(name: str, key: bytes, value: bytes) -> None:
        if lb.bpf_map_update_elem(bpf.map_fd(name), key, value, 0) != 0:
            raise OSError(f"update {name} failed")

    put("hw_router_mac", ROUTER_MAC, b"\x01")
    for i, (a, n) in enumerate(v4):
        put("hw_routes_v4", struct.pack("<I", n) + a.to_bytes(4, "big"), struct.pack("<II", 1, i % N_NH))
    for i, (a, n) in enumerate(v6):
        put("hw_routes_v6", struct.pack("<I", n) + a.to_bytes(16, "big"), struct.pack("<II", 1, i % N_NH))
    # the spec's constant entries
    for a, n, act in [(0, 8, 3), (0x7F000000, 8, 3), (0xE0000000, 4, 2), (0xFFFFFFFF, 32, 2)]:
        put("hw_routes_v4", struct.pack("<I", n) + a.to_bytes(4, "big"), struct.pack("<II", act, 0))
    for a, n, act in [(1, 128, 3), (0xFE80 << 112, 10, 2), (0xFF << 120, 8, 2)]:
        put("hw_routes_v6", struct.pack("<I", n) + a.to_bytes(16, "big"), struct.pack("<II", act, 0))
    for i in range(N_NH):
        put("hw_nexthops", struct.pack("<I", i), struct.pack("<II", 1, i % 4 + 1)
            + (0x02AA00000000 + i).to_bytes(6, "big") + (0x02BB00000000 + i).to_bytes(6, "big"))
    for port in range(256):
        put("hw_tx_ports", struct.pack("<I", port), struct.pack("<I", 1))


def time_mix(runner: TestRunner, mix: list[bytes], repeat: int) -> float:
    return sum(runner.run(f, repeat=repeat)[2] for f in mix) / len(mix)


def driver_rate(drv: XdpDriver, mix: list[bytes], seconds: float = 1.0) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for f in mix[:50]:
            drv.run([PacketIn(1, f)], {})
            n += 1
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(2026)
    v4, v6, mix = scenario(rng)
    prog = load_program(ROOT / "spec/examples/router.yaml").program
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drv = XdpDriver()
        try:
            drv.open(prog, work / "gen")
            drv.install(control(v4, v6))
            assert drv.bpf is not None
            gen = drv.bpf
            compile_object(ROOT / "benchmarks/handwritten/xdp_router.c", work / "hw.o")
            hw = BpfObject(work / "hw.o")
            try:
                install_handwritten(hw, v4, v6)
                g_run, h_run = TestRunner(gen.prog_fd), TestRunner(hw.prog_fd)
                same = sum(g_run.run(f)[:2] == h_run.run(f)[:2] for f in mix)
                g_times, h_times = [], []
                for _ in range(args.trials):
                    g_times.append(time_mix(g_run, mix, args.repeat))
                    h_times.append(time_mix(h_run, mix, args.repeat))
                g_ns, h_ns = statistics.median(g_times), statistics.median(h_times)
                g_insns, h_insns = gen.insns_processed or 0, hw.insns_processed or 0
                rate = driver_rate(drv, mix)
            finally:
                hw.close()
        finally:
            drv.close()
    print(f"router: {len(mix)} packets (60% IPv4 routed, 20% IPv6 routed, 20% to host), {N_V4}+{N_V6} routes, "
          f"median of {args.trials} trials x repeat {args.repeat}")
    print(f"same action and bytes on {same}/{len(mix)} packets")
    print()
    print("| program | ns/packet | verifier insns |")
    print("|---|---:|---:|")
    print(f"| c3po generated (router.yaml) | {g_ns:.1f} | {g_insns} |")
    print(f"| hand-written xdp_router.c | {h_ns:.1f} | {h_insns} |")
    print(f"| ratio generated / hand-written | {g_ns / h_ns:.3f} | {g_insns / max(h_insns, 1):.3f} |")
    print()
    print(f"driver: {rate:,.0f} single-packet vectors/s (goal >= 50,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
