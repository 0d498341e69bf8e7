"""YAML with positions and includes: what the loader must get right before any spec semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.problems import SpecError
from c3po_compiler.yaml_source import load_yaml_text

ROOT = Path(__file__).resolve().parent.parent


def problems_of(text: str) -> list[str]:
    try:
        load_yaml_text(text, "t.yaml")
    except SpecError as exc:
        return [f"{p.loc.line}:{p.loc.col}: {p.message}" for p in exc.problems]
    return []


@pytest.mark.parametrize(("scalar", "expected"), [
    ("02:00:00:00:00:01", "02:00:00:00:00:01"),  # YAML 1.1 would read a base-60 integer
    ("10:20:30:40:50:59", "10:20:30:40:50:59"),
    ("0x0800", 0x0800),
    ("0b101", 5),
    ("1_000", 1000),
    ("010", 8),  # YAML 1.1 octal, as PyYAML reads it
    ("10.0", "10.0"),  # no floats in the language: kept as text for the schema to reject
    ("'0x0800'", "0x0800"),
    ("yes", True),
    ("~", None),
])
def test_scalars(scalar: str, expected: object) -> None:
    assert load_yaml_text(f"v: {scalar}\n", "t.yaml").data == {"v": expected}


def test_positions_of_values_and_keys() -> None:
    src = load_yaml_text("a:\n  bb: [1, \"x + y\"]\n", "t.yaml")
    assert (src.loc(("a", "bb"), key=True).line, src.loc(("a", "bb"), key=True).col) == (2, 3)
    assert (src.loc(("a", "bb", 0)).line, src.loc(("a", "bb", 0)).col) == (2, 8)
    # a quoted scalar's position is its first character, so expression columns line up
    assert (src.loc(("a", "bb", 1)).line, src.loc(("a", "bb", 1)).col) == (2, 12)
    assert src.loc(("a", "bb", 1)).path == "$.a.bb[1]"
    # an unknown path falls back to the nearest known parent
    assert src.loc(("a", "bb", 7)).col == 7


def test_duplicate_keys_are_errors_with_both_positions() -> None:
    found = problems_of("a: 1\nb: 2\na: 3\n")
    assert found == ["3:1: duplicate key 'a'"]


def test_keys_equal_as_json_strings_are_duplicates() -> None:
    assert problems_of("m: {0x10: a, \"16\": b}\n") == ["1:14: duplicate key '16'"]


def test_syntax_errors_have_positions() -> None:
    assert problems_of("a: [1, 2\nb: 3\n") == ["2:2: invalid YAML: did not find expected ',' or ']'"]


def test_unsafe_tags_are_not_constructed() -> None:
    """A spec is data: a python/object tag is an error, never code."""
    assert problems_of("a: !!python/object/apply:os.system ['true']\n") == [
        "1:4: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"]
    assert problems_of("a: !custom 1\n") == ["1:4: unsupported YAML tag '!custom'"]


def write(tmp: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text, encoding="utf-8")


PROGRAM = """c3po: 1
program: p
include: [{includes}]
parser:
  start: s
  states:
    s: {{extract: h}}
"""
LIB_H = "c3po: 1\nheaders:\n  h:\n    fields: {a: 8}\n"


def messages(spec: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_program(spec)
    return [f"{Path(p.loc.file).name}:{p.loc.line}:{p.loc.col}: {p.message}" for p in info.value.problems]


def test_diamond_includes_load_each_file_once(tmp_path: Path) -> None:
    write(tmp_path, {"top.yaml": PROGRAM.format(includes="a.yaml, b.yaml"),
                     "a.yaml": "c3po: 1\ninclude: [h.yaml]\n", "b.yaml": "c3po: 1\ninclude: [h.yaml]\n",
                     "h.yaml": LIB_H})
    prog = load_program(tmp_path / "top.yaml").program
    assert [Path(f).name for f in prog.files] == ["h.yaml", "a.yaml", "b.yaml", "top.yaml"]


def test_include_paths_are_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, {"specs/top.yaml": PROGRAM.format(includes="../lib/a.yaml"),
                     "lib/a.yaml": "c3po: 1\ninclude: [h.yaml]\n", "lib/h.yaml": LIB_H})
    assert load_program(tmp_path / "specs" / "top.yaml").program.header_types["h"].fields[0].name == "a"


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, {"top.yaml": PROGRAM.format(includes="h.yaml"),
                     "h.yaml": LIB_H.replace("c3po: 1\n", "c3po: 1\ninclude: [h.yaml]\n")})
    found = messages(tmp_path / "top.yaml")
    assert len(found) == 1
    assert found[0].startswith("h.yaml:2:11: include cycle: ")
    assert found[0].endswith("h.yaml -> " + str(Path(found[0].split(" -> ")[-1])))


def test_missing_include_is_reported_at_the_include(tmp_path: Path) -> None:
    write(tmp_path, {"top.yaml": PROGRAM.format(includes="h.yaml, nope.yaml"), "h.yaml": LIB_H})
    found = messages(tmp_path / "top.yaml")
    assert len(found) == 1 and found[0].startswith("top.yaml:3:19: included spec file not found: ")


def test_missing_top_level_file_is_a_spec_error(tmp_path: Path) -> None:
    assert messages(tmp_path / "absent.yaml")[0].startswith("absent.yaml:1:1: spec file not found")


def test_binary_file_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert "cannot read spec" in messages(tmp_path / "bin.yaml")[0]


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    write(tmp_path, {"top.yaml": PROGRAM.format(includes="a.yaml, b.yaml").replace("program: p", "program: P"),
                     "a.yaml": LIB_H.replace("a: 8", "a: 0"), "b.yaml": "c3po: 2\n"})
    found = messages(tmp_path / "top.yaml")
    assert found == ["a.yaml:4:17: 0 is out of range 1..128", "b.yaml:1:7: 2 is not valid here",
                     "top.yaml:2:10: 'P' is not a valid name"]


def test_an_alias_bomb_is_refused_quickly() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    found = problems_of("\n".join(levels) + "\n")
    assert len(found) == 1 and "the spec expands to more than 200000 values" in found[0]


def test_anchors_and_aliases_within_bounds_are_plain_values() -> None:
    assert load_yaml_text("a: &w {x: 8}\nb: *w\n", "t.yaml").data == {"a": {"x": 8}, "b": {"x": 8}}
    assert problems_of("a: *nope\n") == ["1:4: invalid YAML: found undefined alias"]


def test_recursive_aliases_and_deep_nesting_are_spec_errors() -> None:
    assert problems_of("a: &a [*a]\n") == ["1:4: a YAML alias refers to a node that contains it"]
    assert problems_of("[" * 100 + "]" * 100)[0].endswith("the spec nests deeper than 64 levels")
    assert problems_of("[" * 100000 + "]" * 100000)[0].startswith("1:1001: invalid YAML: ")


def test_control_characters_are_reported_where_they_are() -> None:
    assert problems_of("a: 1\nb: x\x07y\n") == ["2:5: invalid YAML: unacceptable character '\\x07' (U+0007)"]


def test_a_yaml_error_in_one_include_does_not_hide_the_others(tmp_path: Path) -> None:
    write(tmp_path, {"top.yaml": PROGRAM.format(includes="a.yaml, b.yaml, h.yaml"), "a.yaml": "c3po: [1\n",
                     "b.yaml": "c3po: 1\nheaders: {x: {fields: {a: 0}}}\n", "h.yaml": LIB_H})
    found = messages(tmp_path / "top.yaml")
    assert [f.split(": ")[0] for f in found] == ["a.yaml:2:1", "b.yaml:2:27"]
