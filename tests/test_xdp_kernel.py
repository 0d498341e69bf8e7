"""XDP target in the real kernel: every supported example (and a feature-coverage spec) passes the verifier and
matches the reference interpreter through BPF_PROG_TEST_RUN; verifier rejections surface the verifier's
message; nothing stays loaded after close."""

from __future__ import annotations

import ctypes
import json
import os
import random
import struct
import subprocess
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from c3po_compiler.target_api import BuildError
from conformance.generate import generate
from conformance.interpreter import Interpreter
from conformance.model import ControlState, EntryState, PacketIn, Result, Vector
from targets.xdp import XdpTarget, compile_object
from targets.xdp.driver import XdpDriver
from targets.xdp.libbpf import BpfObject, lib
from tests.conftest import ROOT, need_bpf, shared_vectors
from tests.test_xdp_target import features_spec, supported_examples


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """Random byte flips and truncations from a fixed seed: the parser's error paths get exercised too."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        del data[rng.randint(14, max(14, len(data))):]
    return bytes(data)


def same(a: Result, b: Result) -> bool:
    return (a.verdict, a.port, a.data, a.counters, a.registers) == (b.verdict, b.port, b.data, b.counters,
                                                                    b.registers)


def compare_with_reference(prog: ir.Program, workdir: Path, seed: int,
                           vectors: list[Vector] | None = None) -> tuple[int, list[str]]:
    """Runs generated vectors (`vectors`, else made with `seed`), plus mutated copies, on the driver and the
    interpreter; returns (packets, diffs)."""
    rng = random.Random(seed)
    if vectors is None:
        vectors = generate(prog, seed=seed, fuzz=300).vectors
    ref = Interpreter(prog)
    diffs: list[str] = []
    count = 0
    with XdpDriver() as drv:
        drv.open(prog, workdir)
        for v in vectors:
            packets = v.packets + [PacketIn(p.port, mutate(rng, p.data)) for p in v.packets if len(p.data) >= 14]
            drv.install(v.control)
            ref.install(v.control)
            for p, got, want in zip(packets, drv.run(packets, v.registers), ref.run(packets, v.registers),
                                    strict=True):
                if got.error:
                    assert len(p.data) < 14, got.error  # the only N/A: frames BPF_PROG_TEST_RUN refuses
                    continue
                count += 1
                if not same(got, want):
                    diffs.append(f"{v.name}: {p.data.hex()} port {p.port}\n  xdp {got}\n  ref {want}")
    return count, diffs


@pytest.mark.parametrize("example", supported_examples(), ids=lambda p: p.stem)
def test_example_matches_reference(example: Path, tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(example).program
    count, diffs = compare_with_reference(prog, tmp_path, seed=7, vectors=shared_vectors(example, 300))
    assert count > 50
    assert not diffs, "\n".join(diffs[:5])


def test_feature_spec_matches_reference(tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(features_spec(tmp_path)).program
    count, diffs = compare_with_reference(prog, tmp_path / "build", seed=11)
    assert count > 50
    assert not diffs, "\n".join(diffs[:5])


def ipv4_frame(dst_mac: bytes, src: str, dst: str, ttl: int, payload: bytes = b"x" * 26) -> bytes:
    def addr(s: str) -> bytes:
        return bytes(int(x) for x in s.split("."))
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, 17, 0, addr(src), addr(dst)))
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    hdr[10:12] = struct.pack("!H", ~s & 0xFFFF)
    return dst_mac + bytes.fromhex("020000000099") + b"\x08\x00" + bytes(hdr) + payload


def test_router_forwards_with_explicit_expectations(tmp_path: Path) -> None:
    """Independent of the interpreter: a routed packet gets new MACs, TTL - 1, a valid checksum, its port."""
    need_bpf()
    prog = load_program(Path(__file__).parent.parent / "spec/examples/router.yaml").program
    if any(n not in prog.tables for n in ("router_mac", "routes_v4", "nexthops")):
        pytest.skip("router example changed shape")
    router_mac = bytes.fromhex("020000000001")
    control = ControlState(entries=(
        EntryState("router_mac", (KeyElem("value", int.from_bytes(router_mac, "big")),), "nop"),
        EntryState("routes_v4", (KeyElem("prefix", 0x0A000000, 8),), "set_nexthop", (3,)),
        EntryState("nexthops", (KeyElem("value", 3),), "next_hop", (5, 0x02AA00000001, 0x02BB00000002)),
    ))
    frame = ipv4_frame(router_mac, "192.0.2.1", "10.1.2.3", ttl=64)
    last_hop = ipv4_frame(router_mac, "192.0.2.1", "10.1.2.3", ttl=1)
    with XdpDriver() as drv:
        drv.open(prog, tmp_path)
        drv.install(control)
        routed, expired = drv.run([PacketIn(1, frame), PacketIn(1, last_hop)], {})
    assert (routed.verdict, routed.port) == ("forward", 5)
    assert routed.data[0:12] == bytes.fromhex("02bb0000000202aa00000001")
    assert routed.data[22] == 63
    words = struct.unpack("!10H", routed.data[14:34])
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # the updated header checksum verifies
    assert routed.data[34:] == frame[34:]
    assert expired.verdict == "to_host" and expired.data == last_hop


BAD_PROGRAM = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("xdp")
int unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	return data[20] == 7 ? XDP_DROP : XDP_PASS; /* no data_end check */
}
"""


