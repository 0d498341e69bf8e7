"""The nic target's control API (targets/nic/control.py): tables, defaults, counters and registers driven by name
through the generated C table API in-process, and packets run through the live state.

Every scenario checks the frames the C program produces against the reference interpreter given the same state
(read back with `dump`), and states some expectations outright (ports, rewritten MACs, TTL, counts), so a bug
shared by the dump and the interpreter cannot hide. Error paths must raise ControlError and leave the tables, the
defaults and the counters exactly as they were.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn
from dataplane.api import ControlError, Entry
from dataplane.syntax import parse_action, parse_match
from targets.nic.control import NicDataplane
from tests.conftest import EXAMPLES, ROOT, SUITE, need_tool, shared_vectors

pytestmark = pytest.mark.gcc

EX = ROOT / "spec" / "examples"
ROUTER_MAC = 0x020000000001
PEER_MAC = 0x02000000AA01


@pytest.fixture
def gcc() -> None:
    need_tool("gcc")


def open_nic(spec: Path) -> NicDataplane:
    return NicDataplane(load_program(spec).program)


@pytest.fixture
def router(gcc: None) -> Iterator[NicDataplane]:
    with open_nic(EX / "router.yaml") as dp:
        yield dp


@pytest.fixture
def acl(gcc: None) -> Iterator[NicDataplane]:
    with open_nic(EX / "acl_firewall.yaml") as dp:
        yield dp


@pytest.fixture
def ddos(gcc: None) -> Iterator[NicDataplane]:
    with open_nic(EX / "ddos_filter.yaml") as dp:
        yield dp


def m(dp: NicDataplane, table: str, *items: str) -> tuple[KeyElem, ...]:
    return parse_match(dp.prog.tables[table], items)


def add(dp: NicDataplane, table: str, items: list[str], action: str, *params: str, priority: int = 0) -> None:
    name, args = parse_action(dp.prog, dp.prog.tables[table], action, params)
    dp.table(table).add(m(dp, table, *items), name, args, priority)


def snapshot(dp: NicDataplane) -> tuple[object, ...]:
    """Everything an error must leave unchanged: entries (with counters), defaults, counters, registers."""
    tables, defaults = dp.dump(counters=True)
    counters = {c: dp.counter_read(c) for c in dp.prog.counters}
    registers = {r: dp.register_read(r) for r in dp.prog.registers}
    default_counters = {t: dp.table(t).default_counter() for t in dp.prog.tables}
    return tables, defaults, counters, registers, default_counters


def check_against_reference(dp: NicDataplane, packets: list[PacketIn]) -> list[tuple[str, int | None, bytes]]:
    """Runs `packets` through the nic program and through the reference interpreter holding the state `dump`
    reads back (entries in match order, defaults, registers); asserts the same verdicts, ports, frames, register
    values and counter increments. Returns the nic results."""
    assert dp.verify() == []  # the mirror `dump` reads is what the C tables hold
    prog = copy.deepcopy(dp.prog)
    for t in prog.tables.values():
        t.entries = []  # the dump lists the constant entries, where they are now
    tables, defaults = dp.dump(counters=True)
    order = {name: list(es) for name, es in tables.items()}
    ref = Interpreter(prog)
    ref.install(ControlState(
        tuple(EntryState(name, e.match, e.action, e.args, e.priority) for name, es in order.items() for e in es),
        tuple((name, a, args) for name, (a, args) in defaults.items())))
    regs = {(r, i): v for r in prog.registers for i, v in dp.register_read(r).items()}
    named_before = {(c, i): v for c in prog.counters for i, v in dp.counter_read(c).items()}
    want = ref.run(packets, regs)
    got = [dp.process(p.port, p.data) for p in packets]
    for p, g, w in zip(packets, got, want, strict=True):
        assert g == (w.verdict, w.port, w.data), f"{p.data.hex()}\n nic {g}\n ref {w.verdict} {w.port} {w.data.hex()}"
    if not packets:
        return got
    last = want[-1]
    assert {(r, i): v for r in prog.registers for i, v in dp.register_read(r).items()} == \
        {k: v for k, v in last.registers.items() if v}
    for c in prog.counters:
        for i, (pk, by) in dp.counter_read(c).items():
            bpk, bby = named_before.get((c, i), (0, 0))
            assert (pk - bpk, by - bby) == last.counters.get((c, i), (0, 0)), f"counter {c}[{i}]"
    after, _ = dp.dump(counters=True)
    for name, es in after.items():
        if not prog.tables[name].counters:
            continue
        for idx, (e0, e1) in enumerate(zip(tables[name], es, strict=True)):
            assert e0.counter is not None and e1.counter is not None
            delta = (e1.counter[0] - e0.counter[0], e1.counter[1] - e0.counter[1])
            assert delta == last.counters.get((f"table.{name}", idx), (0, 0)), f"{name} entry {idx}"
    return got


def ip4(dst: str, ttl: int = 64, port: int = 1, dmac: int = ROUTER_MAC) -> PacketIn:
    mac = ":".join(f"{b:02x}" for b in dmac.to_bytes(6, "big"))
    return PacketIn(port, bytes(Ether(dst=mac, src="02:00:00:00:00:99") / IP(src="192.0.2.1", dst=dst, ttl=ttl)
                                / UDP(sport=1000, dport=53) / b"payload"))


def ip6(dst: str, port: int = 1) -> PacketIn:
    mac = ":".join(f"{b:02x}" for b in ROUTER_MAC.to_bytes(6, "big"))
    return PacketIn(port, bytes(Ether(dst=mac, src="02:00:00:00:00:99") / IPv6(src="2001:db8::1", dst=dst, hlim=9)
                                / UDP(sport=1000, dport=53) / b"payload"))


def vector_packets(dp: NicDataplane, n: int = 60) -> list[PacketIn]:
    """The generated vectors' frames (every parse path, errors, fuzz), to run against whatever state is live."""
    return [p for v in generate(dp.prog, seed=5, fuzz=20).vectors for p in v.packets][:n]


