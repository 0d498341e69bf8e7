"""The data every conformance component shares: control-plane state, packets in, results out.

Drivers, the reference interpreter, vector files and reports all speak these types, so any two targets'
results can be compared field by field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

VECTOR_FORMAT_VERSION = 1
OP_KINDS = ("insert", "modify", "delete", "default")


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
class ControlOp:
    """One control-plane update of a sequence: `insert` (match, action, args, priority), `modify` (the entry
    with this match and priority gets a new action), `delete` (match and priority), `default` (action, args).
    Sequences exist so that conformance drives each target's table-update path (kernel map updates and
    deletes, the NIC's C table API, P4Runtime writes), not only its bulk install."""

    op: str
    table: str
    match: tuple[KeyElem, ...] = ()
    action: str = ""
    args: tuple[int, ...] = ()
    priority: int = 0


@dataclass(frozen=True)
class ControlState:
    """Tables (in install order) and table default-action overrides. Install order is the entry's counter
    index and the tie-break between equal priorities. `ops`, when given, are applied in order after the
    entries and defaults; what packets then see is `replay(prog, state).final`."""

    entries: tuple[EntryState, ...] = ()
    defaults: tuple[tuple[str, str, tuple[int, ...]], ...] = ()  # (table, action, args)
    ops: tuple[ControlOp, ...] = ()

    def key(self) -> str:
        """Stable identity, so vectors sharing a control state are installed once. Computed once per object
        (vectors share their state objects, and a filled table's state has a thousand entries)."""
        cached = self.__dict__.get("_key")
        if cached is None:
            cached = self._compute_key()
            object.__setattr__(self, "_key", cached)  # frozen: not a field, so equality and hashing ignore it
        return str(cached)

    def _compute_key(self) -> str:
        items: list[object] = [[e.table, [(m.kind, m.a, m.b) for m in e.match], e.action, list(e.args), e.priority]
                               for e in self.entries]
        items += [list(d) for d in self.defaults]
        if self.ops:  # left out when empty, so states without ops keep the keys they always had
            items.append([[o.op, o.table, [(m.kind, m.a, m.b) for m in o.match], o.action, list(o.args),
                           o.priority] for o in self.ops])
        blob = json.dumps(items)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ReplayError(ValueError):
    """A sequence that cannot be applied (insert of an entry that exists, modify or delete of one that does
    not, a table overfilled); the message starts with `ops[i]`."""


@dataclass(frozen=True)
class Replay:
    """A state's ops applied in Python, once, for the oracle and for every driver alike.

    Incarnations number every entry that ever exists: the state's entries 0..n-1, then one per insert (a
    deleted and re-inserted entry is a new incarnation). `steps[i]` is the incarnation op i inserted, modified
    or deleted (-1 for a default); `position` maps each surviving incarnation to its index in `final.entries`,
    which is its install order: kept by a modify, the end for an insert. Drivers use both to report per-entry
    counters under the final index, whatever handle or slot their target gave the entry."""

    final: ControlState
    steps: tuple[int, ...]
    position: dict[int, int]


def _canonical(table: ir.Table, match: tuple[KeyElem, ...]) -> tuple[KeyElem, ...]:
    from dataplane.api import canonical

    return canonical(table, match)


def entry_identity(table: ir.Table, match: tuple[KeyElem, ...], priority: int) -> tuple[object, ...]:
    """What names an entry in an op: its match (wildcards in one form), and for priority tables its priority
    too, as P4Runtime and every c3po control API have it."""
    from dataplane.api import entry_identity as identity

    return identity(table, _canonical(table, match), priority)


def replay(prog: ir.Program, control: ControlState) -> Replay:
    """Apply `control.ops` to its entries and defaults: the final image, in the one place it is computed."""
    alive: dict[int, EntryState] = dict(enumerate(control.entries))
    by_ident: dict[tuple[str, tuple[object, ...]], int] = {}
    counts = {n: len(t.entries) for n, t in prog.tables.items()}
    consts = {(n, entry_identity(t, tuple(e.match), e.priority if t.uses_priority else 0))
              for n, t in prog.tables.items() for e in t.entries}
    for i, e in enumerate(control.entries):
        t = prog.tables.get(e.table)
        if t is None:
            raise ReplayError(f"entries[{i}]: unknown table '{e.table}'")
        ident = (e.table, entry_identity(t, e.match, e.priority))
        if control.ops and (ident in by_ident or ident in consts):
            raise ReplayError(f"entries[{i}]: repeats the match of an earlier entry of table '{e.table}'; with "
                              "ops, every entry must be distinct (ops name entries by their match)")
        by_ident.setdefault(ident, i)
        counts[e.table] = counts.get(e.table, 0) + 1
    defaults = {t: (a, args) for t, a, args in control.defaults}
    steps: list[int] = []
    next_id = len(control.entries)
    for k, op in enumerate(control.ops):
        where = f"ops[{k}] ({op.op} in table '{op.table}')"
        t = prog.tables.get(op.table)
        if t is None:
            raise ReplayError(f"{where}: unknown table")
        if op.op == "default":
            defaults[op.table] = (op.action, op.args)
            steps.append(-1)
            continue
        ident = (op.table, entry_identity(t, op.match, op.priority))
        if ident in consts:
            raise ReplayError(f"{where}: the entry is one of the spec's constant entries, which ops cannot change")
        current = by_ident.get(ident)
        if op.op == "insert":
            if current is not None:
                raise ReplayError(f"{where}: the table already has an entry with this match (modify it, or delete "
                                  "it first)")
            if counts[op.table] >= t.size:
                consts_note = f", {len(t.entries)} of them constant" if t.entries else ""
                raise ReplayError(f"{where}: table '{op.table}' is full: it holds {t.size} entries{consts_note}")
            counts[op.table] += 1
            alive[next_id] = EntryState(op.table, op.match, op.action, op.args, op.priority)
            by_ident[ident] = next_id
            steps.append(next_id)
            next_id += 1
        elif current is None:
            raise ReplayError(f"{where}: the table has no entry with this match"
                              + (f" and priority {op.priority}" if t.uses_priority else ""))
        elif op.op == "modify":
            old = alive[current]
            alive[current] = EntryState(old.table, old.match, op.action, op.args, old.priority)
            steps.append(current)
        elif op.op == "delete":
            del alive[current], by_ident[ident]
            counts[op.table] -= 1
            steps.append(current)
        else:
            raise ReplayError(f"{where}: unknown op '{op.op}' (one of {', '.join(OP_KINDS)})")
    order = sorted(alive)
    final = ControlState(tuple(alive[i] for i in order),
                         tuple((t, a, args) for t, (a, args) in defaults.items()))
    return Replay(final, tuple(steps), {inc: pos for pos, inc in enumerate(order)})


def final_state(prog: ir.Program, control: ControlState) -> ControlState:
    """What packets see after `control` is installed: the state itself when it has no ops."""
    return replay(prog, control).final if control.ops else control


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
