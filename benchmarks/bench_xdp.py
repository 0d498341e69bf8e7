"""XDP target benchmark: c3po's generated programs against hand-written, tuned XDP C of the same behaviour,
measured in the same run: the router (spec/examples/router.yaml vs benchmarks/handwritten/xdp_router.c), a
priority ACL (the spec below vs benchmarks/handwritten/xdp_acl.c) and the VXLAN gateway
(spec/examples/vxlan_gateway.yaml vs benchmarks/handwritten/xdp_vxlan.c: encapsulation, decapsulation, FDB).

Before timing, every packet of each mix (and, for VXLAN, frames for each parse error) runs once through both
programs and the XDP action and the output frame are compared ("same result"); the VXLAN frames carry the spec
ingress port as the c3po driver's XDP metadata, to both programs.

Reports the median ns/packet through BPF_PROG_TEST_RUN over a realistic packet mix (single runs, minus an empty
program's time; see time_mix), the verifier's "processed N insns" for each object, their ratios (goal: time <=
1.05, insns <= 1.10), and the driver's conformance throughput (single-packet vectors per second). Needs root,
clang and libbpf. Method and results: docs/performance.md.

    .venv/bin/python benchmarks/bench_xdp.py [--trials 9] [--runs 40] [--only VXLAN] [--repeat]
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
from targets.xdp.driver import XDP_DROP, XdpDriver  # noqa: E402
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

# VXLAN gateway: two local VTEP addresses, access ports 1..8 in 4 VNIs (port 9 has none), an underlay uplink.
VTEP_LOCAL = (0x0A000001, 0x0A000002)
N_VNI, N_MACS, UPLINK = 4, 1024, 20
META_MAGIC = 0x63337030

Frame = tuple[bytes, bytes]  # (XDP metadata, frame)
FdbEntry = tuple[int, int, str, tuple[int, ...]]  # (VNI, MAC, action, args)


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


def port_meta(port: int) -> bytes:
    return struct.pack("<II", META_MAGIC, port)


def vxlan_frame(inner: bytes, vtep_dst: int, vni: int, flags: int = 0x08) -> bytes:
    """`inner` carried in VXLAN from a remote VTEP (10.0.1.9) to vtep_dst, outer IPv4 checksum right."""
    udp = struct.pack("!HHHH", 0xC123, 4789, 16 + len(inner), 0)
    vx = struct.pack("!II", flags << 24, vni << 8)
    h = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 36 + len(inner), 0, 0x4000, 64, 17, 0, 0x0A000109,
                              vtep_dst))
    h[10:12] = struct.pack("!H", csum(bytes(h)))
    return bytes.fromhex("020000000001") + bytes.fromhex("0200000000fe") + b"\x08\x00" + bytes(h) + udp + vx + inner


def vxlan_scenario(rng: random.Random) -> tuple[list[FdbEntry], list[Frame]]:
    """FDB: per VNI, a quarter of the MACs on local access ports, the rest behind 64 remote VTEPs, a few dropped.
    Mix: 45% access frames to a remote MAC (encapsulated), 10% to a local MAC (forwarded), 5% broadcast (host),
    2.5% from a port without a VNI (dropped); 30% VXLAN frames to a local MAC (decapsulated), 2.5% to a remote
    MAC (split horizon: dropped), 2.5% unknown MAC (host), 2.5% for another VTEP (host)."""
    fdb: list[FdbEntry] = []
    macs: dict[tuple[int, str], list[int]] = {}
    for v in range(N_VNI):
        vni = 5000 + v
        for i in range(N_MACS):
            mac = 0x020100000000 | vni << 16 | i
            if i % 4 == 0:
                entry: FdbEntry = (vni, mac, "to_local", (1 + (i // 4) % 8,))
            elif i % 64 == 63:
                entry = (vni, mac, "drop", ())
            else:
                entry = (vni, mac, "to_remote", (UPLINK, VTEP_LOCAL[0], 0x0A000100 | i % 64, 0x0200000000FE,
                                                  0x020000000001))
            fdb.append(entry)
            macs.setdefault((vni, entry[2]), []).append(mac)
    mix: list[Frame] = []
    for i in range(200):
        port = rng.randint(1, 8)
        vni = 5000 + port % N_VNI
        size = rng.choice([64, 64, 128, 512, 1450])
        r = i % 40

        def inner(dst: int, src: int = 0x0A0A0001 + i, size: int = size) -> bytes:
            return ipv4(dst.to_bytes(6, "big"), src, 0x0A0A0101, 64, size)

        if r < 18:
            mix.append((port_meta(port), inner(rng.choice(macs[(vni, "to_remote")]))))
        elif r < 22:
            mix.append((port_meta(port), inner(rng.choice(macs[(vni, "to_local")]))))
        elif r < 24:
            mix.append((port_meta(port), inner(0xFFFFFFFFFFFF)))
        elif r < 25:
            mix.append((port_meta(9), inner(rng.choice(macs[(vni, "to_local")]))))
        elif r < 37:
            mix.append((port_meta(UPLINK), vxlan_frame(inner(rng.choice(macs[(vni, "to_local")])),
                                                       rng.choice(VTEP_LOCAL), vni)))
        elif r < 38:
            mix.append((port_meta(UPLINK), vxlan_frame(inner(rng.choice(macs[(vni, "to_remote")])),
                                                       VTEP_LOCAL[0], vni)))
        elif r < 39:
            mix.append((port_meta(UPLINK), vxlan_frame(inner(0x02FFFF000001), VTEP_LOCAL[1], vni)))
        else:
            mix.append((port_meta(UPLINK), vxlan_frame(inner(rng.choice(macs[(vni, "to_local")])),
                                                       0x0A000063, vni)))
    return fdb, mix


def vxlan_edge_frames(fdb: list[FdbEntry]) -> list[Frame]:
    """Frames outside the timed mix, only compared: each parse error of the spec, in the spec's order."""
    vni, mac = fdb[0][0], fdb[0][1]  # a to_local entry
    good = vxlan_frame(ipv4(mac.to_bytes(6, "big"), 1, 2, 64, 64), VTEP_LOCAL[0], vni)
    bad_csum = bytearray(good)
    bad_csum[24] ^= 0xFF
    more_frags, offset = bytearray(good), bytearray(good)
    more_frags[20] = 0x20
    offset[21] = 0x01
    uplink = port_meta(UPLINK)
    return [(uplink, good[:n]) for n in (14, 37, 38, 41, 49, 50, 57, 63, 64)] + [
        (uplink, bytes(bad_csum)), (uplink, bytes(more_frags)), (uplink, bytes(offset)),
        (uplink, vxlan_frame(good[50:], VTEP_LOCAL[0], vni, flags=0x00)),
        (uplink, vxlan_frame(good[50:], VTEP_LOCAL[0], vni, flags=0xF7)),
        (port_meta(300), good[50:]), (port_meta(1), good[50:][:20]), (port_meta(1), good[50:][:38])]


