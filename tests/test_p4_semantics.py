"""The generated P4 behaves like the reference interpreter on BMv2, and p4c compiles it without warnings.

These tests run `simple_switch` on pcap files (`--use-files`): no network namespace, veth or raw socket is
involved, so what they check is the generated program alone (the conformance driver adds its own packet I/O
on top). Every packet of one run enters on one port, so BMv2 handles them in order; the switch log says what
became of each (`Transmitting packet ... out of port P` or `Dropping packet`), and the k-th frame sent on
port P is the k-th record of `P_out.pcap`. Only programs whose vectors need no table entries or registers are
run here, with empty tables (each table's default action runs, in BMv2 and in the reference alike).
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.target_api import run_to_outputs
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import PacketIn
from conformance.pcap import write_pcap
from targets.p4 import P4Target, compile_command
from targets.p4.emitter import DEFAULT_CPU_PORT
from tests.conftest import EXAMPLES, ROOT, SUITE, need_p4

IN_PORT = 2
OUT_PORTS = [*range(8), DEFAULT_CPU_PORT]
BATCH = 60  # frames per switch run: fewer than an egress queue holds
_OUTCOME = re.compile(r"\[(\d+)\.0\] \[cxt \d+\] (?:Transmitting packet of size \d+ out of port (\d+)|Dropping packet)")

Outcome = tuple[int | None, bytes]  # (egress port or None for a drop, frame)


def compile_p4(prog: ir.Program, workdir: Path) -> tuple[Path, str]:
    """Render and compile with p4c-bm2-ss; returns the BMv2 JSON and p4c's warnings (stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"{prog.name}.p4"
    source.write_text(P4Target().render(prog)[f"{prog.name}.p4"], encoding="utf-8")
    out, p4info = workdir / f"{prog.name}.json", workdir / f"{prog.name}.p4info.txtpb"
    # the driver's command (the run's compile cache then compiles each program once for every p4 test)
    proc = run_to_outputs(compile_command("p4c-bm2-ss", source, out, p4info), [out, p4info], timeout=300)
    assert proc.returncode == 0, f"p4c-bm2-ss rejected {source}:\n{proc.stderr}"
    return out, proc.stderr


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_bmv2(bmv2_json: Path, frames: list[bytes], workdir: Path) -> list[Outcome]:
    """Every frame in on IN_PORT, in order; what left where (None: dropped). BMv2 drops what does not fit in an
    egress queue (64 packets) without a word in the log, and the file reader injects frames as fast as it reads
    them: so at most BATCH frames go through one switch."""
    out: list[Outcome] = []
    for i in range(0, len(frames), BATCH):
        out += _run_batch(bmv2_json, frames[i:i + BATCH], workdir / f"batch{i // BATCH}")
    return out


