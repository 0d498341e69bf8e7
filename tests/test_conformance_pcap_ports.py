"""The pcap export's per-port files (`NAME.ports/`): BMv2's pcap mode names, the reference's results per port,
and a replay on `simple_switch --use-files` whose output files equal the expected ones."""

from __future__ import annotations

import dataclasses
import re
import socket
import struct
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest
from scapy.layers.l2 import Dot3, Ether
from scapy.utils import rdpcap

from c3po_compiler import ir, load_program
from c3po_compiler.cli import main as c3po_main
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, Expected, PacketIn, Vector
from conformance.pcap import (
    CPU_PORT,
    compare_ports,
    egress_port,
    expected_path,
    ports_path,
    read_pcap,
    write_pcap,
)
from conformance.pcap import main as pcap_main
from conformance.vector_io import VectorFileError, save_vectors
from targets.p4 import P4Target
from targets.p4.emitter import DEFAULT_CPU_PORT

from .conftest import EXAMPLES, ROOT, need_p4

ROUTER = ROOT / "spec" / "examples" / "router.yaml"
SELECT_TUPLE = ROOT / "conformance" / "suite" / "select_tuple.yaml"
REFLECT = ROOT / "conformance" / "suite" / "action_reflect.yaml"


@cache
def program(spec: Path) -> ir.Program:
    return load_program(spec).program


@cache
def generated(spec: Path) -> tuple[Vector, ...]:
    return tuple(generate(program(spec), seed=1).vectors)


def spread(vectors: list[Vector], ports: int) -> list[Vector]:
    """The same frames entering on ports 0..ports-1 in turn, without expected results (the export asks the
    reference)."""
    return [dataclasses.replace(v, packets=[PacketIn(i % ports, pk.data) for pk in v.packets], expected=[])
            for i, v in enumerate(vectors)]


def reference_per_port(prog: ir.Program, vectors: list[Vector]) -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
    """What enters and what leaves on each port by the reference interpreter, in vector order; to_host is the
    P4 target's CPU port."""
    interp = Interpreter(prog)
    ins: dict[int, list[bytes]] = {}
    outs: dict[int, list[bytes]] = {}
    for v in vectors:
        interp.install(v.control)
        for pk, r in zip(v.packets, interp.run(v.packets, v.registers), strict=True):
            ins.setdefault(pk.port, []).append(pk.data)
            if r.verdict == "drop":
                continue
            port = {"to_host": DEFAULT_CPU_PORT, "reflect": pk.port}.get(r.verdict, r.port)
            assert port is not None
            outs.setdefault(port, []).append(r.data)
    return ins, outs


def scapy_frames(path: Path) -> list[bytes]:
    """The frames of a pcap file as scapy reads it: Ethernet (link type 1), every record whole. A frame whose
    EtherType is a length (under 0x0600, e.g. the all-zero key edge) is IEEE 802.3 to scapy, still Ethernet."""
    packets = rdpcap(str(path))
    assert all(isinstance(pkt, Ether | Dot3) for pkt in packets if len(pkt) >= 14)
    return [bytes(pkt) for pkt in packets]


def stamps(path: Path) -> list[int]:
    """The records' timestamps, in seconds."""
    return [int(pkt.time) for pkt in rdpcap(str(path))]


def test_cpu_port_is_the_p4_targets() -> None:
    assert CPU_PORT == DEFAULT_CPU_PORT


@pytest.mark.parametrize(("verdict", "port", "want"), [
    ("forward", 7, 7), ("reflect", 3, 3), ("to_host", None, DEFAULT_CPU_PORT), ("drop", None, None),
])
def test_egress_port(verdict: str, port: int | None, want: int | None) -> None:
    assert egress_port(PacketIn(3, b"x"), Expected(verdict, port, b"x")) == want


