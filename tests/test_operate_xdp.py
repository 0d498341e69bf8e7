"""`c3po load` and the table commands on real interfaces (issue 13): the router example attached to the veths of a
"router" namespace, frames sent from one neighbour namespace and captured in the other, tables driven between
the sends with the same commands a user types. Only namespaces, veths and pins created here are touched; they
are removed whatever happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from c3po_compiler.cli import main
from tests.conftest import ROOT, need_bpf, need_tool
from tests.test_xdp_veth import PASS_PROGRAM, SOCKET_SCRIPT

pytestmark = pytest.mark.kernel

ROUTER = str(ROOT / "spec" / "examples" / "router.yaml")
ROUTER_MAC, NEXT_MAC, OUT_MAC = "02:00:00:00:00:01", "02:00:00:00:00:99", "02:00:00:00:00:02"

# The far side's pass-everything program, and the socket script (sending, then collecting IPv4 frames).
PASS_SPEC = PASS_PROGRAM
IPV4 = "0800"


def sh(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=60).stdout


def ipv4_frame(dst: str, ttl: int = 64, marker: int = 1) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    pkt = Ether(dst=ROUTER_MAC, src="02:00:00:00:00:aa") / IP(src="192.0.2.1", dst=dst, ttl=ttl) / \
        UDP(sport=1000 + marker, dport=2000) / (bytes([marker]) * 20)
    return bytes(pkt)


class Net:
    """Three namespaces: A -- r0 [router R] r1 -- B."""

    def __init__(self, tag: str) -> None:
        self.r, self.a, self.b = f"c3po-op-{tag}-r", f"c3po-op-{tag}-a", f"c3po-op-{tag}-b"
        for ns in (self.r, self.a, self.b):
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "r0", "netns", self.r, "type", "veth", "peer", "name", "a0", "netns", self.a)
        sh("ip", "link", "add", "r1", "netns", self.r, "type", "veth", "peer", "name", "b0", "netns", self.b)
        for ns, dev in ((self.r, "r0"), (self.r, "r1"), (self.a, "a0"), (self.b, "b0")):
            sh("ip", "-n", ns, "link", "set", "dev", dev, "up")

    def close(self) -> None:
        for ns in (self.r, self.a, self.b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)

    def exchange(self, frames: list[bytes], seconds: float = 1.0) -> list[bytes]:
        """Send `frames` from A; what B received."""
        listener = subprocess.Popen(["ip", "netns", "exec", self.b, sys.executable, "-c", SOCKET_SCRIPT, "b0",
                                     str(seconds + 0.5), "[]", IPV4], stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None
            assert listener.stdout.readline().strip() == "ready"
            subprocess.run(["ip", "netns", "exec", self.a, sys.executable, "-c", SOCKET_SCRIPT, "a0", "0.2",
                            json.dumps([f.hex() for f in frames]), IPV4], capture_output=True, text=True, timeout=30,
                           check=True)
            out, _ = listener.communicate(timeout=30)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
        return [bytes.fromhex(h) for h in json.loads(out.splitlines()[-1])]


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Net]:
    need_bpf()
    need_tool("ip")
    monkeypatch.setenv("C3PO_RUN_DIR", str(tmp_path / "run"))
    n = Net(str(os.getpid()))
    try:
        yield n
    finally:
        for name in (f"rt{os.getpid()}", f"peer{os.getpid()}"):
            main(["unload", name, "--force"])
        n.close()


def c3po(capsys: pytest.CaptureFixture[str], *argv: str, rc: int = 0) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == rc, out.err
    return out.out if rc == 0 else out.err


def pinned_ids(pins: Path) -> list[tuple[str, int]]:
    """(kind, id) of every program and map pinned under `pins` (ids, not names: other tests may load the
    same programs at the same time)."""
    out = []
    for f in pins.iterdir():
        kind = "prog" if f.name == "prog" else "map" if f.name.startswith(("map_", "prio_")) else None
        if kind:
            out.append((kind, json.loads(sh("bpftool", "-j", kind, "show", "pinned", str(f)))["id"]))
    return out


def exists(kind: str, ident: int) -> bool:
    return subprocess.run(["bpftool", kind, "show", "id", str(ident)], capture_output=True).returncode == 0


def test_router_on_live_interfaces(net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    rt, peer = f"rt{os.getpid()}", f"peer{os.getpid()}"
    spec = tmp_path / "peer_pass.yaml"
    spec.write_text(PASS_SPEC.format(p=ROOT / "spec" / "protocols"))
    out = c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", net.r, "--dev", "r0", "--dev", "r1", "--name", rt)
    assert "r0 (port 0), r1 (port 1)" in out and "7 constant entries" in out
    # veth only receives redirected frames when its peer runs XDP: the far side gets a pass-everything program
    c3po(capsys, "load", str(spec), "-t", "xdp", "--netns", net.b, "--dev", "b0", "--mode", "native", "--name", peer)
    pins = Path("/sys/fs/bpf/c3po") / rt
    assert ((pins / "prog").exists() and (pins / "link_2").exists()) or any(pins.glob("link_*"))
    status = json.loads(c3po(capsys, "status", rt, "--json"))[0]
    assert status["tables"]["routes_v4"] == {"entries": 4, "size": 65536}
    assert [p["interface"] for p in status["ports"]] == ["r0", "r1"]

    frames = [ipv4_frame("10.1.2.3", marker=i) for i in range(3)]
    assert net.exchange(frames) == []  # empty tables: router_mac misses, the frames go to the host

    c3po(capsys, "table", rt, "router_mac", "add", f"ethernet.dst={ROUTER_MAC}", "nop")
    c3po(capsys, "table", rt, "routes_v4", "add", "ipv4.dst=10.0.0.0/8", "set_nexthop", "id=7")
    c3po(capsys, "table", rt, "nexthops", "add", "meta.nexthop=7", "next_hop", "port=1", f"smac={OUT_MAC}",
         f"dmac={NEXT_MAC}")
    got = net.exchange(frames)
    assert len(got) == 3
    for sent, recv in zip(frames, got, strict=True):
        e = Ether(recv)
        assert e.dst == NEXT_MAC and e.src == OUT_MAC
        ip = e[IP]
        assert ip.ttl == 63
        check = ip.chksum
        del ip.chksum
        assert IP(bytes(ip)).chksum == check  # the checksum the program wrote is the right one
        assert bytes(ip.payload) == bytes(Ether(sent)[IP].payload)

    dump = json.loads(c3po(capsys, "table", rt, "nexthops", "dump", "--json"))
    [entry] = dump["entries"]
    assert entry["counter"]["packets"] == 3
    assert entry["counter"]["bytes"] == sum(len(f) for f in frames)
    assert entry["args"] == {"port": 1, "smac": 0x020000000002, "dmac": 0x020000000099}

    # a refused request names the problem and writes nothing
    err = c3po(capsys, "table", rt, "routes_v4", "add", "ipv4.dst=10.0.0.0/8", "set_nexthop", "id=8", rc=1)
    assert "already has an entry" in err
    err = c3po(capsys, "table", rt, "routes_v4", "add", "ipv4.dst=10.0.0.1/8", "drop", rc=1)
    assert "did you mean 10.0.0.0/8" in err
    err = c3po(capsys, "table", rt, "route_v4", "dump", rc=1)
    assert "did you mean 'routes_v4'" in err

    c3po(capsys, "table", rt, "routes_v4", "delete", "ipv4.dst=10.0.0.0/8")
    assert net.exchange(frames) == []  # the route is gone: the default drops them

    # apply / dump round trip through an entries file
    entries = tmp_path / "entries.yaml"
    c3po(capsys, "dump", rt, "-o", str(entries))
    text = entries.read_text()
    assert "02:00:00:00:00:01" in text or "0x20000000001" in text
    c3po(capsys, "table", rt, "nexthops", "clear")
    out = c3po(capsys, "apply", rt, str(entries))
    assert "1 added, 0 modified, 0 deleted" in out
    assert c3po(capsys, "apply", rt, str(entries)).startswith("0 added, 0 modified, 0 deleted")

    ours = pinned_ids(pins) + pinned_ids(Path("/sys/fs/bpf/c3po") / peer)
    assert len(ours) > 10
    c3po(capsys, "unload", rt)
    c3po(capsys, "unload", peer)
    assert not pins.exists()
    deadline = time.time() + 5  # the kernel frees programs and maps after an RCU grace period
    while (alive := [o for o in ours if exists(*o)]) and time.time() < deadline:
        time.sleep(0.1)
    assert alive == []
    assert "xdp" not in sh("ip", "-n", net.r, "link", "show", "dev", "r0")
    assert "nothing is loaded" in c3po(capsys, "status")


def test_load_refuses_bad_names_and_interfaces(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    err = c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", net.r, "--dev", "nosuch0", "--name", "x", rc=1)
    assert "there is no interface 'nosuch0'" in err
    err = c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", net.r, "--dev", "r0", "--name", "../evil", rc=1)
    assert "not a valid program name" in err
    err = c3po(capsys, "table", "nothing_here", "t", "dump", rc=1)
    assert "no program named 'nothing_here' is loaded" in err
    # the egress map is an array of every 16-bit port (DEVMAP): a higher port is refused before anything is loaded
    err = c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", net.r, "--port", "70000=r0", "--name", "x", rc=1)
    assert "--port '70000=r0' is not N=IF" in err and "0..65535" in err
    assert "nothing is loaded" in c3po(capsys, "status")


@pytest.fixture
def one_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A namespace with one veth, for tests that only drive tables."""
    need_bpf()
    need_tool("ip")
    monkeypatch.setenv("C3PO_RUN_DIR", str(tmp_path / "run"))
    ns = f"c3po-op1-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        sh("ip", "-n", ns, "link", "set", "p0", "up")
        yield ns
    finally:
        main(["unload", f"acl{os.getpid()}", "--force"])
        main(["unload", f"rtk{os.getpid()}", "--force"])
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


