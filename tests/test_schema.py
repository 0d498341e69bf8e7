"""Tests for schema/c3po.schema.json, the JSON Schema of the c3po spec language v1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schema" / "c3po.schema.json"
SPEC_DIR = ROOT / "spec"


@cache
def load_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def stringify_keys(node: Any) -> Any:
    """Recursively turn mapping keys into strings, as a JSON view of the YAML document sees them."""
    if isinstance(node, dict):
        return {str(key): stringify_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [stringify_keys(item) for item in node]
    return node


def load_yaml(text: str) -> Any:
    return stringify_keys(yaml.safe_load(text))


def errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator().iter_errors(document)
    ]


def assert_valid(document: Any) -> None:
    found = errors(document)
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- the schema itself


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://c3po.dev/schema/c3po.schema.json"
    assert schema["title"]
    assert schema["description"]


def _missing_descriptions(node: Any, path: str) -> Iterator[str]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _missing_descriptions(item, f"{path}/{index}")
        return
    if not isinstance(node, dict):
        return
    for keyword in ("properties", "$defs"):
        for name, sub in node.get(keyword, {}).items():
            if not isinstance(sub, dict) or not sub.get("description"):
                yield f"{path}/{keyword}/{name}"
    additional = node.get("additionalProperties")
    if isinstance(additional, dict) and not additional.get("description"):
        yield f"{path}/additionalProperties"
    for key, value in node.items():
        if key not in ("enum", "const", "required", "dependentRequired"):
            yield from _missing_descriptions(value, f"{path}/{key}")


def test_every_property_and_definition_has_a_description() -> None:
    missing = list(_missing_descriptions(load_schema(), "#"))
    assert not missing, missing


def test_schema_is_closed() -> None:
    """Every object schema with named properties forbids unknown ones."""

    def open_objects(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from open_objects(item, f"{path}/{index}")
        elif isinstance(node, dict):
            is_if = path.endswith("/if")
            closed = node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False
            if "properties" in node and not closed and not is_if:
                yield path
            for key, value in node.items():
                yield from open_objects(value, f"{path}/{key}")

    assert not list(open_objects(load_schema(), "#"))


EXPECTED_ENUMS: dict[str, list[Any]] = {
    "verdict": ["drop", "to_host"],
    "match_kind": ["exact", "lpm", "ternary", "range"],
    "parse_error": ["truncated", "bad_length", "stack_overflow", "reject", "checksum"],
    "checksum_kind": ["ipv4_header", "l4"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ENUMS))
def test_exported_enums(name: str) -> None:
    """The compiler checks its Python enums against these $defs: names and values are stable."""
    assert load_schema()["$defs"][name]["enum"] == EXPECTED_ENUMS[name]


def test_on_error_covers_every_parse_error() -> None:
    defs = load_schema()["$defs"]
    assert set(defs["on_error"]["properties"]) == {*defs["parse_error"]["enum"], "default"}


def test_identifier_definition() -> None:
    ident = load_schema()["$defs"]["identifier"]
    assert ident["pattern"] == "^[a-z][a-z0-9_]*$"
    assert ident["maxLength"] == 48
    width = load_schema()["$defs"]["width"]
    assert (width["minimum"], width["maximum"]) == (1, 128)


# --------------------------------------------------------------------------- examples from the reference

IPV4_LIBRARY = """
# yaml-language-server: $schema=../../schema/c3po.schema.json
c3po: 1
doc: IPv4 header
headers:
  ipv4:
    doc: IPv4, RFC 791
    fields: {version: 4, ihl: 4, dscp: 6, ecn: 2, total_len: 16, identification: 16, flags: 3,
             frag_offset: 13, ttl: 8, protocol: 8, checksum: 16, src: 32, dst: 32}
    varlen: {name: options, length: "(bit<16>) ihl * 4 - 20", max: 40}
    checksum: {field: checksum, kind: ipv4_header}
