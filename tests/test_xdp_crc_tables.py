"""The xdp runtime's slicing-by-4 CRC tables, checked against a bitwise CRC: a wrong entry in slices 1-3 would
show only for hash inputs whose bytes reach it at that position, which few vectors do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HEADER = Path(__file__).resolve().parent.parent / "targets" / "xdp" / "runtime" / "c3po_xdp.h"
CRCS = {"c3po_crc16_tab": 0xA001, "c3po_crc32_tab": 0xEDB88320}  # reflected polynomials


def bitwise(poly: int, data: bytes) -> int:
    """The CRC register after `data` from 0, one bit at a time: the definition the tables must agree with."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def header_table(name: str) -> list[list[int]]:
    text = HEADER.read_text(encoding="utf-8")
    body = re.search(rf"{name}\[4\]\[256\] = \{{(.*?)\n\}};", text, re.S)
    assert body, f"{name} not found in {HEADER}"
    slices = re.findall(r"\{ /\*[^*]*\*/(.*?)\t\}", body.group(1), re.S)
    return [[int(v, 16) for v in re.findall(r"0x[0-9a-f]+", s)] for s in slices]


@pytest.mark.parametrize("name", sorted(CRCS))
def test_each_slice_is_one_byte_followed_by_k_zero_bytes(name: str) -> None:
    tab = header_table(name)
    assert [len(s) for s in tab] == [256] * 4
    for k, s in enumerate(tab):
        assert s == [bitwise(CRCS[name], bytes([i]) + bytes(k)) for i in range(256)], f"{name} slice {k}"
