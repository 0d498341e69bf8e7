"""The control API every target implements: tables by name, entries in the spec's canonical match form.

One encoder per target: the CLI, `c3po apply`, the conformance drivers and the benchmarks all go through a
target's `Dataplane`, so key and value bytes are written in one place. A backend implements a handful of
primitives (`_insert`, `_modify`, `_remove`, `_entries`, defaults, counters, registers); checking names, widths,
duplicates and capacity happens here, before any byte reaches the target, so an error never leaves a half-written
entry. A table's implementation may need more than one map write per entry (the next issue replaces kernel maps
with tries and cuckoo arrays): the primitives take whole entries, never bytes.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.lower import MAX_PRIORITY

Counter = tuple[int, int]  # (packets, bytes)


class ControlError(Exception):
    """A request the program cannot take (unknown name, wrong width, full table, duplicate, missing entry).
    Raised before anything is written; `hint` says what would be valid."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f" (hint: {self.hint})" if self.hint else "")


class DataplaneUnavailable(ControlError):
    """The target's tools or privileges are missing (no root, no BPF, no BMv2)."""


def did_you_mean(name: str, known: Iterable[str], what: str) -> ControlError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else (
        f"{what}s: {', '.join(known)}" if known else f"the program has no {what}s")
    return ControlError(f"unknown {what} '{name}'", hint)


@dataclass(frozen=True)
class Entry:
    """One table entry: `match` has one canonical element per table key, in key order (exact `value`, lpm
    `prefix`, ternary `mask`, range `range`, `any` for a wildcard). `counter` is filled when read with counters;
    `const` marks the spec's constant entries."""

    match: tuple[KeyElem, ...]
    action: str
    args: tuple[int, ...] = ()
    priority: int = 0
    counter: Counter | None = None
    const: bool = False

    def same_action(self, other: Entry) -> bool:
        return (self.action, self.args) == (other.action, other.args)


def canonical(table: ir.Table, match: tuple[KeyElem, ...]) -> tuple[KeyElem, ...]:
    """Wildcards in one form: a ternary mask of 0, an lpm prefix of length 0 and a full range all match
    everything, and a target reads them back as `any`; so two writings of one entry compare equal."""
    out = []
    for k, m in zip(table.keys, match, strict=True):
        full = (1 << k.width) - 1
        if (m.kind == "mask" and m.b == 0) or (m.kind == "prefix" and m.b == 0) or \
                (m.kind == "range" and m.a == 0 and m.b == full):
            m = KeyElem("any")
        out.append(m)
    return tuple(out)


def entry_identity(table: ir.Table, match: tuple[KeyElem, ...], priority: int) -> tuple[Any, ...]:
    """What makes two entries the same entry: the match, and for priority-ordered tables the priority too
    (P4Runtime's rule: ternary/range entries with equal matches and different priorities are distinct)."""
    return (match, priority) if table.uses_priority else (match,)


@dataclass
class Diff:
    """What `apply` changed, in the order it did it."""

    added: list[tuple[str, Entry]] = field(default_factory=list)
    modified: list[tuple[str, Entry]] = field(default_factory=list)
    deleted: list[tuple[str, Entry]] = field(default_factory=list)
    defaults: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.modified or self.deleted or self.defaults)