# ---------------------------------------------------------------------------------------------------------------
# router: exact + LPM tables, per-entry counters, defaults


def test_router_starts_with_constant_entries_and_defaults(router: NicDataplane) -> None:
    v4 = router.table("routes_v4").entries()
    assert [(e.match, e.action, e.const) for e in v4] == [
        (tuple(e.match), e.action.action, True) for e in router.prog.tables["routes_v4"].entries]
    assert router.table("routes_v4").default() == ("drop", ())
    assert router.table("nexthops").default() == ("to_host", ())
    assert router.table("nexthops").default_counter() == (0, 0)
    assert router.table("router_mac").default_counter() is None  # no counters in the spec
    assert router.status()["tables"]["routes_v6"] == {"entries": 3, "size": 16384}
    # constant entries act: 127/8 is dropped, multicast goes to the host, nothing else is routed yet
    assert [r[0] for r in check_against_reference(router, [ip4("127.0.0.1"), ip4("224.0.0.5"), ip4("10.1.2.3")])] \
        == ["to_host", "to_host", "to_host"]  # router_mac is empty: every frame misses it
    add(router, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
    assert [r[0] for r in check_against_reference(router, [ip4("127.0.0.1"), ip4("224.0.0.5"), ip4("10.1.2.3")])] \
        == ["drop", "to_host", "drop"]


def test_router_add_modify_delete_forwards_like_the_reference(router: NicDataplane) -> None:
    add(router, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
    add(router, "routes_v4", ["ipv4.dst=10.0.0.0/8"], "set_nexthop", "id=1")
    add(router, "routes_v4", ["ipv4.dst=10.1.0.0/16"], "set_nexthop", "id=2")
    add(router, "routes_v6", ["ipv6.dst=2001:db8:1::/48"], "set_nexthop", "id=2")
    add(router, "nexthops", ["meta.nexthop=1"], "next_hop", "port=3", "smac=02:00:00:00:00:01",
        "dmac=02:00:00:00:aa:01")
    add(router, "nexthops", ["meta.nexthop=2"], "next_hop", "port=4", "smac=02:00:00:00:00:01",
        "dmac=02:00:00:00:aa:02")
    packets = [ip4("10.9.9.9"), ip4("10.1.2.3"), ip4("10.1.2.3", ttl=1), ip6("2001:db8:1::5"), ip4("11.0.0.1"),
               *vector_packets(router)]
    got = check_against_reference(router, packets)
    verdict, port, frame = got[0]
    assert (verdict, port) == ("forward", 3)
    out = Ether(frame)
    assert out.dst == "02:00:00:00:aa:01" and out.src == "02:00:00:00:00:01"
    assert out[IP].ttl == 63
    fixed = IP(bytes(out[IP]))
    del fixed.chksum
    assert IP(bytes(fixed)).chksum == out[IP].chksum  # a valid header checksum after the TTL rewrite
    assert got[1][:2] == ("forward", 4)  # longest prefix wins
    assert got[2][0] == "to_host"  # TTL 1
    assert got[3][:2] == ("forward", 4)
    assert got[4][0] == "drop"  # the default
    hits = {e.match[0].a: e.counter for e in router.table("nexthops").entries()}
    assert hits[1] is not None and hits[1][0] >= 1 and hits[2] is not None and hits[2][0] >= 2

    router.table("nexthops").modify(m(router, "nexthops", "meta.nexthop=1"), "next_hop",
                                    (7, ROUTER_MAC, PEER_MAC))
    assert check_against_reference(router, [ip4("10.9.9.9")])[0][:2] == ("forward", 7)
    router.table("routes_v4").delete(m(router, "routes_v4", "ipv4.dst=10.1.0.0/16"))
    assert check_against_reference(router, [ip4("10.1.2.3")])[0][:2] == ("forward", 7)  # now the /8
    router.table("routes_v4").set_default("to_host")
    assert router.table("routes_v4").default() == ("to_host", ())
    assert check_against_reference(router, [ip4("11.0.0.1")])[0][0] == "to_host"
    # deleting a constant entry works like any other; adding it back makes a runtime entry
    martian = m(router, "routes_v4", "ipv4.dst=127.0.0.0/8")
    router.table("routes_v4").delete(martian)
    assert check_against_reference(router, [ip4("127.0.0.1")])[0][0] == "to_host"
    router.table("routes_v4").add(martian, "drop")
    back = [e for e in router.table("routes_v4").entries() if e.match == martian]
    assert len(back) == 1 and not back[0].const
    assert check_against_reference(router, [ip4("127.0.0.1"), *vector_packets(router)])[0][0] == "drop"


def test_router_per_entry_and_default_counters(router: NicDataplane) -> None:
    add(router, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
    add(router, "routes_v4", ["ipv4.dst=10.0.0.0/8"], "set_nexthop", "id=1")
    add(router, "routes_v4", ["ipv4.dst=20.0.0.0/8"], "set_nexthop", "id=9")  # no next hop 9: the default
    add(router, "nexthops", ["meta.nexthop=1"], "next_hop", "port=3", "smac=1", "dmac=2")
    frames = [ip4("10.0.0.1"), ip4("10.0.0.2"), ip4("10.0.0.3"), ip4("20.0.0.1")]
    check_against_reference(router, frames)
    (entry,) = router.table("nexthops").entries()
    assert entry.counter == (3, 3 * len(frames[0].data))
    assert router.table("nexthops").default_counter() == (1, len(frames[3].data))
    assert router.table("nexthops").entries(counters=False)[0].counter is None
    # modify keeps the entry, and its counter
    router.table("nexthops").modify(entry.match, "to_host")
    assert router.table("nexthops").entries()[0].counter == (3, 3 * len(frames[0].data))


def test_apply_and_dump(router: NicDataplane) -> None:
    t = router.prog.tables
    tables, defaults = router.dump()
    assert not any(tables["nexthops"]) and defaults["nexthops"] == ("to_host", ())
    want = {
        "router_mac": [Entry(m(router, "router_mac", "ethernet.dst=02:00:00:00:00:01"), "nop")],
        "routes_v4": [Entry(m(router, "routes_v4", "ipv4.dst=10.0.0.0/8"), "set_nexthop", (1,)),
                      Entry(m(router, "routes_v4", "ipv4.dst=127.0.0.0/8"), "to_host")],  # was drop (const)
        "nexthops": [Entry(m(router, "nexthops", "meta.nexthop=1"), "next_hop", (2, ROUTER_MAC, PEER_MAC))],
    }
    diff = router.apply(want, {"routes_v4": ("to_host", ())}, only=["router_mac", "routes_v4", "nexthops"])
    assert len(diff.added) == 3 and len(diff.modified) == 1 and diff.defaults == [("routes_v4", "to_host", ())]
    assert diff.deleted == []  # the spec's constant entries are part of the program: apply keeps them
    tables, defaults = router.dump()
    consts = [tuple(e.match) for e in t["routes_v4"].entries]
    assert [(e.match, e.action, e.const) for e in tables["routes_v4"]] == [
        (c, "to_host" if c == m(router, "routes_v4", "ipv4.dst=127.0.0.0/8") else e.action.action, True)
        for c, e in zip(consts, t["routes_v4"].entries, strict=True)] + [(want["routes_v4"][0].match, "set_nexthop",
                                                                          False)]
    assert len(tables["routes_v6"]) == 3  # not in `only`: untouched
    assert router.apply(want, {"routes_v4": ("to_host", ())}, only=want).empty
    got = check_against_reference(router, [ip4("10.0.0.1"), ip4("127.0.0.1"), ip4("30.0.0.1")])
    assert [g[:2] for g in got] == [("forward", 2), ("to_host", None), ("to_host", None)]
    # a state without the runtime entries removes them, and only them
    diff = router.apply({"router_mac": want["router_mac"]}, {}, only=["routes_v4", "router_mac"])
    assert [e.match for _, e in diff.deleted] == [want["routes_v4"][0].match]
    assert [e.match for e in router.table("routes_v4").entries()] == consts
    # dump -> apply on a fresh program reproduces the state
    with open_nic(EX / "router.yaml") as other:
        other.apply(*router.dump())
        assert other.dump() == router.dump()
    # an empty state leaves only the constant entries
    router.apply({}, {})
    assert {n: len(es) for n, es in router.dump()[0].items()} == {n: len(t.entries) for n, t in
                                                                   router.prog.tables.items()}
    # clear removes those too; `nop` is a default of every table
    assert router.table("routes_v4").clear() == len(t["routes_v4"].entries)
    assert router.table("routes_v4").entries() == []
    add(router, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
    router.table("routes_v4").set_default("nop")
    assert router.table("routes_v4").default() == ("nop", ())
    check_against_reference(router, [ip4("127.0.0.1"), ip4("10.0.0.1"), *vector_packets(router)])


# ---------------------------------------------------------------------------------------------------------------
# acl_firewall: ternary + range keys, priorities


def tcp4(src: str, dst: str, dport: int, flags: str = "S") -> PacketIn:
    return PacketIn(1, bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags=flags)))


def test_acl_priority_order_and_packets(acl: NicDataplane) -> None:
    t = acl.table("acl_v4")
    consts = t.entries()
    assert all(e.const for e in consts) and len(consts) == len(acl.prog.tables["acl_v4"].entries)
    assert [e.priority for e in consts] == sorted((e.priority for e in consts), reverse=True)
    add(acl, "acl_v4", ["ipv4.src=198.51.100.0&&&255.255.255.0", "meta.dst_port=1000..2000"], "permit",
        priority=90)  # ties with a constant entry: after it (install order)
    add(acl, "acl_v4", ["ipv4.dst=203.0.113.7"], "deny", priority=1000)  # first of all
    add(acl, "acl_v4", ["meta.l4_proto=6"], "permit", priority=0)  # last of all
    es = t.entries()
    assert es[0].action == "deny" and es[0].priority == 1000 and not es[0].const
    assert es[-1].priority == 0 and not es[-1].const
    at90 = [e for e in es if e.priority == 90]
    assert [e.const for e in at90] == [True, False]
    assert [e.priority for e in es] == sorted((e.priority for e in es), reverse=True)
    packets = [tcp4("198.51.100.9", "192.0.2.1", 1500), tcp4("198.51.100.9", "203.0.113.7", 1500),
               tcp4("192.0.2.50", "192.0.2.1", 22), tcp4("192.0.2.50", "192.0.2.1", 9999),
               PacketIn(2, bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53) / b"q")),
               *vector_packets(acl, 80)]
    got = check_against_reference(acl, packets)
    assert got[0][0] == "to_host" and got[1][0] == "drop"
    # change a priority-table entry's action in place: its position (and match order) stays
    before = [(e.match, e.priority) for e in t.entries()]
    t.modify(m(acl, "acl_v4", "ipv4.dst=203.0.113.7"), "permit", priority=1000)
    assert [(e.match, e.priority) for e in t.entries()] == before
    assert check_against_reference(acl, packets[:2])[1][0] == "to_host"
    # equal matches at different priorities are different entries
    add(acl, "acl_v4", ["ipv4.dst=203.0.113.7"], "permit", priority=5)
    assert sum(1 for e in t.entries() if e.match == m(acl, "acl_v4", "ipv4.dst=203.0.113.7")) == 2
    t.delete(m(acl, "acl_v4", "ipv4.dst=203.0.113.7"), priority=1000)
    assert sum(1 for e in t.entries() if e.match == m(acl, "acl_v4", "ipv4.dst=203.0.113.7")) == 1
    late = tcp4("192.0.2.50", "203.0.113.7", 1500)  # no constant entry matches it: the priority-5 one does
    got = check_against_reference(acl, [late, packets[1], *packets])
    assert got[0][0] == "to_host" and got[1][0] == "to_host"  # packets[1] now meets the priority-90 permit
    (low,) = [e for e in t.entries() if e.priority == 5]
    assert low.counter is not None and low.counter[0] == 1 + sum(1 for p in packets if p.data == late.data)
    counted = sum(e.counter[0] for e in t.entries() if e.counter is not None)
    default = t.default_counter()
    assert default is not None and counted + default[0] > 0


