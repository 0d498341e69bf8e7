"""The P4 driver's pieces that need no BMv2 (availability, names, command lines, CLI output parsing, capture ->
Result), build-time refusals, and — where p4c and BMv2 are installed — compiling every example."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from targets.p4 import P4Target, compile_command
from targets.p4.bmv2_log import LogTail
from targets.p4.driver import (
    P4Driver,
    grown,
    p4runtime_unavailable,
    pair_captures,
    result_from_fate,
    switch_command,
)
from targets.p4.netns import link_batch, namespace_name, veth_names
from targets.p4.pktio import kernel_refuses, with_vlan_tag
from tests.conftest import EXAMPLES, need_p4

SPEC = """
c3po: 1
program: tiny
headers:
  eth:
    fields: {dst: 48, src: 48, ethertype: 16}
  tag:
    fields: {tci: 16, ethertype: 16}
    @TAG_EXTRA@
@INSTANCES@
registers: {seen: {width: 32, size: 8}}
counters: {hits: {size: 4}}
parser:
  start: eth
  states:
    eth:
      extract: eth
      select: eth.ethertype
      cases: {0x8100: tag}
      default: accept
    tag:
      extract: tag
tables:
  @TABLE@:
    key: {eth.dst: exact}
    actions: [forward, drop]
    default: drop
    counters: true
control:
  - apply: @TABLE@
