"""The parse phase of the reference interpreter (docs/spec-reference.md sections 2, 5 and 11.1).

The parse graph is compiled once into one `StatePlan` per state; `parse()` walks it over a frame, filling the
packet's header slots, and raises `ParseFail` on any parser error. Every read is bounds-checked against the frame
before it happens, so a short or malformed frame can only end in a parser error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .checksums import ones_sum
from .interp_expr import Env, Fn, compile_expr
from .interp_runtime import Ctx, FieldSpec, Hdr, HeaderLayout, ParseFail, field_specs

__all__ = ["ParserPlan", "StatePlan"]

TRUNCATED = ir.ParseError.TRUNCATED
BAD_LENGTH = ir.ParseError.BAD_LENGTH
# Parser loops are bounded by stack sizes (the front end checks this); this bound only catches an IR bug.
MAX_STATES_VISITED = 4096


@dataclass
class OptionPlan:
    slot: int
    fields: list[FieldSpec]
    data_bytes: int
    nfields: int


@dataclass
class TlvPlan:
    header: list[FieldSpec]
    header_bytes: int
    nheader: int
    size: Fn  # over Ctx.local = the option-header values
    singleton_bytes: int
    singletons: set[int]
    end: set[int]
    options: list[tuple[list[tuple[int, int]], OptionPlan]]  # (option-header index, value) conditions
    max_options: int

    def named(self, hv: list[int]) -> OptionPlan | None:
        for conds, opt in self.options:
            if all(hv[i] == v for i, v in conds):
                return opt
        return None

    def walk(self, c: Ctx, area: bytes, area_offset: int) -> None:
        """Section 2 "TLV areas": walk the options in order, first occurrence of a named option wins."""
        pos, count, n = 0, 0, len(area)
        while pos < n:
            if count >= self.max_options:
                raise ParseFail(BAD_LENGTH)
            count += 1
            if self.singletons:
                sb = self.singleton_bytes
                if pos + sb > n:
                    raise ParseFail(BAD_LENGTH)
                t = int.from_bytes(area[pos:pos + sb], "big")
                if t in self.singletons:
                    pos += sb
                    if t in self.end:
                        return  # the rest of the area is padding
                    continue
            hb = self.header_bytes
            if pos + hb > n:
                raise ParseFail(BAD_LENGTH)
            hv = [0] * self.nheader
            HeaderLayout.unpack(self.header, area[pos:pos + hb], hv)
            c.local = hv
            size = self.size(c)
            if size < hb or pos + size > n:
                raise ParseFail(BAD_LENGTH)
            opt = self.named(hv)
            if opt is not None:
                if size < hb + opt.data_bytes:
                    raise ParseFail(BAD_LENGTH)  # too short for the option's declared fields: malformed
                if c.hdrs[opt.slot] is None:
                    vals = [0] * opt.nfields
                    HeaderLayout.unpack(opt.fields, area[pos + hb:pos + hb + opt.data_bytes], vals)
                    c.hdrs[opt.slot] = Hdr(vals, [], b"", None, None, area_offset + pos)
            pos += size


@dataclass
class ExtractPlan:
    instance: str
    layout: HeaderLayout
    base: int
    stack: int  # 0 for a plain instance
    stack_id: int
    when: list[Fn]  # per optional group, over Ctx.local = the header's values
    length: Fn | None  # varlen length in bytes, over Ctx.local
    max_bytes: int
    tlv: TlvPlan | None

    def extract(self, c: Ctx) -> Hdr:
        if self.stack:
            n = c.stack_next[self.stack_id]
            if n >= self.stack:
                raise ParseFail(ir.ParseError.STACK_OVERFLOW)
            k = self.base + n
        else:
            k = self.base
        lay = self.layout
        data, start = c.data, c.cursor
        end = start + lay.fixed_bytes
        if end > c.length:
            raise ParseFail(TRUNCATED)
        vals = [0] * lay.nfields
        lay.unpack(lay.fixed, data[start:end], vals)
        present: list[bool] = []
        if lay.groups:
            c.local = vals
            for g, when in zip(lay.groups, self.when, strict=True):
                p = bool(when(c))
                if p:
                    gend = end + g.nbytes
                    if gend > c.length:
                        raise ParseFail(TRUNCATED)
                    lay.unpack(g.fields, data[end:gend], vals)
                    end = gend
                present.append(p)
        tail = b""
        if self.length is not None:
            c.local = vals
            nbytes = self.length(c)
            if nbytes > self.max_bytes:
                raise ParseFail(BAD_LENGTH)
            if end + nbytes > c.length:
                raise ParseFail(TRUNCATED)
            tail = data[end:end + nbytes]
            if self.tlv is not None:
                self.tlv.walk(c, tail, end)
            end += nbytes
        h = Hdr(vals, present, tail, data[start:end], list(vals), start)
        c.hdrs[k] = h
        if self.stack:
            c.stack_next[self.stack_id] += 1
        c.cursor = end
        return h


@dataclass
class StatePlan:
    name: str
    extract: ExtractPlan | None
    verify: bool
    do: Callable[[Ctx], None] | None  # the state's statements (metadata only), after extract and verify
    select: list[Fn]
    cases: list[tuple[list[KeyElem], str]]
    by_value: dict[int, str] | None  # fast path: one select expression, every case a plain value
    default: str

    def next_state(self, c: Ctx) -> str:
        if not self.select:
            return self.default
        if self.by_value is not None:
            return self.by_value.get(self.select[0](c), self.default)
        values = [f(c) for f in self.select]
        for keyset, nxt in self.cases:
            if all(e.selects(v) for e, v in zip(keyset, values, strict=True)):
                return nxt
        return self.default


@dataclass
class ParserPlan:
    start: str
    states: dict[str, StatePlan] = field(default_factory=dict)

    @classmethod
    def of(cls, prog: ir.Program, env: Env,
           block: Callable[[list[ir.Stmt]], Callable[[Ctx], None]] | None = None) -> ParserPlan:
        """`block` compiles a state's `do` statements (the control's compiler: the same statement semantics)."""
        plan = cls(prog.parser.start)
        extracts: dict[str, ExtractPlan] = {}
        for name, st in prog.parser.states.items():
            ex = None
            if st.extract is not None:
                if st.extract not in extracts:
                    extracts[st.extract] = _extract_plan(prog, env, st.extract)
                ex = extracts[st.extract]
            select = [compile_expr(e, env) for e in st.select]
            cases = [(list(c.keyset), c.next) for c in st.cases]
            by_value: dict[int, str] | None = None
            if len(select) == 1 and all(k[0].kind == "value" for k, _ in cases):
                by_value = {}
                for k, nxt in cases:
                    by_value.setdefault(k[0].a, nxt)
            if st.do and block is None:
                raise ValueError("IR bug: a parser state has statements but no statement compiler was given")
            do = block(st.do) if st.do and block is not None else None
            plan.states[name] = StatePlan(name, ex, bool(st.verify), do, select, cases, by_value, st.default)
        return plan

    def parse(self, c: Ctx, path: list[str]) -> None:
        """Run the parse graph from the start state; raises ParseFail. `path` collects the states visited."""
        state = self.start
        for _ in range(MAX_STATES_VISITED):
            if state == "accept":
                return
            if state == "reject":
                raise ParseFail(ir.ParseError.REJECT)
            sp = self.states[state]
            path.append(state)
            if sp.extract is not None:
                h = sp.extract.extract(c)
                if sp.verify and ones_sum(h.raw or b"") != 0xFFFF:
                    raise ParseFail(ir.ParseError.CHECKSUM)
            if sp.do is not None:
                sp.do(c)  # section 11.1: after extract and verify, before select
            state = sp.next_state(c)
        raise RuntimeError("IR bug: the parse graph did not terminate")


def _extract_plan(prog: ir.Program, env: Env, instance: str) -> ExtractPlan:
    inst = prog.instances[instance]
    ht = inst.type
    layout = env.layouts[instance]
    local = env.with_local(dict(layout.index))
    when = [compile_expr(g.when, local) for g in ht.groups]
    length = None
    max_bytes = 0
    tlv = None
    if ht.varlen is not None:
        length = compile_expr(ht.varlen.length, local)
        max_bytes = ht.varlen.max_bytes
        if ht.varlen.tlv is not None and inst.walk_tlv:  # only walked when the program reads an option
            tlv = _tlv_plan(env, instance, ht.varlen.tlv)
    return ExtractPlan(instance, layout, env.slots.base[instance], inst.stack,
                       env.slots.stack_id.get(instance, -1), when, length, max_bytes, tlv)


def _tlv_plan(env: Env, instance: str, tlv: ir.Tlv) -> TlvPlan:
    header, hbytes = field_specs(tlv.header, 0)
    names = [f.name for f in tlv.header]
    size = compile_expr(tlv.size, env.with_local({n: i for i, n in enumerate(names)}))
    options: list[tuple[list[tuple[int, int]], OptionPlan]] = []
    for opt in tlv.options:
        slot = env.slots.base.get(f"{instance}.{opt.name}")
        if slot is None:
            continue  # an option the program never reads (the front end drops it): skipped like an unknown one
        specs, nbytes = field_specs(opt.fields, 0)
        conds = [(names.index(k), v) for k, v in opt.match.items()]
        options.append((conds, OptionPlan(slot, specs, nbytes, len(opt.fields))))
    end = {tlv.singletons[n] for n in tlv.end}
    return TlvPlan(header, hbytes, len(header), size, tlv.singleton_bytes, set(tlv.singletons.values()), end,
                   options, tlv.max_options)
