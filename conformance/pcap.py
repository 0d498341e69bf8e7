"""Plain libpcap files (the format tcpdump and Wireshark read), written with `struct`: no scapy needed.

pcap carries frames, not ingress ports or expectations: reading gives one vector per frame on one port, with
the expected results left to the oracle; writing stores frames in order with deterministic timestamps. Vectors
with expected results also get `<name>.expected.pcap`: each frame that leaves the program (anything not dropped),
stamped with the timestamp of the input frame that produced it, so the two files line up in Wireshark.

Beside them, `<name>.ports/` splits both by port the way BMv2's pcap mode (`simple_switch --use-files`) names
its files, interface X reading `X_in.pcap` and writing `X_out.pcap`: `<port>_in.pcap` holds the frames that
enter on that port and `<port>_expected.pcap` the frames that should leave on it (forward: the egress port,
reflect: the ingress port, to_host: the CPU port). Every port with expected output also gets an `_in.pcap`,
empty if nothing enters there, since BMv2 opens one for each interface. Frames keep their global timestamps:
BMv2 merges the input files by timestamp, so it sees the frames in vector order.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

from c3po_compiler.input_files import VECTOR_LIMIT, InputFileError, read_input
from c3po_compiler.target_api import write_atomic
from c3po_compiler.text import terminal_text

from .model import ControlState, Expected, PacketIn, Vector

LINKTYPE_ETHERNET = 1
CPU_PORT = 510  # where the p4 target sends to_host frames (targets/p4/emitter.py DEFAULT_CPU_PORT)
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
    write_atomic(path, b"".join(out))


def expected_path(path: str | Path) -> Path:
    """Where the expected output frames of `path` go: `x.pcap` -> `x.expected.pcap`."""
    p = Path(path)
    return p.with_name(p.stem + ".expected.pcap")


def ports_path(path: str | Path) -> Path:
    """Where the per-port files of `path` go: `x.pcap` -> `x.ports/`."""
    p = Path(path)
    return p.with_name(p.stem + ".ports")


def egress_port(pk: PacketIn, e: Expected, cpu_port: int = CPU_PORT) -> int | None:
    """The port an expected result leaves on, None for a drop: forward to its port, reflect to the ingress port,
    to_host to the CPU port."""
    if e.verdict == "drop":
        return None
    if e.verdict == "to_host":
        return cpu_port
    if e.verdict == "reflect":
        return pk.port
    return e.port if e.port is not None else 0


def write_vectors_pcap(path: str | Path, vectors: list[Vector], cpu_port: int = CPU_PORT) -> Path | None:
    """The input frames to `path` and their split by port to `ports_path(path)`; when the vectors carry expected
    results, also the frames that leave the program to `expected_path(path)` (returned) and to the per-port
    `<port>_expected.pcap`. A frame is stamped with the index of its input frame in the whole export."""
    inputs: list[tuple[int, bytes]] = []
    sent: list[tuple[int, int, bytes]] = []  # (stamp, egress port, frame)
    for v in vectors:
        for i, pk in enumerate(v.packets):
            port = egress_port(pk, v.expected[i], cpu_port) if i < len(v.expected) else None
            if port is not None:
                sent.append((len(inputs), port, v.expected[i].data))
            inputs.append((pk.port, pk.data))
    write_pcap(path, inputs)
    _write_ports(ports_path(path), [(n, port, data) for n, (port, data) in enumerate(inputs)], sent)
    if not any(v.expected for v in vectors):
        return None
    out = expected_path(path)
    write_pcap(out, [(port, data) for _, port, data in sent], stamps=[n for n, _, _ in sent])
    return out


_PORT_FILE = re.compile(r"\d+_(?:in|expected|out)\.pcap")


def _write_ports(directory: Path, inputs: list[tuple[int, int, bytes]], sent: list[tuple[int, int, bytes]]) -> None:
    """`<port>_in.pcap` for every port frames enter or leave on, `<port>_expected.pcap` for every port frames
    leave on, from (stamp, port, frame) lists. The port files of an earlier export that this one does not write
    are removed, and so are BMv2's `<port>_out.pcap`: they belong to the inputs they came from."""
    files: dict[str, list[tuple[int, int, bytes]]] = {}
    for port in sorted({p for _, p, _ in inputs} | {p for _, p, _ in sent}):
        files[f"{port}_in.pcap"] = [f for f in inputs if f[1] == port]
    for port in sorted({p for _, p, _ in sent}):
        files[f"{port}_expected.pcap"] = [f for f in sent if f[1] == port]
    directory.mkdir(exist_ok=True)
    for old in directory.iterdir():
        if _PORT_FILE.fullmatch(old.name) and old.name not in files:
            old.unlink()
    for name, frames in files.items():
        write_pcap(directory / name, [(port, data) for _, port, data in frames], stamps=[n for n, _, _ in frames])