# ---------------------------------------------------------------------------------------------------------------
# ddos_filter: registers, named counters, defaults with arguments


def syn(src: str, dst: str, port: int = 1) -> PacketIn:
    return PacketIn(port, bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=1234, dport=80, flags="S")))


def test_registers_and_counters(ddos: NicDataplane) -> None:
    assert ddos.table("syn_limits_v4").default() == ("set_syn_limit", (1000,))
    assert ddos.register_read("syn_per_bucket") == {} and ddos.counter_read("passed") == {}
    # packets update registers and counters as the reference does, with the limit from the tables
    ddos.table("syn_limits_v4").set_default("set_syn_limit", (2,))
    frames = [syn("192.0.2.77", "203.0.113.1", port=3)] * 4 + [syn("10.0.0.1", "203.0.113.1", port=5)] * 4
    got = check_against_reference(ddos, frames)
    assert [g[0] for g in got] == ["to_host", "to_host", "to_host", "to_host", "to_host", "to_host", "drop", "drop"]
    assert ddos.counter_read("passed") == {3: (4, 4 * len(frames[0].data)), 5: (2, 2 * len(frames[0].data))}
    assert ddos.counter_read("dropped", 5) == {5: (2, 2 * len(frames[0].data))}
    assert ddos.counter_read("dropped", 6) == {6: (0, 0)}  # an index asked for is always returned
    regs = ddos.register_read("syn_per_bucket")
    assert sorted(regs.values()) == [4, 4]
    bucket = next(i for i, v in regs.items() if v == 4)
    assert ddos.register_read("syn_per_bucket", bucket) == {bucket: 4}
    # writing a register changes what the data plane sees
    for i in regs:
        ddos.register_write("syn_per_bucket", i, 0)
    assert ddos.register_read("syn_per_bucket") == {}
    assert check_against_reference(ddos, frames[4:5])[0][0] == "to_host"
    ddos.register_write("syn_per_bucket", bucket, 0xFFFFFFFF)
    check_against_reference(ddos, frames)  # wraps to 0 as in the reference
    # reset one element, one counter, leaving the rest
    ddos.counter_reset("passed", 3)
    assert 3 not in ddos.counter_read("passed") and 5 in ddos.counter_read("passed")
    assert ddos.counter_read("dropped")
    ddos.counter_reset("dropped")
    assert ddos.counter_read("dropped") == {} and 5 in ddos.counter_read("passed")