def vxlan_control(fdb: list[FdbEntry]) -> ControlState:
    entries = [EntryState("local_vtep", (KeyElem("value", a),), "nop") for a in VTEP_LOCAL]
    entries += [EntryState("port_vni", (KeyElem("value", p),), "set_vni", (5000 + p % N_VNI,)) for p in range(1, 9)]
    entries += [EntryState("fdb", (KeyElem("value", vni), KeyElem("value", mac)), action, args)
                for vni, mac, action, args in fdb]
    return ControlState(entries=tuple(entries))


def install_vxlan_handwritten(bpf: BpfObject, fdb: list[FdbEntry]) -> None:
    lb = lib()

    def put(name: str, key: bytes, value: bytes) -> None:
        if lb.bpf_map_update_elem(bpf.map_fd(name), key, value, 0) != 0:
            raise OSError(f"update {name} failed")

    for a in VTEP_LOCAL:
        put("hw_local_vtep", a.to_bytes(4, "big"), b"\x01")
    for p in range(1, 9):
        put("hw_port_vni", struct.pack("<I", p), struct.pack("<II", 1, 5000 + p % N_VNI))
    codes = {"to_local": 1, "to_remote": 2, "to_host": 3, "drop": 4}
    for i, (vni, mac, action, args) in enumerate(fdb):
        port, src, dst, smac, dmac = (*args, 0, 0, 0, 0, 0)[:5]
        value = struct.pack("<III", codes[action], i + 1, port) + src.to_bytes(4, "big") + dst.to_bytes(4, "big") \
            + smac.to_bytes(6, "big") + dmac.to_bytes(6, "big")
        put("hw_fdb", struct.pack("<I", vni) + mac.to_bytes(6, "big") + bytes(2), value)
    for port in range(256):
        put("hw_tx_ports", struct.pack("<I", port), struct.pack("<I", 1))


