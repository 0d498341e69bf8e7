"""Plain libpcap files (the format tcpdump and Wireshark read), written with `struct`: no scapy needed.

pcap carries frames, not ingress ports or expectations: reading gives one vector per frame on one port, with
the expected results left to the oracle; writing stores frames in order with deterministic timestamps. Vectors
with expected results also get `<name>.expected.pcap`: each frame that leaves the program (anything not dropped),
stamped with the timestamp of the input frame that produced it, so the two files line up in Wireshark.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .model import ControlState, PacketIn, Vector

LINKTYPE_ETHERNET = 1
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


class PcapError(ValueError):
    """A file that is not a readable pcap; the message names the file and the record."""


def write_pcap(path: str | Path, frames: list[tuple[int, bytes]], snaplen: int = 65535,
               stamps: list[int] | None = None) -> None:
    """Frames as (port, bytes); the port is not representable in pcap and is dropped. Timestamps are `stamps`
    (seconds), by default the frame's index, so the file is the same bytes on every run."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)]
    for i, (_port, data) in enumerate(frames):
        out.append(struct.pack("<IIII", i if stamps is None else stamps[i], 0, len(data), len(data)) + data)
    Path(path).write_bytes(b"".join(out))


def expected_path(path: str | Path) -> Path:
    """Where the expected output frames of `path` go: `x.pcap` -> `x.expected.pcap`."""
    p = Path(path)
    return p.with_name(p.stem + ".expected.pcap")


def write_vectors_pcap(path: str | Path, vectors: list[Vector]) -> Path | None:
    """The input frames to `path` and, when the vectors carry expected results, the frames that leave the program
    to `expected_path(path)` (returned); an output frame has the timestamp of the input frame it came from."""
    inputs = [(pk.port, pk.data) for v in vectors for pk in v.packets]
    write_pcap(path, inputs)
    if not any(v.expected for v in vectors):
        return None
    outputs: list[tuple[int, bytes]] = []
    stamps: list[int] = []
    n = 0
    for v in vectors:
        for i, _pk in enumerate(v.packets):
            if i < len(v.expected) and v.expected[i].verdict != "drop":
                outputs.append((v.expected[i].port or 0, v.expected[i].data))
                stamps.append(n)
            n += 1
    out = expected_path(path)
    write_pcap(out, outputs, stamps=stamps)
    return out


def read_pcap(path: str | Path) -> list[bytes]:
    p = Path(path)
    try:
        blob = p.read_bytes()
    except OSError as exc:
        raise PcapError(f"{p}: cannot read: {exc.strerror}") from None
    if len(blob) < 24 or blob[:4] not in _MAGICS:
        raise PcapError(
            f"{p}: not a pcap file (bad magic; pcapng is not supported, convert with editcap -F pcap)"
        )
    endian, _ = _MAGICS[blob[:4]]
    linktype = struct.unpack(endian + "I", blob[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{p}: link type {linktype} is not Ethernet (1)")
    frames: list[bytes] = []
    pos = 24
    while pos < len(blob):
        if pos + 16 > len(blob):
            raise PcapError(f"{p}: record {len(frames)}: truncated record header at byte {pos}")
        _sec, _frac, incl, _orig = struct.unpack(endian + "IIII", blob[pos : pos + 16])
        pos += 16
        if pos + incl > len(blob):
            raise PcapError(f"{p}: record {len(frames)}: {incl} bytes announced, {len(blob) - pos} left")
        frames.append(blob[pos : pos + incl])
        pos += incl
    return frames


def vectors_from_pcap(path: str | Path, port: int = 0) -> list[Vector]:
    name = Path(path).stem
    return [
        Vector(
            f"{name}#{i}",
            ControlState(),
            [PacketIn(port, data)],
            provenance={"generator": "pcap", "file": str(path), "record": i},
        )
        for i, data in enumerate(read_pcap(path))
    ]
