"""Operating a program on BMv2 (targets/p4/control.py, issue 13): the router example loaded on veths of a
"router" namespace with `load`, real frames sent from a "hosts" namespace, tables changed at run time through
the target-neutral API, then `unload`. Also the control paths a router does not have (priorities, counters,
registers over Thrift), error paths, `apply`/`dump`, and a second session opened from the registry.

Only namespaces, veths, switches and run directories created here are touched; they are removed whatever
happens. One switch serves the router tests (module fixture): BMv2 takes seconds to start.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from dataplane import registry
from dataplane.api import ControlError, Entry
from dataplane.registry import Port, Record
from dataplane.syntax import parse_match
from targets.p4.entries import describe, entry_items, match_from_p4runtime
from tests.conftest import EXAMPLES, ROOT, need_p4_driver

ROUTER = ROOT / "spec" / "examples" / "router.yaml"
DDOS = ROOT / "spec" / "examples" / "ddos_filter.yaml"
ROUTER_MAC = "02:00:00:00:00:01"
HOST_A_MAC, HOST_B_MAC = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
ETH_P_ALL = 0x0003
SUFFIX = f"{os.getpid() % 100000}"


def sh(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def ifindex(ns: str, dev: str) -> int:
    from targets.p4.netns import entered

    with entered(ns):
        return socket.if_nametoindex(dev)


@contextlib.contextmanager
def namespaces(router_ns: str, hosts_ns: str, pairs: list[tuple[str, str]]) -> Iterator[None]:
    """Two namespaces joined by veth pairs (router end, host end), IPv6 off (no solicitation noise)."""
    try:
        for ns in (router_ns, hosts_ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")  # BMv2's Thrift server is reached on 127.0.0.1
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1")
        for r, h in pairs:
            sh("ip", "link", "add", r, "netns", router_ns, "type", "veth", "peer", "name", h, "netns", hosts_ns)
            sh("ip", "-n", router_ns, "link", "set", r, "up")
            sh("ip", "-n", hosts_ns, "link", "set", h, "up")
        yield
    finally:
        for ns in (router_ns, hosts_ns):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


def raw_socket(ns: str, dev: str) -> socket.socket:
    """An AF_PACKET socket on `dev` of namespace `ns` (a socket keeps the namespace it was made in)."""
    from targets.p4.netns import entered

    with entered(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((dev, 0))
    s.setblocking(False)
    return s


def receive(s: socket.socket, marker: bytes, seconds: float) -> list[bytes]:
    """Frames arriving on `s` (not ones it sent) carrying `marker`, until `seconds` pass."""
    got: list[bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if not select.select([s], [], [], left)[0]:
            continue
        data, addr = s.recvfrom(4096)
        if addr[2] != socket.PACKET_OUTGOING and marker in data:
            got.append(data)
    return got


def udp_frame(dst_ip: str, marker: bytes, ttl: int = 64) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    pkt = Ether(dst=ROUTER_MAC, src=HOST_A_MAC) / IP(src="10.0.0.1", dst=dst_ip, ttl=ttl) / \
        UDP(sport=4000, dport=5000) / marker
    return bytes(pkt)


def ipv4_checksum_ok(header: bytes) -> bool:
    total = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def keys(prog: ir.Program, table: str, *items: str) -> tuple[KeyElem, ...]:
    return parse_match(prog.tables[table], items)


@dataclass
class Loaded:
    prog: ir.Program
    record: Record
    dp: Any
    hosts_ns: str
    host_ifs: tuple[str, str]


def make_record(name: str, prog: ir.Program, spec: Path, ports: list[Port]) -> Record:
    record = Record(name=name, target="p4", spec=str(spec), program=prog.name, ports=ports)
    registry.create(record, prog)
    return record


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    need_p4_driver()
    from targets.p4 import control

    router_ns, hosts_ns = f"c3po-opr-{SUFFIX}", f"c3po-oph-{SUFFIX}"
    pairs = [(f"opr0-{SUFFIX}", f"oph0-{SUFFIX}"), (f"opr1-{SUFFIX}", f"oph1-{SUFFIX}")]
    with pytest.MonkeyPatch.context() as mp, namespaces(router_ns, hosts_ns, pairs):
        mp.setenv("C3PO_RUN_DIR", str(tmp_path_factory.mktemp("run")))
        prog = load_program(ROUTER).program
        ports = [Port(i, r, ifindex(router_ns, r)) for i, (r, _) in enumerate(pairs)]
        record = make_record(f"router_{SUFFIX}", prog, ROUTER, ports)
        from targets.p4.netns import entered

        try:
            with entered(router_ns):  # the switch starts in the caller's namespace: this thread's
                dp = control.load(prog, record, record.dir)
            yield Loaded(prog, record, dp, hosts_ns, (pairs[0][1], pairs[1][1]))
        finally:
            with contextlib.suppress(Exception):
                dp.close()
            control.unload(record)
            registry.remove(record.name)


pytestmark = pytest.mark.p4


def test_load_starts_the_switch_with_the_specs_constant_entries(router: Loaded) -> None:
    from targets.p4.control import switch_alive

    assert switch_alive(router.record)
    assert router.record.extra["grpc"].startswith("unix:")
    status = router.dp.status()
    assert status["pid"] == router.record.extra["pid"]
    assert status["tables"]["routes_v4"] == {"entries": 4, "size": 65536}
    saved, _ = registry.get(router.record.name)
    assert saved.extra["pid"] == router.record.extra["pid"]  # `unload` from another process finds it
    v4 = router.dp.table("routes_v4").entries()
    want = {keys(router.prog, "routes_v4", f"ipv4.dst={p}") for p in
            ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32")}
    assert {e.match for e in v4} == want and all(e.const for e in v4)
    assert len(router.dp.table("routes_v6").entries()) == 3
    assert router.dp.table("routes_v4").default() == ("drop", ())
    assert router.dp.table("nexthops").default() == ("to_host", ())


def test_routes_forward_with_rewritten_macs_ttl_and_checksum(router: Loaded) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    dp, prog = router.dp, router.prog
    before = dp.dump()
    tx = raw_socket(router.hosts_ns, router.host_ifs[0])
    rx = raw_socket(router.hosts_ns, router.host_ifs[1])
    try:
        frame = udp_frame("10.1.0.5", b"c3po-marker-1")
        # empty tables: not addressed to a router MAC -> to_host (port 510, no interface): nothing on port 1
        tx.send(frame)
        assert receive(rx, b"c3po-marker-1", 1.0) == []

        dp.table("router_mac").add(keys(prog, "router_mac", f"ethernet.dst={ROUTER_MAC}"), "nop")
        dp.table("routes_v4").add(keys(prog, "routes_v4", "ipv4.dst=10.1.0.0/16"), "set_nexthop", (7,))
        dp.table("nexthops").add(keys(prog, "nexthops", "meta.nexthop=7"), "next_hop",
                                 (1, mac(ROUTER_MAC), mac(HOST_B_MAC)))
        for _ in range(3):
            tx.send(frame)
        got = receive(rx, b"c3po-marker-1", 1.5)
        assert len(got) == 3
        out = Ether(got[0])
        assert (out.src, out.dst) == (ROUTER_MAC, HOST_B_MAC)
        assert out[IP].ttl == 63 and out[IP].dst == "10.1.0.5"
        assert ipv4_checksum_ok(got[0][14:34])
        assert got[0][34:] == frame[34:]  # UDP header and payload untouched

        (hop,) = dp.table("nexthops").entries()
        assert hop.counter == (3, 3 * len(frame))
        assert dp.table("nexthops").default_counter() == (0, 0)
        assert dp.table("routes_v4").entries(counters=True)[0].counter is None  # no counters on that table

        # a TTL of 1 goes to the host (the slow path sends Time Exceeded), not out of port 1
        tx.send(udp_frame("10.1.0.5", b"c3po-marker-2", ttl=1))
        assert receive(rx, b"c3po-marker-2", 0.7) == []

        # modify the next hop: the new destination MAC is on the wire
        dp.table("nexthops").modify(keys(prog, "nexthops", "meta.nexthop=7"), "next_hop",
                                    (1, mac(ROUTER_MAC), mac("02:00:00:00:0b:02")))
        tx.send(frame)
        (again,) = receive(rx, b"c3po-marker-1", 1.5)
        assert Ether(again).dst == "02:00:00:00:0b:02"

        dp.table("routes_v4").delete(keys(prog, "routes_v4", "ipv4.dst=10.1.0.0/16"))
        tx.send(frame)
        assert receive(rx, b"c3po-marker-1", 1.0) == []
        assert dp.table("nexthops").entries()[0].counter == (4, 4 * len(frame))  # the dropped one never got there
    finally:
        tx.close()
        rx.close()
        dp.apply(*before)


def test_errors_are_control_errors_and_write_nothing(router: Loaded) -> None:
    dp, prog = router.dp, router.prog
    hops = dp.table("nexthops")
    m = keys(prog, "nexthops", "meta.nexthop=9")
    hops.add(m, "to_host")
    try:
        with pytest.raises(ControlError, match="already has an entry"):
            hops.add(m, "next_hop", (1, 2, 3))
        # the same refusal from the switch itself, past the API's own check
        with pytest.raises(ControlError, match="already has an entry"):
            dp._insert("nexthops", Entry(m, "to_host"))
        missing = keys(prog, "nexthops", "meta.nexthop=10")
        with pytest.raises(ControlError, match="no entry"):
            hops.modify(missing, "to_host")
        with pytest.raises(ControlError, match="no entry"):
            dp._modify("nexthops", Entry(missing, "to_host"), Entry(missing, "to_host"))
        with pytest.raises(ControlError, match="no entry"):
            dp._remove("nexthops", Entry(missing, "to_host"))
        with pytest.raises(ControlError, match="did you mean 'nexthops'"):
            dp.table("nexthop")
        with pytest.raises(ControlError, match="does not fit"):
            hops.add(m, "next_hop", (1 << 16, 0, 0))
        # nothing half-written: both P4 copies of the table (it is applied twice) hold the one entry
        items = dp.ctl.read_items(["nexthops", "nexthops__2"])
        assert sorted(i["table"] for i in items) == ["nexthops", "nexthops__2"]
        assert hops.entries(counters=False) == [Entry(m, "to_host")]
    finally:
        hops.clear()


def test_apply_and_dump_round_trip(router: Loaded) -> None:
    dp, prog = router.dp, router.prog
    before = dp.dump()
    route = keys(prog, "routes_v4", "ipv4.dst=192.168.0.0/16")
    dp.table("routes_v4").add(route, "set_nexthop", (3,))
    dp.table("routes_v4").modify(keys(prog, "routes_v4", "ipv4.dst=127.0.0.0/8"), "to_host")
    dp.table("nexthops").set_default("next_hop", (1, 2, 3))
    assert dp.table("nexthops").default() == ("next_hop", (1, 2, 3))
    assert dp.ctl.read_items(["nexthops__2"], defaults=True, entries=False)[0]["action"]["name"] == "next_hop"

    diff = dp.apply(*before)
    assert [(t, e.match) for t, e in diff.deleted] == [("routes_v4", route)]
    assert [(t, e.action) for t, e in diff.modified] == [("routes_v4", "drop")]
    assert diff.defaults == [("nexthops", "to_host", ())]
    assert dp.dump() == before
    assert dp.apply(*before).empty

    # a state written by hand: the spec's constant entries stay (they are part of the program)
    tables = {"routes_v4": [Entry(route, "to_host")], "router_mac": [
        Entry(keys(prog, "router_mac", f"ethernet.dst={ROUTER_MAC}"), "nop")]}
    diff = dp.apply(tables, {}, only=["routes_v4", "router_mac"])
    assert len(diff.added) == 2 and diff.deleted == []
    v4 = dp.table("routes_v4").entries()
    assert [e.match for e in v4 if not e.const] == [route] and sum(e.const for e in v4) == 4
    assert len(dp.apply(*before).deleted) == 2  # back to the spec's state
    assert dp.dump() == before


def test_a_second_session_sees_and_changes_the_same_tables(router: Loaded) -> None:
    from targets.p4 import control

    record, prog = registry.get(router.record.name)  # as another process would
    m = keys(prog, "router_mac", "ethernet.dst=02:00:00:00:00:77")
    router.dp.table("router_mac").clear()  # the first session now holds router_mac's entries in its cache
    other = control.open(prog, record)
    try:
        other.table("router_mac").add(m, "nop")
        assert [e.match for e in router.dp.table("router_mac").entries()] == [m]
        with pytest.raises(ControlError, match="already has an entry"):  # the change made its cache stale
            router.dp.table("router_mac").add(m, "nop")
        # the first session is no longer primary: its write takes the role back and succeeds
        router.dp.table("router_mac").delete(m)
        assert other.table("router_mac").entries() == []
    finally:
        other.close()


def test_unload_after_the_switch_died_still_cleans_up(router: Loaded) -> None:
    from targets.p4 import control

    record = router.record
    pid = record.extra["pid"]
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not control.switch_alive(record):
            break
        time.sleep(0.05)
    with pytest.raises(ControlError, match="is not running"):
        control.open(router.prog, record)
    control.unload(record)
    assert control.unload(record) == []  # idempotent
    assert not Path(record.extra["grpc"].removeprefix("unix:")).exists()
    assert not any(record.extra["grpc"].encode() in _cmdline(p) for p in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_priorities_counters_and_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ddos_filter: a ternary table with a constant entry (priorities), counter arrays, a register (Thrift)."""
    need_p4_driver()
    from targets.p4 import control

    monkeypatch.setenv("C3PO_RUN_DIR", str(tmp_path / "run"))
    prog = load_program(DDOS).program
    record = make_record(f"ddos_{SUFFIX}", prog, DDOS, [])
    dp = control.load(prog, record, record.dir)
    try:
        trusted = dp.table("trusted_v4")
        (const,) = trusted.entries()
        assert const.const and const.priority == 1
        net = keys(prog, "trusted_v4", "ipv4.src=10.0.0.0&&&255.0.0.0")
        host = keys(prog, "trusted_v4", "ipv4.src=10.0.0.1")
        trusted.add(net, "nop", priority=5)
        trusted.add(host, "nop", priority=9)
        trusted.add(net, "nop", priority=0)  # the same match at another priority is another entry
        assert [e.priority for e in trusted.entries()] == [9, 5, 1, 0]
        trusted.delete(net, priority=5)
        assert [(e.match, e.priority) for e in trusted.entries()] == \
            [(host, 9), (const.match, 1), (net, 0)]
        with pytest.raises(ControlError, match="cannot be had"):
            trusted.add(host, "nop", priority=(1 << 31) - 1)

        assert dp.counter_read("passed") == {}
        assert dp.counter_read("passed", 3) == {3: (0, 0)}
        # nothing counts without traffic: give two elements values through P4Runtime, then read them back
        from p4.v1 import p4runtime_pb2

        cid = dp.ctl._counters["passed"].preamble.id
        dp.ctl._write([dp.ctl._update(p4runtime_pb2.Update.MODIFY, counter_entry=p4runtime_pb2.CounterEntry(
            counter_id=cid, index=p4runtime_pb2.Index(index=i), data=p4runtime_pb2.CounterData(
                packet_count=i, byte_count=64 * i))) for i in (3, 7)], ["3", "7"])
        assert dp.counter_read("passed") == {3: (3, 192), 7: (7, 448)}
        dp.counter_reset("passed", 7)
        assert dp.counter_read("passed") == {3: (3, 192)}
        dp.counter_reset("passed")
        assert dp.counter_read("passed") == {}

        assert dp.register_read("syn_per_bucket") == {}
        dp.register_write("syn_per_bucket", 4095, 0xDEADBEEF)
        assert dp.register_read("syn_per_bucket") == {4095: 0xDEADBEEF}
        assert dp.register_read("syn_per_bucket", 4095) == {4095: 0xDEADBEEF}
        with pytest.raises(ControlError, match="outside register"):
            dp.register_write("syn_per_bucket", 4096, 1)
    finally:
        dp.close()
        pid = record.extra["pid"]
        stopped = control.unload(record)
    assert stopped and "stopped simple_switch_grpc" in stopped[0]
    assert not control.switch_alive(record) and not Path(f"/proc/{pid}/cmdline").exists()


@pytest.mark.parametrize("spec", [p for p in EXAMPLES if p.stem in ("router", "acl_firewall", "ddos_filter")],
                         ids=lambda p: p.stem)
def test_matches_read_back_as_written(spec: Path) -> None:
    """entry_items then match_from_p4runtime is the identity on canonical matches, wildcards as `any` (no
    switch needed)."""
    prog = load_program(spec).program
    desc = describe(prog, 510)
    for t in desc["tables"]:
        table = prog.tables[t["name"]]
        for e in table.entries:
            items = entry_items(desc, t, tuple(e.match), e.action.action, e.action.args, 1)
            back = match_from_p4runtime(t, items[0]["match"])
            for k, m, b in zip(table.keys, e.match, back, strict=True):
                full = (1 << k.width) - 1
                wildcard = m.kind == "any" or (m.kind == "prefix" and m.b == 0) or \
                    (m.kind == "mask" and m.b == 0) or (m.kind == "range" and (m.a, m.b) == (0, full))
                assert b == (KeyElem("any") if wildcard else m), (t["name"], k.text, m, b)
