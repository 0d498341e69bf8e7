"""CRCs 16 bits at a time (hash(crc16|crc32, ...) over PAIRS_MIN bytes or more): two 65,536-entry tables of
2-byte steps. The program that takes such a hash defines their values (c_text) before including the runtime
header, which declares the table and c3po_crc16_pairs / c3po_crc32_pairs (the steps: macro C3PO_CRC_BYTES16).

Slice 0, entry v: the CRC register after the two bytes v & 0xff, v >> 8 (the little-endian 16-bit load of the
packet's bytes) from 0; slice 1, entry v: after the same two bytes followed by two zero bytes. CRC is linear, so
four bytes are one step of two independent loads: `x = crc ^ word; crc = tab[1][x & 0xffff] ^ tab[0][x >> 16]`
(a register of at most 32 bits leaves nothing of itself after four bytes); a last pair is `(crc >> 16) ^
tab[0][(crc ^ pair) & 0xffff]`, a last odd byte a step of the runtime's byte table.

The trade: 256 KiB of .rodata for CRC-16 (512 KiB for CRC-32) in each program that hashes PAIRS_MIN bytes or more,
for 4 dependent steps over 14 bytes where slicing-by-4 (1 KiB / 4 KiB, in the runtime header, kept for shorter
hashes: at most one pair there, not worth a cold table) takes 4 steps of four loads each with their index
arithmetic. Measured on the VXLAN gateway (its 14-byte outer source-port hash; docs/performance.md, "CRCs 16
bits at a time"): the CRC cost ~4 ns of the mix with slicing-by-4, ~2.5 with one 64K table (7 dependent loads),
~1 with these two. tests/test_xdp_crc_pairs.py checks the tables and the compiled function against the
reference interpreter's CRC."""

from __future__ import annotations

from functools import cache

PAIRS_MIN = 4  # bytes: from here on a hash takes the 16-bit tables
# reflected polynomial, width, initial register, final value of a register {} (C)
ALGORITHMS = {"crc16": (0xA001, 16, 0, "({} & 0xffff)"),
              "crc32": (0xEDB88320, 32, 0xFFFFFFFF, "(~{} & 0xffffffff)")}


def uses_pairs(total: int) -> bool:
    """Whether a hash over `total` bytes takes the 16-bit tables."""
    return total >= PAIRS_MIN


@cache
def tables(algorithm: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Slices 0 and 1 (see the module's doc)."""
    poly = ALGORITHMS[algorithm][0]
    byte = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        byte.append(c)
    t0 = tuple(((byte[v & 0xff] >> 8) ^ byte[(byte[v & 0xff] ^ (v >> 8)) & 0xff]) for v in range(65536))
    t1 = tuple((t0[v] >> 16) ^ t0[t0[v] & 0xffff] for v in range(65536))
    return t0, t1


def c_text(algorithm: str) -> str:
    """The tables' values as the macro C3PO_<ALGORITHM>_TAB16 (defined before the runtime header, which then
    declares the table, static const: .rodata, and c3po_<algorithm>_pairs). Preprocessor lines: the mutation
    analysis (conformance/mutate_ops.py) takes no site from them, as from the runtime header's own tables; the
    tables are checked by tests/test_xdp_crc_pairs.py."""
    width = ALGORITHMS[algorithm][1]
    digits = width // 4
    lines = [f"/* {algorithm.upper()} 16 bits at a time (targets/xdp/crc.py): hashes of {PAIRS_MIN} bytes or more;"
             f" {2 * 65536 * width // 8 // 1024} KiB of .rodata */",
             f"#define C3PO_{algorithm.upper()}_TAB16"]
    for k, tab in enumerate(tables(algorithm)):
        lines.append(f"\t{{ /* slice {k}: two bytes{' followed by two zero bytes' if k else ''} */")
        lines += ["\t\t" + ", ".join(f"0x{v:0{digits}x}" for v in tab[i:i + 16]) + ","
                  for i in range(0, 65536, 16)]
        lines.append("\t}" + ("," if k == 0 else ""))
    return " \\\n".join(lines[1:]).join([lines[0] + "\n", "\n"])


def register(algorithm: str, data: bytes, start: int | None = None) -> int:
    """The CRC register after `data` from `start` (the algorithm's initial value if None), before its final
    step: what an entry holds for its hashes' key prefixes (crcpre.py)."""
    poly, _, crc, _ = ALGORITHMS[algorithm]
    if start is not None:
        crc = start
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc
