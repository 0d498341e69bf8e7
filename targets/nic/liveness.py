"""Which per-packet state the generated NIC code has to keep, decided on the IR.

The packet path only generates a store when some later code can read it: a header's valid flag that nothing
tests, the parse position of a header that is never written back, the reset of a metadata field that every path
assigns before reading it, the structural deparser of a program that never adds or removes a header. Such
stores cost time per packet, and mutating them changes nothing a packet can show (they are the "equivalent in
behaviour" mutants of docs/conformance.md), so they are left out rather than tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from c3po_compiler import ir

VERDICT = "verdict"  # the definite-assignment analysis' names for c->verdict and c->port
PORT = "port"


def bodies(prog: ir.Program) -> list[list[ir.Stmt]]:
    """The statement lists the control can run: the control itself and every user action."""
    return [prog.control, *(a.body for a in prog.user_actions.values())]


def exprs_of(prog: ir.Program) -> Iterable[ir.Expr]:
    """Every expression the control, the actions, the parser's statements and the table keys evaluate,
    sub-expressions included (parser selects are looked at apart)."""
    for body in [*bodies(prog), *(st.do for st in prog.parser.states.values())]:
        for s in ir.walk_stmts(body):
            for e in ir.stmt_exprs(s):
                yield from ir.walk_expr(e)
    for t in prog.tables.values():
        for k in t.keys:
            yield from ir.walk_expr(k.expr)


def known_valid_in_select(prog: ir.Program, st: ir.ParserState, ref: ir.FieldRef) -> bool:
    """A select reads a fixed field of the header its own state extracted (of a stack: its last element): the
    header is valid, so the read needs no valid test."""
    stack = prog.instances[ref.instance].is_stack
    return (ref.instance == st.extract and not ref.group and (ref.index == "last" if stack else True)
            and not any(isinstance(s, ir.SetValid) for s in ir.walk_stmts(st.do)))


def instance_of(e: ir.Expr) -> str | None:
    if isinstance(e, ir.FieldRef | ir.Valid | ir.Present):
        return e.instance
    return None


@dataclass
class Liveness:
    restructures: bool = False  # a header can be added or removed, or a stack element written
    any_set_valid: bool = False  # a header's validity can change after parsing
    valid_read: set[str] = field(default_factory=set)  # instances whose valid flag the code may test
    fields_read: set[str] = field(default_factory=set)  # instances some expression reads a field of
    written: set[str] = field(default_factory=set)  # instances whose bytes a statement or checksum update writes
    meta_reset: set[str] = field(default_factory=set)  # metadata some path can read before writing it
    verdict_reset: bool = True  # some path ends the control without setting the verdict
    verdicts: set[str] = field(default_factory=set)  # the verdicts a packet can get from the control
    port_reset: bool = True  # the port can be reported without a path having set it


def analyse(prog: ir.Program) -> Liveness:
    lv = Liveness()
    stmts = [s for body in bodies(prog) for s in ir.walk_stmts(body)]
    lv.any_set_valid = any(isinstance(s, ir.SetValid) for s in stmts)
    lv.restructures = lv.any_set_valid or any(
        isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef) and prog.instances[s.target.instance].is_stack
        for s in stmts)
    for s in stmts:
        if isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef):
            lv.written.add(s.target.instance)
        elif isinstance(s, ir.UpdateChecksum):
            lv.written.add(s.instance)
            lv.valid_read.add(s.instance)
        elif isinstance(s, ir.SetValid):
            lv.valid_read.add(s.instance)
    for e in exprs_of(prog):
        name = instance_of(e)
        if name is not None:
            lv.valid_read.add(name)
        if isinstance(e, ir.FieldRef):
            lv.fields_read.add(e.instance)
    for st in prog.parser.states.values():
        for sel in st.select:
            for e in ir.walk_expr(sel):
                name = instance_of(e)
                if name is None:
                    continue
                if isinstance(e, ir.FieldRef):
                    lv.fields_read.add(name)
                if isinstance(e, ir.FieldRef) and known_valid_in_select(prog, st, e):
                    continue  # read without the valid test
                lv.valid_read.add(name)
    # a header's options: the walk itself reads their flags (an option's first occurrence wins)
    lv.valid_read |= {n for n, i in prog.instances.items() if i.tlv_parent is not None or i.is_stack}
    parser_meta = {e.name for st in prog.parser.states.values()
                   for x in [*st.select, *(y for s in ir.walk_stmts(st.do) for y in ir.stmt_exprs(s))]
                   for e in ir.walk_expr(x) if isinstance(e, ir.MetaRef)}
    da = DefiniteAssignment(prog)
    done = da.block(prog.control, frozenset())
    lv.meta_reset = (da.read_unassigned & set(prog.metadata)) | (parser_meta & set(prog.metadata))
    lv.verdict_reset = VERDICT not in done
    forward_without_port = prog.default_verdict == ir.Verdict.FORWARD.value or any(
        isinstance(s, ir.SetVerdict) and s.verdict == ir.Verdict.FORWARD and s.port is None for s in stmts)
    lv.port_reset = PORT not in done and forward_without_port
    lv.verdicts = {prog.default_verdict} | {s.verdict.value for s in stmts if isinstance(s, ir.SetVerdict)} | {
        a for t in prog.tables.values() for a in [*t.actions, t.default.action]
        if prog.actions[a].builtin and a != "nop"}
    return lv


class DefiniteAssignment:
    """Which of c->m_*, c->verdict and c->port every path through a block assigns, and which the block can read
    before any assignment on its path (`read_unassigned`). A table apply runs any of its actions (the control
    plane may set any of them as the default, and `nop` always), so it assigns what all of them assign."""

    def __init__(self, prog: ir.Program) -> None:
        self.prog = prog
        self.read_unassigned: set[str] = set()

    def reads(self, e: ir.Expr | None, done: frozenset[str]) -> None:
        if e is None:
            return
        for x in ir.walk_expr(e):
            if isinstance(x, ir.MetaRef) and x.name not in done:
                self.read_unassigned.add(x.name)

    def block(self, body: list[ir.Stmt], done: frozenset[str]) -> frozenset[str]:
        for s in body:
            done = self.stmt(s, done)
        return done

    def stmt(self, s: ir.Stmt, done: frozenset[str]) -> frozenset[str]:
        if isinstance(s, ir.Assign):
            self.reads(s.value, done)
            if isinstance(s.target, ir.MetaRef):
                return done | {s.target.name}
            self.reads(s.target, done)
            return done
        if isinstance(s, ir.SetVerdict):
            self.reads(s.port, done)
            return done | ({VERDICT, PORT} if s.port is not None else {VERDICT})
        if isinstance(s, ir.CallAction):
            for a in s.args:
                self.reads(a, done)
            return self.action(s.action, done)
        if isinstance(s, ir.If):
            self.reads(s.cond, done)
            return self.block(s.then, done) & self.block(s.otherwise, done)
        if isinstance(s, ir.Apply):
            t = self.prog.tables[s.table]
            for k in t.keys:
                self.reads(k.expr, done)
            names = dict.fromkeys([*t.actions, t.default.action, *(["nop"] if "nop" in self.prog.actions else [])])
            after = frozenset.intersection(*(self.action(a, done) for a in names))
            if s.hit or s.miss:
                after = self.block(s.hit, after) & self.block(s.miss, after)
            for body in s.by_action.values():
                self.block(body, after)  # only its reads: an action without a body leaves `after` as it is
            return after
        for e in ir.stmt_exprs(s):
            self.reads(e, done)
        return done

    def action(self, name: str, done: frozenset[str]) -> frozenset[str]:
        act = self.prog.actions[name]
        if not act.builtin:
            return self.block(act.body, done)
        if name == "nop":
            return done
        return done | ({VERDICT, PORT} if name == ir.Verdict.FORWARD.value else {VERDICT})
