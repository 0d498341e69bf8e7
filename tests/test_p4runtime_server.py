"""`c3po p4runtime serve` (dataplane/p4runtime_server.py, issue 15): one controller script written against
p4runtime-shell programs the router example on XDP (through c3po's server) and on BMv2 (simple_switch_grpc
running the P4 target of the same spec), and frames sent through both come out the same. Then the P4Runtime
error behaviour of the XDP server, with raw gRPC stubs (p4runtime-shell's client exits the process when it
loses an election): backups cannot write, malformed entries name the field, a full table is
RESOURCE_EXHAUSTED, a batch reports each update, the server survives a client vanishing mid-stream and
garbage bytes; counters and registers of ddos_filter.

Only namespaces, veths, programs, switches and run directories created here are touched; they are removed
whatever happens.
"""

from __future__ import annotations

import gzip
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import load_program
from tests.conftest import ROOT, need_bpf, need_p4_driver, need_tool
from tests.test_operate_p4 import make_record, namespaces, raw_socket  # the same namespaces and records
from tests.test_operate_xdp import PASS_SPEC

pytestmark = [pytest.mark.kernel]

ROUTER = ROOT / "spec" / "examples" / "router.yaml"
DDOS = ROOT / "spec" / "examples" / "ddos_filter.yaml"
ROUTER_MAC, HOST_A_MAC, HOST_B_MAC, OUT_MAC = ("02:00:00:00:00:01", "02:00:00:00:0a:01", "02:00:00:00:0b:01",
                                               "02:00:00:00:00:02")
SUFFIX = f"{os.getpid() % 100000}"
def exchange(hosts_ns: str, tx_if: str, rx_if: str, frames: list[bytes], seconds: float = 1.0) -> list[bytes]:
    """Send `frames` on `tx_if`, return the frames carrying a c3po marker that arrive on `rx_if`."""
    tx, rx = raw_socket(hosts_ns, tx_if), raw_socket(hosts_ns, rx_if)
    try:
        for f in frames:
            tx.send(f)
        got: list[bytes] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([rx], [], [], left)[0]:
                data, addr = rx.recvfrom(4096)
                if addr[2] != socket.PACKET_OUTGOING and b"c3po-mark" in data:
                    got.append(data)
        return got
    finally:
        tx.close()
        rx.close()


def udp_frame(dst_ip: str, marker: bytes, ttl: int = 64) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    return bytes(Ether(dst=ROUTER_MAC, src=HOST_A_MAC) / IP(src="10.0.0.1", dst=dst_ip, ttl=ttl) /
                 UDP(sport=4000, dport=5000) / marker)


@dataclass
class Target:
    """Where a controller finds a P4Runtime device, and how frames reach its ports."""

    address: str
    p4info: Path
    config: Path  # the device config: BMv2 JSON, or the BPF object c3po load built
    send: Callable[[list[bytes]], list[bytes]]


# ---------------------------------------------------------------------------------------------- the script

