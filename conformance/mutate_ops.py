"""The mutation operators of `c3po conformance mutate`: where a single-point change can go in generated code.

A mutation is one edit (start, end, replacement) of the target's generated program file: the eBPF C (xdp), the
C (nic) or the P4-16 text (p4), never the runtime headers they include, never comments, strings or preprocessor
lines. Sites are found with a small lexer rather than regular expressions over lines, so `->`, `<<`, `#include
<...>`, `bit<16>` and text inside comments are never taken for operators.

Operators (the names the report and docs/conformance.md use):

- `relational`: `<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`
- `arithmetic`: binary `+` <-> `-`, `+=` <-> `-=`
- `constant`: an integer constant off by one (+1, -1) or with its highest set bit flipped
- `verdict`: XDP_PASS/XDP_DROP/XDP_TX/XDP_REDIRECT/XDP_ABORTED and the c3po verdict names of the xdp and nic
  targets swapped for another; in P4, the value given to the verdict (`meta.c3po_verdict = 2wN`)
- `byteorder`: a byte swap removed (bpf_htons/ntohs/htonl/ntohl, bpf_cpu_to_be64, __builtin_bswapN, ...)
- `bounds`: a bounds check (a comparison with the frame end, `end`, `data_end`, or the bytes left, `n - cur`)
  made never true: `if (cur + 14 > end)` becomes `if (0)`
- `statement`: an assignment or call statement deleted (in P4: `mark_to_drop`, `setValid`, `emit`, ...)

The order of the list is deterministic (file order, then operator), so `--sample N --seed S` picks the same
mutants on every run of the same generated code.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

OPERATORS = ("relational", "arithmetic", "verdict", "constant", "byteorder", "bounds", "statement")

_TOKEN = re.compile(
    r"""(?P<comment>/\*.*?\*/|//[^\n]*)
      |(?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
      |(?P<number>\d+[ws](?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d+)|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
      |(?P<ident>[A-Za-z_]\w*)
      |(?P<punct>->|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||\+\+|--|\+=|-=|\*=|/=|%=|&=|\|=|\^=|\|\+\||\|-\||[^\s\w])
      |(?P<ws>\s+)""",
    re.S | re.X,
)
_ORIGIN = re.compile(r"[\w./-]+\.ya?ml:\d+")
# A C function definition starts at column 0 (`static int name(...`), a P4 block is `control|parser|action|table|
# state NAME`; prototypes end with `;` on their line.
_FUNCTION = re.compile(r"^(?:[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)\s*\((?![^\n]*;\s*$)"
                       r"|[ \t]*(?:control|parser|action|table|state)\s+(\w+))", re.M)
_SECTION = re.compile(r"/\*\s*----")
_NOT_FUNCTIONS = {"SEC", "__uint", "__type", "__array", None}
ASSIGN_OPS = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--"}
KEYWORDS_NOT_STATEMENTS = {
    "return", "goto", "break", "continue", "case", "default", "switch", "do", "typedef", "sizeof", "transition",
    "exit", "state", "apply", "key", "actions", "size", "default_action", "const", "static", "extern", "struct",
    "union", "enum", "unsigned", "signed", "int", "char", "short", "long", "void", "bool", "_Bool", "register",
    "volatile", "inline", "__always_inline", "bit", "varbit", "error", "action", "table", "control", "parser",
    "header", "match_kind", "package", "SEC",
}
P4_TYPE_BRACKETS = {"bit", "int", "varbit", "register", "counter", "direct_counter", "meter", "direct_meter", "tuple",
                    "list", "Checksum16", "Hash", "Random"}
BYTE_SWAPS = re.compile(
    r"bpf_(?:hton|ntoh)[sl]|bpf_cpu_to_be\d+|bpf_be\d+_to_cpu|__builtin_bswap\d+|c3po_bswap\w*|c3po_be\d+|"
    r"c3po_le\d+|(?:hton|ntoh)[sl]|be\d+toh|htobe\d+"
)
BOUNDS_NAMES = re.compile(r"\b(?:end|data_end|n\s*-\s*cur|cap)\b")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass
class Mutant:
    """One single-point change; `line`/`column` are 1-based in the generated file."""

    id: int
    operator: str
    file: str
    start: int
    end: int
    original: str
    replacement: str
    line: int
    column: int
    line_before: str
    line_after: str
    origin: str  # the nearest spec origin (`spec.yaml:12`) before the site, "" when the file names none
    origin_comment: str  # the comment that named it, shortened
    function: str = ""  # the C function (or P4 block) the site is in: a table's API, the packet path, ...

    def apply(self, text: str) -> str:
        return text[:self.start] + self.replacement + text[self.end:]

    def describe(self) -> str:
        return f"{self.operator}: {self.original!r} -> {self.replacement!r}"


def tokenize(text: str) -> list[Token]:
    """Comments, strings and preprocessor lines stay whole tokens (kinds 'comment', 'string', 'pp')."""
    out: list[Token] = []
    pos = 0
    line_start = True
    n = len(text)
    while pos < n:
        if line_start:
            m = re.match(r"[ \t]*#", text[pos:pos + 200])
            if m:  # a preprocessor line, with its continuations
                end = pos
                while True:
                    nl = text.find("\n", end)
                    if nl < 0:
                        end = n
                        break
                    if text[nl - 1:nl] == "\\":
                        end = nl + 1
                        continue
                    end = nl
                    break
                out.append(Token("pp", text[pos:end], pos, end))
                pos = end
                continue
        m = _TOKEN.match(text, pos)
        if m is None:  # an unterminated comment or string: the rest is not code
            out.append(Token("comment", text[pos:], pos, n))
            break
        kind = m.lastgroup or "punct"
        tok = Token(kind, m.group(), pos, m.end())
        if kind == "ws":
            line_start = "\n" in tok.text
        else:
            line_start = False
            out.append(tok)
        pos = m.end()
    return out


def _int_value(text: str) -> tuple[str, int, int, str, int | None] | None:
    """(prefix, value, base, suffix, width) of an integer literal: P4 `16w0x800` has prefix `16w` and width 16."""
    m = re.fullmatch(r"(\d+[ws])?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d+)([uUlL]*)", text)
    if m is None:
        return None
    prefix, body, suffix = m.group(1) or "", m.group(2).replace("_", ""), m.group(3)
    if body[:2].lower() == "0x":
        value, base = int(body, 16), 16
    elif body[:2].lower() == "0b":
        value, base = int(body[2:], 2), 2
    else:
        if len(body) > 1 and body.startswith("0"):
            return None  # octal: rare in generated code, not worth a formatter
        value, base = int(body), 10
    width = int(prefix[:-1]) if prefix else None
    return prefix, value, base, suffix, width


def _format_int(prefix: str, value: int, base: int, suffix: str, digits: int = 1) -> str:
    """As the literal was written: `0x08` off by one is `0x09`, not `0x9`."""
    if base == 16:
        return f"{prefix}0x{value:0{digits}x}{suffix}"
    if base == 2:
        return f"{prefix}0b{value:0{digits}b}{suffix}"
    return f"{prefix}{value}{suffix}"


def _constant_variants(text: str) -> list[str]:
    parsed = _int_value(text)
    if parsed is None:
        return []
    prefix, value, base, suffix, width = parsed
    digits = len(text) - len(prefix) - len(suffix) - 2 if base != 10 else 1
    limit = (1 << width) if width is not None else (1 << 64)
    values = [value + 1, value - 1]
    if value > 0:
        values.append(value ^ (1 << (value.bit_length() - 1)))
    out: list[str] = []
    for v in values:
        if 0 <= v < limit and v != value:
            s = _format_int(prefix, v, base, suffix, digits)
            if s not in out:
                out.append(s)
    return out


XDP_VERDICT_SWAP = {"XDP_PASS": "XDP_DROP", "XDP_DROP": "XDP_PASS", "XDP_TX": "XDP_PASS",
                    "XDP_REDIRECT": "XDP_PASS", "XDP_ABORTED": "XDP_PASS"}
VERDICT_NAMES = {"DROP": "TO_HOST", "TO_HOST": "DROP", "FORWARD": "DROP", "REFLECT": "TO_HOST"}


def _verdict_variant(word: str, prog_name: str) -> str | None:
    if word in XDP_VERDICT_SWAP:
        return XDP_VERDICT_SWAP[word]
    for prefix in ("C3PO_V_", prog_name.upper() + "_"):
        if word.startswith(prefix) and word[len(prefix):] in VERDICT_NAMES:
            return prefix + VERDICT_NAMES[word[len(prefix):]]
    return None


class _Sites:
    """Collects (operator, start, end, replacement) edits; the Mutant records are made once, in file order."""

    def __init__(self) -> None:
        self.edits: list[tuple[int, str, int, str]] = []

    def add(self, operator: str, start: int, end: int, replacement: str) -> None:
        self.edits.append((start, operator, end, replacement))


def _operand_end(tok: Token | None) -> bool:
    """Whether a token can end an operand, so a `+`/`-` after it is binary."""
    return tok is not None and (tok.kind in ("ident", "number") or tok.text in (")", "]"))


def _type_brackets(code: list[Token]) -> set[int]:
    """Indexes of the tokens of P4 type brackets (`bit<16>`, `register<bit<32>>`): not comparisons, and widths
    that only change a type (p4c rejects most such mutants, or they shift a header's layout)."""
    skip: set[int] = set()
    for i, tok in enumerate(code):
        if tok.text != "<" or i == 0 or code[i - 1].text not in P4_TYPE_BRACKETS or i in skip:
            continue
        depth = 0
        for j in range(i, min(len(code), i + 64)):
            t = code[j].text
            if t == "<":
                depth += 1
            elif t in (">", ">>"):
                depth -= len(t)
                if depth <= 0:
                    skip.update(range(i, j + 1))  # the brackets and the widths inside: a type, not behaviour
                    break
            elif t in (";", "{", ")"):
                break
    return skip


def _statements(code: list[Token]) -> list[tuple[int, int]]:
    """(first, last) token indexes of each simple statement ending in `;` at parenthesis depth 0, with a leading
    `if (...)`, `else`, `case X:` or label taken off (the statement is what they guard)."""
    out: list[tuple[int, int]] = []
    start = 0
    depth = 0
    pending_q = 0
    blocks: list[bool] = []  # per open brace: a block of code (True) or of data (a struct, an initializer)
    for i, tok in enumerate(code):
        t = tok.text
        if tok.kind != "punct":
            continue
        if t in "([":
            depth += 1
        elif t in ")]":
            depth = max(0, depth - 1)
        elif depth == 0 and t == "?":
            pending_q += 1
        elif depth == 0 and t == ":" and pending_q:
            pending_q -= 1
        elif depth == 0 and t in ("{", "}", ":"):
            if t == "{":
                prev = code[i - 1].text if i else ""
                blocks.append(prev in (")", "else", "do", "apply")
                              or (i > 1 and code[i - 2].text == "state")
                              or (bool(blocks) and blocks[-1] and prev in (";", "{", "}", ":")))
            elif t == "}" and blocks:
                blocks.pop()
            start, pending_q = i + 1, 0
        elif depth == 0 and t == ";":
            if blocks and blocks[-1]:
                out.append((start, i))
            start, pending_q = i + 1, 0
    result: list[tuple[int, int]] = []
    for first, last in out:
        while first < last:
            word = code[first].text
            if word in ("if", "while", "for") and first + 1 < last and code[first + 1].text == "(":
                first = _closing(code, first + 1, last) + 1
            elif word == "else":
                first += 1
            else:
                break
        if first < last:
            result.append((first, last))
    return result


def _closing(code: list[Token], opening: int, limit: int) -> int:
    """Index of the `)` closing the `(` at `opening`, or `limit` when there is none before it."""
    depth = 0
    for j in range(opening, limit):
        if code[j].text == "(":
            depth += 1
        elif code[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return limit


def _droppable(code: list[Token], first: int, last: int) -> bool:
    toks = code[first:last]
    if not toks or toks[0].text in KEYWORDS_NOT_STATEMENTS or toks[0].kind not in ("ident", "punct"):
        return False
    if toks[0].text == "(" and len(toks) > 2 and toks[1].text == "void":
        return False  # `(void)x;`: silences a warning, does nothing
    if len(toks) > 1 and toks[0].kind == "ident" and toks[1].kind == "ident":
        return False  # a declaration: `__u32 x = ...`
    if len(toks) > 3 and toks[0].kind == "ident" and toks[1].text == "*" and toks[2].kind == "ident" \
            and toks[3].text in ("=", ";", "[", ","):
        return False  # `struct_t *p = ...` without the struct keyword
    if any(t.text in ASSIGN_OPS for t in toks):
        return True
    return toks[-1].text == ")" and any(t.text == "(" for t in toks)


def find_mutants(text: str, file: str, lang: str, prog_name: str) -> list[Mutant]:
    """Every mutant of one generated file (lang: 'c' or 'p4'), in file order."""
    toks = tokenize(text)
    code = [t for t in toks if t.kind not in ("comment", "pp")]
    sites = _Sites()
    brackets = _type_brackets(code) if lang == "p4" else set()
    skip_decl_lines = re.compile(r"^\s*(?:__uint|__type|__array)\(|__attribute__|\bSEC\(")
    for i, tok in enumerate(code):
        t = tok.text
        prev = code[i - 1] if i else None
        if tok.kind == "punct":
            if t in ("<", "<=", ">", ">=") and i not in brackets:
                sites.add("relational", tok.start, tok.end, {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}[t])
            elif t in ("==", "!="):
                sites.add("relational", tok.start, tok.end, "!=" if t == "==" else "==")
            elif t in ("+", "-") and _operand_end(prev):
                sites.add("arithmetic", tok.start, tok.end, "-" if t == "+" else "+")
            elif t in ("+=", "-="):
                sites.add("arithmetic", tok.start, tok.end, "-=" if t == "+=" else "+=")
        elif tok.kind == "number":
            if i in brackets:
                continue
            line = _line_of(text, tok.start)
            if skip_decl_lines.search(line) or (prev is not None and prev.text in ("[", "aligned")):
                continue  # map definitions, attributes, array sizes: layout, not behaviour
            for variant in _constant_variants(t):
                sites.add("constant", tok.start, tok.end, variant)
            if lang == "p4" and i >= 2 and code[i - 1].text == "=" and code[i - 2].text == "c3po_verdict":
                parsed = _int_value(t)
                if parsed is not None:
                    prefix, value, _, _, _ = parsed
                    swap = {0: 1, 1: 0, 2: 1, 3: 0}.get(value)
                    if swap is not None:
                        sites.add("verdict", tok.start, tok.end, f"{prefix}{swap}")
        elif tok.kind == "ident":
            v = _verdict_variant(t, prog_name)
            if v is not None and lang == "c":
                sites.add("verdict", tok.start, tok.end, v)
            if BYTE_SWAPS.fullmatch(t) and i + 1 < len(code) and code[i + 1].text == "(":
                sites.add("byteorder", tok.start, tok.end, "")
            if t == "if" and i + 1 < len(code) and code[i + 1].text == "(":
                j = _closing(code, i + 1, len(code))
                if j < len(code):
                    cond = text[code[i + 1].end:code[j].start]
                    if BOUNDS_NAMES.search(cond) and re.search(r"[<>]", cond):
                        sites.add("bounds", code[i + 1].end, code[j].start, "0")
    for first, last in _statements(code):
        if _droppable(code, first, last):
            sites.add("statement", code[first].start, code[last].end, ";")
    return _make_mutants(text, file, sites, toks)


def _line_of(text: str, pos: int) -> str:
    a = text.rfind("\n", 0, pos) + 1
    b = text.find("\n", pos)
    return text[a:b if b >= 0 else len(text)]


def _make_mutants(text: str, file: str, sites: _Sites, toks: list[Token]) -> list[Mutant]:
    origins = [(t.start, m.group(), t.text) for t in toks if t.kind == "comment" and (m := _ORIGIN.search(t.text))]
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    origin_starts = [o[0] for o in origins]
    functions = [(m.start(), m.group(1) or m.group(2)) for m in _FUNCTION.finditer(text)
                 if (m.group(1) or m.group(2)) not in _NOT_FUNCTIONS]
    function_starts = [f[0] for f in functions]
    mutants: list[Mutant] = []
    seen: set[tuple[int, int, str]] = set()
    order = {op: i for i, op in enumerate(OPERATORS)}
    for start, op, end, repl in sorted(sites.edits, key=lambda e: (e[0], order[e[1]], e[2], e[3])):
        if (start, end, repl) in seen:
            continue
        seen.add((start, end, repl))
        ln = bisect.bisect_right(line_starts, start) - 1
        line_begin = line_starts[ln]
        line_end = text.find("\n", end)
        if line_end < 0:
            line_end = len(text)
        before = text[line_begin:line_end]
        after = text[line_begin:start] + repl + text[end:line_end]
        k = bisect.bisect_right(origin_starts, start) - 1
        f = bisect.bisect_right(function_starts, start) - 1
        # an origin comment inside an earlier function says nothing about this one; a section header
        # (`---- table t (spec.yaml:15) ----`) covers every function under it
        while k >= 0 and f >= 0 and origins[k][0] < function_starts[f] and not _SECTION.match(origins[k][2]):
            k -= 1
        origin, comment = (origins[k][1], _shorten(origins[k][2])) if k >= 0 else ("", "")
        mutants.append(Mutant(len(mutants), op, file, start, end, text[start:end], repl, ln + 1, start - line_begin + 1,
                              " ".join(before.split()), " ".join(after.split()), origin, comment,
                              functions[f][1] if f >= 0 else ""))
    return mutants


def _shorten(comment: str) -> str:
    body = " ".join(comment.strip("/* ").split())
    return body if len(body) <= 120 else body[:117] + "..."
