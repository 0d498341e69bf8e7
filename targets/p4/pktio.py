"""Send one frame and capture what comes back, with raw AF_PACKET sockets; run inside the switch's netns.

`python -m targets.p4.pktio` reads a JSON request on stdin ({"send": iface, "frame": hex, "listen": {iface:
port}, "timeout": s}) and prints {"out": [[port, hex], ...]}: the driver cannot enter a network namespace
itself without moving its whole process, so it runs this under `ip netns exec`.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from typing import Any

ETH_P_ALL = 0x0003


def exchange(send_iface: str, frame: bytes, listen: dict[str, int], timeout: float) -> list[tuple[int, bytes]]:
    socks: dict[int, tuple[socket.socket, int]] = {}
    try:
        for iface, port in listen.items():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((iface, 0))
            s.setblocking(False)
            socks[s.fileno()] = (s, port)
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            tx.bind((send_iface, 0))
            tx.send(frame)
        finally:
            tx.close()
        out: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(socks), [], [], left)
            for fd in ready:
                s, port = socks[fd]
                data, addr = s.recvfrom(65535)
                if addr[2] != socket.PACKET_OUTGOING:
                    out.append((port, data))
            if out:
                deadline = min(deadline, time.monotonic() + 0.05)  # a short drain for a second copy
        return out
    finally:
        for s, _ in socks.values():
            s.close()


def main() -> None:
    req: dict[str, Any] = json.load(sys.stdin)
    got = exchange(req["send"], bytes.fromhex(req["frame"]), req["listen"], float(req["timeout"]))
    json.dump({"out": [[p, d.hex()] for p, d in got]}, sys.stdout)


if __name__ == "__main__":
    main()