def controller(t: Target) -> dict[str, Any]:
    """The controller script: p4runtime-shell only, nothing target-specific. Returns what it read and what
    came out of port 1, for comparison across targets."""
    import p4runtime_sh.shell as p4sh

    def norm(e: Any) -> str:
        msg = e.msg()
        return f"{msg}".replace("\n", " ")

    def read(table: str, counters: bool = False) -> list[str]:
        te = p4sh.TableEntry(table)
        if counters:
            te.counter_data  # noqa: B018 - asking for the direct counter makes the read return it
        return sorted(norm(e) for e in te.read())

    out: dict[str, Any] = {}
    p4sh.setup(device_id=0, grpc_addr=t.address, election_id=(0, 1),
               config=p4sh.FwdPipeConfig(str(t.p4info), str(t.config)), verbose=False)
    try:
        te = p4sh.TableEntry("router_mac")(action="nop")
        te.match["ethernet.dst"] = ROUTER_MAC
        te.insert()
        for copy in ("nexthops", "nexthops__2"):  # one P4 table per apply site of the spec's table
            for hop, dmac in ((7, HOST_B_MAC), (8, "02:00:00:00:0b:02")):
                te = p4sh.TableEntry(copy)(action="next_hop")
                te.match["meta.nexthop"] = str(hop)
                te.action["port"], te.action["smac"], te.action["dmac"] = "1", OUT_MAC, dmac
                te.insert()
        for prefix, hop in (("10.1.0.0/16", 7), ("10.1.2.0/24", 8), ("10.9.0.0/16", 7)):
            te = p4sh.TableEntry("routes_v4")(action="set_nexthop")
            te.match["ipv4.dst"] = prefix
            te.action["id"] = str(hop)
            te.insert()
        frames = [udp_frame("10.1.0.5", b"c3po-mark-1"), udp_frame("10.1.2.9", b"c3po-mark-2"),
                  udp_frame("10.1.2.10", b"c3po-mark-3"), udp_frame("192.0.2.1", b"c3po-mark-4")]
        out["forwarded"] = sorted(t.send(frames))
        out["routes"] = read("routes_v4")
        out["nexthops"] = read("nexthops", counters=True)
        out["nexthops__2"] = read("nexthops__2", counters=True)

        d = p4sh.TableEntry("routes_v4")(action="set_nexthop", is_default=True)  # the default: via hop 7
        d.action["id"] = "7"
        d.modify()
        out["default"] = [norm(e) for e in p4sh.TableEntry("routes_v4")(is_default=True).read()]
        out["after_default"] = sorted(t.send([udp_frame("192.0.2.1", b"c3po-mark-5")]))

        te = p4sh.TableEntry("routes_v4")
        te.match["ipv4.dst"] = "10.1.2.0/24"
        te.delete()
        out["routes_after_delete"] = read("routes_v4")
        out["after_delete"] = sorted(t.send([udp_frame("10.1.2.9", b"c3po-mark-6")]))
        out["miss_counter"] = [(c.data.packet_count, c.data.byte_count)
                               for c in p4sh.CounterEntry("nexthops__miss").read()]
    finally:
        p4sh.teardown()
    return out


# ---------------------------------------------------------------------------------------------- fixtures

@dataclass
class XdpSide:
    target: Target
    service: Any
    server: Any
    dp: Any
    hosts_ns: str
    host_ifs: tuple[str, str]


@pytest.fixture(scope="module")
def xdp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XdpSide]:
    need_bpf()
    need_tool("ip")
    from c3po_compiler.cli import main
    from dataplane import registry
    from dataplane.p4runtime_server import serve
    from targets.xdp import control

    tmp = tmp_path_factory.mktemp("p4rt-xdp")
    router_ns, hosts_ns = f"c3po-p4x-{SUFFIX}", f"c3po-p4xh-{SUFFIX}"
    pairs = [(f"p4xr0-{SUFFIX}", f"p4xh0-{SUFFIX}"), (f"p4xr1-{SUFFIX}", f"p4xh1-{SUFFIX}")]
    name, peer = f"p4rt{SUFFIX}", f"p4peer{SUFFIX}"
    spec = tmp / "peer_pass.yaml"
    spec.write_text(PASS_SPEC.format(p=ROOT / "spec" / "protocols"))
    with pytest.MonkeyPatch.context() as mp, namespaces(router_ns, hosts_ns, pairs):
        mp.setenv("C3PO_RUN_DIR", str(tmp / "run"))
        server = None
        try:
            assert main(["load", str(ROUTER), "-t", "xdp", "--netns", router_ns, "--dev", pairs[0][0],
                         "--dev", pairs[1][0], "--name", name]) == 0
            # a veth delivers redirected frames only when its peer runs XDP: the far host end passes all
            assert main(["load", str(spec), "-t", "xdp", "--netns", hosts_ns, "--dev", pairs[1][1],
                         "--mode", "native", "--name", peer]) == 0
            record, prog = registry.get(name)
            dp = control.open(prog, record)
            address = f"unix:{tmp}/p4rt.sock"
            obj = record.dir / "build" / f"{prog.name}.bpf.o"
            server, service = serve(dp, address, 0, obj.read_bytes())
            service.start_packet_io([(p.port, p.ifname) for p in record.ports], router_ns)
            target = Target(address, record.dir / "build" / f"{prog.name}.p4info.txtpb", obj,
                            lambda frames: exchange(hosts_ns, pairs[0][1], pairs[1][1], frames))
            yield XdpSide(target, service, server, dp, hosts_ns, (pairs[0][1], pairs[1][1]))
        finally:
            if server is not None:
                server.stop(grace=0).wait(timeout=5)  # grpc may not report the end of a cancelled stream
                service.close()
            for n in (name, peer):
                main(["unload", n, "--force"])