EMPTY_XDP = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("xdp") int empty(struct xdp_md *ctx) { return XDP_PASS; }
"""


def trimmed_mean(ds: list[int]) -> float:
    """Mean of the fastest 80%: single-run times are quantised (10 ns here), so a median would be too coarse,
    and the slowest runs are interrupts and cache misses of the machine, not of the program."""
    s = sorted(ds)[:max(1, len(ds) * 4 // 5)]
    return sum(s) / len(s)


def time_mix(runners: list[TestRunner], mix: list[Frame], runs: int) -> list[float]:
    """One trial: for each program, the mean over the mix of each packet's trimmed-mean single-run time; the
    programs take turns run by run, so load changes on the machine hit them alike, and the order of the turns
    rotates: the first program to run a frame pays a few ns more (measured: up to 10 ns on a 1,450-byte frame),
    which a fixed order would always charge to the same program.

    Single runs (repeat 1), not BPF_PROG_TEST_RUN's repeat: the kernel does not restore the frame between
    repeated runs, so with repeat N a program that edits the frame (TTL decrement, encapsulation) would run its
    path once and then N-1 times on its own output (an expired TTL, a VXLAN frame for another VTEP)."""
    totals = [0.0] * len(runners)
    for meta, f in mix:
        times: list[list[int]] = [[] for _ in runners]
        for k in range(runs):
            for j in range(len(runners)):
                i = (j + k) % len(runners)
                times[i].append(runners[i].run(f, meta)[2])
        for i, ds in enumerate(times):
            totals[i] += trimmed_mean(ds)
    return [t / len(mix) for t in totals]


def driver_rate(drv: XdpDriver, mix: list[Frame], seconds: float = 1.0) -> float:
    """Single-packet vectors per second through XdpDriver.run (what the conformance runner pays per vector)."""
    packets = [PacketIn(struct.unpack("<II", meta)[1] if meta else 1, f) for meta, f in mix[:50]]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for p in packets:
            drv.run([p], {})
            n += 1
    return n / (time.perf_counter() - t0)


def compile_object_from_text(text: str, src: Path) -> None:
    src.write_text(text, encoding="utf-8")
    compile_object(src, src.with_suffix(".o"))


def outcome(run: tuple[int, bytes, int]) -> tuple[int, bytes]:
    """What a packet's run decides: the XDP action and, unless it was dropped, the frame sent on."""
    return run[0], b"" if run[0] == XDP_DROP else run[1]


def compare(gen: BpfObject, hw: BpfObject, empty: BpfObject, mix: list[Frame], extra: list[Frame], trials: int,
            runs: int) -> dict[str, float]:
    g_run, h_run, e_run = TestRunner(gen.prog_fd), TestRunner(hw.prog_fd), TestRunner(empty.prog_fd)
    checked = mix + extra
    same = sum(outcome(g_run.run(f, meta)) == outcome(h_run.run(f, meta)) for meta, f in checked)
    g_times, h_times, e_times = [], [], []
    for _ in range(trials):
        g, h, e = time_mix([g_run, h_run, e_run], mix, runs)
        g_times.append(g)
        h_times.append(h)
        e_times.append(e)
    base = statistics.median(e_times)
    return {"same": same, "checked": len(checked), "g_ns": statistics.median(g_times) - base, "h_ns": statistics.median(h_times) - base,
            "base_ns": base, "g_insns": gen.insns_processed or 0, "h_insns": hw.insns_processed or 0}


def repeat_times(runners: list[TestRunner], mix: list[Frame], repeat: int = 1000, calls: int = 3) -> tuple[int, list[float]]:
    """Mean ns per run over the packets the first program leaves unchanged (same bytes out as in, whatever the
    verdict), with BPF_PROG_TEST_RUN's `repeat`: the kernel times its own loop with hot caches, a far steadier
    measure than single runs, but valid only for packets no program edits (see time_mix). Each call with
    repeat > 1 costs the kernel about 16 ms of set-up, hence an option, not the default."""
    kept = [(meta, f) for meta, f in mix if runners[0].run(f, meta)[1] == f]
    totals = [0.0] * len(runners)
    for meta, f in kept:
        for i, r in enumerate(runners):
            totals[i] += statistics.median(r.run(f, meta, repeat=repeat)[2] for _ in range(calls))
    return len(kept), [t / max(len(kept), 1) for t in totals]


