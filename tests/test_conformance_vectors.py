"""Vector formats: YAML/JSON Lines/pcap/STF round trips, the JSON Schema, layered packets, malformed files."""

from __future__ import annotations

import json
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.generate import generate
from conformance.model import ControlState, EntryState, Expected, PacketIn, Vector
from conformance.packets import build_layers, ones_complement_sum
from conformance.pcap import PcapError, expected_path, read_pcap, vectors_from_pcap, write_pcap
from conformance.stf import dumps_stf, loads_stf
from conformance.vector_io import VectorFileError, dumps_jsonl, dumps_yaml, load_vectors, save_vectors
from conformance.vectors import VectorFormatError, vector_from_data

from .conftest import ROOT

ROUTER = ROOT / "spec" / "examples" / "router.yaml"
SCHEMA = json.loads((ROOT / "schema" / "vectors.schema.json").read_text())


@cache
def router() -> ir.Program:
    return load_program(ROUTER).program


@cache
def router_vectors() -> tuple[Vector, ...]:
    return tuple(generate(router(), seed=1).vectors)


def _same(a: Vector, b: Vector) -> None:
    assert a.name == b.name
    assert a.control == b.control
    assert a.packets == b.packets
    assert a.registers == b.registers
    assert [(e.verdict, e.port, e.data, e.care_mask, e.counters, e.registers) for e in a.expected] == [
        (e.verdict, e.port, e.data, e.care_mask, e.counters, e.registers) for e in b.expected
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".jsonl"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    vectors = list(router_vectors())
    assert any(v.control.entries for v in vectors), "the generator should produce table entries"
    path = tmp_path / f"v{suffix}"
    save_vectors(path, vectors, router(), str(ROUTER))
    back = load_vectors(path, router())
    assert len(back) == len(vectors)
    for a, b in zip(vectors, back, strict=True):
        _same(a, b)


def test_generated_files_validate_against_the_schema(tmp_path: Path) -> None:
    Draft202012Validator.check_schema(SCHEMA)
    validator = Draft202012Validator(SCHEMA)
    doc = yaml.safe_load(dumps_yaml(list(router_vectors()), router()))
    assert not [e.message for e in validator.iter_errors(doc)]
    lines = dumps_jsonl(list(router_vectors()), router()).splitlines()
    header, first = json.loads(lines[0]), json.loads(lines[1])
    assert not list(validator.iter_errors({**header, "vectors": [first]}))
    for hand in sorted((ROOT / "conformance" / "suite").glob("*.vectors.yaml")):
        assert not list(validator.iter_errors(yaml.safe_load(hand.read_text()))), hand


def test_schema_describes_every_property() -> None:
    def missing(node: object, path: str) -> list[str]:
        out: list[str] = []
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if not isinstance(sub, dict) or not sub.get("description"):
                    out.append(f"{path}/properties/{name}")
            for k, v in node.items():
                out += missing(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                out += missing(v, f"{path}/{i}")
        return out

    assert missing(SCHEMA, "#") == []


def test_match_strings_become_canonical_key_elements() -> None:
    data = {
        "name": "x",
        "packets": [{"port": 1, "data": "00"}],
        "control": {
            "entries": [
                {"table": "routes_v4", "match": {"ipv4.dst": "10.1.2.3/8"}, "action": "set_nexthop(7)"},
                {"table": "router_mac", "match": {"ethernet.dst": "02:00:00:00:00:01"}, "action": "nop"},
                {"table": "nexthops", "match": {"meta.nexthop": 7}, "action": "next_hop", "args": [3, 1, 2]},
            ],
            "defaults": [{"table": "routes_v4", "action": "to_host"}],
        },
    }
    v = vector_from_data(data, router(), "test")
    e0, e1, e2 = v.control.entries
    assert e0.match == (KeyElem("prefix", 0x0A000000, 8),) and e0.args == (7,)
    assert e1.match == (KeyElem("value", 0x020000000001),)
    assert e2.args == (3, 1, 2)
    assert v.control.defaults == (("routes_v4", "to_host", ()),)


def test_layered_packet_builds_header_bytes_with_checksum() -> None:
    data = build_layers(
        router(),
        {
            "ethernet": {"dst": "02:00:00:00:00:01", "ethertype": 0x0800},
            "ipv4": {"version": 4, "ihl": 5, "ttl": 64, "src": "10.0.0.1", "dst": "192.168.0.1"},
        },
        b"\xaa",
        "t",
    )
    assert len(data) == 14 + 20 + 1
    assert data[:6] == bytes.fromhex("020000000001") and data[12:14] == b"\x08\x00"
    assert data[14] == 0x45 and data[22] == 64
    assert ones_complement_sum(data[14:34]) == 0xFFFF  # a valid IPv4 header checksum
    assert data[-1] == 0xAA


BAD_VECTORS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown table": (
        {
            "name": "a",
            "packets": [{"port": 1, "data": "00"}],
            "control": {"entries": [{"table": "nope", "action": "drop"}]},
        },
        "unknown table 'nope'",
    ),
    "bad hex": ({"name": "b", "packets": [{"port": 1, "data": "zz"}]}, "not hex"),
    "wrong key kind": (
        {
            "name": "c",
            "packets": [{"port": 1, "data": "00"}],
            "control": {
                "entries": [{"table": "routes_v4", "match": {"ipv4.dst": "1 .. 2"}, "action": "drop"}]
            },
        },
        "not an lpm match",
    ),
    "arity": (
        {
            "name": "d",
            "packets": [{"port": 1, "data": "00"}],
            "control": {
                "entries": [
                    {"table": "routes_v4", "match": {"ipv4.dst": "1.0.0.0/8"}, "action": "set_nexthop"}
                ]
            },
        },
        "takes 1",
    ),
    "unknown field": (
        {"name": "e", "packets": [{"port": 1, "layers": {"ethernet": {"ttl": 1}}}]},
        "no field 'ttl'",
    ),
    "no packets": ({"name": "f", "packets": []}, "non-empty"),
    "expected count": (
        {
            "name": "g",
            "packets": [{"port": 1, "data": "00"}],
            "expected": [{"verdict": "drop"}, {"verdict": "drop"}],
        },
        "2 expected results for 1",
    ),
    "bad verdict": (
        {"name": "h", "packets": [{"port": 1, "data": "00"}], "expected": [{"verdict": "eat"}]},
        "verdict 'eat'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VECTORS))
def test_malformed_vectors_name_the_entry(tmp_path: Path, case: str) -> None:
    data, message = BAD_VECTORS[case]
    with pytest.raises(VectorFormatError, match=message):
        vector_from_data(data, router(), "vectors[0]")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"c3po_vectors": 1, "vectors": [data]}))
    with pytest.raises(VectorFileError) as info:
        load_vectors(path, router())
    assert (
        str(path) in str(info.value) and "vectors[0]" in str(info.value) and data["name"] in str(info.value)
    )


