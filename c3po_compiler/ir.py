"""The typed intermediate representation every target and the reference interpreter consume.

Plain dataclasses; every node keeps the `Loc` it came from so later passes and targets can point back at the
spec. Expressions are the resolved, width-annotated nodes of `expr.py`. The parse graph is also available as
a networkx DiGraph (`Parser.graph`) for the passes that reason about paths. Nothing here knows a target.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .expr import (
    BOOL,
    Binary,
    Cast,
    Const,
    Expr,
    FieldRef,
    Hash,
    KeyElem,
    Lookahead,
    MetaRef,
    ParamRef,
    Present,
    RegRead,
    Slice,
    StdRef,
    Unary,
    Valid,
)
from .problems import UNKNOWN, Loc

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "BOOL",
    "BUILTIN_ACTIONS",
    "ERROR_KINDS",
    "MATCH_KINDS",
    "STD_METADATA",
    "VERDICTS",
    "Action",
    "ActionCall",
    "Apply",
    "Assign",
    "Binary",
    "CallAction",
    "Case",
    "Cast",
    "Checksum",
    "Const",
    "Count",
    "Counter",
    "Entry",
    "Expr",
    "Field",
    "FieldRef",
    "Hash",
    "HeaderType",
    "If",
    "Instance",
    "KeyElem",
    "Lookahead",
    "MetaRef",
    "OptionalGroup",
    "Param",
    "ParamRef",
    "ParseError",
    "Parser",
    "ParserState",
    "Present",
    "Program",
    "RegRead",
    "Register",
    "SetValid",
    "SetVerdict",
    "Slice",
    "StdRef",
    "Stmt",
    "Table",
    "TableKey",
    "Tlv",
    "TlvOption",
    "Unary",
    "UpdateChecksum",
    "Valid",
    "VarLen",
    "Verdict",
]


class Verdict(enum.StrEnum):
    """What happens to the packet. `drop` and `to_host` are also the only parser-error verdicts."""

    DROP = "drop"
    TO_HOST = "to_host"
    REFLECT = "reflect"
    FORWARD = "forward"


VERDICTS = [v.value for v in Verdict]
ERROR_VERDICTS = ["drop", "to_host"]


class ParseError(enum.StrEnum):
    TRUNCATED = "truncated"
    BAD_LENGTH = "bad_length"
    STACK_OVERFLOW = "stack_overflow"
    REJECT = "reject"
    CHECKSUM = "checksum"


ERROR_KINDS = [e.value for e in ParseError]
MATCH_KINDS = ["exact", "lpm", "ternary", "range"]
CHECKSUM_KINDS = ["ipv4_header", "l4"]
HASH_ALGORITHMS = {"crc16": 16, "crc32": 32}
STD_METADATA = {"ingress_port": 16, "packet_length": 32}
PORT_WIDTH = 16

# Built-in actions usable in tables and as statements. `forward` takes the egress port.
BUILTIN_ACTIONS: dict[str, list[tuple[str, int]]] = {
    "drop": [],
    "to_host": [],
    "reflect": [],
    "nop": [],
    "forward": [("port", PORT_WIDTH)],
}


# ---------------------------------------------------------------------------------------------------------
# Headers


@dataclass
class Field:
    name: str
    width: int
    offset: int  # bits from the start of its part (fixed part or optional group), MSB first
    loc: Loc = UNKNOWN


@dataclass
class OptionalGroup:
    name: str
    when: Expr  # bool over the header's fixed fields
    fields: list[Field]
    loc: Loc = UNKNOWN

    @property
    def bytes(self) -> int:
        return sum(f.width for f in self.fields) // 8


@dataclass
class TlvOption:
    name: str
    match: dict[str, int]  # option-header field -> value
    fields: list[Field]  # after the option header; offsets from the start of the option's data
    loc: Loc = UNKNOWN

    @property
    def data_bytes(self) -> int:
        return sum(f.width for f in self.fields) // 8


@dataclass
class Tlv:
    header: list[Field]  # the option header (type, length, ...)
    key: list[str]  # header fields that identify an option
    size: Expr  # total option size in bytes, over the option-header fields (FieldRef instance "")
    singletons: dict[str, int]  # name -> value of the first header field; size = that field's bytes
    end: list[str]  # singletons that end the walk
    max_options: int
    options: list[TlvOption]
    loc: Loc = UNKNOWN

    @property
    def header_bytes(self) -> int:
        return sum(f.width for f in self.header) // 8

    @property
    def singleton_bytes(self) -> int:
        return self.header[0].width // 8


@dataclass
class VarLen:
    name: str
    length: Expr  # bytes, over the header's fixed fields
    max_bytes: int
    tlv: Tlv | None = None
    loc: Loc = UNKNOWN


@dataclass
class Checksum:
    field: str
    kind: str  # 'ipv4_header' | 'l4'
    zero_means_none: bool = False
    pseudo_header: bool = True  # l4 only: TCP/UDP/ICMPv6 cover the IP pseudo-header, ICMP does not
    loc: Loc = UNKNOWN


@dataclass
class HeaderType:
    name: str
    fields: list[Field]
    groups: list[OptionalGroup] = field(default_factory=list)
    varlen: VarLen | None = None
    checksum: Checksum | None = None
    doc: str = ""
    loc: Loc = UNKNOWN

    @property
    def fixed_bits(self) -> int:
        return sum(f.width for f in self.fields)

    @property
    def fixed_bytes(self) -> int:
        return self.fixed_bits // 8

    @property
    def max_bytes(self) -> int:
        return self.fixed_bytes + sum(g.bytes for g in self.groups) + (self.varlen.max_bytes if self.varlen else 0)

    @property
    def is_fixed(self) -> bool:
        return not self.groups and self.varlen is None

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        for g in self.groups:
            for f in g.fields:
                if f.name == name:
                    return f
        return None

    def group_of(self, name: str) -> OptionalGroup | None:
        for g in self.groups:
            if any(f.name == name for f in g.fields):
                return g
        return None

    def all_fields(self) -> list[Field]:
        return [*self.fields, *(f for g in self.groups for f in g.fields)]


@dataclass
class Instance:
    """A header instance. TLV options are instances too, named `parent.option` with `ident` `parent__option`."""

    name: str
    type: HeaderType
    stack: int = 0  # 0: not a stack; N: stack of N elements
    tlv_parent: str | None = None  # for TLV options: the instance whose varlen holds them
    tlv_option: TlvOption | None = None
    loc: Loc = UNKNOWN
    # Whether the parser walks this instance's TLV area: only when the program reads one of its options, so
    # a program that merely includes TCP (whose type declares options) pays nothing for them.
    walk_tlv: bool = False

    @property
    def ident(self) -> str:
        """A C/P4-safe identifier (spec identifiers never contain `__`, so this cannot collide)."""
        return self.name.replace(".", "__")

    @property
    def is_stack(self) -> bool:
        return self.stack > 0


# ---------------------------------------------------------------------------------------------------------
# Parser


@dataclass
class Case:
    keyset: list[KeyElem]
    next: str
    loc: Loc = UNKNOWN


@dataclass
class ParserState:
    name: str
    extract: str | None = None  # instance name
    verify: list[str] = field(default_factory=list)
    # Statements run after extract and verify, before select (docs/spec-reference.md section 5): only
    # metadata assignments and `if`, so a parser error leaves the frame, counters and registers untouched.
    do: list[Stmt] = field(default_factory=list)
    select: list[Expr] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    default: str = "accept"
    loc: Loc = UNKNOWN

    def successors(self) -> list[str]:
        out = [c.next for c in self.cases]
        if not self.select or self.default not in out:
            out.append(self.default)
        return list(dict.fromkeys(out))


@dataclass
class Parser:
    start: str
    states: dict[str, ParserState]
    on_error: dict[str, str]  # ParseError value -> 'drop' | 'to_host'
    graph: nx.DiGraph
    loc: Loc = UNKNOWN


# ---------------------------------------------------------------------------------------------------------
# Statements


@dataclass(eq=False)
class Stmt:
    loc: Loc = field(default=UNKNOWN, kw_only=True)


@dataclass(eq=False)
class Assign(Stmt):
    target: FieldRef | MetaRef | RegRead
    value: Expr


@dataclass(eq=False)
class SetVerdict(Stmt):
    verdict: Verdict
    port: Expr | None = None  # forward only


@dataclass(eq=False)
class SetValid(Stmt):
    instance: str
    index: int | None
    valid: bool


@dataclass(eq=False)
class UpdateChecksum(Stmt):
    instance: str
    pseudo: str | None = None  # l4 checksums: the IP instance whose src/dst form the pseudo-header


@dataclass(eq=False)
class Count(Stmt):
    counter: str
    index: Expr


@dataclass(eq=False)
class CallAction(Stmt):
    action: str
    args: list[Expr]


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: list[Stmt]
    otherwise: list[Stmt]


@dataclass(eq=False)
class Apply(Stmt):
    table: str
    hit: list[Stmt] = field(default_factory=list)
    miss: list[Stmt] = field(default_factory=list)
    by_action: dict[str, list[Stmt]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Tables, actions, state


@dataclass
class Param:
    name: str
    width: int


@dataclass
class Action:
    name: str
    params: list[Param]
    body: list[Stmt]
    builtin: bool = False
    loc: Loc = UNKNOWN


@dataclass
class ActionCall:
    action: str
    args: list[int]
    loc: Loc = UNKNOWN


@dataclass
class TableKey:
    expr: FieldRef | MetaRef | StdRef
    kind: str
    text: str  # as written in the spec, e.g. "ipv4.dst": the control-plane name of the key
    loc: Loc = UNKNOWN

    @property
    def width(self) -> int:
        return self.expr.width


@dataclass
class Entry:
    match: list[KeyElem]  # one per key; KeyElem('any') for wildcards
    action: ActionCall
    priority: int = 0
    loc: Loc = UNKNOWN


# How a table is built (`impl:`, docs/spec-reference.md section 6): the lookup structure, named by what it is,
# not by a target. `auto` lets each target choose by its cost model; a target that has no such structure uses its
# own and says so. `nodes` sizes a multibit trie (0: the target's default for the table's size).
TABLE_IMPLS = ("auto", "hash", "cuckoo", "direct", "lpm_trie", "multibit_trie", "linear", "bit_vector")
CUCKOO_MAX_BITS = 128  # `cuckoo`: the key fields together, compared as two 64-bit words
DIRECT_MAX_BITS = 16  # `direct`: the key indexes an array, so at most 65,536 slots
BITVEC_MAX_ENTRIES = 64  # `bit_vector`: one bit per entry in a 64-bit word
BITVEC_RANGE_MAX_BITS = 16  # `bit_vector`: a range field's table is indexed by its whole value
BITVEC_IMAGE_MAX_BYTES = 1 << 20  # `bit_vector`: one image of the per-byte and per-range tables


@dataclass
class TableImpl:
    kind: str = "auto"
    nodes: int = 0
    loc: Loc = UNKNOWN


@dataclass
class Table:
    name: str
    keys: list[TableKey]
    actions: list[str]
    default: ActionCall
    size: int
    counters: bool = False
    entries: list[Entry] = field(default_factory=list)
    loc: Loc = UNKNOWN
    impl: TableImpl = field(default_factory=TableImpl)

    @property
    def lpm_key(self) -> int | None:
        for i, k in enumerate(self.keys):
            if k.kind == "lpm":
                return i
        return None

    @property
    def uses_priority(self) -> bool:
        return any(k.kind in ("ternary", "range") for k in self.keys)


@dataclass
class Counter:
    name: str
    size: int
    loc: Loc = UNKNOWN


@dataclass
class Register:
    name: str
    width: int
    size: int
    loc: Loc = UNKNOWN


@dataclass
class Program:
    name: str
    files: list[str]
    header_types: dict[str, HeaderType]
    instances: dict[str, Instance]
    metadata: dict[str, int]
    parser: Parser
    tables: dict[str, Table]
    actions: dict[str, Action]  # user actions and the built-ins
    counters: dict[str, Counter]
    registers: dict[str, Register]
    control: list[Stmt]
    deparse: list[str]
    default_verdict: str
    source_hash: str = ""
    loc: Loc = UNKNOWN

    def instance(self, name: str) -> Instance:
        return self.instances[name]

    @property
    def user_actions(self) -> dict[str, Action]:
        return {n: a for n, a in self.actions.items() if not a.builtin}


def walk_stmts(stmts: list[Stmt]) -> list[Stmt]:
    """All statements, nested ones included, in source order (not following action calls)."""
    out: list[Stmt] = []
    for s in stmts:
        out.append(s)
        if isinstance(s, If):
            out += walk_stmts(s.then) + walk_stmts(s.otherwise)
        elif isinstance(s, Apply):
            out += walk_stmts(s.hit) + walk_stmts(s.miss)
            for body in s.by_action.values():
                out += walk_stmts(body)
    return out


def walk_expr(e: Expr) -> list[Expr]:
    """The expression and all its sub-expressions, pre-order."""
    out = [e]
    if isinstance(e, Unary | Cast):
        out += walk_expr(e.operand)
    elif isinstance(e, Binary):
        out += walk_expr(e.left) + walk_expr(e.right)
    elif isinstance(e, Slice):
        out += walk_expr(e.operand)
    elif isinstance(e, Hash):
        for a in e.args:
            out += walk_expr(a)
    elif isinstance(e, RegRead):
        out += walk_expr(e.index)
    return out


def stmt_exprs(s: Stmt) -> list[Expr]:
    """The expressions a statement evaluates directly."""
    if isinstance(s, Assign):
        return [s.target, s.value]
    if isinstance(s, SetVerdict):
        return [s.port] if s.port is not None else []
    if isinstance(s, Count):
        return [s.index]
    if isinstance(s, CallAction):
        return list(s.args)
    if isinstance(s, If):
        return [s.cond]
    return []


