"""From schema-valid YAML documents to the typed IR.

One `Lowerer` walks the merged spec, resolving every name and width, and collects every problem it meets
rather than stopping at the first, so a user sees all their mistakes in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import networkx as nx

from . import ir
from .expr import (
    MAX_LITERAL_BITS,
    Const,
    Expr,
    ExprSyntaxError,
    FieldRef,
    KeyElem,
    MetaRef,
    RawAssign,
    RawCall,
    RegRead,
    StdRef,
    parse_action_call,
    parse_expression,
    parse_keyset,
    parse_match_value,
    parse_statement,
)
from .matches import MatchValueError, canonical_match
from .names import ident_problem
from .problems import Loc, Problem, did_you_mean, duplicate, error, suggest, undefined
from .typecheck import Resolver, Scope, TypeProblem, coerce
from .yaml_source import PathKey, Source

TERMINAL_STATES = ("accept", "reject")
# docs/spec-reference.md, "Limits": generous for any real protocol stack, and far below what the stages that walk
# the parse graph (and the reference interpreter's per-packet bound of 4096 visited states) can take.
MAX_PARSER_STATES = 1024
# Sizes (section 13): no stage unrolls a table, counter or register per element, but the targets allocate them
# (kernel maps, BMv2 arrays, the NIC's state struct); a header stack is unrolled by every parser generator and by
# vector generation (states x fill levels), which stays within seconds at 64 (at 256 it takes 20 s).
MAX_STACK_DEPTH = 64
MAX_STATE_ELEMENTS = 1 << 20  # counter and register elements
MAX_TABLE_SIZE = 1 << 20
MAX_PRIORITY = (1 << 31) - 1  # an int32 in P4Runtime and the generated C; the vector files' limit too
VERDICT_STATEMENTS = {"drop": ir.Verdict.DROP, "to_host": ir.Verdict.TO_HOST, "reflect": ir.Verdict.REFLECT}


class _Abort(Exception):
    """Stops lowering one node after its problem was recorded."""


class _NoStatement(_Abort):
    """A statement that lowers to nothing (`nop`): the block simply leaves it out."""


class Lowerer:
    def __init__(self, main: Source, sources: list[Source]) -> None:
        self.main = main
        self.sources = sources
        self.problems: list[Problem] = []
        self.header_types: dict[str, ir.HeaderType] = {}
        self.header_src: dict[str, tuple[Source, PathKey]] = {}
        self.instances: dict[str, ir.Instance] = {}
        self.instance_decls: dict[str, tuple[Source, PathKey]] = {}
        self.metadata: dict[str, int] = {}
        self.registers: dict[str, ir.Register] = {}
        self.counters: dict[str, ir.Counter] = {}
        self.actions: dict[str, ir.Action] = {}
        self.tables: dict[str, ir.Table] = {}
        self.used_options: set[str] = set()
        # Tables and actions already reported as badly declared: references to them are not reported again.
        self.rejected: set[str] = set()
        # The same for header types, instances ('NAME') and metadata ('meta.NAME'): poisoned names. A reference
        # to one is a follow-on of the error already reported, so it is abandoned silently (one root cause,
        # one error), instead of an 'undefined header' whose did-you-mean would point elsewhere.
        self.poisoned: set[str] = set()
        # The list item after a statement that ends inside parentheses: YAML split `[count(c, 1)]` at the comma,
        # and that item's error ("unexpected ')'") follows from the one reported, with the hint to quote.
        self.split_tail: PathKey | None = None
        self.src = main

    # -- helpers ---------------------------------------------------------------------------------------------

    def loc(self, path: PathKey, *, key: bool = False, src: Source | None = None) -> Loc:
        return (src or self.src).loc(path, key=key)

    def err(self, path: PathKey, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.problems.append(error(self.loc(path, key=key), message, hint))

    def check_ident(self, name: object, path: PathKey, *, is_field: bool = False) -> bool:
        """Report a name C or P4 cannot take; False only when the declaration cannot be lowered at all.

        A reserved or malformed name is reported once, and its declaration is still lowered: references to it
        then resolve (no follow-on 'undefined' errors) and its body is checked too. No program is ever built
        with the name, since any error stops the build.
        """
        bad = ident_problem(name, is_field=is_field)
        if bad:
            self.err(path, bad[0], bad[1], key=True)
        return isinstance(name, str)

    @contextmanager
    def using(self, src: Source) -> Iterator[None]:
        old, self.src = self.src, src
        try:
            yield
        finally:
            self.src = old

    def expr_problem(self, path: PathKey, exc: ExprSyntaxError | TypeProblem, offset: int = 0, *,
                     key: bool = False) -> None:
        """Point into the expression text; `key` when the expression is a mapping key (a table key)."""
        if isinstance(exc, TypeProblem) and exc.follow_on:
            return
        base = self.loc(path, key=key)
        pos = exc.column if isinstance(exc, ExprSyntaxError) else exc.pos
        loc = Loc(base.file, base.line, base.col + offset + pos, base.path)
        self.problems.append(error(loc, exc.message, exc.hint))

    def parse_expr(self, text: Any, path: PathKey, *, key: bool = False) -> Expr:
        if isinstance(text, bool):
            return Const(int(text), is_bool=True)
        if isinstance(text, int):
            if text.bit_length() > MAX_LITERAL_BITS:
                self.err(path, f"integer is too wide: it needs {text.bit_length()} bits, and no type is wider than "
                         f"bit<{MAX_LITERAL_BITS}>", f"the largest value is 2^{MAX_LITERAL_BITS} - 1")
                raise _Abort
            return Const(text)
        if not isinstance(text, str):
            self.err(path, "expected an expression string", "write the expression as text, quoted if it contains ': ' or '#'")
            raise _Abort
        try:
            return parse_expression(text)
        except ExprSyntaxError as exc:
            self.expr_problem(path, _flow_hint(exc, text), key=key)
            raise _Abort from None

    def resolve(self, fn: Any, path: PathKey, *args: Any, offset: int = 0, key: bool = False) -> Any:
        try:
            return fn(*args)
        except TypeProblem as exc:
            self.expr_problem(path, exc, offset, key=key)
            raise _Abort from None

    def scope(self, **kw: Any) -> Scope:
        return Scope(self.get_instance, lambda: sorted(n for n in {*self.instances, *self.header_types}
                                                         if "." not in n and n not in self.poisoned),
                     self.metadata, self.registers, poisoned=frozenset(self.poisoned), **kw)

    # -- instances ---------------------------------------------------------------------------------------------

    def get_instance(self, name: str) -> ir.Instance | None:
        """Instances are created on first reference: each header type has an implicit one of its own name.
        A poisoned name has none (its declaration failed): None, and the caller stays silent about it."""
        if name.partition(".")[0] in self.poisoned:
            return None
        if name in self.instances and "." not in name:
            return self.instances[name]
        if "." in name:
            parent, _, _ = name.partition(".")
            if self.get_instance(parent) is not None and name in self.instances:
                self.used_options.add(name)
                return self.instances[name]
            return None
        ht = self.header_types.get(name)
        if ht is None:
            return None
        return self._add_instance(ir.Instance(name, ht, loc=ht.loc))

    def _add_instance(self, inst: ir.Instance) -> ir.Instance:
        self.instances[inst.name] = inst
        vl = inst.type.varlen
        if vl and vl.tlv and not inst.is_stack:  # a stack's elements do not walk their options (section 3.3)
            for opt in vl.tlv.options:
                ht = ir.HeaderType(f"{inst.type.name}.{opt.name}", opt.fields, loc=opt.loc)
                name = f"{inst.name}.{opt.name}"
                self.instances[name] = ir.Instance(name, ht, 0, inst.name, opt, opt.loc)
        return inst

    # -- the program -------------------------------------------------------------------------------------------

    def run(self) -> ir.Program | None:
        data = self.main.data
        for src in self.sources:
            with self.using(src):
                self.lower_headers(src)
                if src is not self.main:
                    for key in src.data:
                        if key not in ("c3po", "doc", "include", "headers"):
                            self.err((key,), f"'{key}' is only allowed in the top-level program, not in an "
                                     "included file", "included files contribute 'headers' only", key=True)
        name = data.get("program")
        if name is None:
            self.err((), "the top-level spec has no 'program' name",
                     "add 'program: NAME' (a file without it is a library to include)")
            name = "program"
        else:
            self.check_ident(name, ("program",))
        self.lower_instances(data.get("instances") or {})
        self.lower_metadata(data.get("metadata") or {})
        self.lower_state(data)
        self.lower_actions(data.get("actions") or {})
        self.lower_tables(data.get("tables") or {})
        parser = self.lower_parser(data.get("parser"))
        control = self.lower_block(data.get("control") or [], ("control",), in_control=True)
        deparse = self.lower_deparse(data.get("deparse"), parser)
        default_verdict = data.get("default_verdict", "to_host")
        self.prune_unused_options()
        if any(p.severity == "error" for p in self.problems) or parser is None:
            return None
        prog = ir.Program(
            name=name, files=[s.file for s in self.sources], header_types=self.header_types,
            instances=self.instances, metadata=self.metadata, parser=parser, tables=self.tables,
            actions=self.actions, counters=self.counters, registers=self.registers, control=control,
            deparse=deparse, default_verdict=default_verdict, loc=self.main.loc(()),
        )
        return prog

    def prune_unused_options(self) -> None:
        """TLV option instances the program never reads are dropped, and their area is not walked."""
        for name in [n for n, i in self.instances.items() if i.tlv_option is not None]:
            if name not in self.used_options:
                del self.instances[name]
            else:
                parent = self.instances[name].tlv_parent
                assert parent is not None
                self.instances[parent].walk_tlv = True

    # -- headers -----------------------------------------------------------------------------------------------

    def lower_headers(self, src: Source) -> None:
        for hname, hdata in (src.data.get("headers") or {}).items():
            path: PathKey = ("headers", hname)
            if not self.check_ident(hname, path):
                continue
            if hname in self.header_types:
                first = self.header_types[hname].loc
                self.problems.append(duplicate(self.loc(path, key=True), "header", hname, first))
                continue
            try:
                self.header_types[hname] = self.lower_header(hname, hdata, path)
                self.header_src[hname] = (src, path)
            except _Abort:
                self.poisoned.add(hname)

    def lower_fields(self, data: Any, path: PathKey, seen: dict[str, Loc], whole_bytes: str | None) -> list[ir.Field]:
        fields: list[ir.Field] = []
        offset = 0
        for fname, width in (data or {}).items():
            fpath = (*path, fname)
            ok = self.check_ident(fname, fpath, is_field=True)
            if fname in seen:
                self.problems.append(duplicate(self.loc(fpath, key=True), "field", fname, seen[fname]))
                ok = False
            if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 128:
                self.err(fpath, f"field width must be 1..128 bits, not {width!r}", "write a number of bits from 1 to 128")
                ok = False
            if ok:
                seen[fname] = self.loc(fpath, key=True)
                fields.append(ir.Field(fname, width, offset, self.loc(fpath, key=True)))
                offset += width
        if whole_bytes and offset % 8:
            self.err(path, f"{whole_bytes} is {offset} bits, not a whole number of bytes",
                     f"add {8 - offset % 8} bits (e.g. a reserved field)")
        return fields

    def lower_header(self, name: str, data: dict[str, Any], path: PathKey) -> ir.HeaderType:
        seen: dict[str, Loc] = {}
        fields = self.lower_fields(data.get("fields"), (*path, "fields"), seen, f"the fixed part of '{name}'")
        ht = ir.HeaderType(name, fields, doc=data.get("doc", ""), loc=self.loc(path, key=True))
        if not fields:
            self.err((*path, "fields"), f"header '{name}' has no fields", "declare at least one field: 'fields: {NAME: WIDTH}'")
        local = Resolver(self.scope(local_header=ht))
        for gname, gdata in (data.get("optional") or {}).items():
            gpath = (*path, "optional", gname)
            if not self.check_ident(gname, gpath, is_field=True):
                continue
            try:
                when = self.resolve(local.bool_expr, (*gpath, "when"), self.parse_expr(gdata.get("when"), (*gpath, "when")))
            except _Abort:
                continue
            gfields = self.lower_fields(gdata.get("fields"), (*gpath, "fields"), seen, f"optional group '{gname}'")
            ht.groups.append(ir.OptionalGroup(gname, when, gfields, self.loc(gpath, key=True)))
        vl = data.get("varlen")
        if vl is not None:
            vpath = (*path, "varlen")
            try:
                length = self.resolve(local.any_sized, (*vpath, "length"),
                                      self.parse_expr(vl.get("length"), (*vpath, "length")), "a varlen length")
                ht.varlen = ir.VarLen(vl.get("name", "options"), length, int(vl.get("max", 0)), None,
                                      self.loc(vpath, key=True))
                if "tlv" in vl:
                    ht.varlen.tlv = self.lower_tlv(vl["tlv"], (*vpath, "tlv"), ht.varlen.max_bytes)
            except _Abort:
                pass
        cs = data.get("checksum")
        if cs is not None:
            cpath = (*path, "checksum")
            f = ht.field(cs.get("field", ""))
            if f is None:
                self.err((*cpath, "field"), f"checksum field '{cs.get('field')}' is not a field of '{name}'",
                         suggest(str(cs.get("field")), [x.name for x in ht.all_fields()]))
            elif f.width != 16 or ht.group_of(f.name) is not None:
                self.err((*cpath, "field"), "a checksum field must be a 16-bit field of the fixed part",
                         "name a 16-bit field of the header's 'fields', e.g. hdr_checksum")
            else:
                ht.checksum = ir.Checksum(f.name, cs.get("kind", "ipv4_header"),
                                          bool(cs.get("zero_means_none", False)),
                                          bool(cs.get("pseudo_header", True)), self.loc(cpath, key=True))
        return ht

    def const_value(self, value: Any, path: PathKey) -> int | None:
        """A constant written as a YAML integer or a literal string ('0x80', '10.0.0.1'); None after an error."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            elem = parse_match_value(str(value), "exact")
        except ExprSyntaxError as exc:
            self.expr_problem(path, exc)
            return None
        if elem.kind != "value":
            self.err(path, f"'{value}' is not a constant", "write a number such as 0x80")
            return None
        return elem.a

    def lower_tlv(self, data: dict[str, Any], path: PathKey, area_max: int) -> ir.Tlv:
        seen: dict[str, Loc] = {}
        if "header" in data:
            header = self.lower_fields(data["header"], (*path, "header"), seen, "the TLV option header")
            key = list(data.get("key") or [header[0].name if header else "type"])
            size_text = data.get("size")
            if size_text is None:
                self.err(path, "a TLV with a 'header' needs 'size' (the option's total bytes)",
                         "add 'size: BYTES' beside 'header'")
                raise _Abort
        else:
            tw, lw = data.get("type", 8), data.get("length", 8)
            header = [ir.Field("type", tw, 0, self.loc(path)), ir.Field("length", lw, tw, self.loc(path))]
            if (tw + lw) % 8 or tw % 8:
                self.err(path, "TLV type and length widths must make whole bytes, with the type byte aligned",
                         "use 8- or 16-bit type and length fields, e.g. type: 8, length: 8")
                raise _Abort
            unit, adjust = int(data.get("length_unit", 1)), int(data.get("length_adjust", 0))
            size_text = f"(bit<16>) length * {unit} + {adjust}" if lw <= 16 else f"length * {unit} + {adjust}"
            key = ["type"]
        names = {f.name: f.width for f in header}
        for k in key:
            if k not in names:
                self.err((*path, "key"), f"TLV key '{k}' is not a field of the option header",
                         suggest(k, names))
                raise _Abort
        res = Resolver(self.scope(local_fields=names))
        size = self.resolve(res.any_sized, (*path, "size") if "size" in data else path,
                            self.parse_expr(size_text, (*path, "size")), "a TLV size")
        singletons: dict[str, int] = {}
        for sname, value in (data.get("singletons") or {}).items():
            if self.check_ident(sname, (*path, "singletons", sname), is_field=True):
                singletons[sname] = int(value)
        if singletons and header[0].width % 8:
            self.err((*path, "singletons"), "singletons need a byte-aligned leading type field",
                     "make the type field the first field and a whole number of bytes wide")
        end = list(data.get("end") or [])
        for e in end:
            if e not in singletons:
                self.err((*path, "end"), f"'end' names '{e}', which is not a singleton", suggest(e, singletons))
        options: list[ir.TlvOption] = []
        for oname, odata in (data.get("options") or {}).items():
            opath = (*path, "options", oname)
            if not self.check_ident(oname, opath, is_field=True):
                continue
            if "match" in odata:
                match = {}
                for k, v in odata["match"].items():
                    value = self.const_value(v, (*opath, "match", str(k)))
                    if value is None:
                        continue
                    if str(k) in names and value >= 1 << names[str(k)]:
                        self.err((*opath, "match", str(k)), f"{value:#x} does not fit TLV key field '{k}' "
                                 f"(bit<{names[str(k)]}>)", f"the largest bit<{names[str(k)]}> value is {(1 << names[str(k)]) - 1:#x}")
                        continue
                    match[str(k)] = value
            elif "type" in odata:
                match = {key[0]: int(odata["type"])}
            else:
                self.err(opath, f"option '{oname}' needs 'type' or 'match'",
                         "add 'type: N', the option's type code, or 'match: {FIELD: VALUE}'")
                continue
            for k in match:
                if k not in key:
                    self.err((*opath, "match"), f"option match on '{k}', which is not a TLV key field",
                             "key fields: " + ", ".join(key))
            ofields = self.lower_fields(odata.get("fields"), (*opath, "fields"), {}, f"option '{oname}'")
            options.append(ir.TlvOption(oname, match, ofields, self.loc(opath, key=True)))
        return ir.Tlv(header, key, size, singletons, end, int(data.get("max_options", area_max)), options,
                      self.loc(path, key=True))

    # -- instances, metadata, state ----------------------------------------------------------------------------

    def lower_instances(self, data: dict[str, Any]) -> None:
        for name, decl in data.items():
            path: PathKey = ("instances", name)
            if not self.check_ident(name, path):
                continue
            tname = decl.get("type", name)
            ht = self.header_types.get(tname)
            if ht is None:
                if tname not in self.poisoned:
                    self.problems.append(undefined(self.loc((*path, "type")), "header type", tname,
                                                   self.header_types))
                self.poisoned.add(name)
                continue
            stack = int(decl.get("stack", 0))
            if stack > MAX_STACK_DEPTH:
                self.err((*path, "stack"), f"header stack '{name}' has {stack} elements, more than the limit of "
                         f"{MAX_STACK_DEPTH}", f"a stack is unrolled in every parser: use at most {MAX_STACK_DEPTH} "
                         "(docs/spec-reference.md section 13)")  # still declared: no follow-on errors
            if stack and ht.groups:
                self.err((*path, "stack"), "a header stack cannot hold headers with optional groups",
                         f"'{tname}' has optional groups ({', '.join(g.name for g in ht.groups)}): declare one "
                         f"instance per position instead (e.g. {name}_1: {{type: {tname}}}, {name}_2: "
                         f"{{type: {tname}}}), each extracted in its own state")
                self.poisoned.add(name)  # every reference to it follows from this one mistake
                continue
            self._add_instance(ir.Instance(name, ht, stack, loc=self.loc(path, key=True)))

    def lower_metadata(self, data: dict[str, Any]) -> None:
        for name, width in data.items():
            path: PathKey = ("metadata", name)
            if self.check_ident(name, path, is_field=True):
                if not isinstance(width, int) or not 1 <= width <= 128:
                    self.err(path, f"metadata width must be 1..128 bits, not {width!r}", "write a number of bits from 1 to 128")
                    self.poisoned.add(f"meta.{name}")
                    continue
                self.metadata[name] = width

    def lower_state(self, data: dict[str, Any]) -> None:
        for name, decl in (data.get("counters") or {}).items():
            if self.check_ident(name, ("counters", name)):
                self.counters[name] = ir.Counter(name, self.state_size(decl, ("counters", name), "counter"),
                                                 self.loc(("counters", name), key=True))
        for name, decl in (data.get("registers") or {}).items():
            if self.check_ident(name, ("registers", name)):
                if name in self.counters:
                    self.problems.append(duplicate(self.loc(("registers", name), key=True), "name", name,
                                                   self.counters[name].loc))
                    continue
                self.registers[name] = ir.Register(name, int(decl.get("width", 32)),
                                                   self.state_size(decl, ("registers", name), "register"),
                                                   self.loc(("registers", name), key=True))

    def state_size(self, decl: dict[str, Any], path: PathKey, kind: str) -> int:
        size = int(decl.get("size", 1))
        if size > MAX_STATE_ELEMENTS:
            self.err((*path, "size"), f"{kind} '{path[-1]}' has {size:,} elements, more than the limit of "
                     f"{MAX_STATE_ELEMENTS:,} (2^20)", "every target allocates each element; use a smaller 'size' "
                     "(docs/spec-reference.md section 13)")
        return size

    # -- statements ----------------------------------------------------------------------------------------------

    def lower_block(self, items: Any, path: PathKey, *, in_control: bool = False,
                    params: dict[str, int] | None = None) -> list[ir.Stmt]:
        return self.each_stmt(items, path, lambda item, p: self.lower_stmt(item, p, in_control, params or {}))

    def each_stmt(self, items: Any, path: PathKey, lower_one: Callable[[Any, PathKey], ir.Stmt]) -> list[ir.Stmt]:
        """A statement list, every statement lowered on its own: one bad statement does not hide the next."""
        out: list[ir.Stmt] = []
        if not isinstance(items, list):
            self.err(path, "expected a list of statements", "write a YAML list: one '- STATEMENT' per line, or [a, b]")
            return out
        for i, item in enumerate(items):
            with suppress(_Abort):
                out.append(lower_one(item, (*path, i)))
        return out

    def lower_stmt(self, item: Any, path: PathKey, in_control: bool, params: dict[str, int]) -> ir.Stmt:
        loc = self.loc(path)
        res = Resolver(self.scope(params=params))
        if isinstance(item, dict):
            if "if" in item:
                cond = self.resolve(res.bool_expr, (*path, "if"), self.parse_expr(item["if"], (*path, "if")))
                return ir.If(cond, self.lower_block(item.get("then") or [], (*path, "then"), in_control=in_control,
                                                    params=params),
                             self.lower_block(item.get("else") or [], (*path, "else"), in_control=in_control,
                                              params=params), loc=loc)
            if "apply" in item:
                if not in_control:
                    self.err(path, "tables are applied in 'control', not inside actions",
                             "apply the table in 'control' and let its actions do the work")
                    raise _Abort
                tname = item["apply"]
                table = self.tables.get(tname)
                if table is None:
                    if tname not in self.rejected:
                        self.problems.append(undefined(self.loc((*path, "apply")), "table", str(tname),
                                                       self.tables))
                    raise _Abort
                by_action: dict[str, list[ir.Stmt]] = {}
                for aname, body in (item.get("action") or {}).items():
                    if aname not in table.actions and aname != table.default.action:
                        self.problems.append(error(self.loc((*path, "action", aname), key=True),
                                                   f"table '{tname}' has no action '{aname}'",
                                                   suggest(aname, table.actions)))
                        continue
                    by_action[aname] = self.lower_block(body, (*path, "action", aname), in_control=True)
                return ir.Apply(tname, self.lower_block(item.get("hit") or [], (*path, "hit"), in_control=True),
                                self.lower_block(item.get("miss") or [], (*path, "miss"), in_control=True),
                                by_action, loc=loc)
            self.err(path, "a statement object has 'if' or 'apply'",
                     "write '- if: COND' with 'then:' (and 'else:'), or '- apply: TABLE'")
            raise _Abort
        raw = self.raw_statement(item, path, "a statement is a string such as 'drop' or 'meta.x = 1', or an if/apply "
                                 "mapping")
        if isinstance(raw, RawAssign):
            return self.lower_assign(raw, res, path, loc)
        return self.lower_call(raw, res, path, loc, in_control)

    def raw_statement(self, item: Any, path: PathKey, hint: str) -> RawAssign | RawCall:
        """A statement string parsed (not yet resolved); `hint` says what a statement is where this one stands."""
        if not isinstance(item, str):
            self.err(path, "expected a statement", hint)
            raise _Abort
        try:
            return parse_statement(item)
        except ExprSyntaxError as exc:
            if path == self.split_tail and item.count(")") > item.count("("):
                raise _Abort from None  # the rest of a statement YAML split at a comma: reported with its start
            self.expr_problem(path, _flow_hint(exc, item))
            if item.count("(") > item.count(")") and path and isinstance(path[-1], int):
                self.split_tail = (*path[:-1], path[-1] + 1)
            raise _Abort from None

    def lower_assign(self, raw: RawAssign, res: Resolver, path: PathKey, loc: Loc) -> ir.Stmt:
        target = self.resolve(res.expr, path, raw.target)
        if isinstance(target, StdRef):
            self.err(path, f"'std.{target.name}' is read-only",
                     "standard metadata is set by the target; copy it into a 'meta' field to change it")
            raise _Abort
        if isinstance(target, FieldRef):
            inst = self.instances[target.instance]
            if inst.tlv_option is not None:
                self.err(path, f"TLV option fields are read-only ('{raw.target_text}')",
                         "the options area is deparsed verbatim")
                raise _Abort
        elif not isinstance(target, MetaRef | RegRead):
            self.err(path, f"cannot assign to '{raw.target_text}'", "assign header fields, metadata or reg[i]")
            raise _Abort
        return self.assign_value(raw, res, path, loc, target)

    def assign_value(self, raw: RawAssign, res: Resolver, path: PathKey, loc: Loc,
                     target: FieldRef | MetaRef | RegRead, *, in_parser: bool = False) -> ir.Assign:
        """The assignment of `raw`'s value to a checked target: the value resolved (within a parser state's
        rules when `in_parser`) and given the target's width."""
        value = self.resolve(res.expr, path, raw.value, offset=raw.value_offset)
        if in_parser:
            self.parser_expr_ok(value, path, raw.value_offset)
        try:
            value = coerce(value, target.width, f"'{raw.target_text}'")
        except TypeProblem as exc:
            self.expr_problem(path, exc, offset=raw.value_offset)
            raise _Abort from None
        return ir.Assign(target, value, loc=loc)

    def lower_call(self, raw: RawCall, res: Resolver, path: PathKey, loc: Loc, in_control: bool) -> ir.Stmt:
        name, args = raw.name, raw.args

        def nargs(n: int, usage: str) -> None:
            if len(args) != n:
                self.err(path, f"'{name}' takes {n} argument{'s' if n != 1 else ''}", f"write '{usage}'")
                raise _Abort

        if name in VERDICT_STATEMENTS:
            nargs(0, name)
            return ir.SetVerdict(VERDICT_STATEMENTS[name], loc=loc)
        if name == "nop":
            nargs(0, "nop")
            raise _NoStatement
        if name == "forward":
            nargs(1, "forward(port)")
            port = self.resolve(res.sized, path, args[0], ir.PORT_WIDTH, "a port")
            return ir.SetVerdict(ir.Verdict.FORWARD, port, loc=loc)
        if name in ("set_valid", "set_invalid", "update_checksum"):
            if name == "update_checksum" and len(args) == 2:
                return self.lower_l4_update(args, res, path, loc)
            nargs(1, f"{name}(header)")
            valid = self.resolve(res.expr, path, _as_call("valid", args[0]))
            assert isinstance(valid, ir.Valid)
            inst = self.instances[valid.instance]
            if inst.tlv_option is not None:
                self.err(path, f"'{name}' cannot be applied to a TLV option",
                         "a TLV option is valid when the packet carries it; test it with valid(...)")
                raise _Abort
            if name == "update_checksum":
                if inst.type.checksum is None:
                    self.err(path, f"header '{inst.type.name}' declares no checksum",
                             "add 'checksum: {field: ..., kind: ...}' to the header type")
                    raise _Abort
                if inst.type.checksum.kind == "l4" and inst.type.checksum.pseudo_header:
                    self.err(path, f"'{inst.type.name}' has an L4 checksum: name the IP header of its pseudo-header",
                             f"write 'update_checksum({valid.instance}, ipv4)'")
                    raise _Abort
                return ir.UpdateChecksum(valid.instance, loc=loc)
            return ir.SetValid(valid.instance, valid.index, name == "set_valid", loc=loc)
        if name == "count":
            nargs(2, "count(counter, index)")
            cname = args[0]
            if not (isinstance(cname, ir.Expr) and hasattr(cname, "parts") and len(cname.parts) == 1):  # type: ignore[attr-defined]
                self.err(path, "count() takes a counter name first", "write count(COUNTER, INDEX), COUNTER declared in 'counters'")
                raise _Abort
            counter = str(cname.parts[0])  # type: ignore[attr-defined]
            if counter not in self.counters:
                self.problems.append(undefined(loc, "counter", counter, self.counters))
                raise _Abort
            index = self.resolve(res.any_sized, path, args[1], "a counter index")
            return ir.Count(counter, index, loc=loc)
        action = self.actions.get(name)
        if action is not None and not action.builtin:
            if not in_control:
                self.err(path, f"actions cannot call other actions ('{name}')", "inline the statements")
                raise _Abort
            nargs(len(action.params), f"{name}({', '.join(p.name for p in action.params)})")
            typed = [self.resolve(res.sized, path, a, p.width, f"parameter '{p.name}'")
                     for a, p in zip(args, action.params, strict=True)]
            return ir.CallAction(name, typed, loc=loc)
        if name in self.rejected:
            raise _Abort
        known = [*VERDICT_STATEMENTS, "forward", "set_valid", "set_invalid", "update_checksum", "count", "nop",
                 *self.user_action_names()]
        self.problems.append(error(loc, f"unknown statement '{name}'", suggest(name, known)))
        raise _Abort

    def lower_l4_update(self, args: list[Expr], res: Resolver, path: PathKey, loc: Loc) -> ir.Stmt:
        l4 = self.resolve(res.expr, path, _as_call("valid", args[0]))
        ip = self.resolve(res.expr, path, _as_call("valid", args[1]))
        assert isinstance(l4, ir.Valid) and isinstance(ip, ir.Valid)
        cs = self.instances[l4.instance].type.checksum
        if cs is None or cs.kind != "l4" or not cs.pseudo_header:
            self.err(path, f"'{l4.instance}' has no checksum over an IP pseudo-header",
                     f"update_checksum(h, ip) is for TCP/UDP/ICMPv6; write 'update_checksum({l4.instance})'")
            raise _Abort
        ip_type = self.instances[ip.instance].type
        for fname in ("src", "dst"):
            f = ip_type.field(fname)
            if f is None or f.width not in (32, 128) or f.offset % 16:
                self.err(path, f"'{ip.instance}' is not an IP header with 16-bit aligned 'src' and 'dst' fields",
                         "name the IPv4 or IPv6 header the L4 checksum covers")
                raise _Abort
        if any(f.offset % 16 or f.width % 16 for f in [cs_field for cs_field in self.instances[l4.instance].type.fields
                                                       if cs_field.name == cs.field]):
            self.err(path, "an L4 checksum field must be 16-bit aligned", "name a 16-bit field starting at an even byte offset")
            raise _Abort
        return ir.UpdateChecksum(l4.instance, ip.instance, loc=loc)

    def user_action_names(self) -> list[str]:
        return [n for n, a in self.actions.items() if not a.builtin]

    # -- actions and tables ------------------------------------------------------------------------------------

    def lower_actions(self, data: dict[str, Any]) -> None:
        for bname, bparams in ir.BUILTIN_ACTIONS.items():
            builtin_params = [ir.Param(n, w) for n, w in bparams]
            body: list[ir.Stmt]
            if bname == "forward":
                body = [ir.SetVerdict(ir.Verdict.FORWARD, ir.ParamRef("port", width=ir.PORT_WIDTH))]
            elif bname == "nop":
                body = []
            else:
                body = [ir.SetVerdict(VERDICT_STATEMENTS[bname])]
            self.actions[bname] = ir.Action(bname, builtin_params, body, builtin=True)
        for name, decl in data.items():
            path: PathKey = ("actions", name)
            if name in ir.BUILTIN_ACTIONS:
                self.err(path, f"'{name}' is a built-in action", f"rename it, e.g. 'my_{name}'", key=True)
                continue
            if not self.check_ident(name, path):
                self.rejected.add(name)
                continue
            params: dict[str, int] = {}
            for pname, width in (decl.get("params") or {}).items():
                ppath = (*path, "params", pname)
                if self.check_ident(pname, ppath, is_field=True):
                    if not isinstance(width, int) or not 1 <= width <= 128:
                        self.err(ppath, f"parameter width must be 1..128 bits, not {width!r}",
                                 "write a number of bits from 1 to 128")
                        continue
                    params[pname] = width
            self.actions[name] = ir.Action(name, [ir.Param(n, w) for n, w in params.items()], [],
                                           loc=self.loc(path, key=True))
        for name, decl in data.items():
            action = self.actions.get(name)
            if action is None or action.builtin:
                continue
            action.body = self.lower_block(decl.get("do") or [], ("actions", name, "do"),
                                           params={p.name: p.width for p in action.params})

    def lower_tables(self, data: dict[str, Any]) -> None:
        for name, decl in data.items():
            path: PathKey = ("tables", name)
            if not self.check_ident(name, path):
                self.rejected.add(name)
                continue
            if name in self.actions:
                self.problems.append(duplicate(self.loc(path, key=True), "name", name, self.actions[name].loc))
                continue
            try:
                self.tables[name] = self.lower_table(name, decl, path)
            except _Abort:
                self.rejected.add(name)

    def lower_table(self, name: str, decl: dict[str, Any], path: PathKey) -> ir.Table:
        res = Resolver(self.scope())
        keys: list[ir.TableKey] = []
        keys_ok = True  # entries are only checked against a key that resolved, not reported again
        for ktext, kind in (decl.get("key") or {}).items():
            kpath = (*path, "key", ktext)
            try:
                ref = self.resolve(res.expr, kpath, self.parse_expr(ktext, kpath, key=True), key=True)
            except _Abort:
                keys_ok = False
                continue
            if not isinstance(ref, FieldRef | MetaRef | StdRef):
                self.err(kpath, f"table key '{ktext}' must be a header field or metadata",
                         "write hdr.field or meta.x, e.g. ipv4.dst", key=True)
                continue
            if isinstance(ref, FieldRef) and ref.index == "last":
                self.err(kpath, "'.last' is only available in the parser", "index the stack with a number, e.g. vlan[0]",
                         key=True)
                continue
            keys.append(ir.TableKey(ref, kind, ktext, self.loc(kpath, key=True)))
        if sum(k.kind == "lpm" for k in keys) > 1:
            self.err((*path, "key"), f"table '{name}' has more than one lpm key", "use ternary for the others")
        actions: list[str] = []
        for i, aname in enumerate(decl.get("actions") or []):
            if aname not in self.actions:
                if aname not in self.rejected:
                    self.problems.append(undefined(self.loc((*path, "actions", i)), "action", str(aname),
                                                   self.actions))
            elif aname in actions:
                self.err((*path, "actions", i), f"action '{aname}' is listed twice", "list each action once")
            else:
                actions.append(aname)
        default = self.action_call(decl.get("default", "nop"), (*path, "default"), actions, allow_nop=True)
        size = int(decl.get("size", 1024))
        if size > MAX_TABLE_SIZE:
            self.err((*path, "size"), f"table '{name}' has size {size:,}, more than the limit of {MAX_TABLE_SIZE:,} "
                     "entries (2^20)", "every target allocates the whole table; use a smaller 'size' "
                     "(docs/spec-reference.md section 13)")
        table = ir.Table(name, keys, actions, default, size, bool(decl.get("counters", False)), [],
                         self.loc(path, key=True))
        if "impl" in decl and keys_ok:
            table.impl = self.lower_impl(table, decl["impl"], (*path, "impl"))
        for i, edata in enumerate((decl.get("entries") or []) if keys_ok else []):
            with suppress(_Abort):
                table.entries.append(self.lower_entry(table, edata, (*path, "entries", i)))
        if len(table.entries) > size:
            self.err((*path, "entries"), f"{len(table.entries)} constant entries exceed the table size {size}",
                     f"raise the table's 'size' to at least {len(table.entries)} or remove entries")
        return table

    def lower_impl(self, t: ir.Table, data: Any, path: PathKey) -> ir.TableImpl:
        """The structures each need a key shape; refused here, once, rather than by every target."""
        kind = data.get("kind") if isinstance(data, dict) else data
        nodes = int(data.get("nodes", 0)) if isinstance(data, dict) else 0
        impl = ir.TableImpl(str(kind), nodes, self.loc(path))
        kinds = {k.kind for k in t.keys}
        why = ""
        if impl.kind in ("hash", "cuckoo", "direct") and kinds - {"exact"}:
            why = f"'{impl.kind}' matches exact keys only, and '{t.name}' has {', '.join(sorted(kinds - {'exact'}))} keys"
        elif impl.kind == "direct" and (len(t.keys) != 1 or t.keys[0].width > ir.DIRECT_MAX_BITS):
            why = (f"'direct' indexes an array with one exact key of at most {ir.DIRECT_MAX_BITS} bits, and "
                   f"'{t.name}' has {len(t.keys)} key(s) of {sum(k.width for k in t.keys)} bits")
        elif impl.kind == "cuckoo" and sum(k.width for k in t.keys) > ir.CUCKOO_MAX_BITS:
            why = (f"'cuckoo' compares keys of at most {ir.CUCKOO_MAX_BITS} bits in all, and '{t.name}' has "
                   f"{sum(k.width for k in t.keys)}")
        elif impl.kind in ("lpm_trie", "multibit_trie") and (t.lpm_key is None or t.uses_priority):
            why = f"'{impl.kind}' needs an lpm key and no ternary or range keys"
        elif impl.kind == "multibit_trie" and (len(t.keys) != 1 or t.keys[0].width % 8 or
                                               not 16 <= t.keys[0].width <= 128):
            why = ("'multibit_trie' walks one lpm key of 16 to 128 bits, a whole number of bytes (a 16-bit root, "
                   "then 8 bits per level)")
        elif impl.kind in ("linear", "bit_vector") and not t.uses_priority:
            why = f"'{impl.kind}' searches priority tables, and '{t.name}' has no ternary or range key"
        elif impl.kind == "bit_vector":
            why = bit_vector_refusal(t)
        if nodes and impl.kind != "multibit_trie":
            why = "'nodes' sizes a multibit trie only"
        if why:
            self.err(path, f"table '{t.name}' cannot be built as '{impl.kind}': {why}",
                     "choose another 'impl' (or 'auto', the default: each target picks by key kind and size; "
                     "docs/spec-reference.md section 6)")
            return ir.TableImpl(loc=impl.loc)
        return impl

    def action_call(self, text: Any, path: PathKey, allowed: list[str], allow_nop: bool = False) -> ir.ActionCall:
        if not isinstance(text, str):
            self.err(path, "expected an action such as 'drop' or 'set_port(3)'",
                     "write an action's name, with its arguments in parentheses if it takes any")
            raise _Abort
        try:
            aname, args = parse_action_call(text)
        except ExprSyntaxError as exc:
            self.expr_problem(path, exc)
            raise _Abort from None
        if aname not in allowed and not (allow_nop and aname == "nop"):
            hint = did_you_mean(aname, allowed) or "list it in the table's 'actions'"
            self.err(path, f"action '{aname}' is not one of the table's actions", hint)
            raise _Abort
        action = self.actions[aname]
        if len(args) != len(action.params):
            self.err(path, f"action '{aname}' takes {len(action.params)} argument(s), {len(args)} given",
                     f"write '{aname}({', '.join(p.name for p in action.params)})'")
            raise _Abort
        values: list[int] = []
        for a, p in zip(args, action.params, strict=True):
            if not isinstance(a, Const) or a.is_bool:
                self.err(path, f"argument for '{p.name}' must be a constant",
                         "entry and default arguments are numbers, e.g. 0x1 or 5; fields are read inside the action")
                raise _Abort
            if a.value >= 1 << p.width:
                self.err(path, f"{a.value:#x} does not fit parameter '{p.name}' (bit<{p.width}>)",
                         f"the largest bit<{p.width}> value is {(1 << p.width) - 1:#x}")
                raise _Abort
            values.append(a.value)
        return ir.ActionCall(aname, values, self.loc(path))

    def lower_entry(self, table: ir.Table, data: dict[str, Any], path: PathKey) -> ir.Entry:
        by_text = {k.text: k for k in table.keys}
        given = data.get("match") or {}
        for ktext in given:
            if ktext not in by_text:
                self.problems.append(undefined(self.loc((*path, "match", ktext), key=True), "table key",
                                               str(ktext), by_text))
                raise _Abort
        match: list[KeyElem] = []
        for k in table.keys:
            mpath = (*path, "match", k.text)
            if k.text not in given:
                if k.kind == "exact":
                    self.err((*path, "match"), f"exact key '{k.text}' needs a value",
                             f"add '{k.text}: VALUE' to the entry's match; only lpm, ternary and range keys may be left out")
                    raise _Abort
                match.append(KeyElem("any"))
                continue
            match.append(self.match_value(given[k.text], k, mpath))
        action = self.action_call(data.get("action"), (*path, "action"), table.actions)
        priority = int(data.get("priority", 0))
        if not 0 <= priority <= MAX_PRIORITY:
            self.err((*path, "priority"), f"priority {priority} is out of range 0..{MAX_PRIORITY} (2^31 - 1)",
                     "priorities are 32-bit signed integers in P4Runtime and the generated C")
            raise _Abort
        return ir.Entry(match, action, priority, self.loc(path))

    def match_value(self, value: Any, key: ir.TableKey, path: PathKey) -> KeyElem:
        try:
            return canonical_match(value, key.kind, key.width, key.text)
        except MatchValueError as exc:
            if exc.column is not None:
                self.expr_problem(path, ExprSyntaxError(exc.message, exc.column, exc.hint))
            else:
                self.err(path, exc.message, exc.hint)
            raise _Abort from None

    # -- parser ------------------------------------------------------------------------------------------------

    def lower_parser(self, data: dict[str, Any] | None) -> ir.Parser | None:
        if data is None:
            self.err((), "the program has no 'parser'", "add 'parser: {start: ..., states: {...}}'")
            return None
        path: PathKey = ("parser",)
        on_error = {e: "drop" for e in ir.ERROR_KINDS}
        oe = data.get("on_error", "drop")
        if isinstance(oe, str):
            on_error = {e: oe for e in ir.ERROR_KINDS}
        else:
            default = oe.get("default", "drop")
            on_error = {e: oe.get(e, default) for e in ir.ERROR_KINDS}
        states_data = data.get("states") or {}
        if len(states_data) > MAX_PARSER_STATES:
            self.err((*path, "states"), f"the parser has {len(states_data)} states, more than the limit of "
                     f"{MAX_PARSER_STATES}", "no protocol stack needs that many: merge states that only pass "
                     "through (a state may extract one header and select on several fields)", key=True)
            return None
        states: dict[str, ir.ParserState] = {}
        for sname in states_data:
            if sname in TERMINAL_STATES:
                self.err((*path, "states", sname), f"'{sname}' is a built-in terminal state",
                         "accept and reject need no definition: rename this state", key=True)
        for sname, sdata in states_data.items():
            spath = (*path, "states", sname)
            if sname in TERMINAL_STATES or not self.check_ident(sname, spath):
                continue
            with suppress(_Abort):
                states[sname] = self.lower_parser_state(sname, sdata or {}, spath, states_data)
        start = data.get("start")
        if start not in states_data:
            self.problems.append(undefined(self.loc((*path, "start")), "parser state", str(start), states_data))
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(TERMINAL_STATES)
        for st in states.values():
            graph.add_node(st.name)
            for case in st.cases:
                graph.add_edge(st.name, case.next)
            if not st.select or st.default:
                graph.add_edge(st.name, st.default)
        return ir.Parser(str(start), states, on_error, graph, self.loc(path, key=True))

    def lower_parser_state(self, name: str, data: dict[str, Any], path: PathKey,
                           all_states: dict[str, Any]) -> ir.ParserState:
        st = ir.ParserState(name, loc=self.loc(path, key=True))
        known_states = [*all_states, *TERMINAL_STATES]

        def target(value: Any, tpath: PathKey) -> str:
            if value not in known_states:
                self.problems.append(undefined(self.loc(tpath), "parser state", str(value), known_states))
                raise _Abort
            return str(value)

        if "extract" in data:
            inst = self.get_instance(str(data["extract"]))
            if inst is None:
                if str(data["extract"]) not in self.poisoned:
                    self.problems.append(undefined(self.loc((*path, "extract")), "header", str(data["extract"]),
                                                   self.scope().instance_names()))
                raise _Abort
            if inst.tlv_option is not None:
                self.err((*path, "extract"), "TLV options are extracted with their enclosing header",
                         "extract the header that declares the TLV options")
                raise _Abort
            st.extract = inst.name
        for i, vname in enumerate(data.get("verify") or []):
            inst = self.get_instance(str(vname))
            if inst is None and str(vname) in self.poisoned:
                continue
            if inst is None or inst.type.checksum is None:
                msg = (f"undefined header '{vname}'" if inst is None
                       else f"header '{inst.type.name}' declares no checksum to verify")
                self.err((*path, "verify", i), msg,
                         "verify names a header whose type declares 'checksum'" if inst is not None
                         else did_you_mean(str(vname), self.instances) or "verify names an extracted header")
            elif inst.type.checksum.kind != "ipv4_header":
                self.err((*path, "verify", i), "only header checksums (kind ipv4_header) can be verified in the "
                         "parser", "L4 checksums cover the payload; verify them in a later stage")
            elif vname != st.extract:
                self.err((*path, "verify", i), f"'{vname}' is verified in a state that does not extract it",
                         f"verify it in the state with 'extract: {vname}'")
            else:
                st.verify.append(inst.name)
        if "do" in data:
            st.do = self.lower_parser_block(data["do"], (*path, "do"))
        res = Resolver(self.scope(in_parser=True))
        if "next" in data:
            st.default = target(data["next"], (*path, "next"))
            return st
        sel = data.get("select")
        if sel is None:
            st.default = target(data.get("default", "accept"), (*path, "default"))
            return st
        sel_list = sel if isinstance(sel, list) else [sel]
        for i, s in enumerate(sel_list):
            spath = (*path, "select", i) if isinstance(sel, list) else (*path, "select")
            e = self.resolve(res.any_sized, spath, self.parse_expr(s, spath), "a select expression")
            st.select.append(e)
        st.default = target(data.get("default", "reject"), (*path, "default"))
        for key, nxt in (data.get("cases") or {}).items():
            cpath = (*path, "cases", str(key))
            with suppress(_Abort):
                st.cases.append(self.lower_case(key, nxt, cpath, st, target))
        return st

    # -- parser-state statements (`do`) -------------------------------------------------------------------------

    def lower_parser_block(self, items: Any, path: PathKey) -> list[ir.Stmt]:
        """A parser state's `do`: metadata assignments and `if`, nothing that touches the frame or the state.

        Section 11.2 promises that a parser error leaves the frame unchanged and counters and registers
        untouched; a parser may therefore only compute metadata. Everything else is refused with a hint that
        says where it goes instead (mostly: set metadata here, act on it in 'control')."""
        return self.each_stmt(items, path, self.lower_parser_stmt)

    def lower_parser_stmt(self, item: Any, path: PathKey) -> ir.Stmt:
        loc = self.loc(path)
        res = Resolver(self.scope(in_parser=True))
        if isinstance(item, dict):
            if "if" in item:
                cond = self.resolve(res.bool_expr, (*path, "if"), self.parse_expr(item["if"], (*path, "if")))
                self.parser_expr_ok(cond, (*path, "if"))
                return ir.If(cond, self.lower_parser_block(item.get("then") or [], (*path, "then")),
                             self.lower_parser_block(item.get("else") or [], (*path, "else")), loc=loc)
            if "apply" in item:
                self.err(path, "tables are applied in 'control', not in parser states",
                         "set metadata here (meta.NAME = ...) and apply the table in 'control'")
                raise _Abort
            self.err(path, "a statement object has 'if'", "write '- if: COND' with 'then:' (and 'else:')")
            raise _Abort
        raw = self.raw_statement(item, path, "a parser statement is a string such as 'meta.x = ipv4.protocol', or "
                                 "an if mapping")
        if isinstance(raw, RawAssign):
            target = self.resolve(res.expr, path, raw.target)
            if isinstance(target, FieldRef):
                self.err(path, f"a parser state cannot assign the header field '{raw.target_text}'",
                         "assign metadata here (meta.NAME = ...) and rewrite the header in 'control' or an action: "
                         "a parser error must leave the frame unchanged")
                raise _Abort
            if isinstance(target, RegRead):
                self.err(path, f"a parser state cannot write the register '{target.register}'",
                         "assign metadata here and write the register in 'control': a parser error leaves "
                         "registers untouched")
                raise _Abort
            if isinstance(target, StdRef):
                self.err(path, f"'std.{target.name}' is read-only",
                         "standard metadata is set by the target; copy it into a 'meta' field to change it")
                raise _Abort
            if not isinstance(target, MetaRef):
                self.err(path, f"cannot assign to '{raw.target_text}'", "a parser state assigns metadata: meta.NAME = ...")
                raise _Abort
            return self.assign_value(raw, res, path, loc, target, in_parser=True)
        name = raw.name
        if name == "nop" and not raw.args:
            raise _NoStatement
        if name in VERDICT_STATEMENTS or name == "forward":
            hint = ("a malformed packet goes to 'reject' (on_error picks its verdict); otherwise set metadata here "
                    "and the verdict in 'control'")
            self.err(path, f"a parser state cannot set a verdict ('{name}')", hint)
        elif name in ("set_valid", "set_invalid"):
            self.err(path, f"'{name}' is a control statement: a parser makes headers valid by extracting them",
                     f"use '{name}' in 'control' or an action")
        elif name == "update_checksum":
            self.err(path, "checksums are updated in 'control', not in parser states",
                     "check a header checksum here with 'verify: [HEADER]'; update it in 'control'")
        elif name == "count":
            self.err(path, "a parser state cannot count",
                     "set metadata here and count(...) in 'control': a parser error leaves counters untouched")
        elif name in self.actions:
            self.err(path, f"actions are called from 'control', not from parser states ('{name}')",
                     f"set metadata here and call '{name}' in 'control'")
        else:
            self.problems.append(error(loc, f"unknown statement '{name}'",
                                       "a parser state's 'do' assigns metadata ('meta.NAME = EXPR'), under 'if' "
                                       "when needed"))
        raise _Abort

    def parser_expr_ok(self, e: Expr, path: PathKey, offset: int = 0) -> None:
        """Registers, hashes and lookahead are refused in a parser state's statements: registers are state a
        parser error must leave untouched, v1model's hash is a control extern, and a lookahead belongs in a
        select (where the parser reads ahead before it decides)."""
        for sub in ir.walk_expr(e):
            if isinstance(sub, RegRead):
                self.expr_problem(path, TypeProblem(f"a parser state cannot read the register '{sub.register}'", sub.pos,
                                                    "read registers in 'control'"), offset)
                raise _Abort
            if isinstance(sub, ir.Hash):
                self.expr_problem(path, TypeProblem("hash() is only available in 'control' and actions", sub.pos,
                                                    "hash the fields in 'control'; the parser's metadata is kept "
                                                    "for it"), offset)
                raise _Abort
            if isinstance(sub, ir.Lookahead):
                self.expr_problem(path, TypeProblem("lookahead() is only available in parser selects", sub.pos,
                                                    "select on lookahead(...) directly, or extract the bytes as a "
                                                    "header and read its field"), offset)
                raise _Abort

    def lower_case(self, key: Any, nxt: Any, path: PathKey, st: ir.ParserState, target: Any) -> ir.Case:
        if isinstance(key, int):
            keyset = [KeyElem("value", key)]
        else:
            try:
                keyset = parse_keyset(str(key))
            except ExprSyntaxError as exc:
                base = self.loc(path, key=True)
                self.problems.append(error(Loc(base.file, base.line, base.col + exc.column, base.path),
                                           exc.message, exc.hint))
                raise _Abort from None
        if len(keyset) != len(st.select):
            self.err(path, f"case '{key}' has {len(keyset)} value(s) but the select has {len(st.select)}",
                     "separate tuple elements with commas, '_' for any", key=True)
            raise _Abort
        for elem, sel in zip(keyset, st.select, strict=True):
            limit = 1 << sel.width
            if elem.a >= limit or (elem.kind in ("mask", "range") and elem.b >= limit):
                big = elem.a if elem.a >= limit else elem.b
                self.err(path, f"case value {big:#x} does not fit the select's bit<{sel.width}>",
                         f"the largest bit<{sel.width}> value is {limit - 1:#x}", key=True)
                raise _Abort
            if elem.kind == "range" and elem.a > elem.b:
                self.err(path, f"empty range in case '{key}'", "write LO .. HI with LO <= HI", key=True)
                raise _Abort
        return ir.Case(keyset, target(nxt, path), self.loc(path, key=True))

    # -- deparser ----------------------------------------------------------------------------------------------

    def lower_deparse(self, data: list[str] | None, parser: ir.Parser | None) -> list[str]:
        if data is None:
            return default_deparse_order(parser, self.instances) if parser else []
        out: list[str] = []
        for i, name in enumerate(data):
            inst = self.get_instance(str(name))
            if inst is None and str(name) in self.poisoned:
                continue
            if inst is None or inst.tlv_option is not None:
                self.problems.append(undefined(self.loc(("deparse", i)), "header", str(name),
                                               self.scope().instance_names()))
            elif name in out:
                self.err(("deparse", i), f"'{name}' is listed twice in 'deparse'", "list each header once, in wire order")
            else:
                out.append(inst.name)
        return out


