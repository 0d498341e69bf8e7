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

from .input_files import SPEC_LIMIT, InputFileError, Limit, read_input_text
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
    # Where aliases are refused (vector files): the nodes built so far, since an alias is a node built twice,
    # and what the file is called in messages.
    seen: set[int] | None = None
    what: str = "spec"
    max_nodes: int | None = None

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
# The longest integer a spec or vector needs: 128 bits in binary with a `_` between digits, and a sign. Longer
# ones are refused before they are converted (a 5,000-digit integer cannot even be printed in decimal).
MAX_INT_CHARS = 2 + 128 * 2
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                          "timestamp", "binary", "merge", "value"))


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    tag = node.tag
    if node.style in ("'", '"'):  # quoted: always a string
        return value
    if tag == _INT_TAG:
        if ":" in value or len(value) > MAX_INT_CHARS:  # YAML 1.1 sexagesimal: really a MAC address or time
            return value
        text = value.replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        try:
            if text.startswith(("0x", "0X")):
                return sign * int(text, 16)
            if text.startswith(("0b", "0B")):
                return sign * int(text, 2)
            if text.startswith(("0o", "0O")):
                return sign * int(text, 8)
            if len(text) > 1 and text.startswith("0"):
                return sign * int(text, 8)
            return sign * int(text)
        except ValueError:  # `0b_`, `0x_`: PyYAML's resolver tags them int, but they have no digit
            return value
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


class _AliasFound(Exception):
    """A node built a second time: an alias, where aliases are refused."""

    def __init__(self, node: yaml.Node, path: PathKey):
        super().__init__()
        self.node, self.path = node, path


def _alias_error(text: str, src: Source, found: _AliasFound) -> SpecError:
    """The composed graph has lost where the alias was written: the first alias event in the text is the one
    (nodes are built in document order, and an alias comes after its anchor)."""
    line, col = found.node.start_mark.line + 1, found.node.start_mark.column + 1
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) and event.start_mark is not None:
            line, col = event.start_mark.line + 1, event.start_mark.column + 1
            break
    return SpecError([error(Loc(src.file, line, col, json_path(found.path)),
                            f"YAML aliases (*name) are not allowed in a {src.what}",
                            f"write the value out in full (this one repeats the value anchored at line "
                            f"{found.node.start_mark.line + 1})")])


def _build(node: yaml.Node, path: PathKey, src: Source, problems: list[Problem]) -> Any:
    src.nodes += 1
    here = Loc(src.file, node.start_mark.line + 1, node.start_mark.column + 1, json_path(path))
    max_nodes = MAX_NODES if src.max_nodes is None else src.max_nodes
    if src.nodes > max_nodes:
        raise SpecError([error(here, f"the {src.what} expands to more than {max_nodes} values",
                               "YAML anchors and aliases (&a, *a) are expanded; is one repeated by mistake?")])
    if len(path) > MAX_DEPTH:
        raise SpecError([error(here, f"the {src.what} nests deeper than {MAX_DEPTH} levels",
                               "no spec or vector needs that many levels")])
    if src.seen is not None:
        if id(node) in src.seen:
            raise _AliasFound(node, path)
        src.seen.add(id(node))
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
        if node.tag == _INT_TAG and node.style not in ("'", '"') and len(node.value) > MAX_INT_CHARS:
            problems.append(error(Loc(src.file, node.start_mark.line + 1, node.start_mark.column + 1,
                                      json_path(path)),
                                  f"integer '{node.value[:20]}...' is too long ({len(node.value)} characters)",
                                  f"integers are at most 128 bits (at most {MAX_INT_CHARS} characters)"))
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src, problems) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(error(src.loc(path), "mapping keys must be plain scalars",
                                      "write a name or a number as the key, not a list or a mapping"))
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


def load_yaml(path: Path, display: str | None = None, *, what: str = "spec",
              limit: Limit = SPEC_LIMIT, aliases: bool = True) -> Source:
    """Load one YAML file; raise SpecError (never a parser traceback) when it is not valid YAML.

    Only regular files up to `limit` are read (see `input_files`). `aliases=False` refuses YAML aliases, for
    formats that have no use for them (vector files), and lifts the bound on values (without aliases the file
    size bounds them).
    """
    name = display or str(path)
    try:
        text = read_input_text(path, what, limit)
    except InputFileError as exc:
        raise SpecError([error(Loc(name, exc.line or 1, exc.col or 1), exc.message, exc.hint)]) from None
    return load_yaml_text(text, name, what=what, aliases=aliases)


def load_yaml_text(text: str, name: str, *, what: str = "spec", aliases: bool = True) -> Source:
    src = Source(name, None, what=what)
    if not aliases:
        src.seen, src.max_nodes = set(), 1 << 62
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        bad_line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        hint = ("YAML does not allow tabs for indentation: use spaces" if "\t" in bad_line
                else "check the indentation and the brackets and quotes around this position")
        raise SpecError([error(Loc(name, line, col), f"invalid YAML: {exc.problem or exc}", hint)]) from None
    except yaml.reader.ReaderError as exc:  # a control character or bad encoding, with an offset only
        pos = min(exc.position, len(text))
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SpecError([error(Loc(name, line, col), f"invalid YAML: unacceptable character {char!r} "
                               f"(U+{ord(char):04X})", "YAML text cannot contain control characters")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([error(Loc(name, 1, 1), f"invalid YAML: {exc}", "check that the file is plain YAML text")]) from None
    problems: list[Problem] = []
    try:
        src.data = None if node is None else _build(node, (), src, problems)
    except _AliasFound as found:
        raise _alias_error(text, src, found) from None
    if problems:
        raise SpecError(problems)
    return src
