"""XDP target benchmark: c3po's generated programs against hand-written, tuned XDP C of the same behaviour,
measured in the same run: the router (spec/examples/router.yaml vs benchmarks/handwritten/xdp_router.c) and a
priority ACL (the spec below vs benchmarks/handwritten/xdp_acl.c).

Reports the median ns/packet through BPF_PROG_TEST_RUN (repeat R) over a realistic packet mix, the verifier's
"processed N insns" for each object, their ratios (goal: time <= 1.05, insns <= 1.10), and the driver's
conformance throughput (single-packet vectors per second). Needs root, clang and libbpf.

    .venv/bin/python benchmarks/bench_xdp.py [--trials 9] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import os
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
N_RULES = 32

# IPv4/UDP ACL: ternary source and destination, destination-port range, highest priority wins, default deny.
ACL_SPEC = """
c3po: 1
program: acl_bench
include: [{p}/ethernet.yaml, {p}/ipv4.yaml, {p}/udp.yaml]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet, select: ethernet.ethertype, cases: {{"0x0800": ipv4}}, default: accept}}
    ipv4: {{extract: ipv4, select: ipv4.protocol, cases: {{17: udp}}, default: accept}}
    udp: {{extract: udp}}
tables:
  acl:
    key: {{ipv4.src: ternary, ipv4.dst: ternary, udp.dst_port: range}}
    actions: [to_host, drop]
    default: drop
    size: 64
control:
  - if: "valid(udp)"
    then: [{{apply: acl}}]
    else: [to_host]
