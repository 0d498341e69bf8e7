"""`c3po trace`'s engine: the reference interpreter, recording an event per step it takes for one packet.

Explaining a packet must show the oracle's own decisions, not a re-implementation of them, so the events
come from a subclass of the interpreter whose statements and parser are compiled with recording wrappers.
The plain `Interpreter` (what conformance runs) is not touched: tracing costs nothing when it is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from c3po_compiler import ir
from dataplane.api import Entry
from dataplane.syntax import action_text, entry_text, literal_text

from .checksums import ones_sum
from .interp_control import ControlCompiler, Run
from .interp_expr import Env, compile_expr
from .interp_parser import MAX_STATES_VISITED, ParserPlan
from .interp_runtime import Ctx, ParseFail
from .interpreter import Interpreter
from .model import Counters, PacketIn, Registers, Result


@dataclass
class Event:
    """One step: `kind` (extract, select, do, apply, assign, count, verdict, parse_error), a line of text in
    the spec's syntax, and the structured values for `--json`."""

    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def expr_text(e: ir.Expr) -> str:
    """An assignment target as the spec writes it (metadata, header fields, registers)."""
    if isinstance(e, ir.MetaRef):
        return f"meta.{e.name}"
    if isinstance(e, ir.FieldRef):
        inst = e.instance if e.index is None else f"{e.instance}[{e.index}]"
        return f"{inst}.{e.field_name}"
    if isinstance(e, ir.RegRead):
        return f"{e.register}[...]"
    return type(e).__name__


class _Explain(ControlCompiler):
    events: list[Event]

    def stmt(self, s: ir.Stmt, env: Env) -> Run:
        inner = super().stmt(s, env)
        events = self.events
        if isinstance(s, ir.Assign):
            name = expr_text(s.target)
            width = getattr(s.target, "width", 0) or 0
            read = compile_expr(s.target, env) if not isinstance(s.target, ir.RegRead) else None
            value = compile_expr(s.value, env)
            t = s.target
            slot = (env.slots.slot(t.instance, t.index)
                    if isinstance(t, ir.FieldRef) and isinstance(t.index, int | None) else None)

            def assign(c: Ctx) -> None:
                inner(c)
                if slot is not None and c.hdrs[slot] is None:  # the write is a no-op: say so, not "= 0"
                    events.append(Event("assign", f"{name}: header not valid, not assigned",
                                        {"target": name, "value": None}))
                    return
                v = read(c) if read is not None else value(c)
                shown = literal_text(v, width, name) if width else str(v)
                events.append(Event("assign", f"{name} = {shown}", {"target": name, "value": v}))

            return assign
        if isinstance(s, ir.Count):
            index = compile_expr(s.index, env)
            cname = s.counter

            def count(c: Ctx) -> None:
                inner(c)
                i = index(c)
                events.append(Event("count", f"count {cname}[{i}]", {"counter": cname, "index": i}))

            return count
        if isinstance(s, ir.SetVerdict):
            def verdict(c: Ctx) -> None:
                inner(c)
                port = f" port {c.egress}" if c.verdict == "forward" else ""
                events.append(Event("verdict", f"verdict {c.verdict}{port}",
                                    {"verdict": c.verdict, "port": c.egress}))

            return verdict
        if isinstance(s, ir.Apply):
            rt = self.tables[s.table]
            table = rt.table
            keys = [compile_expr(k.expr, env) for k in table.keys]
            prog = self.prog

            def apply(c: Ctx) -> None:
                key = tuple(f(c) for f in keys)
                e = rt.matcher.lookup(key)  # the same lookup the inner apply makes: it reads, never writes
                shown = " ".join(f"{k.text}={literal_text(v, k.width, k.text)}"
                                 for k, v in zip(table.keys, key, strict=True))
                if e is not None:
                    entry = Entry(e.match, e.action, e.args, e.priority)
                    text = f"table {table.name} key {shown}: hit {entry_text(prog, table, entry)}"
                    data = {"table": table.name, "key": list(key), "hit": True, "entry": e.index,
                            "action": e.action, "args": list(e.args)}
                else:
                    act = action_text(prog, rt.default_action, rt.default_args)
                    text = f"table {table.name} key {shown}: miss -> default {act}"
                    data = {"table": table.name, "key": list(key), "hit": False, "entry": None,
                            "action": rt.default_action, "args": list(rt.default_args)}
                events.append(Event("apply", text, data))
                inner(c)

            return apply
        return inner


