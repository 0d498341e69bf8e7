"""Syntax and declaration checker for generated P4-16 (v1model), standing in for p4c's front end.

p4c cannot be installed here, so this parses with a grammar transcribed from the P4-16
v1.2.x appendix and then resolves every name the way p4c's front end would: types,
fields, actions, tables, states and v1model externs.  Widths are compared only where
both sides are certain, because the point is to flag real errors, never style.

Usage: python tests/p4_grammar/check.py FILE.p4 ...   (exit status 1 when problems are found)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lark import Token, Tree

try:
    from .p4parse import P4SyntaxError, Problem, parse
    from .v1model_stub import (
        CONTEXTUAL_KEYWORDS,
        CORE_ACTIONS,
        CORE_ERRORS,
        ENUMS,
        EXTERNS,
        FUNCTIONS,
        KEYWORDS,
        MATCH_KINDS,
        STANDARD_METADATA,
        V1SWITCH,
        Method,
    )
except ImportError:  # pragma: no cover - direct script use
    sys.path.insert(0, str(Path(__file__).parent))
    from p4parse import P4SyntaxError, Problem, parse  # type: ignore[no-redef]
    from v1model_stub import (  # type: ignore[no-redef]
        CONTEXTUAL_KEYWORDS,
        CORE_ACTIONS,
        CORE_ERRORS,
        ENUMS,
        EXTERNS,
        FUNCTIONS,
        KEYWORDS,
        MATCH_KINDS,
        STANDARD_METADATA,
        V1SWITCH,
        Method,
    )

__all__ = ["Problem", "check_text"]

Node = Tree[Token]
HEADER_METHODS = {
    "isValid": "bool",
    "setValid": "void",
    "setInvalid": "void",
    "minSizeInBytes": "int",
    "minSizeInBits": "int",
}
ARITH_OPS = {"+", "-", "*", "|+|", "|-|", "/", "%"}
CMP_OPS = {"==", "!=", "<", ">", "<=", ">="}


@dataclass(frozen=True)
class Ty:
    """A P4 type as far as the checker needs it; kind "unknown" means "do not judge"."""

    kind: str
    name: str = ""
    width: int | None = None
    elem: Ty | None = None
    size: int | None = None
    args: tuple[Ty, ...] = ()

    def __str__(self) -> str:
        if self.kind in ("bit", "int", "varbit"):
            return f"{self.kind}<{self.width}>"
        if self.kind == "stack":
            return f"{self.elem}[{self.size}]"
        return self.name or self.kind


UNKNOWN = Ty("unknown")
BOOL = Ty("bool")
VOID = Ty("void")
INTLIT = Ty("intlit")
ERROR_T = Ty("error")


def bit(w: int) -> Ty:
    return Ty("bit", width=w)


@dataclass
class Sym:
    kind: str  # var, const, param, instance, action, table, state
    ty: Ty
    direction: str = ""
    params: list[tuple[str, Ty, str]] = field(default_factory=list)
    info: Node | None = None


@dataclass
class TableInfo:
    actions: list[str]
    counters: str | None


def kids(t: Node) -> list[Node | Token]:
    """Children without the TLT/TGT brackets and without a leading annotations node."""
    out = [c for c in t.children if not (isinstance(c, Token) and c.type in ("TLT", "TGT"))]
    if out and isinstance(out[0], Tree) and out[0].data == "annotations":
        out = out[1:]
    return out


def line_of(t: Node | Token) -> int:
    if isinstance(t, Token):
        return t.line or 0
    return getattr(t.meta, "line", 0) or 0


def name_of(t: Node | Token) -> str:
    if isinstance(t, Token):
        return str(t.value)
    if t.data in ("name", "non_type_name", "type_name"):
        return name_of(t.children[-1])
    raise ValueError(f"not a name: {t.data}")


def parse_int(text: str) -> tuple[int | None, int]:
    """(width or None, value) of a P4 integer literal such as 16w0x800 or 42."""
    width: int | None = None
    body = text
    for sep in ("w", "s"):
        head, found, tail = text.partition(sep)
        if found and head.isdigit() and not text.lower().startswith("0x"):
            width, body = int(head), tail
            break
    body = body.replace("_", "")
    low = body.lower()
    if low.startswith("0x"):
        value = int(low[2:], 16)
    elif low.startswith("0b"):
        value = int(low[2:], 2)
    elif low.startswith("0o"):
        value = int(low[2:], 8)
    elif low.startswith("0d"):
        value = int(low[2:], 10)
    else:
        value = int(low, 10)
    return width, value


class Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.types: dict[str, Ty] = {}
        self.fields: dict[str, dict[str, Ty]] = {}
        self.errors: set[str] = set(CORE_ERRORS)
        self.match_kinds: set[str] = set(MATCH_KINDS)
        self.enums: dict[str, tuple[str, ...]] = dict(ENUMS)
        self.globals: dict[str, Sym] = {}
        self.blocks: dict[str, tuple[str, list[tuple[str, Ty]]]] = {}  # parser/control signatures
        self.scopes: list[dict[str, Sym]] = []
        self.tables: dict[str, TableInfo] = {}
        self.in_parser = False
        self.in_action = False
        self.applied: dict[str, int] = {}  # table -> line of its apply() call site
        for name in ENUMS:
            self.types[name] = Ty("enum", name)
        for name in EXTERNS:
            self.types[name] = Ty("extern", name)
        self.types["standard_metadata_t"] = Ty("struct", "standard_metadata_t")
        self.fields["standard_metadata_t"] = {
            k: (ERROR_T if w is None else bit(w)) for k, w in STANDARD_METADATA.items()
        }
        for aname in CORE_ACTIONS:
            self.globals[aname] = Sym("action", VOID)
        for fname, meth in FUNCTIONS.items():
            self.globals[fname] = Sym(
                "function", VOID, info=None, params=[(p.name, UNKNOWN, p.direction) for p in meth.params]
            )

    # ------------------------------------------------------------ reporting
    def err(self, where: Node | Token | int, message: str) -> None:
        line = where if isinstance(where, int) else line_of(where)
        self.problems.append(Problem(line, message))

    def declare(self, scope: dict[str, Sym], name: str, sym: Sym, where: Node | Token) -> None:
        if name in scope:
            self.err(where, f"duplicate declaration of '{name}'")
        scope[name] = sym

    def check_ident(self, t: Node | Token) -> None:
        n = name_of(t)
        if n in KEYWORDS and n not in CONTEXTUAL_KEYWORDS:
            self.err(t, f"'{n}' is a P4 keyword and cannot be used as an identifier")

    def lookup(self, name: str) -> Sym | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return self.globals.get(name)

    # ------------------------------------------------------------ types
    def resolve_type(self, t: Node | Token) -> Ty:
        if isinstance(t, Token):
            return UNKNOWN
        d = t.data
        if d == "bool_type":
            return BOOL
        if d == "error_type":
            return ERROR_T
        if d == "bit1_type":
            return bit(1)
        if d in ("bit_type", "int_type", "varbit_type"):
            w = int(str(kids(t)[0]))
            if w <= 0 and d != "varbit_type":
                self.err(t, f"width must be positive, got {w}")
            return Ty(d.removesuffix("_type"), width=w)
        if d == "type_name":
            n = name_of(t)
            ty = self.types.get(n)
            if ty is None:
                self.err(t, f"unknown type '{n}'")
                return UNKNOWN
            return ty
        if d == "header_stack_type":
            base_t, size_t = kids(t)
            elem = self.resolve_type(base_t)
            size = self.const_int(size_t)
            if elem.kind not in ("header", "union", "unknown"):
                self.err(t, f"header stack element type must be a header or header_union, got {elem}")
            return Ty("stack", elem=elem, size=size)
        if d == "specialized_type":
            base_t, args_t = kids(t)
            base = self.resolve_type(base_t)
            args = tuple(self.resolve_type(a) for a in kids(args_t))  # type: ignore[arg-type]
            if base.kind == "extern":
                want = len(EXTERNS[base.name].type_params)
                if want != len(args):
                    self.err(t, f"{base.name} takes {want} type arguments, got {len(args)}")
            return Ty(base.kind, base.name, args=args)
        if d == "tuple_type":
            return Ty("tuple")
        if d == "dontcare_type":
            return UNKNOWN
        return UNKNOWN

    def const_int(self, t: Node | Token) -> int | None:
        if isinstance(t, Tree) and t.data == "integer":
            return parse_int(str(t.children[0]))[1]
        return None

    # ------------------------------------------------------------ top level
    def run(self, tree: Node) -> None:
        decls = [c for c in tree.children if isinstance(c, Tree)]
        for d in decls:
            self.top_declaration(d)

    def top_declaration(self, d: Node) -> None:
        k = d.data
        if k in ("header_type_declaration", "struct_type_declaration", "header_union_declaration"):
            c = kids(d)
            n = name_of(c[0])
            self.check_ident(c[0])
            kind = {
                "header_type_declaration": "header",
                "struct_type_declaration": "struct",
                "header_union_declaration": "union",
            }[k]
            if n in self.types:
                self.err(d, f"duplicate declaration of type '{n}'")
            self.types[n] = Ty(kind, n)
            flds: dict[str, Ty] = {}
            for f in c[1:]:
                fc = kids(f)  # type: ignore[arg-type]
                fty = self.resolve_type(fc[0])
                self.check_ident(fc[1])
                fname = name_of(fc[1])
                if fname in flds:
                    self.err(f, f"duplicate field '{fname}' in {n}")
                flds[fname] = fty
                self.check_field_type(kind, n, fname, fty, f)
            if kind == "header" and sum(1 for t in flds.values() if t.kind == "varbit") > 1:
                self.err(d, f"header {n} has more than one varbit field")
            self.fields[n] = flds
        elif k == "typedef_declaration":
            c = kids(d)
            self.check_ident(c[1])
            n = name_of(c[1])
            if n in self.types:
                self.err(d, f"duplicate declaration of type '{n}'")
            self.types[n] = self.resolve_type(c[0])
        elif k == "enum_declaration":
            c = kids(d)
            n = name_of(c[0])
            self.types[n] = Ty("enum", n)
            self.enums[n] = tuple(name_of(x) for x in kids(c[1]))  # type: ignore[arg-type]
        elif k == "error_declaration":
            for x in kids(kids(d)[0]):  # type: ignore[arg-type]
                n = name_of(x)
                self.check_ident(x)
                if n in self.errors:
                    self.err(x, f"duplicate error member '{n}'")
                self.errors.add(n)
        elif k == "match_kind_declaration":
            for x in kids(kids(d)[0]):  # type: ignore[arg-type]
                self.match_kinds.add(name_of(x))
        elif k == "constant_declaration":
            self.scopes = []
            self.constant(d, self.globals)
        elif k == "parser_declaration":
            self.parser_decl(d)
        elif k == "control_declaration":
            self.control_decl(d)
        elif k == "instantiation":
            self.top_instantiation(d)
        elif k == "action_declaration":
            self.scopes = [{}]
            self.action_decl(d, self.globals)
        else:
            self.err(d, f"unsupported top-level declaration {k}")

    def check_field_type(self, kind: str, owner: str, fname: str, fty: Ty, where: Node | Token) -> None:
        if kind == "header" and fty.kind not in ("bit", "int", "varbit", "bool", "unknown", "enum"):
            self.err(
                where, f"header {owner} field {fname} has type {fty}; header fields must be bit/int/varbit"
            )
        if kind == "union" and fty.kind not in ("header", "unknown"):
            self.err(where, f"header_union {owner} member {fname} must be a header, got {fty}")
        if kind == "struct" and fty.kind == "varbit":
            pass  # allowed by the spec

    def params(self, plist: Node) -> list[tuple[str, Ty, str]]:
        out: list[tuple[str, Ty, str]] = []
        seen: set[str] = set()
        for p in kids(plist):
            pc = kids(p)  # type: ignore[arg-type]
            direction_node = pc[0]
            direction = str(direction_node.children[0]) if direction_node.children else ""  # type: ignore[union-attr]
            ty = self.resolve_type(pc[1])
            self.check_ident(pc[2])
            n = name_of(pc[2])
            if n in seen:
                self.err(p, f"duplicate parameter '{n}'")
            seen.add(n)
            out.append((n, ty, direction))
        return out

    def enter_block_params(self, params: list[tuple[str, Ty, str]]) -> dict[str, Sym]:
        scope: dict[str, Sym] = {}
        for n, ty, direction in params:
            scope[n] = Sym("param", ty, direction)
        return scope

    # ------------------------------------------------------------ parser
    def parser_decl(self, d: Node) -> None:
        c = kids(d)
        n = name_of(c[0])
        params = self.params(c[1])  # type: ignore[arg-type]
        self.register_block(n, "parser", params, d)
        self.scopes = [self.enter_block_params(params), {}]
        self.in_parser = True
        local = self.scopes[-1]
        states = [x for x in c[2:] if isinstance(x, Tree) and x.data == "parser_state"]
        for x in c[2:]:
            if isinstance(x, Tree) and x.data != "parser_state":
                self.local_decl(x, local)
        state_names: set[str] = set()
        for s in states:
            sn_t = kids(s)[0]
            sn = name_of(sn_t)
            self.check_ident(sn_t)
            if sn in ("accept", "reject"):
                self.err(s, f"state '{sn}' is predefined and cannot be declared")
            if sn in state_names:
                self.err(s, f"duplicate state '{sn}'")
            state_names.add(sn)
        if "start" not in state_names:
            self.err(d, f"parser {n} has no start state")
        targets = state_names | {"accept", "reject"}
        for s in states:
            sc = kids(s)
            self.scopes.append({})
            for st in sc[1:-1]:
                self.parser_statement(st)  # type: ignore[arg-type]
            trans = sc[-1]
            assert isinstance(trans, Tree)
            if trans.children:  # a missing transition statement means `transition reject`
                self.transition(trans.children[0], targets)  # type: ignore[arg-type]
            self.scopes.pop()
        self.in_parser = False

    def parser_statement(self, st: Node) -> None:
        if st.data == "parser_block_statement":
            self.scopes.append({})
            for x in kids(st):
                self.parser_statement(x)  # type: ignore[arg-type]
            self.scopes.pop()
        else:
            self.statement(st)

    def transition(self, t: Node, targets: set[str]) -> None:
        if t.data == "transition_name":
            n = name_of(t.children[0])
            if n not in targets:
                self.err(t, f"transition to undeclared state '{n}'")
            return
        exprs_t, *cases = kids(t)
        exprs = [self.expr(e) for e in kids(exprs_t)]  # type: ignore[arg-type]
        for case in cases:
            ks, target = kids(case)  # type: ignore[arg-type]
            n = name_of(target)
            if n not in targets:
                self.err(case, f"select case transitions to undeclared state '{n}'")
            elems = kids(ks) if isinstance(ks, Tree) and ks.data == "tuple_keyset_expression" else [ks]
            if isinstance(ks, Tree) and ks.data in ("keyset_default", "keyset_dontcare"):
                continue
            if len(elems) != len(exprs):
                self.err(case, f"keyset has {len(elems)} components but select has {len(exprs)} expressions")
                continue
            for e_ty, k in zip(exprs, elems, strict=True):
                self.keyset(k, e_ty)  # type: ignore[arg-type]

    def keyset(self, k: Node, want: Ty) -> None:
        if k.data in ("keyset_default", "keyset_dontcare"):
            return
        parts = kids(k) if k.data in ("keyset_mask", "keyset_range") else [k]
        for p in parts:
            ty = self.expr(p)  # type: ignore[arg-type]
            self.same_width(want, ty, k, "select keyset")
            if not self.is_constant(p):  # type: ignore[arg-type]
                self.err(k, "select keyset must be a compile-time constant")

    def is_constant(self, e: Node | Token) -> bool:
        """Compile-time constant per P4-16 section 18.1: literals, constants, enum/error members, and
        operators/casts over those."""
        if isinstance(e, Token):
            return False
        if e.data in ("integer", "true", "false", "type_member", "error_member", "string"):
            return True
        if e.data in ("name_ref", "top_name_ref"):
            sym = self.lookup(name_of(e.children[0]))
            return sym is not None and sym.kind == "const"
        if e.data in (
            "binop",
            "unary",
            "cast",
            "bor_op",
            "bxor_op",
            "band_op",
            "lor_op",
            "land_op",
            "cond",
            "slice",
        ):
            return all(
                self.is_constant(c)
                for c in e.children
                if isinstance(c, Tree)
                and c.data not in ("bit_type", "int_type", "bool_type", "bit1_type", "type_name")
            )
        return False

    # ------------------------------------------------------------ control
    def control_decl(self, d: Node) -> None:
        c = kids(d)
        n = name_of(c[0])
        params = self.params(c[1])  # type: ignore[arg-type]
        self.register_block(n, "control", params, d)
        self.scopes = [self.enter_block_params(params), {}]
        local = self.scopes[-1]
        self.tables = {}
        self.applied = {}
        for x in c[2:-1]:
            self.local_decl(x, local)  # type: ignore[arg-type]
        self.block(c[-1])  # type: ignore[arg-type]

    def register_block(self, n: str, kind: str, params: list[tuple[str, Ty, str]], where: Node) -> None:
        if n in self.blocks or n in self.globals:
            self.err(where, f"duplicate declaration of '{n}'")
        self.blocks[n] = (kind, [(direction, ty) for _, ty, direction in params])
        self.types.setdefault(n, Ty(kind, n))

    def local_decl(self, x: Node, scope: dict[str, Sym]) -> None:
        k = x.data
        if k == "variable_declaration":
            c = kids(x)
            ty = self.resolve_type(c[0])
            self.check_ident(c[1])
            if len(c) > 2:
                self.assign_compat(ty, self.expr(c[2]), x)  # type: ignore[arg-type]
            self.declare(scope, name_of(c[1]), Sym("var", ty), x)
        elif k == "constant_declaration":
            self.constant(x, scope)
        elif k == "instantiation":
            c = kids(x)
            ty = self.resolve_type(c[0])
            self.check_ident(c[2])
            self.check_instantiation(ty, c[1], x)  # type: ignore[arg-type]
            self.declare(scope, name_of(c[2]), Sym("instance", ty), x)
        elif k == "action_declaration":
            self.action_decl(x, scope)
        elif k == "table_declaration":
            self.table_decl(x, scope)
        else:
            self.err(x, f"unexpected local declaration {k}")

    def constant(self, x: Node, scope: dict[str, Sym]) -> None:
        c = kids(x)
        ty = self.resolve_type(c[0])
        self.check_ident(c[1])
        self.assign_compat(ty, self.expr(c[2]), x)  # type: ignore[arg-type]
        self.declare(scope, name_of(c[1]), Sym("const", ty), x)

    def check_instantiation(self, ty: Ty, args_t: Node, where: Node) -> None:
        args = kids(args_t)
        if ty.kind != "extern":
            if ty.kind != "unknown":
                self.err(where, f"cannot instantiate {ty}")
            return
        ext = EXTERNS[ty.name]
        if len(args) != len(ext.constructor):
            self.err(where, f"{ty.name} constructor takes {len(ext.constructor)} arguments, got {len(args)}")
            return
        for p, a in zip(ext.constructor, args, strict=True):
            self.check_arg(p.ty, a, where, {})  # type: ignore[arg-type]

    def action_decl(self, x: Node, scope: dict[str, Sym]) -> None:
        c = kids(x)
        self.check_ident(c[0])
        n = name_of(c[0])
        params = self.params(c[1])  # type: ignore[arg-type]
        directions = [pdir for _, _, pdir in params]
        if "" in directions and any(d for d in directions[directions.index("") :]):
            self.err(x, f"action {n}: directionless parameters must follow all directional ones (P4-16 14.1)")
        for pn, pty, pdir in params:
            if pdir == "" and pty.kind not in ("bit", "int", "bool", "unknown", "enum", "error"):
                self.err(x, f"directionless action parameter {pn} of {n} has type {pty}")
        self.declare(scope, n, Sym("action", VOID, params=params), x)
        self.scopes.append(self.enter_block_params(params))
        self.in_action = True
        self.block(c[2])  # type: ignore[arg-type]
        self.in_action = False
        self.scopes.pop()

    def table_decl(self, x: Node, scope: dict[str, Sym]) -> None:
        c = kids(x)
        self.check_ident(c[0])
        n = name_of(c[0])
        seen_props: set[str] = set()
        actions: list[str] = []
        default: Node | None = None
        counters: str | None = None
        key_types: list[Ty] = []
        entries: Node | None = None
        for p in c[1:]:
            assert isinstance(p, Tree)
            pname = {"table_key": "key", "table_actions": "actions", "table_entries": "entries"}.get(p.data)
            if pname is None:
                pname = str(kids(p)[0])
            if pname in seen_props:
                self.err(p, f"table {n}: duplicate property '{pname}'")
            seen_props.add(pname)
            if p.data == "table_key":
                for ke in kids(p):
                    kc = kids(ke)  # type: ignore[arg-type]
                    kty = self.expr(kc[0])  # type: ignore[arg-type]
                    key_types.append(kty)
                    mk = name_of(kc[1])
                    if mk not in self.match_kinds:
                        self.err(ke, f"table {n}: unknown match kind '{mk}'")
                    if kty.kind not in ("bit", "int", "bool", "unknown", "enum", "error", "intlit"):
                        self.err(ke, f"table {n}: key of type {kty} cannot be matched")
            elif p.data == "table_actions":
                for ar in kids(p):
                    an = name_of(kids(ar)[0])  # type: ignore[arg-type]
                    sym = self.lookup(an)
                    if sym is None or sym.kind != "action":
                        self.err(ar, f"table {n}: '{an}' is not a declared action")
                    if an in actions:
                        self.err(ar, f"table {n}: action '{an}' listed twice")
                    actions.append(an)
            elif p.data == "table_entries":
                entries = p
            else:
                pc = kids(p)
                value = pc[1]
                assert isinstance(value, Tree)
                if pname in ("default_action",):
                    default = value
                elif pname == "counters":
                    counters = name_of(value.children[0]) if value.data == "name_ref" else None
                    sym = self.lookup(counters or "")
                    if sym is None or sym.ty.kind != "extern" or sym.ty.name != "direct_counter":
                        self.err(p, f"table {n}: counters must name a direct_counter instance")
                elif pname == "size":
                    if self.const_int(value) is None:
                        self.err(p, f"table {n}: size must be an integer literal")
                elif pname not in (
                    "implementation",
                    "meters",
                    "support_timeout",
                    "idle_timeout",
                    "psa_direct_counter",
                    "largest_priority_wins",
                    "priority_delta",
                ):
                    self.err(p, f"table {n}: unknown table property '{pname}'")
        if entries is not None:
            self.table_entries(n, entries, key_types, actions)
        if "actions" not in seen_props:
            self.err(x, f"table {n} has no actions property")
        if default is not None:
            callee = default.children[0] if default.data == "call" else default
            dn = name_of(callee.children[0]) if isinstance(callee, Tree) and callee.data == "name_ref" else ""
            if dn not in actions:
                self.err(default, f"table {n}: default_action '{dn}' is not in the actions list")
            sym = self.lookup(dn)
            if sym is not None and sym.kind == "action":
                given = len(kids(default.children[1])) if default.data == "call" else 0  # type: ignore[arg-type]
                if given != len(sym.params):
                    self.err(
                        default,
                        f"table {n}: default_action {dn} needs {len(sym.params)} arguments, got {given}",
                    )
        if counters is not None:
            for other, info in self.tables.items():
                if info.counters == counters:
                    # p4c bmv2 back end: "Direct counters cannot be attached to multiple tables".
                    self.err(x, f"direct_counter {counters} is attached to tables {other} and {n}")
        self.tables[n] = TableInfo(actions, counters)
        self.declare(scope, n, Sym("table", Ty("table", n)), x)

    def table_entries(self, n: str, entries: Node, key_types: list[Ty], actions: list[str]) -> None:
        for entry in kids(entries):
            ks, ar = kids(entry)[:2]  # type: ignore[arg-type]
            assert isinstance(ks, Tree) and isinstance(ar, Tree)
            elems = kids(ks) if ks.data == "tuple_keyset_expression" else [ks]
            if ks.data not in ("keyset_default", "keyset_dontcare") and len(elems) != len(key_types):
                self.err(
                    entry,
                    f"table {n}: entry has {len(elems)} key values, the table has {len(key_types)} keys",
                )
            else:
                for want, k in zip(key_types, elems, strict=False):
                    self.keyset(k, want)  # type: ignore[arg-type]
            ac = kids(ar)
            an = name_of(ac[0])
            if an not in actions:
                self.err(entry, f"table {n}: entry action '{an}' is not in the actions list")
            sym = self.lookup(an)
            if sym is not None and sym.kind == "action" and len(ac) > 1:
                given = len(kids(ac[1]))  # type: ignore[arg-type]
                if given != len(sym.params):
                    self.err(
                        entry, f"table {n}: entry action {an} needs {len(sym.params)} arguments, got {given}"
                    )

    # ------------------------------------------------------------ statements
    def block(self, b: Node) -> None:
        self.scopes.append({})
        for st in kids(b):
            self.statement(st)  # type: ignore[arg-type]
        self.scopes.pop()

    def statement(self, st: Node) -> None:
        k = st.data
        if k in ("variable_declaration", "constant_declaration", "instantiation"):
            self.local_decl(st, self.scopes[-1])
        elif k == "assignment":
            lv, rhs = kids(st)
            lty = self.lvalue(lv)  # type: ignore[arg-type]
            self.assign_compat(lty, self.expr(rhs), st)  # type: ignore[arg-type]
        elif k == "call_statement":
            lv, args = kids(st)
            self.call(lv, args, st, None)  # type: ignore[arg-type]
        elif k == "generic_call_statement":
            lv, targs, args = kids(st)
            self.call(lv, args, st, targs)  # type: ignore[arg-type]
        elif k == "conditional_statement":
            c = kids(st)
            cond = self.expr(c[0])  # type: ignore[arg-type]
            if cond.kind not in ("bool", "unknown"):
                self.err(st, f"if condition has type {cond}, expected bool")
            for s in c[1:]:
                self.scopes.append({})
                self.statement(s)  # type: ignore[arg-type]
                self.scopes.pop()
        elif k == "block_statement":
            self.block(st)
        elif k == "switch_statement":
            self.switch(st)
        elif k == "direct_application":
            target = name_of(kids(st)[0])
            if target not in self.blocks:
                self.err(st, f"'{target}' is not a declared parser or control")
        elif k in ("empty_statement", "return_statement"):
            pass
        elif k == "exit_statement":
            if self.in_parser:
                self.err(st, "exit is not allowed in a parser")
        elif k == "parser_block_statement":
            self.parser_statement(st)
        else:
            self.err(st, f"unexpected statement {k}")

    def switch(self, st: Node) -> None:
        if self.in_action:
            self.err(st, "switch statements are not allowed in actions (P4-16 section 14.1)")
        expr_t, *cases = kids(st)
        ty = self.expr(expr_t)  # type: ignore[arg-type]
        if ty.kind != "action_run":
            self.err(st, "switch expression must be table.apply().action_run")
            return
        table = self.tables.get(ty.name)
        labels: set[str] = set()
        for case in cases:
            cc = kids(case)  # type: ignore[arg-type]
            label = cc[0]
            assert isinstance(label, Tree)
            ln = "default" if label.data == "switch_default" else name_of(label.children[0])
            if ln in labels:
                self.err(case, f"duplicate switch label '{ln}'")
            labels.add(ln)
            if ln != "default" and table is not None and ln not in table.actions:
                self.err(case, f"switch label '{ln}' is not an action of table {ty.name}")
            if len(cc) > 1:
                self.block(cc[1])  # type: ignore[arg-type]

    # ------------------------------------------------------------ calls
    def call(self, callee: Node, args_t: Node, where: Node, targs: Node | None) -> Ty:
        args = kids(args_t)
        if callee.data in ("name_ref", "lv_name"):
            n = name_of(callee.children[0])
            sym = self.lookup(n)
            if sym is None:
                self.err(where, f"call of undeclared '{n}'")
                return UNKNOWN
            if sym.kind == "action":
                if self.in_parser:
                    self.err(where, f"action {n} cannot be called from a parser")
                if len(args) != len(sym.params):
                    self.err(where, f"action {n} takes {len(sym.params)} arguments, got {len(args)}")
                for (pn, pty, pdir), a in zip(sym.params, args, strict=False):
                    aty = self.expr(a)  # type: ignore[arg-type]
                    self.same_width(pty, aty, where, f"argument {pn} of {n}")
                    if pdir in ("out", "inout"):
                        self.check_writable(a, where)  # type: ignore[arg-type]
                return VOID
            if sym.kind == "function":
                if n == "verify" and not self.in_parser:
                    self.err(where, "verify can only be called in a parser (core.p4)")
                return self.extern_call(FUNCTIONS[n], args, where, {})  # type: ignore[arg-type]
            self.err(where, f"'{n}' is not callable")
            return UNKNOWN
        if callee.data in ("member", "lv_member"):
            base_t, mname_t = callee.children
            mname = name_of(mname_t)
            base = self.expr(base_t)  # type: ignore[arg-type]
            if base.kind in ("header", "union"):
                if mname not in HEADER_METHODS or (base.kind == "union" and mname != "isValid"):
                    self.err(where, f"{base} has no method {mname}")
                    return UNKNOWN
                if args:
                    self.err(where, f"{mname} takes no arguments")
                if mname in ("setValid", "setInvalid"):
                    self.check_writable(base_t, where)  # type: ignore[arg-type]
                r = HEADER_METHODS[mname]
                return BOOL if r == "bool" else (INTLIT if r == "int" else VOID)
            if base.kind == "stack":
                if mname in ("push_front", "pop_front"):
                    self.check_writable(base_t, where)  # type: ignore[arg-type]
                    if len(args) != 1:
                        self.err(where, f"{mname} takes one argument")
                    return VOID
                self.err(where, f"header stack has no method {mname}")
                return UNKNOWN
            if base.kind == "table":
                if mname != "apply" or args:
                    self.err(where, f"table {base.name} has no method {mname}({len(args)} args)")
                if self.in_action or self.in_parser:
                    self.err(where, f"table {base.name} can only be applied in a control's apply block")
                first = self.applied.setdefault(base.name, line_of(where))
                if first != line_of(where):
                    # p4c-bm2-ss: "Program cannot be implemented since it requires a cycle containing ..."
                    # (BMv2 JSON gives each table one successor set; p4lang/p4c#878, #457).
                    self.err(
                        where, f"table {base.name} is applied again (first at line {first}); BMv2 allows one"
                    )
                return Ty("apply_result", base.name)
            if base.kind == "extern":
                ext = EXTERNS[base.name]
                meth = ext.methods.get(mname)
                if meth is None:
                    self.err(where, f"{base.name} has no method {mname}")
                    return UNKNOWN
                if base.name == "packet_in" and not self.in_parser:
                    self.err(where, "packet_in methods can only be called in a parser")
                bind = dict(zip(ext.type_params, base.args, strict=False))
                if targs is not None and meth.name == "lookahead":
                    tys = [self.resolve_type(a) for a in kids(targs)]  # type: ignore[arg-type]
                    if len(tys) != 1:
                        self.err(where, "lookahead takes one type argument")
                        return UNKNOWN
                    bind["T"] = tys[0]
                    if args:
                        self.err(where, "lookahead takes no arguments")
                    return tys[0]
                if meth.name == "extract":
                    self.check_extract(args, where)  # type: ignore[arg-type]
                return self.extern_call(meth, args, where, bind)  # type: ignore[arg-type]
            if base.kind != "unknown":
                self.err(where, f"{base} has no method {mname}")
            return UNKNOWN
        self.expr(callee)
        return UNKNOWN

    def check_extract(self, args: list[Node], where: Node) -> None:
        if not args:
            return
        hty = self.expr(args[0])
        if hty.kind not in ("header", "unknown"):
            self.err(where, f"extract needs a header, got {hty}")
            return
        if hty.kind == "header":
            has_varbit = any(t.kind == "varbit" for t in self.fields.get(hty.name, {}).values())
            if has_varbit and len(args) != 2:
                self.err(where, f"header {hty.name} has a varbit field: extract needs the size argument")
            if not has_varbit and len(args) == 2:
                self.err(where, f"header {hty.name} has no varbit field: two-argument extract is invalid")
        self.check_writable(args[0], where)

    def extern_call(self, meth: Method, args: list[Node], where: Node, bind: dict[str, Ty]) -> Ty:
        if not meth.required <= len(args) <= len(meth.params):
            self.err(
                where, f"{meth.name} takes {meth.required}..{len(meth.params)} arguments, got {len(args)}"
            )
        for p, a in zip(meth.params, args, strict=False):
            self.check_arg(p.ty, a, where, bind)
            if p.direction in ("out", "inout"):
                self.check_writable(a, where)
        if meth.returns == "void":
            return VOID
        if meth.returns.startswith("bit<"):
            return bit(int(meth.returns[4:-1]))
        return bind.get(meth.returns, UNKNOWN)

    def check_arg(self, pty: str, a: Node, where: Node, bind: dict[str, Ty]) -> None:
        aty = self.expr(a)
        if pty.startswith("bit<"):
            self.same_width(bit(int(pty[4:-1])), aty, where, "argument")
        elif pty == "bool":
            if aty.kind not in ("bool", "unknown"):
                self.err(where, f"argument must be bool, got {aty}")
        elif pty == "error":
            if aty.kind not in ("error", "unknown"):
                self.err(where, f"argument must be an error, got {aty}")
        elif pty in self.types:
            want = self.types[pty]
            if aty.kind != "unknown" and (aty.kind != want.kind or aty.name != want.name):
                self.err(where, f"argument must be {pty}, got {aty}")
        elif pty in bind:
            self.same_width(bind[pty], aty, where, "argument")

    def check_writable(self, a: Node, where: Node) -> None:
        root = a
        while isinstance(root, Tree) and root.data in (
            "member",
            "index",
            "slice",
            "lv_member",
            "lv_index",
            "lv_slice",
        ):
            root = root.children[0]  # type: ignore[assignment]
        if isinstance(root, Tree) and root.data in ("name_ref", "lv_name"):
            n = name_of(root.children[0])
            sym = self.lookup(n)
            if sym is not None and (
                sym.kind == "const" or (sym.kind == "param" and sym.direction in ("in", ""))
            ):
                self.err(where, f"'{n}' is read-only here ({sym.kind} {sym.direction or 'directionless'})")
        elif isinstance(root, Tree) and root.data in ("integer", "true", "false"):
            self.err(where, "a literal cannot be written")

    # ------------------------------------------------------------ expressions
    def lvalue(self, lv: Node) -> Ty:
        self.check_writable(lv, lv)
        return self.expr(lv)

    def member_of(self, base: Ty, m: str, where: Node) -> Ty:
        if base.kind in ("struct", "header", "union"):
            flds = self.fields.get(base.name)
            if flds is None:
                return UNKNOWN
            if m in flds:
                return flds[m]
            if base.kind in ("header", "union") and m in HEADER_METHODS:
                return Ty("method")
            self.err(where, f"{base.kind} {base.name} has no field '{m}'")
            return UNKNOWN
        if base.kind == "stack":
            if m in ("next", "last"):
                if not self.in_parser:
                    self.err(where, f"stack.{m} can only be used in a parser")
                return base.elem or UNKNOWN
            if m in ("size", "lastIndex", "nextIndex"):
                if m == "lastIndex" and not self.in_parser:
                    self.err(where, "stack.lastIndex can only be used in a parser")
                return bit(32)
            if m in ("push_front", "pop_front"):
                return Ty("method")
            self.err(where, f"header stack has no member '{m}'")
            return UNKNOWN
        if base.kind == "apply_result":
            if m in ("hit", "miss"):
                return BOOL
            if m == "action_run":
                return Ty("action_run", base.name)
            self.err(where, f"table apply result has no member '{m}'")
            return UNKNOWN
        if base.kind in ("extern", "table"):
            return Ty("method")
        if base.kind != "unknown":
            self.err(where, f"{base} has no member '{m}'")
        return UNKNOWN

    def expr(self, e: Node | Token) -> Ty:
        if isinstance(e, Token):
            return UNKNOWN
        k = e.data
        if k == "integer":
            w, _value = parse_int(str(e.children[0]))
            if w is None:
                return INTLIT
            if w <= 0:
                self.err(e, "literal width must be positive")
            return bit(w)
        if k in ("true", "false"):
            return BOOL
        if k == "string":
            return Ty("string")
        if k in ("name_ref", "lv_name", "top_name_ref", "lv_top_name"):
            n = name_of(e.children[0])
            sym = self.lookup(n) if k in ("name_ref", "lv_name") else self.globals.get(n)
            if sym is None:
                self.err(e, f"undeclared identifier '{n}'")
                return UNKNOWN
            if sym.kind == "action":
                return Ty("action", n)
            return sym.ty
        if k in ("member", "lv_member"):
            base_t, m_t = e.children
            return self.member_of(self.expr(base_t), name_of(m_t), e)  # type: ignore[arg-type]
        if k in ("index", "lv_index"):
            base_t, idx_t = e.children
            base = self.expr(base_t)  # type: ignore[arg-type]
            self.expr(idx_t)  # type: ignore[arg-type]
            if base.kind == "stack":
                i = self.const_int(idx_t)  # type: ignore[arg-type]
                if i is not None and base.size is not None and i >= base.size:
                    self.err(e, f"index {i} out of bounds for stack of size {base.size}")
                return base.elem or UNKNOWN
            if base.kind != "unknown":
                self.err(e, f"cannot index a value of type {base}")
            return UNKNOWN
        if k in ("slice", "lv_slice"):
            base_t, hi_t, lo_t = e.children
            base = self.expr(base_t)  # type: ignore[arg-type]
            hi, lo = self.const_int(hi_t), self.const_int(lo_t)  # type: ignore[arg-type]
            if hi is None or lo is None:
                self.err(e, "slice bounds must be compile-time integers")
                return UNKNOWN
            if hi < lo:
                self.err(e, f"slice [{hi}:{lo}] has high < low")
                return UNKNOWN
            if base.kind in ("bit", "int") and base.width is not None and hi >= base.width:
                self.err(e, f"slice [{hi}:{lo}] out of range for {base}")
            elif base.kind not in ("bit", "int", "unknown"):
                self.err(e, f"cannot slice a value of type {base}")
            return bit(hi - lo + 1)
        if k in ("call", "generic_call"):
            c = kids(e)
            if k == "call":
                return self.call(c[0], c[1], e, None)  # type: ignore[arg-type]
            return self.call(c[0], c[2], e, c[1])  # type: ignore[arg-type]
        if k == "cast":
            ty_t, val_t = kids(e)
            ty = self.resolve_type(ty_t)
            vty = self.expr(val_t)  # type: ignore[arg-type]
            if ty.kind == "bit" and vty.kind not in ("bit", "int", "intlit", "bool", "unknown", "enum"):
                self.err(e, f"cannot cast {vty} to {ty}")
            if ty.kind == "bit" and vty.kind == "bool" and ty.width != 1:
                self.err(e, f"bool can only be cast to bit<1>, not {ty}")
            return ty
        if k == "unary":
            uop, val_t = e.children
            vty = self.expr(val_t)  # type: ignore[arg-type]
            if str(uop) == "!":
                if vty.kind not in ("bool", "unknown"):
                    self.err(e, f"'!' needs a bool operand, got {vty}")
                return BOOL
            if vty.kind == "bool":
                self.err(e, f"'{uop}' cannot be applied to bool")
            return vty
        if k in ("lor_op", "land_op"):
            for x in e.children:
                xt = self.expr(x)  # type: ignore[arg-type]
                if xt.kind not in ("bool", "unknown"):
                    self.err(e, f"logical operator needs bool operands, got {xt}")
            return BOOL
        if k in ("bor_op", "bxor_op", "band_op"):
            lt, rt = (self.expr(x) for x in e.children)  # type: ignore[arg-type]
            return self.arith(lt, rt, e, {"bor_op": "|", "bxor_op": "^", "band_op": "&"}[k])
        if k == "binop":
            l_t, op_t, r_t = e.children
            lt, rt = self.expr(l_t), self.expr(r_t)
            op = str(op_t)
            if op in CMP_OPS:
                if op in ("==", "!="):
                    if (
                        {lt.kind, rt.kind} - {"unknown", "intlit"}
                        and lt.kind != rt.kind
                        and "intlit" not in (lt.kind, rt.kind)
                        and "unknown" not in (lt.kind, rt.kind)
                    ):
                        self.err(e, f"'{op}' compares {lt} with {rt}")
                    else:
                        self.same_width(lt, rt, e, f"operands of '{op}'")
                else:
                    self.arith(lt, rt, e, op)
                return BOOL
            if op == "++":
                if lt.kind == "bit" and rt.kind == "bit" and lt.width and rt.width:
                    return bit(lt.width + rt.width)
                for side in (lt, rt):
                    if side.kind in ("bool", "intlit"):
                        self.err(e, f"'++' operand of type {side} (needs a sized bit string)")
                return UNKNOWN
            if op in ("<<", ">>"):
                if lt.kind == "bool" or rt.kind == "bool":
                    self.err(e, f"'{op}' cannot be applied to bool")
                return lt
            return self.arith(lt, rt, e, op)
        if k == "cond":
            c_t, a_t, b_t = e.children
            ct = self.expr(c_t)  # type: ignore[arg-type]
            if ct.kind not in ("bool", "unknown"):
                self.err(e, f"'?:' condition has type {ct}")
            at, bt = self.expr(a_t), self.expr(b_t)  # type: ignore[arg-type]
            if at.kind == "intlit" and bt.kind == "intlit":
                self.err(e, "'?:' with two unsized integer branches has no type")
            self.same_width(at, bt, e, "branches of '?:'")
            return at if at.kind != "intlit" else bt
        if k == "list_expression":
            for x in kids(e.children[0]):  # type: ignore[arg-type]
                self.expr(x)  # type: ignore[arg-type]
            return Ty("list")
        if k == "type_member":
            tn, m_t = e.children
            tname, m = name_of(tn), name_of(m_t)
            if tname in self.enums:
                if m not in self.enums[tname]:
                    self.err(e, f"enum {tname} has no member '{m}'")
                return Ty("enum", tname)
            self.err(e, f"'{tname}.{m}' does not name an enum member")
            return UNKNOWN
        if k == "error_member":
            m = name_of(e.children[0])
            if m not in self.errors:
                self.err(e, f"error.{m} is not declared")
            return ERROR_T
        if k == "constructor_call":
            return UNKNOWN
        self.err(e, f"unsupported expression {k}")
        return UNKNOWN

    def arith(self, lt: Ty, rt: Ty, where: Node, op: str) -> Ty:
        for side in (lt, rt):
            if side.kind in ("bool", "error", "header", "struct", "stack", "varbit"):
                self.err(where, f"'{op}' cannot be applied to {side}")
                return UNKNOWN
        self.same_width(lt, rt, where, f"operands of '{op}'")
        return lt if lt.kind != "intlit" else rt

    def same_width(self, a: Ty, b: Ty, where: Node, what: str) -> None:
        if a.kind in ("bit", "int") and b.kind in ("bit", "int"):
            if a.kind != b.kind or a.width != b.width:
                self.err(where, f"{what}: {a} vs {b} (P4 does not convert implicitly)")
        elif {a.kind, b.kind} == {"bool", "bit"}:
            self.err(where, f"{what}: {a} vs {b} (bool and bit do not convert implicitly)")

    def assign_compat(self, lt: Ty, rt: Ty, where: Node) -> None:
        if lt.kind in ("struct", "header", "union") and rt.kind in ("struct", "header", "union"):
            if (lt.kind, lt.name) != (rt.kind, rt.name):
                self.err(where, f"cannot assign {rt} to {lt}")
            return
        if lt.kind == "error" and rt.kind not in ("error", "unknown"):
            self.err(where, f"cannot assign {rt} to error")
            return
        self.same_width(lt, rt, where, "assignment")

    # ------------------------------------------------------------ package
    def top_instantiation(self, d: Node) -> None:
        c = kids(d)
        ty_t, args_t, name_t = c
        n = name_of(name_t)
        tn = name_of(ty_t) if isinstance(ty_t, Tree) and ty_t.data == "type_name" else ""
        if tn != "V1Switch":
            ty = self.resolve_type(ty_t)
            self.check_instantiation(ty, args_t, d)  # type: ignore[arg-type]
            self.declare(self.globals, n, Sym("instance", ty), d)
            return
        if n != "main":
            self.err(d, "the v1model package instance must be called main")
        args = kids(args_t)  # type: ignore[arg-type]
        if len(args) != len(V1SWITCH):
            self.err(d, f"V1Switch takes {len(V1SWITCH)} arguments, got {len(args)}")
            return
        bound: dict[str, Ty] = {}
        for (kind, shape), a in zip(V1SWITCH, args, strict=True):
            if not (isinstance(a, Tree) and a.data == "constructor_call"):
                self.err(d, "V1Switch arguments must be parser/control instantiations")
                continue
            bn = name_of(a.children[0])
            blk = self.blocks.get(bn)
            if blk is None:
                self.err(a, f"'{bn}' is not a declared parser or control")
                continue
            bkind, bparams = blk
            if bkind != kind:
                self.err(a, f"V1Switch expects a {kind} here, got {bkind} {bn}")
                continue
            if len(bparams) != len(shape):
                self.err(a, f"{bn} has {len(bparams)} parameters, V1Switch needs {len(shape)}")
                continue
            for (pdir, pty), (wdir, wty) in zip(bparams, shape, strict=True):
                if pdir != wdir:
                    self.err(a, f"{bn}: parameter direction '{pdir}' where v1model requires '{wdir}'")
                if wty in ("H", "M"):
                    prev = bound.setdefault(wty, pty)
                    if prev != pty:
                        self.err(a, f"{bn}: type {pty} differs from {prev} used for {wty} elsewhere")
                    if pty.kind != "struct" and pty.kind != "unknown":
                        self.err(a, f"{bn}: {wty} must be a struct, got {pty}")
                elif pty.name != wty:
                    self.err(a, f"{bn}: parameter type {pty} where v1model requires {wty}")


def check_text(text: str) -> list[Problem]:
    """Every problem found in a P4 program (an empty list means it passed)."""
    try:
        tree, problems = parse(text)
    except P4SyntaxError as exc:
        return [exc.problem]
    checker = Checker()
    checker.run(tree)
    return sorted([*problems, *checker.problems], key=lambda p: p.line)


def main(argv: Iterable[str]) -> int:
    status = 0
    for path in argv:
        for problem in check_text(Path(path).read_text()):
            print(f"{path}:{problem}")
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
