"""Name resolution and P4-style width checking for expressions.

`Resolver.expr()` turns a syntactic expression into a resolved one whose every node has its `width`
(`BOOL` for booleans, -1 for a literal whose width the context has not fixed yet). Errors are raised as
`TypeProblem` with the offset in the expression text, so the caller can point at the exact column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .expr import (
    BOOL,
    Binary,
    Call,
    Cast,
    Const,
    Expr,
    FieldRef,
    Hash,
    Lookahead,
    MetaRef,
    Name,
    ParamRef,
    Present,
    RegRead,
    Slice,
    StdRef,
    Unary,
    Valid,
)
from .ir import HASH_ALGORITHMS, STD_METADATA, HeaderType, Instance, Register
from .problems import did_you_mean, suggest

MAX_WIDTH = 128
_ARITH = {"+", "-", "*", "&", "|", "^"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}
_LOGIC = {"&&", "||"}


class TypeProblem(Exception):
    """`follow_on`: the name is one whose declaration was already reported as wrong (poisoned): the caller
    abandons the expression without reporting again, so one mistake gives one error."""

    def __init__(self, message: str, pos: int, hint: str | None = None, *, follow_on: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.follow_on = follow_on


@dataclass
class Scope:
    """What names mean where an expression appears."""

    instances: Callable[[str], Instance | None]
    instance_names: Callable[[], list[str]]
    metadata: dict[str, int] = field(default_factory=dict)
    registers: dict[str, Register] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    in_parser: bool = False  # allows `h.last.f` and `lookahead()`
    local_header: HeaderType | None = None  # bare field names refer to this header (varlen length, `when`)
    local_fields: dict[str, int] | None = None  # or to these (TLV option header)
    # Headers/instances and metadata whose declaration failed (already reported): references to them are
    # follow-on errors, never reported (see TypeProblem.follow_on).
    poisoned: frozenset[str] = frozenset()


def _describe(width: int) -> str:
    return "bool" if width == BOOL else "an unsized literal" if width < 0 else f"bit<{width}>"


class Resolver:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    # -- entry points ------------------------------------------------------------------------------------

    def expr(self, e: Expr) -> Expr:
        out = self._resolve(e)
        return out

    def bool_expr(self, e: Expr) -> Expr:
        out = self._resolve(e)
        if out.width != BOOL:
            raise TypeProblem(f"expected a bool condition but this is {_describe(out.width)}", e.pos,
                              "compare it, e.g. 'x != 0'")
        return out

    def sized(self, e: Expr, width: int, what: str) -> Expr:
        """Resolve and require exactly `width` bits (an unsized literal is given that width if it fits)."""
        return coerce(self._resolve(e), width, what)

    def any_sized(self, e: Expr, what: str) -> Expr:
        out = self._resolve(e)
        if out.width == BOOL:
            raise TypeProblem(f"{what} must be bit<W>, not bool", e.pos, "use a field or a bit<W> expression, not a comparison")
        if out.width < 0:
            assert isinstance(out, Const)
            out.width = max(1, out.value.bit_length())
        return out

    # -- resolution ----------------------------------------------------------------------------------------

    def _resolve(self, e: Expr) -> Expr:
        if isinstance(e, Const):
            if e.is_bool:
                e.width = BOOL
            elif e.literal_width is not None:
                e.width = e.literal_width
            else:
                e.width = -1
            return e
        if isinstance(e, Name):
            return self._name(e)
        if isinstance(e, RegRead):
            return self._register(e)
        if isinstance(e, Unary):
            return self._unary(e)
        if isinstance(e, Binary):
            return self._binary(e)
        if isinstance(e, Cast):
            if not 1 <= e.to <= MAX_WIDTH:
                raise TypeProblem(f"cast to bit<{e.to}>: widths are 1..{MAX_WIDTH}", e.pos, f"cast to bit<1> .. bit<{MAX_WIDTH}>")
            inner = self._resolve(e.operand)
            if inner.width == BOOL:
                raise TypeProblem("cannot cast a bool to bit<W>", e.pos, "use a comparison result in an if")
            if isinstance(inner, Const) and inner.width < 0:
                return Const(inner.value & ((1 << e.to) - 1), pos=e.pos, width=e.to)
            e.operand = inner
            e.width = e.to
            return e
        if isinstance(e, Slice):
            inner = self._resolve(e.operand)
            if inner.width <= 0:
                raise TypeProblem(f"cannot slice {_describe(inner.width)}", e.pos, "slice a field or cast first")
            if not (0 <= e.lo <= e.hi < inner.width):
                raise TypeProblem(f"slice [{e.hi}:{e.lo}] is outside bit<{inner.width}>", e.pos,
                                  f"use bounds with {inner.width - 1} >= hi >= lo >= 0")
            e.operand = inner
            e.width = e.hi - e.lo + 1
            return e
        if isinstance(e, Call):
            return self._call(e)
        raise TypeProblem("unexpected expression", e.pos, "this is a bug in c3po: please report it")  # pragma: no cover

    def _name(self, e: Name) -> Expr:
        parts = e.parts
        head = parts[0]
        assert isinstance(head, str)
        sc = self.scope
        if head == "meta":
            if len(parts) != 2 or not isinstance(parts[1], str):
                raise TypeProblem("metadata is referenced as 'meta.NAME'", e.pos,
                                  "name a field declared under 'metadata', e.g. meta.nexthop")
            if parts[1] not in sc.metadata:
                raise TypeProblem(f"undefined metadata field '{parts[1]}'", e.pos,
                                  suggest(parts[1], sc.metadata), follow_on=f"meta.{parts[1]}" in sc.poisoned)
            return MetaRef(parts[1], pos=e.pos, width=sc.metadata[parts[1]])
        if head == "std":
            if len(parts) != 2 or not isinstance(parts[1], str) or parts[1] not in STD_METADATA:
                name = ".".join(map(str, parts[1:]))
                raise TypeProblem(f"undefined standard metadata 'std.{name}'", e.pos,
                                  "known: " + ", ".join(f"std.{k}" for k in STD_METADATA))
            return StdRef(parts[1], pos=e.pos, width=STD_METADATA[parts[1]])
        if len(parts) == 1:
            if head in sc.params:
                return ParamRef(head, pos=e.pos, width=sc.params[head])
            if sc.local_header is not None:
                f = sc.local_header.field(head)
                if f is not None and sc.local_header.group_of(head) is None:
                    return FieldRef("", None, head, pos=e.pos, width=f.width)
                known = [x.name for x in sc.local_header.fields]
                raise TypeProblem(f"'{head}' is not a fixed field of header '{sc.local_header.name}'", e.pos,
                                  suggest(head, known))
            if sc.local_fields is not None:
                if head in sc.local_fields:
                    return FieldRef("", None, head, pos=e.pos, width=sc.local_fields[head])
                raise TypeProblem(f"'{head}' is not a field of the option header", e.pos,
                                  suggest(head, sc.local_fields))
            known = [*sc.params, "meta.…", "std.…", *sc.instance_names()]
            raise TypeProblem(f"undefined name '{head}'", e.pos, did_you_mean(head, known) or
                              "fields are written 'header.field'")
        inst = sc.instances(head)
        if inst is None and len(parts) == 2 and isinstance(parts[1], int):
            # `reg[0]` with a constant index parses like a stack element; it is a register read.
            if head in sc.registers:
                return self._register(RegRead(head, Const(parts[1], pos=e.pos), pos=e.pos))
            raise TypeProblem(f"undefined register or header stack '{head}'", e.pos,
                              suggest(head, [*sc.registers, *sc.instance_names()]), follow_on=head in sc.poisoned)
        if inst is None:
            raise self._undefined_header(head, e.pos)
        rest = parts[1:]
        index: int | str | None = None
        if inst.is_stack:
            if not rest or not (isinstance(rest[0], int) or rest[0] == "last"):
                raise TypeProblem(f"'{head}' is a header stack: index it", e.pos,
                                  f"write '{head}[0].field'" + (f" or '{head}.last.field'" if sc.in_parser else ""))
            index = rest[0]
            if index == "last" and not sc.in_parser:
                raise TypeProblem(f"'{head}.last' is only available in the parser", e.pos,
                                  f"use a constant index such as '{head}[0]'")
            if isinstance(index, int) and not 0 <= index < inst.stack:
                raise TypeProblem(f"index {index} is outside stack '{head}' of size {inst.stack}", e.pos,
                                  f"indexes of '{head}' are 0..{inst.stack - 1}")
            rest = rest[1:]
        elif rest and isinstance(rest[0], int):
            raise TypeProblem(f"'{head}' is not a header stack", e.pos, f"only a stack is indexed: write {head}.FIELD")
        if len(rest) == 2 and isinstance(rest[0], str) and isinstance(rest[1], str):
            if inst.is_stack and rest[0] in _tlv_names(inst):
                raise _stack_option(head, inst, e.pos)
            opt = sc.instances(f"{head}.{rest[0]}")
            if opt is None or opt.tlv_option is None:
                raise TypeProblem(f"'{rest[0]}' is not a TLV option of '{head}'", e.pos,
                                  suggest(rest[0], _tlv_names(inst)))
            f = opt.type.field(rest[1])
            if f is None:
                raise TypeProblem(f"option '{head}.{rest[0]}' has no field '{rest[1]}'", e.pos,
                                  suggest(rest[1], [x.name for x in opt.type.fields]))
            return FieldRef(opt.name, None, f.name, pos=e.pos, width=f.width)
        if len(rest) != 1 or not isinstance(rest[0], str):
            raise TypeProblem(f"expected '{head}.FIELD'", e.pos, "a header is read one field at a time, e.g. ipv4.ttl")
        fname = rest[0]
        f = inst.type.field(fname)
        if f is None:
            raise TypeProblem(f"header '{inst.type.name}' has no field '{fname}'", e.pos,
                              suggest(fname, [x.name for x in inst.type.all_fields()]))
        group = inst.type.group_of(fname)
        return FieldRef(inst.name, index, fname, group.name if group else None, pos=e.pos, width=f.width)

    def _undefined_header(self, head: str, pos: int) -> TypeProblem:
        return TypeProblem(f"undefined header '{head}'", pos, suggest(head, self.scope.instance_names()),
                           follow_on=head in self.scope.poisoned)

    def _register(self, e: RegRead) -> Expr:
        reg = self.scope.registers.get(e.register)
        if reg is None:
            inst = self.scope.instances(e.register)
            if inst is not None:
                raise TypeProblem(f"a header stack index must be a constant: '{e.register}[...]'", e.pos,
                                  f"write a number, e.g. {e.register}[0]")
            raise TypeProblem(f"undefined register '{e.register}'", e.pos,
                              suggest(e.register, self.scope.registers))
        e.index = self.any_sized(e.index, "a register index")
        e.width = reg.width
        return e

    def _unary(self, e: Unary) -> Expr:
        inner = self._resolve(e.operand)
        if e.op == "!":
            if inner.width != BOOL:
                raise TypeProblem(f"'!' needs a bool, not {_describe(inner.width)}", e.pos, "use '~' for bits")
            e.operand, e.width = inner, BOOL
            return e
        if inner.width == BOOL:
            raise TypeProblem(f"'{e.op}' needs bit<W>, not bool", e.pos, "use '!' for booleans")
        if inner.width < 0:
            raise TypeProblem(f"'{e.op}' on an unsized literal", e.pos, "cast it, e.g. '~(bit<8>) 1'")
        e.operand, e.width = inner, inner.width
        return e

    def _binary(self, e: Binary) -> Expr:
        left = self._resolve(e.left)
        right = self._resolve(e.right)
        if e.op in _LOGIC:
            for side in (left, right):
                if side.width != BOOL:
                    raise TypeProblem(f"'{e.op}' needs bool operands, not {_describe(side.width)}", side.pos,
                                      "compare a bit<W> value to get a bool, e.g. 'x != 0'")
            e.left, e.right, e.width = left, right, BOOL
            return e
        if BOOL in (left.width, right.width):
            if e.op in ("==", "!=") and left.width == right.width == BOOL:
                e.left, e.right, e.width = left, right, BOOL
                return e
            raise TypeProblem(f"'{e.op}' cannot mix bool and bit<W>", e.pos,
                              "compare the bit<W> side to get a bool, e.g. 'x != 0'")
        if e.op in ("<<", ">>"):
            if left.width < 0:
                if isinstance(left, Const) and isinstance(right, Const):
                    if e.op == "<<" and left.value and right.value > MAX_WIDTH:
                        raise _too_wide_constant(e.pos)  # before computing: `1 << 10**12` would fill the memory
                    v = left.value << right.value if e.op == "<<" else left.value >> right.value
                    return _unsized(v, e.pos)
                raise TypeProblem(f"cannot shift an unsized literal by a {_describe(right.width)}", e.pos,
                                  "cast the literal, e.g. '(bit<32>) 1 << n'")
            if right.width < 0:
                assert isinstance(right, Const)
                right.width = max(1, right.value.bit_length())
            e.left, e.right, e.width = left, right, left.width
            return e
        if left.width < 0 and right.width < 0:
            assert isinstance(left, Const) and isinstance(right, Const)
            return _fold(e.op, left, right, e.pos)
        if left.width < 0:
            left = coerce(left, right.width, f"the left operand of '{e.op}'")
        elif right.width < 0:
            right = coerce(right, left.width, f"the right operand of '{e.op}'")
        elif left.width != right.width:
            raise TypeProblem(
                f"width mismatch: {_describe(left.width)} {e.op} {_describe(right.width)}", e.pos,
                f"cast one side, e.g. '(bit<{max(left.width, right.width)}>) x'",
            )
        e.left, e.right = left, right
        e.width = BOOL if e.op in _COMPARE else left.width
        return e

    def _call(self, e: Call) -> Expr:
        sc = self.scope
        if e.func == "valid":
            if len(e.args) != 1 or not isinstance(e.args[0], Name):
                raise TypeProblem("valid() takes one header, e.g. 'valid(ipv4)'", e.pos,
                                  "name one header instance, or a stack element such as vlan[0]")
            inst_name, index = self._header_arg(e.args[0])
            return Valid(inst_name, index, pos=e.pos, width=BOOL)
        if e.func == "present":
            arg = e.args[0] if len(e.args) == 1 else None
            if not isinstance(arg, Name) or len(arg.parts) != 2:
                raise TypeProblem("present() takes a header's optional group, e.g. 'present(gre.key)'", e.pos,
                                  "name HEADER.GROUP, a group under the header type's 'optional'")
            inst = sc.instances(str(arg.parts[0]))
            if inst is None:
                raise self._undefined_header(str(arg.parts[0]), arg.pos)
            groups = [g.name for g in inst.type.groups]
            if arg.parts[1] not in groups:
                raise TypeProblem(f"header '{inst.type.name}' has no optional group '{arg.parts[1]}'", arg.pos,
                                  suggest(str(arg.parts[1]), groups))
            return Present(inst.name, str(arg.parts[1]), pos=e.pos, width=BOOL)
        if e.func == "hash":
            if len(e.args) < 2 or not isinstance(e.args[0], Name) or len(e.args[0].parts) != 1:
                raise TypeProblem("hash() is written 'hash(crc32, field, ...)'", e.pos,
                                  "the first argument names the algorithm, the others the fields to hash")
            algo = str(e.args[0].parts[0])
            if algo not in HASH_ALGORITHMS:
                raise TypeProblem(f"unknown hash algorithm '{algo}'", e.args[0].pos,
                                  "known: " + ", ".join(HASH_ALGORITHMS))
            args = [self.any_sized(a, "a hash operand") for a in e.args[1:]]
            return Hash(algo, args, pos=e.pos, width=HASH_ALGORITHMS[algo])
        if e.func == "lookahead":
            if not sc.in_parser:
                raise TypeProblem("lookahead() is only available in parser selects", e.pos,
                                  "extract the header in the parser and read its fields here")
            if not 1 <= len(e.args) <= 2 or not all(isinstance(a, Const) for a in e.args):
                raise TypeProblem("lookahead takes constant bits: 'lookahead(W)' or 'lookahead(OFFSET, W)'", e.pos,
                                  "W and OFFSET are numbers of bits, e.g. lookahead(16)")
            vals = [a.value for a in e.args if isinstance(a, Const)]
            offset, bits = (0, vals[0]) if len(vals) == 1 else (vals[0], vals[1])
            if not 1 <= bits <= 64:
                raise TypeProblem(f"lookahead of {bits} bits: 1..64 bits can be looked at", e.pos,
                                  "look at 64 bits or fewer: lookahead(W) or lookahead(OFFSET, W) with W <= 64")
            if offset > 512 * 8:
                raise TypeProblem("lookahead offset is beyond 512 bytes", e.pos, "look at most 4096 bits ahead")
            return Lookahead(offset, bits, pos=e.pos, width=bits)
        known = ["valid", "present", "hash"] + (["lookahead"] if sc.in_parser else [])
        raise TypeProblem(f"unknown function '{e.func}'", e.pos, suggest(e.func, known))

    def _header_arg(self, arg: Name) -> tuple[str, int | None]:
        sc = self.scope
        head = str(arg.parts[0])
        inst = sc.instances(head)
        if inst is None:
            raise self._undefined_header(head, arg.pos)
        rest = arg.parts[1:]
        if inst.is_stack:
            if rest and isinstance(rest[-1], str) and rest[-1] in _tlv_names(inst):
                raise _stack_option(head, inst, arg.pos)
            if len(rest) != 1 or not isinstance(rest[0], int):
                raise TypeProblem(f"'{head}' is a header stack: write '{head}[0]'", arg.pos,
                                  f"name one element of the stack, '{head}[0]' to '{head}[{inst.stack - 1}]'")
            if not 0 <= rest[0] < inst.stack:
                raise TypeProblem(f"index {rest[0]} is outside stack '{head}' of size {inst.stack}", arg.pos,
                                  f"indexes of '{head}' are 0..{inst.stack - 1}")
            return inst.name, rest[0]
        if len(rest) == 1 and isinstance(rest[0], str):
            opt = sc.instances(f"{head}.{rest[0]}")
            if opt is None:
                raise TypeProblem(f"'{rest[0]}' is not a TLV option of '{head}'", arg.pos,
                                  suggest(rest[0], _tlv_names(inst)))
            return opt.name, None
        if rest and isinstance(rest[0], int):
            raise TypeProblem(f"'{head}' is not a header stack", arg.pos, f"only a stack is indexed: name {head} itself")
        if rest:
            text = ".".join(map(str, arg.parts))
            raise TypeProblem(f"'{text}' is not a header or TLV option", arg.pos,
                              f"write 'valid({head})' or 'valid({head}.OPTION)'")
        return inst.name, None


def _tlv_names(inst: Instance) -> list[str]:
    vl = inst.type.varlen
    return [o.name for o in vl.tlv.options] if vl and vl.tlv else []


def _stack_option(head: str, inst: Instance, pos: int) -> TypeProblem:
    """Options are walked per instance (their values live in one shadow instance each), so an element of a stack
    has its TLV area as opaque bytes: say so rather than "not an option" of a name that is one."""
    return TypeProblem(f"the TLV options of '{head}' cannot be read: '{head}' is a header stack, and a stack's "
                       "elements keep their options area as opaque bytes", pos,
                       f"declare the position whose options you read as its own instance, e.g. "
                       f"'{head}_1: {{type: {inst.type.name}}}' extracted in its own state")


def _fold(op: str, left: Const, right: Const, pos: int) -> Expr:
    a, b = left.value, right.value
    if op in _COMPARE:
        result = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return Const(int(result), is_bool=True, pos=pos, width=BOOL)
    v = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op]
    if v < 0:
        raise TypeProblem(f"constant expression is negative ({v})", pos, "all values are unsigned")
    return _unsized(v, pos)


def _too_wide_constant(pos: int) -> TypeProblem:
    return TypeProblem(f"constant expression is too wide: it needs more than {MAX_WIDTH} bits, and no type is "
                       f"wider than bit<{MAX_WIDTH}>", pos, "cast a literal to give the expression a width, "
                       "e.g. '(bit<32>) 1 << n'")


def _unsized(v: int, pos: int) -> Const:
    """A folded constant without width; never wider than the widest type (so folding stays cheap)."""
    if v.bit_length() > MAX_WIDTH:
        raise _too_wide_constant(pos)
    return Const(v, pos=pos, width=-1)


def coerce(e: Expr, width: int, what: str) -> Expr:
    """Give an unsized literal `width` bits (if it fits), or check a sized expression has that width."""
    if width == BOOL:
        if e.width != BOOL:
            raise TypeProblem(f"{what} must be bool, not {_describe(e.width)}", e.pos,
                          "compare the value to get a bool, e.g. 'x != 0'")
        return e
    if e.width < 0:
        assert isinstance(e, Const)
        if e.value >= 1 << width:
            raise TypeProblem(f"{e.value:#x} does not fit {what} (bit<{width}>)", e.pos,
                              f"the largest bit<{width}> value is {(1 << width) - 1:#x}")
        e.width = width
        return e
    if e.width != width:
        raise TypeProblem(f"width mismatch: {what} is bit<{width}> but the value is {_describe(e.width)}",
                          e.pos, f"cast it: '(bit<{width}>) ...'" if e.width != BOOL
                          else f"a bool is no number: use a bit<{width}> value, e.g. a field or a constant")
    return e
