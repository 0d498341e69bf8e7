"""Parser-state statements (`do`, docs/spec-reference.md section 5): what the front end lowers and refuses,
when the reference interpreter runs them, and how the targets carry the metadata they set.

The conformance suite programs conformance/suite/parser_do_*.yaml compare every target with the interpreter;
these tests pin the semantics the interpreter implements and the pieces of target code that make it hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.problems import SpecError
from conformance.interpreter import Interpreter
from conformance.model import PacketIn

from .conftest import ROOT

SUITE = ROOT / "conformance" / "suite"

SPEC = """
c3po: 1
program: pdo
include: [std/ethernet, std/ipv4]
metadata: {proto: 8, order: 8, hits: 4}
parser:
  start: ethernet
  on_error: {default: drop, reject: to_host}
  states:
    ethernet:
      extract: ethernet
      do: [meta.order = 1]
      select: ethernet.ethertype
      cases: {0x0800: ipv4}
      default: accept
    ipv4:
      extract: ipv4
      do:
        - meta.proto = ipv4.protocol
        - "meta.order = meta.order * 2 + (bit<8>) meta.hits"
        - if: ipv4.ttl == 1
          then: [meta.proto = 0xff]
          else: [meta.hits = meta.hits + 1]
      next: l4
    l4:
      select: meta.proto
      cases: {0xff: reject, 6: accept}
      default: accept
control:
  - ethernet.src = ((bit<48>) meta.proto << 16) | ((bit<48>) meta.order << 8) | (bit<48>) meta.hits
  - reflect
"""


def frame(ttl: int, proto: int) -> bytes:
    eth = bytes(6) + bytes(6) + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 20, 0, 0, 0, 0, ttl, proto, 0, 0]) + bytes(8)
    return eth + ip + b"payload"


def program(tmp_path: Path, text: str = SPEC) -> ir.Program:
    spec = tmp_path / "pdo.yaml"
    spec.write_text(text, encoding="utf-8")
    return load_program(spec).program


def test_do_is_lowered_into_the_state_in_order(tmp_path: Path) -> None:
    prog = program(tmp_path)
    do = prog.parser.states["ipv4"].do
    assert [type(s).__name__ for s in do] == ["Assign", "Assign", "If"]
    first = do[0]
    assert isinstance(first, ir.Assign) and isinstance(first.target, ir.MetaRef) and first.target.name == "proto"
    assert not prog.parser.states["l4"].extract and prog.parser.states["l4"].select


def test_do_runs_after_extract_before_select_and_reaches_the_control(tmp_path: Path) -> None:
    interp = Interpreter(program(tmp_path))
    [res] = interp.run([PacketIn(0, frame(64, 6))], {})
    assert res.verdict == "reflect"
    # proto read from the header just extracted; order = 1 * 2 + 0; hits incremented in the else branch
    assert res.data[6:12] == (6 << 16 | 2 << 8 | 1).to_bytes(6, "big")


def test_a_select_reads_metadata_its_state_chain_set(tmp_path: Path) -> None:
    interp = Interpreter(program(tmp_path))
    [res] = interp.run([PacketIn(0, frame(1, 6))], {})
    # ttl 1: the if set meta.proto = 0xff, and the metadata-only state l4 went to reject
    assert res.observations["parser_error"] == "reject"
    assert res.observations["path"] == ["ethernet", "ipv4", "l4"]


def test_a_parser_error_after_do_leaves_the_frame_unchanged(tmp_path: Path) -> None:
    interp = Interpreter(program(tmp_path))
    data = frame(1, 17)
    [res] = interp.run([PacketIn(0, data)], {})
    assert (res.verdict, res.data) == ("to_host", data)


def test_metadata_set_in_the_parser_crosses_the_xdp_tail_call_split() -> None:
    from targets.xdp import tailcall
    from targets.xdp.emitter import Emitter

    prog = load_program(SUITE / "parser_do_tailcall.yaml").program
    em = Emitter(prog)
    nodes, control = em.emit()
    split = tailcall.plan(em, nodes, control)
    assert split is not None and len(split.programs) >= 2
    fields = {decl for decl, _ in split.fields}
    assert {"__u64 m_labels;", "__u64 m_last_label;", "__u64 m_bos_ttl;", "__u64 m_via_mpls;"} <= fields
    later = split.programs[1]
    reloads = [line for r in later.resumes for line in r.lines]
    assert "m_labels = ps->m_labels;" in reloads
    saves = [line for t in split.programs[0].exits for line in t.lines]
    assert "ps->m_labels = m_labels;" in saves


def test_p4_parser_assigns_metadata_in_the_state() -> None:
    from targets.p4.parser_gen import ParserGen

    prog = load_program(SUITE / "parser_do_tailcall.yaml").program
    states = {s.name: s for s in ParserGen(prog).run()}
    text = "\n".join(states["mpls"].stmts)
    assert "meta.labels = (meta.labels + 8w1);" in text
    assert "meta.last_label = hdr.mpls.last.label;" in text  # .last unguarded: valid wherever it may be read


@pytest.mark.parametrize(("stmt", "message"), [
    ('"ipv4.ttl = 1"', "a parser state cannot assign the header field 'ipv4.ttl'"),
    ("drop", "a parser state cannot set a verdict ('drop')"),
    ('"count(c, 0)"', "a parser state cannot count"),
    ('"meta.proto = hash(crc16, ipv4.ttl)[7:0]"', "hash() is only available in 'control' and actions"),
])
def test_forbidden_statements_are_one_positioned_error(tmp_path: Path, stmt: str, message: str) -> None:
    text = f"""
