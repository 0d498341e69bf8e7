"""Frames of the other length parity for actions that read the packet's length (conformance/gen_lengths.py): the
VXLAN gateway's encapsulation writes the outer lengths from std.packet_length, and an odd inner frame is what
tells a target that drops the length's low bit from a correct one."""

from __future__ import annotations

from conformance.gen_lengths import CLASS, PAD, length_actions

from .test_gen_class_edges import generated, program

GATEWAY = "spec/examples/vxlan_gateway.yaml"


def test_only_actions_reading_the_length_are_chosen() -> None:
    assert length_actions(program(GATEWAY)) == {"to_remote"}
    assert length_actions(program("spec/examples/router.yaml")) == set()


def test_an_odd_inner_frame_is_encapsulated_with_odd_outer_lengths() -> None:
    g = generated(GATEWAY)
    by_name = {v.name: v for v in g.vectors}
    v = by_name["length.fdb.to_remote.odd.classify>tenant"]
    assert CLASS in v.tags
    frame = v.packets[0].data
    assert len(frame) % 2 == 1 and frame[-1] == PAD
    assert any(b.packets[0].data == frame[:-1] and b.control == v.control for b in g.vectors)  # its base: even
    exp = v.expected[0]
    assert exp.verdict == "forward" and exp.observations["tables"]["fdb"] == "to_remote"
    out = exp.data
    assert out[12:14] == b"\x08\x00" and int.from_bytes(out[16:18], "big") == len(frame) + 36  # outer IPv4 total
    assert int.from_bytes(out[38:40], "big") == len(frame) + 16  # outer UDP length: odd
    assert out[-len(frame):] == frame  # the inner frame whole, its last byte included
    cov = g.coverage[CLASS]
    assert cov["class"] and cov["covered"] == cov["total"] >= 1