"""
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


def acl_scenario(rng: random.Random) -> tuple[list[tuple[int, int, int, int, int, int, str, int]], list[bytes]]:
    rules = []
    for i in range(N_RULES):
        src_len, dst_len = rng.choice([8, 16, 24]), rng.choice([16, 24, 32])
        src = (0x0A000000 | rng.randrange(1 << 16) << 8) & (((1 << src_len) - 1) << (32 - src_len))
        dst = (0xC0A80000 | rng.randrange(1 << 16)) & (((1 << dst_len) - 1) << (32 - dst_len))
        lo = rng.randrange(0, 60000)
        rules.append((src, ((1 << src_len) - 1) << (32 - src_len), dst, ((1 << dst_len) - 1) << (32 - dst_len),
                      lo, lo + rng.randrange(1, 5000), rng.choice(["to_host", "drop"]), 100 - i))
    mix = []
    for i in range(200):
        r = rules[rng.randrange(N_RULES)] if i % 4 else None
        src = (r[0] | rng.randrange(1 << (32 - bin(r[1]).count("1")))) if r else rng.randrange(1 << 32)
        dst = (r[2] | rng.randrange(1 << (32 - bin(r[3]).count("1")))) if r else rng.randrange(1 << 32)
        port = rng.randint(r[4], r[5]) if r else rng.randrange(1 << 16)
        udp = struct.pack("!HHHH", 4000, port, 8 + 18, 0) + bytes(18)
        frame = bytearray(ipv4(bytes.fromhex("020000000001"), src, dst, 64, 14 + 20 + len(udp)))
        frame[23] = 17
        frame[34:] = udp
        mix.append(bytes(frame))
    return rules, mix


def acl_control(rules: list[tuple[int, int, int, int, int, int, str, int]]) -> ControlState:
    return ControlState(entries=tuple(
        EntryState("acl", (KeyElem("mask", s, sm), KeyElem("mask", d, dm), KeyElem("range", lo, hi)), action, (), pri)
        for s, sm, d, dm, lo, hi, action, pri in rules))


def install_acl_handwritten(bpf: BpfObject, rules: list[tuple[int, int, int, int, int, int, str, int]]) -> None:
    lb = lib()
    for i, (s, sm, d, dm, lo, hi, action, _) in enumerate(sorted(rules, key=lambda r: -r[7])):
        value = struct.pack("<IIIIHHI", s, sm, d, dm, lo, hi, 1 if action == "to_host" else 2)
        if lb.bpf_map_update_elem(bpf.map_fd("hw_acl"), struct.pack("<I", i), value, 0) != 0:
            raise OSError("update hw_acl failed")


def time_mix(runner: TestRunner, mix: list[bytes], repeat: int) -> float:
    return sum(runner.run(f, repeat=repeat)[2] for f in mix) / len(mix)


def driver_rate(drv: XdpDriver, mix: list[bytes], seconds: float = 1.0) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for f in mix[:50]:
            drv.run([PacketIn(1, f)], {})
            n += 1
    return n / (time.perf_counter() - t0)


def compare(gen: BpfObject, hw: BpfObject, mix: list[bytes], trials: int, repeat: int) -> dict[str, float]:
    g_run, h_run = TestRunner(gen.prog_fd), TestRunner(hw.prog_fd)
    same = sum(g_run.run(f)[:2] == h_run.run(f)[:2] for f in mix)
    g_times, h_times = [], []
    for _ in range(trials):
        g_times.append(time_mix(g_run, mix, repeat))
        h_times.append(time_mix(h_run, mix, repeat))
    return {"same": same, "g_ns": statistics.median(g_times), "h_ns": statistics.median(h_times),
            "g_insns": gen.insns_processed or 0, "h_insns": hw.insns_processed or 0}


def row(name: str, hand: str, r: dict[str, float]) -> list[str]:
    return [f"| {name} | {r['g_ns']:.1f} | {r['h_ns']:.1f} | {r['g_ns'] / r['h_ns']:.3f} | {int(r['g_insns'])} | "
            f"{int(r['h_insns'])} | {r['g_insns'] / max(r['h_insns'], 1):.3f} | {int(r['same'])}/200 |"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(2026)
    v4, v6, mix = scenario(rng)
    rules, acl_mix = acl_scenario(rng)
    prog = load_program(ROOT / "spec/examples/router.yaml").program
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        acl_spec = work / "acl_bench.yaml"
        acl_spec.write_text(ACL_SPEC.format(p=os.path.relpath(ROOT / "spec" / "protocols", work)), encoding="utf-8")
        acl_prog = load_program(acl_spec).program
        drv, acl_drv = XdpDriver(), XdpDriver()
        try:
            drv.open(prog, work / "gen")
            drv.install(control(v4, v6))
            acl_drv.open(acl_prog, work / "acl")
            acl_drv.install(acl_control(rules))
            assert drv.bpf is not None and acl_drv.bpf is not None
            compile_object(ROOT / "benchmarks/handwritten/xdp_router.c", work / "hw.o")
            compile_object(ROOT / "benchmarks/handwritten/xdp_acl.c", work / "hw_acl.o")
            hw, hw_acl = BpfObject(work / "hw.o"), BpfObject(work / "hw_acl.o")
            try:
                install_handwritten(hw, v4, v6)
                install_acl_handwritten(hw_acl, rules)
                router = compare(drv.bpf, hw, mix, args.trials, args.repeat)
                acl = compare(acl_drv.bpf, hw_acl, acl_mix, args.trials, args.repeat)
                rate = driver_rate(drv, mix)
            finally:
                hw.close()
                hw_acl.close()
        finally:
            drv.close()
            acl_drv.close()
    print(f"median of {args.trials} trials x repeat {args.repeat} over 200-packet mixes; router: 60% IPv4 routed, "
          f"20% IPv6 routed, 20% to host, {N_V4}+{N_V6} routes; ACL: {N_RULES} ternary/range rules, 75% hitting one")
    print()
    print("| program | generated ns/pkt | hand-written ns/pkt | time ratio | generated insns | hand-written insns "
          "| insns ratio | same result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(row("router (router.yaml vs xdp_router.c)", "xdp_router.c", router)
                    + row("ACL (acl_bench vs xdp_acl.c)", "xdp_acl.c", acl)))
    print()
    print(f"driver: {rate:,.0f} single-packet vectors/s (goal >= 50,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
