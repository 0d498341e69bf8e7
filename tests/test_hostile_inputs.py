"""Issue 12, classes 3 and 5: hostile include and vector files, and vector files that do not fit the spec.

Includes and vector files are read through `c3po_compiler.input_files`: regular files only (FIFOs, devices,
/proc and /sys are refused before anything blocks), at most a cap (C3PO_MAX_SPEC_BYTES, C3PO_MAX_VECTOR_BYTES;
JSON Lines streamed with C3PO_MAX_VECTOR_LINE_BYTES per line). YAML vector files refuse aliases. Vector files
are validated against the spec when loaded (tables, sizes, register indexes, ports), before any target runs,
and every malformed shape is one line naming the file, the line and the vector: never a traceback (exit 70).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c3po_compiler import SpecError, load_program
from c3po_compiler.cli import main
from c3po_compiler.input_files import VECTOR_LIMIT, VECTOR_LINE_LIMIT, input_lines
from conformance.vector_io import VectorFileError, load_vectors
from tests.conftest import ROOT

SUITE = ROOT / "conformance" / "suite"

LIB = "c3po: 1\nheaders: {h_t: {fields: {a: 8}}}\n"


def spec_messages(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_program(path)
    return [p.format() for p in info.value.problems]


def top_including(tmp_path: Path, name: str) -> Path:
    top = tmp_path / "top.yaml"
    top.write_text(f"c3po: 1\nprogram: p\ninclude: [{json.dumps(name)}]\n", encoding="utf-8")
    return top


def within(seconds: float, func: Any, *args: Any) -> Any:
    """func(*args) in a thread, failing the test (not hanging it) when it takes longer than `seconds`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = func(*args)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- includes: only regular files, of bounded size, with names the OS can take ----------------------------------------


def test_a_fifo_include_is_refused_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe.yaml")
    found = within(5, spec_messages, top_including(tmp_path, "pipe.yaml"))
    assert found == ["top.yaml:3:12: error: cannot include pipe.yaml: the file is a FIFO (named pipe), not a "
                     "regular file (at $.include[0])\n    hint: name a regular file, not a pipe or device"]


@pytest.mark.parametrize(("name", "why"), [("/dev/zero", "is a character device, not a regular file"),
                                           ("/proc/self/status", "is in /proc, a kernel pseudo file system"),
                                           ("/proc/kmsg", "is in /proc, a kernel pseudo file system")])
def test_device_and_proc_includes_are_refused(tmp_path: Path, name: str, why: str) -> None:
    if not os.path.exists(name):
        pytest.skip(f"{name} does not exist here")
    found = within(5, spec_messages, top_including(tmp_path, name))
    assert len(found) == 1 and why in found[0] and "(at $.include[0])" in found[0]


