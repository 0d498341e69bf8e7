"""A plain, sorted view of the IR for the NIC templates, with the C bodies of parser, actions and control.

Templates only lay out files; everything that needs a decision (layouts, offsets, which helper reads a field)
is computed here. Header instances live in a per-packet context as byte buffers in a canonical layout (fixed
part, then every optional group at a fixed offset, then the varlen tail), so field offsets are compile-time
constants; parse copies the present parts in, deparse writes the valid ones out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.reorder import exits_before_lookups
from c3po_compiler.text import comment_text
from targets.c_bounds import range_cond

from .cexpr import ExprCompiler, Unsupported, const, convert, ctype, mask_expr, valid_terms, vtype
from .liveness import Liveness, analyse, bodies, exprs_of, known_valid_in_select

ERR_CODES = {e: i + 1 for i, e in enumerate(ir.ERROR_KINDS)}


ALIGN = {"uint8_t": 1, "uint16_t": 2, "uint32_t": 4, "uint64_t": 8, "c3po_u128": 16}


def entry_fields(t: ir.Table, index: str, keys: list[KeyView], acts: list[ActionView], counters: bool) -> list[str]:
    """A table entry's member declarations, widest alignment first (stable): a smaller entry means fewer
    cache lines per probe and a smaller table, and nothing depends on the member order."""
    fields: list[tuple[int, str]] = []
    for k in keys:
        second = k.kind in ("ternary", "range") or (k.kind == "lpm" and index == "priority")
        decl = f"{k.ctype} k{k.index}_a;" + (f" {k.ctype} k{k.index}_b;" if second else "")
        fields.append((ALIGN[k.ctype], f"{decl} /* {k.text}: {k.kind} */"))
    if counters:
        fields.append((8, "uint64_t pk, by;"))
    with_args = [a for a in acts if a.params]
    if with_args:
        fields.append((max(a.align for a in with_args), f"union {{prog}}_{t.name}_args args;"))
    if index == "priority":
        fields += [(4, "int32_t priority;"), (4, "uint32_t seq;")]
    fields += [(4, "uint32_t hid; /* handle + 1; 0: empty slot */"), (2, "uint16_t action;")]
    if index == "lpm":
        fields.append((1, "uint8_t plen;"))
    return [decl for _, decl in sorted(fields, key=lambda f: -f[0])]


def csum_le_const(ptr: str, start: int, n: int) -> str:
    """The one's-complement sum of bytes [start, start + n) (start and n even) as straight-line little-endian
    words, each one plain load; the folded result is the network-order sum with its bytes swapped."""
    terms = []
    i = start
    while i < start + n:
        k = 4 if start + n - i >= 4 else 2
        terms.append(f"c3po_le{8 * k}({ptr}, {i}u)")
        i += k
    return " + ".join(terms) if terms else "UINT64_C(0)"


def nbytes(width: int) -> int:
    return (width + 7) // 8


def copy_const(dst: str, src: str, n: int) -> str:
    """A fixed-size copy as straight-line byte moves: compilers merge them into wide moves, and unlike a loop
    they are never turned into a memcpy call."""
    if n > 64:
        return f"c3po_copy({dst}, {src}, {n}u);"
    moves = " ".join(f"d_[{i}] = s_[{i}];" for i in range(n))
    return f"{{ uint8_t *d_ = {dst}; const uint8_t *s_ = {src}; {moves} }}"


def loc_comment(loc: object, root: Path | None = None) -> str:
    f = getattr(loc, "file", None) or ""
    line = getattr(loc, "line", 0)
    if not f:
        return ""
    p = Path(f)
    try:
        shown = str(p.resolve().relative_to(root)) if root else p.name
    except ValueError:
        shown = p.name
    return f"{comment_text(shown)}:{line}"


@dataclass
class GroupView:
    name: str
    offset: int  # canonical byte offset in the buffer
    size: int
    when: ir.Expr


@dataclass
class InstView:
    name: str
    ident: str
    stack: int
    fixed_bytes: int
    max_bytes: int
    groups: list[GroupView]
    varlen_offset: int
    varlen: ir.VarLen | None
    is_option: bool
    keep_original: bool = False
    checksum: ir.Checksum | None = None
    alias: bool = False  # the header buffer is a pointer to where it was parsed (write-through, no copy)
    track_ck: bool = False  # field writes accumulate an RFC 1624 delta for its ipv4_header checksum


@dataclass
class ParamView:
    name: str
    width: int
    ctype: str
    nbytes: int
    offset: int  # in the wire args encoding


@dataclass
class ActionView:
    name: str
    id: int
    params: list[ParamView]
    builtin: bool
    args_bytes: int

    @property
    def layout(self) -> list[ParamView]:
        """The parameters widest alignment first, so the struct (and the table entries holding it) has no
        padding holes; code names the members, only the wire format follows declaration order."""
        return sorted(self.params, key=lambda p: -ALIGN[p.ctype])

    @property
    def align(self) -> int:
        return max((ALIGN[p.ctype] for p in self.params), default=1)


@dataclass
class KeyView:
    index: int
    text: str
    kind: str
    width: int
    ctype: str
    vtype: str
    nbytes: int
    offset: int  # in the wire match encoding
    wide: bool
    fetch: str = ""  # C expression reading the key from the packet context


@dataclass
class TableView:
    name: str
    id: int
    size: int
    index: str  # 'exact' | 'lpm' | 'priority'
    keys: list[KeyView]
    actions: list[ActionView]
    counters: bool
    cap: int  # hash slots
    match_bytes: int
    lpm: KeyView | None
    default_action: int
    default_bytes: str
    const_entries: list[dict[str, object]]
    doc: str
    has_args: bool
    entry_fields: list[str] = field(default_factory=list)  # declarations, widest alignment first
    # one key of at most 56 bits: (prefix length, key) packs injectively into one word, and the finalizer alone
    # (a bijection) spreads it, one multiply-xor round fewer per probe than the general combine
    hash_direct: bool = False


@dataclass
class CounterView:
    name: str
    id: int
    size: int


@dataclass
class RegisterView:
    name: str
    id: int
    width: int
    size: int
    ctype: str
    nbytes: int


@dataclass
class ProgramView:
    name: str
    upper: str
    source: str
    instances: list[InstView]
    metadata: list[tuple[str, int, str]]
    actions: list[ActionView]
    tables: list[TableView]
    counters: list[CounterView]
    registers: list[RegisterView]
    parser_lines: list[str]
    control_lines: list[str]
    action_funcs: list[tuple[ActionView, list[str]]]
    ctx_fields: list[str]  # the per-packet context's members
    reset_lines: list[str]  # ctx_reset's body
    start_lines: list[str]  # after ctx_reset, before parsing
    finish_lines: list[str]  # after the control: checksum updates and deparse
    hash_funcs: list[list[str]]
    parse_loop: str
    error_verdicts: list[tuple[int, str]]
    default_verdict: str
    verdict_ids: dict[str, int] = field(default_factory=lambda: {"drop": 0, "to_host": 1, "reflect": 2, "forward": 3})


class Emitter:
    def __init__(self, prog: ir.Program) -> None:
        # Tests that make a lookup irrelevant run before it: c3po_compiler/reorder.py (why no one can tell).
        self.prog = prog = exits_before_lookups(prog)
        self.hash_sites: list[ir.Hash] = []
        self.ec = ExprCompiler(prog, self.hash_sites)
        self.insts: dict[str, InstView] = {}
        self.tmp = 0
        self.ck_ids: dict[tuple[str, str | None], int] = {}
        self.write_through: set[str] = set()
        self.lv = Liveness()
        self.identity = True  # re-emitting the parsed headers unchanged reproduces the frame (identity_ok)
        self.full_deparse = False  # the general deparser (headers re-emitted from their buffers) is generated
        self.track_structural = False  # c->structural chooses between write-back and the general deparser
        self.write_back: set[str] = set()  # copied headers written back where they were parsed when modified
        self.keep_pos: set[str] = set()  # headers whose parse offset (po_) a later step reads
        self.keep_len: set[str] = set()  # ... and whose parsed length (pl_)
        self.keep_buf: set[str] = set()  # headers whose buffer (or frame pointer) is read after extraction
        self.keep_vl: set[str] = set()  # headers whose varlen length is read after extraction
        self.ck_flags = True  # checksum requests as one flag each, not an ordered list (see decide)
        self.files = [Path(f) for f in prog.files]
        self.root = self.files[0].resolve().parent if self.files else None

    # -- layout ----------------------------------------------------------------------------------------------

    def layout(self) -> None:
        self.field_writes: dict[str, list[tuple[int, int]]] = {}  # instance -> (bit offset, width) assigned
        self.orig_bytes: dict[str, set[int]] = {}  # instance -> the bytes of its original (o_) that are read
        for body in bodies(self.prog):
            for s in ir.walk_stmts(body):
                if isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef):
                    inst = self.prog.instances[s.target.instance]
                    self.field_writes.setdefault(inst.name, []).append(self.field_pos(inst, s.target.field_name))
        needs_orig: set[str] = set()  # the incremental l4 updates compare written words with their originals
        for body in [self.prog.control, *(a.body for a in self.prog.user_actions.values())]:
            for s in ir.walk_stmts(body):
                if isinstance(s, ir.UpdateChecksum):
                    cs = self.prog.instances[s.instance].type.checksum
                    if cs and cs.kind == "l4" and not self.prog.instances[s.instance].is_stack:
                        for name, wo in self.l4_words(s.instance, s.pseudo):
                            needs_orig.add(name)
                            self.orig_bytes.setdefault(name, set()).update((wo, wo + 1))
                    self.ck_ids.setdefault((s.instance, s.pseudo), len(self.ck_ids))
        for name, inst in self.prog.instances.items():
            ht = inst.type
            groups = []
            off = ht.fixed_bytes
            for g in ht.groups:
                groups.append(GroupView(g.name, off, g.bytes, g.when))
                off += g.bytes
            vl_max = ht.varlen.max_bytes if ht.varlen else 0
            self.insts[name] = InstView(name, inst.ident, inst.stack, ht.fixed_bytes, off + vl_max, groups, off,
                                        ht.varlen, inst.tlv_parent is not None, name in needs_orig, ht.checksum)

    def comment(self, loc: object) -> str:
        where = loc_comment(loc, self.root)
        return f" ({where})" if where else ""

    def fresh(self) -> int:
        self.tmp += 1
        return self.tmp

    # -- field access ----------------------------------------------------------------------------------------

    def elem(self, inst: ir.Instance, index: int | str | None) -> tuple[str, str]:
        """(buffer expression, valid expression) of an instance or stack element."""
        iv = self.insts[inst.name]
        if not inst.is_stack:
            return f"c->h_{iv.ident}", f"c->v_{iv.ident}"
        i = f"(c->n_{iv.ident} ? c->n_{iv.ident} - 1u : 0u)" if index == "last" else str(index or 0)
        return f"c->h_{iv.ident}[{i}]", f"c->v_{iv.ident}[{i}]"

    def field_pos(self, inst: ir.Instance, fname: str) -> tuple[int, int]:
        """Bit offset in the canonical buffer, and width."""
        ht = inst.type
        f = ht.field(fname)
        if f is None:
            raise Unsupported(f"unknown field {inst.name}.{fname}")
        g = ht.group_of(fname)
        base = 0
        if g is not None:
            base = next(gv.offset for gv in self.insts[inst.name].groups if gv.name == g.name) * 8
        return base + f.offset, f.width

    @staticmethod
    def getter(buf: str, bitoff: int, width: int) -> str:
        """A field read as one straight-line expression over its bytes (compilers turn it into a single
        byte-swapped load); only fields spanning more than 8 bytes go through the runtime helpers."""
        first, end = bitoff // 8, (bitoff + width + 7) // 8
        span = end - first
        if width > 64:
            if bitoff % 8 == 0 and width % 8 == 0:
                # two straight-line 64-bit halves (two byte-swapped loads) instead of a byte loop over 128 bits
                hi = Emitter.getter(buf, bitoff, width - 64)
                lo = Emitter.getter(buf, bitoff + width - 64, 64)
                return f"(((c3po_u128){hi} << 64) | (c3po_u128){lo})"
            return f"c3po_getbits128({buf}, {bitoff}, {width})"
        if span > 8:
            return f"c3po_getbits({buf}, {bitoff}, {width})"
        parts = [f"((uint64_t){buf}[{first + i}] << {8 * (span - 1 - i)})" if span - 1 - i else
                 f"(uint64_t){buf}[{first + i}]" for i in range(span)]
        expr = "(" + " | ".join(parts) + ")"
        tail = end * 8 - (bitoff + width)
        if tail:
            expr = f"({expr} >> {tail})"
        if width < 64 and (tail or bitoff % 8):
            expr = f"({expr} & {const((1 << width) - 1, 64)})"
        return expr

    @staticmethod
    def setter(buf: str, bitoff: int, width: int, value: str) -> str:
        if bitoff % 8 == 0 and width % 8 == 0:
            n = width // 8
            if width > 64:
                return f"c3po_st128({buf}, {bitoff // 8}, {n}, {value});"
            o = bitoff // 8
            return " ".join(f"{buf}[{o + i}] = (uint8_t)({value} >> {8 * (n - 1 - i)});" if n - 1 - i else
                            f"{buf}[{o + i}] = (uint8_t){value};" for i in range(n))
        fn = "c3po_setbits128" if width > 64 else "c3po_setbits"
        return f"{fn}({buf}, {bitoff}, {width}, {value});"

    def guard(self, inst: ir.Instance, ref: ir.FieldRef, valid: str) -> str:
        if ref.group:
            if inst.is_stack:
                raise Unsupported("optional groups in a header stack")
            return f"({valid} && c->g_{inst.ident}_{ref.group})"
        return valid

    def read_field(self, ref: ir.FieldRef) -> str:
        inst = self.prog.instances[ref.instance]
        buf, valid = self.elem(inst, ref.index)
        bitoff, width = self.field_pos(inst, ref.field_name)
        if ref.instance in self.ec.known_valid and not ref.group:
            return self.getter(buf, bitoff, width)
        zero = "((c3po_u128)0)" if width > 64 else "UINT64_C(0)"
        return f"({self.guard(inst, ref, valid)} ? {self.getter(buf, bitoff, width)} : {zero})"

    def local_reader(self, inst: ir.Instance, buf: str) -> object:
        def read(ref: ir.FieldRef) -> str:
            bitoff, width = self.field_pos(inst, ref.field_name)
            return self.getter(buf, bitoff, width)
        return read

    def expr(self, e: ir.Expr) -> str:
        return self.ec.compile(e, self.read_field)

    # -- statements ------------------------------------------------------------------------------------------

    def stmts(self, body: list[ir.Stmt], ind: int) -> list[str]:
        out: list[str] = []
        for s in body:
            out += self.stmt(s, ind)
        return out

    def stmt(self, s: ir.Stmt, ind: int) -> list[str]:
        p = "    " * ind
        if isinstance(s, ir.Assign):
            return [p + line for line in self.assign(s)]
        if isinstance(s, ir.SetVerdict):
            lines = [f"{p}c->verdict = {self.upper}_{s.verdict.value.upper()};"]
            if s.port is not None:
                lines.append(f"{p}c->port = (uint16_t){self.expr(s.port)};")
            return lines
        if isinstance(s, ir.SetValid):
            return [p + line for line in self.set_valid(s)]
        if isinstance(s, ir.UpdateChecksum):
            i = self.ck_ids[(s.instance, s.pseudo)]
            if self.ck_flags:
                return [f"{p}c->ck_{i} = true;"]
            return [f"{p}if (!c->ck_req[{i}]) {{ c->ck_req[{i}] = 1; c->ck_order[c->n_ck++] = {i}; }}"]
        if isinstance(s, ir.Count):
            size = self.prog.counters[s.counter].size
            idx = self.expr(s.index)
            if s.index.width > 64:
                idx = f"c3po_clamp128({idx})"
            cid = list(self.prog.counters).index(s.counter)
            return [f"{p}{{ uint64_t i_ = {idx}; if (i_ < {size}u) {{ st->c_{s.counter}_pk[i_]++; "
                    f"st->c_{s.counter}_by[i_] += c->std_packet_length; C3PO_TOUCH(1u, {cid}u, i_); }} }}"]
        if isinstance(s, ir.CallAction):
            act = self.prog.actions[s.action]
            if not act.params:
                return [f"{p}act_{act.name}(st, c);"]
            lines = [f"{p}{{", f"{p}    struct {self.prog.name}_args_{act.name} a_;"]
            for prm, arg in zip(act.params, s.args, strict=True):
                lines.append(f"{p}    a_.{prm.name} = ({ctype(prm.width)}){convert(self.expr(arg), arg.width, prm.width)};")
            lines += [f"{p}    act_{act.name}(st, c, &a_);", f"{p}}}"]
            return lines
        if isinstance(s, ir.If):
            lines = [f"{p}if ({self.expr(s.cond)}) {{"]
            # without set_valid a header's validity does not change after parsing: the branch that tested it
            # reads its fields without the test
            added = set() if self.lv.any_set_valid else valid_terms(self.prog, s.cond) - self.ec.known_valid
            self.ec.known_valid |= added
            try:
                lines += self.stmts(s.then, ind + 1)
            finally:
                self.ec.known_valid -= added
            if s.otherwise:
                lines += [f"{p}}} else {{", *self.stmts(s.otherwise, ind + 1)]
            return [*lines, f"{p}}}"]
        if isinstance(s, ir.Apply):
            return self.apply(s, ind)
        raise Unsupported(f"statement {type(s).__name__}")

    def assign(self, s: ir.Assign) -> list[str]:
        t = s.target
        if isinstance(t, ir.MetaRef):
            return [f"c->m_{t.name} = ({ctype(t.width)}){self.expr(s.value)};"]
        if isinstance(t, ir.RegRead):
            val = self.expr(s.value)
            reg = self.prog.registers[t.register]
            idx = self.expr(t.index)
            if t.index.width > 64:
                idx = f"c3po_clamp128({idx})"
            rid = list(self.prog.registers).index(t.register)
            return [f"{{ uint64_t i_ = {idx}; {vtype(t.width)} v_ = {val}; "
                    f"if (i_ < {reg.size}u) {{ st->r_{reg.name}[i_] = ({ctype(reg.width)})v_; "
                    f"C3PO_TOUCH(2u, {rid}u, i_); }} }}"]
        assert isinstance(t, ir.FieldRef)
        inst = self.prog.instances[t.instance]
        if inst.tlv_parent is not None:
            raise Unsupported("writes to TLV option fields")
        buf, valid = self.elem(inst, t.index)
        bitoff, width = self.field_pos(inst, t.field_name)
        # Stores go through local pointers: a byte store through a pointer may alias anything, and would make
        # the compiler reload the context after every byte.
        iv = self.insts[inst.name]
        # an aliased buffer is the frame itself (its layout never changes), so the store is the write-back; a
        # copied header is marked for the write-back, if there is one (the general deparser copies every header)
        mark = ""
        if inst.is_stack and self.track_structural:
            mark = " c->structural = true;"
        elif inst.name in self.write_back:
            mark = f" c->d_{inst.ident} = true;"
        delta = self.ck_delta(iv, bitoff, width) if iv.track_ck else ""
        # the value is computed under the target's valid test (expressions have no side effects): there the
        # target header's own fields need no valid test of their own
        added = set() if inst.is_stack else {inst.name} - self.ec.known_valid
        self.ec.known_valid |= added
        try:
            val = self.expr(s.value)
        finally:
            self.ec.known_valid -= added
        return [f"if ({self.guard(inst, t, valid)}) {{ {vtype(width)} v_ = {val}; uint8_t *b_ = {buf}; "
                f"{delta}{self.setter('b_', bitoff, width, 'v_')}{mark} }}"]

    @staticmethod
    def ck_delta(iv: InstView, bitoff: int, width: int) -> str:
        """RFC 1624 eqn 3 terms (~m + m') for every 16-bit header word the write touches, old bytes read before
        the store: update_checksum then needs no read-back of just-written bytes (a store-forwarding stall)."""
        o, n = bitoff // 8, width // 8
        terms = []
        for b in range(o, o + n):
            shift = 8 if b % 2 == 0 else 0
            new = f"((uint32_t)(uint8_t)(v_ >> {8 * (o + n - 1 - b)}))" if o + n - 1 - b else "((uint32_t)(uint8_t)v_)"
            sh = f" << {shift}" if shift else ""
            terms.append(f"(0xffffu ^ ((uint32_t)b_[{b}]{sh})) + ({new}{sh})")
        return f"c->ckd_{iv.ident} += {' + '.join(terms)}; "

    def set_valid(self, s: ir.SetValid) -> list[str]:
        inst = self.prog.instances[s.instance]
        iv = self.insts[s.instance]
        if inst.is_stack:
            buf, valid = f"c->h_{iv.ident}[{s.index or 0}]", f"c->v_{iv.ident}[{s.index or 0}]"
        else:
            buf, valid = f"c->h_{iv.ident}", f"c->v_{iv.ident}"
        structural = ["c->structural = true;"] if self.track_structural else []
        if not s.valid:
            lines = [*structural, f"{valid} = false;"]
            if not inst.is_stack:
                lines += [f"c->g_{iv.ident}_{g.name} = false;" for g in iv.groups]
                lines += [f"c->v_{o.ident} = false;" for o in self.insts.values() if o.is_option
                          and self.prog.instances[o.name].tlv_parent == inst.name]
            return lines
        if not inst.type.is_fixed:
            raise Unsupported("set_valid on a header with optional groups or a varlen tail")
        lines = [*structural, f"c3po_zero({buf}, {iv.max_bytes});", f"{valid} = true;"]
        if iv.keep_original and not inst.is_stack:
            lines.append(f"c3po_zero(c->o_{iv.ident}, {iv.fixed_bytes});")
        return lines

    # -- tables ------------------------------------------------------------------------------------------------

    def apply(self, s: ir.Apply, ind: int) -> list[str]:
        p = "    " * ind
        t = self.prog.tables[s.table]
        tv = self.table_views[s.table]
        n = self.fresh()
        h, a, pa = f"h{n}", f"a{n}", f"p{n}"
        tbl = f"st->t_{t.name}"
        lines = [f"{p}{{ /* apply {t.name}{self.comment(s.loc)} */",
                 f"{p}    uint32_t {h} = c3po_t_{t.name}_lookup(st, c);",
                 f"{p}    uint32_t {a};"]
        if tv.has_args:
            lines.append(f"{p}    const union {self.prog.name}_{t.name}_args *{pa};")
        lines.append(f"{p}    if ({h} != C3PO_NONE) {{")
        lines.append(f"{p}        {a} = {tbl}.e[{h}].action;")
        if tv.has_args:
            lines.append(f"{p}        {pa} = &{tbl}.e[{h}].args;")
        if t.counters:
            lines.append(f"{p}        {tbl}.e[{h}].pk++; {tbl}.e[{h}].by += c->std_packet_length;")
        lines.append(f"{p}    }} else {{")
        lines.append(f"{p}        {a} = {tbl}.def_action;")
        if tv.has_args:
            lines.append(f"{p}        {pa} = &{tbl}.def_args;")
        if t.counters:
            lines.append(f"{p}        {tbl}.def_pk++; {tbl}.def_by += c->std_packet_length;")
        lines.append(f"{p}    }}")
        lines.append(f"{p}    switch ({a}) {{")
        for av in tv.actions:
            call = self.call_action(av, f"&{pa}->{av.name}" if av.params else "")
            lines.append(f"{p}    case {self.upper}_ACTION_{av.name}: {call} break;")
        lines.append(f"{p}    default: break;")
        lines.append(f"{p}    }}")
        if s.hit or s.miss:
            lines.append(f"{p}    if ({h} != C3PO_NONE) {{")
            lines += self.stmts(s.hit, ind + 2)
            if s.miss:
                lines.append(f"{p}    }} else {{")
                lines += self.stmts(s.miss, ind + 2)
            lines.append(f"{p}    }}")
        if s.by_action:
            lines.append(f"{p}    switch ({a}) {{")
            for aname, body in s.by_action.items():
                lines.append(f"{p}    case {self.upper}_ACTION_{aname}: {{")
                lines += self.stmts(body, ind + 2)
                lines.append(f"{p}    }} break;")
            lines.append(f"{p}    default: break;")
            lines.append(f"{p}    }}")
        if not tv.has_args:
            pass
        lines.append(f"{p}}}")
        return lines

    def call_action(self, av: ActionView, args: str) -> str:
        if av.builtin:
            if av.name == "nop":
                return ";"
            if av.name == "forward":
                return f"c->verdict = {self.upper}_FORWARD; c->port = {args.lstrip('&')}.port;"
            return f"c->verdict = {self.upper}_{av.name.upper()};"
        if av.params:
            return f"act_{av.name}(st, c, {args});"
        return f"act_{av.name}(st, c);"

    def build_tables(self) -> None:
        self.table_views: dict[str, TableView] = {}
        for ti, t in enumerate(self.prog.tables.values()):
            keys: list[KeyView] = []
            off = 0
            for i, k in enumerate(t.keys):
                w = k.width
                kv = KeyView(i, k.text, k.kind, w, ctype(w), vtype(w), nbytes(w), off, w > 64)
                e = k.expr
                kv.fetch = self.expr(e)
                nb = nbytes(w)
                off += {"exact": nb, "lpm": nb + 1, "ternary": 2 * nb, "range": 2 * nb}[k.kind]
                keys.append(kv)
            if t.uses_priority:
                index = "priority"
            elif t.lpm_key is not None:
                index = "lpm"
            else:
                index = "exact"
            # `nop` is always a valid default override (the reference interpreter allows it too)
            names = [*t.actions, t.default.action, *(["nop"] if "nop" in self.prog.actions else [])]
            acts = [self.action_views[a] for a in dict.fromkeys(names)]
            cap = 2
            while cap < 2 * t.size:
                cap *= 2
            dav = self.action_views[t.default.action]
            dargs = self.encode_args(dav, t.default.args)
            entries: list[dict[str, object]] = []
            for entry in t.entries:
                call = entry.action
                entries.append({"match": self.encode_match(t, entry.match), "priority": entry.priority,
                                "action": self.action_views[call.action].id,
                                "args": self.encode_args(self.action_views[call.action], call.args),
                                "where": loc_comment(entry.loc, self.root)})
            tv = TableView(t.name, ti, t.size, index, keys, acts, t.counters, cap, off,
                           keys[t.lpm_key] if t.lpm_key is not None and index == "lpm" else None,
                           dav.id, dargs, entries, loc_comment(t.loc, self.root), any(a.params for a in acts))
            tv.hash_direct = len(keys) == 1 and keys[0].width <= 56
            tv.entry_fields = [f.replace("{prog}", self.prog.name)
                               for f in entry_fields(t, index, keys, acts, t.counters)]
            self.table_views[t.name] = tv

    @staticmethod
    def encode_match(t: ir.Table, match: list[KeyElem]) -> str:
        return ", ".join(f"{x:#04x}" for x in match_bytes(t, match)) or "0"

    @staticmethod
    def encode_args(av: ActionView, args: list[int]) -> str:
        out = bytearray()
        for prm, v in zip(av.params, args, strict=True):
            out += (v & ((1 << prm.width) - 1)).to_bytes(prm.nbytes, "big")
        return ", ".join(f"{x:#04x}" for x in out)  # empty: the action has no parameters (c3po_no_args)

    # -- parser ----------------------------------------------------------------------------------------------


    def parser(self) -> tuple[list[str], int]:
        ps = self.prog.parser
        names = list(ps.states)
        ids = {n: i + 2 for i, n in enumerate(names)}
        ids["accept"], ids["reject"] = 0, 1
        self.state_ids = ids
        lines: list[str] = []
        # Every loop extracts into a stack (the front end refuses others), so between two stack extractions a
        # parse visits each state at most once: (stack elements + 1) x states bounds any parse, including
        # loops through states that extract nothing (a select on metadata between elements).
        elements = sum(i.stack for i in self.prog.instances.values() if i.is_stack)
        steps = (elements + 1) * len(names) + 1
        succ = {n: [x for x in ps.states[n].successors() if x in ps.states] for n in names}
        entered = any(ps.start in xs for xs in succ.values())
        self.parse_acyclic = not self.has_cycle(succ)
        for name in names:
            st = ps.states[name]
            lines.append(f"        case {ids[name]}: {{ /* parser state {name}{self.comment(st.loc)} */")
            if st.extract:
                # the cursor is read after this state by another state, the select's lookahead or the general
                # deparser (the payload starts there); otherwise advancing it past the header is a dead store
                lookahead = any(isinstance(x, ir.Lookahead) for e in st.select for x in ir.walk_expr(e))
                cur_live = self.full_deparse or lookahead or any(x in ps.states for x in st.successors())
                lines += self.extract(self.prog.instances[st.extract], cur_live, name == ps.start and not entered)
            for v in st.verify:
                lines += self.verify(self.prog.instances[v])
            lines += self.stmts(st.do, 3)  # metadata assignments and if: the control's statement code
            lines += self.select(st)
            lines.append("        } break;")
        return lines, steps

    @staticmethod
    def has_cycle(succ: dict[str, list[str]]) -> bool:
        state: dict[str, int] = {}  # 1: on the current path, 2: done

        def visit(n: str) -> bool:
            state[n] = 1
            for m in succ[n]:
                if state.get(m) == 1 or (m not in state and visit(m)):
                    return True
            state[n] = 2
            return False
        return any(n not in state and visit(n) for n in succ)

    def parse_loop(self, steps: int) -> str:
        """Without a cycle in the parse graph every step moves to a state further on, so the parse ends without
        a step count; with one, each cycle extracts into a finite stack and the count is a bound."""
        if self.parse_acyclic:
            return "    for (;;) { /* the parse graph has no cycle: each state leads to one further on */"
        return (f"    for (uint32_t step = 0; step < {steps}u; step++) {{ /* bounded: every loop extracts into a "
                "finite stack */")

    def err(self, kind: str) -> str:
        return f"{{ err = {ERR_CODES[kind]}; goto parse_error; }}"

    def extract(self, inst: ir.Instance, cur_live: bool = True, at_start: bool = False) -> list[str]:
        """`at_start`: the parse's first state, which no state returns to: the cursor is 0 there."""
        iv = self.insts[inst.name]
        p = "            "
        out: list[str] = []
        keep_len = inst.name in self.keep_len
        # is `cur` read after the fixed part, after each group? (the groups, the varlen tail, the parsed length)
        live_after_groups = cur_live or keep_len or iv.varlen is not None
        live_after = [live_after_groups or k + 1 < len(iv.groups) for k in range(len(iv.groups))]
        live_after_fixed = live_after_groups or bool(iv.groups)
        if inst.is_stack:
            out.append(f"{p}if (c->n_{iv.ident} >= {inst.stack}u) {self.err('stack_overflow')}")
            buf = f"c->h_{iv.ident}[c->n_{iv.ident}]"
        else:
            buf = f"c->h_{iv.ident}"
        at_start = at_start and not inst.is_stack
        here, left = ("pkt", "n") if at_start else ("pkt + cur", "n - cur")
        out.append(f"{p}if ({iv.fixed_bytes}u > {left}) {self.err('truncated')}")
        if iv.alias:
            # the frame keeps its layout: the header is read and written where it was parsed, no copy
            if inst.name in self.keep_buf:
                out.append(f"{p}{buf} = {here};")
        else:
            out.append(f"{p}{copy_const(buf, here, iv.fixed_bytes)}")
        if inst.name in self.keep_pos:
            out.append(f"{p}c->po_{iv.ident} = {'0u' if at_start else 'cur'};")
        if live_after_fixed:
            out.append(f"{p}cur {'=' if at_start else '+='} {iv.fixed_bytes}u;")
        reader = self.local_reader(inst, buf)
        for g, live in zip(iv.groups, live_after, strict=True):
            cond = self.ec.compile(g.when, reader)  # type: ignore[arg-type]
            out.append(f"{p}c->g_{iv.ident}_{g.name} = false;")
            out.append(f"{p}if ({cond}) {{")
            out.append(f"{p}    if ({g.size}u > n - cur) {self.err('truncated')}")
            out.append(f"{p}    {copy_const(f'{buf} + {g.offset}', 'pkt + cur', g.size)}")
            out.append(f"{p}    {f'cur += {g.size}u; ' if live else ''}c->g_{iv.ident}_{g.name} = true;")
            out.append(f"{p}}}")
        vl = iv.varlen
        if vl is not None:
            length = self.ec.compile(vl.length, reader)  # type: ignore[arg-type]
            if vl.length.width > 64:
                length = f"c3po_clamp128({length})"
            out.append(f"{p}{{")
            out.append(f"{p}    uint64_t L = {length};")
            out.append(f"{p}    if (L > {vl.max_bytes}u) {self.err('bad_length')}")
            out.append(f"{p}    if (L > n - cur) {self.err('truncated')}")
            if not iv.alias:  # an aliased header's tail already follows its fixed part in the frame
                out.append(f"{p}    c3po_copy({buf} + {iv.varlen_offset}, pkt + cur, (uint32_t)L);")
            vl_var = f"c->vl_{iv.ident}[c->n_{iv.ident}]" if inst.is_stack else f"c->vl_{iv.ident}"
            keep = [f"{vl_var} = (uint16_t)L;"] if inst.name in self.keep_vl else []
            if cur_live or keep_len:
                keep.append("cur += (uint32_t)L;")
            if keep:
                out.append(f"{p}    {' '.join(keep)}")
            out.append(f"{p}}}")
        if inst.is_stack:
            out.append(f"{p}c->v_{iv.ident}[c->n_{iv.ident}] = true; c->n_{iv.ident}++;")
        else:
            if inst.name in self.lv.valid_read:
                out.append(f"{p}c->v_{iv.ident} = true;")
            if keep_len:
                out.append(f"{p}c->pl_{iv.ident} = cur - c->po_{iv.ident};")
            opts = [o for o in self.prog.instances.values() if o.tlv_parent == inst.name]
            out += [f"{p}c->v_{self.insts[o.name].ident} = false;" for o in opts]
            if iv.keep_original:  # the bytes of the original the checksum updates read
                moves = " ".join(f"d_[{b}] = s_[{b}];" for b in sorted(self.orig_bytes[inst.name]))
                out.append(f"{p}{{ uint8_t *d_ = c->o_{iv.ident}; const uint8_t *s_ = c->h_{iv.ident}; {moves} }}")
            if vl is not None and vl.tlv is not None and getattr(inst, "walk_tlv", True):
                out += self.tlv_walk(inst, vl.tlv, f"c->h_{iv.ident} + {iv.varlen_offset}", f"c->vl_{iv.ident}", opts)
        return out

    def tlv_walk(self, inst: ir.Instance, tlv: ir.Tlv, area: str, length: str, opts: list[ir.Instance]
                 ) -> list[str]:
        p = "            "
        hb = tlv.header_bytes
        # every option takes at least `least` bytes: when max_options of them fill the largest area, the walk
        # ends (q reaches L) before counting too many, and the count is not generated
        least = min(hb, tlv.singleton_bytes) if tlv.singletons else hb
        assert inst.type.varlen is not None
        counted = tlv.max_options * least < inst.type.varlen.max_bytes
        out = [f"{p}{{ /* TLV walk of {inst.name} options */",
               f"{p}    const uint8_t *ar = {area};",
               f"{p}    uint32_t q = 0, {'k, ' if counted else ''}L = {length};"]
        if counted:
            out += [f"{p}    for (k = 0; k <= {tlv.max_options}u && q < L; k++) {{",
                    f"{p}        if (k == {tlv.max_options}u) {self.err('bad_length')}"]
        else:
            out.append(f"{p}    while (q < L) {{")
        if tlv.singletons:
            sb = tlv.singleton_bytes
            if sb > 1:  # q < L: one byte is always there
                out.append(f"{p}        if ({sb}u > L - q) {self.err('bad_length')}")
            out.append(f"{p}        {{ uint64_t t0 = c3po_ld(ar, q, {sb}u);")
            if tlv.end:
                ends = " || ".join(f"t0 == {tlv.singletons[e]}u" for e in tlv.end)
                out.append(f"{p}          if ({ends}) break;")
            # the end singletons have left the loop already
            singles = " || ".join(f"t0 == {v}u" for k, v in tlv.singletons.items() if k not in tlv.end)
            if singles:
                out.append(f"{p}          if ({singles}) {{ q += {sb}u; continue; }} }}")
            else:
                out[-1] += " }"
        out.append(f"{p}        if ({hb}u > L - q) {self.err('bad_length')}")

        def hdr(ref: ir.FieldRef) -> str:
            f = next(x for x in tlv.header if x.name == ref.field_name)
            return self.getter("(ar + q)", f.offset, f.width)
        size = self.ec.compile(tlv.size, hdr)
        if tlv.size.width > 64:
            size = f"c3po_clamp128({size})"
        out.append(f"{p}        {{ uint64_t sz = {size};")
        out.append(f"{p}          if (sz < {hb}u || sz > L - q) {self.err('bad_length')}")
        for o in opts:
            opt = o.tlv_option
            assert opt is not None
            ov = self.insts[o.name]
            conds = []
            for kname, kval in opt.match.items():
                f = next(x for x in tlv.header if x.name == kname)
                conds.append(f"{self.getter('(ar + q)', f.offset, f.width)} == {const(kval, 64)}")
            out.append(f"{p}          if ({' && '.join(conds)}) {{")
            if opt.data_bytes:
                out.append(f"{p}              if (sz - {hb}u < {opt.data_bytes}u) {self.err('bad_length')}")
                if o.name in self.keep_buf:  # the first occurrence's data, if a field of it is read
                    out.append(f"{p}              if (!c->v_{ov.ident}) "
                               f"{copy_const(f'c->h_{ov.ident}', f'ar + q + {hb}u', opt.data_bytes)}")
            out.append(f"{p}              c->v_{ov.ident} = true;")
            out.append(f"{p}          }}")
        out.append(f"{p}          q += (uint32_t)sz; }}")
        out.append(f"{p}    }}")
        out.append(f"{p}}}")
        return out

    @staticmethod
    def verify_fast(iv: InstView) -> bool:
        """The verify sums the fixed part as straight-line words (no parsed length needed)."""
        return not iv.groups and iv.fixed_bytes % 2 == 0

    def verify(self, inst: ir.Instance) -> list[str]:
        iv = self.insts[inst.name]
        cs = inst.type.checksum
        if cs is None or cs.kind != "ipv4_header" or inst.is_stack:
            raise Unsupported(f"verify of {inst.name}")
        p = "            "
        total = f"c3po_csum_add(0, pkt + c->po_{iv.ident}, c->pl_{iv.ident})"
        if self.verify_fast(iv):
            # the fixed part as straight-line little-endian words (plain loads, no byte assembly), the varlen
            # tail after it; a verify compares with 0xffff, which is its own byte swap
            return [f"{p}{{ const uint8_t *k_ = pkt + c->po_{iv.ident};",
                    f"{p}  if (c3po_csum_fold({csum_le_const('k_', 0, iv.fixed_bytes)}"
                    + (f" + c3po_csum_add_le(0, k_ + {iv.fixed_bytes}u, c->vl_{iv.ident})" if iv.varlen else "")
                    + f") != 0xffffu) {self.err('checksum')} }}"]
        return [f"{p}if (c3po_csum_fold({total}) != 0xffffu) {self.err('checksum')}"]

    def select(self, st: ir.ParserState) -> list[str]:
        p = "            "
        ids = self.state_ids
        if not st.select:
            return [f"{p}state = {ids[st.default]};"]
        out: list[str] = []
        look: list[ir.Lookahead] = []
        for e in st.select:
            look += [x for x in ir.walk_expr(e) if isinstance(x, ir.Lookahead)]
        for la in look:
            need = (la.offset + la.bits + 7) // 8
            out.append(f"{p}if ({need}u > n - cur) {self.err('truncated')}")

        def lookahead(la: ir.Lookahead) -> str:
            return self.getter("(pkt + cur)", la.offset, la.bits)

        def field(ref: ir.FieldRef) -> str:
            """The header this state extracted is valid (a stack's last element is the one just extracted): its
            fixed fields are read without the valid test."""
            inst = self.prog.instances[ref.instance]
            if known_valid_in_select(self.prog, st, ref):
                bitoff, width = self.field_pos(inst, ref.field_name)
                buf = f"c->h_{inst.ident}[c->n_{inst.ident} - 1u]" if inst.is_stack else f"c->h_{inst.ident}"
                return self.getter(buf, bitoff, width)
            return self.read_field(ref)
        # trailing cases that go where the default goes decide nothing
        cases = list(st.cases)
        while cases and cases[-1].next == st.default:
            cases.pop()
        out.append(f"{p}{{")
        for i, e in enumerate(st.select if cases else []):
            code = self.ec.compile(e, field, lookahead)
            out.append(f"{p}    {vtype(max(e.width, 1))} s{i} = {code};")
        first = True
        for case in cases:
            conds = []
            for i, (e, k) in enumerate(zip(st.select, case.keyset, strict=True)):
                w = max(e.width, 1)
                if k.kind == "value":
                    conds.append(f"s{i} == {const(k.a, w)}")
                elif k.kind == "mask":
                    conds.append(f"(s{i} & {const(k.b, w)}) == {const(k.a & k.b, w)}")
                elif k.kind == "range":
                    conds.append(range_cond(f"s{i}", k.a, k.b, w, const))
            cond = " && ".join(conds) or "1"
            kw = "if" if first else "else if"
            out.append(f"{p}    {kw} ({cond}) state = {ids[case.next]};")
            first = False
        if first:
            out.append(f"{p}    state = {ids[st.default]};")
        else:
            out.append(f"{p}    else state = {ids[st.default]};")
        for i in range(len(st.select) if cases else 0):
            out.append(f"{p}    (void)s{i};")
        out.append(f"{p}}}")
        return out

    # -- deparse and checksums -------------------------------------------------------------------------------

    def deparse(self) -> list[str]:
        """The headers back into the frame: modified copied headers written back where they were parsed (when
        the layout cannot change) and, when a header can be added or removed or the deparse order differs from
        the parse order, the general deparser that re-emits every valid header before the payload."""
        p = "        "
        out: list[str] = []
        if self.write_back or self.track_structural:
            out.append(f"{p}/* write back the copied headers that were modified, where they were parsed */")
        if self.track_structural:
            out.append(f"{p}if (!c->structural) {{")
        q = p + "    " if self.track_structural else p
        for name in self.prog.deparse:
            iv = self.insts[name]
            if name not in self.write_back:
                continue
            # d_ is only set while the header is valid, and only set_valid (which takes the general deparser)
            # can make it invalid again
            out.append(f"{q}if (c->d_{iv.ident}) {{")
            if not iv.groups:
                out.append(f"{q}    {copy_const(f'pkt + c->po_{iv.ident}', f'c->h_{iv.ident}', iv.fixed_bytes)}")
            else:
                out.append(f"{q}    uint32_t pos = c->po_{iv.ident} + {iv.fixed_bytes}u;")
                out.append(f"{q}    {copy_const(f'pkt + c->po_{iv.ident}', f'c->h_{iv.ident}', iv.fixed_bytes)}")
                for k, g in enumerate(iv.groups):
                    step = f" pos += {g.size}u;" if k + 1 < len(iv.groups) else ""
                    out.append(f"{q}    if (c->g_{iv.ident}_{g.name}) {{ "
                               f"{copy_const('pkt + pos', f'c->h_{iv.ident} + {g.offset}', g.size)}{step} }}")
            out.append(f"{q}}}")
        if self.track_structural:
            out.append(f"{p}}} else")
        if self.full_deparse:
            out += self.general_deparse(p)
        return out

    def general_deparse(self, p: str) -> list[str]:
        elems: list[tuple[str, str, InstView]] = []
        tails: dict[str, str] = {}  # element buffer -> its varlen length
        for name in self.prog.deparse:
            iv = self.insts[name]
            if iv.stack:
                elems += [(f"c->h_{iv.ident}[{i}]", f"c->v_{iv.ident}[{i}]", iv) for i in range(iv.stack)]
                tails.update({f"c->h_{iv.ident}[{i}]": f"c->vl_{iv.ident}[{i}]" for i in range(iv.stack)})
            else:
                elems.append((f"c->h_{iv.ident}", f"c->v_{iv.ident}", iv))
                tails[f"c->h_{iv.ident}"] = f"c->vl_{iv.ident}"
        out = [f"{p}/* deparse: valid headers in deparse order, then the payload after the parser's cursor */"]
        # `pos` only when a header is written (a program whose states extract nothing has none to write)
        out += [f"{p}{{", f"{p}    uint32_t hl = 0, {'pos = 0, ' if elems else ''}pay = n - cur;"]
        for buf, valid, iv in elems:
            sizes = [f"{iv.fixed_bytes}u"]
            if not iv.stack:
                sizes += [f"(c->g_{iv.ident}_{g.name} ? {g.size}u : 0u)" for g in iv.groups]
            if iv.varlen:
                sizes.append(tails[buf])
            out.append(f"{p}    if ({valid}) hl += {' + '.join(sizes)};")
        out.append(f"{p}    if (hl > cap || pay > cap - hl) {{ st->oversize_drops++; c->verdict = {self.upper}_DROP; "
                   "goto done; }")
        out.append(f"{p}    c3po_move(pkt + hl, pkt + cur, pay);")
        for k, (buf, valid, iv) in enumerate(elems):
            # (condition, copy, size) of the fixed part, each optional group and the varlen tail
            pieces: list[tuple[str, str, str]] = [("", copy_const("pkt + pos", buf, iv.fixed_bytes),
                                                   f"{iv.fixed_bytes}u")]
            if not iv.stack:
                pieces += [(f"c->g_{iv.ident}_{g.name}", copy_const("pkt + pos", f"{buf} + {g.offset}", g.size),
                            f"{g.size}u") for g in iv.groups]
            if iv.varlen:
                pieces.append(("", f"c3po_copy(pkt + pos, {buf} + {iv.varlen_offset}, {tails[buf]});", tails[buf]))
            out.append(f"{p}    if ({valid}) {{")
            for j, (cond, copy, size) in enumerate(pieces):
                # the position after the last header's last part is not read: no step there
                code = copy if k + 1 == len(elems) and j + 1 == len(pieces) else f"{copy} pos += {size};"
                out.append(f"{p}        if ({cond}) {{ {code} }}" if cond else f"{p}        {code}")
            out.append(f"{p}    }}")
        out.append(f"{p}    *len = hl + pay;")
        out.append(f"{p}}}")
        return out

    def identity_ok(self) -> bool:
        """Whether re-emitting unmodified headers in deparse order always reproduces the parsed bytes: every
        extracted instance is deparsed, in the order the parser can extract them, and no plain instance can be
        extracted twice."""
        ps = self.prog.parser
        order = {n: i for i, n in enumerate(self.prog.deparse)}
        succ = {n: [x for x in st.successors() if x in ps.states] for n, st in ps.states.items()}

        def reach(start: str) -> set[str]:
            seen: set[str] = set()
            todo = list(succ[start])
            while todo:
                x = todo.pop()
                if x not in seen:
                    seen.add(x)
                    todo += succ[x]
            return seen
        for name, st in ps.states.items():
            a = st.extract
            if a is None:
                continue
            if a not in order:
                return False
            for later in reach(name):
                b = ps.states[later].extract
                if b is None:
                    continue
                if b == a and not self.prog.instances[a].is_stack:
                    return False
                if b != a and (b not in order or order[b] < order[a]):
                    return False
        return True

    def l4_words(self, name: str, pseudo: str | None) -> list[tuple[str, int]]:
        """The 16-bit words (instance, byte offset) an incremental l4 checksum update of `name` adds the change
        of: the header's words but its checksum field, and the pseudo-header's addresses -- only those some
        assignment can write (the others equal their original on every packet)."""
        inst = self.prog.instances[name]
        cs = inst.type.checksum
        assert cs is not None
        fo = self.field_pos(inst, cs.field)[0] // 8
        words = [(name, wo) for wo in range(0, inst.type.fixed_bytes, 2) if wo != fo]
        if pseudo:
            pinst = self.prog.instances[pseudo]
            for fname in ("src", "dst"):
                pb, pw = self.field_pos(pinst, fname)
                words += [(pseudo, wo) for wo in range(pb // 8, (pb + pw) // 8, 2)]
        return [(n, wo) for n, wo in words
                if any(b < 8 * wo + 16 and 8 * wo < b + w for b, w in self.field_writes.get(n, []))]

    def ck_mark(self, iv: InstView) -> str:
        """After a checksum update of a copied header: mark it for the write-back (an aliased buffer is the
        frame; the general deparser copies every header anyway)."""
        return f" c->d_{iv.ident} = true;" if iv.name in self.write_back else ""

    def compute_track_ck(self) -> set[str]:
        """Aliased instances whose update_checksum(ipv4_header) can be an RFC 1624 incremental update that is
        byte-identical to the spec's full recompute: every parser state that extracts the header verifies it
        (so the control only ever sees a correct incoming checksum), the program never writes the checksum
        field itself, and every field it writes is whole bytes (so the delta is taken at the store). The
        update falls back to the full recompute in the one case incremental arithmetic cannot decide
        (a folded sum of 0 or 0xffff: one's complement has two zeros)."""
        out: set[str] = set()
        writes = self.field_writes
        states = self.prog.parser.states.values()
        for (name, pseudo), _ in self.ck_ids.items():
            iv = self.insts[name]
            cs = iv.checksum
            if pseudo or not iv.alias or cs is None or cs.kind != "ipv4_header":
                continue
            inst = self.prog.instances[name]
            fo, _w = self.field_pos(inst, cs.field)
            if fo % 16 or iv.fixed_bytes % 2:
                continue
            if not all(name in st.verify for st in states if st.extract == name):
                continue
            ws = writes.get(name, [])
            if any(b % 8 or w % 8 or w > 64 or (b < fo + 16 and fo < b + w) for b, w in ws):
                continue
            out.add(name)
        return out

    def compute_write_through(self) -> set[str]:
        """Instances whose field writes go straight to the frame as well: when no header is ever added or
        removed and the deparse order is the parse order, the frame's layout never changes, so the deparse
        step has nothing left to do for them (headers with optional groups keep the copy-back path)."""
        bodies = [self.prog.control, *(a.body for a in self.prog.user_actions.values())]
        if any(isinstance(x, ir.SetValid) for body in bodies for x in ir.walk_stmts(body)):
            return set()
        if not self.identity_ok():
            return set()
        return {n for n, iv in self.insts.items() if not iv.stack and not iv.is_option and not iv.groups}

    def checksums(self) -> list[str]:
        """The requested checksum updates, on the header buffers. When no two requests are for the same header
        the order they were made in cannot change a result (each update writes only its own header's checksum
        field, and no update sums another's checksum field), so each request is one flag and the updates run
        in a fixed order; otherwise they run in request order, as the spec states."""
        blocks: list[tuple[int, str, list[str]]] = []
        for (name, pseudo), i in self.ck_ids.items():
            out: list[str] = []
            inst = self.prog.instances[name]
            iv = self.insts[name]
            cs = inst.type.checksum
            if cs is None or inst.is_stack:
                raise Unsupported(f"update_checksum({name})")
            bitoff, _ = self.field_pos(inst, cs.field)
            if bitoff % 8:
                raise Unsupported("a checksum field that is not byte aligned")
            fo = bitoff // 8
            if cs.kind == "ipv4_header":
                # computed on the header buffer before deparse (for an aliased header that is the frame);
                # the checksum field's two bytes are left out of the sum
                h = f"c->h_{iv.ident}"
                if not iv.groups and fo % 2 == 0 and iv.fixed_bytes % 2 == 0:
                    parts = [f"c3po_csum_add(0, {h}, {fo}u)",
                             f"c3po_csum_add(0, {h} + {fo + 2}, {iv.fixed_bytes - fo - 2}u)"]
                    if iv.varlen:
                        parts.append(f"c3po_csum_add(0, {h} + {iv.varlen_offset}, c->vl_{iv.ident})")
                    if iv.track_ck:
                        # RFC 1624 eqn 3 from the deltas the field writes recorded (no read-back of the bytes
                        # just written). The parser verified the incoming checksum, so the sum is congruent to
                        # the full recompute's mod 0xffff, and folds of positive sums are equal; only a sum that
                        # is 0 (no write, incoming 0xffff) differs, and the full sum decides the zeros
                        out.append(f"                    uint32_t v = c3po_csum_fold((uint64_t)(0xffffu ^ (((uint32_t){h}[{fo}] << 8) | "
                                   f"{h}[{fo + 1}])) + c->ckd_{iv.ident});")
                        out.append(f"                    if (v == 0u || v == 0xffffu) v = c3po_csum_fold({' + '.join(parts)});")
                        out.append("                    v = ~v & 0xffffu;")
                    else:
                        out.append(f"                    uint32_t v = ~c3po_csum_fold({' + '.join(parts)}) & 0xffffu;")
                else:
                    out.append(f"                    uint8_t tmp[{iv.max_bytes}]; uint32_t q = {iv.fixed_bytes}u, v;")
                    out.append(f"                    {copy_const('tmp', h, iv.fixed_bytes)}")
                    for g in iv.groups:
                        out.append(f"                    if (c->g_{iv.ident}_{g.name}) {{ c3po_copy(tmp + q, {h} + {g.offset}, "
                                   f"{g.size}u); q += {g.size}u; }}")
                    if iv.varlen:
                        out.append(f"                    c3po_copy(tmp + q, {h} + {iv.varlen_offset}, c->vl_{iv.ident}); "
                                   f"q += c->vl_{iv.ident};")
                    out.append(f"                    tmp[{fo}] = 0; tmp[{fo + 1}] = 0;")
                    out.append("                v = ~c3po_csum_fold(c3po_csum_add(0, tmp, q)) & 0xffffu;")
                out.append(f"                    {h}[{fo}] = (uint8_t)(v >> 8); {h}[{fo + 1}] = (uint8_t)v;{self.ck_mark(iv)}")
            else:
                words = [(f"c->o_{self.insts[w].ident}", f"c->h_{self.insts[w].ident}", wo)
                         for w, wo in self.l4_words(name, pseudo)]
                out.append(f"                    uint32_t hc = (uint32_t)c3po_ld(c->h_{iv.ident}, {fo}, 2), sum, m0, m1;")
                if cs.zero_means_none:
                    out.append("                if (hc != 0) {")
                out.append("                sum = (~hc) & 0xffffu;")
                for ob, nb, wo in words:
                    n = min(2, iv.fixed_bytes - wo) if ob.endswith(iv.ident) else 2
                    out.append(f"                    m0 = (uint32_t)c3po_ld({ob}, {wo}, {n}); m1 = (uint32_t)c3po_ld({nb}, "
                               f"{wo}, {n});")
                    if n == 1:
                        out.append("                m0 <<= 8; m1 <<= 8;")
                    out.append("                if (m0 != m1) sum += ((~m0) & 0xffffu) + m1;")
                out.append("                hc = (~c3po_csum_fold(sum)) & 0xffffu;")
                if cs.zero_means_none:
                    out.append("                if (hc == 0) hc = 0xffffu;")
                out.append(f"                    c->h_{iv.ident}[{fo}] = (uint8_t)(hc >> 8); c->h_{iv.ident}[{fo + 1}] = (uint8_t)hc;"
                           f"{self.ck_mark(iv)}")
                if cs.zero_means_none:
                    out.append("                }")
            blocks.append((i, iv.ident, [line.strip() for line in out]))
        p = "        "
        if not blocks:
            return []
        if self.ck_flags:
            lines = [f"{p}/* update_checksum requests, on the header buffers */"]
            for i, ident, body in blocks:
                lines.append(f"{p}if (c->ck_{i} && c->v_{ident}) {{ /* update_checksum({self.ck_names[i]}) */")
                lines += [f"{p}    {line}" for line in body]
                lines.append(f"{p}}}")
            return lines
        lines = [f"{p}/* update_checksum requests, in the order they were made, on the header buffers */",
                 f"{p}for (k = 0; k < c->n_ck; k++) {{",
                 f"{p}    switch (c->ck_order[k]) {{"]
        for i, ident, body in blocks:
            lines.append(f"{p}    case {i}: if (c->v_{ident}) {{ /* update_checksum({self.ck_names[i]}) */")
            lines += [f"{p}        {line}" for line in body]
            lines.append(f"{p}    }} break;")
        return [*lines, f"{p}    default:", f"{p}        break;", f"{p}    }}", f"{p}}}"]

    # -- the per-packet context -------------------------------------------------------------------------------

    def decide(self) -> None:
        """What the packet path keeps (after the layout and the write-through choice): see liveness.py. The
        members the code does not read are not declared at all, so a read the analysis missed fails the
        build instead of reading an unset member."""
        lv = self.lv = analyse(self.prog)
        self.identity = self.identity_ok()
        self.full_deparse = not self.identity or lv.restructures
        self.track_structural = self.identity and lv.restructures
        if self.identity:
            self.write_back = {n for n in lv.written
                               if not (self.insts[n].alias or self.insts[n].stack or self.insts[n].is_option)}
        if self.full_deparse:
            lv.valid_read |= set(self.prog.deparse)
        verified = {v for st in self.prog.parser.states.values() for v in st.verify}
        self.keep_pos = self.write_back | verified
        self.keep_len = {v for v in verified if not self.verify_fast(self.insts[v])}
        checksummed = {name for name, _ in self.ck_ids} | {pseudo for _, pseudo in self.ck_ids if pseudo}
        parents = {i.tlv_parent for i in self.prog.instances.values() if i.tlv_parent}
        deparsed = set(self.prog.deparse) if self.full_deparse else set()
        # a header's own groups and varlen length are read from its buffer while it is extracted; copied headers
        # are kept (the deparse reads them), an aliased one is a pointer into the frame nothing may read, an
        # option's data is copied only if a field of it is read
        self.keep_buf = (lv.fields_read | checksummed | parents | deparsed | self.write_back
                         | {n for n, iv in self.insts.items()
                            if iv.groups or iv.varlen or iv.stack or not (iv.alias or iv.is_option)})
        self.keep_vl = {n for n, iv in self.insts.items() if iv.varlen and (iv.stack or n in (
            checksummed | parents | deparsed | verified))}
        self.ck_flags = len({name for name, _ in self.ck_ids}) == len(self.ck_ids)
        self.ck_names = {i: name for (name, _), i in self.ck_ids.items()}
        std = {e.name for e in exprs_of(self.prog) if isinstance(e, ir.StdRef)}
        if any(t.counters for t in self.prog.tables.values()) or any(
                isinstance(s, ir.Count) for body in bodies(self.prog) for s in ir.walk_stmts(body)):
            std.add("packet_length")
        self.std_used = std

    def ctx_fields(self) -> list[str]:
        """The context's member declarations (a blank line after each header's)."""
        out: list[str] = []
        for iv in self.insts.values():
            n = iv.ident
            if iv.stack:
                out += [f"uint8_t h_{n}[{iv.stack}][{max(iv.max_bytes, 1)}];", f"bool v_{n}[{iv.stack}];",
                        f"uint32_t n_{n};"]
                if iv.varlen:
                    out.append(f"uint16_t vl_{n}[{iv.stack}]; /* each element's variable-length tail */")
                out.append("")
                continue
            if iv.name not in self.keep_buf:
                pass
            elif iv.alias:
                out.append(f"uint8_t *h_{n}; /* where it was parsed: the frame's layout never changes */")
            else:
                out.append(f"uint8_t h_{n}[{max(iv.max_bytes, 1)}];")
            if iv.name in self.lv.valid_read:
                out.append(f"bool v_{n};")
            out += [f"bool g_{n}_{g.name};" for g in iv.groups]
            if iv.name in self.keep_vl:
                out.append(f"uint16_t vl_{n};")
            if iv.name in self.keep_pos:
                out.append(f"uint32_t po_{n}; /* where it was parsed */")
            if iv.name in self.keep_len:
                out.append(f"uint32_t pl_{n}; /* its length there */")
            if iv.name in self.write_back:
                out.append(f"bool d_{n}; /* a field was written: write the header back */")
            if iv.keep_original:
                out.append(f"uint8_t o_{n}[{iv.fixed_bytes}];")
            if iv.track_ck:
                out.append(f"uint64_t ckd_{n}; /* RFC 1624 sum of (~old + new) over the header words written */")
            out.append("")
        out += [f"{ctype(w)} m_{name};" for name, w in self.prog.metadata.items()]
        out += [f"uint32_t std_{name};" for name in sorted(self.std_used)]
        out.append("uint32_t verdict;")
        if ir.Verdict.FORWARD.value in self.lv.verdicts:
            out.append("uint16_t port;")
        if self.ck_ids and self.ck_flags:
            out.append(f"bool {', '.join(f'ck_{i}' for i in self.ck_names)}; /* update_checksum requested */")
        elif self.ck_ids:
            out += [f"uint8_t ck_req[{len(self.ck_ids)}], ck_order[{len(self.ck_ids)}];", "uint32_t n_ck;"]
        if self.track_structural:
            out.append("bool structural; /* a header was added or removed, or a stack element written: full deparse */")
        while out and not out[-1]:
            out.pop()
        return [f"    {line}" if line else "" for line in out]

    def reset_lines(self) -> list[str]:
        """The context's state before parsing: what parsing and the control may read before writing. A header's
        buffer, varlen length, groups and parse position are read only while it is valid, and extracting it
        writes them, so they are not cleared."""
        out: list[str] = []
        for iv in self.insts.values():
            n = iv.ident
            if iv.stack:
                out.append(" ".join(f"c->v_{n}[{i}] = false;" for i in range(iv.stack)) + f" c->n_{n} = 0;")
            elif iv.name in self.lv.valid_read:
                out.append(f"c->v_{n} = false;")
            if iv.name in self.write_back:
                out.append(f"c->d_{n} = false;")
            if iv.track_ck:
                out.append(f"c->ckd_{n} = 0;")
        out += [f"c->m_{name} = 0;" for name in self.prog.metadata if name in self.lv.meta_reset]
        if self.lv.verdict_reset:
            out.append(f"c->verdict = {self.upper}_{self.prog.default_verdict.upper()};")
        if self.lv.port_reset and ir.Verdict.FORWARD.value in self.lv.verdicts:
            out.append("c->port = 0;")
        if self.ck_ids and self.ck_flags:
            out.append(" ".join(f"c->ck_{i} = false;" for i in self.ck_names))
        elif self.ck_ids:
            out.append(" ".join(f"c->ck_req[{i}] = 0;" for i in self.ck_names) + " c->n_ck = 0;")
        if self.track_structural:
            out.append("c->structural = false;")
        return [f"    {line}" for line in out] or ["    (void)c;"]

    def start_lines(self) -> list[str]:
        values = {"ingress_port": "in_port & 0xffffu", "packet_length": "n"}
        return [f"    c->std_{name} = {values[name]};" for name in sorted(self.std_used)]

    def finish_lines(self) -> list[str]:
        """After the control: checksum updates and deparse, unless the packet is dropped; then the port."""
        work = [*self.checksums(), *self.deparse()]
        out: list[str] = []
        if work:
            out.append(f"    if (c->verdict != {self.upper}_DROP) {{")
            if self.ck_ids and not self.ck_flags:
                out.append("        uint32_t k;")
            out += [*work, "    }"]
        if self.full_deparse:
            out.append("done:")  # the general deparser's oversize drop
        # the egress port of the verdicts this program can give (the others report 0)
        port = "0u"
        if ir.Verdict.REFLECT.value in self.lv.verdicts:
            port = f"(c->verdict == {self.upper}_REFLECT ? (in_port & 0xffffu) : {port})"
        if ir.Verdict.FORWARD.value in self.lv.verdicts:
            port = f"(c->verdict == {self.upper}_FORWARD ? c->port : {port})"
        out.append(f"    *out_port = {port};")
        return out

    # -- whole program ---------------------------------------------------------------------------------------

    def view(self) -> ProgramView:
        prog = self.prog
        self.upper = prog.name.upper()
        self.layout()
        self.write_through = self.compute_write_through()
        for name in self.write_through:
            self.insts[name].alias = True
        for name in self.compute_track_ck():
            self.insts[name].track_ck = True
        self.decide()
        self.action_views: dict[str, ActionView] = {}
        for i, a in enumerate(prog.actions.values()):
            params = []
            off = 0
            for prm in a.params:
                params.append(ParamView(prm.name, prm.width, ctype(prm.width), nbytes(prm.width), off))
                off += nbytes(prm.width)
            self.action_views[a.name] = ActionView(a.name, i, params, a.builtin, off)
        self.build_tables()
        parser_lines, steps = self.parser()
        control = self.stmts(prog.control, 1)
        funcs = []
        for a in prog.user_actions.values():
            av = self.action_views[a.name]
            funcs.append((av, self.stmts(a.body, 1)))
        finish = self.finish_lines()
        hash_funcs = [self.hash_func(i, h) for i, h in enumerate(self.hash_sites)]
        on_err = prog.parser.on_error
        errs = [(ERR_CODES[k], on_err.get(k, on_err.get("default", "drop"))) for k in ir.ERROR_KINDS]
        meta = [(n, w, ctype(w)) for n, w in prog.metadata.items()]
        counters = [CounterView(c.name, i, c.size) for i, c in enumerate(prog.counters.values())]
        regs = [RegisterView(r.name, i, r.width, r.size, ctype(r.width), nbytes(r.width))
                for i, r in enumerate(prog.registers.values())]
        src = ", ".join(comment_text(Path(f).name) for f in prog.files[:1])
        return ProgramView(prog.name, self.upper, src, list(self.insts.values()), meta,
                           list(self.action_views.values()), list(self.table_views.values()), counters, regs,
                           parser_lines, control, funcs, self.ctx_fields(), self.reset_lines(), self.start_lines(),
                           finish, hash_funcs, self.parse_loop(steps), errs, prog.default_verdict)

    def hash_func(self, i: int, h: ir.Hash) -> list[str]:
        params = ", ".join(f"{vtype(a.width)} x{j}" for j, a in enumerate(h.args))
        total = sum(nbytes(a.width) for a in h.args)
        lines = [f"static inline uint32_t hash_{i}({params}) {{", f"    uint8_t b[{max(total, 1)}];"]
        off = 0
        for j, a in enumerate(h.args):
            fn = "c3po_st128" if a.width > 64 else "c3po_st"
            lines.append(f"    {fn}(b, {off}, {nbytes(a.width)}, x{j});")
            off += nbytes(a.width)
        lines.append(f"    return c3po_{h.algorithm}(b, {total}u);")
        lines.append("}")
        return lines


def match_bytes(t: ir.Table, match: list[KeyElem]) -> bytes:
    """The control-plane wire encoding of one entry's match (documented in the generated header)."""
    out = bytearray()
    for k, m in zip(t.keys, match, strict=True):
        nb = nbytes(k.width)
        full = (1 << k.width) - 1
        kind, a, b = m.kind, m.a, m.b
        if k.kind == "exact":
            out += (a & full).to_bytes(nb, "big")
        elif k.kind == "lpm":
            plen = 0 if kind == "any" else (b if kind == "prefix" else k.width)
            out += ((a & full) if kind != "any" else 0).to_bytes(nb, "big") + bytes([min(plen, 255)])
        elif k.kind == "ternary":
            if kind == "any":
                a, b = 0, 0
            elif kind == "value":
                b = full
            out += (a & full).to_bytes(nb, "big") + (b & full).to_bytes(nb, "big")
        else:
            if kind == "any":
                a, b = 0, full
            elif kind == "value":
                b = a
            out += min(a, full).to_bytes(nb, "big") + min(b, full).to_bytes(nb, "big")
    return bytes(out)


def program_view(prog: ir.Program) -> ProgramView:
    return Emitter(prog).view()


__all__ = ["Emitter", "ProgramView", "Unsupported", "mask_expr", "program_view"]
