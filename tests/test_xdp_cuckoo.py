"""Cuckoo hash tables (`impl: cuckoo`, the xdp target's `auto` choice for exact tables that are not direct,
targets/xdp/cuckoo.py): the control plane against a dict, relocation chains, a full table refused without a
write, and the kernel program finding what the control plane placed (every exact-table example runs the same
path through the conformance driver)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from targets.xdp import layout as L
from targets.xdp.cuckoo import WAYS, Cuckoo, CuckooFull, buckets_for, tag_for, ways_for

from .conftest import ROOT, need_bpf


def _cuckoo(size: int, words: int, ways: int = WAYS) -> Cuckoo:
    return Cuckoo.scratch(buckets_for(size, ways), words, ways)


@pytest.mark.parametrize("ways", [1, WAYS])
@pytest.mark.parametrize("words", [1, 2])
def test_random_inserts_and_deletes_match_a_dict(words: int, ways: int) -> None:
    rng = random.Random(words)
    size = 500
    c = _cuckoo(size, words, ways)
    ref: dict[tuple[int, int], int] = {}
    moved = 0
    for step in range(6000):
        if ref and (len(ref) >= size or rng.random() < 0.3):
            k = rng.choice(sorted(ref))
            del ref[k]
            c.delete(*k)
        else:
            k = (rng.getrandbits(48), rng.getrandbits(24) if words == 2 else 0)
            if k in ref:
                continue
            before = dict(c.where)
            ref[k] = rng.randrange(size)
            c.insert(*k, ref[k])
            moved += sum(1 for key, at in before.items() if c.where.get(key) != at)
        if step % 50 == 0:
            assert all(c.lookup(*k) == e for k, e in ref.items()), step
            assert c.lookup(1 << 47, 5 if words == 2 else 0) == ref.get((1 << 47, 5 if words == 2 else 0))
    assert moved > 0, "at up to 75% (one slot: 25%) load some inserts relocate entries"
    again = Cuckoo(c.mem, c.buckets, words, ways)  # another process reads the same array
    assert again.where == c.where


def _reader(c: Cuckoo, k0: int, k1: int = 0) -> bool:
    """What the data plane of a tagged table does: compare the key words with the tag, read no entry word."""
    want = (k0 | c.tag[0], k1 | c.tag[1])[:c.words]
    for b in c.hashes(k0, k1):
        for w in range(c.ways):
            if c._words(b, w)[:c.words] == want:
                return True
    return False


def test_tags_sit_just_above_keys_narrower_than_their_words() -> None:
    assert tag_for(48, 1) == (1 << 48, 0) and tag_for(63, 1) == (1 << 63, 0) and tag_for(64, 1) == (0, 0)
    assert tag_for(72, 2) == (0, 1 << 8) and tag_for(127, 2) == (0, 1 << 63) and tag_for(128, 2) == (0, 0)


@pytest.mark.parametrize("ways", [1, WAYS])
@pytest.mark.parametrize("words,width", [(1, 48), (2, 72), (2, 95), (2, 96)])
def test_a_tagged_slot_matches_by_its_key_alone(words: int, width: int, ways: int) -> None:
    """The all-zero key is a key like any other, and a free or freed slot never matches it; through random
    changes (moves included) the key-only reader agrees with the table."""
    tag = tag_for(width, words)
    c = Cuckoo.scratch(buckets_for(200, ways), words, ways, tag)
    assert not _reader(c, 0, 0)  # every slot is free: zero words, no tag
    c.insert(0, 0, 5)
    assert _reader(c, 0, 0) and c.lookup(0, 0) == 5
    c.delete(0, 0)
    assert not _reader(c, 0, 0) and c.lookup(0, 0) is None
    rng = random.Random(width + ways)
    ref: dict[tuple[int, int], int] = {}
    for step in range(3000):
        if ref and (len(ref) >= 200 or rng.random() < 0.3):
            k = rng.choice(sorted(ref))
            del ref[k]
            c.delete(*k)
        else:
            k = (rng.getrandbits(min(width, 64)), rng.getrandbits(width - 64) if words == 2 else 0)
            ref[k] = rng.randrange(200)
            c.insert(*k, ref[k])
        if step % 100 == 0:
            assert all(_reader(c, *k) for k in ref) and all(c.lookup(*k) == e for k, e in ref.items())
            gone = (rng.getrandbits(min(width, 64)), 0)
            assert _reader(c, *gone) == (gone in ref)
    again = Cuckoo(c.mem, c.buckets, words, ways, tag)  # another process reads the same array
    assert again.where == c.where and all(again.lookup(*k) == e for k, e in ref.items())


def test_a_key_of_65_to_95_bits_takes_a_16_byte_slot() -> None:
    """k1 and its tag fit a u32: the slot is {u64 k0, u32 k1 | tag, u32 entry + 1}, four to a 64-byte bucket (the
    generated struct says the same); from 96 bits k1 is a u64 and the slot 24 bytes."""
    from targets.xdp.cuckoo import slot_layout

    assert slot_layout(2, tag_for(72, 2)) == (16, 12) and slot_layout(2, tag_for(95, 2)) == (16, 12)
    assert slot_layout(2, tag_for(96, 2)) == (24, 16) and slot_layout(2, tag_for(128, 2)) == (24, 16)
    assert slot_layout(1, tag_for(48, 1)) == (16, 8)
    tag = tag_for(72, 2)
    c = Cuckoo.scratch(8, 2, WAYS, tag)
    assert len(c.mem) == 8 * WAYS * 16
    c.insert(0x1122334455667788, 0xAB, 6)
    b, w = c.where[(0x1122334455667788, 0xAB)]
    raw = bytes(c.mem[c._off(b, w):c._off(b, w) + 16])
    assert raw == (0x1122334455667788).to_bytes(8, "little") + (0x1AB).to_bytes(4, "little") + (7).to_bytes(4, "little")
    from targets.xdp import XdpTarget

    src = XdpTarget().render(load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program)
    fdb_slot = src["vxlan_gateway.bpf.c"].split("struct t_fdb_slot {")[1].split("};")[0]
    assert "__u32 k1;" in fdb_slot and "pad" not in fdb_slot


@pytest.mark.parametrize("words,width", [(1, 48), (2, 72)])
def test_repair_clears_a_tagged_key_whose_entry_was_never_written(words: int, width: int) -> None:
    tag = tag_for(width, words)
    c = Cuckoo.scratch(buckets_for(64, 1), words, 1, tag)
    k1 = 0x5A if words == 2 else 0
    c.insert(0xAABB, k1, 3)
    b, w = c.hashes(0x1234, k1)[0], 0
    if c._read(b, w)[2]:
        b = c.hashes(0x1234, k1)[1]
    o = c._off(b, w)
    c._store(o, 0, 0x1234 | tag[0])  # a writer died between the key and the entry word
    if words == 2:
        c._store(o, 1, k1 | tag[1])  # (a narrow k1: its 4-byte store)
    assert _reader(c, 0x1234, k1)  # packets would take it for a hit
    assert c.repair({(0xAABB, k1): 3}) == 1
    assert not _reader(c, 0x1234, k1) and _reader(c, 0xAABB, k1) and c.lookup(0xAABB, k1) == 3


@pytest.mark.parametrize("ways", [1, WAYS])
def test_the_declared_size_fits_and_a_full_table_refuses_without_writing(ways: int) -> None:
    c = _cuckoo(64, 1, ways)
    rng = random.Random(3)
    for i in range(64):
        c.insert(rng.getrandbits(64), 0, i)
    assert len(c.where) == 64
    tiny = Cuckoo.scratch(2, 1, ways)
    for i in range(2 * ways):
        tiny.insert(i * 7919, 0, i)
    before = bytes(tiny.mem)
    with pytest.raises(CuckooFull, match="no free slot"):
        tiny.insert(123456, 0, 99)
    assert bytes(tiny.mem) == before


def _program(tmp_path: Path, impl: str = "") -> ir.Program:
    spec = tmp_path / "t.yaml"
    spec.write_text(f"""
