"""What became of each packet, read from BMv2's own debug log as it is written.

BMv2 tells a dropped frame from a slow one only in its log: without it a driver must wait a timeout for every
drop. `simple_switch -L debug --log-flush` writes, per packet id, `Processing packet received on port P`, then
`Dropping packet at the end of ingress|egress` or `Transmitting packet of size N out of port P` (one per copy).
Packet ids count up in the order BMv2 receives frames, so the k-th frame the driver sent on port P is the k-th
`received on port P`; and one egress thread transmits a port's frames in order, so the k-th frame captured on
port P is the k-th `out of port P`.

BMv2 takes one frame from an interface per wake-up of its receive loop (BMI: select, then one pcap_next_ex),
so frames that arrive back to back on one port can sit unread until the next arrival. Drivers therefore send
a port's next frame only once its previous one is `received` here; ports run in parallel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"\[(\d+)\.(\d+)\] \[cxt \d+\] (.*)$")
_RECEIVED = re.compile(r"Processing packet received on port (\d+)")
_SENT = re.compile(r"Transmitting packet of size (\d+) out of port (\d+)")
_DROPPED = re.compile(r"Dropping packet at the end of (ingress|egress)")


@dataclass
class Fate:
    """One received frame: its port, the ports its copies left on (in order), and whether it is finished."""

    in_port: int
    out_ports: list[int] = field(default_factory=list)
    dropped: bool = False

    @property
    def done(self) -> bool:
        return self.dropped or bool(self.out_ports)


class LogTail:
    """Reads the log incrementally; `fates` holds every packet received since `mark`, by packet id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.fates: dict[int, Fate] = {}
        self.transmitted: dict[int, list[tuple[int, int]]] = {}  # egress port -> (packet id, size) as they left
        self.received: dict[int, int] = {}  # ingress port -> frames received

    def poll(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            self.feed(raw.decode("utf-8", "replace"))

    def feed(self, line: str) -> None:
        m = _LINE.search(line)
        if m is None:
            return
        pid, copy, text = int(m.group(1)), int(m.group(2)), m.group(3)
        if (r := _RECEIVED.match(text)) is not None:
            if copy == 0:
                port = int(r.group(1))
                self.fates[pid] = Fate(port)
                self.received[port] = self.received.get(port, 0) + 1
            return
        fate = self.fates.get(pid)
        if fate is None:
            return
        if (s := _SENT.match(text)) is not None:
            port = int(s.group(2))
            fate.out_ports.append(port)
            self.transmitted.setdefault(port, []).append((pid, int(s.group(1))))
        elif _DROPPED.match(text) is not None and copy == 0:
            fate.dropped = True

    def mark(self) -> None:
        """Forget packets seen so far (the next batch starts counting from here)."""
        self.poll()
        self.fates.clear()
        self.transmitted.clear()
        self.received.clear()

    def transmitted_counts(self) -> dict[int, int]:
        return {port: len(pids) for port, pids in self.transmitted.items()}

    def received_on(self) -> dict[int, list[int]]:
        """Port -> the packet ids received on it, in order."""
        out: dict[int, list[int]] = {}
        for pid in sorted(self.fates):
            out.setdefault(self.fates[pid].in_port, []).append(pid)
        return out
