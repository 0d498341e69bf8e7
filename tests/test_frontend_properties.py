"""Property: whatever a user does to a valid spec, c3po answers with spec problems, never another exception.

Hypothesis mutates the example programs and the header library they include — deleting keys, swapping values,
changing widths, renaming references, inserting junk, truncating files — and `load_program` must either return
a program or raise `SpecError` whose every problem has a real position. A few mutants also go through the CLI
in a subprocess, which must exit 1 and print no traceback.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c3po_compiler import load_program
from c3po_compiler.problems import SpecError
from c3po_compiler.yaml_source import load_yaml_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
PROTOCOLS = ROOT / "spec" / "protocols"
JUNK: list[Any] = [None, True, 0, -1, 129, 1 << 70, "", "x", "Bad Name", "__x", "ipv4.", "(bit<8>", "0x", "a: b",
                   [], {}, [1, "two"], {"k": None}, "10.0.0.1/33", "ff::1::2", "02:00:00:00:00:01", "1 .. 0"]
NAMES = ["ipv4", "ethernet", "ipv6", "tcp", "udp", "accept", "reject", "drop", "nop", "forward", "meta.x",
         "ipv4.ttl", "std.ingress_port", "vlan[7].vid", "type", "switch", "hash", "c3po_x", "unknown"]

# Edits inside expression strings: {} is a word of the original (a header, field, action, ...).
EXPR_EDITS = ["{}x", "{} + 1", "({} == 1)", "!{}", "~{}", "{}[3:0]", "{}[200:0]", "(bit<4>) {}", "(bit<0>) {}",
              "{}.last", "{}[9]", "{}[0]", "valid({})", "lookahead(8)", "hash(crc32, {})", "{} && true", "{}, 1",
              "meta.{}", "std.{}", "{}(1)", "{} = 1", "0x1ffffffffffffffffffffffffffffffff", "::1", "{}..",
              "present({}.g)", "{} << 200", "-{}", "1.2.3.4", "aa:bb:cc:dd:ee:ff"]

Path_ = tuple[str | int, ...]


def paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path into a YAML document (mapping keys and list indices)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def get(node: Any, path: Path_) -> Any:
    for p in path:
        node = node[p]
    return node


def put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def delete(doc: Any, path: Path_) -> Any:
    if not path:
        return None
    parent = get(doc, path[:-1])
    del parent[path[-1]]
    return doc


@st.composite
def mutated_document(draw: st.DrawFn, doc: Any) -> Any:
    """Apply 1-3 structural mutations to a parsed spec."""
    for _ in range(draw(st.integers(1, 3))):
        all_paths = list(paths(doc))
        path = draw(st.sampled_from(all_paths))
        op = draw(st.sampled_from(["delete", "swap", "width", "rename", "rename_key", "expr", "expr", "junk",
                                   "add_key"]))
        value = get(doc, path) if path in all_paths else None
        if op == "delete":
            doc = delete(doc, path)
        elif op == "swap":
            other = draw(st.sampled_from(all_paths))
            doc = put(doc, path, yaml.safe_load(yaml.safe_dump(get(doc, other))))
        elif op == "width" and isinstance(value, int) and not isinstance(value, bool):
            doc = put(doc, path, draw(st.sampled_from([0, 1, 7, 9, 33, 128, 129, value + 1, value * 2, -value])))
        elif op == "rename" and isinstance(value, str):
            doc = put(doc, path, draw(st.sampled_from([value + "x", value[:-1], value.upper(), *NAMES])))
        elif op == "expr" and isinstance(value, str):
            words = re.findall(r"[a-z_][a-z0-9_]*", value) or [value]
            word = draw(st.sampled_from(words))
            edit = draw(st.sampled_from(EXPR_EDITS))
            doc = put(doc, path, value.replace(word, edit.format(word), 1))
        elif op == "junk":  # copied: JUNK's lists and dicts must not collect earlier mutations
            doc = put(doc, path, copy.deepcopy(draw(st.sampled_from(JUNK))))
        elif op == "rename_key" and isinstance(value, dict) and value:
            old = draw(st.sampled_from(sorted(value, key=str)))
            new = draw(st.sampled_from([*NAMES, "goto", "meta", "a__b", "x" * 49, f"{old}x"]))
            doc = put(doc, path, {(new if k == old else k): v for k, v in value.items()})
        elif op == "add_key" and isinstance(value, dict):
            key = draw(st.sampled_from(["extra", "Bad", "ipv4", "default", "c3po"]))
            value[key] = copy.deepcopy(draw(st.sampled_from(JUNK)))
        if doc is None:
            break
    return doc


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    """Text-level damage that structure-aware mutation cannot produce: truncation and junk lines."""
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(["truncate", "insert", "indent"]))
    at = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if op == "insert":
        junk = draw(st.sampled_from(["  : :\n", "- x\n", "key: [1, 2\n", "\t tab: 1\n", "&a x: *b\n", "}{\n",
                                     "ipv4: {extract: ipv4}\n", "!!python/object:os.system x\n"]))
        return "".join([*lines[:at], junk, *lines[at:]])
    return "".join([*lines[:at], *("  " + ln for ln in lines[at : at + 3]), *lines[at + 3 :]])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spec/ copied, so a mutant in examples/ includes ../protocols/*.yaml as the original does."""
    root = tmp_path_factory.mktemp("mutants")
    shutil.copytree(ROOT / "spec", root / "spec")
    return root / "spec"


