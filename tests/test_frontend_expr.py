"""The expression language: literals, precedence, P4 width rules, and errors that point at the right column."""

from __future__ import annotations

import pytest

from c3po_compiler import ir
from c3po_compiler.expr import (
    BOOL,
    Binary,
    Cast,
    Const,
    ExprSyntaxError,
    FieldRef,
    KeyElem,
    RawAssign,
    RawCall,
    RegRead,
    Slice,
    Unary,
    parse_action_call,
    parse_expression,
    parse_keyset,
    parse_match_value,
    parse_statement,
)
from c3po_compiler.typecheck import Resolver, Scope, TypeProblem, coerce

IPV4 = ir.HeaderType("ipv4", [ir.Field("ihl", 4, 0), ir.Field("ttl", 8, 4), ir.Field("protocol", 8, 12),
                              ir.Field("total_len", 16, 20), ir.Field("dst", 32, 36), ir.Field("pad", 4, 68)])
IPV6 = ir.HeaderType("ipv6", [ir.Field("dst", 128, 0)])
VLAN = ir.HeaderType("vlan", [ir.Field("vid", 12, 0), ir.Field("tpid", 4, 12)])
INSTANCES = {"ipv4": ir.Instance("ipv4", IPV4), "ipv6": ir.Instance("ipv6", IPV6),
             "vlan": ir.Instance("vlan", VLAN, stack=2)}


def scope(*, in_parser: bool = False) -> Scope:
    return Scope(INSTANCES.get, lambda: sorted(INSTANCES), {"nexthop": 16, "flag": 1},
                 {"seen": ir.Register("seen", 32, 8)}, {"port": 16}, in_parser=in_parser)


def typed(text: str, *, in_parser: bool = False) -> ir.Expr:
    return Resolver(scope(in_parser=in_parser)).expr(parse_expression(text))


def type_error(text: str, *, in_parser: bool = False) -> tuple[int, str]:
    with pytest.raises(TypeProblem) as info:
        typed(text, in_parser=in_parser)
    return info.value.pos, info.value.message


def syntax_error(text: str) -> tuple[int, str]:
    with pytest.raises(ExprSyntaxError) as info:
        parse_expression(text)
    return info.value.column, info.value.message


# -- literals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value", "width"), [
    ("17", 17, None),
    ("0x0800", 0x800, None),
    ("0b1010", 10, None),
    ("1_000", 1000, None),
    ("02:00:00:00:00:01", 0x020000000001, 48),
    ("ff:FF:ff:ff:ff:ff", (1 << 48) - 1, 48),
    ("10.0.0.1", 0x0A000001, 32),
    ("::", 0, 128),
    ("::1", 1, 128),
    ("fe80::1", (0xFE80 << 112) | 1, 128),
    ("2001:db8::", 0x20010DB8 << 96, 128),
    ("::ffff:10.0.0.1", (0xFFFF << 32) | 0x0A000001, 128),
])
def test_literals(text: str, value: int, width: int | None) -> None:
    e = parse_expression(text)
    assert isinstance(e, Const)
    assert (e.value, e.literal_width) == (value, width)


@pytest.mark.parametrize(("text", "column", "message"), [
    ("10.0.0.256", 0, "invalid IPv4 address '10.0.0.256'"),
    ("1::2::3", 0, "invalid IPv6 address '1::2::3'"),
    ("ipv4.ttl $ 1", 9, "unexpected character '$'"),
    ("ipv4.ttl +", 10, "expected a value but found 'end of expression'"),
    ("(ipv4.ttl", 9, "expected ')' but found 'end of expression'"),
    ("ipv4.ttl 1", 9, "unexpected '1'"),
    ("ipv4.", 5, "expected a name after '.' but found ''"),
    ("(bit<x>) 1", 5, "expected an integer but found 'x'"),
])
def test_syntax_errors_point_at_the_offending_token(text: str, column: int, message: str) -> None:
    assert syntax_error(text) == (column, message)


# -- precedence (P4's) ---------------------------------------------------------------------------------------

def test_multiplication_binds_tighter_than_addition() -> None:
    e = parse_expression("1 + 2 * 3")
    assert isinstance(e, Binary) and e.op == "+" and isinstance(e.right, Binary) and e.right.op == "*"


def test_comparison_binds_tighter_than_logic_and_bitwise_tighter_than_comparison() -> None:
    e = parse_expression("a & 1 == 1 && b")
    assert isinstance(e, Binary) and e.op == "&&"
    assert isinstance(e.left, Binary) and e.left.op == "=="
    assert isinstance(e.left.left, Binary) and e.left.left.op == "&"


