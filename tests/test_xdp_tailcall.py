"""XDP parse graphs split over tail-called programs (targets/xdp/tailcall.py).

A 64-deep label stack with IPv4/IPv6/UDP after it unrolls into ≈ 330 parse states: three programs. The kernel
tests load the object (every program through the verifier), compare it with the reference interpreter on
generated vectors, fuzzed copies and hand-made packets that end in each program, including parser errors in
the later programs, and check that a failed tail call aborts instead of skipping the rest of the parse. The
refusals (more than 33 tail calls, the 512-byte stack) need no kernel.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from conformance.interpreter import Interpreter
from conformance.model import ControlState, PacketIn
from targets.xdp import XdpTarget
from targets.xdp import tailcall as T
from targets.xdp.driver import XdpDriver
from targets.xdp.emitter import Emitter
from targets.xdp.view import build_view
from tests.conftest import EXAMPLES, ROOT, SUITE, need_bpf, shared_vectors
from tests.test_xdp_kernel import compare_with_reference, loaded_program_ids, prog_id, same

PROTOCOLS = ROOT / "spec" / "protocols"


def deep_stack_spec(tmp_path: Path, depth: int, pop: bool = False) -> ir.Program:
    """Labels looped on `bos`, then IPv4 (checksum verified) or IPv6, then UDP; reads std.ingress_port. With
    `pop`, the control removes the top label, so the deparser reads every label pointer."""
    p = os.path.relpath(PROTOCOLS, tmp_path)
    control = '[{if: "std.ingress_port == 7", then: [drop], else: [{apply: fib}]}]'
    if pop:
        control = '[{apply: fib}, "set_invalid(mpls[0])"]'
    text = f"""
c3po: 1
program: deep_stack
include: [{p}/ethernet.yaml, {p}/mpls.yaml, {p}/ipv4.yaml, {p}/ipv6.yaml, {p}/udp.yaml]
instances:
  mpls: {{type: mpls, stack: {depth}}}
deparse: [ethernet, mpls, ipv4, ipv6, udp]
parser:
  start: ethernet
  on_error: {{default: drop, stack_overflow: to_host, checksum: to_host}}
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {{"0x8847": mpls, "0x0800": ipv4, "0x86dd": ipv6}}
      default: accept
    mpls:
      extract: mpls
      select: mpls.last.bos
      cases: {{0: mpls, 1: payload}}
    payload:
      select: lookahead(4)
      cases: {{4: ipv4, 6: ipv6}}
      default: reject
    ipv4:
      extract: ipv4
      verify: [ipv4]
      select: ipv4.protocol
      cases: {{17: udp}}
      default: accept
    ipv6:
      extract: ipv6
      select: ipv6.next_hdr
      cases: {{17: udp}}
      default: accept
    udp:
      extract: udp
tables:
  fib:
    key: {{"mpls[0].label": exact, udp.dst_port: exact}}
    actions: [forward, drop, to_host]
    default: to_host
    size: 64
    entries:
      - {{match: {{"mpls[0].label": 5, udp.dst_port: 53}}, action: forward(3)}}