def test_malformed_files(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "a.yaml"
    bad_yaml.write_text("c3po_vectors: 1\nvectors: [\n")
    with pytest.raises(VectorFileError, match=r"a\.yaml:\d+:\d+: not valid YAML"):
        load_vectors(bad_yaml, router())
    wrong_prog = tmp_path / "b.yaml"
    wrong_prog.write_text("c3po_vectors: 1\nprogram: other\nvectors: []\n")
    with pytest.raises(VectorFileError, match="not 'router'"):
        load_vectors(wrong_prog, router())
    bad_json = tmp_path / "c.jsonl"
    bad_json.write_text('{"c3po_vectors": 1}\n{"name": \n')
    with pytest.raises(VectorFileError, match=r"c\.jsonl:2: not valid JSON"):
        load_vectors(bad_json, router())
    with pytest.raises(VectorFileError, match="unknown vector file type"):
        load_vectors(tmp_path / "x.txt", router())


def test_pcap_round_trip_and_errors(tmp_path: Path) -> None:
    frames = [(1, bytes(range(60))), (2, b"\x01\x02"), (3, b"")]
    path = tmp_path / "f.pcap"
    write_pcap(path, frames)
    assert read_pcap(path) == [f for _, f in frames]
    write_pcap(tmp_path / "g.pcap", frames)
    assert path.read_bytes() == (tmp_path / "g.pcap").read_bytes()
    vs = vectors_from_pcap(path)
    assert [v.packets[0].data for v in vs] == [f for _, f in frames]
    assert load_vectors(path, router())[0].packets[0].data == frames[0][1]
    blob = path.read_bytes()
    (tmp_path / "t.pcap").write_bytes(blob[:-10])
    with pytest.raises(PcapError, match="record 2"):
        read_pcap(tmp_path / "t.pcap")
    (tmp_path / "n.pcap").write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(VectorFileError, match="not a pcap file"):
        load_vectors(tmp_path / "n.pcap", router())


def test_pcap_export_writes_expected_output_frames(tmp_path: Path) -> None:
    """Saving generated vectors as pcap also writes the frames the program sends on, stamped like their inputs."""
    prog = router()
    vectors = list(router_vectors())
    path = tmp_path / "router.pcap"
    save_vectors(path, vectors, prog)
    inputs = read_pcap(path)
    assert inputs == [pk.data for v in vectors for pk in v.packets]
    out = expected_path(path)
    assert out.name == "router.expected.pcap"
    sent = [(n, e.data) for n, e in enumerate(e for v in vectors for e in v.expected) if e.verdict != "drop"]
    assert sent and len(sent) < len(inputs)  # the router drops some packets
    assert read_pcap(out) == [data for _, data in sent]
    blob = out.read_bytes()
    stamps, off = [], 24
    while off < len(blob):
        ts, _, caplen, _ = struct.unpack_from("<IIII", blob, off)
        stamps.append(ts)
        off += 16 + caplen
    assert stamps == [n for n, _ in sent]


def test_stf_round_trip() -> None:
    prog = router()
    entry = EntryState("routes_v4", (KeyElem("prefix", 0x0A000000, 8),), "set_nexthop", (7,))
    exp = Expected("forward", 3, bytes.fromhex("0011223344"), bytes.fromhex("ff00ffffff"))
    v = Vector(
        "one",
        ControlState((entry,), (("nexthops", "to_host", ()),)),
        [PacketIn(1, b"\x00\x11\x22\x33\x44")],
        expected=[exp],
    )
    text = dumps_stf([v], prog)
    assert "add routes_v4 ipv4.dst:0xa000000/8 set_nexthop(id:0x7)" in text
    assert "expect 3 00**223344" in text
    back = loads_stf(text, prog)
    assert len(back) == 1
    assert back[0].control == v.control
    assert back[0].packets == v.packets
    got = back[0].expected[0]
    assert got.port == 3 and got.care_mask == exp.care_mask
    masked = bytes(d & m for d, m in zip(exp.data, exp.care_mask or b"", strict=True))
    assert got.data == masked  # wildcard nibbles carry no value


def test_stf_import_of_p4c_style_lines() -> None:
    text = """# a p4c test
add ingress.router_mac hdr.ethernet.dst:0x020000000001 nop()
add nexthops meta.nexthop:5 next_hop(port:2, smac:0x1, dmac:0x2)
add nexthops__2 meta.nexthop:5 next_hop(port:2, smac:0x1, dmac:0x2)
packet 0 02 00 00 00 00 01 00 00 00 00 00 02 08 06
expect 2 020000000001********0806
"""
    (v,) = loads_stf(text, router(), "t.stf")
    assert [e.table for e in v.control.entries] == ["router_mac", "nexthops"]
    assert v.control.entries[1].args == (2, 1, 2)
    assert v.expected[0].care_mask is not None and v.expected[0].care_mask[6:10] == bytes(4)


def test_stf_errors_name_the_line() -> None:
    from conformance.stf import StfError

    with pytest.raises(StfError, match=r"t\.stf:2: unknown table 'nope'"):
        loads_stf("packet 0 00\nadd nope k:1 drop()\n", router(), "t.stf")


def test_payload_may_sit_inside_the_layers_map() -> None:
    a = vector_from_data(
        {"name": "a", "packets": [{"port": 1, "layers": {"ethernet": {"ethertype": 1}}, "payload": "abcd"}]},
        router(),
        "t",
    )
    b = vector_from_data(
        {"name": "b", "packets": [{"port": 1, "layers": {"ethernet": {"ethertype": 1}, "payload": "abcd"}}]},
        router(),
        "t",
    )
    assert a.packets == b.packets and a.packets[0].data.endswith(b"\x00\x01\xab\xcd")


def test_generated_yaml_has_no_anchors_or_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from c3po_compiler.cli import main as c3po_main
    from conformance.vectors import header_data, vector_to_data

    doc = {
        **header_data(router(), str(ROUTER)),
        "vectors": [vector_to_data(v, router()) for v in router_vectors()],
    }
    assert "&id" in yaml.safe_dump(doc), "the vectors share objects, which a default dump writes as aliases"
    out = tmp_path / "x.yaml"
    assert c3po_main(["conformance", "gen", str(ROUTER), "-o", str(out), "--seed", "1"]) == 0
    capsys.readouterr()
    text = out.read_text()
    events = list(yaml.parse(text))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent)]
    assert not [e for e in events if getattr(e, "anchor", None)]
    loaded = yaml.safe_load(text)
    assert loaded.pop("coverage")["parse_paths"]["percent"] == 100.0, "the header carries the generator's coverage"
    assert loaded == yaml.safe_load(yaml.safe_dump(doc)), "the same data, written out in full"