@pytest.fixture(scope="module")
def bmv2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The P4 target of the same spec on BMv2, loaded as tests/test_operate_p4.py loads it."""
    need_p4_driver()
    from dataplane import registry
    from dataplane.registry import Port
    from targets.p4 import control
    from targets.p4.netns import entered

    router_ns, hosts_ns = f"c3po-p4b-{SUFFIX}", f"c3po-p4bh-{SUFFIX}"
    pairs = [(f"p4br0-{SUFFIX}", f"p4bh0-{SUFFIX}"), (f"p4br1-{SUFFIX}", f"p4bh1-{SUFFIX}")]
    with pytest.MonkeyPatch.context() as mp, namespaces(router_ns, hosts_ns, pairs):
        mp.setenv("C3PO_RUN_DIR", str(tmp_path_factory.mktemp("p4rt-bmv2")))
        prog = load_program(ROUTER).program
        with entered(router_ns):
            ports = [Port(i, r, socket.if_nametoindex(r)) for i, (r, _) in enumerate(pairs)]
        record = make_record(f"p4rtb{SUFFIX}", prog, ROUTER, ports)
        try:
            with entered(router_ns):
                control.load(prog, record, record.dir).close()
            yield Target(record.extra["grpc"], Path(record.extra["p4info"]), Path(record.extra["bmv2_json"]),
                         lambda frames: exchange(hosts_ns, pairs[0][1], pairs[1][1], frames))
        finally:
            control.unload(record)
            registry.remove(record.name)


# ---------------------------------------------------------------------------------------------- tests

@pytest.mark.p4
def test_one_p4runtime_shell_script_drives_xdp_and_bmv2_alike(xdp: XdpSide, bmv2: Target) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    # the P4Info c3po wrote beside the XDP object is the one p4c wrote for BMv2
    assert xdp.target.p4info.read_text() == bmv2.p4info.read_text()
    on_xdp = controller(xdp.target)
    on_bmv2 = controller(bmv2)
    assert on_xdp == on_bmv2

    # and what both did is what the script asked for
    fwd = [Ether(f) for f in on_xdp["forwarded"]]
    assert len(fwd) == 3  # 192.0.2.1 has no route: the default drops it
    by_marker = {bytes(e[IP].payload)[-1:]: e for e in fwd}
    assert by_marker[b"1"].dst == HOST_B_MAC and by_marker[b"2"].dst == "02:00:00:00:0b:02"  # longest prefix
    assert all(e.src == OUT_MAC and e[IP].ttl == 63 for e in fwd)
    assert len(on_xdp["routes"]) == 3 and "prefix_len: 24" in " ".join(on_xdp["routes"])
    hop7 = next(e for e in on_xdp["nexthops"] if 'value: "\\007"' in e)
    assert "packet_count: 1" in hop7 and "byte_count" in hop7  # one frame went via hop 7 (IPv4: copy 1)
    assert len(on_xdp["after_default"]) == 1  # the new default forwards the unrouted frame via hop 7
    assert len(on_xdp["routes_after_delete"]) == 2
    assert Ether(on_xdp["after_delete"][0]).dst == HOST_B_MAC  # 10.1.2.9 now takes the /16: hop 7


def test_the_script_runs_on_xdp_alone(xdp: XdpSide) -> None:
    """Where BMv2 is missing, the XDP half still runs (the comparison above needs both)."""
    out = controller(xdp.target)
    assert len(out["forwarded"]) == 3 and len(out["routes_after_delete"]) == 2


# ---- raw P4Runtime: arbitration and errors ------------------------------------------------------------------

class Client:
    """A bare P4Runtime client: one channel, one StreamChannel, what the server answers on it."""

    def __init__(self, address: str, election: tuple[int, int] | None) -> None:
        import queue

        import grpc
        from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

        self.pb = p4runtime_pb2
        self.channel = grpc.insecure_channel(address)
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.requests: queue.Queue[Any] = queue.Queue()
        self.election = election
        self.stream = self.stub.StreamChannel(iter(self.requests.get, None))
        if election is not None:
            self.arbitrate(election)

    def arbitrate(self, election: tuple[int, int]) -> None:
        req = self.pb.StreamMessageRequest()
        req.arbitration.device_id = 0
        req.arbitration.election_id.high, req.arbitration.election_id.low = election
        self.requests.put(req)

    def answer(self) -> Any:
        return next(self.stream)

    def write(self, *updates: Any) -> Any:
        req = self.pb.WriteRequest(device_id=0)
        if self.election:
            req.election_id.high, req.election_id.low = self.election
        req.updates.extend(updates)
        return self.stub.Write(req, timeout=10)

    def read(self, *entities: Any) -> list[Any]:
        req = self.pb.ReadRequest(device_id=0)
        req.entities.extend(entities)
        return [e for rep in self.stub.Read(req, timeout=10) for e in rep.entities]

    def close(self) -> None:
        self.requests.put(None)
        self.channel.close()


def _ids(service: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({t.preamble.name: t for t in service.info.tables}, {a.preamble.name: a for a in service.info.actions})


def route(service: Any, prefix: int, plen: int, hop: int, kind: str = "INSERT", raw: bytes | None = None) -> Any:
    from p4.v1 import p4runtime_pb2 as pb

    tables, actions = _ids(service)
    te = pb.TableEntry(table_id=tables["routes_v4"].preamble.id)
    fm = te.match.add(field_id=1)
    fm.lpm.value, fm.lpm.prefix_len = raw if raw is not None else prefix.to_bytes(4, "big"), plen
    te.action.action.action_id = actions["set_nexthop"].preamble.id
    te.action.action.params.add(param_id=1, value=hop.to_bytes(max(2, (hop.bit_length() + 7) // 8), "big"))
    return pb.Update(type=getattr(pb.Update, kind), entity=pb.Entity(table_entry=te))


def per_update(exc: Any) -> list[tuple[int, str]]:
    from google.rpc import status_pb2
    from p4.v1 import p4runtime_pb2 as pb

    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            out = []
            for d in status_pb2.Status.FromString(value).details:
                err = pb.Error()
                d.Unpack(err)
                out.append((err.canonical_code, err.message))
            return out
    return []


def test_arbitration_backups_read_but_cannot_write(xdp: XdpSide) -> None:
    import grpc
    from google.rpc import code_pb2

    primary = Client(xdp.target.address, (0, 10))
    assert primary.answer().arbitration.status.code == code_pb2.OK
    backup = Client(xdp.target.address, (0, 5))  # after the primary's answer: the order of arrival is settled
    try:
        rep = backup.answer().arbitration
        assert rep.status.code == code_pb2.ALREADY_EXISTS and rep.election_id.low == 10
        with pytest.raises(grpc.RpcError) as err:
            backup.write(route(xdp.service, 0x0A000000, 8, 1))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "not primary" in err.value.details()
        primary.write(route(xdp.service, 0x0A000000, 8, 1))
        tid = _ids(xdp.service)[0]["routes_v4"].preamble.id
        got = backup.read(primary.pb.Entity(table_entry=primary.pb.TableEntry(table_id=tid)))  # reading is fine
        assert any(e.table_entry.match[0].lpm.prefix_len == 8 for e in got)
        primary.write(route(xdp.service, 0x0A000000, 8, 1, kind="DELETE"))

        twin = Client(xdp.target.address, (0, 10))  # the primary's election id again: refused, stream ended
        with pytest.raises(grpc.RpcError) as err:
            twin.answer()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "already used" in err.value.details()
        twin.close()

        # the primary vanishes mid-stream: the backup is told it is now primary, and its writes go through
        primary.channel.close()
        assert backup.answer().arbitration.status.code == code_pb2.OK
        backup.write(route(xdp.service, 0x0B000000, 8, 1))
        backup.write(route(xdp.service, 0x0B000000, 8, 1, kind="DELETE"))
    finally:
        primary.close()
        backup.close()


def test_malformed_entries_are_invalid_argument_naming_the_field(xdp: XdpSide) -> None:
    import grpc
    from google.rpc import code_pb2

    c = Client(xdp.target.address, (0, 20))
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        cases = [
            (route(xdp.service, 0x0A010203, 16, 1), "ipv4.dst", "beyond the /16"),
            (route(xdp.service, 0, 33, 1), "ipv4.dst", "prefix_len 33"),
            (route(xdp.service, 0, 8, 1, raw=b"\x01\x02\x03\x04\x05"), "ipv4.dst", "does not fit bit<32>"),
            (route(xdp.service, 0x0A000000, 8, 0x1FFFF), "'id'", "does not fit bit<16>"),
        ]
        missing = route(xdp.service, 0x0A000000, 8, 1)
        del missing.entity.table_entry.action.action.params[:]
        cases.append((missing, "'id'", "is missing"))
        for update, name, what in cases:
            with pytest.raises(grpc.RpcError) as err:
                c.write(update)
            [(code, message)] = per_update(err.value)
            assert code == code_pb2.INVALID_ARGUMENT and name in message and what in message, message
        # a batch: each update is applied or refused on its own, and each is reported
        good, dup = route(xdp.service, 0x0C000000, 8, 2), route(xdp.service, 0x0C000000, 8, 3)
        with pytest.raises(grpc.RpcError) as err:
            c.write(good, dup, route(xdp.service, 0x0D000000, 8, 2, kind="DELETE"))
        assert err.value.code() == grpc.StatusCode.UNKNOWN
        assert [code for code, _ in per_update(err.value)] == [code_pb2.OK, code_pb2.ALREADY_EXISTS,
                                                                code_pb2.NOT_FOUND]
        c.write(route(xdp.service, 0x0C000000, 8, 2, kind="DELETE"))
    finally:
        c.close()


def test_a_full_table_is_resource_exhausted(xdp: XdpSide) -> None:
    import grpc
    from google.rpc import code_pb2
    from p4.v1 import p4runtime_pb2 as pb

    tables, actions = _ids(xdp.service)
    size = tables["router_mac"].size

    def mac_entry(i: int, kind: int) -> Any:
        te = pb.TableEntry(table_id=tables["router_mac"].preamble.id)
        te.match.add(field_id=1).exact.value = (0x020000AA0000 + i).to_bytes(6, "big")
        te.action.action.action_id = actions["nop"].preamble.id
        return pb.Update(type=kind, entity=pb.Entity(table_entry=te))

    c = Client(xdp.target.address, (0, 30))
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        have = len(c.read(pb.Entity(table_entry=pb.TableEntry(table_id=tables["router_mac"].preamble.id))))
        c.write(*[mac_entry(i, pb.Update.INSERT) for i in range(size - have)])
        with pytest.raises(grpc.RpcError) as err:
            c.write(mac_entry(size, pb.Update.INSERT))
        [(code, message)] = per_update(err.value)
        assert code == code_pb2.RESOURCE_EXHAUSTED and "full" in message
        c.write(*[mac_entry(i, pb.Update.DELETE) for i in range(size - have)])
    finally:
        c.close()


def test_the_server_survives_garbage_and_a_vanished_stream(xdp: XdpSide) -> None:
    import grpc
    from google.rpc import code_pb2

    channel = grpc.insecure_channel(xdp.target.address)
    try:
        raw = channel.unary_unary("/p4.v1.P4Runtime/Write")  # bytes in, bytes out: no protobuf in the way
        with pytest.raises(grpc.RpcError):
            raw(b"\xff\xff\xff\xff not a WriteRequest", timeout=5)
        stream = channel.stream_stream("/p4.v1.P4Runtime/StreamChannel")
        it = stream(iter([b"\x0a\x03\xff\xff\xff"]), timeout=5)  # a truncated arbitration message
        with pytest.raises(grpc.RpcError):
            list(it)
    finally:
        channel.close()
    c = Client(xdp.target.address, (0, 40))  # still serving, and nobody is primary any more but this one
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        c.write(route(xdp.service, 0x0E000000, 8, 1))
        c.write(route(xdp.service, 0x0E000000, 8, 1, kind="DELETE"))
    finally:
        c.close()


def test_pipeline_config_verify_get_and_refusals(xdp: XdpSide) -> None:
    import grpc
    from google.rpc import code_pb2
    from p4.v1 import p4runtime_pb2 as pb

    from targets.p4.p4info import p4info

    c = Client(xdp.target.address, (0, 50))
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        got = c.stub.GetForwardingPipelineConfig(pb.GetForwardingPipelineConfigRequest(device_id=0), timeout=10)
        assert got.config.p4info == xdp.service.info
        # the object, gzip-compressed: a table's .data section stores its zeros (a direct table's copy, cuckoo
        # buckets: up to 4 MiB each) and a default gRPC client takes at most 4 MiB; compressed it is small
        obj = xdp.target.config.read_bytes()
        assert gzip.decompress(got.config.p4_device_config) == obj
        assert len(got.config.p4_device_config) < len(obj) // 2

        def set_config(action: int, info: Any, device: bytes = b"") -> None:
            req = pb.SetForwardingPipelineConfigRequest(device_id=0, action=action)
            req.election_id.low = 50
            req.config.p4info.CopyFrom(info)
            req.config.p4_device_config = device
            req.config.cookie.cookie = 99
            c.stub.SetForwardingPipelineConfig(req, timeout=10)

        A = pb.SetForwardingPipelineConfigRequest
        set_config(A.VERIFY, xdp.service.info)
        set_config(A.VERIFY, xdp.service.info, obj)  # the object itself (p4runtime-shell sends the file)
        set_config(A.VERIFY, xdp.service.info, got.config.p4_device_config)  # what Get gave
        other = p4info(load_program(DDOS).program)
        with pytest.raises(grpc.RpcError) as err:
            set_config(A.VERIFY_AND_COMMIT, other)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "c3po load" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            set_config(A.VERIFY, xdp.service.info, b"\x7fELF something else")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "p4_device_config" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            c.stub.Write(pb.WriteRequest(device_id=3), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        caps = c.stub.Capabilities(pb.CapabilitiesRequest(), timeout=10)
        assert caps.p4runtime_api_version.startswith("1.")
    finally:
        c.close()


def test_counters_registers_and_priorities_of_ddos_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A program with counter arrays, a register and a ternary table (priorities), loaded with no interface."""
    need_bpf()
    import grpc
    from google.rpc import code_pb2
    from p4.v1 import p4data_pb2
    from p4.v1 import p4runtime_pb2 as pb

    from c3po_compiler.cli import main
    from dataplane import registry
    from dataplane.p4runtime_server import serve
    from targets.xdp import control

    monkeypatch.setenv("C3PO_RUN_DIR", str(tmp_path / "run"))
    name = f"p4ddos{SUFFIX}"
    prog = load_program(DDOS).program
    record = registry.Record(name=name, target="xdp", spec=str(DDOS), program=prog.name)
    registry.create(record, prog)
    server = None
    try:
        dp = control.load(prog, record, record.dir)
        server, service = serve(dp, f"unix:{tmp_path}/s.sock")
        c = Client(f"unix:{tmp_path}/s.sock", (0, 1))
        assert c.answer().arbitration.status.code == code_pb2.OK
        counters = {x.preamble.name: x for x in service.info.counters}
        registers = {x.preamble.name: x for x in service.info.registers}
        tables, actions = _ids(service)

        passed = counters["passed"].preamble.id
        every = c.read(pb.Entity(counter_entry=pb.CounterEntry(counter_id=passed)))
        assert len(every) == counters["passed"].size and all(e.counter_entry.data.packet_count == 0 for e in every)
        with pytest.raises(grpc.RpcError) as err:  # XDP's per-CPU counters can be zeroed, not set
            c.write(pb.Update(type=pb.Update.MODIFY, entity=pb.Entity(counter_entry=pb.CounterEntry(
                counter_id=passed, index=pb.Index(index=3), data=pb.CounterData(packet_count=5)))))
        assert per_update(err.value)[0][0] == code_pb2.UNIMPLEMENTED
        c.write(pb.Update(type=pb.Update.MODIFY, entity=pb.Entity(counter_entry=pb.CounterEntry(
            counter_id=passed, index=pb.Index(index=3), data=pb.CounterData()))))

        reg = registers["syn_per_bucket"]
        c.write(pb.Update(type=pb.Update.MODIFY, entity=pb.Entity(register_entry=pb.RegisterEntry(
            register_id=reg.preamble.id, index=pb.Index(index=4095),
            data=p4data_pb2.P4Data(bitstring=bytes.fromhex("deadbeef"))))))
        [one] = c.read(pb.Entity(register_entry=pb.RegisterEntry(register_id=reg.preamble.id,
                                                                  index=pb.Index(index=4095))))
        assert one.register_entry.data.bitstring == bytes.fromhex("deadbeef")
        assert dp.register_read("syn_per_bucket") == {4095: 0xDEADBEEF}  # the kernel map holds it
        every = c.read(pb.Entity(register_entry=pb.RegisterEntry(register_id=reg.preamble.id)))
        assert len(every) == reg.size

        trusted = tables["trusted_v4"]
        (tfield,) = trusted.match_fields

        def tern(value: int, mask: int, prio: int) -> Any:
            te = pb.TableEntry(table_id=trusted.preamble.id, priority=prio)
            fm = te.match.add(field_id=tfield.id)
            fm.ternary.value, fm.ternary.mask = value.to_bytes(4, "big"), mask.to_bytes(4, "big")
            te.action.action.action_id = actions["nop"].preamble.id
            return pb.Update(type=pb.Update.INSERT, entity=pb.Entity(table_entry=te))

        c.write(tern(0x0A000000, 0xFF000000, 5), tern(0x0A000001, 0xFFFFFFFF, 9))
        c.write(tern(0x0A000000, 0xFF000000, 7))  # the same match at another priority is another entry
        prios = [e.table_entry.priority for e in c.read(pb.Entity(table_entry=pb.TableEntry(
            table_id=trusted.preamble.id)))]
        assert sorted(prios, reverse=True)[:3] == [9, 7, 5]
        assert [e.priority for e in dp.table("trusted_v4").entries()][:3] == [8, 6, 4]  # P4Runtime P = spec P - 1
        with pytest.raises(grpc.RpcError) as err:
            c.write(tern(0x0B000000, 0xFF000000, 0))
        [(code, message)] = per_update(err.value)
        assert code == code_pb2.INVALID_ARGUMENT and "priority" in message
        with pytest.raises(grpc.RpcError) as err:
            c.write(tern(0x0B000001, 0xFF000000, 3))
        [(code, message)] = per_update(err.value)
        assert code == code_pb2.INVALID_ARGUMENT and "outside mask" in message and tfield.name in message
        c.close()
    finally:
        if server is not None:
            server.stop(grace=0).wait(timeout=5)  # grpc may not report the end of a cancelled stream
            service.close()
        main(["unload", name, "--force"])


