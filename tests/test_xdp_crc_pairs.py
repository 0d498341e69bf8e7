"""CRCs 16 bits at a time (targets/xdp/crc.py): the two 65,536-entry slices are the CRC register after two bytes
(and two zero bytes), and the generated program's hash(crc16|crc32, ...) gives the reference interpreter's value
for every length the xdp target hashes (1 to 64 bytes: odd and even, below and above crc.PAIRS_MIN, a multiple of
8 or not), in place in the packet and through a hash buffer, in the kernel."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from c3po_compiler import load_program
from conformance.checksums import crc16_arc, crc32
from conformance.interpreter import Interpreter
from conformance.model import ControlState, PacketIn
from targets.xdp import crc
from tests.conftest import ROOT, need_bpf
from tests.test_xdp_crc_tables import bitwise as register  # the CRC register bit by bit, from 0

POLY = {"crc16": 0xA001, "crc32": 0xEDB88320}


@pytest.mark.parametrize("algorithm", sorted(POLY))
def test_slices_are_two_bytes_then_two_zero_bytes(algorithm: str) -> None:
    t0, t1 = crc.tables(algorithm)
    assert len(t0) == len(t1) == 65536
    rng = random.Random(algorithm)
    for v in [0, 1, 0xFF, 0x100, 0xFFFF, *rng.sample(range(65536), 600)]:
        two = v.to_bytes(2, "little")
        assert t0[v] == register(POLY[algorithm], two), (algorithm, v)
        assert t1[v] == register(POLY[algorithm], two + bytes(2)), (algorithm, v)


def pairs_model(algorithm: str, data: bytes) -> int:
    """C3PO_CRC_BYTES16 step by step (8-byte words as two 4-byte steps, a last pair, a last byte)."""
    t0, t1 = crc.tables(algorithm)
    init, final = (0, 0xFFFF) if algorithm == "crc16" else (0xFFFFFFFF, 0xFFFFFFFF)
    c, i = init, 0
    while i + 4 <= len(data):
        x = c ^ int.from_bytes(data[i:i + 4], "little")
        c, i = t1[x & 0xFFFF] ^ t0[x >> 16], i + 4
    if i + 2 <= len(data):
        c, i = (c >> 16) ^ t0[(c ^ int.from_bytes(data[i:i + 2], "little")) & 0xFFFF], i + 2
    if i < len(data):
        c = (c >> 8) ^ register(POLY[algorithm], bytes([(c ^ data[i]) & 0xFF]))
    return (c & 0xFFFF) if algorithm == "crc16" else (~c & final)


def test_the_steps_give_the_interpreters_crc() -> None:
    rng = random.Random(16)
    for n in [*range(0, 66), 1500]:
        for data in (rng.randbytes(n), bytes(n), b"\xff" * n):
            assert pairs_model("crc16", data) == crc16_arc(data), n
            assert pairs_model("crc32", data) == crc32(data), n


# A 69-byte header of fields of 1, 2, 3, 4, 5, 7, 8, 9, 14 and 16 bytes; each hash is written to a 16-bit
# (crc16) or 32-bit (crc32) field of the next header. Field lists in order within the header are hashed in place, the others through a buffer.
WIDTHS = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 7, "g": 8, "h": 9, "i": 14, "j": 16}
HASHES = [["a"], ["b"], ["c"], ["d"], ["e"], ["f"], ["g"], ["h"], ["i"], ["j"], ["a", "b"], ["c", "d"],
          ["i", "j"], ["g", "h", "i", "j"], ["d", "e", "f", "g", "h", "i", "j"], ["j", "a"], ["b", "a"],
          ["j", "i", "j", "i"], ["j", "i", "j", "i", "a", "b"], ["j", "i", "j", "i", "a", "c"]]
SPEC = """
c3po: 1
program: crc_pairs
include: [{eth}]
headers:
  blob:
    fields: {{{data}}}
  sums:
    fields: {{{out}}}
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet, next: blob}}
    blob: {{extract: blob, next: sums}}
    sums: {{extract: sums}}