def assert_only_spec_errors(spec: Path) -> None:
    try:
        load_program(spec)
    except SpecError as exc:
        assert exc.problems, "SpecError without problems"
        for p in exc.problems:
            assert p.loc.line >= 1 and p.loc.col >= 1, p.format()
            assert p.message


def _write(workdir: Path, rel: str, content: str) -> Path:
    path = workdir / rel
    path.write_text(content, encoding="utf-8")
    return path


def _restore(workdir: Path, rel: str) -> None:
    shutil.copyfile(ROOT / "spec" / rel, workdir / rel)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_documents_give_only_spec_errors(workdir: Path, data: st.DataObject) -> None:
    example = data.draw(st.sampled_from(EXAMPLES), label="example")
    # library names (std/ethernet) are package data, not files of the copied tree: only relative includes mutate
    includes = [str(Path("examples") / i) for i in (yaml.safe_load(example.read_text()).get("include") or [])
                if not str(i).startswith("std/")]
    rel = data.draw(st.sampled_from([f"examples/{example.name}", *includes]), label="mutated file")
    rel = str(Path(rel)).replace("examples/../", "")
    doc = yaml.safe_load((ROOT / "spec" / rel).read_text(encoding="utf-8"))
    mutant = data.draw(mutated_document(doc), label="mutant")
    _write(workdir, rel, yaml.safe_dump(mutant, sort_keys=False))
    try:
        assert_only_spec_errors(workdir / "examples" / example.name)
    finally:
        _restore(workdir, rel)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_text_gives_only_spec_errors(workdir: Path, data: st.DataObject) -> None:
    example = data.draw(st.sampled_from(EXAMPLES), label="example")
    rel = f"examples/{example.name}"
    damaged = data.draw(mutated_text(example.read_text(encoding="utf-8")), label="damaged")
    _write(workdir, rel, damaged)
    try:
        assert_only_spec_errors(workdir / rel)
    finally:
        _restore(workdir, rel)


CLI_MUTANTS = {
    "truncated": lambda text: text[: len(text) // 2],
    "renamed_start": lambda text: text.replace("start: ethernet", "start: ethernett", 1),
    "junk_line": lambda text: text + "\n}{: [\n",
    "bad_width": lambda text: text.replace("c3po: 1", "c3po: 1\nmetadata: {zz: 0}", 1),
}


@pytest.mark.parametrize("name", sorted(CLI_MUTANTS))
def test_cli_reports_mutants_without_traceback(workdir: Path, name: str) -> None:
    example = ROOT / "spec" / "examples" / "router.yaml"
    spec = _write(workdir, "examples/cli_mutant.yaml", CLI_MUTANTS[name](example.read_text(encoding="utf-8")))
    proc = subprocess.run([sys.executable, "-m", "c3po_compiler.cli", "check", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{spec}:" in proc.stderr or "cli_mutant.yaml:" in proc.stderr
    assert ": error: " in proc.stderr


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:{}[]-,&*!|>'\"#\n\t 0x1.%@`?\x07")), max_size=60))
def test_arbitrary_text_is_yaml_or_a_spec_error(text: str) -> None:
    try:
        load_yaml_text(text, "t.yaml")
    except SpecError as exc:
        assert all(p.loc.line >= 1 and p.loc.col >= 1 for p in exc.problems)
