"""Vector files: YAML for hand-written ones, JSON Lines for generated ones; pcap and STF through their
modules. All are read through `c3po_compiler.input_files`: regular files only, at most C3PO_MAX_VECTOR_BYTES
(JSON Lines streamed, each line at most C3PO_MAX_VECTOR_LINE_BYTES); YAML aliases are refused.

Every failure becomes a `VectorFileError` naming the file and the entry (line for JSON Lines), so the CLI can
print one line instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from c3po_compiler import SpecError, ir
from c3po_compiler.input_files import VECTOR_LIMIT, VECTOR_LINE_LIMIT, InputFileError, input_lines
from c3po_compiler.target_api import write_atomic
from c3po_compiler.yaml_source import MAX_DEPTH, load_yaml

from .model import VECTOR_FORMAT_VERSION, Vector
from .vectors import VectorFormatError, header_data, vector_from_data, vector_to_data


class VectorFileError(Exception):
    """A vector file that cannot be read; the message starts with the file name."""


def _check_header(doc: dict[str, Any], prog: ir.Program, where: str) -> None:
    version = doc.get("c3po_vectors")
    if version != VECTOR_FORMAT_VERSION:
        raise VectorFileError(f"{where}: 'c3po_vectors: {VECTOR_FORMAT_VERSION}' expected, found {version!r}")
    program = doc.get("program")
    if program is not None and program != prog.name:
        raise VectorFileError(f"{where}: vectors are for program '{program}', not '{prog.name}'")


def _file_error(path: Path, exc: InputFileError) -> VectorFileError:
    pos = f":{exc.line}" if exc.line is not None else ""
    hint = f" ({exc.hint})" if exc.hint else ""
    return VectorFileError(f"{path}{pos}: {exc.message}{hint}")


def load_yaml_vectors(path: Path, prog: ir.Program) -> list[Vector]:
    """YAML without aliases (a vector file has no use for them, and an alias bomb expands without bound),
    nested at most `yaml_source.MAX_DEPTH` levels, read through `input_files` (regular files up to the cap)."""
    try:
        src = load_yaml(path, str(path), what="vector file", limit=VECTOR_LIMIT, aliases=False)
    except SpecError as exc:
        p = exc.problems[0]
        hint = f" ({p.hint})" if p.hint else ""
        message = p.message.replace("invalid YAML: ", "not valid YAML: ", 1)
        raise VectorFileError(f"{p.loc.file}:{p.loc.line}:{p.loc.col}: {message}{hint}") from None
    doc = src.data
    if not isinstance(doc, dict) or not isinstance(doc.get("vectors"), list):
        raise VectorFileError(f"{path}: expected a map with 'c3po_vectors: 1' and a 'vectors' list")
    _check_header(doc, prog, str(path))
    out = []
    for i, vd in enumerate(doc["vectors"]):
        try:
            out.append(vector_from_data(vd, prog, f"vectors[{i}]"))
        except VectorFormatError as exc:
            raise VectorFileError(f"{path}:{src.loc(('vectors', i)).line}: {exc}") from None
    _check_unique(out, path)
    return out


def load_jsonl_vectors(path: Path, prog: ir.Program) -> list[Vector]:
    """Streamed: one line in memory at a time, each at most C3PO_MAX_VECTOR_LINE_BYTES (see `input_files`)."""
    out = []
    lines = input_lines(path, "vector file", VECTOR_LIMIT, VECTOR_LINE_LIMIT)
    while True:
        try:
            item = next(lines, None)
        except InputFileError as exc:
            raise _file_error(path, exc) from None
        if item is None:
            break
        lineno, line = item
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VectorFileError(f"{path}:{lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise VectorFileError(f"{path}:{lineno}: the JSON nests too deeply") from None
        except ValueError as exc:  # an integer of more digits than Python converts
            raise VectorFileError(f"{path}:{lineno}: not valid JSON: {exc}") from None
        if _depth(doc) > MAX_DEPTH:
            raise VectorFileError(f"{path}:{lineno}: the vector nests deeper than {MAX_DEPTH} levels")
        if isinstance(doc, dict) and "c3po_vectors" in doc:
            _check_header(doc, prog, f"{path}:{lineno}")
            continue
        try:
            out.append(vector_from_data(doc, prog, f"line {lineno}"))
        except VectorFormatError as exc:
            raise VectorFileError(f"{path}:{lineno}: {exc}") from None
    _check_unique(out, path)
    return out


def _depth(value: Any) -> int:
    """How many levels of maps and lists a JSON value has (up to one past MAX_DEPTH), without recursion."""
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level and depth <= MAX_DEPTH:
        depth += 1
        below: list[Any] = []
        for v in level:
            for x in v.values() if isinstance(v, dict) else v:
                if isinstance(x, dict | list):
                    below.append(x)
        level = below
    return depth


def _check_unique(vectors: list[Vector], path: Path) -> None:
    seen: set[str] = set()
    for v in vectors:
        if v.name in seen:
            raise VectorFileError(f"{path}: vector name '{v.name}' is used twice")
        seen.add(v.name)


def load_vectors(path: str | Path, prog: ir.Program) -> list[Vector]:
    """By suffix: .yaml/.yml, .jsonl/.json, .pcap (expected from the oracle), .stf."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_yaml_vectors(p, prog)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return load_jsonl_vectors(p, prog)
    if suffix == ".pcap":
        from .pcap import PcapError, vectors_from_pcap

        try:
            return vectors_from_pcap(p)
        except PcapError as exc:
            raise VectorFileError(str(exc)) from None
    if suffix == ".stf":
        from .stf import StfError, load_stf

        try:
            return load_stf(p, prog)
        except StfError as exc:
            raise VectorFileError(str(exc)) from None
    raise VectorFileError(f"{p}: unknown vector file type '{suffix}' (use .yaml, .jsonl, .pcap or .stf)")


