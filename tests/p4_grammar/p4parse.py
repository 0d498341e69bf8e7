"""Lexing and LALR parsing of P4-16 text with the grammar in p4_16.lark.

P4's grammar is not context-free at the token level: p4c's lexer consults the symbol
table to tell type names from other identifiers, and bison precedence settles whether
'<' opens type arguments.  The post-lexer here reproduces those decisions so that the
grammar itself can stay a faithful LALR transcription of the specification appendix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

try:  # imported as tests.p4_grammar.p4parse or as a script next to the stub
    from .v1model_stub import TYPE_NAMES
except ImportError:  # pragma: no cover - direct script use
    from v1model_stub import TYPE_NAMES  # type: ignore[no-redef]

GRAMMAR = Path(__file__).with_name("p4_16.lark")

ALLOWED_INCLUDES = ("<core.p4>", "<v1model.p4>")

_DECL_NAME = re.compile(
    r"\b(?:header|header_union|struct|enum|parser|control|extern|package)\s+([A-Za-z_]\w*)"
)
_TYPEDEF_NAME = re.compile(r"\b(?:typedef|type)\b[^;{}]*?\b([A-Za-z_]\w*)\s*;")
_TYPE_START = {"BIT", "INT", "VARBIT", "BOOL", "ERROR", "TUPLE", "TYPE_IDENTIFIER", "DONTCARE"}


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class P4SyntaxError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def strip_comments_keep_lines(text: str) -> str:
    """Blank out comments (keeping newlines) so the declaration pre-scan cannot be fooled by them."""

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\])*\"", blank, text, flags=re.S)


def preprocess(text: str) -> tuple[str, list[Problem]]:
    """Drop #include/#define lines (keeping line numbers); anything else starting with '#' is an error.

    Only the two architecture includes are accepted because nothing else is available to a
    generated program; the v1model declarations are modelled in v1model_stub.py instead.
    """
    problems: list[Problem] = []
    out: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            m_inc = re.fullmatch(r"#\s*include\s+(\S+)", stripped)
            m_def = re.fullmatch(r"#\s*define\s+[A-Za-z_]\w*(\s+\S.*)?", stripped)
            if m_inc:
                if m_inc.group(1) not in ALLOWED_INCLUDES:
                    problems.append(Problem(number, f"unexpected include {m_inc.group(1)}"))
            elif not m_def:
                problems.append(Problem(number, f"unsupported preprocessor line: {stripped}"))
            out.append("")
        else:
            out.append(line)
    return "\n".join(out), problems


def declared_type_names(text: str) -> frozenset[str]:
    clean = strip_comments_keep_lines(text)
    names = set(TYPE_NAMES)
    names.update(_DECL_NAME.findall(clean))
    names.update(_TYPEDEF_NAME.findall(clean))
    return frozenset(names)


class P4PostLex:
    """Token-stream rewriting that stands in for p4c's lexer feedback (see p4_16.lark header)."""

    always_accept = ("IDENTIFIER", "LT", "GT")

    def __init__(self) -> None:
        self.type_names: frozenset[str] = TYPE_NAMES

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        toks = list(stream)
        for tok in toks:
            if tok.type == "IDENTIFIER" and tok.value in self.type_names:
                tok.type = "TYPE_IDENTIFIER"
        depth = 0
        i = 0
        n = len(toks)
        while i < n:
            tok = toks[i]
            if tok.type == "LT" and self._opens_type_args(toks, i):
                tok.type = "TLT"
                depth += 1
            elif tok.type == "GT":
                if depth > 0:
                    tok.type = "TGT"
                    depth -= 1
                elif i + 1 < n and toks[i + 1].type == "GT" and toks[i + 1].start_pos == tok.end_pos:
                    yield Token.new_borrow_pos("SHR", ">>", tok)
                    i += 2
                    continue
            yield tok
            i += 1

    @staticmethod
    def _opens_type_args(toks: list[Token], i: int) -> bool:
        if i == 0:
            return False
        prev = toks[i - 1]
        if prev.type in ("BIT", "INT", "VARBIT", "TUPLE", "TYPE_IDENTIFIER"):
            return True
        if i + 1 >= len(toks):
            return False
        nxt = toks[i + 1]
        if nxt.type not in _TYPE_START:
            return False
        if nxt.type == "TYPE_IDENTIFIER" and i + 2 < len(toks) and toks[i + 2].type == "DOT":
            return False  # `x < Enum.member` is a comparison
        return prev.type in ("IDENTIFIER", "APPLY", "KEY", "ACTIONS", "STATE")


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, P4PostLex]:
    postlex = P4PostLex()
    lark = Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        lexer="basic",
        postlex=postlex,
        propagate_positions=True,
        maybe_placeholders=False,
    )
    return lark, postlex


def parse(text: str) -> tuple[Tree[Token], list[Problem]]:
    """Parse a whole P4 program; raises P4SyntaxError with the first syntax error."""
    body, problems = preprocess(text)
    lark, postlex = _parser()
    postlex.type_names = declared_type_names(body)
    try:
        tree = lark.parse(body)
    except UnexpectedToken as exc:
        tok = exc.token
        expected = ", ".join(sorted(exc.expected)[:8])
        what = "end of input" if tok.type == "$END" else repr(tok.value)
        raise P4SyntaxError(
            Problem(exc.line, f"syntax error at {what} (expected one of: {expected})")
        ) from None
    except UnexpectedCharacters as exc:
        raise P4SyntaxError(Problem(exc.line, f"unexpected character {exc.char!r}")) from None
    except UnexpectedEOF as exc:
        raise P4SyntaxError(Problem(exc.line, "unexpected end of input")) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark error kinds
        raise P4SyntaxError(Problem(exc.line, str(exc))) from None
    return tree, problems
