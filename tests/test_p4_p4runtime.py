"""The P4Runtime control plane (targets/p4/p4runtime_control.py) against a real BMv2 `simple_switch_grpc`.

One switch per module (`--no-p4`, no interfaces, gRPC on a unix socket); each test pushes its own compiled
program, installs states with every match kind and default changes, and reads them back over P4Runtime. One test
runs frames through a switch with veth ports in a network namespace to see the per-entry counters count the
entries that matched. Every entries.json of the examples and the suite is checked against the P4Info p4c writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import load_program
from c3po_compiler.expr import KeyElem
from c3po_compiler.target_api import run_to_outputs
from conformance.model import ControlState, EntryState
from targets.p4 import P4Target, compile_command
from targets.p4.entries import to_p4runtime
from tests.conftest import EXAMPLES, SUITE, need_p4

PROGRAMS = {p.stem: p for p in [*EXAMPLES, *SUITE]}


def _need_grpc_switch() -> None:
    need_p4()
    if shutil.which("simple_switch_grpc") is None:
        pytest.skip("BMv2 simple_switch_grpc (the P4Runtime server) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _switch(netns: str | None = None, ports: tuple[str, ...] = ()) -> Iterator[str]:
    """A `simple_switch_grpc --no-p4` serving P4Runtime on a unix socket; yields its grpc address and kills it
    (its whole process group) on the way out. Its Thrift port and notification socket are its own, so it can
    run next to other switches."""
    workdir = Path(tempfile.mkdtemp(prefix="c3po-p4rt-"))  # short: unix socket paths are at most 107 bytes
    sock = workdir / "grpc.sock"
    cmd = ["simple_switch_grpc", "--no-p4", "--thrift-port", str(_free_port()),
           "--notifications-addr", f"ipc://{workdir}/notifications.ipc", *ports,
           "--", "--grpc-server-addr", f"unix:{sock}"]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    with (workdir / "switch.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"unix:{sock}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def switch() -> Iterator[str]:
    _need_grpc_switch()
    with _switch() as addr:
        yield addr


_compiled: dict[str, tuple[dict[str, Any], Path, Path]] = {}


def compile_program(name: str, outdir: Path) -> tuple[dict[str, Any], Path, Path]:
    """(entries.json, P4Info, BMv2 JSON) of a spec example or suite program, compiled by p4c."""
    if name not in _compiled:
        prog = load_program(str(PROGRAMS[name])).program
        assert prog is not None
        outdir.mkdir(parents=True, exist_ok=True)
        files = P4Target().render(prog)
        for rel, text in files.items():
            (outdir / rel).write_text(text, encoding="utf-8")
        bmv2, p4info = outdir / f"{prog.name}.json", outdir / f"{prog.name}.p4info.txtpb"
        proc = run_to_outputs(compile_command("p4c-bm2-ss", outdir / f"{prog.name}.p4", bmv2, p4info),
                              [bmv2, p4info], timeout=600)
        assert proc.returncode == 0, proc.stderr
        _compiled[name] = (json.loads(files[f"{prog.name}.entries.json"]), p4info, bmv2)
    return _compiled[name]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("p4rt-build")


@contextlib.contextmanager
def session(addr: str, build_dir: Path, name: str) -> Iterator[Any]:
    from targets.p4.p4runtime_control import P4RuntimeControl

    desc, p4info, bmv2 = compile_program(name, build_dir / name)
    ctl = P4RuntimeControl(addr, p4info, bmv2, desc)
    try:
        ctl.connect()
        yield ctl
    finally:
        ctl.close()


def _canon(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def expected_state(desc: dict[str, Any], control: ControlState) -> list[str]:
    """What reading every entry and default back must give: `to_p4runtime`'s entries (a repeated match only
    once), and for every P4 table its default: the state's, or the program's."""
    items = to_p4runtime(desc, control)
    out, seen = [], set()
    for i in items:
        if i.get("is_default_action"):
            continue
        key = json.dumps([i["table"], i["match"], i.get("priority")], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(i)
    given = {i["table"]: i for i in items if i.get("is_default_action")}
    params = {a["name"]: a["params"] for a in desc["actions"]}
    for t in desc["tables"]:
        d = t["default_action"]
        for p4t in t["p4_tables"]:
            out.append(given.get(p4t) or {"table": p4t, "is_default_action": True, "action": {
                "name": d["name"], "params": [{"name": p["name"], "value": f"{v:#x}"}
                                              for p, v in zip(params[d["name"]], d["args"], strict=True)]}})
    return _canon(out)


def E(table: str, action: str, *match: KeyElem, args: tuple[int, ...] = (), priority: int = 0) -> EntryState:
    return EntryState(table, match, action, args, priority)


def V(a: int) -> KeyElem:
    return KeyElem("value", a)


IP = 0x0A000000  # 10.0.0.0
ANY = KeyElem("any")

# Per program: states installed one after the other; each must replace the previous one entirely.
STATES: dict[str, list[ControlState]] = {
    "router": [
        ControlState((
            E("routes_v4", "set_nexthop", KeyElem("prefix", IP | 0x010000, 16), args=(1,)),
            E("routes_v4", "set_nexthop", KeyElem("prefix", IP | 0x010203, 32), args=(2,)),
            E("routes_v4", "to_host", KeyElem("prefix", 0, 0)),  # /0: every key field left out
            E("routes_v6", "set_nexthop", KeyElem("prefix", 0x2001_0db8 << 96, 32), args=(3,)),
            E("nexthops", "next_hop", V(1), args=(4, 0x0200_0000_0001, 0xFFFF_FFFF_FFFF)),
            E("nexthops", "next_hop", V(2), args=(0, 0, 0)),
            E("nexthops", "to_host", V(1)),  # same key as an earlier entry: not sent, the first one wins
            E("router_mac", "nop", V(0x0200_0000_00FE)),
        ), (("nexthops", "next_hop", (7, 1, 2)), ("routes_v4", "to_host", ()))),
        ControlState((E("nexthops", "to_host", V(0xFFFF)),), (("routes_v6", "set_nexthop", (9,)),)),
        ControlState(),
    ],
    "match_ternary": [
        ControlState((
            E("t", "forward", KeyElem("mask", 0x0A000001, 0xFF0000FF), KeyElem("mask", 6, 0xFF), args=(3,),
              priority=5),
            E("t", "drop", ANY, KeyElem("mask", 0x10, 0xF0), priority=5),  # tie: install order decides
            E("t", "to_host", ANY, ANY, priority=1),  # every field a wildcard
            E("t", "forward", KeyElem("mask", 0xC0A80000, 0xFFFF0000), ANY, args=(1,), priority=9),
        ), (("t", "forward", (2,)),)),
        ControlState((E("t", "drop", KeyElem("mask", 0xFFFFFFFF, 0xFFFFFFFF), ANY, priority=3),)),
    ],
    "match_range": [
        ControlState((
            E("t", "forward", KeyElem("range", 53, 53), args=(1,), priority=2),
            E("t", "drop", KeyElem("range", 0, 0xFFFF), priority=1),  # full range: left out
            E("t", "to_host", KeyElem("range", 0x8000, 0xFFFF), priority=2),
        ), (("t", "drop", ()),)),
        ControlState((E("t", "forward", KeyElem("range", 7, 9), args=(0xFFFF,)),)),
    ],
    "match_lpm": [
        ControlState((
            E("t", "forward", KeyElem("prefix", 0xC0A80100, 24), args=(5,)),
            E("t", "drop", KeyElem("prefix", 0x0A010203, 32)),
        ), (("t", "forward", (0,)),)),
    ],
    "match_mixed": [
        ControlState((
            E("t", "forward", V(17), KeyElem("mask", 0x0A000000, 0xFF000000), KeyElem("range", 1000, 2000),
              args=(1,), priority=1),
            E("t", "drop", V(6), ANY, ANY, priority=1),
            E("t", "to_host", V(17), ANY, KeyElem("range", 5, 5), priority=4),
        ),),
    ],
    "const_entries": [  # a default with an argument, changed and then restored
        ControlState((E("t", "forward", V(0x0806), args=(2,)),), (("t", "forward", (3,)),)),
        ControlState(),
    ],
    "table_counters": [
        ControlState((E("t", "forward", V(0x0200_0000_0001), args=(1,)), E("t", "drop", V(2)))),
    ],
}


@pytest.mark.parametrize("name", sorted(STATES))
def test_install_replaces_entries_and_defaults_and_reads_back(switch: str, build_dir: Path, name: str) -> None:
    need_p4()
    with session(switch, build_dir, name) as ctl:
        for control in STATES[name]:
            ctl.install(control)
            assert _canon(ctl.read_entries()) == expected_state(ctl.desc, control)


def test_every_match_kind_is_exercised() -> None:
    need_p4()
    kinds = {m.kind for states in STATES.values() for c in states for e in c.entries for m in e.match}
    assert kinds == {"value", "prefix", "mask", "range", "any"}


def test_repeated_install_is_fast(switch: str, build_dir: Path) -> None:
    need_p4()
    from targets.p4.p4runtime_control import P4RuntimeControl

    desc, p4info, bmv2 = compile_program("router", build_dir / "router")
    t0 = time.monotonic()
    with P4RuntimeControl(switch, p4info, bmv2, desc) as ctl:
        ctl.connect()
        connected = time.monotonic() - t0
        state = ControlState(tuple(E("routes_v4", "set_nexthop", KeyElem("prefix", IP | i << 8, 24), args=(i,))
                                   for i in range(40))
                             + tuple(E("nexthops", "next_hop", V(i), args=(i, i, i)) for i in range(10)))
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            ctl.install(state)
            times.append(time.monotonic() - t0)
        assert _canon(ctl.read_entries()) == expected_state(ctl.desc, state)
        t0 = time.monotonic()
        assert ctl.read_table_counters() == {}
        read = time.monotonic() - t0
        t0 = time.monotonic()
        ctl.reset_table_counters()
        reset = time.monotonic() - t0
    print(f"connect+pipeline {connected:.3f}s, install of 50 entries (60 with copies, 7 constant) "
          f"{min(times):.3f}s (max {max(times):.3f}s), counter read {read:.4f}s, reset {reset:.4f}s")
    assert max(times) < 1.0


def test_a_refused_entry_is_reported_with_its_place(switch: str, build_dir: Path) -> None:
    need_p4()
    with session(switch, build_dir, "router") as ctl:
        # `nop` is default-only in routes_v4: the switch refuses that one update of the batch.
        bad = ControlState((E("routes_v4", "to_host", KeyElem("prefix", IP, 8)),
                            E("routes_v4", "nop", KeyElem("prefix", IP, 16))))
        with pytest.raises(RuntimeError, match=r"1 of \d+ updates failed: entry 5 of routes_v4 \(nop"):
            ctl.install(bad)


def _write_counters(ctl: Any, control: ControlState, values: dict[tuple[str, int], tuple[int, int]]) -> None:
    """Set counters over P4Runtime as traffic would: (P4 table, exact key value) the direct counter of the
    installed entry with that key, (P4 table, -1) its miss counter."""
    from p4.v1 import p4runtime_pb2

    updates = []
    for (p4t, which), (packets, nbytes) in values.items():
        data = p4runtime_pb2.CounterData(packet_count=packets, byte_count=nbytes)
        if which == -1:
            cid = ctl._counters[f"{p4t}__miss"].preamble.id
            entity = p4runtime_pb2.Entity(counter_entry=p4runtime_pb2.CounterEntry(
                counter_id=cid, index=p4runtime_pb2.Index(index=0), data=data))
        else:
            item = next(i for i in to_p4runtime(ctl.desc, control)
                        if i["table"] == p4t and not i.get("is_default_action") and i["match"][0]["exact"]["value"]
                        == f"{which:#x}")
            te = ctl._table_entry({k: v for k, v in item.items() if k != "action"})
            entity = p4runtime_pb2.Entity(direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
                table_entry=te, data=data))
        updates.append(p4runtime_pb2.Update(type=p4runtime_pb2.Update.MODIFY, entity=entity))
    ctl._write(updates, [str(k) for k in values])


COUNTED = ControlState((
    E("routes_v4", "to_host", KeyElem("prefix", IP, 8)),
    E("nexthops", "next_hop", V(5), args=(1, 2, 3)),
    E("nexthops", "to_host", V(6)),
    E("nexthops", "next_hop", V(7), args=(1, 2, 3)),
))


def test_table_counters_sum_copies_map_to_entry_indices_and_reset(switch: str, build_dir: Path) -> None:
    need_p4()
    with session(switch, build_dir, "router") as ctl:
        ctl.install(COUNTED)
        assert ctl.read_table_counters() == {}
        # nexthops is applied from two places: two P4 tables whose counters add up; index = the entry's
        # position among nexthops' entries (meta.nexthop 5, 6, 7 -> 0, 1, 2).
        _write_counters(ctl, COUNTED, {("nexthops", 6): (2, 120), ("nexthops__2", 6): (1, 64),
                              ("nexthops__2", 7): (4, 400), ("nexthops", -1): (3, 180),
                              ("nexthops__2", -1): (1, 70)})
        assert ctl.read_table_counters() == {("table.nexthops", 1): (3, 184), ("table.nexthops", 2): (4, 400),
                                             ("table.nexthops", -1): (4, 250)}
        ctl.reset_table_counters()
        assert ctl.read_table_counters() == {}
        # A new install starts the entries' counters from zero, whatever they held.
        _write_counters(ctl, COUNTED, {("nexthops", 5): (1, 1)})
        assert ctl.read_table_counters() == {("table.nexthops", 0): (1, 1)}
        ctl.install(COUNTED)
        assert ctl.read_table_counters() == {}


def test_check_entries_against_p4info_reports_mismatches(build_dir: Path) -> None:
    need_p4()
    from targets.p4.p4runtime_control import P4RuntimeControl, check_entries_against_p4info

    desc, p4info, bmv2 = compile_program("router", build_dir / "router")
    assert check_entries_against_p4info(desc, p4info) == []
    bad = json.loads(json.dumps(desc))
    tables = {t["name"]: t for t in bad["tables"]}
    tables["routes_v4"]["keys"][0]["bitwidth"] = 16
    tables["routes_v6"]["keys"][0]["match_kind"] = "ternary"
    tables["router_mac"]["p4_tables"].append("router_mac__2")
    tables["router_mac"]["counters"] = True
    tables["nexthops"]["keys"][0]["name"] = "meta.next_hop"
    tables["nexthops"]["actions"].append("nop")
    next(a for a in bad["actions"] if a["name"] == "next_hop")["params"][2]["bitwidth"] = 32
    bad["actions"].append({"name": "teleport", "params": []})
    problems = "\n".join(check_entries_against_p4info(bad, p4info))
    for text in ["table 'routes_v4': key field 'ipv4.dst' is bit<16> in entries.json, bit<32> in the P4Info",
                 "table 'routes_v6': key field 'ipv6.dst' is ternary in entries.json, LPM in the P4Info",
                 "table 'router_mac__2' (spec table 'router_mac') is not in the P4Info",
                 "table 'router_mac': no direct counter router_mac__counter",
                 "table 'nexthops': key field 'meta.next_hop' is not in the P4Info",
                 "table 'nexthops': P4Info key field 'meta.nexthop' is not in entries.json",
                 "table 'nexthops': action 'nop' is default-only in the P4Info",
                 "action 'next_hop': parameters", "action 'teleport' is not in the P4Info"]:
        assert text in problems
    with pytest.raises(ValueError, match="does not match the P4Info"):
        P4RuntimeControl("unix:/nonexistent", p4info, bmv2, bad)


@pytest.mark.parametrize("path", [*EXAMPLES, *SUITE], ids=lambda p: p.stem)
def test_entries_json_resolves_in_p4info(path: Path, build_dir: Path) -> None:
    need_p4()
    from targets.p4.p4runtime_control import check_entries_against_p4info

    desc, p4info, _ = compile_program(path.stem, build_dir / path.stem)
    assert check_entries_against_p4info(desc, p4info) == []


def test_registers_are_not_available_over_p4runtime(switch: str, build_dir: Path) -> None:
    """BMv2's P4Runtime server does not implement register reads and writes (the module docstring says so
    and the driver uses Thrift for them); if this starts failing, BMv2 learnt them."""
    need_p4()
    from p4.v1 import p4runtime_pb2

    with session(switch, build_dir, "registers") as ctl:
        rid = ctl.info.registers[0].preamble.id
        entity = p4runtime_pb2.Entity(register_entry=p4runtime_pb2.RegisterEntry(
            register_id=rid, index=p4runtime_pb2.Index(index=0)))
        with pytest.raises(RuntimeError, match="UNIMPLEMENTED"):
            ctl._read([entity])
        entity.register_entry.data.bitstring = b"\x01"
        with pytest.raises(RuntimeError, match="Register writes are not supported"):
            ctl._write([p4runtime_pb2.Update(type=p4runtime_pb2.Update.MODIFY, entity=entity)], ["register"])


def test_connect_without_a_server_fails_cleanly(monkeypatch: pytest.MonkeyPatch, build_dir: Path,
                                                tmp_path: Path) -> None:
    need_p4()
    from targets.p4 import p4runtime_control
    from targets.p4.p4runtime_control import P4RuntimeControl

    monkeypatch.setattr(p4runtime_control, "CONNECT_TIMEOUT", 0.5)
    desc, p4info, bmv2 = compile_program("table_counters", build_dir / "table_counters")
    ctl = P4RuntimeControl(f"unix:{tmp_path}/none.sock", p4info, bmv2, desc)
    with pytest.raises(ConnectionError, match="no P4Runtime server"):
        ctl.connect()
    with pytest.raises(RuntimeError, match="not connected"):
        ctl.install(ControlState())
    ctl.close()


SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for f in sys.argv[2:]:
    s.send(bytes.fromhex(f))
"""


