"""The JSON Schema and the compiler describe one language: their enums, name rules and defaults must agree.

The schema is what editors validate against while the user types; the compiler is what actually runs. Each test
here fails as soon as one of them changes without the other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from c3po_compiler import ir, load_program
from c3po_compiler.loader import schema, schema_problems
from c3po_compiler.names import IDENT_RE, MAX_IDENT
from c3po_compiler.typecheck import MAX_WIDTH
from c3po_compiler.yaml_source import load_yaml, load_yaml_text

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted([*(ROOT / "spec" / "protocols").glob("*.yaml"), *(ROOT / "spec" / "examples").glob("*.yaml")])


def defs() -> dict[str, Any]:
    d: dict[str, Any] = schema()["$defs"]
    return d


def test_schema_is_valid_against_its_metaschema() -> None:
    Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize(("definition", "compiler"), [
    ("verdict", ir.ERROR_VERDICTS),
    ("match_kind", ir.MATCH_KINDS),
    ("parse_error", ir.ERROR_KINDS),
    ("checksum_kind", ir.CHECKSUM_KINDS),
])
def test_schema_enums_are_the_compilers(definition: str, compiler: list[str]) -> None:
    assert defs()[definition]["enum"] == list(compiler)


def test_on_error_names_every_parse_error() -> None:
    assert set(defs()["on_error"]["properties"]) == {*ir.ERROR_KINDS, "default"}


def test_identifier_rules_agree() -> None:
    ident = defs()["identifier"]
    assert ident["pattern"] == IDENT_RE.pattern
    assert ident["maxLength"] == MAX_IDENT


def test_width_range_agrees() -> None:
    width = defs()["width"]
    assert (width["minimum"], width["maximum"]) == (1, MAX_WIDTH)


@pytest.mark.parametrize("spec", SPEC_FILES, ids=[str(p.relative_to(ROOT)) for p in SPEC_FILES])
def test_every_shipped_spec_is_schema_valid(spec: Path) -> None:
    assert [p.format() for p in schema_problems(load_yaml(spec))] == []


DEFAULTS_SPEC = """\
c3po: 1
program: defaults
headers:
  opt:
    fields: {kind: 8, len: 8}
    varlen:
      length: "(bit<16>) len"
      max: 40
      tlv:
        options:
          mss: {type: 2, fields: {value: 16}}
  geneve_like:
    fields: {opt_len: 8, next: 8}
    varlen:
      length: "(bit<16>) opt_len * 4"
      max: 64
      tlv:
        header: {class: 16, type_: 8, length: 8}
        size: "(bit<16>) length * 4 + 4"
        options:
          one: {match: {class: 0x0102}, fields: {value: 32}}
  plain:
    fields: {a: 8, checksum: 16, b: 8}
    checksum: {field: checksum}
parser:
  start: s
  states:
    s: {extract: opt, next: t}
    t: {extract: geneve_like, next: u}
    u: {extract: plain}
control:
  - if: "valid(opt.mss) && valid(geneve_like.one)"
    then: [drop]
"""


def test_documented_defaults_are_accepted_by_the_schema() -> None:
    assert [p.format() for p in schema_problems(load_yaml_text(DEFAULTS_SPEC, "defaults.yaml"))] == []


def test_documented_defaults_are_applied_by_the_compiler(tmp_path: Path) -> None:
    spec = tmp_path / "defaults.yaml"
    spec.write_text(DEFAULTS_SPEC, encoding="utf-8")
    prog = load_program(spec).program
    opt = prog.header_types["opt"].varlen
    assert opt is not None and opt.tlv is not None
    assert opt.name == "options"
    assert [(f.name, f.width) for f in opt.tlv.header] == [("type", 8), ("length", 8)]
    assert opt.tlv.max_options == opt.max_bytes == 40
    keyed = prog.header_types["geneve_like"].varlen
    assert keyed is not None and keyed.tlv is not None
    assert keyed.tlv.key == ["class"]
    assert keyed.tlv.max_options == 64
    assert keyed.tlv.options[0].match == {"class": 0x0102}
    checksum = prog.header_types["plain"].checksum
    assert checksum is not None and checksum.kind == "ipv4_header"


def test_string_tlv_match_values_are_constants(tmp_path: Path) -> None:
    """The schema allows a quoted value ('0x0102'); the compiler reads it as the same number."""
    spec = tmp_path / "quoted.yaml"
    spec.write_text(DEFAULTS_SPEC.replace("{class: 0x0102}", '{class: "0x0102"}'), encoding="utf-8")
    keyed = load_program(spec).program.header_types["geneve_like"].varlen
    assert keyed is not None and keyed.tlv is not None
    assert keyed.tlv.options[0].match == {"class": 0x0102}


def test_table_actions_description_names_every_builtin() -> None:
    """Editors show this description when completing a table's actions: it must list what exists."""
    text = defs()["table"]["properties"]["actions"]["description"]
    assert set(re.findall(r"\b[a-z_]+\b", text.split("built-ins", 1)[1])) >= set(ir.BUILTIN_ACTIONS)
