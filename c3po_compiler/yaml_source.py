"""YAML loading that remembers where every node came from.

PyYAML's composer gives nodes with marks; we build plain Python values ourselves so that a MAC address such as
`10:20:30:40:50:59` stays a string (YAML 1.1 would read it as a base-60 integer), duplicate keys are errors
rather than silently overwritten, and every value's position is kept by its JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .problems import Loc, Problem, SpecError, error

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

PathKey = tuple[str | int, ...]


def json_path(path: PathKey) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


@dataclass
class Source:
    """One loaded YAML file: its data and the positions of its values and mapping keys."""

    file: str
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    nodes: int = 0  # values built so far, aliases expanded: bounded so that an alias bomb cannot hang us
    building: set[int] = field(default_factory=set)  # ids of the nodes being built: a recursive alias is a loop

    def loc(self, path: PathKey, *, key: bool = False) -> Loc:
        """Location of the value at `path` (or of its mapping key), falling back to the nearest parent."""
        table = self.keys if key else self.values
        probe = path
        while True:
            if probe in table:
                line, col = table[probe]
                return Loc(self.file, line, col, json_path(path))
            if probe in self.values:
                line, col = self.values[probe]
                return Loc(self.file, line, col, json_path(path))
            if not probe:
                return Loc(self.file, 1, 1, json_path(path))
            probe = probe[:-1]


_INT_TAG = "tag:yaml.org,2002:int"
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                          "timestamp", "binary", "merge", "value"))


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    tag = node.tag
    if node.style in ("'", '"'):  # quoted: always a string
        return value
    if tag == _INT_TAG:
        if ":" in value:  # YAML 1.1 sexagesimal: really a MAC address or time
            return value
        text = value.replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        if text.startswith(("0x", "0X")):
            return sign * int(text, 16)
        if text.startswith(("0b", "0B")):
            return sign * int(text, 2)
        if text.startswith(("0o", "0O")):
            return sign * int(text, 8)
        if len(text) > 1 and text.startswith("0"):
            return sign * int(text, 8)
        return sign * int(text)
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() in ("true", "yes", "on", "y")
    if tag == "tag:yaml.org,2002:null":
        return None
    # floats and anything else stay as their text: the spec language has no floats, and "10.0" is
    # better reported by the schema as a string where a number was expected than silently rounded.
    if tag == "tag:yaml.org,2002:float":
        return value
    return value


# Far more values than any real spec has (the largest example has a few thousand), far fewer than a YAML alias
# bomb expands to.
MAX_NODES = 200_000


MAX_DEPTH = 64


def _build(node: yaml.Node, path: PathKey, src: Source, problems: list[Problem]) -> Any:
    src.nodes += 1
    here = Loc(src.file, node.start_mark.line + 1, node.start_mark.column + 1, json_path(path))
    if src.nodes > MAX_NODES:
        raise SpecError([error(here, f"the spec expands to more than {MAX_NODES} values",
                               "YAML anchors and aliases (&a, *a) are expanded; is one repeated by mistake?")])
    if len(path) > MAX_DEPTH:
        raise SpecError([error(here, f"the spec nests deeper than {MAX_DEPTH} levels")])
    if isinstance(node, yaml.CollectionNode):
        if id(node) in src.building:
            raise SpecError([error(here, "a YAML alias refers to a node that contains it",
                                   "an anchored value cannot include itself")])
        src.building.add(id(node))
        try:
            return _build_node(node, path, src, problems)
        finally:
            src.building.discard(id(node))
    return _build_node(node, path, src, problems)


def _build_node(node: yaml.Node, path: PathKey, src: Source, problems: list[Problem]) -> Any:
    # For a quoted scalar we point at its first character, so expression columns line up.
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
    src.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1 + int(quoted))
    if node.tag not in _PLAIN_TAGS:  # `!!python/object`, `!custom`: a spec is plain data, nothing is constructed
        problems.append(error(Loc(src.file, node.start_mark.line + 1, node.start_mark.column + 1, json_path(path)),
                              f"unsupported YAML tag '{node.tag}'", "a spec uses plain YAML values, without tags"))
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src, problems) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(error(src.loc(path), "mapping keys must be plain scalars"))
                continue
            key = _scalar(key_node)
            if isinstance(key, bool) or key is None:
                key = key_node.value
            key_path = (*path, str(key))
            if key in out or key_path in src.keys:  # 0x0800 and "2048" are one key in the JSON view
                line, col = src.keys[key_path]
                problems.append(
                    error(
                        Loc(src.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            json_path(key_path)),
                        f"duplicate key '{key_node.value}'",
                        f"first given at line {line}, column {col}",
                    )
                )
                continue
            # like values, a quoted key's position is its first character (table keys are expressions)
            src.keys[key_path] = (key_node.start_mark.line + 1,
                                  key_node.start_mark.column + 1 + int(key_node.style in ("'", '"')))
            out[key] = _build(value_node, key_path, src, problems)
        return out
    raise TypeError(node)  # pragma: no cover


def load_yaml(path: Path, display: str | None = None) -> Source:
    """Load one YAML file; raise SpecError (never a parser traceback) when it is not valid YAML."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([error(Loc(name, 1, 1), f"cannot read spec: {exc}")]) from None
    return load_yaml_text(text, name)


def load_yaml_text(text: str, name: str) -> Source:
    src = Source(name, None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        bad_line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        hint = "YAML does not allow tabs for indentation: use spaces" if "\t" in bad_line else None
        raise SpecError([error(Loc(name, line, col), f"invalid YAML: {exc.problem or exc}", hint)]) from None
    except yaml.reader.ReaderError as exc:  # a control character or bad encoding, with an offset only
        pos = min(exc.position, len(text))
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SpecError([error(Loc(name, line, col), f"invalid YAML: unacceptable character {char!r} "
                               f"(U+{ord(char):04X})", "YAML text cannot contain control characters")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([error(Loc(name, 1, 1), f"invalid YAML: {exc}")]) from None
    problems: list[Problem] = []
    src.data = None if node is None else _build(node, (), src, problems)
    if problems:
        raise SpecError(problems)
    return src