"""


def _program(tmp_path: Path, table: str = "fwd", instances: str = "", tag_extra: str = "") -> ir.Program:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC.replace("@TABLE@", table).replace("@INSTANCES@", instances).replace("@TAG_EXTRA@", tag_extra))
    loaded = load_program(str(path))
    assert loaded.program is not None, loaded
    return loaded.program


def test_unavailable_without_p4c(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = P4Driver.unavailable()
    assert reason is not None and reason.startswith("p4c / simple_switch not found")
    assert "p4c-bm2-ss" in reason and "docs/targets/p4.md" in reason


def test_unavailable_names_only_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for tool in ("p4c-bm2-ss", "ip"):
        exe = tmp_path / tool
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = P4Driver.unavailable()
    assert reason is not None
    assert "simple_switch" in reason and "p4c-bm2-ss," not in reason


def test_p4runtime_modules_that_do_not_load_are_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyPI's p4runtime modules under protobuf >= 4 raise TypeError on import; a missing package ImportError.
    Both must say how to install the regenerated modules, not fail later inside the driver."""
    import builtins
    import sys

    assert p4runtime_unavailable() is None  # the project's own set-up loads them
    real = builtins.__import__
    for exc in (TypeError("Descriptors cannot be created directly."), ImportError("No module named 'p4'")):
        def fake(name: str, *args: object, _exc: Exception = exc, **kw: object) -> object:
            if name == "p4.v1" or name.startswith("p4.v1."):
                raise _exc
            return real(name, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.delitem(sys.modules, "p4.v1.p4runtime_pb2", raising=False)
        monkeypatch.setattr(builtins, "__import__", fake)
        reason = p4runtime_unavailable()
        monkeypatch.setattr(builtins, "__import__", real)
        assert reason is not None and "third_party/p4runtime" in reason, reason
        assert ("protobuf" in reason) == isinstance(exc, TypeError), reason


def test_open_refuses_cleanly_when_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from conformance.driver import DriverUnavailable

    prog = _program(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with P4Driver() as drv, pytest.raises(DriverUnavailable, match="p4c / simple_switch not found"):
        drv.open(prog, tmp_path / "work")
    drv.close()  # safe twice


def test_names_and_commands() -> None:
    a, b = namespace_name(123, 1), namespace_name(123, 2)
    assert a != b and a.startswith("c3po-p4-") and len(a) < 32
    for port in (0, 7, 510):
        sw, tp = veth_names(port)
        assert sw != tp and len(sw) <= 15 and len(tp) <= 15
    cmd = switch_command([0, 1, 510], Path("/w"), Path("/run/c3po/ns1"))
    assert cmd[0] == "simple_switch_grpc" and "--no-p4" in cmd
    assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "-i"] == ["0@sw0", "1@sw1", "510@sw510"]
    assert cmd[cmd.index("-L") + 1] == "debug"  # the per-packet fate lines are debug messages
    assert cmd[cmd.index("--log-file") + 1] == "/w/switch"
    assert cmd[cmd.index("--notifications-addr") + 1] == "ipc:///run/c3po/ns1/notifications.ipc"
    assert cmd[-2:] == ["--grpc-server-addr", "unix:/run/c3po/ns1/grpc.sock"]
    batch = link_batch([0, 510]).splitlines()
    assert "link add sw510 mtu 9000 type veth peer name tp510 mtu 9000" in batch
    assert "link set tp0 up" in batch
    assert compile_command("p4c-bm2-ss", Path("a.p4"), Path("a.json")) == [
        "p4c-bm2-ss", "--arch", "v1model", "--std", "p4-16", "-o", "a.json", "a.p4"]
    assert compile_command("p4c-bm2-ss", Path("a.p4"), Path("a.json"), Path("a.txtpb"))[-3:] == [
        "--p4runtime-files", "a.txtpb", "a.p4"]


def test_counts_are_what_grew_since_the_vector_started() -> None:
    start = {("hits", 1): (3, 180), ("table.fwd", -1): (1, 60)}
    now = {("hits", 1): (4, 244), ("table.fwd", -1): (1, 60), ("table.fwd", 0): (1, 64)}
    assert grown(now, start) == {("hits", 1): (1, 64), ("table.fwd", 0): (1, 64)}
    assert grown(start, start) == {}


LOG = """\
[20:26:37.824] [bmv2] [I] [thread 4415] Starting Thrift server on port 9090
[20:26:37.864] [bmv2] [D] [thread 4422] [7.0] [cxt 0] Processing packet received on port 1
[20:26:37.864] [bmv2] [D] [thread 4422] [8.0] [cxt 0] Processing packet received on port 1
[20:26:37.864] [bmv2] [D] [thread 4422] [9.0] [cxt 0] Processing packet received on port 3
[20:26:37.864] [bmv2] [D] [thread 4422] [7.0] [cxt 0] Egress port is 2
[20:26:37.864] [bmv2] [D] [thread 4422] [8.0] [cxt 0] Dropping packet at the end of ingress
[20:26:37.865] [bmv2] [D] [thread 4427] [9.0] [cxt 0] Transmitting packet of size 60 out of port 2
[20:26:37.865] [bmv2] [D] [thread 4427] [7.0] [cxt 0] Transmitting packet of size 64 out of port 2
"""


def test_log_tail_reports_fates_in_order_across_partial_writes(tmp_path: Path) -> None:
    log = tmp_path / "switch.txt"
    tail = LogTail(log)
    tail.poll()  # no file yet
    cut = LOG.index("Dropping") + 5
    log.write_text(LOG[:cut])
    tail.poll()
    assert tail.received == {1: 2, 3: 1}
    assert not tail.fates[8].done  # the drop line is only half written
    with log.open("a") as f:
        f.write(LOG[cut:])
    tail.poll()
    assert tail.fates[8].dropped and tail.fates[8].done
    assert tail.fates[7].out_ports == [2] and not tail.fates[7].dropped
    assert tail.transmitted == {2: [(9, 60), (7, 64)]}  # the order frames left port 2: captures pair with it
    assert tail.received_on() == {1: [7, 8], 3: [9]}
    tail.mark()
    assert tail.fates == {} and tail.received == {} and tail.transmitted == {}


def test_captures_pair_with_transmissions_by_order_and_size() -> None:
    sent = {2: [(9, 4), (7, 3), (8, 5)], 510: [(4, 2)]}
    got = {2: [b"aaaa", b"ccccc"], 510: [b"xx"]}  # the 3-byte frame never arrived
    assert pair_captures(sent, got) == {9: b"aaaa", 8: b"ccccc", 4: b"xx"}


def test_result_from_fate() -> None:
    from targets.p4.bmv2_log import Fate

    wired = {0, 1, 2, 510}
    assert result_from_fate(Fate(1, dropped=True), None, 510, wired).verdict == "drop"
    r = result_from_fate(Fate(1, [510]), b"x" * 60, 510, wired)
    assert (r.verdict, r.port, r.data) == ("to_host", None, b"x" * 60)
    r = result_from_fate(Fate(1, [1]), b"y", 510, wired)
    assert (r.verdict, r.port, r.observations) == ("reflect", 1, {"egress_only": True})
    r = result_from_fate(Fate(1, [2]), b"z", 510, wired)
    assert (r.verdict, r.port, r.data, r.error) == ("forward", 2, b"z", None)
    # a port no interface is bound to: BMv2 dropped the frame there; the port is known, the bytes are not
    r = result_from_fate(Fate(1, [40]), None, 510, wired)
    assert (r.verdict, r.port, r.error) == ("forward", 40, None)
    assert r.observations["dropped"] and r.observations["frame_unseen"] and "port 40" in r.observations["p4"]


def test_forward_to_the_ingress_port_matches_reflect_only_for_egress_only_results() -> None:
    from conformance.compare import compare
    from conformance.model import Expected, Result

    exp = Expected("forward", 1, b"ab")
    assert not compare(exp, Result("reflect", 1, b"ab", observations={"egress_only": True}))
    assert compare(exp, Result("reflect", 1, b"ab"))  # a target that can tell them apart must
    assert compare(exp, Result("reflect", 2, b"ab", observations={"egress_only": True}))


def test_frames_linux_will_not_deliver() -> None:
    eth = bytes(12)
    assert kernel_refuses(b"\x00" * 13) is not None
    assert kernel_refuses(eth + b"\x08\x00") is None
    assert kernel_refuses(eth + b"\x81\x00" + bytes(5)) is not None  # tag + type + 1 byte
    assert kernel_refuses(eth + b"\x81\x00" + bytes(6)) is None
    assert kernel_refuses(eth + b"\x88\xa8\x00\x01\x81\x00" + bytes(5)) is not None  # QinQ, inner cut
    assert kernel_refuses(eth + b"\x88\xa8\x00\x01\x81\x00" + bytes(6)) is None


def test_vlan_tag_is_put_back_from_auxdata() -> None:
    import socket
    import struct

    from targets.p4.pktio import PACKET_AUXDATA, SOL_PACKET

    frame = bytes(range(12)) + b"\x08\x00" + b"payload"
    aux = struct.pack("=IIIHHHH", 0x10 | 0x40, 0, 0, 0, 0, 0x2005, 0x88A8)
    assert with_vlan_tag(frame, [(SOL_PACKET, PACKET_AUXDATA, aux)]) == (
        frame[:12] + b"\x88\xa8\x20\x05" + frame[12:])
    assert with_vlan_tag(frame, []) == frame
    none = struct.pack("=IIIHHHH", 0, 0, 0, 0, 0, 0, 0)
    assert with_vlan_tag(frame, [(SOL_PACKET, PACKET_AUXDATA, none)]) == frame
    assert socket.AF_PACKET  # the driver needs Linux packet sockets


def test_refuses_names_p4_reserves(tmp_path: Path) -> None:
    # `truncate` is a v1model extern the front end does not know about.
    prog = _program(tmp_path, table="truncate")
    errors = [p for p in P4Target().refusals(prog) if p.severity == "error"]
    assert len(errors) == 1 and "'truncate'" in errors[0].message and "rename" in (errors[0].hint or "")


def test_refuses_names_colliding_with_header_types(tmp_path: Path) -> None:
    prog = _program(tmp_path, table="eth_t")
    errors = [p.message for p in P4Target().refusals(prog) if p.severity == "error"]
    assert errors == ["the table name 'eth_t' collides with the P4 header type 'eth_t'"]


def test_refuses_checksums_on_stacks(tmp_path: Path) -> None:
    prog = _program(tmp_path, instances="instances: {tag: {type: tag, stack: 2}}",
                    tag_extra="checksum: {field: tci, kind: ipv4_header}")
    assert not [p for p in P4Target().refusals(prog) if p.severity == "error"]  # declared but never used
    path = tmp_path / "tiny.yaml"
    path.write_text(path.read_text().replace("      extract: tag\n", "      extract: tag\n      verify: [tag]\n"))
    prog = load_program(str(path)).program
    assert prog is not None
    errors = [p.message for p in P4Target().refusals(prog) if p.severity == "error"]
    assert errors == ["target 'p4' cannot verify or update the checksum of the header stack 'tag'"]


def test_refuses_bad_cpu_port(tmp_path: Path) -> None:
    prog = _program(tmp_path)
    assert any("CPU port" in p.message for p in P4Target(cpu_port=511).refusals(prog))
    assert not [p for p in P4Target(cpu_port=64).refusals(prog) if p.severity == "error"]


def test_build_without_p4c_writes_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    prog = _program(tmp_path)
    result = P4Target().build(prog, tmp_path / "out")
    assert set(result.files) == {"tiny.p4", "tiny.entries.json"}
    assert any("p4c-bm2-ss not found" in n for n in result.notes)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_compile_with_p4c(path: Path, tmp_path: Path) -> None:
    need_p4()
    prog = load_program(str(path)).program
    assert prog is not None
    src = tmp_path / f"{prog.name}.p4"
    src.write_text(P4Target().render(prog)[f"{prog.name}.p4"])
    proc = subprocess.run(compile_command("p4c-bm2-ss", src, tmp_path / "out.json"), capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr


def test_warns_when_parser_error_frames_would_not_leave_unchanged(tmp_path: Path) -> None:
    from targets.p4.emitter import warnings

    prog = _program(tmp_path)
    assert warnings(prog) == []
    # The front end refuses such a `deparse` today; the target keeps its own check for IRs made otherwise.
    prog.deparse = ["eth"]
    found = [p.message for p in warnings(prog)]
    assert len(found) == 1 and "'tag'" in found[0] and "unchanged" in found[0]
    assert not [p for p in P4Target().refusals(prog) if p.severity == "error"]
    notes = P4Target().build(prog, tmp_path / "out").notes
    assert any("unchanged" in n for n in notes)


def test_target_and_driver_declare_the_same_features() -> None:
    from c3po_compiler.features import FEATURES

    assert P4Target.supports == P4Driver.supports
    assert P4Target.supports <= set(FEATURES)
