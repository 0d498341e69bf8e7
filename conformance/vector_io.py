"""Vector files: YAML for hand-written ones, JSON Lines for generated ones; pcap and STF through their
modules.

Every failure becomes a `VectorFileError` naming the file and the entry (line for JSON Lines), so the CLI can
print one line instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from c3po_compiler import ir

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


def load_yaml_vectors(path: Path, prog: ir.Program) -> list[Vector]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VectorFileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise VectorFileError(f"{path}{pos}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("vectors"), list):
        raise VectorFileError(f"{path}: expected a map with 'c3po_vectors: 1' and a 'vectors' list")
    _check_header(doc, prog, str(path))
    out = []
    for i, vd in enumerate(doc["vectors"]):
        try:
            out.append(vector_from_data(vd, prog, f"vectors[{i}]"))
        except VectorFormatError as exc:
            raise VectorFileError(f"{path}: {exc}") from None
    _check_unique(out, path)
    return out


def load_jsonl_vectors(path: Path, prog: ir.Program) -> list[Vector]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise VectorFileError(f"{path}: cannot read: {exc.strerror}") from None
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VectorFileError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
        if isinstance(doc, dict) and "c3po_vectors" in doc:
            _check_header(doc, prog, f"{path}:{lineno}")
            continue
        try:
            out.append(vector_from_data(doc, prog, f"line {lineno}"))
        except VectorFormatError as exc:
            raise VectorFileError(f"{path}:{lineno}: {exc}") from None
    _check_unique(out, path)
    return out


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


def dumps_jsonl(vectors: list[Vector], prog: ir.Program, spec: str | None = None) -> str:
    """Deterministic: keys in a fixed order, no timestamps, so the same seed gives identical bytes."""
    lines = [json.dumps(header_data(prog, spec), sort_keys=True)]
    lines += [json.dumps(vector_to_data(v, prog), sort_keys=True) for v in vectors]
    return "\n".join(lines) + "\n"


class _PlainDumper(yaml.SafeDumper):
    """Vectors sharing one control state share its Python objects; the default dumper would write them as
    anchors and aliases (`&id001`, `*id001`), which people editing the file cannot follow. Each vector is
    written out in full instead."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dumps_yaml(vectors: list[Vector], prog: ir.Program, spec: str | None = None) -> str:
    doc = {**header_data(prog, spec), "vectors": [vector_to_data(v, prog) for v in vectors]}
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


def save_vectors(path: str | Path, vectors: list[Vector], prog: ir.Program, spec: str | None = None) -> None:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        p.write_text(dumps_yaml(vectors, prog, spec), encoding="utf-8")
    elif suffix == ".pcap":
        from .pcap import write_vectors_pcap

        write_vectors_pcap(p, _with_expected(p, vectors, prog))
    elif suffix == ".stf":
        from .stf import dumps_stf

        p.write_text(dumps_stf(vectors, prog), encoding="utf-8")
    else:
        p.write_text(dumps_jsonl(vectors, prog, spec), encoding="utf-8")