def test_verifier_rejection_surfaces_message_and_line(tmp_path: Path) -> None:
    need_bpf()
    src = tmp_path / "bad.bpf.c"
    src.write_text(BAD_PROGRAM, encoding="utf-8")
    compile_object(src, tmp_path / "bad.bpf.o")
    with pytest.raises(BuildError) as err:
        BpfObject(tmp_path / "bad.bpf.o")
    text = str(err.value)
    assert "invalid access to packet" in text
    assert "no data_end check" in text  # the C line the verifier pointed at (from -g line info)


def loaded_program_ids() -> set[int]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {int(p["id"]) for p in json.loads(out or "[]")}


def prog_id(fd: int) -> int:
    """The kernel id of a loaded program (struct bpf_prog_info: u32 type, then u32 id)."""
    info = ctypes.create_string_buffer(256)
    size = ctypes.c_uint32(256)
    fn = lib().bpf_obj_get_info_by_fd
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    assert fn(fd, info, ctypes.byref(size)) == 0
    return int.from_bytes(info.raw[4:8], "little")


def test_close_leaves_nothing_loaded(tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(Path(__file__).parent.parent / "spec/examples/l2_switch.yaml").program
    drv = XdpDriver()
    drv.open(prog, tmp_path)
    assert drv.bpf is not None
    ours = prog_id(drv.bpf.prog_fd)
    assert ours in loaded_program_ids()
    drv.close()
    drv.close()  # safe twice
    assert ours not in loaded_program_ids()


def test_short_frames_are_not_applicable(tmp_path: Path) -> None:
    need_bpf()
    prog = load_program(Path(__file__).parent.parent / "spec/examples/l2_switch.yaml").program
    with XdpDriver() as drv:
        drv.open(prog, tmp_path)
        drv.install(ControlState())
        (res,) = drv.run([PacketIn(0, b"\x01" * 10)], {})
    assert res.error is not None and "14 bytes" in res.error


def test_hash_inputs_past_the_stack_budget_move_to_the_scratch_map(tmp_path: Path) -> None:
    """Nine chained hashes need 144 bytes of hash input: more than the target keeps on the 512-byte BPF stack
    (HASH_STACK_MAX), so they go to the per-CPU scratch map, and the program still matches the reference."""
    need_bpf()
    p = os.path.relpath(ROOT / "spec" / "protocols", tmp_path)
    chain = "\n".join(
        f"      - meta.m{i} = hash(crc32, ipv4.{'src' if i % 2 else 'dst'}, ipv4.ttl, ethernet.src"
        + (f", meta.m{i - 1})" if i else ")") for i in range(9))
    spec = tmp_path / "hashes.yaml"
    spec.write_text(f"""c3po: 1
program: hashes
include: [{p}/ethernet.yaml, {p}/ipv4.yaml]
metadata: {{{", ".join(f"m{i}: 32" for i in range(9))}}}
parser:
  start: eth
  states:
    eth: {{extract: ethernet, select: ethernet.ethertype, cases: {{"0x0800": ip}}, default: accept}}
    ip: {{extract: ipv4}}
control:
  - if: "valid(ipv4)"
    then:
{chain}
      - ipv4.identification = (bit<16>) meta.m8
      - forward(1)
""", encoding="utf-8")
    prog = load_program(spec).program
    c = XdpTarget().render(prog)["hashes.bpf.c"]
    # two copies of the control (IPv4 without options and with: emitter.fast_paths), each with its 144 bytes
    assert "__u8 hb[288];" in c and "c3po_crc32_pairs((sc->hb + 128), 15)" in c
    assert "c3po_crc32_pairs((sc->hb + 272), 15)" in c
    count, diffs = compare_with_reference(prog, tmp_path, seed=3)
    assert count > 0 and not diffs, "\n".join(diffs[:5])


def tag_program(tmp_path: Path, name: str, fields: str, rest: str) -> ir.Program:
    """A program that puts a new header `tag` in front of each Ethernet frame: the prologue the constant-image
    tests share, then `rest` (tables, control)."""
    p = os.path.relpath(ROOT / "spec" / "protocols", tmp_path)
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"""c3po: 1
program: {name}
include: [{p}/ethernet.yaml]
headers:
  tag:
    fields: {{{fields}}}
parser:
  start: eth
  states:
    eth: {{extract: ethernet}}
deparse: [tag, ethernet]
{rest}""", encoding="utf-8")
    return load_program(spec).program


