"""c3po_csum_ok, the parser's checksum test, folds once less than c3po_csum_fold: the runtime header's own C,
compiled natively with gcc, run on the sums where the shortcut could go wrong (the fold's carries, 0x10000 after two
16-bit folds, a zero sum) and on the word sums of real IPv4 headers, good and corrupted."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

from tests.conftest import need_tool

RUNTIME = Path(__file__).resolve().parents[1] / "targets" / "xdp" / "runtime"

PROBE = r"""
#include "c3po_xdp.h"
#include <stdio.h>

int main(void)
{
	unsigned long long s;
	while (scanf("%llx", &s) == 1)
		printf("%d %u\n", c3po_csum_ok(s), (unsigned)c3po_csum_fold(s));
	return 0;
}
"""


def rfc1071_ok(header: bytes) -> bool:
    s = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def word_sum(header: bytes) -> int:
    """What the generated code passes: the header's 32-bit words as loaded on a little-endian machine
    (c3po_csum_fixed)."""
    return sum(int.from_bytes(header[i:i + 4], "little") for i in range(0, len(header), 4))


def ipv4_header(rng: random.Random) -> bytes:
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, rng.randrange(20, 1500), rng.randrange(1 << 16), 0,
                              rng.randrange(256), rng.randrange(256), 0, rng.randbytes(4), rng.randbytes(4)))
    s = sum(int.from_bytes(h[i:i + 2], "big") for i in range(0, 20, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    h[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(h)


def test_one_fold_less_gives_the_same_verdict(tmp_path: Path) -> None:
    need_tool("gcc")
    triple = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "probe.c").write_text(PROBE, encoding="utf-8")
    subprocess.run(["gcc", "-O2", "-Wall", f"-I{RUNTIME}", f"-I/usr/include/{triple}", str(tmp_path / "probe.c"),
                    "-o", str(tmp_path / "probe")], check=True, capture_output=True, text=True)
    rng = random.Random(14)
    edges = [0, 1, 0xFFFE, 0xFFFF, 0x10000, 0x1FFFE, 0x1FFFF, 0x2FFFD, 0xFFFEFFFF, 0xFFFF0000, 0xFFFFFFFF,
             0x1_0000_0000, 0x1_0000_FFFE, 0x1_FFFF_FFFE, 0xFFFF_FFFF_FFFF]
    edges += [k * 0xFFFF for k in range(1, 70)]  # every multiple of 0xffff is a verifying sum
    edges += [rng.randrange(1 << 40) for _ in range(3000)]
    headers = [ipv4_header(rng) for _ in range(500)]
    bad = [h[:i] + bytes([h[i] ^ (1 << rng.randrange(8))]) + h[i + 1:] for h in headers for i in [rng.randrange(20)]]
    sums = edges + [word_sum(h) for h in headers + bad]
    out = subprocess.run([str(tmp_path / "probe")], input="".join(f"{s:x}\n" for s in sums), capture_output=True,
                         text=True, check=True).stdout.split("\n")
    results = [tuple(int(x) for x in line.split()) for line in out if line]
    assert len(results) == len(sums)
    for s, (ok, fold) in zip(sums, results, strict=True):
        assert ok == (fold == 0xFFFF), hex(s)
    verdicts = [ok for ok, _ in results[len(edges):]]
    assert verdicts == [int(rfc1071_ok(h)) for h in headers + bad]
    assert all(verdicts[:len(headers)]) and not any(verdicts[len(headers):])  # a flipped bit never verifies
