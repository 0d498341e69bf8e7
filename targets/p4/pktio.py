"""Raw AF_PACKET sockets on the test side of every veth pair: send frames in, capture what the switch sends out.

The sockets are opened inside the switch's namespace (targets/p4/netns.py) and used from this process after
that. Frames this side sent itself show up as PACKET_OUTGOING on the socket of their own port and are skipped.
The kernel takes the outer VLAN tag off a received frame into metadata; it is put back from PACKET_AUXDATA, as
libpcap does, so a capture is the frame that was on the wire.
"""

from __future__ import annotations

import select
import socket
import struct
import time

from .netns import entered, veth_names

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
_AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
MIN_FRAME = 14  # an Ethernet header: the kernel refuses shorter frames on a veth (EINVAL)
RCVBUF = 8 << 20


VLAN_TPIDS = (0x8100, 0x88A8)


def kernel_refuses(frame: bytes) -> str | None:
    """Why Linux will not deliver this frame to a packet socket on the receiving veth, or None.

    The kernel pops 802.1Q/802.1ad tags on receive (skb_vlan_untag) and frees a frame with fewer than 6 bytes after a tag's type,
    before BMv2's pcap can see it; a target behind a real Linux interface never gets such frames.
    """
    if len(frame) < MIN_FRAME:
        return (f"a {len(frame)}-byte frame cannot be sent on an Ethernet interface "
                f"(BMv2 receives frames of {MIN_FRAME} bytes or more)")
    off = 12
    while int.from_bytes(frame[off:off + 2], "big") in VLAN_TPIDS:
        if len(frame) < off + 8:  # skb_vlan_untag pulls the tag and the next 2 bytes, or frees the frame
            return (f"Linux drops a frame with a VLAN tag at byte {off} and fewer than 6 bytes after its type "
                    "before any packet socket sees it (skb_vlan_untag), so BMv2 behind a veth never receives it")
        off += 4
    return None


def with_vlan_tag(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> bytes:
    """The frame with the VLAN tag the kernel took off put back at byte 12 (from tpacket_auxdata)."""
    for level, kind, raw in ancillary:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(raw) < _AUXDATA.size:
            continue
        status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(raw)
        if status & TP_STATUS_VLAN_VALID or tci:
            if not status & TP_STATUS_VLAN_TPID_VALID:
                tpid = 0x8100
            return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


class PortSockets:
    def __init__(self, ns: str, ports: list[int]) -> None:
        self.by_port: dict[int, socket.socket] = {}
        self.by_fd: dict[int, int] = {}
        self.captured: dict[int, list[bytes]] = {}
        self.add(ns, ports)

    def add(self, ns: str, ports: list[int]) -> None:
        """Open the test side of more pairs (ports wired while the switch runs)."""
        with entered(ns):
            for p in ports:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                s.bind((veth_names(p)[1], 0))
                s.setblocking(False)
                self.by_port[p] = s
                self.by_fd[s.fileno()] = p
                self.captured[p] = []

    def send(self, port: int, frame: bytes) -> None:
        sock = self.by_port[port]
        while True:
            try:
                sock.send(frame)
                return
            except BlockingIOError:  # the veth queue is full: let BMv2 catch up
                select.select([], [sock], [], 0.01)

    def drain(self, timeout: float = 0.0) -> None:
        """Move every frame waiting on any socket into `captured`, waiting up to `timeout` for the first."""
        end = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select(list(self.by_fd), [], [], max(0.0, end - time.monotonic()))
            if not ready:
                return
            for fd in ready:
                port = self.by_fd[fd]
                sock = self.by_port[port]
                while True:
                    try:
                        data, anc, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(_AUXDATA.size))
                    except BlockingIOError:
                        break
                    if addr[2] != socket.PACKET_OUTGOING:
                        self.captured[port].append(with_vlan_tag(data, anc))
            end = time.monotonic()  # after the first wake-up, only take what is already there

    def take(self) -> dict[int, list[bytes]]:
        out = self.captured
        self.captured = {p: [] for p in self.by_port}
        return out

    def close(self) -> None:
        for s in self.by_port.values():
            s.close()
        self.by_port.clear()
        self.by_fd.clear()