MAX_COVERAGE_ITEMS = 40  # uncovered/infeasible items kept per coverage part in a file's header


def coverage_header(coverage: dict[str, Any] | None) -> dict[str, Any]:
    """The generator's coverage summary as a vector file's header carries it (`coverage`), so a report made
    from the file can show it; long item lists are cut (`more` says how many were left out)."""
    if not coverage:
        return {}
    out: dict[str, Any] = {}
    for part, c in coverage.items():
        kept = {k: v for k, v in c.items() if k in ("total", "feasible", "covered", "percent", "class")}
        more = 0
        for key in ("uncovered", "infeasible"):
            items = list(c.get(key, []))
            kept[key] = items[:MAX_COVERAGE_ITEMS]
            more += max(0, len(items) - MAX_COVERAGE_ITEMS)
        if more:
            kept["more"] = more
        out[part] = kept
    return {"coverage": out}


def read_coverage(path: str | Path) -> dict[str, Any] | None:
    """The coverage summary in a generated vector file's header (JSON Lines or YAML), or None."""
    p = Path(path)
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            doc = load_yaml(p, str(p), what="vector file", limit=VECTOR_LIMIT, aliases=False).data
        else:
            first = next(input_lines(p, "vector file", VECTOR_LIMIT, VECTOR_LINE_LIMIT), None)
            doc = json.loads(first[1]) if first is not None else None
    except (SpecError, InputFileError, ValueError):
        return None
    cov = doc.get("coverage") if isinstance(doc, dict) else None
    return cov if isinstance(cov, dict) else None


def dumps_jsonl(
    vectors: list[Vector], prog: ir.Program, spec: str | None = None, coverage: dict[str, Any] | None = None
) -> str:
    """Deterministic: keys in a fixed order, no timestamps, so the same seed gives identical bytes."""
    lines = [json.dumps({**header_data(prog, spec), **coverage_header(coverage)}, sort_keys=True)]
    lines += [json.dumps(vector_to_data(v, prog), sort_keys=True) for v in vectors]
    return "\n".join(lines) + "\n"


class _PlainDumper(yaml.SafeDumper):
    """Vectors sharing one control state share its Python objects; the default dumper would write them as
    anchors and aliases (`&id001`, `*id001`), which people editing the file cannot follow. Each vector is
    written out in full instead."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dumps_yaml(
    vectors: list[Vector], prog: ir.Program, spec: str | None = None, coverage: dict[str, Any] | None = None
) -> str:
    doc = {
        **header_data(prog, spec),
        **coverage_header(coverage),
        "vectors": [vector_to_data(v, prog) for v in vectors],
    }
    return yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=110)


def _with_expected(path: Path, vectors: list[Vector], prog: ir.Program) -> list[Vector]:
    """Copies of `vectors`, the ones without expected results given the reference interpreter's (the callers'
    vectors are left as they are); a vector the oracle cannot run is a VectorFileError."""
    from .runner import fill_expected

    copies = [dataclasses.replace(v) for v in vectors]
    problems = fill_expected(prog, copies)
    if problems:
        name, why = next(iter(problems.items()))
        raise VectorFileError(f"{path}: vector '{name}': no expected frames for the pcap export: {why}")
    return copies


def save_vectors(
    path: str | Path,
    vectors: list[Vector],
    prog: ir.Program,
    spec: str | None = None,
    coverage: dict[str, Any] | None = None,
) -> None:
    """Every file is written under a temporary name and renamed (a pcap export writes several). `coverage`
    (the generator's summary) goes into the header of YAML and JSON Lines files."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        write_atomic(p, dumps_yaml(vectors, prog, spec, coverage))
    elif suffix == ".pcap":
        from .pcap import write_vectors_pcap

        write_vectors_pcap(p, _with_expected(p, vectors, prog))
    elif suffix == ".stf":
        from .stf import dumps_stf

        write_atomic(p, dumps_stf(vectors, prog))
    else:
        write_atomic(p, dumps_jsonl(vectors, prog, spec, coverage))
