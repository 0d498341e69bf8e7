"""The per-packet state of the reference interpreter and the bit layouts of header types.

Every header element (an instance, each element of a stack, each TLV option) owns one *slot* in the packet
state: `None` while invalid, a `Hdr` while valid. Field values live in a list indexed by the field's position in
`HeaderType.all_fields()`; fields of an absent optional group are 0 and are never written, which is exactly the
spec's "reading a field of an absent group yields 0; writing it has no effect".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from c3po_compiler import ir

__all__ = ["Ctx", "FieldSpec", "Hdr", "HeaderLayout", "ParseFail", "Slots", "field_specs"]


class ParseFail(Exception):
    """A parser error (section 5): ends parsing, the control does not run."""

    def __init__(self, kind: ir.ParseError) -> None:
        super().__init__(kind.value)
        self.kind = kind


class Hdr:
    """One valid header element. `raw` caches the header's bytes while they are known to match `vals`
    (as parsed, until a write), so an untouched header is deparsed verbatim without re-serialising."""

    __slots__ = ("offset", "orig", "present", "raw", "tail", "vals")

    def __init__(self, vals: list[int], present: list[bool], tail: bytes, raw: bytes | None,
                 orig: list[int] | None, offset: int | None) -> None:
        self.vals = vals
        self.present = present
        self.tail = tail
        self.raw = raw
        self.orig = orig  # field values as parsed (or as set_valid made them), for incremental L4 checksums
        self.offset = offset  # byte offset in the received frame; None when added by set_valid


@dataclass(frozen=True)
class FieldSpec:
    """Where one field sits inside its part (fixed part, optional group or TLV option data)."""

    index: int  # position in all_fields()
    width: int
    shift: int  # right shift of the part's big-endian integer that brings the field to bit 0
    mask: int


def field_specs(fields: list[ir.Field], first_index: int) -> tuple[list[FieldSpec], int]:
    total = sum(f.width for f in fields)
    specs = [FieldSpec(first_index + i, f.width, total - f.offset - f.width, (1 << f.width) - 1)
             for i, f in enumerate(fields)]
    return specs, total // 8


@dataclass
class GroupLayout:
    name: str
    fields: list[FieldSpec]
    nbytes: int


@dataclass
class HeaderLayout:
    """Bit positions of a header type's fields, computed once per type."""

    htype: ir.HeaderType
    fixed: list[FieldSpec]
    fixed_bytes: int
    groups: list[GroupLayout]
    index: dict[str, int]  # field name -> index in vals
    nfields: int

    @classmethod
    def of(cls, ht: ir.HeaderType) -> HeaderLayout:
        fixed, nbytes = field_specs(ht.fields, 0)
        groups: list[GroupLayout] = []
        n = len(ht.fields)
        for g in ht.groups:
            specs, gbytes = field_specs(g.fields, n)
            groups.append(GroupLayout(g.name, specs, gbytes))
            n += len(g.fields)
        index = {f.name: i for i, f in enumerate(ht.all_fields())}
        return cls(ht, fixed, nbytes, groups, index, n)

    @staticmethod
    def unpack(specs: list[FieldSpec], chunk: bytes, vals: list[int]) -> None:
        v = int.from_bytes(chunk, "big")
        for s in specs:
            vals[s.index] = (v >> s.shift) & s.mask

    @staticmethod
    def pack(specs: list[FieldSpec], vals: list[int], nbytes: int) -> bytes:
        v = 0
        for s in specs:
            v = (v << s.width) | vals[s.index]
        return v.to_bytes(nbytes, "big")

    def serialize(self, h: Hdr) -> bytes:
        out = self.pack(self.fixed, h.vals, self.fixed_bytes)
        for g, present in zip(self.groups, h.present, strict=True):
            if present:
                out += self.pack(g.fields, h.vals, g.nbytes)
        return out + h.tail

    def blank(self) -> Hdr:
        """What set_valid makes of an invalid header: all zero, no groups, empty tail."""
        return Hdr([0] * self.nfields, [False] * len(self.groups), b"", None, [0] * self.nfields, None)


@dataclass
class Slots:
    """Slot numbers of every header element, and stack bookkeeping."""

    base: dict[str, int] = field(default_factory=dict)  # instance -> first slot
    stack_id: dict[str, int] = field(default_factory=dict)  # stack instance -> index into Ctx.stack_next
    names: list[str] = field(default_factory=list)  # slot -> display name ("ipv4", "vlan[1]", "tcp.mss")
    instance_of: list[str] = field(default_factory=list)  # slot -> instance name

    @classmethod
    def of(cls, prog: ir.Program) -> Slots:
        s = cls()
        for name, inst in prog.instances.items():
            s.base[name] = len(s.names)
            if inst.is_stack:
                s.stack_id[name] = len(s.stack_id)
                for i in range(inst.stack):
                    s.names.append(f"{name}[{i}]")
                    s.instance_of.append(name)
            else:
                s.names.append(name)
                s.instance_of.append(name)
        return s

    def slot(self, instance: str, index: int | None) -> int:
        return self.base[instance] + (index or 0)


class Ctx:
    """Everything one packet's execution reads and writes. Registers and counters are shared by the packets
    of one run; the rest is fresh per packet."""

    __slots__ = ("checksums", "counters", "cursor", "data", "egress", "hdrs", "hits", "length", "local", "meta",
                 "params", "port", "regs", "stack_next", "tables", "verdict")

    def __init__(self, data: bytes, port: int, nslots: int, nstacks: int, meta: list[int],
                 regs: dict[tuple[str, int], int], counters: dict[tuple[str, int], tuple[int, int]],
                 verdict: str) -> None:
        self.data = data
        self.port = port
        self.length = len(data)
        self.cursor = 0
        self.hdrs: list[Hdr | None] = [None] * nslots
        self.stack_next = [0] * nstacks
        self.meta = meta
        self.params: Sequence[int] = ()
        self.local: list[int] = []
        self.regs = regs
        self.counters = counters
        self.verdict = verdict
        self.egress: int | None = None
        self.checksums: list[Any] = []
        self.tables: dict[str, str] = {}
        self.hits: dict[str, bool] = {}