"""

TCP_LIBRARY = """
c3po: 1
include: [ipv4.yaml, ipv6.yaml]
headers:
  tcp:
    fields: {src_port: 16, dst_port: 16, seq: 32, ack: 32, data_offset: 4, reserved: 4, flags: 8,
             window: 16, checksum: 16, urgent_ptr: 16}
    checksum: {field: checksum, kind: l4}
    varlen:
      name: options
      length: "(bit<16>) data_offset * 4 - 20"
      max: 40
      tlv:
        type: 8                  # width of the leading type field, bits (8 or 16)
        length: 8                # width of the length field that follows it, bits
        length_unit: 1           # bytes per length unit
        length_adjust: 0         # bytes added to length*unit to get the option's total size
        singletons: {eol: 0, nop: 1}   # types that are only the type field (size = type width)
        end: [eol]               # singletons after which the rest of the area is padding
        max_options: 40          # bound on the number of options walked
        options:
          mss:        {type: 2, fields: {value: 16}}
          wscale:     {type: 3, fields: {shift: 8}}
          timestamps: {type: 8, fields: {tsval: 32, tsecr: 32}}
  udp:
    fields: {src_port: 16, dst_port: 16, length: 16, checksum: 16}
    checksum: {field: checksum, kind: l4, zero_means_none: true}
"""

GENEVE_LIBRARY = """
c3po: 1
headers:
  geneve:
    fields: {ver: 2, opt_len: 6, o: 1, c: 1, rsvd: 6, protocol: 16, vni: 24, reserved: 8}
    varlen:
      name: options
      length: "(bit<16>) opt_len * 4"
      max: 252
      tlv:
        header: {class: 16, type: 8, reserved: 3, length: 5}
        key: [class, type]       # fields that identify an option
        size: "(bit<16>) length * 4 + 4"   # total size in bytes, expression over the header fields
        max_options: 16
        options:
          example: {match: {class: 0x0102, type: 0x80}, fields: {value: 32}}
"""

GRE_LIBRARY = """
c3po: 1
headers:
  gre:
    fields: {c: 1, r: 1, k: 1, s: 1, reserved0: 9, version: 3, protocol: 16}
    optional:
      csum: {when: "c == 1", fields: {checksum: 16, reserved1: 16}}
      key:  {when: "k == 1", fields: {key: 32}}
      seq:  {when: "s == 1", fields: {sequence: 32}}
"""

ROUTER_PROGRAM = """
# yaml-language-server: $schema=../../schema/c3po.schema.json
c3po: 1
program: router
doc: A small router exercising every section of the reference.
include: [../protocols/ethernet.yaml, ../protocols/ipv4.yaml, ../protocols/tcp.yaml]
headers:
  vlan:
    fields: {pcp: 3, dei: 1, vid: 12, ethertype: 16}
instances:
  vlan: {type: vlan, stack: 2}
  inner_ethernet: {type: ethernet}
metadata: {nexthop: 16, is_ddos: 1}
parser:
  start: ethernet
  on_error: {default: drop, checksum: to_host}
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {0x8100: vlan, 0x0800: ipv4, "0x86dd": ipv6}
      default: accept
    vlan:
      extract: vlan
      select: vlan.last.ethertype
      cases: {0x8100: vlan, 0x0800: ipv4}
      default: accept
    ipv4:
      extract: ipv4
      verify: [ipv4]
      select: [ipv4.frag_offset, ipv4.protocol]
      cases: {"0, 6": tcp, "0, 17": udp}
      default: accept
    ipv6:
      extract: ipv6
      select: "lookahead(4)"
      cases: {"0x6": accept, "0x0 &&& 0x8": reject, "1 .. 5": accept, _: accept}
    tcp:
      extract: tcp
      next: accept
    udp:
      extract: udp
deparse: [ethernet, vlan, ipv4, ipv6, tcp, udp]
tables:
  acl:
    key: {ipv4.src: ternary, ipv4.dst: ternary, tcp.dst_port: range, ipv4.protocol: exact}
    actions: [permit, deny]
    default: deny
    size: 1024
    counters: true
    entries:
      - {match: {ipv4.protocol: 6, tcp.dst_port: "22 .. 22"}, action: deny, priority: 10}
      - {match: {ipv4.src: "10.0.0.0 &&& 255.0.0.0"}, action: permit, priority: 5}
  routes_v4:
    key: {ipv4.dst: lpm}
    actions: [set_nexthop, drop]
    default: "set_nexthop(1, 2)"
    entries:
      - {match: {ipv4.dst: 10.0.0.0/8}, action: "set_nexthop(3, 0x020000000001)"}
  ports:
    key: {std.ingress_port: exact, meta.nexthop: exact}
    actions: [forward, to_host, reflect, nop]