# ---------------------------------------------------------------------------------------------------------------
# errors: clear, and nothing changes


def test_errors_leave_the_state_unchanged(router: NicDataplane) -> None:
    add(router, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
    add(router, "routes_v4", ["ipv4.dst=10.0.0.0/8"], "set_nexthop", "id=1")
    add(router, "nexthops", ["meta.nexthop=1"], "next_hop", "port=3", "smac=1", "dmac=2")
    check_against_reference(router, [ip4("10.0.0.1")])
    before = snapshot(router)
    v4 = router.table("routes_v4")
    cases: list[tuple[str, object]] = [
        ("already has an entry", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=10.0.0.0/8"), "drop")),
        ("already has an entry", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=127.0.0.0/8"), "drop")),  # const
        ("has no entry", lambda: v4.modify(m(router, "routes_v4", "ipv4.dst=10.0.0.0/9"), "drop")),
        ("has no entry", lambda: v4.delete(m(router, "routes_v4", "ipv4.dst=11.0.0.0/8"))),
        ("unknown table 'routes_4'", lambda: router.table("routes_4")),
        ("unknown action 'set_nexthp'", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"),
                                                        "set_nexthp", (1,))),
        ("not an action of table", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"), "next_hop",
                                                   (1, 2, 3))),
        ("takes 1 argument", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"), "set_nexthop")),
        ("does not fit bit<16>", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"), "set_nexthop",
                                                (1 << 16,))),
        ("prefix length 33", lambda: v4.add((KeyElem("prefix", 0, 33),), "drop")),
        ("take no priority", lambda: v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"), "drop", (),
                                             priority=5)),
        ("unknown action", lambda: v4.set_default("dorp")),
        ("unknown counter", lambda: router.counter_read("hits")),
        ("unknown register", lambda: router.register_write("r", 0, 1)),
    ]
    for expect, call in cases:
        with pytest.raises(ControlError) as info:
            call()  # type: ignore[operator]
        assert expect in str(info.value), str(info.value)
        assert snapshot(router) == before, expect
        assert router.verify() == []
    with pytest.raises(ControlError) as info:
        router.table("routes_4")
    assert info.value.hint == "did you mean 'routes_v4'?"
    with pytest.raises(ControlError) as info:
        v4.add(m(router, "routes_v4", "ipv4.dst=12.0.0.0/8"), "set_nexthp", (1,))
    assert info.value.hint == "did you mean 'set_nexthop'?"
    with pytest.raises(ControlError, match="has no key"):
        m(router, "routes_v4", "ipv4.dts=12.0.0.0/8")
    # packets still see the same state
    assert check_against_reference(router, [ip4("10.0.0.1")])[0][:2] == ("forward", 3)