class Table:
    """A live table, by name. Checks every request against the spec, then calls the backend."""

    def __init__(self, dp: Dataplane, spec: ir.Table) -> None:
        self.dp = dp
        self.spec = spec
        self.name = spec.name

    # ---- checks shared by every target
    def _check_match(self, match: tuple[KeyElem, ...] | list[KeyElem]) -> tuple[KeyElem, ...]:
        keys = self.spec.keys
        if len(match) != len(keys):
            raise ControlError(f"table '{self.name}' has {len(keys)} key(s), {len(match)} given",
                               "keys: " + ", ".join(k.text for k in keys))
        for k, m in zip(keys, match, strict=True):
            limit = 1 << k.width
            if m.kind == "any" and k.kind == "exact":
                raise ControlError(f"exact key '{k.text}' of table '{self.name}' needs a value")
            if m.a >= limit or (m.kind in ("mask", "range") and m.b >= limit) or m.a < 0 or m.b < 0:
                raise ControlError(f"value for key '{k.text}' does not fit bit<{k.width}>",
                                   f"the largest value is {limit - 1:#x}")
            if m.kind == "prefix" and m.b > k.width:
                raise ControlError(f"prefix length {m.b} is longer than key '{k.text}' (bit<{k.width}>)")
        return canonical(self.spec, tuple(match))

    def _check_action(self, action: str, args: tuple[int, ...] | list[int], default: bool = False
                      ) -> tuple[int, ...]:
        allowed = [*self.spec.actions, "nop"] if default else list(self.spec.actions)
        if action not in allowed:
            if action in self.dp.prog.actions:
                raise ControlError(f"action '{action}' is not an action of table '{self.name}'",
                                   "its actions: " + ", ".join(allowed))
            raise did_you_mean(action, allowed, "action")
        params = self.dp.prog.actions[action].params
        if len(args) != len(params):
            names = ", ".join(f"{p.name}: bit<{p.width}>" for p in params) or "none"
            raise ControlError(f"action '{action}' takes {len(params)} argument(s), {len(args)} given",
                               f"its parameters: {names}")
        for p, a in zip(params, args, strict=True):
            if not 0 <= a < 1 << p.width:
                raise ControlError(f"argument '{p.name}' = {a:#x} does not fit bit<{p.width}>")
        return tuple(args)

    def _check_priority(self, priority: int) -> int:
        if not self.spec.uses_priority:
            if priority:
                raise ControlError(f"table '{self.name}' has no ternary or range key: entries take no priority")
            return 0
        if not 0 <= priority <= MAX_PRIORITY:
            raise ControlError(f"priority {priority} is out of range", f"0..{MAX_PRIORITY}")
        return priority

    def _find(self, match: tuple[KeyElem, ...], priority: int) -> Entry | None:
        ident = entry_identity(self.spec, match, priority)
        for e in self.dp._entries(self.name, counters=False):
            if entry_identity(self.spec, e.match, e.priority) == ident:
                return e
        return None

    # ---- operations
    def add(self, match: tuple[KeyElem, ...] | list[KeyElem], action: str, args: tuple[int, ...] | list[int] = (),
            priority: int = 0) -> None:
        m = self._check_match(match)
        a = self._check_action(action, args)
        p = self._check_priority(priority)
        with self.dp.locked():
            current = self.dp._entries(self.name, counters=False)
            ident = entry_identity(self.spec, m, p)
            if any(entry_identity(self.spec, e.match, e.priority) == ident for e in current):
                raise ControlError(f"table '{self.name}' already has an entry with this match",
                                   "use modify to change its action")
            if len(current) >= self.spec.size:
                raise ControlError(f"table '{self.name}' is full ({self.spec.size} entries)",
                                   "delete an entry first, or raise the table's size in the spec")
            self.dp._insert(self.name, Entry(m, action, a, p))

    def modify(self, match: tuple[KeyElem, ...] | list[KeyElem], action: str,
               args: tuple[int, ...] | list[int] = (), priority: int = 0) -> None:
        m = self._check_match(match)
        a = self._check_action(action, args)
        p = self._check_priority(priority)
        with self.dp.locked():
            old = self._find(m, p)
            if old is None:
                raise ControlError(f"table '{self.name}' has no entry with this match", "use add to create it")
            self.dp._modify(self.name, old, Entry(m, action, a, p, const=old.const))

    def delete(self, match: tuple[KeyElem, ...] | list[KeyElem], priority: int = 0) -> None:
        m = self._check_match(match)
        p = self._check_priority(priority)
        with self.dp.locked():
            old = self._find(m, p)
            if old is None:
                raise ControlError(f"table '{self.name}' has no entry with this match")
            self.dp._remove(self.name, old)

    def entries(self, counters: bool = True) -> list[Entry]:
        """Entries in match order: priority-ordered tables by priority (highest first), then install order. Read
        under the lock, as a change by another command is either wholly there or not at all."""
        with self.dp.locked():
            return self.dp._entries(self.name, counters=counters)

    def clear(self) -> int:
        """Delete every entry (constant ones too: the spec's are put back by `apply` of an empty file only if
        listed); returns how many."""
        with self.dp.locked():
            old = self.dp._entries(self.name, counters=False)
            for e in old:
                self.dp._remove(self.name, e)
            return len(old)

    def set_default(self, action: str, args: tuple[int, ...] | list[int] = ()) -> None:
        a = self._check_action(action, args, default=True)
        with self.dp.locked():
            self.dp._set_default(self.name, action, a)

    def default(self) -> tuple[str, tuple[int, ...]]:
        return self.dp._get_default(self.name)

    def default_counter(self) -> Counter | None:
        return self.dp._default_counter(self.name)


