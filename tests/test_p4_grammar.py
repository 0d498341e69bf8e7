"""The P4 target's output must pass a P4-16 grammar and declaration check (p4c is not installable here).

Every example and conformance-suite program is rendered with P4Target and run through
tests/p4_grammar/check.py.  The negative tests mutate a rendered program so each class of
error the checker claims to catch is proven to be caught, on realistic input.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from c3po_compiler import load_program
from targets.p4 import P4Target
from tests.conftest import EXAMPLES, ROOT, SUITE
from tests.p4_grammar.check import Problem, check_text

PROGRAMS = [*EXAMPLES, *SUITE]

# Programs the checker is known to reject (a target bug awaiting a fix): each is an xfail(strict=True), so the
# fix is noticed. Empty: header stacks, once written C-style, are now `T[N] name;` as P4-16 requires.
KNOWN_BROKEN: dict[str, str] = {}


@cache
def rendered(path: Path) -> str:
    prog = load_program(str(path)).program
    files = P4Target().render(prog)
    (p4,) = (text for name, text in files.items() if name.endswith(".p4"))
    return p4


def _format(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def _params() -> list[object]:
    out: list[object] = []
    for path in PROGRAMS:
        marks = []
        if path.stem in KNOWN_BROKEN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[path.stem]))
        out.append(pytest.param(path, id=str(path.relative_to(ROOT)), marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_generated_p4_passes_grammar_and_declaration_check(path: Path) -> None:
    problems = check_text(rendered(path))
    assert not problems, f"{path.name}:\n{_format(problems)}"


def test_header_stacks_use_p4_16_declarator_form() -> None:
    """A regression guard for the one bug this checker found: `T name[N];` is C, not P4-16."""
    for path in PROGRAMS:
        if path.stem in ("acl_firewall", "mpls_lsr", "tlv_parser", "header_stack"):
            text = rendered(path)
            assert not re.search(r"^\s+\w+ \w+\[\d+\];", text, re.M), path.name
            assert re.search(r"^\s+\w+\[\d+\] \w+;", text, re.M), path.name


# ---------------------------------------------------------------- negative tests


@pytest.fixture(scope="module")
def router() -> str:
    text = rendered(ROOT / "spec" / "examples" / "router.yaml")
    assert check_text(text) == []
    return text


def _mutate(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, f"mutation anchor {old!r} not in the rendered program"
    return text.replace(old, new, count)


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _expect(text: str, pattern: str, line: int | None = None) -> None:
    problems = check_text(text)
    hits = [p for p in problems if re.search(pattern, p.message)]
    assert hits, f"expected /{pattern}/, got:\n{_format(problems)}"
    if line is not None:
        assert any(p.line == line for p in hits), f"expected line {line}, got:\n{_format(hits)}"


def test_missing_semicolon_is_a_syntax_error(router: str) -> None:
    bad = _mutate(router, "meta.c3po_action = 16w1;", "meta.c3po_action = 16w1")
    _expect(bad, r"syntax error", _line_of(bad, "meta.c3po_action = 16w1") + 1)


def test_unbalanced_braces_are_a_syntax_error(router: str) -> None:
    bad = _mutate(router, "state start {", "state start {{")
    _expect(bad, r"syntax error")
    bad = _mutate(router, "    }\n}\n\nV1Switch", "    }\n\nV1Switch")
    _expect(bad, r"syntax error")


def test_undeclared_field_is_reported(router: str) -> None:
    bad = _mutate(router, "hdr.ipv4.ttl = ", "hdr.ipv4.tttl = ")
    _expect(bad, r"header ipv4_t has no field 'tttl'", _line_of(bad, "hdr.ipv4.tttl"))
    bad = _mutate(router, "standard_metadata.egress_spec = 9w510", "standard_metadata.egress_sped = 9w510")
    _expect(bad, r"standard_metadata_t has no field 'egress_sped'")
    bad = _mutate(router, "meta.c3po_key__router_mac__0 = ", "meta.c3po_key__router_mac__9 = ")
    _expect(bad, r"c3po_metadata_t has no field 'c3po_key__router_mac__9'")


def test_transition_to_unknown_state_is_reported(router: str) -> None:
    bad = _mutate(router, "16w0x86dd: ipv6;", "16w0x86dd: ipv7;")
    _expect(bad, r"undeclared state 'ipv7'", _line_of(bad, "ipv7;"))
    bad = _mutate(router, "transition ipv4__done;", "transition ipv4_done;")
    _expect(bad, r"undeclared state 'ipv4_done'")


def test_keyword_as_identifier_is_reported(router: str) -> None:
    # `table` is in the grammar's keyword set: a syntax error, as in p4c.
    bad = _mutate(router, "bit<16> nexthop;", "bit<16> table;")
    _expect(bad, r"syntax error at 'table'", _line_of(bad, "bit<16> table;"))
    # `package` is reserved too even though generated programs never use the construct.
    bad = router.replace("nexthop", "package")
    _expect(bad, r"'package' is a P4 keyword")


def test_width_mismatch_is_reported(router: str) -> None:
    bad = _mutate(router, "meta.c3po_action = 16w1;", "meta.c3po_action = 8w1;")
    _expect(bad, r"assignment: bit<16> vs bit<8>", _line_of(bad, "= 8w1;"))
    bad = _mutate(
        router,
        "meta.c3po_port = meta.c3po_arg__next_hop__port;",
        "meta.c3po_port = meta.c3po_arg__next_hop__smac;",
    )
    _expect(bad, r"assignment: bit<16> vs bit<48>")
    bad = _mutate(
        router,
        "(hdr.ipv4.isValid() ? hdr.ipv4.ttl : 8w0) <= 8w1",
        "(hdr.ipv4.isValid() ? hdr.ipv4.ttl : 8w0) <= 9w1",
    )
    _expect(bad, r"operands of '<=': bit<8> vs bit<9>")
    bad = _mutate(router, "16w0x86dd: ipv6;", "12w0x86d: ipv6;")
    _expect(bad, r"select keyset: bit<16> vs bit<12>")


def test_table_and_action_errors_are_reported(router: str) -> None:
    bad = _mutate(router, "default_action = c3po_drop();", "default_action = c3po_nope();")
    _expect(bad, r"default_action 'c3po_nope' is not in the actions list")
    bad = _mutate(router, ": lpm @name", ": longest @name")
    _expect(bad, r"unknown match kind 'longest'")
    bad = _mutate(router, "            set_nexthop;\n", "            set_next_hop;\n")
    _expect(bad, r"'set_next_hop' is not a declared action")
    bad = _mutate(
        router,
        "    apply {\n        meta.c3po_verdict",
        "    action bad() { router_mac.apply(); }\n    apply {\n        meta.c3po_verdict",
    )
    _expect(bad, r"can only be applied in a control's apply block")
    bad = _mutate(router, "counters = nexthops__2__counter;", "counters = nexthops__counter;")
    _expect(bad, r"direct_counter nexthops__counter is attached to tables nexthops and nexthops__2")


def test_v1model_names_are_resolved(router: str) -> None:
    bad = _mutate(router, "HashAlgorithm.csum16", "HashAlgorithm.csum32")
    _expect(bad, r"enum HashAlgorithm has no member 'csum32'")
    bad = _mutate(router, "error.PacketTooShort", "error.PacketTooLong")
    _expect(bad, r"error.PacketTooLong is not declared")
    bad = _mutate(router, "mark_to_drop(standard_metadata);", "mark_to_drop(meta);")
    _expect(bad, r"argument must be standard_metadata_t")
    bad = _mutate(router, "C3poEgress(), C3poComputeChecksum()", "C3poComputeChecksum(), C3poEgress()")
    _expect(bad, r"C3poComputeChecksum has 2 parameters, V1Switch needs 3")


def test_bmv2_restrictions_are_reported(router: str) -> None:
    bad = _mutate(
        router,
        "            c3po_ran0 = meta.c3po_action;\n",
        "            c3po_ran0 = meta.c3po_action;\n            router_mac.apply();\n",
    )
    _expect(bad, r"table router_mac is applied again")
    bad = _mutate(router, "            16w0x86dd: ipv6;", "            meta.c3po_port: ipv6;")
    _expect(bad, r"select keyset must be a compile-time constant")
    bad = _mutate(router, "pkt.emit(hdr.ipv6);", "pkt.emit(hdr.ipv6);\n        hdr.ipv6.setInvalid();")
    _expect(bad, r"'hdr' is read-only here")


def test_duplicate_declarations_are_reported(router: str) -> None:
    bad = _mutate(router, "    bit<16> nexthop;\n", "    bit<16> nexthop;\n    bit<8> nexthop;\n")
    _expect(bad, r"duplicate field 'nexthop'")
    bad = _mutate(router, "    bool c3po_hit1;\n", "    bool c3po_hit1;\n    bool c3po_hit0;\n")
    _expect(bad, r"duplicate declaration of 'c3po_hit0'")


def test_extract_of_varbit_header_needs_a_size(router: str) -> None:
    bad = _mutate(
        router,
        "pkt.extract(hdr.ipv4__options, ((bit<32>) c3po_ipv4_len) << 3);",
        "pkt.extract(hdr.ipv4__options);",
    )
    _expect(bad, r"varbit field: extract needs the size argument")


# ---------------------------------------------------------------- grammar coverage

SPEC_CONSTRUCTS = """
#include <core.p4>
#include <v1model.p4>
typedef bit<48> mac_t;
const bit<16> ETH_IPV4 = 0x0800;
header eth_t { mac_t dst; mac_t src; bit<16> etype; }
header vlan_t { bit<3> pcp; bit<1> cfi; bit<12> vid; bit<16> etype; }
header opt_a_t { bit<8> kind; }
header opt_b_t { bit<8> kind; bit<8> len; }
header_union opt_u { opt_a_t a; opt_b_t b; }
struct h_t { eth_t eth; vlan_t[2] vlan; opt_u[4] opts; }
struct m_t { bit<8> x; bit<16> y; bool f; }
parser P(packet_in pkt, out h_t hdr, inout m_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etype, pkt.lookahead<bit<8>>()) {
            (ETH_IPV4, 8w0x45 &&& 8w0xff): accept;
            (16w0x8100 .. 16w0x8101, _): vlan;
            (0x9000, default): reject;
            default: accept;
        }
    }
    state vlan {
        pkt.extract(hdr.vlan.next);
        transition select(hdr.vlan.last.etype) { 0x8100: vlan; default: accept; }
    }
}
control VC(inout h_t hdr, inout m_t meta) { apply { } }
control I(inout h_t hdr, inout m_t meta, inout standard_metadata_t sm) {
    register<bit<32>>(1024) r;
    counter(32w16, CounterType.packets) c;
    direct_counter(CounterType.packets_and_bytes) dc;
    bit<32> tmp;
    action a(bit<8> v) { meta.x = v; c.count(32w1); }
    action b() { meta.y = meta.x ++ 8w1; }
    table t {
        key = { hdr.eth.dst: exact @name("dst"); meta.x: ternary; }
        actions = { a; @defaultonly b; }
        default_action = b();
        size = 64;
        counters = dc;
    }
    table t2 {
        key = { meta.y: range; hdr.vlan[1].vid: lpm; }
        actions = { a; NoAction; }
        const default_action = NoAction();
        const entries = {
            (16w1 .. 16w9, 12w5 &&& 12w0xfff): a(8w1) @priority(1);
            (_, 12w6): NoAction();
        }
    }
    apply {
        switch (t.apply().action_run) {
            a: { meta.y = (bit<16>) meta.x << 2; }
            default: { }
        }
        if (t2.apply().hit && !meta.f) {
            r.read(tmp, 32w5);
            r.write(32w5, tmp + 1);
            meta.y = meta.f ? meta.y[15:8] ++ meta.y[7:0] : ~meta.y >> 1;
            hdr.vlan[0].setInvalid();
            hdr.vlan.pop_front(1);
        } else {
            mark_to_drop(sm);
            exit;
        }
    }
}
control E(inout h_t hdr, inout m_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout h_t hdr, inout m_t meta) { apply { } }
control D(packet_out pkt, in h_t hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""


def test_spec_constructs_beyond_the_generated_subset_are_accepted() -> None:
    assert check_text(SPEC_CONSTRUCTS) == []


def test_grammar_rejects_what_p4_16_forbids() -> None:
    # v1.2.x parserStatement has no conditional statement.
    bad = SPEC_CONSTRUCTS.replace("pkt.extract(hdr.vlan.next);", "if (true) { pkt.extract(hdr.vlan.next); }")
    _expect(bad, r"syntax error at 'if'")
    # switch inside an action (P4-16 section 14.1).
    bad = SPEC_CONSTRUCTS.replace("action b() {", "action b() { switch (t.apply().action_run) { a: {} }")
    _expect(bad, r"switch statements are not allowed in actions")
    # C-style stacks.
    bad = SPEC_CONSTRUCTS.replace("vlan_t[2] vlan;", "vlan_t vlan[2];")
    _expect(bad, r"syntax error at '\['")
    # `>>` must be two adjacent '>' tokens.
    bad = SPEC_CONSTRUCTS.replace("~meta.y >> 1", "~meta.y > > 1")
    _expect(bad, r"syntax error")
    # an entry whose key count differs from the table's.
    bad = SPEC_CONSTRUCTS.replace("(_, 12w6): NoAction();", "(_, 12w6, 8w1): NoAction();")
    _expect(bad, r"entry has 3 key values, the table has 2 keys")
    # stack.next outside a parser.
    bad = SPEC_CONSTRUCTS.replace("hdr.vlan[0].setInvalid();", "hdr.vlan.next.setInvalid();")
    _expect(bad, r"stack.next can only be used in a parser")
