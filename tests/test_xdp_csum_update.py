"""The IPv4 header checksum's incremental update (deparse.csum_incremental: RFC 1624 eqn. 3 as HC + (0xffff + m -
m') per word, folded once and brought into 0..0xfffe) and the whole-word stores of the fields it reads back
(deparse.word_store), in the kernel against the reference interpreter: the TTL decremented (and wrapping at 0), a
field left as it was, sub-byte fields (ECN, the flags) written, on headers whose checksum arrives in either form
of zero (0x0000 and 0xffff both verify when the other words sum to 0 mod 0xffff) and on headers whose new sum is
0 mod 0xffff, where the result must be stored as 0x0000 as the full recomputation writes it."""

from __future__ import annotations

import random
import struct
from pathlib import Path

from c3po_compiler import load_program
from conformance.checksums import ipv4_header_checksum, ones_sum
from targets.xdp import XdpTarget

from .conftest import ROOT, kernel_matches_interpreter, need_bpf

SPEC = """
c3po: 1
program: csumup
include: [std/ethernet, std/ipv4]
parser:
  start: ethernet
  on_error: {default: drop, checksum: drop, reject: to_host}
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}, default: accept}
    ipv4: {extract: ipv4, verify: [ipv4]}
control:
  - if: "ipv4.protocol == 1"
    then: ["ipv4.ttl = ipv4.ttl - 1", "update_checksum(ipv4)", "forward(1)"]
  - if: "ipv4.protocol == 2"
    then: ["ipv4.ecn = 3", "ipv4.flags = (bit<3>) ipv4.ttl", "update_checksum(ipv4)", "forward(2)"]
  - if: "ipv4.protocol == 3"
    then: ["ipv4.ttl = ipv4.ttl", "update_checksum(ipv4)", "forward(3)"]
"""

PROTOCOLS = (1, 2, 3)

# One word written: the only program whose update can start from a sum of 0 (the checksum 0xffff, the word written
# from 0xffff to 0). Where several words are tracked, an unchanged one adds ~m + m = 0xffff.
SPEC_ONE_WORD = SPEC[:SPEC.index("control:")] + """control:
  - ipv4.identification = 0
  - update_checksum(ipv4)
  - forward(4)
"""


def _spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "csumup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _header(rng: random.Random, proto: int, ttl: int, ident: int | None = None) -> bytearray:
    return bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, rng.randrange(256), rng.randrange(20, 1500),
                                 rng.randrange(1 << 16) if ident is None else ident, rng.randrange(1 << 16), ttl,
                                 proto, 0, rng.randbytes(4), rng.randbytes(4)))


def _with_checksum(h: bytearray, checksum: int, at: int = 4) -> bytearray:
    """The word at byte `at` (the identification) chosen so that `checksum` verifies: all the words, the checksum
    included, sum to 0 mod 0xffff."""
    h[at:at + 2] = b"\0\0"
    h[10:12] = checksum.to_bytes(2, "big")
    h[at:at + 2] = ((-ones_sum(bytes(h))) % 0xFFFF).to_bytes(2, "big")
    assert ones_sum(bytes(h)) == 0xFFFF
    return h


def _with_sum_zero(h: bytearray, at: int = 4) -> bytearray:
    """The other words sum to 0 mod 0xffff (then 0x0000 and 0xffff both verify)."""
    return _with_checksum(h, 0, at)


def _frame(h: bytearray, checksum: int | None = None) -> bytes:
    h[10:12] = (ipv4_header_checksum(bytes(h[:10] + b"\0\0" + h[12:])) if checksum is None else checksum
                ).to_bytes(2, "big")
    return bytes(6 * [0x02]) + bytes(6 * [0x04]) + b"\x08\x00" + bytes(h) + bytes(range(26))


def _frames() -> list[bytes]:
    rng = random.Random(1624)
    frames = []
    for proto in PROTOCOLS:
        for ttl in (0, 1, 2, 64, 255):
            frames += [_frame(_header(rng, proto, ttl)) for _ in range(6)]
            # The other words sum to 0 mod 0xffff: 0x0000 and 0xffff both verify.
            for form in (0x0000, 0xFFFF):
                frames.append(_frame(_with_sum_zero(_header(rng, proto, ttl)), form))
        # After the update the other words sum to 0 mod 0xffff: the TTL word falls by 0x100 (proto 1).
        for ttl in (1, 2, 200):
            h = _header(rng, proto, ttl)
            h[8] = (ttl - 1) & 0xFF if proto == 1 else ttl
            h = _with_sum_zero(h)
            h[8] = ttl
            frames.append(_frame(h))
    return frames


