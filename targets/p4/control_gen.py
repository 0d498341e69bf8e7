"""The ingress control: the spec's control flow, tables, verdicts and the RFC 1624 L4 checksum update.

Why action bodies are not P4 action bodies: BMv2 cannot run conditionals or extern calls (register access,
counters) inside actions, and a P4 table may be applied only once. So each P4 action only records which action
ran (`meta.c3po_action`) and its arguments (`meta.c3po_arg__<action>__<param>`); the spec body then runs in the
control right after the apply, where everything is allowed. A table applied from N places becomes N P4 tables
(`t`, `t__2`, ...) that the control plane fills identically (entries.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.expr import Expr, FieldRef, MetaRef, RegRead
from c3po_compiler.text import loc_text

from .exprs import ExprWriter, Temps, header_ref, lit
from .layout import InstanceLayout

VERDICT_CODES = {"drop": 0, "to_host": 1, "reflect": 2, "forward": 3}
ERROR_MATCH = {
    "truncated": ["error.PacketTooShort"],
    "stack_overflow": ["error.StackOutOfBounds"],
    "bad_length": ["error.C3poBadLength", "error.HeaderTooShort"],
    "reject": ["error.C3poReject", "error.NoMatch"],
}
BUILTIN_P4 = {"drop": "c3po_drop", "to_host": "c3po_to_host", "reflect": "c3po_reflect", "nop": "c3po_nop",
              "forward": "c3po_forward"}


def p4_action_name(name: str) -> str:
    return BUILTIN_P4.get(name, name)


def table_copies(prog: ir.Program) -> dict[str, list[str]]:
    """P4 table names per spec table: one per apply site, in control order (unapplied tables get one)."""
    out: dict[str, list[str]] = {t: [] for t in sorted(prog.tables)}
    for s in ir.walk_stmts(prog.control):
        if isinstance(s, ir.Apply):
            n = len(out[s.table])
            out[s.table].append(s.table if n == 0 else f"{s.table}__{n + 1}")
    for t, names in out.items():
        if not names:
            names.append(t)
    return out


def verdict_lines(cpu_port: int) -> list[str]:
    return [
        "if (meta.c3po_verdict == 2w0) {",
        "    mark_to_drop(standard_metadata);",
        "} else if (meta.c3po_verdict == 2w1) {",
        f"    standard_metadata.egress_spec = 9w{cpu_port};  /* to_host: the CPU port */",
        "} else if (meta.c3po_verdict == 2w2) {",
        "    standard_metadata.egress_spec = standard_metadata.ingress_port;  /* reflect */",
        f"}} else if (meta.c3po_port < 16w{cpu_port}) {{",
        "    standard_metadata.egress_spec = (bit<9>) meta.c3po_port;",
        "} else {",
        "    mark_to_drop(standard_metadata);  /* ports from the CPU port up do not exist on v1model */",
        "}",
    ]


@dataclass
class TableView:
    name: str  # P4 name (also the P4Runtime name)
    spec: str
    comment: str
    keys: list[tuple[str, str, str]]  # (P4 expression, match kind, P4Runtime name)
    actions: list[str]
    default: str
    size: int
    counters: bool
    entry_comments: list[str] = field(default_factory=list)


class ControlGen:
    def __init__(self, prog: ir.Program, cpu_port: int) -> None:
        self.prog = prog
        self.cpu_port = cpu_port
        self.temps = Temps()
        self.meta: list[tuple[int, str]] = []
        self.locals: list[str] = []
        self.copies = table_copies(prog)
        self.next_copy: dict[str, int] = dict.fromkeys(prog.tables, 0)
        used = sorted({a for t in prog.tables.values() for a in [*t.actions, t.default.action, "nop"]})
        self.action_ids = {a: i + 1 for i, a in enumerate(used)}
        self.sites = 0
        self.l4: list[tuple[str, str | None]] = []
        self.full: list[str] = []
        for s in ir.walk_stmts(prog.control) + [x for a in prog.user_actions.values() for x in ir.walk_stmts(a.body)]:
            if isinstance(s, ir.UpdateChecksum):
                cs = prog.instances[s.instance].type.checksum
                if cs is not None and cs.kind == "l4":
                    if (s.instance, self.pseudo(s)) not in self.l4:
                        self.l4.append((s.instance, self.pseudo(s)))
                elif s.instance not in self.full:
                    self.full.append(s.instance)
        self.l4.sort(key=lambda p: (p[0], p[1] or ""))
        self.full.sort()

    # -- helpers -------------------------------------------------------------------------------------------------

    def writer(self, params: dict[str, str]) -> ExprWriter:
        return ExprWriter(self.prog, in_parser=False, params=params, temps=self.temps)

    def value(self, e: Expr, params: dict[str, str], out: list[str]) -> str:
        w = self.writer(params)
        text = w(e)
        out += w.pre
        return text

    @staticmethod
    def indent(lines: list[str], n: int = 1) -> list[str]:
        return [("    " * n + ln) if ln else ln for ln in lines]

    def arg_field(self, action: str, param: str) -> str:
        return f"meta.c3po_arg__{action}__{param}"

    def action_params(self, action: ir.Action) -> dict[str, str]:
        return {p.name: self.arg_field(action.name, p.name) for p in action.params}

    # -- statements ------------------------------------------------------------------------------------------------

    def block(self, stmts: list[ir.Stmt], params: dict[str, str]) -> list[str]:
        out: list[str] = []
        for s in stmts:
            out += self.stmt(s, params)
        return out

    def stmt(self, s: ir.Stmt, params: dict[str, str]) -> list[str]:
        out: list[str] = []
        if isinstance(s, ir.Assign):
            self.assign(s, params, out)
        elif isinstance(s, ir.SetVerdict):
            out.append(f"meta.c3po_verdict = 2w{VERDICT_CODES[s.verdict.value]};  /* {s.verdict.value} */")
            if s.port is not None:
                out.append(f"meta.c3po_port = {self.value(s.port, params, out)};")
        elif isinstance(s, ir.SetValid):
            inst = self.prog.instances[s.instance]
            ref = header_ref(inst, s.index)
            if s.valid:
                zero = [f"    {ref}.{f.name} = {lit(0, f.width)};" for f in inst.type.fields]
                out += [f"if (!{ref}.isValid()) {{", f"    {ref}.setValid();", *zero, "}"]
            else:
                out.append(f"{ref}.setInvalid();")
                if not inst.is_stack:
                    out += [f"{h}.setInvalid();" for h in InstanceLayout(inst).all_headers(self.prog)[1:]]
                elif inst.type.varlen is not None:  # the element's tail goes with it
                    out.append(f"{InstanceLayout(inst).varlen}[{s.index}].setInvalid();")
        elif isinstance(s, ir.UpdateChecksum):
            out.append(f"meta.{self.csum_flag(s.instance, self.pseudo(s))} = 1w1;  /* applied at deparse time */")
        elif isinstance(s, ir.Count):
            c = self.prog.counters[s.counter]
            idx = self.value(s.index, params, out)
            call = f"{c.name}.count((bit<32>) {idx});"
            out.append(f"if ({idx} < {lit(c.size, s.index.width)}) {{ {call} }}"
                       if c.size < (1 << s.index.width) else call)
        elif isinstance(s, ir.CallAction):
            action = self.prog.actions[s.action]
            for p, a in zip(action.params, s.args, strict=True):
                out.append(f"{self.arg_field(action.name, p.name)} = {self.value(a, params, out)};")
            out.append(f"/* action {action.name} ({loc_text(action.loc)}) */")
            out += self.block(action.body, self.action_params(action))
        elif isinstance(s, ir.If):
            cond = self.value(s.cond, params, out)
            out.append(f"if ({cond}) {{")
            out += self.indent(self.block(s.then, params))
            if s.otherwise:
                out.append("} else {")
                out += self.indent(self.block(s.otherwise, params))
            out.append("}")
        elif isinstance(s, ir.Apply):
            out += self.apply(s, params)
        return out

    def assign(self, s: ir.Assign, params: dict[str, str], out: list[str]) -> None:
        value = self.value(s.value, params, out)
        t = s.target
        if isinstance(t, FieldRef):
            base = header_ref(self.prog.instances[t.instance], t.index, t.group)
            # A write to an invalid header (or absent group) has no effect (spec section 7).
            out.append(f"if ({base}.isValid()) {{ {base}.{t.field_name} = {value}; }}")
        elif isinstance(t, MetaRef):
            out.append(f"meta.{t.name} = {value};")
        elif isinstance(t, RegRead):
            reg = self.prog.registers[t.register]
            idx = self.value(t.index, params, out)
            call = f"{reg.name}.write((bit<32>) {idx}, {value});"
            out.append(f"if ({idx} < {lit(reg.size, t.index.width)}) {{ {call} }}"
                       if reg.size < (1 << t.index.width) else call)

    def pseudo(self, s: ir.UpdateChecksum) -> str | None:
        """The IP instance whose addresses the update covers: none for checksums without a pseudo-header (ICMP)."""
        cs = self.prog.instances[s.instance].type.checksum
        return s.pseudo if cs is not None and cs.kind == "l4" and cs.pseudo_header else None

    def csum_flag(self, instance: str, pseudo: str | None) -> str:
        ident = self.prog.instances[instance].ident
        return f"c3po_csum__{ident}" + (f"__{self.prog.instances[pseudo].ident}" if pseudo else "")

    # -- tables ----------------------------------------------------------------------------------------------------

    def apply(self, s: ir.Apply, params: dict[str, str]) -> list[str]:
        table = self.prog.tables[s.table]
        n = self.next_copy[s.table]
        self.next_copy[s.table] += 1
        p4name = self.copies[s.table][n]
        site = self.sites
        self.sites += 1
        hit, ran = f"c3po_hit{site}", f"c3po_ran{site}"
        self.locals += [f"bool {hit};", f"bit<16> {ran};"]
        out = [f"/* apply {s.table} ({loc_text(s.loc)}) */"]
        for i, k in enumerate(table.keys):
            out.append(f"meta.c3po_key__{s.table}__{i} = {self.value(k.expr, params, out)};  /* {k.text} */")
        miss = [f"    {p4name}__miss.count(32w0);  /* the default action's counter (index -1) */"] \
            if table.counters else []
        out += [f"if ({p4name}.apply().hit) {{", f"    {hit} = true;", "} else {", f"    {hit} = false;", *miss, "}",
                f"{ran} = meta.c3po_action;"]
        first = True
        for aname in sorted({*table.actions, table.default.action}):
            action = self.prog.actions[aname]
            body = self.block(action.body, self.action_params(action)) if not action.builtin \
                else self.builtin_body(aname)
            if not body:
                continue
            out.append(f"{'if' if first else '} else if'} ({ran} == 16w{self.action_ids[aname]}) {{  /* {aname} */")
            out += self.indent(body)
            first = False
        if not first:
            out.append("}")
        if s.hit or s.miss:
            out.append(f"if ({hit}) {{")
            out += self.indent(self.block(s.hit, params))
            out.append("} else {")
            out += self.indent(self.block(s.miss, params))
            out.append("}")
        for aname in sorted(s.by_action):
            out.append(f"if ({ran} == 16w{self.action_ids[aname]}) {{  /* action branch {aname} */")
            out += self.indent(self.block(s.by_action[aname], params))
            out.append("}")
        return out

    def builtin_body(self, name: str) -> list[str]:
        if name == "nop":
            return []
        lines = [f"meta.c3po_verdict = 2w{VERDICT_CODES[name]};  /* {name} */"]
        if name == "forward":
            lines.append(f"meta.c3po_port = {self.arg_field('forward', 'port')};")
        return lines

    def tables(self) -> list[TableView]:
        views: list[TableView] = []
        for tname in sorted(self.prog.tables):
            t = self.prog.tables[tname]
            actions = [p4_action_name(a) for a in t.actions]
            # The control plane may make the table's declared default, or `nop`, the default (as the reference
            # allows), so both are in the list even when no entry may use them.
            for extra in dict.fromkeys([t.default.action, "nop"]):
                if extra not in t.actions:
                    actions.append("@defaultonly " + p4_action_name(extra))
            args = ", ".join(lit(v, p.width) for v, p in zip(t.default.args, self.prog.actions[t.default.action].params,
                                                             strict=True))
            entries = [f"{e.action.action}({', '.join(map(str, e.action.args))}) priority {e.priority} "
                       f"({loc_text(e.loc)})" for e in t.entries]
            for p4name in self.copies[tname]:
                keys = [(f"meta.c3po_key__{tname}__{i}", k.kind, k.text) for i, k in enumerate(t.keys)]
                views.append(TableView(p4name, tname, f"table {tname} ({loc_text(t.loc)})", keys, actions,
                                       f"{p4_action_name(t.default.action)}({args})", t.size, t.counters, entries))
        return views

    def p4_actions(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for name, aid in self.action_ids.items():
            action = self.prog.actions[name]
            params = [f"bit<{p.width}> {p.name}" for p in action.params]
            body = [f"meta.c3po_action = 16w{aid};"]
            body += [f"{self.arg_field(name, p.name)} = {p.name};" for p in action.params]
            where = "built-in" if action.builtin else loc_text(action.loc)
            out.append({"name": p4_action_name(name), "p4rt": name, "params": ", ".join(params), "body": body,
                        "comment": f"action {name} ({where}); its body runs in the control after the apply"})
        return out

    # -- checksums -------------------------------------------------------------------------------------------------

    def l4_snapshot(self) -> list[str]:
        out: list[str] = []
        for inst_name, pseudo in self.l4:
            lay = InstanceLayout(self.prog.instances[inst_name])
            out.append(f"meta.c3po_orig__{lay.ident} = {self.l4_words(inst_name)};")
            out.append(f"meta.c3po_had__{lay.ident} = hdr.{lay.ident}.isValid() ? 1w1 : 1w0;")
            if pseudo:
                ident = self.prog.instances[pseudo].ident
                out.append(f"meta.c3po_orig__{ident} = {self.addr_words(pseudo)};")
                out.append(f"meta.c3po_had__{ident} = hdr.{ident}.isValid() ? 1w1 : 1w0;")
        return list(dict.fromkeys(out))

    def l4_words(self, inst_name: str) -> str:
        inst = self.prog.instances[inst_name]
        ref = f"hdr.{inst.ident}"
        parts = [f"{ref}.{f.name}" for f in inst.type.fields]
        if inst.type.fixed_bytes % 2:
            parts.append("8w0")
        return f"({ref}.isValid() ? ({' ++ '.join(parts)}) : {lit(0, self.l4_bits(inst_name))})"

    def l4_bits(self, inst_name: str) -> int:
        ht = self.prog.instances[inst_name].type
        return ht.fixed_bits + (8 if ht.fixed_bytes % 2 else 0)

    def addr_words(self, ip: str) -> str:
        inst = self.prog.instances[ip]
        src, dst = inst.type.field("src"), inst.type.field("dst")
        assert src is not None and dst is not None
        ref = f"hdr.{inst.ident}"
        return f"({ref}.isValid() ? ({ref}.src ++ {ref}.dst) : {lit(0, src.width + dst.width)})"

    def l4_update(self) -> list[str]:
        """RFC 1624 eqn. 3 over the changed 16-bit words, exactly as spec section 2 defines `kind: l4`."""
        out: list[str] = []
        for inst_name, pseudo in self.l4:
            inst = self.prog.instances[inst_name]
            cs = inst.type.checksum
            assert cs is not None
            ref = f"hdr.{inst.ident}"
            cs_field = inst.type.field(cs.field)
            assert cs_field is not None
            body = ["c3po_sum = (bit<32>) (~" + f"{ref}.{cs.field});"]
            words = [(f"meta.c3po_orig__{inst.ident}", self.l4_words(inst_name), self.l4_bits(inst_name),
                      cs_field.offset // 16)]
            if pseudo:
                pi = self.prog.instances[pseudo]
                bits = 2 * (pi.type.field("src").width)  # type: ignore[union-attr]
                words.append((f"meta.c3po_orig__{pi.ident}", self.addr_words(pseudo), bits, -1))
            # A header that was not parsed (set_valid) has no "before": its words count as unchanged.
            guards = [f"meta.c3po_had__{inst.ident} == 1w1"]
            if pseudo:
                pident = self.prog.instances[pseudo].ident
                guards.append(f"meta.c3po_had__{pident} == 1w1 && hdr.{pident}.isValid()")
            for k, (orig, cur, bits, skip) in enumerate(words):
                body.append(f"if ({guards[k]}) {{")
                body.append(f"    c3po_cur{k}_{bits} = {cur};")
                for w in range(bits // 16):
                    if w == skip:
                        continue
                    hi, lo = bits - 1 - 16 * w, bits - 16 - 16 * w
                    o, n = f"{orig}[{hi}:{lo}]", f"c3po_cur{k}_{bits}[{hi}:{lo}]"
                    body.append(f"    if ({o} != {n}) {{ c3po_sum = c3po_sum + (bit<32>) (~{o}) + (bit<32>) {n}; }}")
                body.append("}")
            body += ["c3po_sum = (c3po_sum & 32w0xffff) + (c3po_sum >> 16);",
                     "c3po_sum = (c3po_sum & 32w0xffff) + (c3po_sum >> 16);"]
            if cs.zero_means_none:
                body.append(f"{ref}.{cs.field} = ((bit<16>) c3po_sum == 16w0xffff) ? 16w0xffff "
                            ": ~((bit<16>) c3po_sum);  /* a result of 0 is sent as 0xffff */")
                cond = f"meta.{self.csum_flag(inst_name, pseudo)} == 1w1 && {ref}.isValid() && {ref}.{cs.field} != 16w0"
            else:
                body.append(f"{ref}.{cs.field} = ~((bit<16>) c3po_sum);")
                cond = f"meta.{self.csum_flag(inst_name, pseudo)} == 1w1 && {ref}.isValid()"
            out.append(f"/* update_checksum({inst_name}{', ' + pseudo if pseudo else ''}): RFC 1624 incremental */")
            out += [f"if ({cond}) {{", *self.indent(body), "}"]
        return out

    def l4_locals(self) -> list[str]:
        decls = ["bit<32> c3po_sum;"] if self.l4 else []
        for inst_name, pseudo in self.l4:
            decls.append(f"bit<{self.l4_bits(inst_name)}> c3po_cur0_{self.l4_bits(inst_name)};")
            if pseudo:
                bits = 2 * self.prog.instances[pseudo].type.field("src").width  # type: ignore[union-attr]
                decls.append(f"bit<{bits}> c3po_cur1_{bits};")
        return sorted(set(decls))

    # -- the ingress body --------------------------------------------------------------------------------------------

    def ingress(self) -> list[str]:
        oe = self.prog.parser.on_error
        code = VERDICT_CODES
        out = [f"meta.c3po_verdict = 2w{code[self.prog.default_verdict]};  /* default_verdict "
               f"{self.prog.default_verdict} */",
               "/* Parser errors (spec section 11.2): the control does not run, the frame leaves unchanged. */",
               "if (standard_metadata.checksum_error == 1w1) {",
               f"    meta.c3po_verdict = 2w{code[oe['checksum']]};  /* checksum: {oe['checksum']} */"]
        for kind, errors in ERROR_MATCH.items():
            test = " || ".join(f"standard_metadata.parser_error == {e}" for e in errors)
            out.append(f"}} else if ({test}) {{")
            out.append(f"    meta.c3po_verdict = 2w{code[oe[kind]]};  /* {kind}: {oe[kind]} */")
        out += ["} else if (standard_metadata.parser_error != error.NoError) {",
                "    mark_to_drop(standard_metadata);  /* an error the spec cannot raise */",
                "    meta.c3po_verdict = 2w0;",
                "} else {"]
        body = self.l4_snapshot() + self.block(self.prog.control, {}) + self.l4_update()
        out += self.indent(body)
        out.append("}")
        out += verdict_lines(self.cpu_port)
        return out

    def metadata_fields(self) -> list[tuple[int, str]]:
        fields = [(2, "c3po_verdict"), (16, "c3po_port"), (16, "c3po_action")]
        for st in self.prog.parser.states.values():
            for v in st.verify:
                fields.append((1, f"c3po_verify__{self.prog.instances[v].ident}"))
        for inst in self.full:
            fields.append((1, self.csum_flag(inst, None)))
        for inst_name, pseudo in self.l4:
            fields.append((1, self.csum_flag(inst_name, pseudo)))
            fields.append((self.l4_bits(inst_name), f"c3po_orig__{self.prog.instances[inst_name].ident}"))
            fields.append((1, f"c3po_had__{self.prog.instances[inst_name].ident}"))
            if pseudo:
                bits = 2 * self.prog.instances[pseudo].type.field("src").width  # type: ignore[union-attr]
                fields.append((bits, f"c3po_orig__{self.prog.instances[pseudo].ident}"))
                fields.append((1, f"c3po_had__{self.prog.instances[pseudo].ident}"))
        for aname in self.action_ids:
            for p in self.prog.actions[aname].params:
                fields.append((p.width, f"c3po_arg__{aname}__{p.name}"))
        for a in self.prog.user_actions.values():
            for p in a.params:
                fields.append((p.width, f"c3po_arg__{a.name}__{p.name}"))
        for tname in sorted(self.prog.tables):
            for i, k in enumerate(self.prog.tables[tname].keys):
                fields.append((k.width, f"c3po_key__{tname}__{i}"))
        seen: dict[str, int] = {}
        for w, n in fields:
            seen.setdefault(n, w)
        return [(w, n) for n, w in seen.items()]