def test_commit_resets_state_and_wildcard_reads_see_every_table(xdp: XdpSide) -> None:
    """A committed pipeline starts empty, as on BMv2; reads of all tables, of direct counters; a malformed
    packet-out is refused on the stream without ending it."""
    from google.rpc import code_pb2
    from p4.v1 import p4runtime_pb2 as pb

    controller(xdp.target)  # leaves routes, next hops and counted frames behind
    c = Client(xdp.target.address, (0, 60))
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        c.write(route(xdp.service, 0x0F000000, 8, 1))
        every = c.read(pb.Entity(table_entry=pb.TableEntry()))
        assert {e.table_entry.table_id for e in every} >= {_ids(xdp.service)[0]["routes_v4"].preamble.id}
        tid = _ids(xdp.service)[0]["nexthops"].preamble.id
        direct = c.read(pb.Entity(direct_counter_entry=pb.DirectCounterEntry(table_entry=pb.TableEntry(
            table_id=tid))))
        assert all(d.direct_counter_entry.HasField("data") for d in direct)
        hops = [d for d in direct if d.direct_counter_entry.data.packet_count]
        assert hops  # the controller script's frames counted on some next hop: zero one entry's counter
        zero = pb.DirectCounterEntry(table_entry=hops[0].direct_counter_entry.table_entry, data=pb.CounterData())
        c.write(pb.Update(type=pb.Update.MODIFY, entity=pb.Entity(direct_counter_entry=zero)))
        again = c.read(pb.Entity(direct_counter_entry=pb.DirectCounterEntry(
            table_entry=hops[0].direct_counter_entry.table_entry)))
        assert [d.direct_counter_entry.data.packet_count for d in again] == [0]

        out = pb.StreamMessageRequest()
        out.packet.payload = b"\x00" * 64
        c.requests.put(out)
        err = c.answer().error  # no egress port: refused on the stream, which stays open
        assert err.canonical_code == code_pb2.INVALID_ARGUMENT and err.packet_out.packet_out.payload == b"\x00" * 64

        req = pb.SetForwardingPipelineConfigRequest(device_id=0, action=pb.SetForwardingPipelineConfigRequest.
                                                    VERIFY_AND_COMMIT)
        req.election_id.low = 60
        req.config.p4info.CopyFrom(xdp.service.info)
        c.stub.SetForwardingPipelineConfig(req, timeout=30)
        assert c.read(pb.Entity(table_entry=pb.TableEntry())) == []  # constant entries included, as on BMv2
        assert xdp.dp.table("routes_v4").entries() == []
        assert xdp.dp.table("routes_v4").default() == ("drop", ())
    finally:
        c.close()


