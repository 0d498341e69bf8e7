"""The reference interpreter: the executable form of docs/spec-reference.md section 11, and the oracle every
target is compared against.

    interp = Interpreter(program)
    interp.install(control_state)
    results = interp.run([PacketIn(port, frame), ...], registers)

It is written to be read next to the spec: parse (`interp_parser`), control (`interp_control`, tables in
`interp_tables`), then deparse and verdict (here). For speed every expression, statement and parser state is
compiled once, in the constructor, into Python closures; nothing is interpreted from the tree per packet.
A malformed frame never raises: it ends as a parser error. An IR the front end should have refused may raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .checksums import ipv4_header_checksum, l4_incremental
from .interp_control import ControlCompiler, Run, TableRuntime
from .interp_expr import Env
from .interp_parser import ParserPlan
from .interp_runtime import Ctx, Hdr, HeaderLayout, ParseFail, Slots
from .interp_tables import InstalledEntry, Matcher, canonical
from .model import ControlState, Counters, PacketIn, Registers, Result, final_state

__all__ = ["Interpreter", "ParsedPacket"]


@dataclass
class ParsedPacket:
    """What the parser made of one frame (for cross-checks against an independent dissector)."""

    error: str | None
    path: list[str]
    offsets: dict[str, int]
    values: dict[str, int] = field(default_factory=dict)
    tails: dict[str, bytes] = field(default_factory=dict)
    valid: set[str] = field(default_factory=set)  # valid header elements and TLV options: "vlan[0]", "tcp.mss"

    def fields(self) -> dict[str, int]:
        """Extracted values by name: {"ipv4.ttl": 64, "vlan[1].vid": 5, "tcp.mss.value": 1460}. Fields of absent
        optional groups are left out."""
        return dict(self.values)


@dataclass
class _Checksum:
    """How to apply one update_checksum request at deparse time."""

    slots: list[int]
    layout: HeaderLayout
    field_index: int
    kind: str
    zero_means_none: bool
    word: int  # l4: the checksum's 16-bit word in the fixed part
    pseudo_slot: int | None
    pseudo_fields: list[tuple[int, int]]  # l4: (field index, width) of the IP src and dst


class Interpreter:
    def __init__(self, prog: ir.Program) -> None:
        self.prog = prog
        self.slots = Slots.of(prog)
        layouts_by_type = {name: HeaderLayout.of(ht) for name, ht in prog.header_types.items()}
        self.layouts = {name: layouts_by_type.get(inst.type.name) or HeaderLayout.of(inst.type)
                        for name, inst in prog.instances.items()}
        self.meta_names = list(prog.metadata)
        self.env = Env(prog, self.slots, self.layouts, {n: i for i, n in enumerate(self.meta_names)})
        self.tables = {name: TableRuntime(t, Matcher(t, []), t.default.action, tuple(t.default.args))
                       for name, t in prog.tables.items()}
        cc = ControlCompiler(prog, self.env, self.tables)
        cc.compile_actions()
        self.parser = ParserPlan.of(prog, self.env, lambda stmts: cc.block(stmts, self.env))
        self.control: Run = cc.block(prog.control, self.env)
        self.deparse_slots: list[tuple[int, HeaderLayout]] = []
        for name in prog.deparse:
            inst = prog.instances[name]
            for i in range(max(inst.stack, 1)):
                self.deparse_slots.append((self.slots.base[name] + i, self.layouts[name]))
        self.option_slots = {self.slots.base[n] for n, i in prog.instances.items() if i.tlv_option is not None}
        self.checksum_plans: dict[tuple[str, str | None], _Checksum] = {}
        for body in [prog.control, *(a.body for a in prog.actions.values())]:
            for s in ir.walk_stmts(body):
                if isinstance(s, ir.UpdateChecksum):
                    self.checksum_plans[(s.instance, s.pseudo)] = self._checksum_plan(s.instance, s.pseudo)
        # The constant entries and a matcher of them alone, made once: the vector generator installs a control
        # state for nearly every packet it tries (165,000 installs for the examples and the suite).
        self._consts = {name: [self._entry(t, i, tuple(e.match), e.action.action, tuple(e.action.args), e.priority)
                               for i, e in enumerate(t.entries)] for name, t in prog.tables.items()}
        self._const_matchers = {name: Matcher(t, self._consts[name]) for name, t in prog.tables.items()}
        self._installed: str | None = None  # the key of the state the tables hold (None: being written)
        self.install(ControlState())

    # -- control plane -------------------------------------------------------------------------------------

    def install(self, control: ControlState) -> None:
        """Constant entries first (in spec order), then `control`'s entries in install order; defaults overridden.
        A state with ops is installed as the image they leave (`model.final_state`: computed in one place).
        Installing the state the tables already hold does nothing: the generator installs before every run, and
        runs packets under one state in long stretches."""
        key = control.key()
        if key == self._installed:
            return
        self._installed = None
        control = final_state(self.prog, control)
        per_table = {name: list(entries) for name, entries in self._consts.items()}
        for es in control.entries:
            et = self.prog.tables.get(es.table)
            if et is None:
                raise ValueError(f"control state names unknown table '{es.table}'")
            per_table[es.table].append(self._entry(et, len(per_table[es.table]), es.match, es.action, es.args,
                                                   es.priority))
        defaults = {name: (t.default.action, tuple(t.default.args)) for name, t in self.prog.tables.items()}
        for tname, action, args in control.defaults:
            dt = self.prog.tables.get(tname)
            if dt is None:
                raise ValueError(f"control state sets the default of unknown table '{tname}'")
            defaults[tname] = (action, self._args(dt, action, tuple(args), allow_nop=True))
        for name, t in self.prog.tables.items():
            rt = self.tables[name]
            # the constant entries alone: their one matcher (a matcher is never written)
            rt.matcher = Matcher(t, per_table[name]) if len(per_table[name]) > len(t.entries) \
                else self._const_matchers[name]
            rt.default_action, rt.default_args = defaults[name]
        self._installed = key

    def _args(self, t: ir.Table, action: str, args: tuple[int, ...], allow_nop: bool = False) -> tuple[int, ...]:
        if action not in t.actions and not (allow_nop and action == "nop") and action != t.default.action:
            raise ValueError(f"table '{t.name}' has no action '{action}' (it has {', '.join(t.actions)})")
        params = self.prog.actions[action].params
        if len(args) != len(params):
            raise ValueError(f"action '{action}' takes {len(params)} argument(s), {len(args)} given")
        return tuple(a & ((1 << p.width) - 1) for a, p in zip(args, params, strict=True))

    def _entry(self, t: ir.Table, index: int, match: tuple[KeyElem, ...], action: str, args: tuple[int, ...],
               priority: int) -> InstalledEntry:
        if len(match) != len(t.keys):
            raise ValueError(f"an entry of table '{t.name}' has {len(match)} match values for {len(t.keys)} keys")
        canon = tuple(canonical(m, k.kind, k.width) for m, k in zip(match, t.keys, strict=True))
        return InstalledEntry(index, canon, action, self._args(t, action, args), priority)

    # -- data plane ----------------------------------------------------------------------------------------

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        """Fresh counters, registers from `registers` (others 0); state carries over between the packets."""
        regs: dict[tuple[str, int], int] = {}
        for (name, index), value in registers.items():
            reg = self.prog.registers.get(name)
            if reg is not None and 0 <= index < reg.size and value & ((1 << reg.width) - 1):
                regs[(name, index)] = value & ((1 << reg.width) - 1)
        counters: Counters = {}
        return [self._one(p, regs, counters) for p in packets]

    def _new_ctx(self, p: PacketIn, regs: Registers, counters: Counters) -> Ctx:
        return Ctx(p.data, p.port, len(self.slots.names), len(self.slots.stack_id), [0] * len(self.meta_names),
                   regs, counters, self.prog.default_verdict)

    def _parse(self, c: Ctx, path: list[str]) -> str | None:
        try:
            self.parser.parse(c, path)
        except ParseFail as fail:
            return fail.kind.value
        return None

    def _offsets(self, c: Ctx) -> dict[str, int]:
        names, options = self.slots.names, self.option_slots
        return {names[k]: h.offset for k, h in enumerate(c.hdrs)
                if h is not None and h.offset is not None and k not in options}

    def _one(self, p: PacketIn, regs: Registers, counters: Counters) -> Result:
        c = self._new_ctx(p, regs, counters)
        path: list[str] = []
        error = self._parse(c, path)
        obs: dict[str, Any] = {"path": path, "offsets": self._offsets(c), "parser_error": error,
                               "tables": c.tables, "hit": c.hits}
        if error is not None:
            verdict = self.prog.parser.on_error.get(error, "drop")
            data = b"" if verdict == "drop" else p.data
            return Result(verdict, None, data, dict(counters), dict(regs), obs)
        self.control(c)
        verdict = c.verdict
        if verdict == "drop":
            return Result(verdict, None, b"", dict(counters), dict(regs), obs)
        port = c.egress if verdict == "forward" else p.port if verdict == "reflect" else None
        return Result(verdict, port, self._deparse(c), dict(counters), dict(regs), obs)

    def _deparse(self, c: Ctx) -> bytes:
        """Section 11.4: checksum updates in request order, then the valid headers in deparse order, then the
        payload after the parser's final cursor."""
        for request in c.checksums:
            self._update_checksum(c, request)
        hdrs = c.hdrs
        out: list[bytes] = []
        for k, layout in self.deparse_slots:
            h = hdrs[k]
            if h is not None:
                out.append(h.raw if h.raw is not None else layout.serialize(h))
        out.append(c.data[c.cursor:])
        return b"".join(out)

    def _checksum_plan(self, instance: str, pseudo: str | None) -> _Checksum:
        inst = self.prog.instances[instance]
        cs = inst.type.checksum
        if cs is None:
            raise ValueError(f"IR bug: update_checksum({instance}) but its type declares no checksum")
        layout = self.layouts[instance]
        f = inst.type.field(cs.field)
        if f is None:
            raise ValueError(f"IR bug: checksum field {cs.field!r} is not a field of {inst.type.name!r}")
        slots = [self.slots.base[instance] + i for i in range(max(inst.stack, 1))]
        pseudo_slot, pseudo_fields = None, []
        if cs.kind == "l4" and pseudo is not None:
            pseudo_slot = self.slots.base[pseudo]
            ptype = self.prog.instances[pseudo].type
            for fname in ("src", "dst"):
                pf = ptype.field(fname)
                if pf is None:
                    raise ValueError(f"IR bug: pseudo-header instance {pseudo!r} has no field {fname!r}")
                pseudo_fields.append((self.layouts[pseudo].index[fname], pf.width))
        return _Checksum(slots, layout, layout.index[cs.field], cs.kind, cs.zero_means_none, f.offset // 16,
                         pseudo_slot, pseudo_fields)

    def _update_checksum(self, c: Ctx, request: tuple[str, str | None]) -> None:
        plan = self.checksum_plans[request]
        for k in plan.slots:
            h = c.hdrs[k]
            if h is None:
                continue
            if plan.kind == "ipv4_header":
                h.vals[plan.field_index] = 0
                h.vals[plan.field_index] = ipv4_header_checksum(plan.layout.serialize(h))
            else:
                self._update_l4(c, plan, h)
            h.raw = None

    def _update_l4(self, c: Ctx, plan: _Checksum, h: Hdr) -> None:
        """RFC 1624 over the changed words of the L4 fixed part and of the pseudo-header addresses."""
        current = h.vals[plan.field_index]
        if plan.zero_means_none and current == 0:
            return
        lay = plan.layout
        old = _words(lay.pack(lay.fixed, h.orig or h.vals, lay.fixed_bytes))
        new = _words(lay.pack(lay.fixed, h.vals, lay.fixed_bytes))
        del old[plan.word], new[plan.word]
        if plan.pseudo_slot is not None:
            ip = c.hdrs[plan.pseudo_slot]
            if ip is not None:
                for index, width in plan.pseudo_fields:
                    before = ip.orig[index] if ip.orig is not None else ip.vals[index]
                    old += _words(before.to_bytes(width // 8, "big"))
                    new += _words(ip.vals[index].to_bytes(width // 8, "big"))
        result = l4_incremental(current, old, new)
        if plan.zero_means_none and result == 0:
            result = 0xFFFF
        h.vals[plan.field_index] = result

    # -- cross-checks ----------------------------------------------------------------------------------------

    def parse(self, data: bytes, port: int = 0) -> ParsedPacket:
        """Only the parse phase, with the extracted values (what scapy's dissection is compared with)."""
        c = self._new_ctx(PacketIn(port, data), {}, {})
        path: list[str] = []
        error = self._parse(c, path)
        out = ParsedPacket(error, path, self._offsets(c))
        for k, h in enumerate(c.hdrs):
            if h is None:
                continue
            name = self.slots.names[k]
            out.valid.add(name)
            ht = self.prog.instances[self.slots.instance_of[k]].type
            layout = self.layouts[self.slots.instance_of[k]]
            for f in ht.fields:
                out.values[f"{name}.{f.name}"] = h.vals[layout.index[f.name]]
            for g, present in zip(ht.groups, h.present, strict=True):
                if present:
                    for f in g.fields:
                        out.values[f"{name}.{f.name}"] = h.vals[layout.index[f.name]]
            if ht.varlen is not None:
                out.tails[f"{name}.{ht.varlen.name}"] = h.tail
        return out


def _words(b: bytes) -> list[int]:
    if len(b) % 2:
        b += b"\0"
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]
