"""The reference interpreter with coverage probes: which if-branches ran, and what key values each table saw.

The generator needs both (branch coverage, and table entries that match a packet's real key values — also
for metadata keys written by earlier actions). Probes are added by compiling the same IR with a subclass of
the interpreter's control compiler, so the semantics are the oracle's own.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir

from .interp_control import ControlCompiler, Run
from .interp_expr import Env, compile_expr
from .interp_parser import ParserPlan
from .interp_runtime import Ctx
from .interpreter import Interpreter
from .model import Counters, PacketIn, Registers, Result


def stmt_id(s: ir.Stmt) -> str:
    return f"{s.loc.file}:{s.loc.line}:{s.loc.col}"


class _Probe(ControlCompiler):
    trace: list[Any]

    def stmt(self, s: ir.Stmt, env: Env) -> Run:
        inner = self._probed(s, env)
        trace, sid = self.trace, stmt_id(s)
        if isinstance(s, ir.UpdateChecksum):
            # an update only shows in the output when it changes the checksum: the deparse phase reports that,
            # keyed by the request, and coverage joins the two
            request = (s.instance, s.pseudo)

            def checksum_probe(c: Ctx) -> None:
                trace.append(("stmt_checksum", sid, request))
                inner(c)

            return checksum_probe

        def stmt_probe(c: Ctx) -> None:
            trace.append(("stmt", sid, None))
            inner(c)

        return stmt_probe

    def _probed(self, s: ir.Stmt, env: Env) -> Run:
        inner = super().stmt(s, env)
        trace = self.trace
        if isinstance(s, ir.If):
            cond = compile_expr(s.cond, env)
            sid = stmt_id(s)

            def if_probe(c: Ctx) -> None:
                trace.append(("if", sid, bool(cond(c))))
                inner(c)

            return if_probe
        if isinstance(s, ir.Apply):
            keys = [compile_expr(k.expr, env) for k in self.prog.tables[s.table].keys]
            name = s.table

            def apply_probe(c: Ctx) -> None:
                trace.append(("apply", name, tuple(f(c) for f in keys)))
                inner(c)

            return apply_probe
        return inner


class TracingInterpreter(Interpreter):
    """Results carry `observations["trace"]`: ("if", stmt id, taken), ("apply", table, key values),
    ("stmt", stmt id, None), ("stmt_checksum", stmt id, request) and, at deparse, ("checksum", request,
    changed)."""

    def __init__(self, prog: ir.Program) -> None:
        super().__init__(prog)
        self.trace: list[Any] = []
        cc = _Probe(prog, self.env, self.tables)
        cc.trace = self.trace
        cc.compile_actions()
        self.control = cc.block(prog.control, self.env)
        self.parser = ParserPlan.of(prog, self.env, lambda stmts: cc.block(stmts, self.env))  # `do` traced too

    def _update_checksum(self, c: Ctx, request: tuple[str, str | None]) -> None:
        plan = self.checksum_plans[request]
        before = [h.vals[plan.field_index] if (h := c.hdrs[k]) is not None else None for k in plan.slots]
        super()._update_checksum(c, request)
        after = [h.vals[plan.field_index] if (h := c.hdrs[k]) is not None else None for k in plan.slots]
        self.trace.append(("checksum", request, before != after))

    def _one(self, p: PacketIn, regs: Registers, counters: Counters) -> Result:
        self.trace.clear()
        r = super()._one(p, regs, counters)
        r.observations["trace"] = list(self.trace)
        return r


def parser_bodies(prog: ir.Program) -> list[list[ir.Stmt]]:
    """The parser states' `do` statements: their branches and statements are covered like the control's."""
    return [st.do for st in prog.parser.states.values() if st.do]


def branch_points(prog: ir.Program) -> list[tuple[str, str]]:
    """Every control branch the generator must cover: (if id, then|else) and (table, hit|miss)."""
    out: list[tuple[str, str]] = []
    bodies = [prog.control, *(a.body for a in prog.user_actions.values()), *parser_bodies(prog)]
    for body in bodies:
        for s in ir.walk_stmts(body):
            if isinstance(s, ir.If) and (s.then or s.otherwise):
                out += [(stmt_id(s), "then"), (stmt_id(s), "else")]
            elif isinstance(s, ir.Apply):
                out += [(s.table, "hit"), (s.table, "miss")]
    return list(dict.fromkeys(out))


def _tri(e: ir.Expr, valid: set[str]) -> bool | None:
    """Three-valued value of a condition knowing only which headers are valid (None: depends on values)."""
    return tri(e, frozenset(valid), frozenset())


def tri(e: ir.Expr, valid: frozenset[str], maybe: frozenset[str]) -> bool | None:
    """`_tri`, with headers that may or may not be valid (TLV options): their valid() is unknown."""
    if isinstance(e, ir.Valid):
        name = e.instance if e.index is None else f"{e.instance}[{e.index}]"
        if name in maybe or (e.index is None and any(v.startswith(e.instance + "[") for v in maybe)):
            return None
        return name in valid or (e.index is None and any(v.startswith(e.instance + "[") for v in valid))
    if isinstance(e, ir.Const) and e.is_bool:
        return bool(e.value)
    if isinstance(e, ir.Unary) and e.op == "!":
        v = tri(e.operand, valid, maybe)
        return None if v is None else not v
    if isinstance(e, ir.Binary) and e.op in ("&&", "||"):
        a, b = tri(e.left, valid, maybe), tri(e.right, valid, maybe)
        if e.op == "&&":
            if a is False or b is False:
                return False
            return True if a is True and b is True else None
        if a is True or b is True:
            return True
        return False if a is False and b is False else None
    return None


def infeasible_branches(prog: ir.Program, header_sets: list[set[str]]) -> dict[str, str]:
    """Branches of `control` that no accepted parse path can reach, judged only by header validity: the
    enclosing conditions' `valid()` terms contradict every parse path's set of valid headers. Sound only
    without set_valid/set_invalid before the branch, so programs using them get no verdicts."""
    if any(
        isinstance(s, ir.SetValid)
        for body in [prog.control, *(a.body for a in prog.user_actions.values())]
        for s in ir.walk_stmts(body)
    ):
        return {}
    out: dict[str, str] = {}

    def reachable(chain: list[tuple[ir.Expr, bool]]) -> bool:
        return any(all(_tri(c, hs) in (None, want) for c, want in chain) for hs in header_sets)

    def walk(stmts: list[ir.Stmt], chain: list[tuple[ir.Expr, bool]]) -> None:
        for s in stmts:
            if isinstance(s, ir.If):
                for want, body, label in ((True, s.then, "then"), (False, s.otherwise, "else")):
                    sub = [*chain, (s.cond, want)]
                    if (s.then or s.otherwise) and not reachable(sub):
                        out[f"{stmt_id(s)}:{label}"] = (
                            "no parse path gives the valid headers this branch "
                            "needs (its conditions' valid() terms contradict "
                            "the parse graph)"
                        )
                    walk(body, sub)
            elif isinstance(s, ir.Apply):
                if not reachable(chain):
                    for label in ("hit", "miss"):
                        out.setdefault(
                            f"{s.table}:{label}",
                            "the table is applied only under conditions no parse path satisfies",
                        )
                walk(s.hit, chain)
                walk(s.miss, chain)
                for body in s.by_action.values():
                    walk(body, chain)

    walk(prog.control, [])
    return out


def statement_points(prog: ir.Program) -> list[tuple[str, list[str], list[str]]]:
    """Every statement of the control block and of the user actions, as (id, all_of, any_of): the branch
    items that must all be reachable for it to run (its enclosing branches), and the table × action pairs
    one of which must be (an action body's statements, unless something calls the action directly). A
    statement under an unreachable branch is then reported as infeasible for the same reason."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    called = {
        s.action
        for body in [prog.control, *(a.body for a in prog.actions.values())]
        for s in ir.walk_stmts(body)
        if isinstance(s, ir.CallAction)
    }

    def walk(stmts: list[ir.Stmt], guards: list[str], any_of: list[str]) -> None:
        for s in stmts:
            out.setdefault(stmt_id(s), (guards, any_of))
            if isinstance(s, ir.If):
                walk(s.then, [*guards, f"{stmt_id(s)}:then"], any_of)
                walk(s.otherwise, [*guards, f"{stmt_id(s)}:else"], any_of)
            elif isinstance(s, ir.Apply):
                walk(s.hit, [*guards, f"{s.table}:hit"], any_of)
                walk(s.miss, [*guards, f"{s.table}:miss"], any_of)
                for a, body in s.by_action.items():
                    walk(body, [*guards, f"{s.table}.{a}"], any_of)

    walk(prog.control, [], [])
    for body in parser_bodies(prog):
        walk(body, [], [])
    for name, action in prog.user_actions.items():
        pairs = [f"{t.name}.{name}" for t in prog.tables.values() if name in (*t.actions, t.default.action)]
        walk(action.body, [], [] if name in called else pairs)
    return [(sid, all_of, any_of) for sid, (all_of, any_of) in out.items()]
