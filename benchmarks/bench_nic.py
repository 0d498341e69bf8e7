"""NIC target benchmark: generated C against hand-written C of the same behaviour, measured in the same run.

For spec/examples/router.yaml and acl_firewall.yaml, both sides get the same table contents and the same
realistic packet mix; a C timing loop (compiled -O2, the frame copied fresh each time, as a NIC would receive
it) runs every packet `rounds` times, repeated `reps` times, and the median ns/packet is reported, with the
state memory (sizeof) of each. Before timing, every packet's verdict, port and output bytes are compared between
the two sides, so the comparison is between programs that do the same thing.

    .venv/bin/python benchmarks/bench_nic.py [--reps 7] [--rounds 200]
"""

from __future__ import annotations

import argparse
import ctypes
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, RouterAlert
from scapy.layers.l2 import ARP, Dot1Q, Ether

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from c3po_compiler import load_program  # noqa: E402
from c3po_compiler.expr import KeyElem  # noqa: E402
from conformance.model import ControlState, EntryState, PacketIn  # noqa: E402
from targets.nic.driver import NicDriver, SharedObject  # noqa: E402

ROUTER_MAC = 0x020000000001


def build_handwritten(name: str, out: Path) -> ctypes.CDLL:
    so = out / f"hw_{name}.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", str(ROOT / "benchmarks" / "handwritten" / f"nic_{name}.c"),
                    "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.hw_new.restype = ctypes.c_void_p
    lib.hw_state_size.restype = ctypes.c_size_t
    lib.hw_bench.restype = ctypes.c_uint64
    lib.hw_bench.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_uint32]
    lib.hw_process.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32,
                               ctypes.POINTER(ctypes.c_uint32)]
    return lib


# ------------------------------------------------------------------------------------------------ router


