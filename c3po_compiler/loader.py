"""Load a spec: YAML with positions, includes, schema validation, lowering to IR, semantic checks.

`load_program()` is the one entry point the CLI, the targets and the conformance tools use. It either returns
a checked `Program` plus warnings, or raises `SpecError` with every problem it found.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from . import ir
from .checks import run_checks
from .input_files import SPEC_LIMIT, InputFileError, decode_text, read_input
from .lower import Lowerer
from .problems import Loc, Problem, SpecError, did_you_mean, error
from .yaml_source import Source, load_yaml_text

# Package data (c3po_compiler/schema and c3po_compiler/std are symlinks to the clone's schema/ and spec/protocols/,
# which setuptools follows when it builds a wheel or sdist): found the same way in a clone and in an installation.
PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = PACKAGE_DIR / "schema" / "c3po.schema.json"
VECTORS_SCHEMA_PATH = PACKAGE_DIR / "schema" / "vectors.schema.json"
# The protocol library of each language version: `include: [std/NAME]` in a file with `c3po: V` loads
# LIBRARIES[V]/NAME.yaml. A new language version gets a directory of its own, so a spec keeps the library it was
# written against; within a version the library only grows (new files, new header types), never changes a field.
LIBRARIES: dict[int, Path] = {1: PACKAGE_DIR / "std"}
LIBRARY_PREFIX = "std/"
_LIBRARY_SUFFIXES = (".yaml", ".yml")


@dataclass
class Loaded:
    program: ir.Program
    warnings: list[Problem]


@functools.cache
def schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())  # type: ignore[no-any-return]


def display_name(path: Path) -> str:
    """Paths relative to the working directory when below it, so messages stay short and stable."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _stringify_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _stringify_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_stringify_keys(v) for v in data]
    return data


