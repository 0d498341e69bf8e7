"""The NIC target generates per-packet work only where its result can be observed (targets/nic/liveness.py).

A program that never adds or removes a header has no structural deparser; one that does has it, and it works;
a metadata field every path writes before reading is not cleared per packet, one that can be read first is;
valid flags, parse offsets and header pointers nothing reads are neither declared nor stored. Leaving state
uncleared is only safe if nothing reads it before it is written: a MemorySanitizer build of the harness runs
the examples' vectors and fails on any such read.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.generate import generate
from conformance.interpreter import Interpreter
from targets.nic import NicTarget, toolchain
from targets.nic import driver as nic_driver
from targets.nic.driver import NicDriver
from targets.nic.liveness import analyse
from tests.conftest import ROOT, need_tool, shared_vectors

pytestmark = pytest.mark.gcc

EX = ROOT / "spec" / "examples"
PROTOCOLS = ROOT / "spec" / "protocols"


def c_source(spec: Path) -> str:
    prog = load_program(spec).program
    return NicTarget().render(prog)[f"{prog.name}.c"]


def function(text: str, name: str) -> str:
    start = text.index(f" {name}(")
    return text[start:text.index("\n}\n", start)]


def write_spec(tmp_path: Path, name: str, body: str) -> Path:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"c3po: 1\nprogram: {name}\ninclude: [{PROTOCOLS / 'ethernet.yaml'}, {PROTOCOLS / 'vlan.yaml'}, "
                    f"{PROTOCOLS / 'ipv4.yaml'}]\n{body}", encoding="utf-8")
    return spec


def matches_reference(spec: Path, tmp_path: Path, fuzz: int = 100, sanitize: bool = False,
                      shared: bool = False) -> int:
    """Runs the spec's generated vectors (the run's shared generation if `shared`, else made with seed 3) on
    the nic target and the reference; the packets compared."""
    prog = load_program(spec).program
    ref = Interpreter(prog)
    n = 0
    vectors = shared_vectors(spec, fuzz) if shared else generate(prog, seed=3, fuzz=fuzz).vectors
    vectors.sort(key=lambda v: repr(v.control))  # one install per state: each vector brings its registers
    with NicDriver(sanitize=sanitize) as drv:
        drv.open(prog, tmp_path)
        last = None
        for v in vectors:
            if v.control != last:
                ref.install(v.control)
                drv.install(v.control)
                last = v.control
            for p, g, w in zip(v.packets, drv.run(v.packets, v.registers), ref.run(v.packets, v.registers),
                               strict=True):
                assert (g.verdict, g.port, g.data, g.counters) == (w.verdict, w.port, w.data, w.counters), \
                    f"{v.name}: {p.data.hex()}"
                n += 1
    return n


def test_no_structural_deparser_without_validity_changes() -> None:
    """acl_firewall never adds or removes a header and deparses in parse order: the frame keeps its layout, so
    neither the structural flag nor the deparser that re-emits every header (`hl += ...`) is generated, nor the
    checksum machinery of a program without update_checksum."""
    text = c_source(EX / "acl_firewall.yaml")
    for gone in ("structural", "hl +=", "c3po_move(", "ck_req", "n_ck", "done:", "c->pkt"):
        assert gone not in text, gone
    assert not analyse(load_program(EX / "acl_firewall.yaml").program).restructures


def test_structural_deparser_where_headers_change(tmp_path: Path) -> None:
    """vxlan_gateway adds and removes headers: the flag and the general deparser are there, and the frames
    (encapsulated, decapsulated, unchanged) match the reference interpreter."""
    need_tool("gcc")
    spec = EX / "vxlan_gateway.yaml"
    text = c_source(spec)
    assert "c->structural = true;" in text and "if (!c->structural)" in text and "c3po_move(pkt + hl" in text
    assert analyse(load_program(spec).program).restructures
    assert matches_reference(spec, tmp_path) > 100


def test_a_stack_write_takes_the_structural_deparser(tmp_path: Path) -> None:
    """Writing a stack element marks the frame structural (stack elements are not written back in place)."""
    need_tool("gcc")
    spec = write_spec(tmp_path, "stackw", """instances:
  vlan: {type: vlan, stack: 2}
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x8100": vlan}}
    vlan: {extract: vlan, select: vlan.last.ethertype, cases: {"0x8100": vlan}}
control:
  - if: "valid(vlan[0])"
    then: ["vlan[0].vid = 7"]
  - forward(2)
