"""End to end on real interfaces: a generated program attached natively (`ip link set dev X xdpdrv obj ...`) to
a veth in a network namespace reflects, drops and passes frames sent from the peer namespace over a raw
AF_PACKET socket. Only namespaces and veths created here are touched; they are removed whatever happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c3po_compiler import load_program
from targets.xdp import XdpTarget
from tests.conftest import ROOT, need_bpf, need_tool

pytestmark = pytest.mark.kernel

PROGRAM = """
c3po: 1
program: veth_demo
include: [{p}/ethernet.yaml]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet}}
control:
  - if: "ethernet.ethertype == 0x88b5"
    then: [reflect, "ethernet.dst = ethernet.src", "ethernet.src = 02:00:00:00:00:aa"]
  - if: "ethernet.ethertype == 0x88b6"
    then: [drop]
default_verdict: to_host
"""

# The peer must run XDP (or GRO) for XDP_TX'd frames to be received; it gets a program that passes everything.
PASS_PROGRAM = """
c3po: 1
program: veth_pass
include: [{p}/ethernet.yaml]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet}}
default_verdict: to_host
"""

# Runs inside a namespace: sends frames (hex) on IFACE, then collects incoming frames of our EtherTypes (or of
# the EtherTypes given, as hex, in a fourth argument).
SOCKET_SCRIPT = r"""
import json, socket, sys, time
iface, seconds, frames = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
types = [bytes.fromhex(t) for t in sys.argv[4].split(",")] if len(sys.argv) > 4 else [b"\x88\xb5", b"\x88\xb6", b"\x88\xb7"]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((iface, 0))
s.settimeout(0.05)
print("ready", flush=True)
for f in frames:
    s.send(bytes.fromhex(f))
got, end = [], time.time() + seconds
while time.time() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING and data[12:14] in types:
        got.append(data.hex())
print(json.dumps(got), flush=True)
"""


def sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True)


def build(text: str, tmp: Path, name: str) -> Path:
    spec = tmp / f"{name}.yaml"
    spec.write_text(text.format(p=os.path.relpath(ROOT / "spec" / "protocols", tmp)), encoding="utf-8")
    result = XdpTarget().build(load_program(spec).program, tmp / name)
    return result.files["object"]


def frame(ethertype: int, marker: int) -> bytes:
    return bytes.fromhex("ffffffffffff" "020000000001") + ethertype.to_bytes(2, "big") + bytes([marker]) * 50


def test_reflect_drop_pass_on_veth(tmp_path: Path) -> None:
    need_bpf()
    need_tool("ip")
    obj = build(PROGRAM, tmp_path, "veth_demo")
    pass_obj = build(PASS_PROGRAM, tmp_path, "veth_pass")
    ns_a, ns_b = f"c3po-test-{os.getpid()}-a", f"c3po-test-{os.getpid()}-b"
    try:
        sh("ip", "netns", "add", ns_a)
        sh("ip", "netns", "add", ns_b)
        sh("ip", "link", "add", "c3poA", "netns", ns_a, "type", "veth", "peer", "name", "c3poB", "netns", ns_b)
        for ns, dev in ((ns_a, "c3poA"), (ns_b, "c3poB")):
            sh("ip", "-n", ns, "link", "set", "dev", dev, "up")
        sh("ip", "-n", ns_a, "link", "set", "dev", "c3poA", "xdpdrv", "obj", str(obj), "sec", "xdp")
        sh("ip", "-n", ns_b, "link", "set", "dev", "c3poB", "xdpdrv", "obj", str(pass_obj), "sec", "xdp")
        time.sleep(0.2)
        listener = subprocess.Popen(["ip", "netns", "exec", ns_a, sys.executable, "-c", SOCKET_SCRIPT, "c3poA",
                                     "1.5", "[]"], stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None
            assert listener.stdout.readline().strip() == "ready"
            sent = [frame(0x88B5, 1), frame(0x88B6, 2), frame(0x88B7, 3)]
            sender = subprocess.run(["ip", "netns", "exec", ns_b, sys.executable, "-c", SOCKET_SCRIPT, "c3poB",
                                     "1.0", json.dumps([f.hex() for f in sent])],
                                    capture_output=True, text=True, timeout=20, check=True)
            back = [bytes.fromhex(h) for h in json.loads(sender.stdout.splitlines()[-1])]
            out, _ = listener.communicate(timeout=20)
            passed = [bytes.fromhex(h) for h in json.loads(out.splitlines()[-1])]
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
        # reflect: comes back to the sender, rewritten as the spec says
        assert [f[12:14] for f in back] == [b"\x88\xb5"]
        assert back[0][0:12] == bytes.fromhex("020000000001" "0200000000aa") and back[0][14:] == sent[0][14:]
        # to_host: reaches the stack of the XDP interface unchanged; drop: nowhere
        assert passed == [sent[2]]
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
