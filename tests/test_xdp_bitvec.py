"""Bit-vector classifiers (`impl: bit_vector`, the xdp target's `auto` choice for priority tables of up to 64
entries, targets/xdp/bitvec.py): the image against a first-match scan, the front end's refusals, and the kernel
program classifying what the table API wrote, through inserts, ties, modifies and deletes (the suite program
conformance/suite/match_bitvec.yaml runs generated vectors on every target)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from c3po_compiler.problems import SpecError
from targets.xdp import layout as L
from targets.xdp.bitvec import (
    DEBRUIJN,
    M64,
    MAX_ENTRIES,
    BitVecLayout,
    BitVector,
    debruijn_slot,
    image,
    layout_for,
)

from .conftest import need_bpf

SPEC = """
c3po: 1
program: t
include: [std/ethernet, std/ipv4, std/udp]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet, select: ethernet.ethertype, cases: {{"0x0800": ipv4}}}}
    ipv4: {{extract: ipv4, select: ipv4.protocol, cases: {{17: udp}}}}
    udp: {{extract: udp}}
tables:
  acl:
    key: {{{keys}}}
    actions: [forward, drop]
    default: drop
    size: {size}
    {impl}
control:
  - if: "valid(udp)"
    then: [{{apply: acl}}]
"""
KEYS = "ipv4.src: lpm, ipv4.dst: ternary, ipv4.protocol: exact, udp.dst_port: range"


def _program(tmp_path: Path, keys: str = KEYS, size: int = 64, impl: str = "") -> ir.Program:
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC.format(keys=keys, size=size, impl=impl), encoding="utf-8")
    return load_program(spec).program


def _problems(tmp_path: Path, **kw: object) -> str:
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC.format(**{"keys": KEYS, "size": 64, "impl": "", **kw}), encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_program(spec)
    return str(exc.value)


def test_de_bruijn_slots_are_distinct_and_match_the_c_expression() -> None:
    slots = [debruijn_slot(r) for r in range(64)]
    assert sorted(slots) == list(range(64))
    for r in range(64):  # the generated C: ((m & -m) * DEBRUIJN) >> 58 on a word whose lowest set bit is r
        m = (1 << r) | (((1 << 64) - 1) << r & M64 if r < 63 else 0)
        assert (((m & -m & M64) * DEBRUIJN) & M64) >> 58 == slots[r]


def _classify(lay: BitVecLayout, img: bytes, key: list[int]) -> bytes | None:
    """What the generated C computes from an image."""
    words = struct.unpack(f"<{lay.words}Q", img[:8 * lay.words])
    m = M64
    for p in lay.parts:
        if p.byte < 0:
            m &= words[p.offset + key[p.key]]
        else:
            shift = 8 * (-(-p.width // 8) - 1 - p.byte)
            m &= words[p.offset + ((key[p.key] >> shift) & 0xFF)]
    if not m:
        return None
    if lay.action_ids:  # by-action mode: the first mask holding the lowest set bit names the action
        masks = struct.unpack(f"<{len(lay.action_ids)}Q", img[8 * lay.words:])
        first = m & -m
        return next(struct.pack("<I", a) for a, mk in zip(lay.action_ids, masks, strict=True) if first & mk)
    slot = 8 * lay.words + ((((m & -m) * DEBRUIJN) & M64) >> 58) * lay.value_size
    return img[slot:slot + lay.value_size]


def _accepts(e: KeyElem, width: int, v: int) -> bool:
    if e.kind == "any":
        return True
    if e.kind == "range":
        return e.a <= v <= e.b
    if e.kind == "prefix":
        shift = width - e.b
        return v >> shift == e.a >> shift
    if e.kind == "mask":
        return v & e.b == e.a & e.b
    return v == e.a


@pytest.mark.parametrize("by_action", [False, True])
@pytest.mark.parametrize("default_rank", [False, True])
def test_the_image_gives_the_first_matching_entry_of_every_key(tmp_path: Path, by_action: bool,
                                                               default_rank: bool) -> None:
    """Values mode: the winner's whole value. By-action mode (no arguments, no counters): its action id. With
    a default rank the default is the catch-all of rank 63: a miss gives it, never nothing."""
    prog = _program(tmp_path, keys="ipv4.src: lpm, ipv4.dst: ternary, ipv4.protocol: exact, udp.dst_port: range, "
                                   "ipv4.ihl: ternary")
    t = prog.tables["acl"]
    widths = [k.width for k in t.keys]
    lay = layout_for(t, 8, (1, 2, 3) if by_action else (), default_rank)
    default = struct.pack("<II", 2, 0xFFFFFFFF)
    rng = random.Random(5)
    for trial in range(12):
        rows: list[tuple[tuple[KeyElem, ...], bytes]] = []
        for i in range(rng.choice([0, 1, 5, MAX_ENTRIES - default_rank])):
            plen = rng.randrange(33)
            lo = rng.randrange(1 << 16)
            match = (
                KeyElem("prefix", rng.getrandbits(32) & (M64 << (32 - plen)) & 0xFFFFFFFF, plen)
                if rng.random() < 0.8 else KeyElem("any"),
                KeyElem("mask", rng.getrandbits(32), rng.getrandbits(32) & rng.getrandbits(32)),
                rng.choice([KeyElem("value", rng.choice([6, 17])), KeyElem("any")]),
                rng.choice([KeyElem("range", lo, min(0xFFFF, lo + rng.randrange(4000))), KeyElem("any"),
                            KeyElem("range", 5, 4)]),  # an empty range matches nothing
                KeyElem("mask", rng.getrandbits(4), rng.getrandbits(4)),
            )
            rows.append((match, struct.pack("<II", 1 + i % 3, i)))
        img = image(lay, rows, default if default_rank else None)
        assert len(img) == lay.image_bytes
        keys = [[rng.getrandbits(w) for w in widths] for _ in range(300)]
        for m, _ in rows[:20]:  # keys inside some entries, not only random ones
            keys.append([e.a if e.kind in ("value", "prefix", "range") else rng.getrandbits(w)
                         for e, w in zip(m, widths, strict=True)])
        for key in keys:
            want = next((v for m, v in rows if all(_accepts(e, w, x) for e, w, x in zip(m, widths, key,
                                                                                        strict=True))),
                        default if default_rank else None)
            assert _classify(lay, img, key) == (want[:4] if by_action and want else want), (trial, key)


def test_publish_writes_the_other_image_then_switches() -> None:
    lay = BitVecLayout((), 0, 8)
    mem = bytearray(BitVector.map_bytes(lay))
    bv = BitVector(memoryview(mem), lay)
    assert mem[:8] == bytes(8)
    bv.publish([((), struct.pack("<II", 7, 0))])
    assert struct.unpack("<Q", mem[:8])[0] == 1
    second = 8 + lay.stride + 8 * debruijn_slot(0)  # image 1, a power of two after image 0
    assert mem[second:second + 8] == struct.pack("<II", 7, 0) and mem[8:8 + lay.image_bytes] == bytes(lay.image_bytes)
    bv.publish([])
    assert struct.unpack("<Q", mem[:8])[0] == 0
    bv.close()


def test_auto_picks_bit_vectors_for_small_priority_tables_only(tmp_path: Path) -> None:
    def bitvec(**kw: object) -> bool:
        prog = _program(tmp_path, **kw)  # type: ignore[arg-type]
        return L.table_layout(prog, prog.tables["acl"]).bitvec is not None

    assert bitvec()
    assert not bitvec(size=65)  # more entries than bits in a word
    assert not bitvec(impl="impl: linear")
    assert not bitvec(keys="ipv4.src: ternary, ipv4.ttl: range, ipv4.identification: range, udp.src_port: range")
    assert bitvec(size=2, impl="impl: bit_vector")


def test_by_action_mode_only_when_the_value_is_the_action_alone(tmp_path: Path) -> None:
    """No arguments and no counters: rank masks per entry action, tested in entry-action order, the last the
    fallback; the key bytes of packet fields are byte loads from the header."""
    from targets.xdp import XdpTarget

    def lay(actions: str, counters: bool = False) -> BitVecLayout:
        spec = tmp_path / "t.yaml"
        text = SPEC.format(keys=KEYS, size=64, impl="counters: true" if counters else "")
        spec.write_text(text.replace("actions: [forward, drop]", f"actions: [{actions}]"), encoding="utf-8")
        prog = load_program(spec).program
        out = L.table_layout(prog, prog.tables["acl"]).bitvec
        assert out is not None
        return out

    ids = L.action_ids(_program(tmp_path))
    assert lay("to_host, drop").action_ids == (ids["to_host"], ids["drop"])  # size 64: no default rank
    assert not lay("to_host, drop").default_rank
    assert lay("forward, drop").action_ids == ()  # forward's port: the value slots stay
    assert lay("to_host, drop", counters=True).action_ids == ()  # the counter index: the entry stays
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC.format(keys=KEYS, size=64, impl="").replace("[forward, drop]", "[to_host, drop]"),
                    encoding="utf-8")
    src = XdpTarget().render(load_program(spec).program)["t.bpf.c"]
    # size 64: no default rank; the default is read at the end of the chain, when no bit is set at all
    assert f"act = (first & im->act[0]) ? {ids['to_host']} : m ? {ids['drop']} : c3po_defaults.acl.action;" in src
    assert "im->k1_0[h_ipv4[16]]" in src and "val[64]" not in src


def test_the_images_are_a_global_packets_read_without_a_map_lookup(tmp_path: Path) -> None:
    from targets.xdp import XdpTarget

    src = XdpTarget().render(_program(tmp_path))["t.bpf.c"]
    assert "struct t_acl_bv tb_acl SEC(\".data.tb_acl\")" in src
    assert "bpf_map_lookup_elem(&tb_acl" not in src
    # image 1 a power of two after image 0, so the active one is a shift away, not a multiply (BitVecLayout.stride)
    prog = _program(tmp_path)
    lay = L.table_layout(prog, prog.tables["acl"]).bitvec
    assert lay is not None and lay.stride & (lay.stride - 1) == 0 and lay.image_bytes <= lay.stride < 2 * lay.image_bytes
    shift = lay.stride.bit_length() - 1
    assert f"*im = (struct t_acl_bv_image *)((__u8 *)&tb_acl.img0 + ((tb_acl.active & 1) << {shift}));" in src
    assert (f"__u8 pad[{lay.stride - lay.image_bytes}];" in src) == (lay.stride > lay.image_bytes)


@pytest.mark.parametrize("kw, why", [
    ({"size": 65, "impl": "impl: bit_vector"}, "ranks at most 64 entries"),
    ({"keys": "ipv4.src: range", "impl": "impl: bit_vector"}, "at most 16 bits, and ipv4.src is wider"),
    ({"keys": "ipv4.src: exact", "impl": "impl: bit_vector"}, "searches priority tables"),
    ({"keys": "ipv4.src: exact", "impl": "impl: linear"}, "searches priority tables"),
    ({"keys": "ipv4.ttl: range, ipv4.identification: range, udp.src_port: range", "impl": "impl: bit_vector"},
     "bytes per image"),
])
def test_the_front_end_refuses_what_a_bit_vector_cannot_hold(tmp_path: Path, kw: dict[str, object], why: str) -> None:
    text = _problems(tmp_path, **kw)
    assert "cannot be built as" in text and why in text, text


def _frame(src: int, dst: int, port: int) -> bytes:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 28, 0, 0, 64, 17, 0, src, dst)
    s = sum(struct.unpack("!10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    ip = ip[:10] + struct.pack("!H", ~s & 0xFFFF) + ip[12:]
    return bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00" + ip + struct.pack("!HHHH", 9, port, 8, 0)


def test_the_kernel_program_classifies_what_the_table_api_wrote(tmp_path: Path) -> None:
    """Entries added out of priority order, a tie (install order decides), a modify and deletes, each followed by
    packets through BPF_PROG_TEST_RUN against a first-match scan of the same entries."""
    need_bpf()
    from conformance.model import ControlState, PacketIn
    from targets.xdp.driver import DriverTables, XdpDriver

    prog = _program(tmp_path, keys="ipv4.src: ternary, ipv4.dst: lpm, udp.dst_port: range")
    assert L.table_layout(prog, prog.tables["acl"]).bitvec is not None
    driver = XdpDriver()
    rng = random.Random(11)
    rules: list[tuple[tuple[KeyElem, ...], int, int]] = []  # (match, priority, port) in install order

    def expected(src: int, dst: int, port: int) -> int | None:
        live = sorted(enumerate(rules), key=lambda r: (-r[1][1], r[0]))
        for _, (m, _, out) in live:
            if (_accepts(m[0], 32, src) and _accepts(m[1], 32, dst) and _accepts(m[2], 16, port)):
                return out
        return None

    def check(dp_rules: int) -> None:
        probes = [(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16)) for _ in range(40)]
        probes += [(m[0].a, m[1].a, m[2].a if m[2].kind == "range" else 80) for m, _, _ in rules]
        results = driver.run([PacketIn(1, _frame(*p)) for p in probes], {})
        got = [r.port if r.verdict == "forward" else None for r in results]
        assert got == [expected(*p) for p in probes], dp_rules

    try:
        driver.open(prog, tmp_path / "build")
        driver.install(ControlState())
        assert driver.bpf is not None
        driver._prio_fd("acl")  # the priorities beside the array, as the driver makes them for ops
        dp = DriverTables(prog, driver.bpf, driver.prio_fds)
        with dp.locked():
            t = dp.table("acl")
            for i in range(40):
                plen = rng.choice([0, 8, 16, 24, 32])
                lo = rng.randrange(1 << 16)
                mask = rng.choice([0, 0xFF000000, 0xFFFF0000])
                m: tuple[KeyElem, ...] = (KeyElem("mask", rng.getrandbits(32) & mask, mask),
                     KeyElem("prefix", rng.getrandbits(32) & (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, plen),
                     KeyElem("range", lo, min(0xFFFF, lo + rng.randrange(30000))))
                prio = rng.choice([10, 20, 20, 30])  # ties: the first installed wins
                t.add(m, "forward", (i + 1,), prio)
                rules.append((m, prio, i + 1))
        check(len(rules))
        with dp.locked():
            t = dp.table("acl")
            m, prio, _ = rules[3]
            t.modify(m, "forward", (500,), prio)
            rules[3] = (m, prio, 500)
            for k in (0, 7, 20):
                m, prio, _ = rules[k]
                t.delete(m, prio)
            rules[:] = [r for k, r in enumerate(rules) if k not in (0, 7, 20)]
        check(len(rules))
        # size 64: no default rank; the default is read from the defaults global on a miss
        assert not L.table_layout(prog, prog.tables["acl"]).bitvec.default_rank  # type: ignore[union-attr]
    finally:
        driver.close()


def test_a_default_rank_table_follows_default_changes_in_the_kernel(tmp_path: Path) -> None:
    """A table of at most 63 entries holds its default as the catch-all rank 63 of the image: setting the
    default through the table API republishes it, and misses follow (hits do not change)."""
    need_bpf()
    from conformance.model import ControlState, PacketIn
    from targets.xdp.driver import DriverTables, XdpDriver

    prog = _program(tmp_path, keys="ipv4.src: ternary, udp.dst_port: range", size=8)
    bv = L.table_layout(prog, prog.tables["acl"]).bitvec
    assert bv is not None and bv.default_rank
    driver = XdpDriver()
    hit, miss = _frame(0x0A000001, 1, 80), _frame(0x0B000001, 1, 80)

    def outcome() -> list[tuple[str, int | None]]:
        return [(r.verdict, r.port if r.verdict == "forward" else None)
                for r in driver.run([PacketIn(1, hit), PacketIn(1, miss)], {})]

    try:
        driver.open(prog, tmp_path / "build")
        driver.install(ControlState())
        assert driver.bpf is not None
        driver._prio_fd("acl")
        dp = DriverTables(prog, driver.bpf, driver.prio_fds)
        with dp.locked():
            dp.table("acl").add((KeyElem("mask", 0x0A000000, 0xFF000000), KeyElem("range", 0, 100)), "forward", (5,), 1)
        assert outcome() == [("forward", 5), ("drop", None)]  # the spec's default: drop
        dp.table("acl").set_default("forward", (9,))
        assert outcome() == [("forward", 5), ("forward", 9)]
        dp.table("acl").set_default("drop")
        assert outcome() == [("forward", 5), ("drop", None)]
    finally:
        driver.close()
