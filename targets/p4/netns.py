"""A private network namespace with veth pairs for BMv2, and a way to open sockets inside it from this process.

The switch owns one end of each pair (`swN`), the driver the other (`tpN`), so frames really cross the kernel.
Sockets are opened *inside* the namespace by switching only the calling thread (setns(2) affects one thread)
and switching back at once: a socket keeps the namespace it was created in, so the driver sends, captures and
talks Thrift to the switch with no helper process per packet.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
SOCKET_ROOT = Path("/run/c3po")

_libc = ctypes.CDLL(None, use_errno=True)


def namespace_name(pid: int, n: int) -> str:
    """Unique per driver instance, recognisably ours, short enough for `ip netns`."""
    return f"c3po-p4-{pid}-{n}"


def socket_dir(ns: str) -> Path:
    """Where the switch of namespace `ns` keeps its gRPC and notification sockets: a unix socket path is
    limited to 107 bytes, which a work directory under a long TMPDIR may exceed."""
    return SOCKET_ROOT / ns


def veth_names(port: int) -> tuple[str, str]:
    """(switch side, test side); interface names are at most 15 characters."""
    return f"sw{port}", f"tp{port}"


def link_batch(ports: list[int]) -> str:
    """`ip -batch` input making every pair (jumbo MTU: a vector's frame may exceed 1500 bytes)."""
    lines = []
    for p in ports:
        sw, tp = veth_names(p)
        lines += [f"link add {sw} mtu 9000 type veth peer name {tp} mtu 9000", f"link set {sw} up", f"link set {tp} up"]
    return "\n".join(lines) + "\n"


def create(ns: str, ports: list[int]) -> None:
    """Make the namespace and its pairs; on any failure nothing is left behind. IPv6 is off before any link
    exists, so no router solicitation or DAD frame is mistaken for the switch's output."""
    steps: list[tuple[list[str], str | None]] = [
        (["ip", "netns", "add", ns], None),
        (["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
          "net.ipv6.conf.default.disable_ipv6=1"], None),
        (["ip", "-n", ns, "-batch", "-"], "link set lo up\n" + link_batch(ports)),
    ]
    try:
        for cmd, stdin in steps:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    except BaseException:
        delete(ns)
        raise


def add_pairs(ns: str, ports: list[int]) -> None:
    """More pairs in an existing namespace (ports wired while the switch runs)."""
    proc = subprocess.run(["ip", "-n", ns, "-batch", "-"], input=link_batch(ports), capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip -n {ns} -batch (ports {ports}) failed: {proc.stderr.strip()}")


def delete(ns: str) -> None:
    """Deleting the namespace removes its veths too; safe when it does not exist."""
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False, timeout=30)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run the body with this thread in namespace `ns`; the thread returns to its own namespace after."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
