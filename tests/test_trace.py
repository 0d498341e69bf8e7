"""`c3po trace`: the explanation of one packet follows the reference interpreter step by step, and a target's
result is compared with it (agreement, or the first point of difference)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from conformance.driver import load_driver_class
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, PacketIn, Result
from conformance.trace_cli import explain, first_difference, main_for_tests, trace_lines
from conformance.vectors import control_to_data

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
ROUTER = ROOT / "spec" / "examples" / "router.yaml"

SMALL = """\
c3po: 1
program: small
include:
  - {protocols}/ethernet.yaml
  - {protocols}/ipv4.yaml
metadata:
  egress: 16
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {{"0x0800": ipv4}}
      default: accept
    ipv4:
      extract: ipv4
counters: {{seen: {{size: 4}}}}
tables:
  routes:
    key: {{ipv4.dst: lpm}}
    actions: [set_out, drop]
    default: drop
actions:
  set_out:
    params: {{port: 16}}
    do:
      - meta.egress = port
control:
  - if: "valid(ipv4)"
    then:
      - apply: routes
      - ipv4.ttl = ipv4.ttl - 1
      - count(seen, 1)
      - forward(meta.egress)
    else: [to_host]
"""

ETH = "020000000002" + "020000000001"
IPV4 = "4500001c0001000040110000" + "c0a80001" + "0a010203"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("trace")
    spec = d / "small.yaml"
    spec.write_text(SMALL.format(protocols=ROOT / "spec" / "protocols"))
    (d / "entries.yaml").write_text(
        "entries:\n  - {table: routes, match: {ipv4.dst: 10.0.0.0/8}, action: set_out(7)}\n")
    return spec


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_traces_to_the_reference_verdict(spec: Path) -> None:
    prog = load_program(str(spec)).program
    vectors = generate(prog, seed=0).vectors
    chosen = [v for v in vectors if v.packets][:: max(1, len(vectors) // 4)]
    for v in chosen:
        want = Interpreter(prog)
        want.install(v.control)
        ref = want.run(v.packets[:1], v.registers)[0]
        got, events = explain(prog, v.packets[0], v.control)
        assert (got.verdict, got.port, got.data) == (ref.verdict, ref.port, ref.data), v.name
        assert events, v.name
        lines = trace_lines(v.packets[0], got, events)
        assert any(line.startswith(f"result: {ref.verdict}") for line in lines), v.name


def test_each_kind_of_step_line_by_line(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = small.parent / "entries.yaml"
    ipv4 = ETH + "0800" + IPV4
    assert main_for_tests([str(small), "--packet", ipv4, "--port", "3", "--entries", str(entries)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "packet: 34 bytes on port 3",
        f"  {ipv4}",
        "extract ethernet at offset 0: dst=02:00:00:00:00:02, src=02:00:00:00:00:01, ethertype=2048",
        "state ethernet: select (0x800) -> case 0 -> ipv4",
        "extract ipv4 at offset 14: version=4, ihl=5, dscp=0, ecn=0, total_len=28, identification=1, "
        "flags=0, frag_offset=0, ttl=64, protocol=17, checksum=0, src=192.168.0.1, dst=10.1.2.3",
        "table routes key ipv4.dst=10.1.2.3: hit ipv4.dst=10.0.0.0/8 -> set_out port=7",
        "meta.egress = 7",
        "ipv4.ttl = 63",
        "count seen[1]",
        "verdict forward port 7",
        "counter seen[1] = 1 packets, 34 bytes",
        "result: forward port 7",
        f"output: {ETH}0800{IPV4[:16]}3f{IPV4[18:]}",
        "        " + "  " * 22 + "^^",
    ]
    # a miss: the default action, with no entries installed
    assert main_for_tests([str(small), "--packet", ipv4]) == 0
    out = capsys.readouterr().out
    assert "table routes key ipv4.dst=10.1.2.3: miss -> default drop" in out
    # the default's drop, then the control's own forward: the last verdict is the one that counts
    verdicts = [line for line in out.splitlines() if line.startswith(("verdict", "result"))]
    assert verdicts == ["verdict drop", "verdict forward port 0", "result: forward port 0"]
    # the select's default, and the control's else branch
    arp = ETH + "0806" + "00" * 28
    assert main_for_tests([str(small), "--packet", arp, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds == ["extract", "select", "verdict"]
    assert doc["events"][1]["case"] is None and doc["events"][1]["next"] == "accept"
    assert "-> default -> accept" in doc["events"][1]["text"]
    assert doc["result"] == {"verdict": "to_host", "port": None, "data": arp, "counters": []}


def _router_forward() -> tuple[ir.Program, PacketIn, ControlState]:
    prog = load_program(str(ROUTER)).program
    v = next(v for v in generate(prog, seed=0).vectors
             if v.expected and v.expected[0].verdict == "forward" and v.control.entries)
    return prog, v.packets[0], v.control


@pytest.mark.parametrize("target", ["xdp", "nic"])
def test_target_agrees_on_the_router(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    why = load_driver_class(target).unavailable()
    if why is not None:
        pytest.skip(why)
    prog, packet, control = _router_forward()
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps(control_to_data(control, prog)))
    argv = [str(ROUTER), "--packet", packet.data.hex(), "--port", str(packet.port), "--entries", str(entries),
            "--target", target]
    assert main_for_tests(argv) == 0
    out = capsys.readouterr().out
    assert f"target {target}: agrees" in out
    assert "result: forward port" in out


def test_a_differing_result_names_the_first_difference() -> None:
    prog, packet, control = _router_forward()
    ref, _ = explain(prog, packet, control)
    assert first_difference(prog, ref, ref) == []
    changed = bytearray(ref.data)
    changed[22] ^= 0x01  # ipv4.ttl: byte 8 of the IPv4 header at offset 14
    bad = Result(ref.verdict, ref.port, bytes(changed), dict(ref.counters))
    diff = first_difference(prog, ref, bad)
    assert diff[0] == "first difference: byte 22 (ipv4.ttl)"
    other_port = Result(ref.verdict, (ref.port or 0) + 1, ref.data, dict(ref.counters))
    assert first_difference(prog, ref, other_port)[0].startswith("first difference: port")
    dropped = Result("drop", None, b"", dict(ref.counters))
    diff = first_difference(prog, ref, dropped)
    assert diff[0] == "first difference: verdict (reference forward, target drop)"
    assert not any("(absent)" in line for line in diff)  # a dropped frame is one line, not every field


def test_the_report_gives_each_fail_its_trace_command() -> None:
    from conformance.reports import trace_commands
    from conformance.runner import VectorOutcome

    fail = VectorOutcome("xdp", "v1", "FAIL", packets=["port 2: 0a0b"])
    assert trace_commands("spec/examples/router.yaml", fail) == [
        "c3po trace spec/examples/router.yaml --packet 0a0b --port 2 --target xdp"
        " [--entries FILE: the vector's control: state]"]
    assert trace_commands("x.yaml", VectorOutcome("xdp", "v1", "PASS", packets=["port 2: 0a0b"])) == []


def test_a_pcap_is_traced_frame_by_frame(small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.pcap import write_pcap

    frame = bytes.fromhex(ETH + "0800" + IPV4)
    write_pcap(tmp_path / "in.pcap", [(0, frame), (0, frame[:20])])
    assert main_for_tests([str(small), "--pcap", str(tmp_path / "in.pcap")]) == 0
    out = capsys.readouterr().out
    assert out.count("packet: ") == 2
    assert "packet: 20 bytes on port 0" in out
    assert "parser error: truncated\nresult: drop" in out  # an ipv4 header cut short: the parser's error