def test_priority_tables_read_back_in_match_order(one_port: str, capsys: pytest.CaptureFixture[str]) -> None:
    """acl_firewall's tables are priority-ordered arrays: whatever order entries are added and deleted in,
    the live array reads back sorted by priority, ties in install order, with the spec's entries marked."""
    from c3po_compiler import load_program
    from conformance.generate import generate
    from dataplane.api import Entry, canonical
    from dataplane.registry import get
    from targets.xdp.control import open as open_dp

    name = f"acl{os.getpid()}"
    c3po(capsys, "load", str(ROOT / "spec/examples/acl_firewall.yaml"), "-t", "xdp", "--netns", one_port,
         "--dev", "p0", "--name", name)
    record, prog = get(name)
    dp = open_dp(prog, record)
    try:
        consts = {n: len(t.entries) for n, t in prog.tables.items()}
        states = {v.control.key(): v.control for v in generate(load_program(
            ROOT / "spec/examples/acl_firewall.yaml").program, seed=3).vectors}
        checked = 0
        for control in list(states.values())[:8]:
            want: dict[str, list[Entry]] = {n: [] for n in prog.tables}
            for es in control.entries:
                t = prog.tables[es.table]
                want[es.table].append(Entry(canonical(t, es.match), es.action, es.args, es.priority))
            dp.apply(want, {})
            for tname in prog.tables:
                got = dp.table(tname).entries(counters=False)
                runtime = [e for e in got if not e.const]
                assert len(got) == consts[tname] + len({(e.match, e.priority) for e in want[tname]})
                assert [e.priority for e in got] == sorted((e.priority for e in got), reverse=True)
                assert {(e.match, e.action, e.args, e.priority) for e in runtime} == \
                    {(e.match, e.action, e.args, e.priority) for e in want[tname]}
                checked += len(runtime)
        assert checked > 0
        # ties keep install order; deleting from the middle keeps the rest in order
        acl = dp.table("acl_v4")
        dp.apply({n: [] for n in prog.tables}, {})
        k = prog.tables["acl_v4"].keys
        from dataplane.syntax import parse_match

        rows = [(["ipv4.src=10.0.0.1"], 5), (["ipv4.src=10.0.0.2"], 9), (["ipv4.src=10.0.0.3"], 5),
                (["ipv4.src=10.0.0.4"], 7)]
        for items, prio in rows:
            acl.add(parse_match(prog.tables["acl_v4"], items), "permit", (), prio)
        srcs = [e.match[[x.text for x in k].index("ipv4.src")].a & 0xFF for e in acl.entries() if not e.const]
        assert srcs == [2, 4, 1, 3]
        acl.delete(parse_match(prog.tables["acl_v4"], ["ipv4.src=10.0.0.4"]), 7)
        srcs = [e.match[[x.text for x in k].index("ipv4.src")].a & 0xFF for e in acl.entries() if not e.const]
        assert srcs == [2, 1, 3]
    finally:
        dp.close()


