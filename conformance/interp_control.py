"""The control phase of the reference interpreter: statements and table application (sections 7, 8, 11.3).

Statements are compiled once into closures over the packet state. Tables are looked up through a `TableRuntime`
whose matcher and default the interpreter replaces on every `install`, so compiled code never needs rebuilding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir

from .interp_expr import Env, Fn, compile_expr
from .interp_runtime import Ctx
from .interp_tables import Matcher

__all__ = ["ControlCompiler", "Run", "TableRuntime"]

Run = Callable[[Ctx], None]


def _nothing(c: Ctx) -> None:
    return None


def block(fns: list[Run]) -> Run:
    if not fns:
        return _nothing
    if len(fns) == 1:
        return fns[0]
    seq = tuple(fns)

    def run(c: Ctx) -> None:
        for f in seq:
            f(c)

    return run


@dataclass
class TableRuntime:
    """The installed state of one table."""

    table: ir.Table
    matcher: Matcher
    default_action: str
    default_args: tuple[int, ...]


def add_count(c: Ctx, key: tuple[str, int]) -> None:
    old = c.counters.get(key)
    c.counters[key] = (old[0] + 1, old[1] + c.length) if old else (1, c.length)


@dataclass
class ControlCompiler:
    prog: ir.Program
    env: Env
    tables: dict[str, TableRuntime]
    actions: dict[str, Run] = field(default_factory=dict)  # compiled bodies, parameters in Ctx.params

    def compile_actions(self) -> None:
        for name, action in self.prog.actions.items():
            env = self.env.with_params({p.name: i for i, p in enumerate(action.params)})
            self.actions[name] = self.block(action.body, env)

    def block(self, stmts: list[ir.Stmt], env: Env) -> Run:
        return block([self.stmt(s, env) for s in stmts])

    def stmt(self, s: ir.Stmt, env: Env) -> Run:
        if isinstance(s, ir.Assign):
            return self.assign(s, env)
        if isinstance(s, ir.SetVerdict):
            return self.set_verdict(s, env)
        if isinstance(s, ir.SetValid):
            return self.set_valid(s, env)
        if isinstance(s, ir.UpdateChecksum):
            request = (s.instance, s.pseudo)

            def update_checksum(c: Ctx) -> None:
                if request not in c.checksums:
                    c.checksums.append(request)

            return update_checksum
        if isinstance(s, ir.Count):
            counter = self.prog.counters[s.counter]
            name, size = counter.name, counter.size
            index = compile_expr(s.index, env)

            def count(c: Ctx) -> None:
                i = index(c)
                if i < size:
                    add_count(c, (name, i))

            return count
        if isinstance(s, ir.CallAction):
            body = self.actions[s.action]
            args = [compile_expr(a, env) for a in s.args]

            def call(c: Ctx) -> None:
                saved = c.params
                c.params = [f(c) for f in args]
                body(c)
                c.params = saved

            return call
        if isinstance(s, ir.If):
            cond = compile_expr(s.cond, env)
            then, otherwise = self.block(s.then, env), self.block(s.otherwise, env)
            if not s.then and not s.otherwise:
                return _nothing  # `nop`

            def if_(c: Ctx) -> None:
                if cond(c):
                    then(c)
                else:
                    otherwise(c)

            return if_
        if isinstance(s, ir.Apply):
            return self.apply(s, env)
        raise ValueError(f"IR bug: unexpected statement {type(s).__name__}")

    def assign(self, s: ir.Assign, env: Env) -> Run:
        value = compile_expr(s.value, env)
        t = s.target
        if isinstance(t, ir.MetaRef):
            mi = env.meta_index[t.name]

            def set_meta(c: Ctx) -> None:
                c.meta[mi] = value(c)

            return set_meta
        if isinstance(t, ir.RegRead):
            reg = self.prog.registers[t.register]
            name, size = reg.name, reg.size
            index = compile_expr(t.index, env)

            def set_reg(c: Ctx) -> None:
                i = index(c)
                v = value(c)
                if i < size:
                    if v:
                        c.regs[(name, i)] = v
                    else:
                        c.regs.pop((name, i), None)

            return set_reg
        if isinstance(t, ir.FieldRef):
            if not isinstance(t.index, int | None) or t.instance == "":
                raise ValueError(f"IR bug: cannot assign {t.instance}.{t.field_name} outside the parser")
            k = env.slots.slot(t.instance, t.index)
            layout = env.layouts[t.instance]
            fi = layout.index[t.field_name]
            if t.group is None:
                def set_field(c: Ctx) -> None:
                    h = c.hdrs[k]
                    if h is not None:
                        h.vals[fi] = value(c)
                        h.raw = None

                return set_field
            gi = [g.name for g in layout.groups].index(t.group)

            def set_group_field(c: Ctx) -> None:
                h = c.hdrs[k]
                if h is not None and h.present[gi]:
                    h.vals[fi] = value(c)
                    h.raw = None

            return set_group_field
        raise ValueError(f"IR bug: unexpected assignment target {type(t).__name__}")

    def set_verdict(self, s: ir.SetVerdict, env: Env) -> Run:
        verdict = s.verdict.value
        if s.verdict is ir.Verdict.FORWARD:
            if s.port is None:
                raise ValueError("IR bug: forward without a port")
            port = compile_expr(s.port, env)

            def forward(c: Ctx) -> None:
                c.verdict = verdict
                c.egress = port(c)

            return forward

        def set_verdict(c: Ctx) -> None:
            c.verdict = verdict

        return set_verdict

    def set_valid(self, s: ir.SetValid, env: Env) -> Run:
        k = env.slots.slot(s.instance, s.index)
        if s.valid:
            layout = env.layouts[s.instance]

            def set_valid(c: Ctx) -> None:
                if c.hdrs[k] is None:
                    c.hdrs[k] = layout.blank()

            return set_valid
        # A header's TLV options go with it: they were read from its (now removed) options area.
        options = [env.slots.base[n] for n, i in self.prog.instances.items() if i.tlv_parent == s.instance]

        def set_invalid(c: Ctx) -> None:
            c.hdrs[k] = None
            for o in options:
                c.hdrs[o] = None

        return set_invalid

    def apply(self, s: ir.Apply, env: Env) -> Run:
        rt = self.tables[s.table]
        table = rt.table
        name = table.name
        keys: list[Fn] = [compile_expr(k.expr, env) for k in table.keys]
        actions = self.actions
        counter = f"table.{name}" if table.counters else None
        on_hit, on_miss = self.block(s.hit, env), self.block(s.miss, env)
        by_action = {a: self.block(body, env) for a, body in s.by_action.items()}
        single = keys[0] if len(keys) == 1 else None

        def apply(c: Ctx) -> None:
            key = (single(c),) if single is not None else tuple(f(c) for f in keys)
            e = rt.matcher.lookup(key)
            if e is not None:
                action, args, index, hit = e.action, e.args, e.index, True
            else:
                action, args, index, hit = rt.default_action, rt.default_args, -1, False
            saved = c.params
            c.params = args
            actions[action](c)
            c.params = saved
            if counter is not None:
                add_count(c, (counter, index))
            c.tables[name] = action
            c.hits[name] = hit
            (on_hit if hit else on_miss)(c)
            branch = by_action.get(action)
            if branch is not None:
                branch(c)

        return apply
