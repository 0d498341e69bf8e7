"""Table-entry match values: parse, check against the key, and bring to one canonical form.

Constant entries in specs and control-plane entries in vector files go through this one function, so a
value means the same thing wherever it is written. Canonical forms: exact `value`; lpm `prefix` (a = value,
b = length); ternary `mask` (a = value, b = mask); range `range` (a = lo, b = hi); `any` for a wildcard.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .expr import ExprSyntaxError, KeyElem, parse_match_value

_ALLOWED = {
    "exact": {"value"},
    "lpm": {"value", "prefix", "any"},
    "ternary": {"value", "mask", "any"},
    "range": {"value", "range", "any"},
}
_FORMS = {"exact": "V", "lpm": "V/PREFIX_LEN", "ternary": "V &&& MASK", "range": "LO .. HI"}


class MatchValueError(Exception):
    def __init__(self, message: str, hint: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.column = column  # offset in the value text for syntax errors


def written_like(text: str, value: int, width: int) -> str:
    """`value` written the way the user wrote the original: dotted IPv4, IPv6 or hex."""
    if width == 32 and "." in text:
        return str(ipaddress.IPv4Address(value))
    if width == 128 and ":" in text:
        return str(ipaddress.IPv6Address(value))
    return f"{value:#x}"


def canonical_match(value: Any, kind: str, width: int, key_text: str, *, strict: bool = True) -> KeyElem:
    """The canonical KeyElem for `value` on a `kind` key of `width` bits.

    strict: value bits outside a prefix or mask are an error (specs); otherwise they are cleared (vectors
    written by other tools, which often leave them set).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        elem = KeyElem("value", value)
    else:
        try:
            elem = parse_match_value(str(value), kind)
        except ExprSyntaxError as exc:
            raise MatchValueError(exc.message, exc.hint, exc.column) from None
    if elem.kind not in _ALLOWED[kind]:
        article = "an" if kind in ("exact", "lpm") else "a"
        raise MatchValueError(f"'{value}' is not {article} {kind} match", f"write {_FORMS[kind]}")
    limit = 1 << width
    if elem.a >= limit or (elem.kind in ("mask", "range") and elem.b >= limit):
        raise MatchValueError(f"'{value}' does not fit key '{key_text}' (bit<{width}>)",
                              f"the largest bit<{width}> value is {limit - 1:#x}")
    if elem.kind == "prefix" and elem.b > width:
        raise MatchValueError(f"prefix length {elem.b} is longer than bit<{width}>",
                              f"a prefix of a bit<{width}> key is /0 to /{width}")
    if elem.kind == "range" and elem.a > elem.b:
        raise MatchValueError(f"empty range '{value}'", "write LO .. HI with LO <= HI")
    if kind == "lpm" and elem.kind == "value":
        elem = KeyElem("prefix", elem.a, width)
    elif kind == "ternary" and elem.kind == "value":
        elem = KeyElem("mask", elem.a, limit - 1)
    elif kind == "range" and elem.kind == "value":
        elem = KeyElem("range", elem.a, elem.a)
    if elem.kind == "prefix":
        mask = ((1 << elem.b) - 1) << (width - elem.b)
        if elem.a & ~mask:
            if strict:
                raise MatchValueError(f"'{value}' has bits set beyond its /{elem.b} prefix",
                                      f"did you mean {written_like(str(value), elem.a & mask, width)}/{elem.b}?")
            elem = KeyElem("prefix", elem.a & mask, elem.b)
    if elem.kind == "mask" and elem.a & ~elem.b:
        if strict:
            raise MatchValueError(f"'{value}' has value bits outside its mask",
                                  f"use {written_like(str(value), elem.a & elem.b, width)} &&& "
                                  f"{written_like(str(value), elem.b, width)}")
        elem = KeyElem("mask", elem.a & elem.b, elem.b)
    return elem