control: {control}
default_verdict: to_host
"""
    path = tmp_path / "deep_stack.yaml"
    path.write_text(text, encoding="utf-8")
    return load_program(path).program


def csum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(labels: int, payload: str = "ipv4", bad_csum: bool = False, cut: int | None = None) -> bytes:
    eth = bytes.fromhex("020000000001020000000002") + (b"\x88\x47" if labels else b"\x08\x00")
    stack = b"".join(struct.pack("!I", (5 << 12) | (int(i == labels - 1) << 8) | 64) for i in range(labels))
    udp = struct.pack("!HHHH", 1000, 53, 12, 0) + b"abcd"
    if payload == "ipv4":
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes(4), bytes(4)))
        ip[10:12] = struct.pack("!H", csum(bytes(ip)) ^ (0x1111 if bad_csum else 0))
        body = bytes(ip) + udp
    elif payload == "ipv6":
        body = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", len(udp), 17, 64) + bytes(32) + udp
    else:  # neither 4 nor 6 after the bottom label: reject
        body = b"\x90" + bytes(40)
    data = eth + stack + body
    return data[:cut] if cut is not None else data


def programs_of(prog: ir.Program) -> T.Split:
    em = Emitter(prog)
    split = build_view(prog)["split"]
    assert split is not None and em.parser_nodes()
    return split


def program_with(split: T.Split, label: str) -> int:
    return next(p.index for p in split.programs if any(n.label == label for n in p.nodes))


# Programs whose parse graph unrolls past NODES_PER_PROGRAM, so they split: parser_do_tailcall tests what crosses
# the tail calls; the classifier's QinQ x MPLS x IPv6 chain unrolls into 181 states.
SPLIT_ON_PURPOSE = {"parser_do_tailcall", "classifier"}


def test_examples_and_suite_stay_one_program() -> None:
    """Below the budget nothing changes: one SEC("xdp") function, no prog array (byte-identical C)."""
    for spec in EXAMPLES + SUITE:
        if spec.stem in SPLIT_ON_PURPOSE:
            continue
        prog = load_program(spec).program
        if XdpTarget().refusals(prog):
            continue
        assert len(Emitter(prog).parser_nodes()) <= T.NODES_PER_PROGRAM, spec.name
        src = XdpTarget().render(prog)[f"{prog.name}.bpf.c"]
        assert src.count('SEC("xdp")') == 1 and "BPF_MAP_TYPE_PROG_ARRAY" not in src, spec.name


def test_deep_stack_splits_into_three_programs(tmp_path: Path) -> None:
    prog = deep_stack_spec(tmp_path, 64)
    split = programs_of(prog)
    assert len(split.programs) == 3 and split.longest_chain == 3
    src = XdpTarget().render(prog)["deep_stack.bpf.c"]
    assert src.count('SEC("xdp")') == 3
    assert "BPF_MAP_TYPE_PROG_ARRAY" in src and "[2] = (void *)&c3po_deep_stack_p2," in src
    assert src == XdpTarget().render(prog)["deep_stack.bpf.c"]  # deterministic
    # the hand-made packets below end in each program
    assert [program_with(split, f"st_udp_{n}") for n in (1, 30, 60)] == [0, 1, 2]
    assert all(p.stack <= T.STACK_LIMIT for p in split.programs)


def test_more_than_33_tail_calls_is_refused(tmp_path: Path) -> None:
    # The language allows stacks of 64 at most (docs/spec-reference.md section 13): the target's own limit is
    # still checked, on a program whose stack is deepened past the front end.
    prog = deep_stack_spec(tmp_path, 64)
    prog.instances["mpls"].stack = 880
    (problem,) = XdpTarget().refusals(prog)
    text = problem.format()
    assert "deep_stack.yaml:" in text and ": error: " in text
    assert "34 tail calls" in text and "limit of 33 chained tail calls" in text


def test_stack_estimate_over_512_bytes_is_refused(tmp_path: Path) -> None:
    """Popping a label makes the deparser rebuild the frame from every label pointer: 64 of them live in the
    programs that run the control, which cannot fit the BPF stack."""
    prog = deep_stack_spec(tmp_path, 64, pop=True)
    (problem,) = XdpTarget().refusals(prog)
    assert "512-byte BPF stack" in problem.format() and "h_mpls_" in problem.format()


def test_state_a_program_does_not_touch_stays_in_the_map(tmp_path: Path) -> None:
    """The labels below the top one are read by no later program: they are not saved, and they cost the
    programs no stack (the per-CPU map holds only what a later program reads)."""
    split = programs_of(deep_stack_spec(tmp_path, 64))
    fields = [decl for decl, _ in split.fields]
    assert "__u16 h_mpls_0;" in fields and "__u16 h_mpls_1;" not in fields
    assert split.state_bytes <= 16


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> ir.Program:
    return deep_stack_spec(tmp_path_factory.mktemp("deep"), 64)


def test_split_program_matches_reference(deep: ir.Program, tmp_path: Path) -> None:
    need_bpf()
    count, diffs = compare_with_reference(deep, tmp_path, seed=5)
    assert count > 200
    assert not diffs, "\n".join(diffs[:5])


HAND_MADE = [
    (0, frame(0)),
    (1, frame(1)), (1, frame(30)), (1, frame(60)), (1, frame(64)),  # UDP reached in programs 0, 1, 2, 2
    (2, frame(45, "ipv6")), (2, frame(63, "ipv6")),
    (7, frame(60)),  # std.ingress_port (XDP metadata) read after two tail calls
    (1, frame(65)),  # stack_overflow in the last program
    (1, frame(58, bad_csum=True)),  # checksum error in program 2
    (1, frame(40, cut=14 + 4 * 40 + 10)),  # truncated IPv4 in program 1
    (1, frame(50, cut=14 + 4 * 33)),  # truncated label stack
    (1, frame(55, "other")),  # reject after the bottom label
]


def test_packets_through_every_program_and_their_errors(deep: ir.Program, tmp_path: Path) -> None:
    need_bpf()
    packets = [PacketIn(port, data) for port, data in HAND_MADE]
    ref = Interpreter(deep)
    ref.install(ControlState())
    want = ref.run(packets, {})
    with XdpDriver() as drv:
        drv.open(deep, tmp_path)
        assert drv.bpf is not None
        insns = drv.bpf.insns_by_program
        assert len(insns) == 3 and all(n and n < 100_000 for n in insns.values()), insns
        drv.install(ControlState())
        got = drv.run(packets, {})
    bad = [f"{i}: xdp {g} ref {w}" for i, (g, w) in enumerate(zip(got, want, strict=True)) if not same(g, w)]
    assert not bad, "\n".join(bad)
    verdicts = [r.verdict for r in got]
    assert verdicts[1:5] == ["forward"] * 4 and verdicts[7] == "drop"
    assert verdicts[8] == verdicts[9] == "to_host"  # on_error: stack_overflow / checksum -> to_host


def test_failed_tail_call_aborts_and_close_unloads_all(deep: ir.Program, tmp_path: Path) -> None:
    need_bpf()
    drv = XdpDriver()
    drv.open(deep, tmp_path)
    assert drv.bpf is not None
    ids = {prog_id(drv.bpf.lb.bpf_program__fd(p)) for p in _programs(drv)}
    assert len(ids) == 3 and ids <= loaded_program_ids()
    drv.install(ControlState())
    progs = drv.bpf.map_fd("c3po_progs_deep_stack")
    assert drv.lb.bpf_map_delete_elem(progs, (2).to_bytes(4, "little")) == 0
    short, deep_pkt = drv.run([PacketIn(1, frame(30)), PacketIn(1, frame(60))], {})
    assert short.verdict == "forward"  # programs 0 and 1 still work
    assert deep_pkt.verdict == "error" and "aborted" in (deep_pkt.error or "")
    drv.close()
    # The kernel empties a prog array in a work item after its last user reference closes, and the programs
    # go with it: give it a moment.
    deadline = time.monotonic() + 5
    while ids & loaded_program_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ids & loaded_program_ids()


def _programs(drv: XdpDriver) -> list[int]:
    assert drv.bpf is not None and drv.bpf.obj is not None
    out = []
    p = drv.bpf.lb.bpf_object__next_program(drv.bpf.obj, None)
    while p:
        out.append(p)
        p = drv.bpf.lb.bpf_object__next_program(drv.bpf.obj, p)
    return out


@pytest.mark.parametrize("example", ["vxlan_gateway", "gre_tunnel", "tlv_parser", "mpls_lsr"])
def test_examples_forced_to_split_still_match(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example splits at one parse state per program too (checked by hand for all examples and suite
    programs, budgets 1 and 3): these four cover encapsulation with headers that are valid on one path and
    not another (vxlan_gateway found a stale-state bug), optional groups, TLV options and a label stack."""
    need_bpf()
    monkeypatch.setattr(T, "NODES_PER_PROGRAM", 1)
    prog = load_program(ROOT / "spec" / "examples" / f"{example}.yaml").program
    assert len(programs_of(prog).programs) > 1
    count, diffs = compare_with_reference(prog, tmp_path, seed=9,
                                          vectors=shared_vectors(ROOT / "spec" / "examples" / f"{example}.yaml", 300))
    assert count > 200
    assert not diffs, "\n".join(diffs[:5])
