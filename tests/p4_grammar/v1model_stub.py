"""The slice of core.p4 and v1model.p4 (V1MODEL_VERSION 20180101) the checker resolves names against.

p4c is not installable here, so the declarations the generated programs rely on are
transcribed by hand from p4lang/p4c p4include/core.p4 and p4include/v1model.p4.
Widths follow v1model.p4; with V1MODEL_VERSION 20180101 counter/register indices are
bit<32> (the newer `I` type parameter only exists from 20200408 on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CORE_ERRORS: tuple[str, ...] = (
    "NoError",
    "PacketTooShort",
    "NoMatch",
    "StackOutOfBounds",
    "HeaderTooShort",
    "ParserTimeout",
    "ParserInvalidArgument",
)

# `action NoAction() {}` in core.p4.
CORE_ACTIONS: tuple[str, ...] = ("NoAction",)

MATCH_KINDS: tuple[str, ...] = ("exact", "ternary", "lpm", "range", "optional", "selector")

ENUMS: dict[str, tuple[str, ...]] = {
    "HashAlgorithm": (
        "crc32",
        "crc32_custom",
        "crc16",
        "crc16_custom",
        "random",
        "identity",
        "csum16",
        "xor16",
    ),
    "CounterType": ("packets", "bytes", "packets_and_bytes"),
    "MeterType": ("packets", "bytes"),
    "CloneType": ("I2E", "E2E"),
}

# (width or None for `error`) of every standard_metadata_t field in v1model.p4.
STANDARD_METADATA: dict[str, int | None] = {
    "ingress_port": 9,
    "egress_spec": 9,
    "egress_port": 9,
    "instance_type": 32,
    "packet_length": 32,
    "enq_timestamp": 32,
    "enq_qdepth": 19,
    "deq_timedelta": 32,
    "deq_qdepth": 19,
    "ingress_global_timestamp": 48,
    "egress_global_timestamp": 48,
    "mcast_grp": 16,
    "egress_rid": 16,
    "checksum_error": 1,
    "parser_error": None,
    "priority": 3,
}


@dataclass(frozen=True)
class Param:
    """One parameter; `ty` is "bit<N>", "bool", "error", a type name, or a type variable (upper case)."""

    direction: str
    ty: str
    name: str


@dataclass(frozen=True)
class Method:
    name: str
    params: tuple[Param, ...]
    returns: str = "void"
    # Overloads with fewer trailing parameters (extract has a 1- and a 2-argument form).
    min_args: int | None = None

    @property
    def required(self) -> int:
        return len(self.params) if self.min_args is None else self.min_args


@dataclass(frozen=True)
class Extern:
    name: str
    type_params: tuple[str, ...]
    constructor: tuple[Param, ...]
    methods: dict[str, Method] = field(default_factory=dict)


def _p(direction: str, ty: str, name: str) -> Param:
    return Param(direction, ty, name)


EXTERNS: dict[str, Extern] = {
    "packet_in": Extern(
        "packet_in",
        (),
        (),
        {
            "extract": Method("extract", (_p("out", "T", "hdr"), _p("in", "bit<32>", "bits")), min_args=1),
            "lookahead": Method("lookahead", (), "T"),
            "advance": Method("advance", (_p("in", "bit<32>", "sizeInBits"),)),
            "length": Method("length", (), "bit<32>"),
        },
    ),
    "packet_out": Extern("packet_out", (), (), {"emit": Method("emit", (_p("in", "T", "hdr"),))}),
    "counter": Extern(
        "counter",
        (),
        (_p("", "bit<32>", "size"), _p("", "CounterType", "type")),
        {"count": Method("count", (_p("in", "bit<32>", "index"),))},
    ),
    "direct_counter": Extern(
        "direct_counter", (), (_p("", "CounterType", "type"),), {"count": Method("count", ())}
    ),
    "meter": Extern(
        "meter",
        (),
        (_p("", "bit<32>", "size"), _p("", "MeterType", "type")),
        {"execute_meter": Method("execute_meter", (_p("in", "bit<32>", "index"), _p("out", "T", "result")))},
    ),
    "direct_meter": Extern(
        "direct_meter",
        ("T",),
        (_p("", "MeterType", "type"),),
        {"read": Method("read", (_p("out", "T", "result"),))},
    ),
    "register": Extern(
        "register",
        ("T",),
        (_p("", "bit<32>", "size"),),
        {
            "read": Method("read", (_p("out", "T", "result"), _p("in", "bit<32>", "index"))),
            "write": Method("write", (_p("in", "bit<32>", "index"), _p("in", "T", "value"))),
        },
    ),
}

FUNCTIONS: dict[str, Method] = {
    "verify": Method("verify", (_p("in", "bool", "check"), _p("in", "error", "toSignal"))),
    "mark_to_drop": Method("mark_to_drop", (_p("inout", "standard_metadata_t", "standard_metadata"),)),
    "hash": Method(
        "hash",
        (
            _p("out", "O", "result"),
            _p("in", "HashAlgorithm", "algo"),
            _p("in", "T", "base"),
            _p("in", "D", "data"),
            _p("in", "M", "max"),
        ),
    ),
    "verify_checksum": Method(
        "verify_checksum",
        (
            _p("in", "bool", "condition"),
            _p("in", "T", "data"),
            _p("in", "O", "checksum"),
            _p("", "HashAlgorithm", "algo"),
        ),
    ),
    "update_checksum": Method(
        "update_checksum",
        (
            _p("in", "bool", "condition"),
            _p("in", "T", "data"),
            _p("inout", "O", "checksum"),
            _p("", "HashAlgorithm", "algo"),
        ),
    ),
    "verify_checksum_with_payload": Method(
        "verify_checksum_with_payload",
        (
            _p("in", "bool", "condition"),
            _p("in", "T", "data"),
            _p("in", "O", "checksum"),
            _p("", "HashAlgorithm", "algo"),
        ),
    ),
    "update_checksum_with_payload": Method(
        "update_checksum_with_payload",
        (
            _p("in", "bool", "condition"),
            _p("in", "T", "data"),
            _p("inout", "O", "checksum"),
            _p("", "HashAlgorithm", "algo"),
        ),
    ),
    "random": Method("random", (_p("out", "T", "result"), _p("in", "T", "lo"), _p("in", "T", "hi"))),
    "digest": Method("digest", (_p("in", "bit<32>", "receiver"), _p("in", "T", "data"))),
    "resubmit": Method("resubmit", (_p("in", "T", "data"),)),
    "recirculate": Method("recirculate", (_p("in", "T", "data"),)),
    "clone": Method("clone", (_p("in", "CloneType", "type"), _p("in", "bit<32>", "session"))),
    "truncate": Method("truncate", (_p("in", "bit<32>", "length"),)),
}

# The V1Switch package: for each of its six constructor parameters, the parameter
# directions and types (H = headers struct, M = metadata struct) the passed block must declare.
V1SWITCH: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("parser", (("", "packet_in"), ("out", "H"), ("inout", "M"), ("inout", "standard_metadata_t"))),
    ("control", (("inout", "H"), ("inout", "M"))),
    ("control", (("inout", "H"), ("inout", "M"), ("inout", "standard_metadata_t"))),
    ("control", (("inout", "H"), ("inout", "M"), ("inout", "standard_metadata_t"))),
    ("control", (("inout", "H"), ("inout", "M"))),
    ("control", (("", "packet_out"), ("in", "H"))),
)

# Every name the stub contributes to the type namespace (p4c's lexer would return TYPE_IDENTIFIER).
TYPE_NAMES: frozenset[str] = frozenset(
    {
        *ENUMS,
        *EXTERNS,
        "standard_metadata_t",
        "V1Switch",
        "Parser",
        "VerifyChecksum",
        "Ingress",
        "Egress",
        "ComputeChecksum",
        "Deparser",
    }
)

# Reserved words of P4-16 v1.2.x (the lexer's keyword table) plus v1.2.2's `list`/`priority`.
KEYWORDS: frozenset[str] = frozenset(
    {
        "abstract",
        "action",
        "actions",
        "apply",
        "bool",
        "bit",
        "const",
        "control",
        "default",
        "else",
        "entries",
        "enum",
        "error",
        "exit",
        "extern",
        "false",
        "header",
        "header_union",
        "if",
        "in",
        "inout",
        "int",
        "key",
        "list",
        "match_kind",
        "out",
        "package",
        "parser",
        "priority",
        "return",
        "select",
        "state",
        "string",
        "struct",
        "switch",
        "table",
        "this",
        "transition",
        "true",
        "tuple",
        "type",
        "typedef",
        "value_set",
        "varbit",
        "void",
    }
)
# Of those, the grammar lets these stand as names (nonTypeName: IDENTIFIER | APPLY | KEY | ACTIONS | STATE).
CONTEXTUAL_KEYWORDS: frozenset[str] = frozenset({"apply", "key", "actions", "state", "priority"})