def test_new_header_images_keep_the_statement_order(tmp_path: Path) -> None:
    """A header made by set_valid and filled with constants, run-time values, a field sharing a byte with a
    constant one, a constant over a run-time field and a read of the header itself: the constant image is
    written before anything can observe it, and the frame matches the reference byte for byte."""
    need_bpf()
    prog = tag_program(tmp_path, "images", "a: 4, b: 4, c: 16, d: 8, e: 24, f: 8", """control:
  - set_valid(tag)
  - tag.a = 5
  - tag.c = (bit<16>) std.packet_length
  - tag.d = 0x7f
  - tag.b = ethernet.src[3:0]
  - tag.c = 0x1234
  - tag.e = (bit<24>) tag.d + 1
  - tag.f = ethernet.dst[7:0]
  - forward(1)
""")
    c = XdpTarget().render(prog)["images.bpf.c"]
    assert "/* tag: constant bytes 3..7 */" in c and "c3po_zero(h_tag" not in c
    count, diffs = compare_with_reference(prog, tmp_path, seed=5)
    assert count > 0 and not diffs, "\n".join(diffs[:5])


def test_truncated_frames_match_reference_at_every_length(tmp_path: Path) -> None:
    """Bounds checks an earlier check covers are left out (the VXLAN gateway's 38-byte lookahead covers its outer
    Ethernet and IPv4 headers): every frame the generator makes, cut at every length, still ends as the
    reference says (truncated, or the errors that come first)."""
    need_bpf()
    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    vectors = generate(prog, seed=4, fuzz=0).vectors
    ref = Interpreter(prog)
    diffs, count = [], 0
    with XdpDriver() as drv:
        drv.open(prog, tmp_path)
        for v in vectors:
            packets = [PacketIn(q.port, q.data[:n]) for q in v.packets for n in range(14, min(len(q.data), 72) + 1)]
            drv.install(v.control)
            ref.install(v.control)
            for q, got, want in zip(packets, drv.run(packets, v.registers), ref.run(packets, v.registers),
                                    strict=True):
                count += 1
                if not same(got, want):
                    diffs.append(f"{v.name}: {len(q.data)} bytes {q.data.hex()}\n  xdp {got}\n  ref {want}")
    assert count > 500 and not diffs, "\n".join(diffs[:5])


def test_new_header_images_are_written_before_the_control_splits(tmp_path: Path) -> None:
    """Constant bytes still pending when an apply splits the rest of the control into one copy per action are
    written before the split, so every copy (forward, to host, reflect) sends the whole header."""
    need_bpf()
    prog = tag_program(tmp_path, "split", "a: 4, b: 4, c: 16, d: 8", """tables:
  t:
    key: {ethernet.dst: exact}
    actions: [forward, to_host, reflect]
    default: to_host
    size: 16
control:
  - set_valid(tag)
  - tag.a = 5
  - tag.d = 0x7f
  - apply: t
""")
    c = XdpTarget().render(prog)["split.bpf.c"]
    assert c.index("/* tag: constant bytes 0..3 */") < c.index("switch (act)")
    count, diffs = compare_with_reference(prog, tmp_path, seed=6)
    assert count > 0 and not diffs, "\n".join(diffs[:5])


def test_jited_gives_the_programs_kernel_address_and_machine_code(tmp_path: Path) -> None:
    """What benchmarks/profile_xdp.py reads a profile against: the address is the program's kernel symbol, the
    code its JIT image (on x86-64 it opens with the 5-byte nop the kernel patches for tracing)."""
    need_bpf()
    from targets.xdp.libbpf import jited

    src = tmp_path / "tiny.c"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n'
                   'SEC("xdp") int c3po_jit_probe(struct xdp_md *ctx) { return XDP_PASS; }\n', encoding="utf-8")
    compile_object(src, tmp_path / "tiny.o")
    obj = BpfObject(tmp_path / "tiny.o")
    try:
        addr, code = jited(obj.prog_fd)
        syms = [line.split() for line in Path("/proc/kallsyms").read_text().splitlines() if "c3po_jit_probe" in line]
        assert [int(s[0], 16) for s in syms] == [addr]
        assert 8 <= len(code) < 256
        if os.uname().machine == "x86_64":
            assert code.startswith(bytes.fromhex("0f1f440000"))
    finally:
        obj.close()