def router_setup(rng: random.Random) -> tuple[ControlState, Callable[[ctypes.CDLL, int], None], list[PacketIn]]:
    entries: list[EntryState] = [EntryState("router_mac", (KeyElem("value", ROUTER_MAC),), "nop")]
    v4: list[tuple[int, int, int]] = []
    for _ in range(1000):
        plen = rng.choice([8, 16, 20, 24, 24, 24, 32])
        first = rng.choice([10, 20, 44, 100, 172, 192, 198])
        pfx = ((first << 24) | rng.getrandbits(24)) & (((1 << plen) - 1) << (32 - plen))
        v4.append((pfx, plen, rng.randrange(1, 65)))
    v6: list[tuple[int, int, int]] = []
    for _ in range(200):
        plen = rng.choice([32, 48, 56, 64])
        pfx = ((0x2001_0db8 << 96) | (rng.getrandbits(32) << 64)) & (((1 << plen) - 1) << (128 - plen))
        v6.append((pfx, plen, rng.randrange(1, 65)))
    entries += [EntryState("routes_v4", (KeyElem("prefix", p, n),), "set_nexthop", (h,)) for p, n, h in v4]
    entries += [EntryState("routes_v6", (KeyElem("prefix", p, n),), "set_nexthop", (h,)) for p, n, h in v6]
    hops = [(i, rng.randrange(1, 32), 0x02AA00000000 + i, 0x02BB00000000 + i) for i in range(1, 65)]
    entries += [EntryState("nexthops", (KeyElem("value", i),), "next_hop", (port, smac, dmac))
                for i, port, smac, dmac in hops]

    def install_hw(lib: ctypes.CDLL, st: int) -> None:
        u64, u32 = ctypes.c_uint64, ctypes.c_uint32
        lib.hw_add_mac(ctypes.c_void_p(st), u64(ROUTER_MAC))
        seen4: set[tuple[int, int]] = set()
        # the generated side's constant entries (martians, multicast) come first, as in the spec
        for p, n, act in [(0, 8, 0), (127 << 24, 8, 0), (224 << 24, 4, 1), (0xFFFFFFFF, 32, 1)]:
            seen4.add((p, n))
            lib.hw_add_v4(ctypes.c_void_p(st), u32(p), u32(n), u32(act), u32(0))
        for p, n, h in v4:
            if (p, n) not in seen4:
                seen4.add((p, n))
                lib.hw_add_v4(ctypes.c_void_p(st), u32(p), u32(n), u32(2), u32(h))
        seen6: set[tuple[int, int]] = set()
        for p, n, act in [(1, 128, 0), (0xFE80 << 112, 10, 1), (0xFF << 120, 8, 1)]:
            seen6.add((p, n))
            lib.hw_add_v6(ctypes.c_void_p(st), u64(p >> 64), u64(p & (2**64 - 1)), u32(n), u32(act), u32(0))
        for p, n, h in v6:
            if (p, n) not in seen6:
                seen6.add((p, n))
                lib.hw_add_v6(ctypes.c_void_p(st), u64(p >> 64), u64(p & (2**64 - 1)), u32(n), u32(2), u32(h))
        for i, port, smac, dmac in hops:
            lib.hw_add_nh(ctypes.c_void_p(st), u32(i), u32(port), u64(smac), u64(dmac))

    def host_in(pfx: int, plen: int, width: int) -> int:
        return pfx | rng.getrandbits(width - plen) if plen < width else pfx

    mac = "02:00:00:00:00:01"
    packets: list[PacketIn] = []
    for _ in range(2000):
        r = rng.random()
        port = rng.randrange(1, 32)
        if r < 0.70:
            p, n, _h = rng.choice(v4)
            dst = host_in(p, n, 32)
            l4 = TCP(sport=rng.randrange(1024, 65535), dport=443, flags="A") if rng.random() < 0.7 else \
                UDP(sport=rng.randrange(1024, 65535), dport=53)
            pkt = Ether(dst=mac, src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst=str_ip4(dst), ttl=64) / l4 / \
                (b"x" * rng.randrange(0, 64))
        elif r < 0.85:
            p, n, _h = rng.choice(v6)
            pkt = Ether(dst=mac, src="02:00:00:00:00:99") / IPv6(src="2001:db8::1", dst=str_ip6(host_in(p, n, 128)),
                                                                 hlim=64) / UDP(sport=5000, dport=53) / (b"q" * 8)
        elif r < 0.90:
            pkt = Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:99") / ARP(pdst="192.0.2.1")
        elif r < 0.95:
            pkt = Ether(dst=mac, src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst="10.1.2.3", ttl=1) / UDP()
        else:
            pkt = Ether(dst=mac, src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst="203.0.113.9", ttl=64) / UDP()
        packets.append(PacketIn(port, bytes(pkt)))
    return ControlState(tuple(entries)), install_hw, packets


def str_ip4(v: int) -> str:
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


def str_ip6(v: int) -> str:
    import ipaddress
    return str(ipaddress.IPv6Address(v))


# ------------------------------------------------------------------------------------------------ ACL


ACL_KEYS = 7  # vid, src, dst, l4_proto, ack, src_port, dst_port