class ExplainingInterpreter(Interpreter):
    """An interpreter whose results carry `observations["events"]`: the steps taken, in order."""

    def __init__(self, prog: ir.Program) -> None:
        super().__init__(prog)
        self.events: list[Event] = []
        cc = _Explain(prog, self.env, self.tables)
        cc.events = self.events
        cc.compile_actions()
        self.control = cc.block(prog.control, self.env)
        self.parser = ParserPlan.of(prog, self.env, lambda stmts: cc.block(stmts, self.env))

    def _header_event(self, c: Ctx, k: int) -> Event:
        h = c.hdrs[k]
        assert h is not None
        name = self.slots.names[k]
        inst = self.slots.instance_of[k]
        ht = self.prog.instances[inst].type
        layout = self.layouts[inst]
        fields: dict[str, int] = {}
        for f in ht.fields:
            fields[f.name] = h.vals[layout.index[f.name]]
        for g, present in zip(ht.groups, h.present, strict=True):
            if present:
                for f in g.fields:
                    fields[f.name] = h.vals[layout.index[f.name]]
        widths = {f.name: f.width for f in ht.fields} | {f.name: f.width for g in ht.groups for f in g.fields}
        shown = ", ".join(f"{n}={literal_text(v, widths[n], n)}" for n, v in fields.items())
        return Event("extract", f"extract {name} at offset {h.offset}: {shown}",
                     {"header": name, "offset": h.offset, "fields": fields})

    def _parse(self, c: Ctx, path: list[str]) -> str | None:
        """`ParserPlan.parse` step by step, recording each extract and select (same order of effects)."""
        plan = self.parser
        state = plan.start
        try:
            for _ in range(MAX_STATES_VISITED):
                if state == "accept":
                    return None
                if state == "reject":
                    raise ParseFail(ir.ParseError.REJECT)
                sp = plan.states[state]
                path.append(state)
                if sp.extract is not None:
                    before = [h is not None for h in c.hdrs]
                    h = sp.extract.extract(c)
                    for k, was in enumerate(before):
                        if not was and c.hdrs[k] is h:
                            self.events.append(self._header_event(c, k))
                    if sp.verify and ones_sum(h.raw or b"") != 0xFFFF:
                        raise ParseFail(ir.ParseError.CHECKSUM)
                if sp.do is not None:
                    sp.do(c)
                nxt = sp.next_state(c)
                if sp.select:
                    values = [f(c) for f in sp.select]
                    case = next((i for i, (ks, n) in enumerate(sp.cases)
                                 if all(e.selects(v) for e, v in zip(ks, values, strict=True))), None)
                    how = "default" if case is None else f"case {case}"
                    shown = ", ".join(hex(v) for v in values)
                    self.events.append(Event("select", f"state {state}: select ({shown}) -> {how} -> {nxt}",
                                             {"state": state, "values": values, "case": case, "next": nxt}))
                state = nxt
        except ParseFail as fail:
            self.events.append(Event("parse_error", f"parser error: {fail.kind.value}", {"error": fail.kind.value}))
            return fail.kind.value
        raise RuntimeError("IR bug: the parse graph did not terminate")

    def _one(self, p: PacketIn, regs: Registers, counters: Counters) -> Result:
        self.events.clear()
        r = super()._one(p, regs, counters)
        r.observations["events"] = list(self.events)
        return r