""")
    text = c_source(spec)
    assert "c->structural = true;" in text and "c3po_move(pkt + hl" in text
    assert matches_reference(spec, tmp_path) > 20


def test_a_header_extracted_twice_always_deparses(tmp_path: Path) -> None:
    """When re-emitting the headers does not reproduce the frame (here a second Ethernet header overwrites the
    first, and only one is emitted), the general deparser always runs: no write-back, and no structural flag
    (nothing would read it)."""
    need_tool("gcc")
    spec = write_spec(tmp_path, "twice", """parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4, "0x6558": again}}
    again: {extract: ethernet}
    ipv4: {extract: ipv4}
control:
  - forward(1)
""")
    text = c_source(spec)
    assert "structural" not in text and "c3po_move(pkt + hl" in text
    assert matches_reference(spec, tmp_path) > 20


def test_metadata_is_cleared_only_where_it_can_be_read_first(tmp_path: Path) -> None:
    """acl_firewall's classify_l4 writes every metadata field before any read: none is cleared per packet.
    Here `seen` is read on the path that skips its assignment, `port` is always written first."""
    reset = function(c_source(EX / "acl_firewall.yaml"), "ctx_reset")
    assert "c->m_" not in reset
    need_tool("gcc")
    spec = write_spec(tmp_path, "metas", """metadata: {seen: 8, port: 16}
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}}
    ipv4: {extract: ipv4}
control:
  - meta.port = 3
  - if: "valid(ipv4)"
    then: ["meta.seen = ipv4.ttl"]
  - if: "meta.seen == 0"
    then: ["forward(meta.port)"]
    else: [drop]
""")
    prog = load_program(spec).program
    assert analyse(prog).meta_reset == {"seen"}
    reset = function(c_source(spec), "ctx_reset")
    assert "c->m_seen = 0;" in reset and "c->m_port" not in reset
    # every path sets the verdict: the default is not stored either
    assert "c->verdict" not in reset
    assert matches_reference(spec, tmp_path) > 20


def test_unread_valid_flags_and_offsets_are_not_kept() -> None:
    """acl_firewall never tests icmp (nor its fields): no valid flag, no pointer, nothing stored when it is
    parsed; no header is written back, so no parse offset is kept; the select of the state that extracted a
    header reads it without testing the flag it has just set."""
    text = c_source(EX / "acl_firewall.yaml")
    assert not re.search(r"\b[vh]_icmp\b", text) and "c->po_" not in text and "c->pl_" not in text
    assert re.search(r"\bv_icmpv6\b", text)  # tested by the control
    assert "(c->v_ethernet ?" not in text
    assert "uint64_t s0 = (((uint64_t)c->h_ethernet[12] << 8) | (uint64_t)c->h_ethernet[13]);" in text
    # a branch that tested valid(x) reads x's fields without testing it again
    assert "(c->v_ipv6_routing ?" not in text


def test_out_port_only_for_verdicts_the_program_gives() -> None:
    """No path forwards or reflects in acl_firewall: the reported port is a constant 0 and there is no port."""
    text = c_source(EX / "acl_firewall.yaml")
    assert "*out_port = 0u;" in text and "c->port" not in text
    assert "c->verdict == ROUTER_FORWARD ? c->port" in c_source(EX / "router.yaml")


def test_checksum_update_adds_only_words_that_can_change() -> None:
    """nat44 rewrites addresses only: the TCP/UDP checksum update adds the change of the address words alone,
    and keeps the original of those bytes only."""
    text = c_source(EX / "nat44.yaml")
    assert "c->o_tcp" not in text and "c->o_udp" not in text
    assert "c3po_ld(c->o_ipv4, 12, 2)" in text and "c3po_ld(c->o_ipv4, 8, 2)" not in text


MSAN_FLAGS = ["-fsanitize=memory", "-fsanitize-memory-track-origins", "-fno-omit-frame-pointer", "-g"]


def msan_available(tmp_path: Path) -> bool:
    if shutil.which("clang") is None:
        return False
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n", encoding="utf-8")
    proc = subprocess.run(["clang", *MSAN_FLAGS, str(src), "-o", str(tmp_path / "probe")], capture_output=True)
    return proc.returncode == 0


@pytest.mark.parametrize("name", ["acl_firewall", "router", "tlv_parser", "vxlan_gateway", "nat44"])
def test_no_read_of_uncleared_state_under_memory_sanitizer(name: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness built with clang's MemorySanitizer instead of ASan/UBSan: reading any context member that
    ctx_reset no longer clears before parsing wrote it aborts the harness."""
    if not msan_available(tmp_path):
        pytest.skip("clang with -fsanitize=memory is not available")
    monkeypatch.setattr(toolchain, "SANITIZE_FLAGS", MSAN_FLAGS)
    monkeypatch.setattr(nic_driver, "build_harness", functools.partial(toolchain.build_harness, cc="clang"))
    assert matches_reference(EX / f"{name}.yaml", tmp_path, fuzz=50, sanitize=True, shared=True) > 100