def acl_setup(rng: random.Random, prog_entries: dict[str, list[tuple[tuple[KeyElem, ...], str, int]]]
              ) -> tuple[ControlState, Callable[[ctypes.CDLL, int], None], list[PacketIn]]:
    any_ = KeyElem("any")
    added: dict[str, list[tuple[tuple[KeyElem, ...], str, int]]] = {"acl_v4": [], "acl_v6": []}
    for _ in range(40):
        net = (10 << 24) | (rng.randrange(256) << 16) | (rng.randrange(256) << 8)
        port = rng.choice([25, 110, 143, 993, 3306, 5432, 8080])
        added["acl_v4"].append(((any_, KeyElem("mask", net, 0xFFFFFF00), any_, KeyElem("mask", 6, 0xFF), any_,
                                 any_, KeyElem("range", port, port)), rng.choice(["permit", "deny"]),
                                rng.randrange(20, 70)))
    for _ in range(20):
        net = (0x20010DB8 << 96) | (rng.getrandbits(16) << 80)
        port = rng.choice([25, 110, 8080])
        added["acl_v6"].append(((any_, KeyElem("mask", net, ((1 << 48) - 1) << 80), any_, KeyElem("mask", 6, 0xFF),
                                 any_, any_, KeyElem("range", port, port)), rng.choice(["permit", "deny"]),
                                rng.randrange(20, 70)))
    entries = [EntryState(t, m, a, (), p) for t, rules in added.items() for m, a, p in rules]

    def install_hw(lib: ctypes.CDLL, st: int) -> None:
        for tname, v6 in (("acl_v4", 0), ("acl_v6", 1)):
            widths = [12, 128 if v6 else 32, 128 if v6 else 32, 8, 1, 16, 16]
            for match, action, prio in [*prog_entries[tname], *added[tname]]:
                vals: list[int] = []
                for k, (m, w) in enumerate(zip(match, widths, strict=True)):
                    full = (1 << w) - 1
                    if k >= 5:
                        lo, hi = (0, full) if m.kind == "any" else (m.a, m.a) if m.kind == "value" else (m.a, m.b)
                    else:
                        lo, hi = (0, 0) if m.kind == "any" else (m.a, full) if m.kind == "value" else (m.a, m.b)
                    vals += [lo, hi]
                args = [v6, prio, vals[0], vals[1], vals[2] >> 64, vals[2] & (2**64 - 1), vals[3] >> 64,
                        vals[3] & (2**64 - 1), vals[4] >> 64, vals[4] & (2**64 - 1), vals[5] >> 64,
                        vals[5] & (2**64 - 1), *vals[6:14], 1 if action == "permit" else 0]
                ctypes_args = [ctypes.c_void_p(st), ctypes.c_int(args[0]), ctypes.c_int32(args[1])]
                ctypes_args += [ctypes.c_uint32(args[2]), ctypes.c_uint32(args[3])]
                ctypes_args += [ctypes.c_uint64(x) for x in args[4:12]]
                ctypes_args += [ctypes.c_uint32(x) for x in args[12:]]
                lib.hw_add_rule(*ctypes_args)

    packets: list[PacketIn] = []
    for _ in range(2000):
        r = rng.random()
        src4 = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" if rng.random() < 0.5 else \
            f"198.51.100.{rng.randrange(1, 255)}"
        eth = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:99")
        if rng.random() < 0.2:
            eth = eth / Dot1Q(vlan=rng.choice([10, 20, 4001]))
        if r < 0.55:
            l4 = TCP(sport=rng.randrange(1024, 65535), dport=rng.choice([22, 80, 443, 25, 8080, 3306, 9999]),
                     flags=rng.choice(["S", "A", "PA"]))
            pkt = eth / IP(src=src4, dst="192.0.2.10") / l4 / (b"d" * rng.randrange(0, 100))
        elif r < 0.70:
            pkt = eth / IP(src=src4, dst="192.0.2.10") / UDP(sport=rng.choice([53, 123, 4000]),
                                                             dport=rng.choice([53, 2000, 40000])) / (b"u" * 20)
        elif r < 0.75:
            pkt = eth / IP(src=src4, dst="192.0.2.10") / ICMP() / b"ping"
        elif r < 0.92:
            src6 = f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65535):x}"
            pkt = eth / IPv6(src=src6, dst="2001:db8:ffff::1") / TCP(sport=40000, dport=rng.choice([22, 443, 25]),
                                                                     flags=rng.choice(["S", "A"]))
        else:
            pkt = eth / IPv6(src="2001:db8:1::1", dst="ff02::16") / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / \
                UDP(sport=1, dport=2)
        packets.append(PacketIn(rng.randrange(1, 8), bytes(pkt)))
    return ControlState(tuple(entries)), install_hw, packets


# ------------------------------------------------------------------------------------------------ running


def pack(packets: list[PacketIn]) -> tuple[bytes, ctypes.Array[ctypes.c_uint32], ctypes.Array[ctypes.c_uint32],
                                            ctypes.Array[ctypes.c_uint32]]:
    blob, offs, lens, ports = SharedObject.pack(packets)
    arr = ctypes.c_uint32 * len(packets)
    return blob, arr(*offs), arr(*lens), arr(*ports)