def schema_problems(src: Source) -> list[Problem]:
    """Schema errors at the position of the offending node, one per node, with a hint of what is valid."""
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    errors = sorted(_validator().iter_errors(_stringify_keys(src.data)), key=lambda e: list(map(str, e.path)))
    # 'dependentRequired' fires once per program-only key of a file without 'program': one problem says it all.
    needs_program = [e for e in errors if e.validator == "dependentRequired" and not e.absolute_path]
    if needs_program:
        errors = [e for e in errors if e not in needs_program]
        dependents: Any = needs_program[0].validator_value
        keys = [k for k in src.data if k in {str(d) for d in dependents}]
        listed = ", ".join(f"'{k}'" for k in keys)
        problems.append(error(src.loc((keys[0],), key=True),
                              f"{listed} {'is' if len(keys) == 1 else 'are'} only allowed in a program, and this "
                              "file has no 'program' name",
                              "a top-level spec starts with 'program: NAME'; an included library contributes "
                              "'headers' only"))
    for path, message, hint in _cases_without_state(src.data):
        problems.append(error(src.loc(path, key=True), message, hint))
        errors = [e for e in errors if tuple(map(str, e.absolute_path)) != tuple(map(str, path))]
    for err in errors:
        err = _deepest(err)
        path = tuple(err.absolute_path)
        message, hint, key_path = _explain(err)
        loc = src.loc(key_path, key=True) if key_path is not None else src.loc(path)
        dedupe = (loc.line, loc.col, message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        problems.append(error(loc, message, hint))
    return problems


def _cases_without_state(data: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """Cases whose next state is null: in a flow mapping `{0, 60: dopts}` YAML reads the unquoted tuple keyset as
    two keys, '0' with no value. The schema would say "null is not a valid name" (twice); the mistake is the
    missing quotes, so that is the one problem reported, at the key."""
    out: list[tuple[tuple[Any, ...], str, str]] = []
    parser = data.get("parser") if isinstance(data, dict) else None
    states = parser.get("states") if isinstance(parser, dict) else None
    for sname, st in (states or {}).items() if isinstance(states, dict) else ():
        cases = st.get("cases") if isinstance(st, dict) else None
        if not isinstance(cases, dict):
            continue
        keys = list(cases)
        for i, k in enumerate(keys):
            if cases[k] is not None:
                continue
            nxt = keys[i + 1] if i + 1 < len(keys) else None
            if nxt is not None and isinstance(cases[nxt], str):
                hint = (f"quote a keyset of several values: {{\"{k}, {nxt}\": {cases[nxt]}}} (unquoted, YAML reads "
                        f"'{k}, {nxt}: {cases[nxt]}' as two cases, the first without a state)")
            else:
                hint = f"write '{k}: STATE', the state this case goes to"
            out.append((("parser", "states", str(sname), "cases", str(k)), f"case '{k}' has no next state", hint))
    return out


def _deepest(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific alternative of an anyOf/oneOf: the one that got deepest into the instance.

    A branch that failed only on the instance's type (a statement that is an object, not a string) says least.
    """
    if err.context:
        best = max(err.context, key=lambda e: (len(e.absolute_path), _rank(e), -len(e.absolute_schema_path)))
        if len(best.absolute_path) >= len(err.absolute_path):
            return _deepest(best)
    return err


def _rank(err: jsonschema.ValidationError) -> int:
    """How much an alternative's error tells the user: a misspelt key of that alternative says most."""
    if err.validator == "additionalProperties":
        from .problems import did_you_mean

        props = sorted((err.schema.get("properties") or {}).keys()) if isinstance(err.schema, dict) else []
        extra = [k for k in err.instance if k not in props] if isinstance(err.instance, dict) else []
        close = did_you_mean(extra[0], props) if extra and props else None
        return 4 if close and close.startswith("did you mean") else 2
    return {"type": 0, "required": 1}.get(str(err.validator), 3)


def _def_title(subschema: Any) -> str | None:
    """The short name ('keyset', 'field reference') of the schema definition a pattern belongs to."""
    return subschema.get("title") if isinstance(subschema, dict) else None


_PATTERN_HINTS = {
    "keyset": "write VALUE, VALUE &&& MASK, LO .. HI or _ (any), one per select expression, comma-separated",
    "field reference": "write 'hdr.field', 'hdr[i].field', 'hdr.opt.field', 'meta.x' or 'std.x'",
    "action call": "write 'NAME' or 'NAME(arg, ...)' with constant arguments",
}


_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "nothing (null)"}
_SHOWN_CHARS = 60  # of a value echoed in a message: its start, then '...'


def _value(instance: Any) -> str:
    """A spec value as a message shows it: YAML words (null, true, a mapping), never Python's type names."""
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "true" if instance else "false"
    if isinstance(instance, (int, float)):
        text = str(instance)
        return text if len(text) <= _SHOWN_CHARS else f"a {len(text)}-digit number"
    if isinstance(instance, str):
        text = instance if len(instance) <= _SHOWN_CHARS else instance[:_SHOWN_CHARS] + "..."
        return f"'{text}'"
    if isinstance(instance, dict):
        return "a mapping"
    if isinstance(instance, list):
        return "a list"
    return "a value of another kind"  # pragma: no cover - YAML gives nothing else


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in names)


def _description(err: jsonschema.ValidationError) -> str | None:
    return err.schema.get("description") if isinstance(err.schema, dict) else None


def _explain(err: jsonschema.ValidationError) -> tuple[str, str, tuple[Any, ...] | None]:
    """The problem in the project's words (message, hint, the key to point at): jsonschema's own text is never
    shown, nor Python's type names."""
    v = err.validator
    where = tuple(err.absolute_path)
    shown = _value(err.instance)
    if v == "additionalProperties" or v == "unevaluatedProperties":
        props = sorted((err.schema.get("properties") or {}).keys()) if isinstance(err.schema, dict) else []
        extra = [k for k in err.instance if k not in props] if isinstance(err.instance, dict) else []
        name = extra[0] if extra else "?"
        hint = ("valid keys here: " + ", ".join(props)) if props else "remove it: no other keys are allowed here"
        from .problems import did_you_mean

        close = did_you_mean(name, props) if props else None
        if close and close.startswith("did you mean"):
            hint = close + (f" (valid keys: {', '.join(props)})" if len(props) <= 12 else "")
        return f"unknown key {_value(name)}", hint, (*where, name)
    if v == "required":
        required: Any = err.validator_value
        have = err.instance if isinstance(err.instance, dict) else {}
        missing = next((str(r) for r in required if r not in have), "?")
        hint = ("every spec file starts with 'c3po: 1', the language version" if missing == "c3po"
                else f"add '{missing}: ...' here" + (f" ({_description(err)})" if _description(err) else ""))
        return f"missing required key '{missing}'", hint, None
    if v == "enum":
        values: Any = err.validator_value
        allowed = ", ".join(map(str, values))
        what = _def_title(err.schema)
        message = f"{shown} is not a valid {what}" if what else f"{shown} is not valid here"
        return message, f"expected one of: {allowed}", None
    if v == "uniqueItems" and isinstance(err.instance, list):
        seen_items: list[Any] = []
        for i, item in enumerate(err.instance):
            if item in seen_items:
                return f"{_value(item)} is listed twice", f"first at index {seen_items.index(item)}", (*where, i)
            seen_items.append(item)
    if v == "const":
        return f"{shown} is not valid here", f"expected {_value(err.validator_value)}", None
    if v in ("minimum", "maximum") and isinstance(err.schema, dict) and "minimum" in err.schema \
            and "maximum" in err.schema:
        return (f"{shown} is out of range {err.schema['minimum']}..{err.schema['maximum']}",
                _description(err) or f"write a value from {err.schema['minimum']} to {err.schema['maximum']}",
                None)
    title = _def_title(err.schema)
    key_path = (*where, err.instance) if "propertyNames" in err.absolute_schema_path else None
    if v == "maxLength" and isinstance(err.instance, str):
        limit: Any = err.validator_value
        return (f"{shown} is longer than {limit} characters",
                f"{title}s are at most {limit} characters" if title else f"at most {limit} characters here",
                key_path)
    if v == "pattern" and title and title != "name":
        return (f"{shown} is not a valid {title}",
                _PATTERN_HINTS.get(title) or _description(err) or f"write a {title}", key_path)
    if v == "pattern" or v == "not":
        what = _description(err) or ""
        if "identifier" in what.lower() or "name" in what.lower()[:40]:
            return (f"{shown} is not a valid name",
                    "names match [a-z][a-z0-9_]*, at most 48 characters, not starting with 'c3po_'", key_path)
        return f"{shown} is not valid here", what or "see docs/spec-reference.md for what is valid here", None
    if v in ("minimum", "exclusiveMinimum"):
        bound: Any = err.validator_value
        least = "at least" if v == "minimum" else "more than"
        return f"{shown} is too small", _description(err) or f"the value here is {least} {bound}", None
    if v in ("maximum", "exclusiveMaximum"):
        bound = err.validator_value
        most = "at most" if v == "maximum" else "less than"
        return f"{shown} is too large", _description(err) or f"the value here is {most} {bound}", None
    if v == "type":
        expected = _expected(err.validator_value)
        desc = _description(err)
        return f"expected {expected}, found {shown}", f"write {expected} here" + (f": {desc}" if desc else ""), None
    if v == "propertyNames" and isinstance(err.instance, str):
        return f"{shown} is not a valid name", "names match [a-z][a-z0-9_]*", where
    if v in ("minItems", "minProperties", "minLength"):
        fewest: Any = err.validator_value
        unit = {"minItems": "item", "minProperties": "entry", "minLength": "character"}[str(v)]
        plural = "entries" if unit == "entry" else unit + "s"
        return (f"{shown} is empty" if fewest == 1 else f"{shown} is too short",
                f"write at least {fewest} {unit if fewest == 1 else plural} here", None)
    if v == "maxItems" or v == "maxProperties":
        return f"{shown} has too many items", f"at most {err.validator_value} here", None
    return f"{shown} is not valid here", _description(err) or "see docs/spec-reference.md for what is valid here", None


# Longest include name and file name component (bytes): Linux's PATH_MAX and NAME_MAX.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def _name_problem(name: str) -> tuple[str, str] | None:
    """Why a file name cannot name a file (message, hint), checked before the OS sees it."""
    if "\0" in name:
        return "the file name contains a NUL byte", "file names cannot contain NUL bytes"
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        return (f"the file name is {len(encoded)} bytes long, more than {MAX_PATH_BYTES}",
                f"paths are at most {MAX_PATH_BYTES} bytes")
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > MAX_NAME_BYTES:
        return (f"a part of the file name is {longest} bytes long, more than {MAX_NAME_BYTES}",
                f"each directory or file name is at most {MAX_NAME_BYTES} bytes")
    return None


def _load_tree(path: Path, chain: list[Path], loaded: dict[Path, Source], order: list[Source],
               problems: list[Problem], include_loc: Loc | None, raw: dict[Path, bytes],
               written_name: str | None = None) -> None:
    shown = display_name(path)
    loc = include_loc or Loc(shown, 1, 1)
    verb = "cannot read spec" if include_loc is None else "cannot include"
    bad_name = _name_problem(str(path))
    if bad_name is not None:  # the name as written, shortened: the position points at it
        written = str(path) if written_name is None else written_name
        written = written if len(written) <= 80 else written[:60] + "..." + written[-12:]
        problems.append(error(loc, f"{verb} {written!r}: {bad_name[0]}", bad_name[1]))
        return
    try:
        path = path.resolve()
        is_file, is_dir, exists = path.is_file(), path.is_dir(), path.exists()
    except (OSError, RuntimeError) as exc:  # a name too long once joined to its directory, a symlink loop
        problems.append(error(loc, f"{verb} {shown}: {getattr(exc, 'strerror', None) or exc}",
                              "check the path: each directory or file name at most 255 bytes, no symlink loop"))
        return
    if path in chain:
        cycle = " -> ".join(display_name(p) for p in [*chain[chain.index(path):], path])
        assert include_loc is not None
        problems.append(error(include_loc, f"include cycle: {cycle}", "remove one of these includes"))
        return
    if path in loaded:
        return
    shown = display_name(path)
    if not is_file and not exists:
        if include_loc is None:
            message, hint = f"spec file not found: {shown}", "name an existing .yaml file, relative to this directory"
        else:
            message, hint = (f"included spec file not found: {shown}",
                             "include paths are relative to the including file")
            stem = (written_name or "").removesuffix(".yml").removesuffix(".yaml")
            if written_name != stem and f"{LIBRARY_PREFIX}{Path(stem).name}" in library_names():
                hint = (f"the protocol library is included by name, without '.yaml': "
                        f"'{LIBRARY_PREFIX}{Path(stem).name}'; paths are relative to the including file")
        problems.append(error(loc, message, hint))
        return
    if is_dir:
        problems.append(error(loc, f"{shown} is a directory, not a spec file", "name the .yaml files, e.g. DIR/*.yaml"))
        return
    try:
        data = read_input(path, "file", SPEC_LIMIT)
        text = decode_text(data, "file")
    except InputFileError as exc:
        where = Loc(shown, exc.line, exc.col or 1) if exc.line is not None else loc
        problems.append(error(where, f"{verb} {shown}: {exc.message}", exc.hint))
        return
    try:
        src = load_yaml_text(text, shown)
    except SpecError as exc:  # keep going: the other files' problems are reported in the same run
        problems.extend(exc.problems)
        return
    loaded[path] = src
    raw[path] = data
    if not isinstance(src.data, dict):
        problems.append(error(src.loc(()), "a spec file is a YAML mapping", "start with 'c3po: 1'"))
        return
    schema_errs = schema_problems(src) if SCHEMA_PATH.is_file() else []
    problems.extend(schema_errs)
    includes = src.data.get("include") or []
    if isinstance(includes, list):
        for i, inc in enumerate(includes):
            if not isinstance(inc, str):
                continue
            inc_loc = src.loc(("include", i))
            if is_library_name(inc):
                found = _library_file(inc, src.data.get("c3po"), inc_loc, problems)
                if found is not None:
                    _load_tree(found, [*chain, path], loaded, order, problems, inc_loc, raw, inc)
                continue
            _load_tree(path.parent / inc, [*chain, path], loaded, order, problems, inc_loc, raw, inc)
    order.append(src)


def is_library_name(include: str) -> bool:
    """`std/NAME` (no directory below it, no .yaml suffix) names a library file; anything else is a path relative
    to the including file, so a user's own `std/x.yaml` stays reachable."""
    return include.startswith(LIBRARY_PREFIX) and "/" not in include[len(LIBRARY_PREFIX):] \
        and not include.endswith(_LIBRARY_SUFFIXES)


def library_names(version: int = 1) -> list[str]:
    """The names (`std/ethernet`, ...) the library of a language version offers, sorted."""
    directory = LIBRARIES.get(version)
    if directory is None or not directory.is_dir():
        return []
    return sorted(LIBRARY_PREFIX + p.stem for p in directory.glob("*.yaml"))


def _library_file(name: str, version: Any, loc: Loc, problems: list[Problem]) -> Path | None:
    """The file `std/NAME` names for the including file's language version, or None with the problem recorded.

    An unknown language version is the schema's error on the `c3po` key, reported once there: no second error here.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version not in LIBRARIES:
        return None
    known = library_names(version)
    if name in known:
        return LIBRARIES[version] / (name[len(LIBRARY_PREFIX):] + ".yaml")
    hint = did_you_mean(name, known)
    if hint is None or not hint.startswith("did you mean"):
        hint = ("the library has: " + ", ".join(known) + "; a file of your own is included by its path relative "
                "to this file, e.g. 'lib/my_header.yaml'")
    problems.append(error(loc, f"unknown protocol library file '{name}'", hint))
    return None


def load_program(path: str | Path) -> Loaded:
    """Load, validate, lower and check a spec. Raises SpecError listing every error."""
    problems: list[Problem] = []
    loaded: dict[Path, Source] = {}
    order: list[Source] = []
    top = Path(path)
    raw: dict[Path, bytes] = {}
    _load_tree(top, [], loaded, order, problems, None, raw)
    if problems:
        raise SpecError(problems)
    main = order[-1]
    lowerer = Lowerer(main, order)
    program = lowerer.run()
    problems.extend(lowerer.problems)
    if program is None or any(p.severity == "error" for p in problems):
        raise SpecError(problems)
    problems.extend(run_checks(program))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SpecError(problems)
    digest = hashlib.sha256()
    for src in order:
        digest.update(Path(src.file).name.encode() + b"\0")
        digest.update(raw[loaded_path(loaded, src)])
    program.source_hash = digest.hexdigest()[:16]
    return Loaded(program, [p for p in problems if p.severity == "warning"])


def loaded_path(loaded: dict[Path, Source], src: Source) -> Path:
    for p, s in loaded.items():
        if s is src:
            return p
    raise KeyError(src.file)  # pragma: no cover