def read_pcap(path: str | Path, bmv2: bool = False) -> list[bytes]:
    """The frames of a pcap file. `bmv2` reads BMv2's `<port>_out.pcap` too: an empty file (nothing sent, or the
    header not flushed yet) is no frames, and its link type 0 is taken as Ethernet (BMv2 writes Ethernet frames
    under the link type 0 of `pcap_open_dead(0, 0)`)."""
    p = Path(path)
    try:  # a regular file of at most C3PO_MAX_VECTOR_BYTES (c3po_compiler.input_files)
        blob = read_input(p, "pcap file", VECTOR_LIMIT)
    except InputFileError as exc:
        raise PcapError(f"{p}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
    if bmv2 and not blob:
        return []
    if len(blob) < 24 or blob[:4] not in _MAGICS:
        raise PcapError(
            f"{p}: not a pcap file (bad magic; pcapng is not supported, convert with editcap -F pcap)"
        )
    endian, _ = _MAGICS[blob[:4]]
    linktype = struct.unpack(endian + "I", blob[20:24])[0]
    if linktype != LINKTYPE_ETHERNET and not (bmv2 and linktype == 0):
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


def compare_ports(directory: str | Path) -> list[str]:
    """After BMv2 ran on an export's `<name>.ports/` (see `ports_path`): for every port of the export, whether
    the frames BMv2 wrote to `<port>_out.pcap` are the frames of `<port>_expected.pcap`, in order. Returns a
    line per port that differs (the first frame that differs, the counts), none when they all agree. Whole frames are compared: pcap has no care masks."""
    d = Path(directory)
    ports = sorted({int(f.name.split("_")[0]) for f in d.iterdir() if _PORT_FILE.fullmatch(f.name)})
    problems: list[str] = []
    for port in ports:
        want = read_pcap(d / f"{port}_expected.pcap") if (d / f"{port}_expected.pcap").exists() else []
        if not (d / f"{port}_out.pcap").exists():
            problems.append(f"port {port}: no {port}_out.pcap (simple_switch --use-files needs -i {port}@{port})")
            continue
        got = read_pcap(d / f"{port}_out.pcap", bmv2=True)
        k = next((k for k, (w, g) in enumerate(zip(want, got, strict=False)) if w != g), None)
        if k is not None:
            problems.append(f"port {port}: frame {k} (the first to differ): expected {want[k].hex()}, "
                            f"sent {got[k].hex()}")
        if len(want) != len(got):
            problems.append(f"port {port}: {len(want)} frame(s) expected, {len(got)} sent")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m conformance.pcap DIR`: compare BMv2's output files in an export's ports directory with the
    expected ones; exit status 1 when they differ."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m conformance.pcap",
                                 description="compare BMv2's <port>_out.pcap with <port>_expected.pcap")
    ap.add_argument("directory", help="the NAME.ports directory of a pcap export")
    args = ap.parse_args(argv)
    try:
        problems = compare_ports(args.directory)
    except (OSError, PcapError) as exc:
        print(f"{terminal_text(args.directory)}: {terminal_text(exc)}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if not problems:
        print(f"{args.directory}: every port sent the expected frames")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