def test_export_writes_inputs_and_expected_frames_per_port(tmp_path: Path) -> None:
    """Generated vectors (expected given) and the same frames spread over ports 0..3 (expected from the
    reference), plus a reflecting program: every port's files hold the reference's frames, in order."""
    for spec, vectors in ((ROUTER, [*generated(ROUTER), *spread(list(generated(ROUTER)), 4)]),
                          (REFLECT, spread(list(generated(REFLECT)), 3))):
        prog = program(spec)
        path = tmp_path / f"{prog.name}.pcap"
        save_vectors(path, vectors, prog)
        assert any(not v.expected for v in vectors), "the caller's vectors are left without expected results"
        ins, outs = reference_per_port(prog, vectors)
        directory = ports_path(path)
        assert directory == tmp_path / f"{prog.name}.ports"
        names = {f"{p}_in.pcap" for p in ins.keys() | outs.keys()} | {f"{p}_expected.pcap" for p in outs}
        assert {f.name for f in directory.iterdir()} == names
        for port in ins.keys() | outs.keys():
            assert scapy_frames(directory / f"{port}_in.pcap") == ins.get(port, [])
        for port, frames in outs.items():
            assert scapy_frames(directory / f"{port}_expected.pcap") == frames
        # The whole-export files are unchanged: every input, every frame sent, in vector order.
        assert read_pcap(path) == [pk.data for v in vectors for pk in v.packets]
        assert sorted(read_pcap(expected_path(path))) == sorted(f for frames in outs.values() for f in frames)
    # (a generated vector may set the table's default to nop: those frames go to the host, the CPU port)
    reflected = set(outs) - {DEFAULT_CPU_PORT}
    assert len(reflected) >= 2 and reflected <= set(ins), "action_reflect sends frames back where they came from"


def test_port_files_keep_the_exports_timestamps(tmp_path: Path) -> None:
    """A frame's timestamp is its input's index in the whole export, in the per-port files too: BMv2 merges the
    input files by timestamp, so it sees the frames in vector order."""
    prog = program(ROUTER)
    vectors = spread(list(generated(ROUTER)), 3)
    path = tmp_path / "r.pcap"
    save_vectors(path, vectors, prog)
    directory = ports_path(path)
    entered: dict[int, list[int]] = {}
    for n, pk in enumerate(pk for v in vectors for pk in v.packets):
        entered.setdefault(pk.port, []).append(n)
    assert sorted(entered) == [0, 1, 2]
    for p, want in entered.items():
        assert stamps(directory / f"{p}_in.pcap") == want
    sent = sorted(n for f in directory.glob("*_expected.pcap") for n in stamps(f))
    assert sent == stamps(expected_path(path))
    assert stamps(directory / f"{DEFAULT_CPU_PORT}_in.pcap") == [], "an output-only port gets an empty input file"


def test_export_replaces_an_earlier_one(tmp_path: Path) -> None:
    prog = program(ROUTER)
    path = tmp_path / "r.pcap"
    save_vectors(path, spread(list(generated(ROUTER)), 4), prog)
    directory = ports_path(path)
    (directory / "3_out.pcap").write_bytes(b"")
    (directory / "notes.txt").write_text("mine")
    save_vectors(path, spread(list(generated(ROUTER)), 1), prog)
    assert not (directory / "3_in.pcap").exists() and not (directory / "3_out.pcap").exists()
    assert (directory / "0_in.pcap").exists() and (directory / "notes.txt").read_text() == "mine"