def test_shift_binds_looser_than_addition() -> None:
    e = parse_expression("a << 1 + 2")
    assert isinstance(e, Binary) and e.op == "<<" and isinstance(e.right, Binary)


def test_unary_cast_and_slice_nest() -> None:
    e = parse_expression("~(bit<16>) x[7:0]")
    assert isinstance(e, Unary) and isinstance(e.operand, Cast) and isinstance(e.operand.operand, Slice)
    assert (e.operand.operand.hi, e.operand.operand.lo) == (7, 0)


# -- widths --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "width"), [
    ("ipv4.ttl", 8),
    ("ipv4.ttl + 1", 8),
    ("1 + ipv4.ttl", 8),
    ("ipv4.ttl == 64", BOOL),
    ("valid(ipv4) && ipv4.ttl > 1", BOOL),
    ("(bit<16>) ipv4.ttl", 16),
    ("(bit<4>) ipv4.total_len", 4),
    ("ipv4.dst[31:24]", 8),
    ("ipv4.dst[0:0]", 1),
    ("ipv4.ttl << 9", 8),
    ("ipv4.total_len >> ipv4.ttl", 16),
    ("meta.nexthop + port", 16),
    ("std.ingress_port", 16),
    ("std.packet_length", 32),
    ("seen[3]", 32),
    ("seen[ipv4.ttl]", 32),
    ("vlan[1].vid", 12),
    ("hash(crc16, ipv4.dst, ipv4.ttl)", 16),
    ("hash(crc32, ipv4.dst)", 32),
    ("ipv6.dst == ::1", BOOL),
    ("ipv4.dst & 255.0.0.0 == 10.0.0.0", BOOL),
    ("-ipv4.ttl", 8),
    ("!valid(ipv6)", BOOL),
    ("valid(vlan[0]) == valid(ipv4)", BOOL),
])
def test_widths(text: str, width: int) -> None:
    assert typed(text).width == width


def test_constant_register_index_is_a_register_read() -> None:
    e = typed("seen[3]")
    assert isinstance(e, RegRead) and e.register == "seen" and isinstance(e.index, Const) and e.index.value == 3


def test_stack_last_in_the_parser() -> None:
    e = typed("vlan.last.vid", in_parser=True)
    assert isinstance(e, FieldRef) and e.index == "last" and e.width == 12
    assert typed("lookahead(4, 8)", in_parser=True).width == 8


def test_unsized_literals_fold_and_take_the_contexts_width() -> None:
    e = typed("ipv4.ttl + (2 * 3)")
    assert isinstance(e, Binary) and isinstance(e.right, Const) and (e.right.value, e.right.width) == (6, 8)


@pytest.mark.parametrize(("text", "pos", "message"), [
    ("ipv4.ttl + ipv4.total_len", 9, "width mismatch: bit<8> + bit<16>"),
    ("ipv4.ttl == ipv4.dst", 9, "width mismatch: bit<8> == bit<32>"),
    ("ipv4.ttl + 256", 11, "0x100 does not fit the right operand of '+' (bit<8>)"),
    ("valid(ipv4) && ipv4.ttl", 15, "'&&' needs bool operands, not bit<8>"),
    ("valid(ipv4) + 1", 12, "'+' cannot mix bool and bit<W>"),
    ("!ipv4.ttl", 0, "'!' needs a bool, not bit<8>"),
    ("~valid(ipv4)", 0, "'~' needs bit<W>, not bool"),
    ("~1", 0, "'~' on an unsized literal"),
    ("(bit<0>) ipv4.ttl", 0, "cast to bit<0>: widths are 1..128"),
    ("(bit<129>) ipv4.ttl", 0, "cast to bit<129>: widths are 1..128"),
    ("(bit<8>) valid(ipv4)", 0, "cannot cast a bool to bit<W>"),
    ("ipv4.ttl[8:0]", 8, "slice [8:0] is outside bit<8>"),
    ("ipv4.ttl[2:5]", 8, "slice [2:5] is outside bit<8>"),
    ("5[1:0]", 1, "cannot slice an unsized literal"),
    ("1 - 2", 2, "constant expression is negative (-1)"),
    ("1 << ipv4.ttl", 2, "cannot shift an unsized literal by a bit<8>"),
    ("ipv4.tll", 0, "header 'ipv4' has no field 'tll'"),
    ("ipv5.ttl", 0, "undefined header 'ipv5'"),
    ("meta.hop", 0, "undefined metadata field 'hop'"),
    ("std.port", 0, "undefined standard metadata 'std.port'"),
    ("seem[1]", 0, "undefined register or header stack 'seem'"),
    ("seem[ipv4.ttl]", 0, "undefined register 'seem'"),
    ("vlan.vid", 0, "'vlan' is a header stack: index it"),
    ("vlan[2].vid", 0, "index 2 is outside stack 'vlan' of size 2"),
    ("vlan.last.vid", 0, "'vlan.last' is only available in the parser"),
    ("ipv4[0].ttl", 0, "'ipv4' is not a header stack"),
    ("lookahead(8)", 0, "lookahead() is only available in parser selects"),
    ("hash(md5, ipv4.ttl)", 5, "unknown hash algorithm 'md5'"),
    ("valid(ipv4.ttl)", 6, "'ttl' is not a TLV option of 'ipv4'"),
    ("valid(ipv4.ttl.x)", 6, "'ipv4.ttl.x' is not a header or TLV option"),
    ("present(ipv4.key)", 8, "header 'ipv4' has no optional group 'key'"),
    ("vaild(ipv4)", 0, "unknown function 'vaild'"),
    ("porte", 0, "undefined name 'porte'"),
])
def test_type_errors_point_at_the_offending_node(text: str, pos: int, message: str) -> None:
    assert type_error(text) == (pos, message)