def row(name: str, r: dict[str, float]) -> list[str]:
    return [f"| {name} | {r['g_ns']:.1f} | {r['h_ns']:.1f} | {r['g_ns'] / r['h_ns']:.3f} | {r['base_ns']:.1f} | "
            f"{int(r['g_insns'])} | {int(r['h_insns'])} | {r['g_insns'] / max(r['h_insns'], 1):.3f} | "
            f"{int(r['same'])}/{int(r['checked'])} |"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--runs", type=int, default=40, help="single runs per packet and trial")
    ap.add_argument("--only", default="", help="run only the programs whose name contains this (e.g. VXLAN)")
    ap.add_argument("--repeat", action="store_true",
                    help="also time the packets the programs leave unchanged with BPF_PROG_TEST_RUN repeat "
                         "(steadier; about 20 s more per program)")
    args = ap.parse_args()
    rng = random.Random(2026)
    v4, v6, router_frames = scenario(rng)
    rules, acl_frames = acl_scenario(rng)
    fdb, vxlan_mix = vxlan_scenario(rng)
    mix: list[Frame] = [(b"", f) for f in router_frames]
    acl_mix: list[Frame] = [(b"", f) for f in acl_frames]
    hand = ROOT / "benchmarks" / "handwritten"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        acl_spec = work / "acl_bench.yaml"
        acl_spec.write_text(ACL_SPEC.format(p=os.path.relpath(ROOT / "spec" / "protocols", work)), encoding="utf-8")
        cases = [  # (name, spec, control state, hand-written source, its loader, mix, frames only compared)
            ("router (router.yaml vs xdp_router.c)", ROOT / "spec/examples/router.yaml", control(v4, v6),
             hand / "xdp_router.c", lambda b: install_handwritten(b, v4, v6), mix, []),
            ("ACL (acl_bench vs xdp_acl.c)", acl_spec, acl_control(rules), hand / "xdp_acl.c",
             lambda b: install_acl_handwritten(b, rules), acl_mix, []),
            ("VXLAN gateway (vxlan_gateway.yaml vs xdp_vxlan.c)", ROOT / "spec/examples/vxlan_gateway.yaml",
             vxlan_control(fdb), hand / "xdp_vxlan.c", lambda b: install_vxlan_handwritten(b, fdb), vxlan_mix,
             vxlan_edge_frames(fdb)),
        ]
        compile_object_from_text(EMPTY_XDP, work / "empty.c")
        empty = BpfObject(work / "empty.o")
        rows: list[str] = []
        rates: list[str] = []
        repeats: list[str] = []
        for n, (name, spec, state, src, load, frames, extra) in enumerate(cases):
            if args.only.lower() not in name.lower():
                continue
            drv = XdpDriver()
            hw: BpfObject | None = None
            try:
                drv.open(load_program(spec).program, work / f"gen{n}")
                drv.install(state)
                assert drv.bpf is not None
                compile_object(src, work / f"hw{n}.o")
                hw = BpfObject(work / f"hw{n}.o")
                load(hw)
                rows += row(name, compare(drv.bpf, hw, empty, frames, extra, args.trials, args.runs))
                if args.repeat:
                    n_kept, (g, h, e) = repeat_times([TestRunner(drv.bpf.prog_fd), TestRunner(hw.prog_fd),
                                                      TestRunner(empty.prog_fd)], frames)
                    repeats.append(f"| {name.split(' (')[0]} | {n_kept}/{len(frames)} | {g - e:.2f} | {h - e:.2f} | "
                                   f"{(g - e) / max(h - e, 1e-9):.3f} |")
                rates.append(f"{name.split(' (')[0]} {driver_rate(drv, frames):,.0f}")
            finally:
                if hw is not None:
                    hw.close()
                drv.close()
        empty.close()
    print(f"median of {args.trials} trials, {args.runs} single runs per packet, over 200-packet mixes, minus an "
          "empty XDP program timed alike (the harness's own cost per run, 'empty ns'); router: 60% IPv4 routed, "
          f"20% IPv6 routed, 20% to host, {N_V4}+{N_V6} routes; ACL: {N_RULES} ternary/range rules, 75% hitting one; "
          f"VXLAN: {N_VNI * N_MACS} FDB entries, 45% encapsulated, 30% decapsulated, 10% bridged locally, "
          "15% to host or dropped")
    print()
    print("| program | generated ns/pkt | hand-written ns/pkt | time ratio | empty ns | generated insns "
          "| hand-written insns | insns ratio | same result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if repeats:
        print()
        print("packets the programs leave unchanged, BPF_PROG_TEST_RUN repeat 1000 (median of 3 calls), minus the "
              "empty program:")
        print()
        print("| program | packets | generated ns/pkt | hand-written ns/pkt | time ratio |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(repeats))
    print()
    print(f"driver: single-packet vectors/s (goal >= 50,000): {'; '.join(rates)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