def test_the_update_is_summed_at_once_and_the_ttl_stored_as_its_word() -> None:
    c = XdpTarget().render(load_program(ROOT / "spec" / "examples" / "router.yaml").program)["router.bpf.c"]
    assert "__u64 c = *(__u16 *)(h_ipv4 + 10) + 0xffff;" in c
    assert "c += oc_ipv4[0] - *(__u16 *)(h_ipv4 + 8); /* m - m' */" in c
    assert "*(__u16 *)(h_ipv4 + 10) = (__u16)(c + ((c + 1) >> 16));" in c
    assert "c3po_st_in16(h_ipv4 + 8, 0, ((c3po_get(h_ipv4 + 8, 1, 0, 8) - 1ULL) & 0xffULL));" in c
    assert "c3po_csum_step" not in c  # no L4 checksum in the router


def test_sub_byte_fields_in_a_checksummed_word_are_stored_as_the_word(tmp_path: Path) -> None:
    c = XdpTarget().render(load_program(_spec(tmp_path)).program)["csumup.bpf.c"]
    assert "c3po_set(h_ipv4 + 0, 2, 0, 2, 3ULL);" in c  # ECN: the low 2 bits of word 0
    assert "c3po_set(h_ipv4 + 6, 2, 13, 3, " in c  # the flags: the top 3 bits of word 3
    assert "c3po_st_in16(h_ipv4 + 8, 0, " in c


def _run(prog_path: Path, frames: list[bytes], tmp_path: Path) -> list[tuple[str, int | None, bytes]]:
    return kernel_matches_interpreter(load_program(prog_path).program, frames, tmp_path)


def test_the_kernel_stores_the_checksum_the_interpreter_computes(tmp_path: Path) -> None:
    need_bpf()
    frames = _frames()
    want = _run(_spec(tmp_path), frames, tmp_path)
    out = [data[24:26] for verdict, _, data in want if verdict == "forward"]
    assert len(out) == len(frames)  # every frame verified and was updated
    assert out.count(b"\0\0") >= 9  # the edge taken: a zero sum stored as 0x0000 (incoming 0xffff included)
    assert {port for _, port, _ in want} == set(PROTOCOLS)


def test_an_update_from_a_zero_sum_stores_0x0000_and_the_last_step_carries(tmp_path: Path) -> None:
    """The checksum arrives as 0xffff and the one word written goes from 0xffff to 0: HC + 0xffff + m - m' is
    0x2fffd, the largest sum, whose fold 0xffff (0 mod 0xffff) the last step must store as 0x0000."""
    need_bpf()
    rng = random.Random(1071)
    frames = [_frame(_with_sum_zero(_header(rng, 6, ttl, 0xFFFF), at=2), 0xFFFF) for ttl in (1, 64, 255)]
    frames += [_frame(_header(rng, 6, 64, 0xFFFF)), _frame(_with_sum_zero(_header(rng, 6, 9, 0xFFFF), at=2), 0)]
    # HC + m = 0xfffe: the sum is 0x1fffd, its fold 0xfffe, below the last step's carry: 0xfffe is stored.
    for m in (0x0001, 0x7FFF, 0xFFFE):
        frames.append(_frame(_with_checksum(_header(rng, 6, 64, m), 0xFFFE - m, at=2), 0xFFFE - m))
    # HC + m = 0x10000: the sum is 0x1ffff, its fold 0x10000, which the last step takes to 1.
    for m in (0x8000, 0xFFFF):
        frames.append(_frame(_with_checksum(_header(rng, 6, 64, m), 0x10000 - m, at=2), 0x10000 - m))
    want = _run(_spec(tmp_path, SPEC_ONE_WORD), frames, tmp_path)
    assert [data[24:26] for _, _, data in want[:3]] == [b"\0\0"] * 3
    assert [data[24:26] for _, _, data in want[-5:-2]] == [b"\xff\xfe"] * 3
    assert [data[24:26] for _, _, data in want[-2:]] == [b"\x00\x01"] * 2
    assert all(verdict == "forward" for verdict, _, _ in want)