def test_convert_command_and_oracle_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`c3po conformance convert SPEC IN -o OUT.pcap`: vectors without expected results (a pcap input) get the
    reference's; a vector the reference cannot run is one line, not a traceback."""
    prog = program(ROUTER)
    raw = tmp_path / "raw.pcap"
    write_pcap(raw, [(0, pk.data) for v in generated(ROUTER) for pk in v.packets])
    out = tmp_path / "out.pcap"
    assert c3po_main(["conformance", "convert", str(ROUTER), str(raw), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    vectors = [dataclasses.replace(v, packets=[PacketIn(0, pk.data) for pk in v.packets], control=ControlState())
               for v in generated(ROUTER)]
    ins, outs = reference_per_port(prog, vectors)
    assert read_pcap(ports_path(out) / "0_in.pcap") == ins[0]
    assert {p: read_pcap(ports_path(out) / f"{p}_expected.pcap") for p in outs} == outs
    bad = dataclasses.replace(generated(ROUTER)[0], expected=[],
                              control=ControlState(defaults=(("routes_v4", "no_such_action", ()),)))
    with pytest.raises(VectorFileError, match=r"bad\.pcap: vector '.*': no expected frames"):
        save_vectors(tmp_path / "bad.pcap", [bad], prog)


def _bmv2_out(path: Path, frames: list[bytes]) -> None:
    """A file as BMv2 writes it: link type 0, or nothing at all when nothing was sent."""
    if not frames:
        path.write_bytes(b"")
        return
    blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0, 0)
    path.write_bytes(blob + b"".join(struct.pack("<IIII", 9, 9, len(f), len(f)) + f for f in frames))


def test_compare_ports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = program(ROUTER)
    vectors = spread(list(generated(ROUTER)), 2)
    path = tmp_path / "r.pcap"
    save_vectors(path, vectors, prog)
    directory = ports_path(path)
    _, outs = reference_per_port(prog, vectors)
    ports = {int(f.name.split("_")[0]) for f in directory.glob("*_in.pcap")}
    assert "no 0_out.pcap" in compare_ports(directory)[0]
    for p in ports:
        _bmv2_out(directory / f"{p}_out.pcap", outs.get(p, []))
    assert compare_ports(directory) == []
    assert pcap_main([str(directory)]) == 0
    assert "every port sent the expected frames" in capsys.readouterr().out
    busy = max(outs, key=lambda p: len(outs[p]))
    _bmv2_out(directory / f"{busy}_out.pcap", [outs[busy][0] + b"\x00", *outs[busy][2:]])
    problems = compare_ports(directory)
    assert len(problems) == 2 and problems[0].startswith(f"port {busy}: frame 0 (the first to differ)")
    assert problems[1] == f"port {busy}: {len(outs[busy])} frame(s) expected, {len(outs[busy]) - 1} sent"
    assert pcap_main([str(directory)]) == 1
    assert pcap_main([str(tmp_path / "missing")]) == 1
    capsys.readouterr()


# End to end: BMv2 in pcap mode on the exported per-port input files.

_OUTCOME = re.compile(r"\[(\d+)\.0\] \[cxt \d+\] (?:Transmitting packet of size \d+ out of port \d+|Dropping packet)")


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay(bmv2_json: Path, directory: Path, log: Path, timeout: float = 30) -> None:
    """`simple_switch --use-files 0 -i P@P ...` in the ports directory, one interface per `P_in.pcap`, until
    the log has an outcome for every input frame and the output files hold at least the expected frames."""
    ports = sorted(int(f.name.split("_")[0]) for f in directory.glob("*_in.pcap"))
    total = sum(len(read_pcap(directory / f"{p}_in.pcap")) for p in ports)
    want = {p: len(read_pcap(directory / f"{p}_expected.pcap")) for p in ports
            if (directory / f"{p}_expected.pcap").exists()}
    cmd = ["simple_switch", "--use-files", "0", "--thrift-port", str(_free_tcp_port()),
           "--notifications-addr", f"ipc://{log.parent}/notifications.ipc", "--log-file", str(log), "--log-flush"]
    for p in ports:
        cmd += ["-i", f"{p}@{p}"]
    proc = subprocess.Popen([*cmd, str(bmv2_json)], cwd=directory, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    logfile = log.with_name(log.name + ".txt")
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, "simple_switch exited"
            time.sleep(0.1)
            text = logfile.read_text(encoding="utf-8", errors="replace") if logfile.exists() else ""
            done = len({m for m in _OUTCOME.findall(text)})
            sent = {p: len(read_pcap(directory / f"{p}_out.pcap", bmv2=True)) for p in want
                    if (directory / f"{p}_out.pcap").exists()}
            if done >= total and all(sent.get(p, 0) >= n for p, n in want.items()):
                break
            assert time.monotonic() < deadline, f"BMv2 finished {done} of {total} frames, sent {sent} of {want}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("spec", [ROUTER, SELECT_TUPLE], ids=lambda p: p.stem)
def test_bmv2_pcap_mode_sends_the_expected_frames(tmp_path: Path, spec: Path) -> None:
    """The vectors that need no control plane (empty tables, no registers), their frames spread over three
    ports: BMv2's `<port>_out.pcap` are the export's `<port>_expected.pcap`, frame for frame."""
    need_p4()
    assert spec == SELECT_TUPLE or spec in EXAMPLES
    prog = program(spec)
    vectors = spread([v for v in generated(spec) if v.control == ControlState() and not v.registers], 3)
    assert len(vectors) >= 5
    build = P4Target().build(prog, tmp_path / "p4")
    assert "bmv2_json" in build.files, build.notes
    path = tmp_path / f"{prog.name}.pcap"
    save_vectors(path, vectors, prog)
    directory = ports_path(path)
    replay(Path(build.files["bmv2_json"]), directory, tmp_path / "switch")
    _, outs = reference_per_port(prog, vectors)
    assert outs, "the replay should send something"
    for f in directory.glob("*_in.pcap"):
        port = int(f.name.split("_")[0])
        assert read_pcap(directory / f"{port}_out.pcap", bmv2=True) == outs.get(port, []), f"port {port}"
    assert compare_ports(directory) == []