def test_full_table_refuses_and_keeps_its_entries(router: NicDataplane) -> None:
    t = router.table("router_mac")
    size = router.prog.tables["router_mac"].size
    for i in range(size):
        t.add((KeyElem("value", 0x020000000100 + i),), "nop")
    before = snapshot(router)
    with pytest.raises(ControlError, match=r"is full \(64 entries\)"):
        t.add((KeyElem("value", 0x02000000FFFF),), "nop")
    assert snapshot(router) == before
    with pytest.raises(ControlError, match=r"is full.*FULL"):  # the C side says so too, below the shared checks
        router._insert("router_mac", Entry((KeyElem("value", 0x02000000FFFF),), "nop"))
    assert snapshot(router) == before and router.verify() == []
    diff_err = None
    try:
        router.apply({"router_mac": [Entry((KeyElem("value", i),), "nop") for i in range(size + 1)]}, {},
                     only=["router_mac"])
    except ControlError as exc:
        diff_err = exc
    assert diff_err is not None and "holds 64" in str(diff_err)
    assert snapshot(router) == before
    # a freed slot can be used again, and the data plane finds the new entry
    t.delete((KeyElem("value", 0x020000000100),))
    t.add((KeyElem("value", ROUTER_MAC),), "nop")
    assert len(t.entries()) == size
    check_against_reference(router, [ip4("127.0.0.1"), ip4("10.0.0.1", dmac=0x020000000100)])