def _run_batch(bmv2_json: Path, frames: list[bytes], workdir: Path, timeout: float = 60) -> list[Outcome]:
    workdir.mkdir(parents=True, exist_ok=True)
    for port in OUT_PORTS:
        mine = frames if port == IN_PORT else []
        write_pcap(workdir / f"{port}_in.pcap", [(port, f) for f in mine], stamps=[0] * len(mine))
    cmd = ["simple_switch", "--use-files", "0", "--thrift-port", str(_free_tcp_port()),
           "--notifications-addr", f"ipc://{workdir}/notifications.ipc", "--log-file", str(workdir / "switch"),
           "--log-flush"]
    for port in OUT_PORTS:
        cmd += ["-i", f"{port}@{port}"]
    proc = subprocess.Popen([*cmd, str(bmv2_json)], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    logfile = workdir / "switch.txt"
    done: dict[int, int | None] = {}
    try:
        deadline = time.monotonic() + timeout
        while len(done) < len(frames):
            assert proc.poll() is None, "simple_switch exited"
            assert time.monotonic() < deadline, f"BMv2 finished {len(done)} of {len(frames)} frames"
            time.sleep(0.1)
            if logfile.exists():
                done = {int(m[0]): int(m[1]) if m[1] else None
                        for m in _OUTCOME.findall(logfile.read_text(encoding="utf-8", errors="replace"))}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    sent = {port: iter(_pcap_frames(workdir / f"{port}_out.pcap")) for port in OUT_PORTS}
    out: list[Outcome] = []
    for i in range(len(frames)):
        port = done[i]
        out.append((None, b"") if port is None else (port, next(sent[port])))
    return out


def _pcap_frames(path: Path) -> list[bytes]:
    """BMv2's output files: empty (no header) for a port that sent nothing, and link type 0, which
    conformance.pcap refuses; the records are plain little-endian pcap."""
    blob = path.read_bytes()
    frames, pos = [], 24
    while pos < len(blob):
        incl = struct.unpack("<I", blob[pos + 8:pos + 12])[0]
        frames.append(blob[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    return frames


def expected_outcomes(prog: ir.Program, frames: list[bytes]) -> list[Outcome]:
    """The reference's results as BMv2 shows them: where the frame left (the CPU port for to_host)."""
    interp = Interpreter(prog)
    out: list[Outcome] = []
    for frame in frames:
        r = interp.run([PacketIn(IN_PORT, frame)], {})[0]
        if r.verdict == "drop":
            out.append((None, b""))
        elif r.verdict == "to_host":
            out.append((DEFAULT_CPU_PORT, r.data))
        elif r.verdict == "reflect":
            out.append((IN_PORT, r.data))
        else:
            assert r.port is not None and r.port < DEFAULT_CPU_PORT, "forwarding to the CPU port and above drops"
            out.append((r.port, r.data))
    return out


def assert_same_as_reference(prog: ir.Program, frames: list[bytes], workdir: Path) -> None:
    bmv2_json, _ = compile_p4(prog, workdir)
    got = run_bmv2(bmv2_json, frames, workdir)
    want = expected_outcomes(prog, frames)
    diffs = [f"{f.hex()}: reference {w[0]} {w[1].hex()}, BMv2 {g[0]} {g[1].hex()}"
             for f, w, g in zip(frames, want, got, strict=True) if w != g]
    assert not diffs, f"{len(diffs)} of {len(frames)} frames differ:\n" + "\n".join(diffs[:10])


def _load_text(tmp_path: Path, text: str) -> ir.Program:
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("@PROTOCOLS@", str(ROOT / "spec" / "protocols")), encoding="utf-8")
    return load_program(str(path)).program


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_p4()
    if shutil.which("simple_switch") is None:
        pytest.skip("simple_switch is not installed")


# -- the suite programs whose conformance runs failed on BMv2 ------------------------------------------------------

# All table-free (or default-action-only) programs: every generated and fuzzed frame, on BMv2 exactly as in the
# reference. Failures the conformance driver showed here were its packet I/O (see docs/targets/p4.md), not the
# generated P4 — these runs have no veth in between.
SUITE_PROGRAMS = ["checksum_verify", "decap", "hash_crc16", "header_stack", "select_mask", "select_range",
                  "shift_and_slice", "varlen"]


@pytest.mark.parametrize("name", SUITE_PROGRAMS)
def test_suite_program_matches_reference(name: str, tmp_path: Path) -> None:
    prog = load_program(str(ROOT / "conformance" / "suite" / f"{name}.yaml")).program
    assert not prog.registers and not prog.counters
    vectors = generate(prog, seed=0, fuzz=120).vectors  # their frames; entries are not installed here
    frames = list(dict.fromkeys(pk.data for v in vectors for pk in v.packets))
    assert_same_as_reference(prog, frames, tmp_path)


def test_header_stack_two_tags_and_overflow(tmp_path: Path) -> None:
    """Two tags fill the stack; a third is stack_overflow (to_host here), and the frame leaves unchanged."""
    prog = load_program(str(ROOT / "conformance" / "suite" / "header_stack.yaml")).program
    eth = bytes.fromhex("020000000001020000000002")
    frames = [eth + bytes.fromhex("8100") + bytes.fromhex("2001" "0800") + bytes(20),
              eth + bytes.fromhex("8100") + bytes.fromhex("2001" "8100" "3002" "0800") + bytes(20),
              eth + bytes.fromhex("8100") + bytes.fromhex("2001" "8100" "3002" "8100" "4003" "0800") + bytes(20)]
    want = expected_outcomes(prog, frames)
    assert [w[0] for w in want] == [DEFAULT_CPU_PORT] * 3 and [w[1] for w in want] == frames
    assert_same_as_reference(prog, frames, tmp_path)


# -- shifts ----------------------------------------------------------------------------------------------------------

SHIFTS = """
c3po: 1
program: shifts
include: [@PROTOCOLS@/ethernet.yaml, @PROTOCOLS@/vlan.yaml]
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {"0x8100": vlan}
      default: accept
    vlan:
      extract: vlan
metadata: {s8: 8, s32: 32, a: 16, b: 48, w: 128}
control:
  - meta.s8 = ethernet.src[7:0]
  - meta.s32 = ethernet.src[31:0]
  - meta.a = ethernet.dst[15:0] << meta.s8
  - meta.b = ethernet.dst >> meta.s32
  - meta.w = ((bit<128>) ethernet.dst) << meta.s8
  - ethernet.dst = ((bit<48>) meta.a) ^ meta.b ^ meta.w[47:0] ^ ((bit<48>) (vlan.vid >> ethernet.ethertype))
  - ethernet.src = ((bit<48>) meta.w[127:112]) ^ ((bit<48>) (ethernet.ethertype[7:0] << 8)) ^ ((bit<48>) 1 << 47)
  - forward(1)
"""


def test_shift_amounts_of_any_width(tmp_path: Path) -> None:
    """Shift amounts wider than 8 bits (p4c's BMv2 back end refuses them) and amounts >= the width (0)."""
    prog = _load_text(tmp_path, SHIFTS)
    frames = []
    for low in (0, 1, 7, 8, 15, 16, 47, 48, 100, 127, 128, 200, 255):
        for amount in (low, 0x100 | low, 0xFFFFFF00 | low):
            src = bytes([0x02, low]) + amount.to_bytes(4, "big")
            for tail in (b"\x81\x00\x21\x23\x08\x00", b"\x08\x00"):
                frames.append(bytes.fromhex("0a1b2c3d4e5f") + src + tail + bytes(range(16)))
    assert_same_as_reference(prog, frames, tmp_path)


@pytest.mark.parametrize("spec", SUITE + EXAMPLES, ids=lambda p: p.stem)
def test_p4c_compiles_without_warnings(spec: Path, tmp_path: Path) -> None:
    """p4c used to warn "shifting value with 8 bits by 8" on shift_and_slice; a constant shift by >= the width
    is now written as 0, as the spec defines it. No suite program or example draws a p4c warning."""
    prog = load_program(str(spec)).program
    _, warnings = compile_p4(prog, tmp_path)
    assert "warning" not in warnings.lower(), warnings


# -- checksum verification -----------------------------------------------------------------------------------------


def _ones_sum(data: bytes) -> int:
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_verify_accepts_both_zeros(tmp_path: Path) -> None:
    """Where the other words of an IPv4 header sum to 0xffff, the spec accepts the checksum 0x0000 and 0xffff
    (the sum over the whole header is 0xffff either way); comparing csum16 of the other words with the field
    accepted only 0x0000."""
    prog = load_program(str(ROOT / "conformance" / "suite" / "checksum_verify.yaml")).program
    eth = bytes.fromhex("0200000000010200000000ff0800")
    frames = []
    for options in (b"", b"\x01\x01\x01\x00"):
        h = bytearray([0x45 + len(options) // 4, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
        h += options
        ident = next(i for i in range(1 << 16) if _ones_sum(bytes(h[:4]) + i.to_bytes(2, "big") + h[6:]) == 0xFFFF)
        h[4:6] = ident.to_bytes(2, "big")
        for checksum in (0x0000, 0xFFFF, 0x1234):
            h[10:12] = checksum.to_bytes(2, "big")
            frames.append(eth + bytes(h) + bytes(6))
    assert [port for port, _ in expected_outcomes(prog, frames)] == [1, 1, DEFAULT_CPU_PORT] * 2
    assert_same_as_reference(prog, frames, tmp_path)


# -- TLV areas -------------------------------------------------------------------------------------------------------

TLV_ERRORS = """
c3po: 1
program: tlv_errors
include: [@PROTOCOLS@/ethernet.yaml, @PROTOCOLS@/ipv4.yaml, @PROTOCOLS@/tcp.yaml]
parser:
  start: ethernet
  on_error: {default: drop, bad_length: to_host}
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {"0x0800": ipv4}
      default: accept
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {6: tcp}
      default: accept
    tcp:
      extract: tcp
control:
  - if: "valid(tcp.mss) && tcp.mss.value < 536"
    then: [drop]
    else: [forward(1)]
"""


def test_tlv_area_past_the_frame_is_truncated_before_a_bad_option(tmp_path: Path) -> None:
    """The spec checks that the whole TLV area is in the frame (`truncated`) before it walks the options
    (`bad_length` for a malformed one); the P4 walk used to meet the malformed option first. With `on_error`
    telling the two apart, the frames went to the host instead of being dropped."""
    prog = _load_text(tmp_path, TLV_ERRORS)
    head = bytes.fromhex("0200000000010200000000ff0800" "450000500001000040060000" "0a0000010a000002")
    frames = []
    for options in (bytes([2, 1, 0, 0]), bytes([2, 4, 5, 0xB4, 3, 50]), bytes([1, 1, 2, 4, 5, 0xB4, 0, 0]),
                    bytes([2, 4, 5, 0xB4, 9, 30]), bytes([2, 4, 5, 0xB4, 1, 1, 1, 1]), bytes([2, 4, 1, 0])):
        for data_offset in (6, 7, 8, 15):  # an options area of 4, 8, 12 and 40 bytes; the frame ends after them
            ports_seq_ack = bytes.fromhex("04d20050" "00000000" "00000000")
            frames.append(head + ports_seq_ack + bytes([data_offset << 4, 0x02]) + bytes(6) + options)
    outcomes = [port for port, _ in expected_outcomes(prog, frames)]
    assert None in outcomes and DEFAULT_CPU_PORT in outcomes and 1 in outcomes
    assert_same_as_reference(prog, frames, tmp_path)


# -- a select on a field of an absent optional group ------------------------------------------------------------------

ABSENT_GROUP = """
c3po: 1
program: absent_group
include: [@PROTOCOLS@/ethernet.yaml, @PROTOCOLS@/ipv4.yaml, @PROTOCOLS@/gre.yaml]
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {"0x0800": ipv4}
      default: accept
    ipv4:
      extract: ipv4
      select: ipv4.protocol
      cases: {47: gre}
      default: accept
    gre:
      extract: gre
      select: gre.key_
      cases: {7: reject}
      default: accept
control:
  - if: "valid(gre)"
    then: [forward(1)]
default_verdict: to_host
"""


def test_a_select_on_an_absent_group_reads_zero(tmp_path: Path) -> None:
    """`select: gre.key_` with K = 0 reads 0 (the spec's rule for an absent group); BMv2 read a stale header
    value instead (a keyed frame before a keyless one sent the second down the wrong path), and p4c warned that
    the field may be uninitialised. The selects now read a shadow local the group's extract state sets."""
    prog = _load_text(tmp_path, ABSENT_GROUP)
    _, warnings = compile_p4(prog, tmp_path)
    assert "uninitialized" not in warnings
    eth = bytes.fromhex("020000000001020000000002" "0800")

    def ipv4(payload: bytes) -> bytes:
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, 47, 0, bytes(4),
                                    bytes(4)))
        return bytes(hdr) + payload

    keyed = eth + ipv4(struct.pack("!HHI", 0x2000, 0x0800, 7) + bytes(20))
    keyless = eth + ipv4(struct.pack("!HH", 0x0000, 0x0800) + bytes(20))
    frames = [keyed, keyless, keyed, keyless]
    want = expected_outcomes(prog, frames)
    assert [w[0] for w in want] == [None, 1, None, 1]  # key 7: reject (dropped); no key: forwarded
    assert_same_as_reference(prog, frames, tmp_path)
