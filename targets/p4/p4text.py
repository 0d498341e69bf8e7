"""A small reader for the P4 text c3po generates: blocks by keyword, for tests and for reviewing output.

Not a P4 parser: it relies on the generated layout (one declaration per line, braces balanced, comments in
`/* */` on one line) and refuses text whose braces do not balance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from c3po_compiler.names import P4_KEYWORDS as NAMES_P4_KEYWORDS

P4_KEYWORDS = NAMES_P4_KEYWORDS  # the front end validates spec names against the same list

_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def strip_comments(text: str) -> str:
    return _COMMENT.sub("", text)


def check_balanced(text: str) -> None:
    depth = {"{": 0, "(": 0, "[": 0}
    close = {"}": "{", ")": "(", "]": "["}
    for ch in strip_comments(text):
        if ch in depth:
            depth[ch] += 1
        elif ch in close:
            depth[close[ch]] -= 1
            if depth[close[ch]] < 0:
                raise ValueError(f"unbalanced '{ch}'")
    if any(depth.values()):
        raise ValueError(f"unclosed brackets: {depth}")


@dataclass
class Block:
    head: str  # the text before the opening brace, e.g. "state ipv4" or "@name(\".acl\") table acl"
    body: str  # between the braces


def blocks(text: str, keyword: str) -> dict[str, Block]:
    """`keyword NAME ... { body }` blocks by NAME (nested braces included in the body)."""
    text = strip_comments(text)
    out: dict[str, Block] = {}
    for m in re.finditer(rf"(?m)^[ \t]*(?:@name\([^)]*\)\s+)?{keyword}\s+(\w+)[^{{;]*\{{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = Block(m.group(0), text[m.end():i - 1])
    return out


def fields(block: Block) -> list[tuple[str, str]]:
    """`type name;` lines of a header/struct body."""
    return re.findall(r"((?:bit|varbit)<\d+>|\w+(?:\[\d+\])?)\s+(\w+);", block.body)