def compare(name: str, drv: NicDriver, lib: ctypes.CDLL, st: int, packets: list[PacketIn]) -> int:
    """Packets on which the two sides disagree (verdict, port or bytes). Counters are reset afterwards."""
    gen = drv.run(packets, {})
    bad = 0
    for p, g in zip(packets, gen, strict=True):
        buf = ctypes.create_string_buffer(p.data, len(p.data) + 64)
        ln, op = ctypes.c_uint32(len(p.data)), ctypes.c_uint32(0)
        v = lib.hw_process(ctypes.c_void_p(st), buf, ctypes.byref(ln), p.port, ctypes.byref(op))
        verdict = {0: "drop", 1: "to_host", 2: "reflect", 3: "forward"}[v]
        data = b"" if verdict == "drop" else buf.raw[:ln.value]
        port = op.value if verdict == "forward" else None
        if (verdict, port, data) != (g.verdict, g.port, g.data):
            bad += 1
    return bad


def measure(name: str, prog_path: Path, setup: Callable[..., tuple[ControlState, Callable[[ctypes.CDLL, int], None],
                                                                    list[PacketIn]]],
            reps: int, rounds: int, work: Path) -> dict[str, float | int | str]:
    prog = load_program(prog_path).program
    rng = random.Random(42)
    if name == "acl":
        const = {t: [(tuple(e.match), e.action.action, e.priority) for e in prog.tables[t].entries]
                 for t in ("acl_v4", "acl_v6")}
        control, install_hw, packets = setup(rng, const)
    else:
        control, install_hw, packets = setup(rng)
    drv = NicDriver(sanitize=False)
    drv.open(prog, work / name)
    drv.install(control)
    lib = build_handwritten(name, work)
    st = lib.hw_new()
    install_hw(lib, st)
    mismatches = compare(name, drv, lib, st, packets)
    batch = packets * 25
    t0 = time.perf_counter()
    drv.run(batch, {})
    driver_rate = len(batch) / (time.perf_counter() - t0)
    backend = drv.backend_object()
    assert isinstance(backend, SharedObject)
    blob, offs, lens, ports = pack(packets)
    gen_ns: list[float] = []
    hw_ns: list[float] = []
    for _ in range(reps):
        gen_ns.append(backend.bench(packets, rounds) / (rounds * len(packets)))
        hw_ns.append(lib.hw_bench(ctypes.c_void_p(st), len(packets), blob, offs, lens, ports, rounds)
                     / (rounds * len(packets)))
    result: dict[str, float | int | str] = {
        "program": name, "packets": len(packets), "mismatches": mismatches,
        "gen_ns": statistics.median(gen_ns), "hw_ns": statistics.median(hw_ns),
        "gen_mem": backend.state_size(), "hw_mem": int(lib.hw_state_size()), "driver_pps": driver_rate,
    }
    drv.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(measure("router", ROOT / "spec/examples/router.yaml", router_setup, args.reps, args.rounds, work))
        rows.append(measure("acl", ROOT / "spec/examples/acl_firewall.yaml", acl_setup, args.reps, args.rounds, work))
    print(f"{'program':8} {'packets':>7} {'disagree':>8} {'gen ns/pkt':>10} {'hand ns/pkt':>11} {'ratio':>6} "
          f"{'gen state':>12} {'hand state':>12} {'mem ratio':>9}")
    for r in rows:
        print(f"{r['program']:8} {r['packets']:>7} {r['mismatches']:>8} {r['gen_ns']:>10.1f} {r['hw_ns']:>11.1f} "
              f"{float(r['gen_ns']) / float(r['hw_ns']):>6.2f} {r['gen_mem']:>12,} {r['hw_mem']:>12,} "
              f"{int(r['gen_mem']) / int(r['hw_mem']):>9.2f}")
    for r in rows:
        print(f"{r['program']}: NicDriver.run (ctypes batches, per-packet Results with counters): "
              f"{float(r['driver_pps']):,.0f} packets/s")


if __name__ == "__main__":
    main()