def test_c_side_errors_become_control_errors(router: NicDataplane) -> None:
    """Below the shared checks: the C codes themselves map to ControlError and the mirror stays as it was."""
    e = Entry(m(router, "router_mac", "ethernet.dst=02:00:00:00:00:01"), "nop")
    router._insert("router_mac", e)
    before = snapshot(router)
    with pytest.raises(ControlError, match=r"already has an entry.*EXISTS"):
        router._insert("router_mac", e)
    with pytest.raises(ControlError, match="has no entry"):
        router._remove("router_mac", Entry(m(router, "router_mac", "ethernet.dst=02:00:00:00:00:02"), "nop"))
    with pytest.raises(ControlError, match="ARG"):
        router._insert("routes_v4", Entry((KeyElem("prefix", 0, 40),), "drop"))
    assert snapshot(router) == before and router.verify() == []


def test_close_frees_everything(gcc: None, tmp_path: Path) -> None:
    prog: ir.Program = load_program(EX / "router.yaml").program
    dp = NicDataplane(prog)
    build = dp.build_dir
    assert build.is_dir()
    dp.close()
    assert not build.exists()
    with pytest.raises(ControlError, match="closed"):
        dp.process(0, ip4("10.0.0.1").data)
    with pytest.raises(ControlError, match="closed"):
        dp.table("routes_v4").add(m(dp, "routes_v4", "ipv4.dst=10.0.0.0/8"), "drop")
    dp.close()  # twice is harmless
    # a caller's work directory is kept (the sources are worth reading), and two programs are independent
    with NicDataplane(prog, workdir=tmp_path) as a, NicDataplane(prog, name="second", workdir=tmp_path) as b:
        assert a.build_dir != b.build_dir
        add(a, "router_mac", ["ethernet.dst=02:00:00:00:00:01"], "nop")
        assert b.table("router_mac").entries() == [] and b.name == "second"
        assert a.process(1, ip4("127.0.0.1").data)[0] == "drop" and b.process(1, ip4("127.0.0.1").data)[0] \
            == "to_host"
    assert (a.build_dir / "router.c").exists() and (b.build_dir / "router.h").exists()


