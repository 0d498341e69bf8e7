"""Tests moved ahead of a lookup whose result they make irrelevant (issue 14: unobservable reorders).

A spec often looks a table up first and tests the packet afterwards: the router checks the destination MAC, then
the TTL, and sends the packet to the host on a miss and on TTL <= 1 alike. Written that way, every packet with
an expiring TTL pays for a lookup whose result cannot change what happens to it. An expert's program tests the
TTL first. This pass makes the same reorder, and only where no packet, counter or register can tell the
difference, so every target that uses it stays equivalent to the reference interpreter (which runs the spec as
written: the conformance suite is what checks this pass).

A lookup is *silent* when nothing outside the control's own branching depends on it: the table has no counters,
every action it can run (its listed actions and its default) has an empty body, and the apply has no per-action
branches. Two rewrites then hold for a silent table T, by case analysis on hit and miss:

1. `apply T {hit: H, miss: H}` is `H`: both outcomes run the same statements.
2. `apply T {hit: [if c then A else B], miss: M}` is `if c then apply T {hit: A, miss: M} else apply T {hit: B,
   miss: M}`: c reads headers, metadata and registers, none of which a silent lookup writes, so it has the same
   value before the lookup as after it; on a miss, evaluating c changes nothing either (expressions have no side
   effects). The same holds with hit and miss exchanged.

Rule 2 is used only where it lets rule 1 remove a lookup on at least one branch (each use copies the apply, so
without a removal it would only add code). The targets that copy the control per parse path (xdp) then keep one
apply per path, as a `valid()` test is known there.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from . import ir


def exits_before_lookups(prog: ir.Program) -> ir.Program:
    """The program with the rewrites above applied to its control (the argument is left as it is)."""
    silent = {n for n, t in prog.tables.items() if is_silent(prog, t)}
    if not silent:
        return prog
    control = _block(copy.deepcopy(prog.control), silent)
    return dataclasses.replace(prog, control=control)


def is_silent(prog: ir.Program, t: ir.Table) -> bool:
    """Whether a lookup of `t` leaves nothing behind but which branch runs (see the module docstring)."""
    if t.counters:
        return False
    return all(a in prog.actions and not prog.actions[a].body for a in {*t.actions, t.default.action})


def _block(stmts: list[ir.Stmt], silent: set[str]) -> list[ir.Stmt]:
    return [y for s in stmts for y in _stmt(s, silent)]


def _stmt(s: ir.Stmt, silent: set[str]) -> list[ir.Stmt]:
    if isinstance(s, ir.If):
        return [dataclasses.replace(s, then=_block(s.then, silent), otherwise=_block(s.otherwise, silent))]
    if isinstance(s, ir.Apply):
        s = dataclasses.replace(s, hit=_block(s.hit, silent), miss=_block(s.miss, silent),
                                by_action={a: _block(b, silent) for a, b in s.by_action.items()})
        if s.table in silent and not s.by_action:
            return _split(s)
    return [s]


def _split(s: ir.Apply) -> list[ir.Stmt]:
    if same(s.hit, s.miss):
        return s.hit  # rule 1
    if len(s.hit) == 1 and isinstance(s.hit[0], ir.If) and _reaches(s.hit[0], s.miss):
        test = s.hit[0]  # rule 2, then rule 1 on the branch that reaches the miss's statements
        then = _split(dataclasses.replace(s, hit=test.then, miss=copy.deepcopy(s.miss)))
        otherwise = _split(dataclasses.replace(s, hit=test.otherwise, miss=copy.deepcopy(s.miss)))
        return [dataclasses.replace(test, then=then, otherwise=otherwise)]
    if len(s.miss) == 1 and isinstance(s.miss[0], ir.If) and _reaches(s.miss[0], s.hit):
        test = s.miss[0]  # the same with hit and miss exchanged
        then = _split(dataclasses.replace(s, hit=copy.deepcopy(s.hit), miss=test.then))
        otherwise = _split(dataclasses.replace(s, hit=copy.deepcopy(s.hit), miss=test.otherwise))
        return [dataclasses.replace(test, then=then, otherwise=otherwise)]
    return [s]


def _reaches(test: ir.If, miss: list[ir.Stmt]) -> bool:
    """Whether a branch of `test`, or of an `if` that is a branch's only statement, runs exactly `miss`."""
    for branch in (test.then, test.otherwise):
        if same(branch, miss):
            return True
        if len(branch) == 1 and isinstance(branch[0], ir.If) and _reaches(branch[0], miss):
            return True
    return False


_WHERE = ("loc", "pos")  # a statement's place in the spec, an expression's place in its text


def same(a: Any, b: Any) -> bool:
    """Structural equality of IR values, ignoring where in the spec each was written."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.name not in _WHERE)
    return bool(a == b)