def _flow_hint(exc: ExprSyntaxError, text: str) -> ExprSyntaxError:
    """YAML splits `[a(1, 2)]` at the comma; say so when an expression ends with an open parenthesis."""
    # A missing ')' or ',' (the parser's general hint: "add ')' here") is most likely such a split.
    if (exc.hint is None or exc.message.startswith("expected '")) and text.count("(") > text.count(")"):
        exc.hint = ("in a YAML flow list [a, b] every comma separates items: quote an expression that contains "
                    "commas, e.g. \"count(c, 1)\"")
    return exc


def _as_call(func: str, arg: Expr) -> Expr:
    from .expr import Call

    return Call(func, [arg], pos=arg.pos)


def default_deparse_order(parser: ir.Parser, instances: dict[str, ir.Instance]) -> list[str]:
    """Instances in the order they are first extracted along the parse graph (loops condensed)."""
    cond = nx.condensation(parser.graph)
    order: list[str] = []
    members = cond.graph["mapping"]
    by_comp: dict[int, list[str]] = {}
    for state, comp in members.items():
        by_comp.setdefault(comp, []).append(state)
    for comp in nx.lexicographical_topological_sort(cond, key=lambda c: min(by_comp[c])):
        for state in sorted(by_comp[comp]):
            st = parser.states.get(state)
            if st and st.extract and st.extract not in order:
                order.append(st.extract)
    return order


def bit_vector_refusal(t: ir.Table) -> str:
    """Why a priority table cannot be a bit-vector classifier ('' when it can): its ranks fit one 64-bit word,
    its range fields index tables by value, and one image stays within ir.BITVEC_IMAGE_MAX_BYTES."""
    if t.size > ir.BITVEC_MAX_ENTRIES:
        return (f"'bit_vector' ranks at most {ir.BITVEC_MAX_ENTRIES} entries (one bit each in a 64-bit word), and "
                f"'{t.name}' has size {t.size}")
    wide = [k.text for k in t.keys if k.kind == "range" and k.width > ir.BITVEC_RANGE_MAX_BITS]
    if wide:
        return (f"'bit_vector' indexes a table by a range field's whole value, at most "
                f"{ir.BITVEC_RANGE_MAX_BITS} bits, and {wide[0]} is wider")
    words = sum((1 << k.width) if k.kind == "range" else 256 * -(-k.width // 8) for k in t.keys)
    if 8 * words > ir.BITVEC_IMAGE_MAX_BYTES:
        return (f"'bit_vector' would need {8 * words:,} bytes per image for '{t.name}', more than "
                f"{ir.BITVEC_IMAGE_MAX_BYTES:,}")
    return ""