c3po: 1
program: t
include: [std/ethernet]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet}}
tables:
  fdb:
    key: {{ethernet.dst: exact, ethernet.ethertype: exact}}
    actions: [forward, drop]
    default: drop
    size: 64
    {impl}
control:
  - apply: fdb
""", encoding="utf-8")
    return load_program(spec).program


def test_auto_builds_exact_tables_as_cuckoo_and_impl_hash_keeps_the_kernel_map(tmp_path: Path) -> None:
    prog = _program(tmp_path)
    lay = L.table_layout(prog, prog.tables["fdb"])
    assert lay.cuckoo_buckets == buckets_for(64, 1) == 256 and L.key_words(prog.tables["fdb"]) == 1  # 48 + 16 bits
    assert lay.cuckoo_ways == ways_for(64) == 1 and ways_for(256) == 1 and ways_for(257) == WAYS  # small: 1 slot
    prog = _program(tmp_path, "impl: hash")
    assert L.table_layout(prog, prog.tables["fdb"]).cuckoo_buckets == 0


def test_the_kernel_program_finds_what_the_control_plane_placed(tmp_path: Path) -> None:
    """64 keys through the table API (the declared size: relocations happen), a delete and a modify, then every
    key through BPF_PROG_TEST_RUN."""
    need_bpf()
    from conformance.model import ControlState, PacketIn
    from dataplane.syntax import parse_match
    from targets.xdp.driver import DriverTables, XdpDriver

    prog = _program(tmp_path)
    driver = XdpDriver()
    try:
        driver.open(prog, tmp_path / "build")
        driver.install(ControlState())
        assert driver.bpf is not None
        dp = DriverTables(prog, driver.bpf, driver.prio_fds)
        rng = random.Random(7)
        macs = [rng.getrandbits(48) for _ in range(64)]

        def m(mac: int) -> tuple[ir.KeyElem, ...]:
            text = ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))
            return parse_match(prog.tables["fdb"], [f"ethernet.dst={text}", "ethernet.ethertype=0x0800"])

        with dp.locked():
            t = dp.table("fdb")
            for i, mac in enumerate(macs):
                t.add(m(mac), "forward", (i + 1,))
            t.delete(m(macs[0]))
            t.modify(m(macs[1]), "forward", (500,))

        def port(mac: int) -> int | None:
            [r] = driver.run([PacketIn(1, mac.to_bytes(6, "big") + bytes(6) + b"\x08\x00" + bytes(46))], {})
            return r.port if r.verdict == "forward" else None

        assert port(macs[0]) is None and port(macs[1]) == 500
        assert [port(mac) for mac in macs[2:]] == list(range(3, 65))
        assert port(macs[2] ^ 1) is None
    finally:
        driver.close()


def test_a_key_of_whole_byte_fields_is_the_frame_bytes_as_they_lie(tmp_path: Path) -> None:
    """fdb's key (ethernet.dst, ethernet.ethertype: 64 bits of whole bytes) is hashed and compared as the frame's
    eight bytes read as one little-endian word: the generated lookup loads them without a byte swap, and the
    control plane's key is those bytes; key values and key words convert both ways. A key with a 12-bit field
    keeps the numeric concatenation."""
    from targets.xdp import XdpTarget
    from targets.xdp.control import cuckoo_key, cuckoo_key_values

    prog = _program(tmp_path)
    t = prog.tables["fdb"]
    assert L.cuckoo_raw_key(t)
    mac, etype = 0x0200000000AB, 0x86DD
    frame = mac.to_bytes(6, "big") + etype.to_bytes(2, "big")
    assert cuckoo_key(t, (ir.KeyElem("value", mac), ir.KeyElem("value", etype))) == \
        (int.from_bytes(frame, "little"), 0)
    assert cuckoo_key_values(t, int.from_bytes(frame, "little")) == (mac, etype)
    src = XdpTarget().render(prog)[f"{prog.name}.bpf.c"]
    assert "kv = c3po_ld_raw(h_ethernet + 0, 6) | (c3po_ld_raw(h_ethernet + 12, 2) << 48);" in src
    l2 = load_program(ROOT / "spec" / "examples" / "l2_switch.yaml").program  # fdb: meta.vid (12 bits), MAC
    fdb = l2.tables["fdb"]
    assert [(p.shift, p.raw) for p in L.cuckoo_key_parts(fdb)] == [(48, False), (0, True)]
    assert "kv = c3po_ld_raw(h_ethernet + 0, 6) | ((__u64)m_vid << 48);" in XdpTarget().render(l2)["l2_switch.bpf.c"]
    assert cuckoo_key(fdb, (ir.KeyElem("value", 0xABC), ir.KeyElem("value", mac))) == \
        (int.from_bytes(mac.to_bytes(6, "big"), "little") | 0xABC << 48, 0)
    assert cuckoo_key_values(fdb, int.from_bytes(mac.to_bytes(6, "big"), "little") | 0xABC << 48) == (0xABC, mac)


def test_a_two_word_key_takes_the_mac_as_it_lies_and_the_vni_above_it() -> None:
    """The VXLAN FDB's (meta.vni: 24 bits, ethernet.dst) is 72 bits: the MAC's bytes are k0's low 48 bits, the
    VNI's low 16 bits k0's top, its high 8 bits k1 (the best hand-written gateway's words); values convert both
    ways, and a key without whole-byte header fields keeps the numeric concatenation, the first field on top."""
    from targets.xdp import XdpTarget
    from targets.xdp.control import cuckoo_key, cuckoo_key_values

    prog = load_program(ROOT / "spec" / "examples" / "vxlan_gateway.yaml").program
    t = prog.tables["fdb"]
    mac, vni = 0x02AB_CDEF_0123, 0x12_3456
    raw = int.from_bytes(mac.to_bytes(6, "big"), "little")
    assert cuckoo_key(t, (ir.KeyElem("value", vni), ir.KeyElem("value", mac))) == (raw | 0x3456 << 48, 0x12)
    assert cuckoo_key_values(t, raw | 0x3456 << 48, 0x12) == (vni, mac)
    src = XdpTarget().render(prog)["vxlan_gateway.bpf.c"]
    assert "kv = (c3po_u128)c3po_ld_raw(h_ethernet + 0, 6) | ((c3po_u128)m_vni << 48);" in src
    nums = load_program(ROOT / "conformance" / "suite" / "stack_varlen.yaml").program.tables["by_proto"]
    assert [(p.shift, p.raw) for p in L.cuckoo_key_parts(nums)] == [(2, False), (0, False)]  # meta.proto, depth
    gre = load_program(ROOT / "spec" / "examples" / "gre_tunnel.yaml").program.tables["tunnel_term"]
    assert [(p.shift, p.raw) for p in L.cuckoo_key_parts(gre)] == [(0, True), (32, True), (64, False)]


STACK_KEYS = """c3po: 1
program: stack_keys
headers:
  a:
    fields: {x: 16, y: 32, t: 8, n: 8}
  b:
    fields: {p: 32, q: 16, r: 16}
instances:
  a: {type: a, stack: 4}
  b: {type: b, stack: 4}
metadata: {m0: 32}
parser:
  start: s0
  states:
    s0: {extract: a, select: 'a.last.t', cases: {"1": s0, "2": s1}, default: accept}
    s1: {extract: b, select: 'b.last.r', cases: {"7": s1}, default: accept}
actions:
  set: {params: {v: 32}, do: ['meta.m0 = v']}
tables:
  t0:
    key: {"a[2].y": exact, "b[1].p": exact}
    actions: [set, forward, drop, to_host]
  t1:
    key: {"b[3].q": exact, "a[1].x": exact}
    actions: [set, forward, drop, to_host]
control:
  - apply: t0
  - if: 'meta.m0 == (bit<32>)b[2].p'
    then: [apply: t1]
"""


def test_a_key_from_stack_elements_that_may_be_absent(tmp_path: Path) -> None:
    """Cuckoo keys of whole-byte fields of stack elements, each element valid on some paths only: every key load
    tests and loads through one opaque local (cexpr.Translator.guarded; two copies of an element pointer can
    differ to the verifier), and the kernel agrees with the oracle on the generated vectors."""
    need_bpf()
    from conformance.generate import generate
    from conformance.runner import RunRequest, exit_status, run_conformance
    from targets.xdp import XdpTarget

    spec = tmp_path / "stack_keys.yaml"
    spec.write_text(STACK_KEYS, encoding="utf-8")
    prog = load_program(spec).program
    src = XdpTarget().render(prog)["stack_keys.bpf.c"]
    loads = [line for line in src.splitlines() if "c3po_ld_raw(" in line and "kv = " in line]
    assert len(loads) == 2
    for line in loads:
        assert line.count('asm volatile("" : "+r"(p_)); p_ ? c3po_ld_raw(p_ + ') == 2, line
        assert "c3po_ld_raw(h_" not in line, line
    vectors = generate(prog, seed=1, fuzz=20).vectors
    (report,) = run_conformance([RunRequest(str(spec), vectors)], ["xdp"], timeout=20, jobs=1)
    bad = [f"{o.vector}: {o.outcome}: {'; '.join(o.detail[:3])}" for o in report.outcomes
           if o.outcome in ("FAIL", "ERROR")]
    assert not bad, "\n".join(bad[:10])
    assert exit_status([report]) == 0 and sum(o.outcome == "PASS" for o in report.outcomes) > 100