def test_the_command_refuses_remote_addresses_and_unknown_programs(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """No kernel needed: the refusals come before anything is opened."""
    from c3po_compiler.cli import main
    from dataplane.api import ControlError
    from dataplane.p4runtime_server import check_address

    monkeypatch.setenv("C3PO_RUN_DIR", str(tmp_path / "run"))
    assert check_address("127.0.0.1:9559", False) == "127.0.0.1:9559"
    assert check_address("[::1]:9559", False) == "[::1]:9559"
    assert check_address("unix:/run/x.sock", False) == "unix:/run/x.sock"
    assert check_address("0.0.0.0:9559", True) == "0.0.0.0:9559"
    with pytest.raises(ControlError, match="--allow-remote"):
        check_address("0.0.0.0:9559", False)
    with pytest.raises(ControlError, match="HOST:PORT"):
        check_address("localhost", False)
    assert main(["p4runtime", "serve", "nothing_here"]) == 1
    assert "no program named 'nothing_here' is loaded" in capsys.readouterr().err
    assert main(["p4runtime", "serve", "x", "--address", "192.0.2.1:9559"]) == 1
    assert "no authentication" in capsys.readouterr().err


def test_packet_in_and_out(xdp: XdpSide) -> None:
    """What the program sends to the host reaches the primary as PacketIn with its ingress port; a PacketOut
    leaves by the port its metadata names."""
    from google.rpc import code_pb2
    from p4.v1 import p4runtime_pb2 as pb

    c = Client(xdp.target.address, (0, 70))
    try:
        assert c.answer().arbitration.status.code == code_pb2.OK
        req = pb.SetForwardingPipelineConfigRequest(device_id=0, action=pb.SetForwardingPipelineConfigRequest.
                                                    VERIFY_AND_COMMIT)
        req.election_id.low = 70
        req.config.p4info.CopyFrom(xdp.service.info)
        c.stub.SetForwardingPipelineConfig(req, timeout=30)
        frame = udp_frame("10.1.0.5", b"c3po-mark-in")
        assert xdp.target.send([frame]) == []  # router_mac is empty: to the host, not out of port 1
        got = None
        for _ in range(20):
            msg = c.answer()
            if msg.HasField("packet") and b"c3po-mark-in" in msg.packet.payload:
                got = msg.packet
                break
        assert got is not None and got.payload == frame
        assert [(m.metadata_id, m.value) for m in got.metadata] == [(1, b"\x00")]  # ingress port 0

        out = pb.StreamMessageRequest()
        out.packet.payload = udp_frame("10.1.0.6", b"c3po-mark-out")
        out.packet.metadata.add(metadata_id=1, value=b"\x01")
        rx = raw_socket(xdp.hosts_ns, xdp.host_ifs[1])
        try:
            c.requests.put(out)
            end, seen = time.monotonic() + 1.5, list[bytes]()
            while time.monotonic() < end and not seen:
                if select.select([rx], [], [], 0.1)[0]:
                    data, addr = rx.recvfrom(4096)
                    if addr[2] != socket.PACKET_OUTGOING and b"c3po-mark-out" in data:
                        seen.append(data)
        finally:
            rx.close()
        assert seen == [out.packet.payload]  # out of port 1, unchanged
    finally:
        c.close()
