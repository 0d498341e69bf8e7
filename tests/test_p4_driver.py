"""The P4 driver's pieces that need no BMv2 (availability, names, command lines, CLI output parsing, capture ->
Result), build-time refusals, and — where p4c and BMv2 are installed — compiling every example."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from targets.p4 import P4Target, compile_command
from targets.p4.driver import (
    P4Driver,
    cli_errors,
    counters_from_reads,
    namespace_name,
    netns_setup_commands,
    parse_counter_reads,
    parse_handles,
    parse_register_read,
    reset_commands,
    result_from_capture,
    state_read_commands,
    switch_command,
    veth_names,
)
from targets.p4.entries import describe
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
    cmd = switch_command(Path("/w/p.json"), [0, 1, 510], Path("/w/log"))
    assert cmd[0] == "simple_switch" and cmd[-1] == "/w/p.json"
    assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "-i"] == ["0@sw0", "1@sw1", "510@sw510"]
    setup = netns_setup_commands("ns1", [0, 510])
    assert setup[0] == ["ip", "netns", "add", "ns1"]
    assert ["ip", "-n", "ns1", "link", "add", "sw510", "type", "veth", "peer", "name", "tp510"] in setup
    assert compile_command("p4c-bm2-ss", Path("a.p4"), Path("a.json")) == [
        "p4c-bm2-ss", "--arch", "v1model", "--std", "p4-16", "-o", "a.json", "a.p4"]


def test_reset_commands(tmp_path: Path) -> None:
    prog = _program(tmp_path)
    cmds = reset_commands(describe(prog, 510), {("seen", 3): 9}, prog)
    assert cmds == ["counter_reset hits", "counter_reset fwd__counter", "counter_reset fwd__miss",
                    "register_reset seen", "register_write seen 3 9"]


def test_cli_output_parsing() -> None:
    out = ("Adding entry to exact match table fwd\nEntry has been added with handle 0\n"
           "Entry has been added with handle 12\nRuntimeCmd: seen[3]= 9\nseen[4]= 0\n"
           "this is the direct counter for this entry: BmCounterValue(packets=2, bytes=128)\n"
           "hits[1]=  BmCounterValue(packets=0, bytes=0)\n")
    assert parse_handles(out) == [0, 12]
    assert parse_register_read("seen[3]= 9\nseen[4]= 0\n") == {("seen", 3): 9, ("seen", 4): 0}
    assert parse_counter_reads(out) == [(2, 128), (0, 0)]


def test_cli_errors_and_whole_register_reads() -> None:
    assert cli_errors("RuntimeCmd: Entry has been added with handle 3\n") == []
    bad = "RuntimeCmd: Error: Invalid table name (fwdd)\nRuntimeCmd: \n"
    assert cli_errors(bad) == ["RuntimeCmd: Error: Invalid table name (fwdd)"]
    assert parse_register_read("RuntimeCmd: seen= 0, 5, 0, 7\n") == {("seen", 0): 0, ("seen", 1): 5,
                                                                       ("seen", 2): 0, ("seen", 3): 7}


def test_state_reads_cover_every_counter_and_sum_table_copies(tmp_path: Path) -> None:
    prog = _program(tmp_path)
    desc = describe(prog, 510)
    desc["tables"][0]["p4_tables"] = ["fwd", "fwd__2"]  # as if applied twice
    cmds, slots = state_read_commands(prog, desc, {"fwd": [4, 9], "fwd__2": [5, 10]})
    assert cmds[:4] == [f"counter_read hits {i}" for i in range(4)]
    assert cmds[4:] == ["counter_read fwd__counter 4", "counter_read fwd__counter 9", "counter_read fwd__miss 0",
                        "counter_read fwd__2__counter 5", "counter_read fwd__2__counter 10",
                        "counter_read fwd__2__miss 0", "register_read seen"]
    values = [(0, 0), (1, 60), (0, 0), (0, 0), (1, 64), (0, 0), (2, 128), (1, 64), (0, 0), (1, 70)]
    assert counters_from_reads(slots, values) == {("hits", 1): (1, 60), ("table.fwd", 0): (2, 128),
                                                  ("table.fwd", -1): (3, 198)}
    with pytest.raises(RuntimeError, match="expected 10 counter values"):
        counters_from_reads(slots, values[:-1])


def test_result_from_capture() -> None:
    assert result_from_capture(1, [], 510).verdict == "drop"
    r = result_from_capture(1, [(510, b"x" * 60)], 510)
    assert (r.verdict, r.port, r.data) == ("to_host", None, b"x" * 60)
    r = result_from_capture(1, [(1, b"y")], 510)
    assert (r.verdict, r.port) == ("reflect", 1)
    r = result_from_capture(1, [(3, b"z")], 510)
    assert (r.verdict, r.port, r.data) == ("forward", 3, b"z")


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
