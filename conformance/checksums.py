"""Checksums and hashes as the spec defines them (section 2 and section 10), written for clarity.

The one's-complement sum uses the fact that 2**16 = 1 (mod 0xffff): the big-endian integer of the bytes, taken
mod 0xffff, is the folded 16-bit sum of its words. The only subtlety is the representation of zero, which
end-around-carry arithmetic writes as 0xffff unless every word is 0.
"""

from __future__ import annotations

import zlib

__all__ = ["crc16_arc", "crc32", "ipv4_header_checksum", "l4_incremental", "ones_add", "ones_sum"]


def ones_sum(data: bytes) -> int:
    """RFC 1071 folded one's-complement sum of the 16-bit big-endian words (odd length: a zero byte appended)."""
    if len(data) % 2:
        data += b"\0"
    value = int.from_bytes(data, "big")
    if value == 0:
        return 0
    rem = value % 0xFFFF
    return rem if rem else 0xFFFF


def ipv4_header_checksum(header_with_zero_checksum: bytes) -> int:
    """The value to store in the checksum field: the complement of the sum with the field taken as 0."""
    return ~ones_sum(header_with_zero_checksum) & 0xFFFF


def ones_add(a: int, b: int) -> int:
    """16-bit one's-complement addition with end-around carry."""
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def l4_incremental(checksum: int, old_words: list[int], new_words: list[int]) -> int:
    """RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), applied for every word that changed (unchanged ones are skipped,
    so the result does not depend on how many words were compared)."""
    s = ~checksum & 0xFFFF
    for m, m2 in zip(old_words, new_words, strict=True):
        if m != m2:
            s = ones_add(ones_add(s, ~m & 0xFFFF), m2)
    return ~s & 0xFFFF


def _crc16_arc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC16_TABLE = _crc16_arc_table()


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC: poly 0x8005 reflected (0xa001), init 0, no final xor. check("123456789") == 0xbb3d."""
    crc = 0
    table = _CRC16_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, the Ethernet/zlib CRC. check("123456789") == 0xcbf43926."""
    return zlib.crc32(data) & 0xFFFFFFFF
