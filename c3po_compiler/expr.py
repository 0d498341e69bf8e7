"""The expression and statement language: tokens, syntax tree and a Pratt parser.

Parsing is purely syntactic; names and widths are resolved later by `typing.py` against the program, so the
same parser serves actions, control, parser selects, table defaults and vector files. Never `eval`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

BOOL = 0  # the width we give booleans: they are a separate type, never mixed with bit<W>

# Limits on what the input controls (docs/spec-reference.md, "Limits"). Every later stage (type checking,
# lowering, the targets' emitters, the reference interpreter) walks expressions recursively, so the front end
# refuses anything deeper and no stage ever sees it; 64 levels stay far below Python's recursion limit.
MAX_EXPR_DEPTH = 64
MAX_LITERAL_BITS = 128  # the widest type: a literal that needs more bits fits nothing


class ExprSyntaxError(Exception):
    def __init__(self, message: str, column: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column  # 0-based offset into the expression text
        self.hint = hint


# ---------------------------------------------------------------------------------------------------------
# Syntax tree. `width` is filled in by the type checker (BOOL for booleans); `pos` is the offset in the text.


@dataclass(eq=False)
class Expr:
    pos: int = field(default=0, kw_only=True)
    width: int = field(default=-1, kw_only=True)


@dataclass(eq=False)
class Const(Expr):
    value: int
    literal_width: int | None = None  # MAC/IPv4/IPv6 literals carry their natural width
    is_bool: bool = False


@dataclass(eq=False)
class Name(Expr):
    """A dotted/indexed reference before resolution: `ipv4.ttl`, `vlan[0].vid`, `vlan.last.vid`, `port`."""

    parts: list[str | int]


@dataclass(eq=False)
class FieldRef(Expr):
    """A resolved header field: instance (+ stack index or 'last') and field name."""

    instance: str
    index: int | str | None
    field_name: str
    group: str | None = None  # optional-group name when the field is in one


@dataclass(eq=False)
class MetaRef(Expr):
    name: str


@dataclass(eq=False)
class StdRef(Expr):
    name: str


@dataclass(eq=False)
class ParamRef(Expr):
    name: str


@dataclass(eq=False)
class RegRead(Expr):
    register: str
    index: Expr


@dataclass(eq=False)
class Lookahead(Expr):
    offset: int
    bits: int


@dataclass(eq=False)
class Unary(Expr):
    op: str  # '~', '!', '-'
    operand: Expr


@dataclass(eq=False)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(eq=False)
class Cast(Expr):
    to: int
    operand: Expr


@dataclass(eq=False)
class Slice(Expr):
    operand: Expr
    hi: int
    lo: int


@dataclass(eq=False)
class Call(Expr):
    """`valid(h)`, `present(h.g)`, `hash(crc32, ...)`, `lookahead(...)` before resolution."""

    func: str
    args: list[Expr]


@dataclass(eq=False)
class Valid(Expr):
    instance: str
    index: int | None


@dataclass(eq=False)
class Present(Expr):
    instance: str
    group: str


@dataclass(eq=False)
class Hash(Expr):
    algorithm: str
    args: list[Expr]


# ---------------------------------------------------------------------------------------------------------
# Lexer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<mac>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}(?![0-9A-Fa-f:]))
  | (?P<ipv6>[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*)
  | (?P<ipv4>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.]))
  | (?P<num>0[xX][0-9A-Fa-f_]+|0[bB][01_]+|\d[\d_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&&|&&|\|\||==|!=|<=|>=|<<|>>|\.\.|[-+*~!&|^<>()\[\],.:=/])
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str  # 'num', 'ident', 'op', 'end'
    text: str
    pos: int
    value: int = 0
    literal_width: int | None = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExprSyntaxError(f"unexpected character {text[pos]!r}", pos,
                                  "expressions use names, numbers, addresses and the operators of docs/spec-reference.md")
        kind = m.lastgroup or ""
        tok_text = m.group()
        if kind == "ipv6":
            # Only a real IPv6 address (two or more colons) is one; `7:0` in a slice is not.
            if tok_text.count(":") < 2:
                m2 = re.compile(r"\d[\d_]*|[A-Za-z_][A-Za-z0-9_]*|:").match(text, pos)
                assert m2 is not None
                tok_text = m2.group()
                kind = "num" if tok_text[0].isdigit() else ("ident" if tok_text != ":" else "op")
            else:
                try:
                    addr = ipaddress.IPv6Address(tok_text)
                except ValueError:
                    raise ExprSyntaxError(f"invalid IPv6 address {tok_text!r}", pos,
                                          "write eight groups of hex digits, or fewer with one '::', e.g. 2001:db8::1") from None
                tokens.append(Token("num", tok_text, pos, int(addr), 128))
                pos = m.end()
                continue
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "mac":
            tokens.append(Token("num", tok_text, pos, int(tok_text.replace(":", ""), 16), 48))
        elif kind == "ipv4":
            try:
                addr4 = ipaddress.IPv4Address(tok_text)
            except ValueError:
                raise ExprSyntaxError(f"invalid IPv4 address {tok_text!r}", pos,
                                      "write four numbers 0..255 separated by dots, e.g. 10.0.0.1") from None
            tokens.append(Token("num", tok_text, pos, int(addr4), 32))
        elif kind == "num":
            tokens.append(Token("num", tok_text, pos, _int_literal(tok_text, pos)))
        else:
            tokens.append(Token(kind, tok_text, pos))
        pos += len(tok_text)
    tokens.append(Token("end", "", len(text)))
    return tokens


_WELL_FORMED_INT = re.compile(r"0[xX]_?[0-9A-Fa-f]+(?:_[0-9A-Fa-f]+)*|0[bB]_?[01]+(?:_[01]+)*|\d+(?:_\d+)*")
_INT_SHAPES = "hex 0x0800 or 0x08_00, binary 0b1010, decimal 1500 or 1_500: digits, single '_' between them"


def _int_literal(text: str, pos: int) -> int:
    """The value of an integer literal, refused (with its position) when malformed or wider than any type."""
    shown = text if len(text) <= 24 else text[:20] + "…"
    if not _WELL_FORMED_INT.fullmatch(text):
        raise ExprSyntaxError(f"malformed integer literal '{shown}'", pos, _INT_SHAPES)
    if text[:2] in ("0x", "0X"):
        base, digits, bits_per_digit = 16, text[2:], 4
    elif text[:2] in ("0b", "0B"):
        base, digits, bits_per_digit = 2, text[2:], 1
    else:
        base, digits, bits_per_digit = 10, text, 4  # a decimal digit needs at most 4 bits (log2 10 < 4)
    digits = digits.replace("_", "").lstrip("0") or "0"
    # Count digits before converting: a 5,000-digit literal never reaches int() (which refuses > 4,300 digits).
    max_digits = 39 if base == 10 else MAX_LITERAL_BITS // bits_per_digit  # 2**128 has 39 decimal digits
    value = int(digits, base) if len(digits) <= max_digits else None
    if value is None or value.bit_length() > MAX_LITERAL_BITS:
        raise ExprSyntaxError(f"integer literal '{shown}' is too wide: it needs more than {MAX_LITERAL_BITS} bits, "
                              f"and no type is wider than bit<{MAX_LITERAL_BITS}>", pos,
                              f"the largest literal is 2^{MAX_LITERAL_BITS} - 1 "
                              f"(0x{'f' * (MAX_LITERAL_BITS // 4)})")
    return value


def _too_deep(pos: int) -> ExprSyntaxError:
    return ExprSyntaxError(f"the expression nests deeper than {MAX_EXPR_DEPTH} levels", pos,
                           "every parenthesis, operator, cast, slice, call and index is a level (a chain "
                           "'a && b && c' is two); split it through metadata: 'meta.x = ...', then use meta.x")


_NESTING = (Unary, Binary, Cast, Slice, Call, RegRead, Hash)


def check_depth(expr: Expr) -> None:
    """Refuse a syntax tree deeper than MAX_EXPR_DEPTH, at the first node past it (iteratively: the tree may be
    deep even when the parser's own nesting is not, e.g. a long left-associative chain `a && b && ... && z`)."""
    stack: list[tuple[Expr, int]] = [(expr, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _NESTING):
            depth += 1
            if depth > MAX_EXPR_DEPTH:
                raise _too_deep(node.pos)
        stack.extend((child, depth) for child in children(node))


def children(expr: Expr) -> list[Expr]:
    """The direct sub-expressions of a node."""
    if isinstance(expr, Binary):
        return [expr.left, expr.right]
    if isinstance(expr, (Unary, Cast, Slice)):
        return [expr.operand]
    if isinstance(expr, (Call, Hash)):
        return list(expr.args)
    if isinstance(expr, RegRead):
        return [expr.index]
    return []


# ---------------------------------------------------------------------------------------------------------
# Parser (precedence climbing, P4's precedence levels)

_BINARY_PREC: dict[str, int] = {
    "||": 1,
    "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "|": 4,
    "^": 5,
    "&": 6,
    "<<": 7, ">>": 7,
    "+": 8, "-": 8,
    "*": 9,
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # nesting of the recursive descent, bounded by MAX_EXPR_DEPTH

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            raise _too_deep(pos)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.tok.kind in ("op", "ident") and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind not in ("op", "ident"):
            found = self.tok.text or "end of expression"
            raise ExprSyntaxError(f"expected '{text}' but found '{found}'", self.tok.pos,
                                  f"add '{text}' here; brackets and parentheses come in pairs")
        return self.advance()

    def expect_int(self) -> int:
        if self.tok.kind != "num":
            raise ExprSyntaxError(f"expected an integer but found '{self.tok.text or 'end'}'", self.tok.pos,
                                  "write a constant number here, e.g. 8 or 0x10")
        return self.advance().value

    def at_end(self) -> None:
        if self.tok.kind != "end":
            hint = ("comparison is written '=='; '=' assigns, and only as a statement" if self.tok.text == "="
                    else "the expression is complete before this: join the parts with an operator or remove it")
            raise ExprSyntaxError(f"unexpected '{self.tok.text}'", self.tok.pos, hint)

    def expression(self, min_prec: int = 1) -> Expr:
        left = self.unary()
        while True:
            tok = self.tok
            prec = _BINARY_PREC.get(tok.text) if tok.kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.advance()
            self.enter(tok.pos)
            right = self.expression(prec + 1)
            self.depth -= 1
            left = Binary(tok.text, left, right, pos=tok.pos)

    def unary(self) -> Expr:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("~", "!", "-"):
            self.advance()
            self.enter(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return Unary(tok.text, operand, pos=tok.pos)
        if tok.kind == "op" and tok.text == "(" and self._is_cast():
            self.advance()
            self.expect("bit")
            self.expect("<")
            width = self.expect_int()
            self.expect(">")
            self.expect(")")
            self.enter(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return Cast(width, operand, pos=tok.pos)
        return self.postfix(self.primary())

    def _is_cast(self) -> bool:
        nxt = self.tokens[self.i + 1]
        return nxt.kind == "ident" and nxt.text == "bit" and self.tokens[self.i + 2].text == "<"

    def postfix(self, expr: Expr) -> Expr:
        while self.tok.kind == "op" and self.tok.text == "[":
            pos = self.advance().pos
            hi = self.expect_int()
            self.expect(":")
            lo = self.expect_int()
            self.expect("]")
            expr = Slice(expr, hi, lo, pos=pos)
        return expr

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            return Const(tok.value, tok.literal_width, pos=tok.pos)
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                self.advance()
                return Const(1 if tok.text == "true" else 0, is_bool=True, pos=tok.pos)
            if self.tokens[self.i + 1].text == "(" and self.tokens[self.i + 1].kind == "op":
                return self.call()
            return self.name()
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            self.enter(tok.pos)
            inner = self.expression()
            self.expect(")")
            self.depth -= 1
            return inner
        found = tok.text or "end of expression"
        raise ExprSyntaxError(f"expected a value but found '{found}'", tok.pos,
                              "a value is a number, a field (hdr.field, meta.x), a call or a parenthesized expression")

    def call(self) -> Expr:
        tok = self.advance()
        self.expect("(")
        args: list[Expr] = []
        self.enter(tok.pos)
        if not self.accept(")"):
            while True:
                args.append(self.expression())
                if self.accept(")"):
                    break
                self.expect(",")
        self.depth -= 1
        return Call(tok.text, args, pos=tok.pos)

    def name(self) -> Expr:
        start = self.tok.pos
        parts: list[str | int] = [self.advance().text]
        while True:
            if self.tok.kind == "op" and self.tok.text == ".":
                self.advance()
                if self.tok.kind != "ident":
                    raise ExprSyntaxError(f"expected a name after '.' but found '{self.tok.text}'", self.tok.pos,
                                          "write header.field, e.g. ipv4.ttl")
                parts.append(self.advance().text)
            elif self.tok.kind == "op" and self.tok.text == "[":
                # `vlan[0]` (index) vs `x[7:0]` (slice): an index has no colon.
                if self.i + 2 < len(self.tokens) and self.tokens[self.i + 2].text == ":":
                    break
                self.enter(self.advance().pos)
                index = self.expression()
                self.expect("]")
                self.depth -= 1
                if isinstance(index, Const) and not index.is_bool:
                    parts.append(index.value)
                elif len(parts) == 1:
                    return RegRead(str(parts[0]), index, pos=start)
                else:
                    raise ExprSyntaxError("a header stack index must be a constant", index.pos,
                                          "write a number, e.g. vlan[0], or vlan.last in the parser")
            else:
                break
        return Name(parts, pos=start)


def parse_expression(text: str) -> Expr:
    p = _Parser(text)
    expr = p.expression()
    p.at_end()
    check_depth(expr)
    return expr


# ---------------------------------------------------------------------------------------------------------
# Statements (before resolution)


@dataclass(eq=False)
class RawAssign:
    target: Expr  # a Name (header field or metadata) or a RegRead (`reg[i]`)
    value: Expr
    target_text: str
    value_offset: int = 0  # where the value starts in the statement text, for error columns


@dataclass(eq=False)
class RawCall:
    name: str
    args: list[Expr]
    pos: int = 0


_ASSIGN_RE = re.compile(r"(?<![=!<>])=(?!=)")


def parse_statement(text: str) -> RawAssign | RawCall:
    """`lhs = expr`, `name(args)` or a bare `name` (`drop`, `to_host`, ...)."""
    m = _ASSIGN_RE.search(text)
    if m:
        lhs_text, rhs_text = text[: m.start()], text[m.end() :]
        p = _Parser(lhs_text)
        if p.tok.kind != "ident":
            raise ExprSyntaxError("an assignment needs a field, metadata or register on the left", 0,
                                  "write hdr.field = ..., meta.x = ... or REGISTER[i] = ...")
        target = p.name()  # a field or metadata name, or a register element `reg[expr]`
        p.at_end()
        check_depth(target)
        try:
            value = parse_expression(rhs_text)
        except ExprSyntaxError as exc:
            raise ExprSyntaxError(exc.message, exc.column + m.end(), exc.hint) from None
        return RawAssign(target, value, lhs_text.strip(), m.end())
    p = _Parser(text)
    tok = p.tok
    if tok.kind != "ident":
        raise ExprSyntaxError(f"expected a statement but found '{tok.text or 'nothing'}'", tok.pos,
                              "statements are 'field = expr', 'drop', 'forward(port)', 'set_valid(h)', ...")
    p.advance()
    args: list[Expr] = []
    if p.accept("(") and not p.accept(")"):
        while True:
            args.append(p.expression())
            if p.accept(")"):
                break
            p.expect(",")
    p.at_end()
    for arg in args:
        check_depth(arg)
    return RawCall(tok.text, args, tok.pos)


# ---------------------------------------------------------------------------------------------------------
# Keysets: `0x0800`, `0x0800 &&& 0xff00`, `10 .. 20`, `_`, comma-separated for tuples.


@dataclass(frozen=True)
class KeyElem:
    kind: str  # 'value' | 'mask' | 'range' | 'prefix' | 'any'
    a: int = 0
    b: int = 0

    def spec_text(self) -> str:
        """As written in a spec or vector file (hex values), so it parses back to the same element."""
        if self.kind == "prefix":
            return f"{self.a:#x}/{self.b}"
        if self.kind == "mask":
            return f"{self.a:#x} &&& {self.b:#x}"
        if self.kind == "range":
            return f"{self.a:#x} .. {self.b:#x}"
        if self.kind == "any":
            return "_"
        return f"{self.a:#x}"

    def selects(self, v: int) -> bool:
        """Whether a parser select case's element takes the value v (one place for the oracle, the generator
        and the targets that reason about which case wins)."""
        if self.kind == "value":
            return v == self.a
        if self.kind == "mask":
            return (v & self.b) == (self.a & self.b)
        if self.kind == "range":
            return self.a <= v <= self.b
        return True  # any


def parse_keyset(text: str) -> list[KeyElem]:
    p = _Parser(text)
    elems: list[KeyElem] = []
    while True:
        elems.append(_key_elem(p))
        if p.tok.kind == "end":
            return elems
        p.expect(",")


def _key_elem(p: _Parser) -> KeyElem:
    if p.tok.kind == "ident" and p.tok.text in ("_", "default"):
        p.advance()
        return KeyElem("any")
    a = _const_value(p)
    if p.accept("&&&"):
        return KeyElem("mask", a, _const_value(p))
    if p.accept(".."):
        return KeyElem("range", a, _const_value(p))
    return KeyElem("value", a)


def _const_value(p: _Parser) -> int:
    if p.tok.kind != "num":
        raise ExprSyntaxError(f"expected a number but found '{p.tok.text or 'end'}'", p.tok.pos,
                              "keyset elements are VALUE, VALUE &&& MASK, LO .. HI or _")
    return p.advance().value


# The two forms a route table is filled with, by the ten thousand (`c3po apply`): a decimal number and a dotted
# IPv4 address with an optional prefix length. Read directly, they give what the parser gives; anything else,
# or any octet above 255, takes the parser (and its error messages).
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,38}")
_PLAIN_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:/([0-9]{1,3}))?")


def _plain_match_value(text: str) -> KeyElem | None:
    if _PLAIN_DECIMAL.fullmatch(text) and (text == "0" or text[0] != "0"):
        return KeyElem("value", int(text))
    m = _PLAIN_IPV4.fullmatch(text)
    if m is None:
        return None
    octets = [int(x) for x in m.groups()[:4]]
    if max(octets) > 255 or any(len(x) > 1 and x[0] == "0" for x in m.groups()[:4]):
        return None
    value = octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
    return KeyElem("value", value) if m.group(5) is None else KeyElem("prefix", value, int(m.group(5)))


def parse_match_value(text: str, kind: str) -> KeyElem:
    """A table-entry match: exact `V`, lpm `V/LEN`, ternary `V &&& M`, range `LO .. HI`, or `_`."""
    plain = _plain_match_value(text)
    if plain is not None:
        return plain
    p = _Parser(text)
    if p.tok.kind == "ident" and p.tok.text == "_":
        p.advance()
        p.at_end()
        return KeyElem("any")
    a = _const_value(p)
    elem = KeyElem("value", a)
    if p.accept("/"):
        elem = KeyElem("prefix", a, p.expect_int())
    elif p.accept("&&&"):
        elem = KeyElem("mask", a, _const_value(p))
    elif p.accept(".."):
        elem = KeyElem("range", a, _const_value(p))
    p.at_end()
    return elem


def parse_action_call(text: str) -> tuple[str, list[Expr]]:
    """`name` or `name(arg, ...)` with constant arguments (table defaults and entries)."""
    stmt = parse_statement(text)
    if not isinstance(stmt, RawCall):
        raise ExprSyntaxError("expected an action call such as 'set_port(3)'", 0,
                              "write an action's name, with its arguments in parentheses if it takes any")
    return stmt.name, stmt.args