def test_kill_9_mid_apply_leaves_a_consistent_program(one_port: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A `c3po apply` killed half-way leaves every entry whole, the program attached, and the next commands
    (dump, apply, unload) working; two applies at once serialise on the lock."""
    import yaml

    name = f"rtk{os.getpid()}"
    c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", one_port, "--dev", "p0", "--name", name)
    big = tmp_path / "big.json"
    rows = [{"table": "routes_v4", "match": {"ipv4.dst": f"10.{i >> 8 & 255}.{i & 255}.0/24"},
             "action": f"set_nexthop({i % 100})"} for i in range(60000)]
    big.write_text(json.dumps({"entries": rows}))
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "c3po_compiler.cli", "apply", name, str(big)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill it as soon as its first route is in the kernel (one map lookup per poll: cheap enough to catch it)
    from c3po_compiler.expr import KeyElem
    from dataplane.registry import get
    from targets.xdp.control import open as open_dp
    from targets.xdp.readme import entry_key

    record, prog = get(name)
    dp = open_dp(prog, record)
    key = entry_key(dp.layouts["routes_v4"], [KeyElem("prefix", 10 << 24, 24)])
    deadline = time.time() + 60
    while dp._lookup(dp._map("t_routes_v4"), key, 16) is None and time.time() < deadline:
        time.sleep(0.001)
    proc.kill()
    dp.close()
    proc.wait()
    n = json.loads(c3po(capsys, "status", name, "--json"))[0]["tables"]["routes_v4"]["entries"]
    assert 4 < n < 60004  # killed half-way
    entries = json.loads(c3po(capsys, "table", name, "routes_v4", "dump", "--json"))["entries"]
    assert len(entries) == n
    assert all(e["action"] in ("set_nexthop", "drop", "to_host") for e in entries)
    # two applies at once: both finish, the tables end equal to the file
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"entries": rows[:500]}))
    procs = [subprocess.Popen([sys.executable, "-m", "c3po_compiler.cli", "apply", name, str(small)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert json.loads(c3po(capsys, "status", name, "--json"))[0]["tables"]["routes_v4"]["entries"] == 504
    c3po(capsys, "unload", name)
    assert not (Path("/sys/fs/bpf/c3po") / name).exists()


class Died(BaseException):
    """A command killed half-way (a BaseException: nothing on the way catches it, as nothing runs after kill -9)."""


def test_a_route_cut_short_is_repaired_by_the_next_command(one_port: str, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The deterministic twin of the kill -9 test: a command adding 10.16.0.0/12 (16 root slots of the router's
    trie) dies after writing two of them, before the table's record. The kernel's array then routes two of the
    sixteen; the next command (a dump) finds the mark the dead one left, puts the slots back as the record
    says, and the route can be added again, whole."""
    from c3po_compiler.expr import KeyElem
    from dataplane import registry
    from targets.xdp.control import open as open_dp
    from targets.xdp.trie import Trie

    name = f"rtk{os.getpid()}"
    c3po(capsys, "load", ROUTER, "-t", "xdp", "--netns", one_port, "--dev", "p0", "--name", name)
    route = [KeyElem("prefix", 10 << 24 | 16 << 16, 12)]
    record, prog = registry.get(name)
    dp = open_dp(prog, record)
    writes = []
    real_set = Trie._set

    def dying_set(self: Trie, s: int, value: int) -> None:
        if len(writes) == 2:
            raise Died
        writes.append(s)
        real_set(self, s, value)

    monkeypatch.setattr(Trie, "_set", dying_set)
    with pytest.raises(Died):
        dp.table("routes_v4").add(route, "set_nexthop", (7,))
    monkeypatch.setattr(Trie, "_set", real_set)
    assert registry.unfinished(name).exists()
    slots = dp._trie_maps_of("routes_v4").slots  # the kernel's array, read without the lock
    first = 10 << 8 | 16
    assert sorted(writes) == [first, first + 1] and all(slots[s] for s in writes)
    assert not any(slots[first + 2:first + 16].tolist())

    entries = json.loads(c3po(capsys, "table", name, "routes_v4", "dump", "--json"))["entries"]
    assert len(entries) == 4  # the record: the spec's four routes, not the half-added one
    assert not registry.unfinished(name).exists()
    assert not any(slots[first:first + 16].tolist()), "the next command took the half-written route back out"
    dp.table("routes_v4").add(route, "set_nexthop", (7,))
    assert len(set(slots[first:first + 16].tolist())) == 1 and slots[first]
    assert not registry.unfinished(name).exists()
    dp.close()
    c3po(capsys, "unload", name)


def test_a_priority_insert_cut_short_mid_shift_is_repaired(one_port: str, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """acl_firewall's priority array: an insert at the front moves every entry one slot back, from the end; a
    command dying after the first move leaves the last entry in two slots. The next command drops the copy
    and reads back exactly the entries there were."""
    from c3po_compiler import load_program
    from c3po_compiler.lower import MAX_PRIORITY
    from dataplane import registry
    from dataplane.syntax import parse_match
    from targets.xdp.control import XdpDataplane
    from targets.xdp.control import open as open_dp

    spec = ROOT / "spec" / "examples" / "acl_firewall.yaml"
    name = f"acl{os.getpid()}"
    c3po(capsys, "load", str(spec), "-t", "xdp", "--netns", one_port, "--dev", "p0", "--name", name)
    prog = load_program(spec).program
    table = next(t for t in prog.tables.values() if t.uses_priority)
    before = json.loads(c3po(capsys, "table", name, table.name, "dump", "--json"))["entries"]
    assert len(before) >= 2, "moves to cut short"
    record, prog = registry.get(name)
    dp = open_dp(prog, record)
    real_update = XdpDataplane._update
    writes = []

    def dying_update(self: XdpDataplane, fd: int, key: bytes, value: bytes) -> None:
        if fd == self._map(f"t_{table.name}") and len(writes) == 1:
            raise Died
        if fd == self._map(f"t_{table.name}"):
            writes.append(key)
        real_update(self, fd, key, value)

    monkeypatch.setattr(XdpDataplane, "_update", dying_update)
    drop = next(a for a in table.actions if not prog.actions[a].params)
    with pytest.raises(Died):
        dp.table(table.name).add(parse_match(table, []), drop, (), priority=MAX_PRIORITY)
    monkeypatch.setattr(XdpDataplane, "_update", real_update)
    dp.close()
    assert registry.unfinished(name).exists()
    assert json.loads(c3po(capsys, "table", name, table.name, "dump", "--json"))["entries"] == before
    assert not registry.unfinished(name).exists()
    c3po(capsys, "unload", name)


def test_a_split_parser_loads_and_its_tail_calls_work_after_the_command(one_port: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A program split into tail-called parts (which `ip link ... xdp obj` cannot load) loads like any other:
    its prog array is pinned, so after `c3po load` exits, a frame whose parse ends in the third program still
    gets there (an emptied prog array would abort it)."""
    from targets.xdp.control import _libbpf
    from targets.xdp.libbpf import TestRunner
    from tests.test_xdp_tailcall import deep_stack_spec, frame

    deep_stack_spec(tmp_path, 64)
    name = f"acl{os.getpid()}"  # the fixture unloads this name
    c3po(capsys, "load", str(tmp_path / "deep_stack.yaml"), "-t", "xdp", "--netns", one_port, "--dev", "p0",
         "--name", name)
    pins = Path("/sys/fs/bpf/c3po") / name
    from c3po_compiler import load_program
    from targets.xdp.tailcall import progs_map

    assert (pins / f"map_{progs_map(load_program(tmp_path / 'deep_stack.yaml').program)}").exists()
    fd = _libbpf().bpf_obj_get(str(pins / "prog").encode())
    assert fd >= 0
    try:
        runner = TestRunner(fd)
        hit = frame(60)  # bottom of the stack parsed by the third program; fib: label 5, port 53 -> forward(3)
        miss = bytearray(hit)
        miss[-10:-8] = (54).to_bytes(2, "big")  # UDP destination port 54: a miss, to_host
        assert runner.run(bytes(miss))[0] == 2  # XDP_PASS
        assert runner.run(hit)[0] == 1  # forward(3): port 3 has no devmap entry here, so XDP_DROP
    finally:
        os.close(fd)
    c3po(capsys, "unload", name)


def test_counters_and_registers_from_the_command_line(one_port: str, capsys: pytest.CaptureFixture[str]) -> None:
    """ddos_filter counts passed frames per ingress port and keeps SYNs per bucket in a register: packets run
    through the pinned program show up in `c3po counter ... read`, registers read back what was written, and
    resets and range errors behave."""
    from targets.xdp.control import _libbpf
    from targets.xdp.libbpf import TestRunner

    name = f"acl{os.getpid()}"  # the fixture unloads this name
    c3po(capsys, "load", str(ROOT / "spec/examples/ddos_filter.yaml"), "-t", "xdp", "--netns", one_port,
         "--dev", "p0", "--name", name)
    assert "passed: all zero" in c3po(capsys, "counter", name, "passed", "read")
    fd = _libbpf().bpf_obj_get(str(Path("/sys/fs/bpf/c3po") / name / "prog").encode())
    try:
        runner = TestRunner(fd)
        frame = ipv4_frame("192.0.2.9")
        for _ in range(3):
            assert runner.run(frame)[0] == 2  # not a SYN: passed to the host
    finally:
        os.close(fd)
    # BPF_PROG_TEST_RUN runs on the loopback device (ifindex 1), not in c3po_ifports: port 1
    out = c3po(capsys, "counter", name, "passed", "read")
    assert out.strip() == f"passed[1]: 3 packets, {3 * len(frame)} bytes"
    assert json.loads(c3po(capsys, "counter", name, "passed", "read", "1", "--json")) == \
        {"1": {"packets": 3, "bytes": 3 * len(frame)}}
    c3po(capsys, "counter", name, "passed", "reset")
    assert "all zero" in c3po(capsys, "counter", name, "passed", "read")
    c3po(capsys, "register", name, "syn_per_bucket", "write", "4095", "0xdeadbeef")
    assert c3po(capsys, "register", name, "syn_per_bucket", "read", "4095").strip() == \
        "syn_per_bucket[4095] = 0xdeadbeef"
    err = c3po(capsys, "register", name, "syn_per_bucket", "write", "4096", "1", rc=1)
    assert "index 4096 is outside register 'syn_per_bucket'" in err and "0..4095" in err
    err = c3po(capsys, "register", name, "syn_per_bucket", "write", "1", "0x1ffffffff", rc=1)
    assert "does not fit bit<32>" in err
    err = c3po(capsys, "counter", name, "pased", "read", rc=1)
    assert "did you mean 'passed'" in err
