"""The P4 parser: one P4 state per spec state, plus helper states for optional groups, tails and TLV walks.

Spec semantics that P4 would otherwise leave to the target are made explicit here: a transition to `reject`
goes through `c3po_reject`, which raises the program's own `error.C3poReject` (BMv2 leaves `parser_error` at
NoError for a bare `transition reject`); a varlen length above its maximum and every malformed TLV raise
`error.C3poBadLength` through `verify`; the ingress control maps these errors to the spec's error kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.expr import FieldRef, KeyElem
from c3po_compiler.text import loc_text

from .exprs import ExprWriter, header_ref, lit
from .layout import InstanceLayout

BAD_LENGTH = "error.C3poBadLength"
REJECT_STATE = "c3po_reject"


@dataclass
class P4State:
    name: str
    comment: str
    stmts: list[str] = field(default_factory=list)
    transition: list[str] = field(default_factory=list)  # lines; the first starts with "transition"


def _target(name: str) -> str:
    return REJECT_STATE if name == "reject" else name


def keyset_text(elems: list[KeyElem], widths: list[int]) -> str:
    parts = []
    for e, w in zip(elems, widths, strict=True):
        if e.kind == "any":
            parts.append("_")
        elif e.kind == "mask":
            parts.append(f"{lit(e.a, w)} &&& {lit(e.b, w)}")
        elif e.kind == "range":
            parts.append(f"{lit(e.a, w)} .. {lit(e.b, w)}")
        else:
            parts.append(lit(e.a, w))
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def select_lines(exprs: list[str], widths: list[int], cases: list[tuple[list[KeyElem], str]], default: str,
                 comments: list[str] | None = None) -> list[str]:
    head = exprs[0] if len(exprs) == 1 else ", ".join(exprs)
    lines = [f"transition select({head}) {{"]
    for i, (keyset, nxt) in enumerate(cases):
        note = f"  /* {comments[i]} */" if comments else ""
        lines.append(f"    {keyset_text(keyset, widths)}: {_target(nxt)};{note}")
    lines.append(f"    default: {_target(default)};")
    lines.append("}")
    return lines


POS = "c3po_pos"


class _DoWriter(ExprWriter):
    """Reads in a state's `do`: guarded like the control's, except `h.last.f`. The front end allows `.last`
    there only for a stack extracted on every path into the state (so it is valid), and p4c 1.2.4 writes
    `hdr.h.last.isValid()` in a parser as a BMv2 field BMv2 cannot load."""

    def field(self, e: FieldRef) -> str:
        if e.index == "last":
            inst = self.prog.instances[e.instance]
            return f"{header_ref(inst, 'last', e.group)}.{e.field_name}"
        return super().field(e)


class _SelectWriter(ExprWriter):
    """Reads in a select. A field of an optional group reads a shadow local, 0 until the group's extract state
    copies the field into it: the spec says a field of an absent group reads 0, where BMv2 would read whatever
    the header held (a stale value) and p4c warns that it may be uninitialised."""

    def __init__(self, prog: ir.Program, shadows: dict[tuple[str, str, str], str]) -> None:
        super().__init__(prog, in_parser=True)
        self.shadows = shadows

    def field(self, e: FieldRef) -> str:
        if e.instance and e.group is not None:
            return self.shadows[(e.instance, e.group, e.field_name)]
        return super().field(e)


class ParserGen:
    def __init__(self, prog: ir.Program) -> None:
        self.prog = prog
        self.states: list[P4State] = []
        self.locals: list[str] = []
        self.shadows: dict[tuple[str, str, str], str] = {}
        for st in prog.parser.states.values():
            for e in st.select:
                for x in ir.walk_expr(e):
                    if isinstance(x, FieldRef) and x.instance and x.group is not None:
                        key = (x.instance, x.group, x.field_name)
                        if key not in self.shadows:
                            name = f"c3po_{prog.instances[x.instance].ident}__{x.group}__{x.field_name}"
                            self.shadows[key] = name
                            self.locals.append(f"bit<{x.width}> {name} = {lit(0, x.width)};  /* 0 while the "
                                               f"group {x.group} is absent */")
        self.verified: list[str] = sorted({v for st in prog.parser.states.values() for v in st.verify})
        # The byte offset of the cursor, kept only where a TLV area is walked: the spec checks that the whole
        # area is in the frame (`truncated`) before it looks at any option (`bad_length`), and a P4 parser can
        # learn that only by comparing the offset with the frame length.
        self.track = any(InstanceLayout(prog.instances[st.extract]).tlv is not None
                         for st in prog.parser.states.values() if st.extract)
        if self.track:
            self.locals.append(f"bit<32> {POS};")

    def advance(self, state: P4State, nbytes: str) -> None:
        if self.track:
            state.stmts.append(f"{POS} = {POS} + {nbytes};")

    def run(self) -> list[P4State]:
        start = self.prog.parser.start
        if start != "start":
            self.states.append(P4State("start", "entry point", [], [f"transition {start};"]))
        for st in self.prog.parser.states.values():
            self.state(st)
        if self.track:
            self.states[0].stmts.insert(0, f"{POS} = 32w0;  /* the cursor's byte offset, for TLV areas */")
        self.states.append(P4State(REJECT_STATE, "a spec transition to reject: a parser error of kind 'reject'",
                                   ["verify(false, error.C3poReject);"], ["transition accept;"]))
        return self.states

    def state(self, st: ir.ParserState) -> None:
        where = f"parser state {st.name} ({loc_text(st.loc)})"
        first = P4State(st.name, where)
        self.states.append(first)
        current = first
        if st.extract:
            inst = self.prog.instances[st.extract]
            lay = InstanceLayout(inst)
            ref = f"hdr.{inst.ident}.next" if inst.is_stack else f"hdr.{inst.ident}"
            first.stmts.append(f"pkt.extract({ref});")
            self.advance(first, f"32w{inst.type.fixed_bytes}")
            current = self.extract_rest(st, lay, current)
        for v in st.verify:
            current.stmts.append(f"meta.c3po_verify__{self.prog.instances[v].ident} = 1w1;"
                                 "  /* checked by verify_checksum */")
        if st.do:
            current.stmts += self.do_lines(st.do)
        writer = _SelectWriter(self.prog, self.shadows)
        if st.select:
            exprs = [writer(e) for e in st.select]
            current.transition = select_lines(exprs, [e.width for e in st.select],
                                              [(c.keyset, c.next) for c in st.cases], st.default)
        else:
            current.transition = [f"transition {_target(st.default)};"]

    def do_lines(self, stmts: list[ir.Stmt]) -> list[str]:
        """A state's statements after its extract (and its groups and tail): metadata assignments and if, which
        P4 parsers allow as they are. Reads are guarded like the control's (a field of an invalid header reads
        0, section 10), since a state may read a header that not every path into it extracted."""
        writer = _DoWriter(self.prog, in_parser=False)
        out: list[str] = []
        for s in stmts:
            if isinstance(s, ir.Assign) and isinstance(s.target, ir.MetaRef):
                out.append(f"meta.{s.target.name} = {writer(s.value)};  /* {loc_text(s.loc)} */")
            elif isinstance(s, ir.If):
                out.append(f"if ({writer(s.cond)}) {{  /* {loc_text(s.loc)} */")
                out += ["    " + line for line in self.do_lines(s.then)]
                if s.otherwise:
                    out.append("} else {")
                    out += ["    " + line for line in self.do_lines(s.otherwise)]
                out.append("}")
            else:
                raise ValueError(f"IR bug: statement {type(s).__name__} in a parser state")
        assert not writer.pre, "the front end refuses registers and hashes in parser states"
        return out

    def _local(self, lay: InstanceLayout) -> ExprWriter:
        base = f"hdr.{lay.ident}.last" if lay.inst.is_stack else f"hdr.{lay.ident}"
        return ExprWriter(self.prog, in_parser=True, local=lambda f: f"{base}.{f.field_name}")

    def extract_rest(self, st: ir.ParserState, lay: InstanceLayout, current: P4State) -> P4State:
        """Groups and tail after the fixed part; returns the state that ends with the spec state's transition."""
        ht = lay.ht
        if not ht.groups and ht.varlen is None:
            return current
        writer = self._local(lay)
        after = f"{st.name}__done"
        steps = [f"{st.name}__g{i}" for i in range(len(ht.groups))]
        tail = f"{st.name}__tail" if ht.varlen else after
        for i, g in enumerate(ht.groups):
            nxt = steps[i + 1] if i + 1 < len(steps) else tail
            current.transition = [f"transition select({writer(g.when)}) {{", f"    true: {steps[i]};",
                                  f"    default: {nxt if i + 1 == len(steps) else steps[i] + '_skip'};", "}"]
            ext = P4State(steps[i], f"optional group {ht.name}.{g.name} ({loc_text(g.loc)})",
                          [f"pkt.extract({lay.group(g)});"])
            ext.stmts += [f"{name} = {lay.group(g)}.{fname};" for (i_, g_, fname), name in sorted(self.shadows.items())
                          if i_ == lay.inst.name and g_ == g.name]
            self.advance(ext, f"32w{g.bytes}")
            self.states.append(ext)
            if i + 1 < len(steps):
                skip = P4State(steps[i] + "_skip", f"after optional group {g.name}")
                self.states.append(skip)
                ext.transition = [f"transition {steps[i]}_skip;"]
                current = skip
            else:
                ext.transition = [f"transition {tail};"]
                current = ext
        if not ht.groups:
            current.transition = [f"transition {tail};"]
        done = P4State(after, f"{ht.name} extracted")
        if ht.varlen:
            vl = ht.varlen
            tail_state = P4State(tail, f"variable-length tail {ht.name}.{vl.name} ({loc_text(vl.loc)})")
            self.states.append(tail_state)
            length = f"c3po_{lay.ident}_len"
            self.locals.append(f"bit<{vl.length.width}> {length};")
            tail_state.stmts.append(f"{length} = {writer(vl.length)};")
            if vl.max_bytes < (1 << vl.length.width):
                tail_state.stmts.append(f"verify({length} <= {lit(vl.max_bytes, vl.length.width)}, {BAD_LENGTH});")
            if lay.tlv is None:
                into = f"{lay.varlen}.next" if lay.inst.is_stack else lay.varlen
                tail_state.stmts.append(f"pkt.extract({into}, ((bit<32>) {length}) << 3);")
                self.advance(tail_state, f"((bit<32>) {length})")
                tail_state.transition = [f"transition {after};"]
            else:
                tail_state.stmts.append(f"verify({POS} + ((bit<32>) {length}) <= standard_metadata.packet_length, "
                                        "error.PacketTooShort);  /* the whole area is in the frame */")
                self.advance(tail_state, f"((bit<32>) {length})")  # the walk below consumes exactly the area
                self.tlv_walk(st.name, lay, vl, tail_state, after)
        self.states.append(done)
        return done

    def tlv_walk(self, sname: str, lay: InstanceLayout, vl: ir.VarLen, entry: P4State, after: str) -> None:
        """Spec section 2 "TLV areas" as a loop of states over a bounded union stack (see layout.py)."""
        tlv = vl.tlv
        assert tlv is not None
        p = f"c3po_{lay.ident}"
        left, count, th, size = f"{p}_left", f"{p}_count", f"{p}_th", f"{p}_size"
        hb = tlv.header_bytes
        self.locals += [f"bit<16> {left};", f"bit<16> {count};", f"bit<{hb * 8}> {th};",
                        f"bit<{tlv.size.width}> {size};"]
        entry.stmts += [f"{left} = (bit<16>) c3po_{lay.ident}_len;", f"{count} = 16w0;"]
        loop, opt, hdr_s, skip = (f"{sname}__tlv", f"{sname}__tlv_opt", f"{sname}__tlv_hdr", f"{sname}__tlv_skip")
        entry.transition = [f"transition {loop};"]
        self.states.append(P4State(loop, f"walk the TLV options of {lay.inst.name}.{vl.name}", [],
                                   [f"transition select({left}) {{", f"    16w0: {after};",
                                    f"    default: {opt};", "}"]))
        o = P4State(opt, "one more option", [f"verify({count} < {lit(tlv.max_options, 16)}, {BAD_LENGTH});",
                                             f"{count} = {count} + 16w1;"])
        self.states.append(o)
        if tlv.singletons:
            sb, tw = tlv.singleton_bytes, tlv.header[0].width
            o.stmts.append(f"verify({left} >= {lit(sb, 16)}, {BAD_LENGTH});")
            ends = sorted(tlv.singletons[n] for n in tlv.end)
            singles = sorted(v for n, v in tlv.singletons.items() if n not in tlv.end)
            cases = [([KeyElem("value", v)], f"{sname}__tlv_end") for v in ends]
            cases += [([KeyElem("value", v)], f"{sname}__tlv_single") for v in singles]
            o.transition = select_lines([f"pkt.lookahead<bit<{tw}>>()"], [tw], cases, hdr_s)
            ext = f"pkt.extract({lay.tlv_stack}.next.single);"
            self.states.append(P4State(f"{sname}__tlv_single", "a single-field option", [
                ext, f"{left} = {left} - {lit(sb, 16)};"], [f"transition {loop};"]))
            if ends:
                self.states.append(P4State(f"{sname}__tlv_end", "end of options: the rest of the area is padding", [
                    ext, f"{left} = {left} - {lit(sb, 16)};",
                    f"pkt.extract({lay.tlv_pad}, ((bit<32>) {left}) << 3);", f"{left} = 16w0;"],
                    [f"transition {after};"]))
        else:
            o.transition = [f"transition {hdr_s};"]

        def slice_of(name: str) -> str:
            off = 0
            for f in tlv.header:
                if f.name == name:
                    return f"{th}[{hb * 8 - 1 - off}:{hb * 8 - off - f.width}]"
                off += f.width
            raise KeyError(name)

        local_writer = ExprWriter(self.prog, in_parser=True, local=lambda f: slice_of(f.field_name))
        h = P4State(hdr_s, "an option with a header: check its size, then look for named options", [
            f"verify({left} >= {lit(hb, 16)}, {BAD_LENGTH});",
            f"{th} = pkt.lookahead<bit<{hb * 8}>>();",
            f"{size} = {local_writer(tlv.size)};",
            f"verify({size} >= {lit(hb, tlv.size.width)}, {BAD_LENGTH});",
            f"verify(((bit<32>) {size}) <= ((bit<32>) {left}), {BAD_LENGTH});"])
        self.states.append(h)
        widths = {f.name: f.width for f in tlv.header}
        # Only the options the program reads: one it never reads is skipped like an unknown one, its size
        # unchecked (the reference interpreter, docs/spec-reference.md section 11; tlv_parser's TCP timestamps
        # option of 6 bytes was refused here as bad_length while every other target forwarded it).
        read = [o for o in tlv.options if f"{lay.inst.name}.{o.name}" in self.prog.instances]
        cases = []
        for option in read:
            keyset = [KeyElem("value", option.match[k]) if k in option.match else KeyElem("any") for k in tlv.key]
            cases.append((keyset, f"{sname}__tlv_o_{option.name}"))
        h.transition = select_lines([slice_of(k) for k in tlv.key], [widths[k] for k in tlv.key], cases, skip,
                                    [o.name for o in read])
        for option in read:
            shadow = f"hdr.{lay.ident}__{option.name}"
            need = hb + option.data_bytes
            self.states.append(P4State(f"{sname}__tlv_o_{option.name}",
                                       f"option {option.name} ({loc_text(option.loc)}): first one wins",
                                       [f"verify(((bit<32>) {size}) >= 32w{need}, {BAD_LENGTH});"],
                                       [f"transition select({shadow}.isValid()) {{", f"    true: {skip};",
                                        f"    default: {sname}__tlv_c_{option.name};", "}"]))
            copy = P4State(f"{sname}__tlv_c_{option.name}", f"copy the values of option {option.name}")
            if option.fields:
                var = f"{p}_o_{option.name}"
                self.locals.append(f"bit<{need * 8}> {var};")
                copy.stmts.append(f"{var} = pkt.lookahead<bit<{need * 8}>>();")
                copy.stmts.append(f"{shadow}.setValid();")
                for fld in option.fields:
                    hi = option.data_bytes * 8 - 1 - fld.offset
                    copy.stmts.append(f"{shadow}.{fld.name} = {var}[{hi}:{hi - fld.width + 1}];")
            else:
                copy.stmts.append(f"{shadow}.setValid();")
            copy.transition = [f"transition {skip};"]
            self.states.append(copy)
        self.states.append(P4State(skip, "consume the option (kept for the deparser)", [
            f"pkt.extract({lay.tlv_stack}.next.opt, ((bit<32>) ({size} - {lit(hb, tlv.size.width)})) << 3);",
            f"{left} = {left} - ((bit<16>) {size});"], [f"transition {loop};"]))

