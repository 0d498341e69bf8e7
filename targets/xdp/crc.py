"""CRCs 16 bits at a time (hash(crc16|crc32, ...) over PAIRS_MIN bytes or more): two 65,536-entry tables of
2-byte steps and the function that uses them, written into the program that takes such a hash (the runtime's
macro C3PO_CRC_BYTES16 does the steps).

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
ALGORITHMS = {"crc16": (0xA001, 16, "0", "crc & 0xffff"),  # reflected polynomial, width, initial and final value
              "crc32": (0xEDB88320, 32, "0xffffffff", "~crc & 0xffffffff")}


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
    """The tables (static const: .rodata) and c3po_<algorithm>_pairs, for the program file."""
    _, width, init, final = ALGORITHMS[algorithm]
    digits = width // 4
    slices = []
    for k, tab in enumerate(tables(algorithm)):
        rows = ",\n\t\t".join(", ".join(f"0x{v:0{digits}x}" for v in tab[i:i + 16]) for i in range(0, 65536, 16))
        slices.append(f"\t{{ /* slice {k}: two bytes{' followed by two zero bytes' if k else ''} */\n\t\t{rows}\n\t}}")
    body = ",\n".join(slices)
    return (f"/* {algorithm.upper()} 16 bits at a time (targets/xdp/crc.py): hashes of {PAIRS_MIN} bytes or more;"
            f" {2 * 65536 * width // 8 // 1024} KiB of .rodata. */\n"
            f"static const __u{width} c3po_{algorithm}_tab16[2][65536] = {{\n{body}\n}};\n\n"
            f"static __always_inline __u64 c3po_{algorithm}_pairs(const __u8 *p, __u32 n)\n{{\n"
            f"\t__u32 crc = {init};\n"
            f"\tC3PO_CRC_BYTES16(crc, c3po_{algorithm}_tab16, c3po_{algorithm}_tab, p, n);\n"
            f"\treturn {final};\n}}\n")