def test_an_oversized_include_is_refused_by_its_size_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: 1.5 GB that take no disk space
        f.truncate(1536 * 1024 * 1024)
    tracemalloc.start()
    try:
        found = within(5, spec_messages, top_including(tmp_path, "big.yaml"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the file is 1610612736 bytes, more than the limit of 16 MiB" in found[0]
    assert "hint: set C3PO_MAX_SPEC_BYTES (bytes) to raise the limit" in found[0]
    assert peak < 16 << 20


def test_the_spec_cap_holds_while_reading_and_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    (tmp_path / "lib.yaml").write_text(LIB + "doc: " + "x" * 2000 + "\n", encoding="utf-8")
    top = top_including(tmp_path, "lib.yaml")
    monkeypatch.setenv("C3PO_MAX_SPEC_BYTES", "1000")
    found = spec_messages(top)
    assert any("more than the limit of 1000 bytes" in m for m in found)
    monkeypatch.setenv("C3PO_MAX_SPEC_BYTES", "lots")
    assert "C3PO_MAX_SPEC_BYTES='lots' is not a positive number of bytes" in spec_messages(top)[0]


@pytest.mark.parametrize(("name", "why"), [
    ("a\0b.yaml", "the file name contains a NUL byte"),
    ("x" * 300 + ".yaml", "a part of the file name is 305 bytes long, more than 255"),
    ("d/" * 2100 + "x.yaml", "bytes long, more than 4096"),
])
def test_unusable_include_names_are_positioned_errors(tmp_path: Path, name: str, why: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = spec_messages(top_including(tmp_path, name))
    assert len(found) == 1 and found[0].startswith("top.yaml:3:12: error: cannot include '") and why in found[0]
    assert "\0" not in found[0] and len(found[0]) < 400


def test_unusable_include_names_do_not_exit_70(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(top_including(tmp_path, "a\0b.yaml"))]) == 1
    assert main(["check", str(top_including(tmp_path, "y" * 5000))]) == 1
    assert "internal error" not in capsys.readouterr().err


def test_non_utf8_and_utf16_specs_are_positioned_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l1.yaml").write_bytes(LIB.encode() + b"doc: caf\xe9\n")
    found = spec_messages(top_including(tmp_path, "l1.yaml"))
    assert found[0].startswith("l1.yaml:3:9: error: cannot include l1.yaml: the file is not UTF-8 text (byte 0xe9)")
    (tmp_path / "l2.yaml").write_bytes(LIB.encode("utf-16"))
    assert "the file is UTF-16 encoded" in spec_messages(top_including(tmp_path, "l2.yaml"))[0]


# -- vector files: regular files, capped, no aliases, JSON Lines streamed ----------------------------------------------


@pytest.fixture(scope="module")
def registers_prog() -> Any:
    return load_program(SUITE / "registers.yaml").program


def vector_error(path: Path, prog: Any) -> str:
    with pytest.raises(VectorFileError) as info:
        load_vectors(path, prog)
    return str(info.value)


def test_a_fifo_vector_file_is_refused_at_once(tmp_path: Path, registers_prog: Any) -> None:
    for suffix in (".yaml", ".jsonl", ".stf", ".pcap"):
        os.mkfifo(tmp_path / f"v{suffix}")
        message = within(5, vector_error, tmp_path / f"v{suffix}", registers_prog)
        assert "is a FIFO (named pipe), not a regular file" in message, message


def test_an_oversized_vector_file_is_refused(tmp_path: Path, registers_prog: Any) -> None:
    for suffix in (".yaml", ".jsonl", ".stf", ".pcap"):
        with (tmp_path / f"v{suffix}").open("wb") as f:
            f.truncate(300 << 20)
        message = within(5, vector_error, tmp_path / f"v{suffix}", registers_prog)
        assert "is 314572800 bytes, more than the limit of 256 MiB" in message, message
        assert "C3PO_MAX_VECTOR_BYTES" in message


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path, registers_prog: Any) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("c3po_vectors: 1\n" + "\n".join(levels) + "\nvectors: [*a9]\n", encoding="utf-8")
    assert len(bomb.read_bytes()) < 1000
    tracemalloc.start()
    try:
        message = within(5, vector_error, bomb, registers_prog)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == (f"{bomb}:3:10: YAML aliases (*name) are not allowed in a vector file (write the value "
                       "out in full (this one repeats the value anchored at line 2))")
    assert peak < 8 << 20


def test_aliases_are_refused_even_small_ones(tmp_path: Path, registers_prog: Any) -> None:
    v = tmp_path / "v.yaml"
    v.write_text("c3po_vectors: 1\nvectors:\n  - &one {name: a, packets: [{port: 1, data: '00'}]}\n  - *one\n",
                 encoding="utf-8")
    assert "v.yaml:4:5: YAML aliases (*name) are not allowed in a vector file" in vector_error(v, registers_prog)


def test_deep_nesting_is_refused(tmp_path: Path, registers_prog: Any) -> None:
    v = tmp_path / "v.yaml"
    v.write_text("c3po_vectors: 1\nvectors: " + "[" * 200 + "]" * 200 + "\n", encoding="utf-8")
    assert "the vector file nests deeper than 64 levels" in vector_error(v, registers_prog)
    v.write_text("c3po_vectors: 1\nvectors: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert "not valid YAML" in vector_error(v, registers_prog)
    j = tmp_path / "v.jsonl"
    j.write_text('{"c3po_vectors": 1}\n' + "[" * 100 + "]" * 100 + "\n", encoding="utf-8")
    assert vector_error(j, registers_prog) == f"{j}:2: the vector nests deeper than 64 levels"
    j.write_text('{"c3po_vectors": 1}\n' + "[" * 100000 + "]" * 100000 + "\n", encoding="utf-8")
    assert vector_error(j, registers_prog) == f"{j}:2: the JSON nests too deeply"


def test_jsonl_is_streamed_with_bounded_memory(tmp_path: Path, registers_prog: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    line = json.dumps({"name": "v", "packets": [{"port": 1, "data": "00" * 400}]})
    big = tmp_path / "big.jsonl"
    with big.open("w", encoding="utf-8") as f:
        for _ in range(8000):  # 6.5 MB
            f.write(line + "\n")
    tracemalloc.start()
    try:
        n = sum(1 for _ in input_lines(big, "vector file", VECTOR_LIMIT, VECTOR_LINE_LIMIT))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 8000 and peak < 256 << 10, peak
    # a file past the whole-file cap, or a line past the line cap, stops at that line
    monkeypatch.setenv("C3PO_MAX_VECTOR_BYTES", str(100 * (len(line) + 1)))
    assert vector_error(big, registers_prog).startswith(f"{big}: the vector file is ")
    monkeypatch.setenv("C3PO_MAX_VECTOR_BYTES", str(1 << 30))
    monkeypatch.setenv("C3PO_MAX_VECTOR_LINE_BYTES", "500")
    assert vector_error(big, registers_prog) == (
        f"{big}:1: line 1 is longer than the limit of 500 bytes "
        "(set C3PO_MAX_VECTOR_LINE_BYTES (bytes) to raise the limit)")


def test_non_utf8_and_utf16_vector_files(tmp_path: Path, registers_prog: Any) -> None:
    doc = "c3po_vectors: 1\nvectors:\n  - {name: caf\xe9, packets: [{port: 1, data: '00'}]}\n"
    for suffix in (".yaml", ".stf"):
        v = tmp_path / f"latin1{suffix}"
        v.write_bytes(doc.encode("latin-1"))
        assert "is not UTF-8 text (byte 0xe9)" in vector_error(v, registers_prog)
        v = tmp_path / f"u16{suffix}"
        v.write_bytes(doc.encode("utf-16"))
        assert "UTF-16 encoded" in vector_error(v, registers_prog)
    j = tmp_path / "v.jsonl"
    j.write_bytes(b'{"c3po_vectors": 1}\n{"name": "caf\xe9"}\n')
    assert vector_error(j, registers_prog) == f"{j}:2: line 2 is not UTF-8 text (byte 0xe9) (save it as UTF-8)"
    j.write_bytes('{"c3po_vectors": 1}\n'.encode("utf-16"))
    assert "UTF-16 encoded" in vector_error(j, registers_prog)
    j.write_text('{"c3po_vectors": 1}\n{"name": "a", "packets": [{"port": 1' + "0" * 5000 + ', "data": ""}]}\n')
    assert vector_error(j, registers_prog).startswith(f"{j}:2: not valid JSON")


# -- vector files against the spec, and every malformed shape ---------------------------------------------------------

TABLE_SPEC = f"""c3po: 1
program: small
include: [{ROOT / "spec" / "protocols" / "ethernet.yaml"}]
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
registers: {{seen: {{width: 8, size: 4}}}}
counters: {{hits: {{size: 2}}}}
tables:
  t:
    key: {{ethernet.dst: exact}}
    actions: [forward, drop]
    default: drop
    size: 3
    entries:
      - {{match: {{ethernet.dst: 1}}, action: drop}}
  acl:
    key: {{ethernet.ethertype: ternary}}
    actions: [forward, drop]
    default: drop
control:
  - apply: t
  - apply: acl
  - count(hits, 0)
  - seen[0] = seen[0] + 1
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    spec = tmp_path_factory.mktemp("small") / "small.yaml"
    spec.write_text(TABLE_SPEC, encoding="utf-8")
    return spec, load_program(spec).program


PACKET = {"port": 1, "data": "000000000002000000000001 0800"}


def one_vector(tmp_path: Path, prog: Any, vector: dict[str, Any], suffix: str = ".yaml") -> str:
    v = tmp_path / f"v{suffix}"
    if suffix == ".yaml":
        v.write_text(json.dumps({"c3po_vectors": 1, "vectors": [vector]}, indent=1), encoding="utf-8")
    else:
        v.write_text('{"c3po_vectors": 1}\n' + json.dumps(vector) + "\n", encoding="utf-8")
    return vector_error(v, prog)


def entry(n: int) -> dict[str, Any]:
    return {"table": "t", "match": {"ethernet.dst": n + 2}, "action": "forward(1)"}


def test_more_entries_than_the_table_holds(tmp_path: Path, small: tuple[Path, Any]) -> None:
    _, prog = small
    message = one_vector(tmp_path, prog, {"name": "full", "control": {"entries": [entry(n) for n in range(3)]},
                                          "packets": [PACKET]})
    assert message == (f"{tmp_path / 'v.yaml'}:4: vectors[0] ('full').control.entries[2]: table 't' is full: it "
                       "holds 3 entries, 1 of them constant, and this is entry 4")
    v = tmp_path / "ok.yaml"  # two fit beside the constant one
    v.write_text(json.dumps({"c3po_vectors": 1, "vectors": [
        {"name": "fits", "control": {"entries": [entry(n) for n in range(2)]}, "packets": [PACKET]}]}))
    assert len(load_vectors(v, prog)) == 1


def test_register_index_beyond_the_register(tmp_path: Path, small: tuple[Path, Any]) -> None:
    _, prog = small
    for where, vec in [("registers[0]", {"registers": [{"register": "seen", "index": 4, "value": 1}]}),
                       ("expected[0].registers[0]",
                        {"expected": [{"verdict": "drop", "port": None, "data": "",
                                       "registers": [{"register": "seen", "index": 9, "value": 1}]}]})]:
        message = one_vector(tmp_path, prog, {"name": "r", "packets": [PACKET], **vec})
        assert f"vectors[0] ('r').{where}.index: " in message and "is out of range: register 'seen' has 4 " \
            "element(s), indexes 0..3" in message
    message = one_vector(tmp_path, prog, {"name": "r", "packets": [PACKET],
                                          "registers": [{"register": "seen", "index": 1, "value": 256}]})
    assert message.endswith("vectors[0] ('r').registers[0].value: 256 does not fit bit<8>")


def test_expected_port_written_as_a_word(tmp_path: Path, small: tuple[Path, Any]) -> None:
    _, prog = small
    for suffix in (".yaml", ".jsonl"):
        message = one_vector(tmp_path, prog, {"name": "w", "packets": [PACKET], "expected": [
            {"verdict": "forward", "port": "three", "data": ""}]}, suffix)
        line = 4 if suffix == ".yaml" else 2
        assert message == (f"{tmp_path / ('v' + suffix)}:{line}: {'vectors[0]' if line == 4 else 'line 2'} ('w')."
                           "expected[0]: 'port' must be an integer 0..65535 or null, found string 'three'")


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"tags": 5}, "('m').tags: expected a list, found integer 5"),
    ({"tags": [{"a": 1}]}, "('m').tags[0]: expected a word, found map {'a': 1}"),
    ({"requires": "abc"}, "('m').requires: expected a list, found string 'abc'"),
    ({"provenance": [1]}, "('m').provenance: expected a map, found list [1]"),
    ({"control": {"entries": {"table": "t"}}}, "('m').control.entries: expected a list, found map"),
    ({"control": {"entries": ["t"]}}, "('m').control.entries[0]: expected a map, found string 't'"),
    ({"control": {"entries": [{"table": ["t"]}]}}, "('m').control.entries[0]: unknown table list ['t']; known: "
                                                   "acl, t"),
    ({"control": {"entries": [{**entry(0), "match": [1]}]}}, "'match' must map key names to values, found list"),
    ({"control": {"entries": [{**entry(0), "action": "forward", "args": 1}]}},
     "('m').control.entries[0].args: expected a list, found integer 1"),
    ({"control": {"entries": [{**entry(0), "action": "forward", "args": "1"}]}},
     "('m').control.entries[0].args: expected a list, found string '1'"),
    ({"control": {"entries": [{**entry(0), "action": 3}]}}, "'action' must be a string such as 'set_port(3)'"),
    ({"control": {"entries": [{"table": "acl", "match": {"ethernet.ethertype": "1 &&& 1"}, "action": "drop",
                               "priority": "high"}]}},
     "('m').control.entries[0].priority: expected an integer 0..2147483647, found string 'high'"),
    ({"control": {"entries": [{"table": "acl", "action": "drop", "priority": 1 << 40}]}},
     "('m').control.entries[0].priority: 1099511627776 is out of range 0..2147483647"),
    ({"control": {"entries": [{"table": "acl", "action": "drop", "priority": True}]}},
     "found boolean True"),
    ({"control": {"defaults": {"table": "t"}}}, "('m').control.defaults: expected a list, found map"),
    ({"control": {"defaults": [{"table": 7, "action": "drop"}]}}, "('m').control.defaults[0]: unknown table "
                                                                   "integer 7"),
    ({"control": {"defaults": [{"table": "t", "action": "drop", "args": {}}]}},
     "('m').control.defaults[0].args: expected a list, found map {}"),
    ({"control": "x"}, "'control' must be a map with 'entries', 'defaults' and/or 'ops'"),
    ({"registers": {"seen": 1}}, "('m').registers: expected a list, found map"),
    ({"registers": [{"register": "seen", "index": "one", "value": 1}]},
     "('m').registers[0].index: expected an integer 0..3, found string 'one'"),
    ({"registers": [{"register": "seen", "index": [], "value": 1}]}, "found list []"),
    ({"registers": [{"register": ["seen"], "index": 0, "value": 1}]}, "unknown register list ['seen']"),
    ({"registers": [{"register": "seen", "index": -1, "value": 1}]}, "is out of range: register 'seen'"),
    ({"expected": {"verdict": "drop"}}, "('m').expected: expected a list, found map"),
    ({"expected": [{"verdict": ["drop"]}]}, "verdict list ['drop'] is not one of"),
    ({"expected": [{"verdict": "forward", "port": True, "data": ""}]}, "found boolean True"),
    ({"expected": [{"verdict": "drop", "data": "", "counters": [{"counter": "hits", "index": "x", "packets": 1,
                                                                "bytes": 1}]}]},
     "('m').expected[0].counters[0].index: expected an integer 0..1, found string 'x'"),
    ({"expected": [{"verdict": "drop", "data": "", "counters": {"hits": 1}}]}, "counters: expected a list"),
    ({"expected": [{"verdict": "drop", "data": "", "observations": [1]}]}, "observations: expected a map"),
    ({"packets": [{"port": "one", "data": ""}]}, "'port' must be an integer 0..65535, found string 'one'"),
    ({"packets": [{"port": False, "data": ""}]}, "found boolean False"),
    ({"packets": "00"}, "'packets' must be a non-empty list"),
    ({"packets": [7]}, "('m').packets[0]: expected a map, found integer 7"),
    ({"name": ["m"]}, "vectors[0]: 'name' must be a non-empty string, found list ['m']"),
    ({"name": None}, "vectors[0]: 'name' must be a non-empty string, found null"),
    ({1: 2}, "('m'): unknown key(s) 1"),
]


@pytest.mark.parametrize(("change", "expected"), MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_every_malformed_shape_is_one_line(tmp_path: Path, small: tuple[Path, Any], change: dict[str, Any],
                                           expected: str) -> None:
    _, prog = small
    vector = {"name": "m", "packets": [PACKET], **change}
    message = one_vector(tmp_path, prog, vector) if 1 not in change else _yaml_with_int_key(tmp_path, prog)
    line = 3 if 1 in change else 4
    assert message.startswith(f"{tmp_path / 'v.yaml'}:{line}: vectors[0]") and expected in message, message
    assert "\n" not in message


def _yaml_with_int_key(tmp_path: Path, prog: Any) -> str:
    v = tmp_path / "v.yaml"
    v.write_text("c3po_vectors: 1\nvectors:\n  - {name: m, packets: [{port: 1, data: '00'}], 1: 2}\n")
    return vector_error(v, prog)


def test_malformed_vectors_exit_1_from_the_cli(tmp_path: Path, small: tuple[Path, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec, _ = small
    v = tmp_path / "v.yaml"
    v.write_text(json.dumps({"c3po_vectors": 1, "vectors": [{"name": "m", "packets": [PACKET], "expected": [
        {"verdict": "forward", "port": "three", "data": ""}]}]}))
    assert main(["conformance", "run", str(spec), "--vectors", str(v), "--targets", "ref", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"c3po conformance: {v}:") and "'port' must be an integer" in err


# -- fuzz: mutated suite vector files never make `c3po conformance run` exit 70 or raise -------------------------------

VECTOR_FILES = sorted(SUITE.glob("*.vectors.yaml"))
TOKENS = [b"*a", b"&a ", b"[", b"]", b"{", b"}", b"- ", b": ", b'"', b"'", b"\t", b"\x00", b"\xff\xfe", b"\xe9",
          b"99999999999999999999999", b"-1", b"null", b"true", b"word", b"0x", b"1.5", b"~", b"!!python/tuple",
          b"!!binary", b"1" * 5000, b"\n", b"\n  ", b", ", b"#", b"?", b"|", b">", b"%YAML 1.1\n", b"---\n",
          b"table", b"index", b"port", b"priority", b"registers", b"entries", b"defaults", b"args", b"tags",
          b"65536", b"0", b"&&&", b"..", b"/", b"()", b"\xef\xbb\xbf"]


@st.composite
def mutants(draw: st.DrawFn) -> tuple[Path, bytes]:
    path = draw(st.sampled_from(VECTOR_FILES))
    data = bytearray(path.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "number"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif op == "replace":
            data[at:at + draw(st.integers(1, 8))] = draw(st.sampled_from(TOKENS))
        elif op == "duplicate":
            n = draw(st.integers(1, 200))
            data[at:at] = data[at:at + n]
        else:  # a number somewhere becomes another, often out of range
            digits = [i for i in range(len(data)) if chr(data[i]).isdigit()]
            if digits:
                i = digits[draw(st.integers(0, len(digits) - 1))]
                data[i:i + 1] = str(draw(st.sampled_from([0, 3, 9, 255, 256, 65535, 65536, 2**31, 2**64]))).encode()
    return path, bytes(data)


@functools.cache
def _program(spec: str) -> Any:
    return load_program(spec)


def _ref_in_process(args: Any, requests: list[Any], targets: list[str], suite: bool) -> int:
    """The reference's part of `conformance run`, without worker processes: install and run every vector."""
    from conformance.interpreter import Interpreter
    from conformance.runner import group_by_control

    for request in requests:
        interp = Interpreter(_program(request.spec).program)
        for control, group in group_by_control(request.vectors):
            try:
                interp.install(control)
            except ValueError:
                continue
            for v in group:
                interp.run(v.packets, v.registers)
    return 0


@functools.cache
def _parser() -> Any:
    from c3po_compiler.cli import _command_plugins, build_parser

    return build_parser(_command_plugins())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(mutant=mutants())
def test_mutated_vector_files_never_exit_70(tmp_path: Path, mutant: tuple[Path, bytes]) -> None:
    """`c3po conformance run SPEC --vectors MUTANT --targets ref` as `c3po_compiler.cli.main` runs it, minus
    the catch-all that turns an exception into exit 70 (so any exception fails here), with the spec loaded once
    and the reference run in-process (the worker processes cost a second a run)."""
    original, data = mutant
    v = tmp_path / "mutant.vectors.yaml"
    v.write_bytes(data)
    spec = original.with_name(original.name.removesuffix(".vectors.yaml") + ".yaml")
    args = _parser().parse_args(["conformance", "run", str(spec), "--vectors", str(v), "--targets", "ref", "-q"])
    with mock.patch("conformance.cli._execute", _ref_in_process), mock.patch("conformance.cli.load_program",
                                                                              _program):
        code = args.func(args)
    assert code in (0, 1)


def test_a_mutant_through_the_real_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fuzz test runs the reference in-process; here the whole command, worker processes and all."""
    original = SUITE / "registers.vectors.yaml"
    text = original.read_text(encoding="utf-8").replace("index: 2", "index: 9", 1)
    v = tmp_path / "r.vectors.yaml"
    v.write_text(text, encoding="utf-8")
    start = time.monotonic()
    code = main(["conformance", "run", str(SUITE / "registers.yaml"), "--vectors", str(v), "--targets", "ref",
                 "-q"])
    assert code == 1 and time.monotonic() - start < 60
    assert "is out of range: register 'seen' has 8 element(s)" in capsys.readouterr().err


# -- found by the 100,000-mutant campaign (scripts/fuzz_campaign.py) --------------------------------------------------


@pytest.mark.parametrize(("counters", "expected"), [
    ([{"counter": "a\x00b", "index": -1, "packets": 1, "bytes": 38}], "counters[0]: unknown counter 'a\x00b'; known: hits"),
    ([{"counter": "table.t", "index": 0, "packets": 1, "bytes": 38}], "counters[0]: unknown counter 'table.t'; known: hits"),
    ([{"counter": "hits", "index": 2, "packets": 1, "bytes": 38}], "counters[0].index: 2 is out of range 0..1"),
    ([{"counter": "hits", "index": -1, "packets": 1, "bytes": 38}], "counters[0].index: -1 is out of range 0..1"),
])
def test_expected_counters_are_checked_against_the_spec(tmp_path: Path, small: tuple[Path, Any],
                                                        counters: list[dict[str, Any]], expected: str) -> None:
    """An expected counter the program does not have made every target FAIL (and echoed its name, control
    characters and all, in the failure lines); like registers, it is now a mistake of the vector file."""
    _, prog = small
    for suffix in (".yaml", ".jsonl"):
        message = one_vector(tmp_path, prog, {"name": "c", "packets": [PACKET], "expected": [
            {"verdict": "drop", "port": None, "data": "", "counters": counters}]}, suffix)
        assert f"('c').expected[0].{expected}" in message, message


def test_table_counters_keep_their_default_action_index(tmp_path: Path) -> None:
    prog = load_program(SUITE / "table_counters.yaml").program
    assert len(load_vectors(SUITE / "table_counters.vectors.yaml", prog)) > 0
    table = next(t for t in prog.tables.values() if t.counters)
    message = one_vector(tmp_path, prog, {"name": "c", "packets": [PACKET], "expected": [
        {"verdict": "drop", "port": None, "data": "",
         "counters": [{"counter": f"table.{table.name}", "index": table.size, "packets": 1, "bytes": 1}]}]})
    assert f"index: {table.size} is out of range -1..{table.size - 1}" in message


@pytest.mark.parametrize("plain", ["0b_", "0x_", "-0b__", "+0x_"])
def test_int_tagged_scalars_without_digits(tmp_path: Path, small: tuple[Path, Any], plain: str) -> None:
    """PyYAML's resolver tags a plain `0b_` or `0x_` as an integer, which has no digit to convert: a ValueError
    (exit 70) from a vector file's key or a spec's value; now the text itself, reported like any wrong value."""
    _, prog = small
    v = tmp_path / "v.yaml"
    v.write_text(f"c3po_vectors: 1\nvectors:\n  - {{name: a, packets: [{{port: 1, data: '00'}}], {plain}: 1}}\n",
                 encoding="utf-8")
    assert vector_error(v, prog) == f"{v}:3: vectors[0] ('a'): unknown key(s) {plain}"
    s = tmp_path / "s.yaml"
    s.write_text(TABLE_SPEC.replace("width: 8, size: 4", f"width: {plain}, size: 4"), encoding="utf-8")
    found = spec_messages(s)
    assert any(f"expected an integer, found '{plain}'" in m and "\n    hint: " in m for m in found), found