# ---------------------------------------------------------------------------------------------------------------
# every program: the generated vectors' states, written through apply and register_write


@pytest.mark.parametrize("spec", EXAMPLES + SUITE, ids=lambda p: p.stem)
def test_vector_states_through_the_control_api(gcc: None, spec: Path) -> None:
    """Each vector's tables, defaults and registers go in through the control API (one encoder for every key
    kind and width), and its frames come out as the reference says."""
    prog = load_program(spec).program
    vectors = shared_vectors(spec, 10)[:40]
    with NicDataplane(prog) as dp:
        for v in vectors:
            tables: dict[str, list[Entry]] = defaultdict(list)
            for e in v.control.entries:  # vectors carry priorities the reference ignores in other tables
                priority = e.priority if prog.tables[e.table].uses_priority else 0
                tables[e.table].append(Entry(e.match, e.action, e.args, priority))
            dp.apply(tables, {t: (a, args) for t, a, args in v.control.defaults})
            for r in prog.registers:
                for i in dp.register_read(r):
                    dp.register_write(r, i, 0)
            for (r, i), value in v.registers.items():
                if r in prog.registers and 0 <= i < prog.registers[r].size:
                    dp.register_write(r, i, value & ((1 << prog.registers[r].width) - 1))
            check_against_reference(dp, list(v.packets))
