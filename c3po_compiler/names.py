"""Identifier rules: spec names become C and P4 identifiers, so they are validated, never pasted raw."""

from __future__ import annotations

import re

IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_IDENT = 48


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


C_KEYWORDS = _words(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    bool true false asm typeof alignas alignof noreturn static_assert thread_local nullptr
    uint8_t uint16_t uint32_t uint64_t int8_t int16_t int32_t int64_t size_t ptrdiff_t uintptr_t
    main errno stdin stdout stderr NULL"""
)
# P4-16 (v1.2.x) keywords: illegal as any identifier, field names included.
P4_KEYWORDS = _words(
    """abstract action apply bit bool break const continue control default else entries enum error exit extern
    false for header header_union if in inout int key list match_kind out package parser priority return select
    state string struct switch table this transition true tuple type typedef valueset varbit verify void"""
)
# Names of P4/v1model declarations a top-level spec name would shadow in the generated P4.
P4_GLOBALS = _words(
    """accept reject packet_in packet_out NoAction mark_to_drop standard_metadata_t standard_metadata main
    counter direct_counter meter direct_meter register hash digest clone resubmit recirculate random
    lpm exact ternary range optional selector verify_checksum update_checksum
    verify_checksum_with_payload update_checksum_with_payload HashAlgorithm CounterType MeterType
    V1Switch Parser VerifyChecksum Ingress Egress ComputeChecksum Deparser"""
)
# Names the generated code uses for its own variables and the spec's own namespaces.
C3PO_RESERVED = frozenset({"std", "meta", "hdr", "pkt", "ctx", "data", "data_end", "last", "next", "valid",
                           "present", "lookahead", "self", "len", "cap", "hash", "count"})
FIELD_RESERVED = C_KEYWORDS | P4_KEYWORDS
RESERVED = FIELD_RESERVED | P4_GLOBALS | C3PO_RESERVED


def ident_problem(name: object, *, is_field: bool = False) -> tuple[str, str] | None:
    """(message, hint) when `name` cannot be a c3po identifier, else None.

    Field names live inside a struct, so only language keywords clash with them; every other name is global in
    the generated code and must also avoid P4/v1model declarations and c3po's own names.
    """
    if not isinstance(name, str):
        return f"'{name}' is not a valid identifier", "identifiers are strings matching [a-z][a-z0-9_]*"
    if not IDENT_RE.match(name):
        fixed = re.sub(r"[^a-z0-9_]", "_", name.lower()).lstrip("_0123456789") or "x"
        return (f"'{name}' is not a valid identifier",
                f"identifiers match [a-z][a-z0-9_]* (lower case, digits, underscore), e.g. '{fixed}'")
    if len(name) > MAX_IDENT:
        return f"identifier '{name}' is longer than {MAX_IDENT} characters", "choose a shorter name"
    if "__" in name or name.startswith("c3po_"):
        return (f"identifier '{name}' uses a reserved form",
                "names must not contain '__' or start with 'c3po_' (the generated code uses those)")
    if name in (FIELD_RESERVED if is_field else RESERVED):
        which = ("C" if name in C_KEYWORDS else "P4" if name in P4_KEYWORDS
                 else "P4/v1model" if name in P4_GLOBALS else "c3po")
        return f"'{name}' is a reserved word in {which}", f"rename it, e.g. '{name}_'"
    return None