c3po: 1
program: bad
include: [std/ethernet, std/ipv4]
metadata: {{proto: 8}}
counters: {{c: {{size: 1}}}}
parser:
  start: ipv4
  states:
    ipv4:
      extract: ipv4
      do: [{stmt}]
deparse: [ipv4]
"""
    with pytest.raises(SpecError) as exc:
        program(tmp_path, text)
    problems = exc.value.problems
    assert [p.message for p in problems] == [message]
    assert problems[0].loc.path.endswith(".do[0]") and problems[0].hint


def _ipv6_ext(next_hdr: int, body: bytes = b"\x01\x04\x00\x00\x00\x00") -> bytes:
    """An 8-byte options-style extension header (PadN filling it)."""
    return bytes([next_hdr, 0]) + body


def test_classifier_reads_the_tuple_the_parser_recorded() -> None:
    """spec/examples/classifier.yaml (its every-target conformance runs under the slow mark): the last next
    header of a full IPv6 chain, both Destination Options positions, and IPv4 with options behind QinQ and MPLS."""
    prog = load_program(ROOT / "spec" / "examples" / "classifier.yaml").program
    interp = Interpreter(prog)
    eth6 = bytes(12) + b"\x86\xdd"
    src6 = bytes.fromhex("20010db8010000000000000000000001")
    chain = (_ipv6_ext(60) +                                   # hop-by-hop -> destination options
             _ipv6_ext(43) +                                   # destination options -> routing
             bytes([44, 0, 0, 0]) + bytes(4) +                 # routing (type 0, no segments left) -> fragment
             bytes([60, 0, 0, 0]) + bytes(4) +                 # first fragment -> destination options again
             _ipv6_ext(6))                                     # final destination options -> TCP
    tcp = (1234).to_bytes(2, "big") + (22).to_bytes(2, "big") + bytes(8) + b"\x50\x10" + bytes(6)
    ipv6 = b"\x60" + bytes(3) + len(chain + tcp).to_bytes(2, "big") + b"\x00\x40" + src6 + bytes(16)
    [r6] = interp.run([PacketIn(0, eth6 + ipv6 + chain + tcp)], {})
    assert r6.observations["path"][-2:] == ["l4", "tcp"]
    assert (r6.verdict, r6.port, r6.counters[("per_class", 1)][0]) == ("forward", 1, 1)  # management SSH
    qinq_mpls = bytes(12) + b"\x88\xa8" + b"\x00\x64\x81\x00" + b"\x00\xc8\x88\x47" + b"\x00\x01\x01\x40"
    opts = b"\x01\x01\x01\x00"                                 # NOP NOP NOP EOL: IHL 6
    udp = (53).to_bytes(2, "big") + (4000).to_bytes(2, "big") + (8).to_bytes(2, "big") + bytes(2)
    ipv4 = b"\x46\x00" + (24 + 8).to_bytes(2, "big") + bytes(4) + b"\x40\x11" + bytes(2) + bytes([10, 1, 2, 3]) + bytes(4)
    [r4] = interp.run([PacketIn(0, qinq_mpls + ipv4 + opts + udp)], {})
    assert r4.observations["path"] == ["ethernet", "vlan", "vlan", "mpls", "mpls_payload", "ipv4", "l4", "udp"]
    assert (r4.verdict, r4.port) == ("forward", 5)  # VLAN 100 (the outer tag) is the voice class, before DNS


def test_parser_statements_and_branches_are_coverage_items() -> None:
    """The generator covers a `do` like the control: the fragment state's if has both branches taken."""
    from conformance.generate import generate
    from conformance.tracing import branch_points, stmt_id

    prog = load_program(SUITE / "parser_do_ipv6_chain.yaml").program
    [frag_if] = [s for s in prog.parser.states["fragment"].do if isinstance(s, ir.If)]
    assert {(stmt_id(frag_if), "then"), (stmt_id(frag_if), "else")} <= set(branch_points(prog))
    cov = generate(prog, seed=0).coverage
    assert cov["branches"]["uncovered"] == [] and cov["branches"]["total"] == 6
    assert cov["statements"]["uncovered"] == [] and cov["statements"]["total"] == 16