def test_counters_count_the_frames_that_matched(build_dir: Path) -> None:
    """Real frames through a switch with veth ports: the direct counter of the entry that matched and the
    miss counter count them; the switch runs in its own network namespace, P4Runtime reaches it by a unix
    socket."""
    _need_grpc_switch()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (a network namespace with veth pairs)")
    ns = f"c3po-p4rt-{os.getpid()}"
    run = [["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"]]
    for p in (0, 1):
        run += [["ip", "-n", ns, "link", "add", f"sw{p}", "type", "veth", "peer", "name", f"tp{p}"],
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.tp{p}.disable_ipv6=1"],
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.sw{p}.disable_ipv6=1"],
                ["ip", "-n", ns, "link", "set", f"sw{p}", "up"], ["ip", "-n", ns, "link", "set", f"tp{p}", "up"]]
    try:
        for cmd in run:
            subprocess.run(cmd, check=True, capture_output=True)
        with _switch(ns, ("-i", "0@sw0", "-i", "1@sw1")) as addr, session(addr, build_dir, "table_counters") as ctl:
            a, b = 0x0200_0000_0001, 0x0200_0000_0002
            ctl.install(ControlState((E("t", "drop", V(a)), E("t", "forward", V(b), args=(1,)))))

            def send(*dsts: int) -> None:
                """60-byte frames to each MAC in `dsts`, into port 0 (sent from the test side of its veth)."""
                frames = [(d.to_bytes(6, "big") + bytes.fromhex("020000000099") + b"\x88\xb5" + bytes(46)).hex()
                          for d in dsts]
                subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SEND, "tp0", *frames],
                               check=True, capture_output=True, timeout=30)

            def counters_become(want: dict[tuple[str, int], tuple[int, int]]) -> bool:
                deadline = time.monotonic() + 10  # the switch counts as it processes them, a little later
                while (got := ctl.read_table_counters()) != want and time.monotonic() < deadline:
                    time.sleep(0.05)
                return got == want

            send(b, b, a, 0x0200_0000_0003)  # entry 1 twice, entry 0 once, a miss
            assert counters_become({("table.t", 0): (1, 60), ("table.t", 1): (2, 120), ("table.t", -1): (1, 60)})
            ctl.reset_table_counters()
            assert ctl.read_table_counters() == {}
            send(b)
            assert counters_become({("table.t", 1): (1, 60)})
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