class Dataplane(ABC):
    """A program loaded on a target. Subclasses implement the primitives; `table()`, `apply()` and `dump()`
    are shared."""

    target: str = ""

    def __init__(self, name: str, prog: ir.Program) -> None:
        self.name = name
        self.prog = prog

    # ---- names
    def table(self, name: str) -> Table:
        t = self.prog.tables.get(name)
        if t is None:
            raise did_you_mean(name, self.prog.tables, "table")
        return Table(self, t)

    def _counter_spec(self, name: str) -> ir.Counter:
        c = self.prog.counters.get(name)
        if c is None:
            raise did_you_mean(name, self.prog.counters, "counter")
        return c

    def _register_spec(self, name: str) -> ir.Register:
        r = self.prog.registers.get(name)
        if r is None:
            raise did_you_mean(name, self.prog.registers, "register")
        return r

    @staticmethod
    def _check_index(kind: str, name: str, index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ControlError(f"index {index} is outside {kind} '{name}'", f"0..{size - 1}")

    # ---- counters and registers (index None: every element; only non-zero ones are returned)
    def counter_read(self, name: str, index: int | None = None) -> dict[int, Counter]:
        c = self._counter_spec(name)
        if index is not None:
            self._check_index("counter", name, index, c.size)
        return self._counter_read(name, index)

    def counter_reset(self, name: str, index: int | None = None) -> None:
        c = self._counter_spec(name)
        if index is not None:
            self._check_index("counter", name, index, c.size)
        with self.locked():
            self._counter_reset(name, index)

    def register_read(self, name: str, index: int | None = None) -> dict[int, int]:
        r = self._register_spec(name)
        if index is not None:
            self._check_index("register", name, index, r.size)
        return self._register_read(name, index)

    def register_write(self, name: str, index: int, value: int) -> None:
        r = self._register_spec(name)
        self._check_index("register", name, index, r.size)
        if not 0 <= value < 1 << r.width:
            raise ControlError(f"value {value:#x} does not fit register '{name}' (bit<{r.width}>)")
        with self.locked():
            self._register_write(name, index, value)

    # ---- whole-state operations
    def apply(self, tables: dict[str, list[Entry]], defaults: dict[str, tuple[str, tuple[int, ...]]],
              only: Iterable[str] | None = None) -> Diff:
        """Make the live tables equal to `tables` (every table of the program, or those in `only`): entries not
        listed are deleted (except the spec's constant entries: they are part of the program), listed ones
        added or modified; then defaults. Deletes go first so a full table
        can be refilled. Each entry is written on its own (see the target's docs for what a packet in flight
        sees)."""
        names = list(only) if only is not None else list(self.prog.tables)
        diff = Diff()
        with self.locked():
            for tname in names:
                t = self.table(tname)
                want: dict[tuple[Any, ...], Entry] = {}
                for e in tables.get(tname, []):
                    m = t._check_match(e.match)
                    p = t._check_priority(e.priority)
                    e = Entry(m, e.action, t._check_action(e.action, e.args), p)
                    want.setdefault(entry_identity(t.spec, m, p), e)
                if len(want) > t.spec.size:
                    raise ControlError(f"{len(want)} entries for table '{tname}', which holds {t.spec.size}")
                have = {entry_identity(t.spec, e.match, e.priority): e
                        for e in self._entries(tname, counters=False)}
                for ident, e in have.items():
                    if ident not in want and not e.const:  # the spec's entries are part of the program
                        self._remove(tname, e)
                        diff.deleted.append((tname, e))
                for ident, e in want.items():
                    old = have.get(ident)
                    if old is None:
                        self._insert(tname, e)
                        diff.added.append((tname, e))
                    elif not old.same_action(e):
                        self._modify(tname, old, replace(e, const=old.const))
                        diff.modified.append((tname, e))
            for tname, (action, args) in defaults.items():
                if only is not None and tname not in names:
                    continue
                t = self.table(tname)
                args = t._check_action(action, args, default=True)
                if self._get_default(tname) != (action, args):
                    self._set_default(tname, action, args)
                    diff.defaults.append((tname, action, args))
        return diff

    def dump(self, counters: bool = False) -> tuple[dict[str, list[Entry]], dict[str, tuple[str, tuple[int, ...]]]]:
        with self.locked():
            tables = {n: self._entries(n, counters=counters) for n in self.prog.tables}
            defaults = {n: self._get_default(n) for n in self.prog.tables}
        return tables, defaults

    def locked(self) -> Any:
        """A context manager that keeps other c3po processes from changing this program meanwhile (a file
        lock for programs that outlive the process; nothing for in-process ones)."""
        from contextlib import nullcontext
        return nullcontext()

    # ---- backend primitives (names already checked; entries already checked and canonical)
    @abstractmethod
    def _entries(self, table: str, counters: bool) -> list[Entry]: ...

    @abstractmethod
    def _insert(self, table: str, entry: Entry) -> None: ...

    @abstractmethod
    def _modify(self, table: str, old: Entry, new: Entry) -> None: ...

    @abstractmethod
    def _remove(self, table: str, entry: Entry) -> None: ...

    @abstractmethod
    def _set_default(self, table: str, action: str, args: tuple[int, ...]) -> None: ...

    @abstractmethod
    def _get_default(self, table: str) -> tuple[str, tuple[int, ...]]: ...

    @abstractmethod
    def _default_counter(self, table: str) -> Counter | None: ...

    @abstractmethod
    def _counter_read(self, name: str, index: int | None) -> dict[int, Counter]: ...

    @abstractmethod
    def _counter_reset(self, name: str, index: int | None) -> None: ...

    @abstractmethod
    def _register_read(self, name: str, index: int | None) -> dict[int, int]: ...

    @abstractmethod
    def _register_write(self, name: str, index: int, value: int) -> None: ...

    def status(self) -> dict[str, Any]:
        """What `c3po status` shows beyond the registry record: per table entries / size."""
        with self.locked():
            return {"tables": {n: {"entries": len(self._entries(n, counters=False)), "size": t.size}
                               for n, t in self.prog.tables.items()}}

    def close(self) -> None:
        """Release this process's handles; the program keeps running (unload stops it)."""
        return None