control:
{sets}
  - forward(1)
"""


def spec_text() -> str:
    out = [f"{a}{k}: {w}" for k in range(len(HASHES)) for a, w in (("s", 16), ("l", 32))]
    sets = [f"  - sums.{a}{k} = hash({alg}, {', '.join(f'blob.{f}' for f in fs)})"
            for k, fs in enumerate(HASHES) for a, alg in (("s", "crc16"), ("l", "crc32"))]
    return SPEC.format(eth=ROOT / "spec/protocols/ethernet.yaml",
                       data=", ".join(f"{f}: {8 * n}" for f, n in WIDTHS.items()),
                       out=", ".join(out), sets="\n".join(sets))


def test_generated_hashes_match_the_interpreter_in_the_kernel(tmp_path: Path) -> None:
    need_bpf()
    from targets.xdp.driver import XdpDriver

    spec = tmp_path / "crc_pairs.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    prog = load_program(spec).program
    rng = random.Random(32)
    size = 14 + sum(WIDTHS.values()) + 6 * len(HASHES)
    frames = [rng.randbytes(size) for _ in range(40)] + [bytes(size), b"\xff" * size]
    packets = [PacketIn(2, f) for f in frames]
    ref = Interpreter(prog)
    ref.install(ControlState())
    want = ref.run(packets, {})
    with XdpDriver() as drv:
        drv.open(prog, tmp_path / "out")
        drv.install(ControlState())
        got = drv.run(packets, {})
    for p, g, w in zip(packets, got, want, strict=True):
        assert (g.verdict, g.port, g.data) == (w.verdict, w.port, w.data), p.data.hex()
    src = next((tmp_path / "out").rglob("*.bpf.c")).read_text()
    # from crc.PAIRS_MIN bytes on, the 16-bit tables; below, the slicing-by-4 bytes
    assert "c3po_crc16_pairs(h_blob + 6, 4)" in src and "c3po_crc32_pairs(h_blob + 6, 4)" in src
    assert "c3po_crc16_bytes(h_blob + 1, 2)" in src and "c3po_crc16_bytes(h_blob + 0, 3)" in src
    assert "c3po_crc32_pairs((sc->hb + 384), 64)" in src  # through a buffer (in the scratch map: 448 bytes)
    assert "#define C3PO_CRC32_TAB16 \\\n" in src and "#define C3PO_CRC16_TAB16 \\\n" in src
    # the reference is the interpreter's CRC over the bytes as they are in the frame
    body = frames[0][14:14 + 69]
    assert int.from_bytes(want[0].data[14 + 69:14 + 71], "big") == crc16_arc(body[:1])
    assert int.from_bytes(want[0].data[14 + 71:14 + 75], "big") == crc32(body[:1])


def test_short_hashes_do_not_take_the_tables() -> None:
    from targets.xdp import XdpTarget

    spec = ROOT / "spec/examples/vxlan_gateway.yaml"
    src = XdpTarget().render(load_program(spec).program)["vxlan_gateway.bpf.c"]
    assert "c3po_crc16_pairs(h_ethernet + 0, 14)" in src and "C3PO_CRC32_TAB16" not in src
    assert [crc.uses_pairs(n) for n in (1, 2, 3, 4, 64)] == [False, False, False, True, True]


def test_the_tables_give_the_mutation_analysis_no_sites() -> None:
    """The values are preprocessor lines, like the runtime header's tables: 262,144 constants that vectors reach
    a few of would swamp a mutant sample (tests above check them instead)."""
    from conformance.mutate_ops import find_mutants

    for algorithm in sorted(POLY):
        text = crc.c_text(algorithm)
        assert text.count("0x") == 2 * 65536 and find_mutants(text, "x.bpf.c", "c", "x") == []