actions:
  permit:
    do: [nop]
  deny:
    do: [drop]
  set_nexthop:
    params: {port: 16, dmac: 48}
    do:
      - ethernet.src = ethernet.dst
      - ethernet.dst = dmac
      - ipv4.ttl = ipv4.ttl - 1
      - update_checksum(ipv4)
      - update_checksum(tcp, ipv4)
      - forward(port)
counters:  {syn_seen: {size: 1024}}
registers: {last_seen: {width: 32, size: 4096}}
control:
  - if: "valid(ipv4) && ipv4.ttl > 1"
    then: [{apply: routes_v4}]
    else: [to_host]
  - apply: acl
    hit: [count(syn_seen, 0)]
    miss: [drop]
    action: {deny: [drop], permit: ["last_seen[0] = std.packet_length"]}
  - if: "valid(tcp)"
    then:
      - if: "tcp.flags == 0x02"
        then: [count(syn_seen, 1), "meta.is_ddos = 1"]
default_verdict: to_host
"""

MINIMAL_PROGRAM = """
c3po: 1
program: p
"""


@pytest.mark.parametrize(
    "text",
    [IPV4_LIBRARY, TCP_LIBRARY, GENEVE_LIBRARY, GRE_LIBRARY, ROUTER_PROGRAM, MINIMAL_PROGRAM, "c3po: 1\n"],
    ids=["ipv4", "tcp_udp", "geneve", "gre", "router", "minimal_program", "empty_library"],
)
def test_reference_examples_validate(text: str) -> None:
    assert_valid(load_yaml(text))


def test_yaml_integer_keys_are_stringified() -> None:
    document = load_yaml(ROUTER_PROGRAM)
    cases = document["parser"]["states"]["ethernet"]["cases"]
    assert cases == {"33024": "vlan", "2048": "ipv4", "0x86dd": "ipv6"}


# --------------------------------------------------------------------------- rejected documents


def _program(**extra: Any) -> dict[str, Any]:
    return {"c3po": 1, "program": "p", **extra}


def _header(fields: dict[str, Any]) -> dict[str, Any]:
    return {"c3po": 1, "headers": {"h": {"fields": fields}}}


BAD_DOCUMENTS: dict[str, tuple[Any, str]] = {
    "missing_c3po": ({"program": "p"}, ""),
    "wrong_version": ({"c3po": 2}, "c3po"),
    "version_is_bool": ({"c3po": True}, "c3po"),
    "unknown_top_level_key": (_program(tabels={}), ""),
    "width_0": (_header({"a": 0}), "headers/h/fields/a"),
    "width_129": (_header({"a": 129}), "headers/h/fields/a"),
    "width_not_integer": (_header({"a": "8"}), "headers/h/fields/a"),
    "bad_identifier_field": (_header({"Eth-1": 8}), "headers/h/fields"),
    "bad_identifier_header": ({"c3po": 1, "headers": {"Eth-1": {"fields": {"a": 8}}}}, "headers"),
    "bad_identifier_program": ({"c3po": 1, "program": "Eth-1"}, "program"),
    "identifier_too_long": (_header({"a" * 49: 8}), "headers/h/fields"),
    "identifier_reserved_prefix": (_header({"c3po_x": 8}), "headers/h/fields"),
    "unknown_match_kind": (
        _program(tables={"t": {"key": {"ipv4.dst": "prefix"}, "actions": ["drop"]}}),
        "tables/t/key/ipv4.dst",
    ),
    "unknown_header_key": ({"c3po": 1, "headers": {"h": {"fields": {"a": 8}, "flags": 1}}}, "headers/h"),
    "header_without_fields": ({"c3po": 1, "headers": {"h": {"doc": "x"}}}, "headers/h"),
    "library_with_tables": ({"c3po": 1, "tables": {}}, ""),
    "library_with_control": ({"c3po": 1, "control": ["drop"]}, ""),
    "bad_default_verdict": (_program(default_verdict="forward"), "default_verdict"),
    "bad_on_error_kind": (
        _program(parser={"start": "s", "on_error": {"timeout": "drop"}, "states": {"s": {}}}),
        "parser/on_error",
    ),
    "bad_on_error_verdict": (
        _program(parser={"start": "s", "on_error": {"default": "reflect"}, "states": {"s": {}}}),
        "parser/on_error/default",
    ),
    "next_and_select": (
        _program(
            parser={
                "start": "s",
                "states": {"s": {"next": "accept", "select": "h.a", "cases": {"1": "accept"}}},
            }
        ),
        "parser/states/s",
    ),
    "cases_without_select": (
        _program(parser={"start": "s", "states": {"s": {"cases": {"1": "accept"}}}}),
        "parser/states/s",
    ),
    "bad_keyset": (
        _program(parser={"start": "s", "states": {"s": {"select": "h.a", "cases": {"ipv4": "accept"}}}}),
        "parser/states/s/cases",
    ),
    "varlen_max_too_big": (
        {
            "c3po": 1,
            "headers": {"h": {"fields": {"a": 8}, "varlen": {"name": "o", "length": "a", "max": 513}}},
        },
        "headers/h/varlen/max",
    ),
    "bad_checksum_kind": (
        {"c3po": 1, "headers": {"h": {"fields": {"a": 8}, "checksum": {"field": "a", "kind": "crc"}}}},
        "headers/h/checksum/kind",
    ),
    "ipv4_checksum_with_zero_means_none": (
        {
            "c3po": 1,
            "headers": {
                "h": {
                    "fields": {"a": 16},
                    "checksum": {"field": "a", "kind": "ipv4_header", "zero_means_none": True},
                }
            },
        },
        "headers/h/checksum",
    ),
    "checksum_pseudo_key_removed": (
        {
            "c3po": 1,
            "headers": {
                "h": {"fields": {"a": 16}, "checksum": {"field": "a", "kind": "l4", "pseudo": ["ipv4.src"]}}
            },
        },
        "headers/h/checksum",
    ),
    "tlv_type_width_12": (
        {
            "c3po": 1,
            "headers": {
                "h": {
                    "fields": {"a": 8},
                    "varlen": {
                        "name": "o",
                        "length": "a",
                        "max": 4,
                        "tlv": {"type": 12, "length": 8, "max_options": 4, "options": {}},
                    },
                }
            },
        },
        "headers/h/varlen/tlv/type",
    ),
    "statement_if_and_apply": (_program(control=[{"if": "true", "then": [], "apply": "t"}]), "control/0"),
    "statement_unknown_key": (_program(control=[{"apply": "t", "otherwise": []}]), "control/0"),
    "statement_number": (_program(control=[1]), "control/0"),
    "table_size_0": (
        _program(tables={"t": {"key": {"h.a": "exact"}, "actions": ["drop"], "size": 0}}),
        "tables/t/size",
    ),
    "table_default_not_a_call": (
        _program(tables={"t": {"key": {"h.a": "exact"}, "actions": ["drop"], "default": "1+"}}),
        "tables/t/default",
    ),
    "entry_without_action": (
        _program(
            tables={"t": {"key": {"h.a": "exact"}, "actions": ["drop"], "entries": [{"match": {"h.a": 1}}]}}
        ),
        "tables/t/entries/0",
    ),
    "metadata_width_0": (_program(metadata={"m": 0}), "metadata/m"),
    "register_without_size": (_program(registers={"r": {"width": 8}}), "registers/r"),
}


@pytest.mark.parametrize("name", sorted(BAD_DOCUMENTS))
def test_bad_documents_are_rejected(name: str) -> None:
    """Each bad document is rejected, and for the intended reason (the error is at the expected place)."""
    document, where = BAD_DOCUMENTS[name]
    found = errors(document)
    assert any(error.startswith(f"{where or '<root>'}: ") for error in found), found


# --------------------------------------------------------------------------- spec/ files


def spec_files() -> list[Any]:
    # The shipped library and examples only: users' own experiments (e.g. spec/my/) are not ours to judge.
    dirs = [SPEC_DIR / "protocols", SPEC_DIR / "examples"]
    files = sorted({p for d in dirs if d.is_dir() for p in (*d.glob("*.yaml"), *d.glob("*.yml"))})
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no spec/**/*.yaml files yet"), id="none")]
    return [pytest.param(path, id=path.relative_to(SPEC_DIR).as_posix()) for path in files]


@pytest.mark.parametrize("path", spec_files())
def test_spec_file_validates(path: Path) -> None:
    assert_valid(load_yaml(path.read_text(encoding="utf-8")))
