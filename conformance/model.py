"""The data every conformance component shares: control-plane state, packets in, results out.

Drivers, the reference interpreter, vector files and reports all speak these types, so any two targets'
results can be compared field by field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from c3po_compiler.expr import KeyElem

VECTOR_FORMAT_VERSION = 1


@dataclass(frozen=True)
class EntryState:
    """One table entry as the control plane installs it. `match` has one element per table key, in key order,
    in canonical form: exact `value`, lpm `prefix` (a = value, b = length), ternary `mask` (a = value,
    b = mask), range `range` (a = lo, b = hi); `any` only for lpm/ternary/range wildcards."""

    table: str
    match: tuple[KeyElem, ...]
    action: str
    args: tuple[int, ...] = ()
    priority: int = 0


@dataclass(frozen=True)
class ControlState:
    """Tables (in install order) and table default-action overrides. Install order is the entry's counter
    index and the tie-break between equal priorities."""

    entries: tuple[EntryState, ...] = ()
    defaults: tuple[tuple[str, str, tuple[int, ...]], ...] = ()  # (table, action, args)

    def key(self) -> str:
        """Stable identity, so vectors sharing a control state are installed once."""
        blob = json.dumps([[e.table, [(m.kind, m.a, m.b) for m in e.match], e.action, list(e.args), e.priority]
                           for e in self.entries] + [list(d) for d in self.defaults])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PacketIn:
    port: int
    data: bytes


# Counter values are sparse: (counter name, index) -> (packets, bytes). Table per-entry counters are named
# "table.<table>" with the entry's install index, and index -1 for the default action.
Counters = dict[tuple[str, int], tuple[int, int]]
Registers = dict[tuple[str, int], int]


@dataclass
class Result:
    """What a target did with one packet. `port` is the egress port for forward, the ingress port for reflect,
    None otherwise. `data` is the frame as it left (for drop: the frame as the program left it is not
    observable, so it is b"")."""

    verdict: str
    port: int | None
    data: bytes
    counters: Counters = field(default_factory=dict)
    registers: Registers = field(default_factory=dict)
    observations: dict[str, Any] = field(default_factory=dict)  # parse path, offsets, parser error, tables hit
    error: str | None = None  # set when the driver could not run this packet (crash, timeout)


@dataclass
class Vector:
    """A sequence of packets run from a fresh state: tables from `control`, registers from `registers`,
    counters at zero. Expected results are per packet."""

    name: str
    control: ControlState
    packets: list[PacketIn]
    registers: Registers = field(default_factory=dict)
    expected: list[Expected] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Expected:
    verdict: str
    port: int | None
    data: bytes
    care_mask: bytes | None = None  # 1 bits are compared; None compares every byte
    counters: Counters | None = None  # None: not compared
    registers: Registers | None = None
    observations: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, r: Result) -> Expected:
        return cls(r.verdict, r.port, r.data, None, dict(r.counters), dict(r.registers), dict(r.observations))