@pytest.mark.parametrize(("text", "hint"), [
    ("ipv4.tll", "did you mean 'ttl'?"),
    ("ipv5.ttl", "did you mean 'ipv6' or 'ipv4'?"),
    ("meta.nexthp", "did you mean 'nexthop'?"),
    ("seem[1]", "did you mean 'seen'?"),
    ("vaild(ipv4)", "did you mean 'valid'?"),
    ("porte", "did you mean 'port'?"),
    ("ipv4.ttl + ipv4.total_len", "cast one side, e.g. '(bit<16>) x'"),
])
def test_hints(text: str, hint: str) -> None:
    with pytest.raises(TypeProblem) as info:
        typed(text)
    assert info.value.hint == hint


def test_lookahead_limits() -> None:
    assert type_error("lookahead(65)", in_parser=True) == (0, "lookahead of 65 bits: 1..64 bits can be looked at")


def test_coerce_rejects_a_literal_too_wide_for_its_context() -> None:
    with pytest.raises(TypeProblem, match="does not fit"):
        coerce(Const(0x1FF), 8, "x")
    assert coerce(Const(0xFF), 8, "x").width == 8


# -- statements, keysets, match values, action calls --------------------------------------------------------

def test_assignment_statement_records_where_the_value_starts() -> None:
    stmt = parse_statement("ipv4.ttl = ipv4.ttl - 1")
    assert isinstance(stmt, RawAssign) and stmt.target_text == "ipv4.ttl" and stmt.value_offset == 10


def test_assignment_value_errors_are_offset_into_the_statement() -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_statement("meta.x = 1 +")
    assert info.value.column == 12


def test_comparison_is_not_an_assignment() -> None:
    stmt = parse_statement("forward(port)")
    assert isinstance(stmt, RawCall) and stmt.name == "forward" and len(stmt.args) == 1
    with pytest.raises(ExprSyntaxError):
        parse_statement("ipv4.ttl == 1")


@pytest.mark.parametrize(("text", "expected"), [
    ("0x0800", [KeyElem("value", 0x800)]),
    ("0, 6", [KeyElem("value", 0), KeyElem("value", 6)]),
    ("0x0 &&& 0x8", [KeyElem("mask", 0, 8)]),
    ("1 .. 5", [KeyElem("range", 1, 5)]),
    ("_, 17", [KeyElem("any"), KeyElem("value", 17)]),
    ("10.0.0.1", [KeyElem("value", 0x0A000001)]),
])
def test_keysets(text: str, expected: list[KeyElem]) -> None:
    assert parse_keyset(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.0/8", KeyElem("prefix", 0x0A000000, 8)),
    ("fe80::/10", KeyElem("prefix", 0xFE80 << 112, 10)),
    ("10.0.0.0 &&& 255.0.0.0", KeyElem("mask", 0x0A000000, 0xFF000000)),
    ("22 .. 80", KeyElem("range", 22, 80)),
    ("_", KeyElem("any")),
    ("02:00:00:00:00:01", KeyElem("value", 0x020000000001)),
])
def test_match_values(text: str, expected: KeyElem) -> None:
    assert parse_match_value(text, "ternary") == expected


def test_action_calls() -> None:
    name, args = parse_action_call("set_nexthop(3, 0x020000000001)")
    assert name == "set_nexthop" and [a.value for a in args if isinstance(a, Const)] == [3, 0x020000000001]
    with pytest.raises(ExprSyntaxError, match="expected an action call"):
        parse_action_call("x = 1")
