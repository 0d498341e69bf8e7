"""checksum_words (conformance/gen_gaps.py): per copy of an incremental checksum update the xdp target makes, a
vector for each word the update covers whose value the control changes there (issue 16, fourth round: nat44
xdp's `c3po_csum_step` of the destination's low word dropped on the TCP and UDP `next_hop` copies survived)."""

from __future__ import annotations

from conformance.gen_gaps import _update_words
from conformance.generate import generate
from conformance.model import Vector
from conformance.tracing import TracingInterpreter
from conformance.vector_io import dumps_jsonl

from .test_gen_class_edges import generated, program

NAT = "spec/examples/nat44.yaml"


def words(v: Vector, inst: str) -> list[tuple[int, bytes, bytes]]:
    """(byte offset in `inst`, before, after) of each 16-bit word of the header's first 20 bytes that changed."""
    e = v.expected[0]
    off = e.observations["offsets"][inst]
    data = v.packets[0].data
    return [(k, data[off + k:off + k + 2], e.data[off + k:off + k + 2]) for k in range(0, 20, 2)
            if data[off + k:off + k + 2] != e.data[off + k:off + k + 2]]


def test_the_words_an_update_covers_are_those_the_program_writes() -> None:
    prog = program(NAT)
    # the IPv4 header: TTL (next_hop), src (snat), dst (dnat); not its checksum, nothing else is written
    assert [(i, at) for i, at, _ in _update_words(prog, "ipv4", None)] == [
        ("ipv4", 8), ("ipv4", 12), ("ipv4", 14), ("ipv4", 16), ("ipv4", 18)]
    assert _update_words(prog, "ipv4", None)[0][2] == "ttl/protocol"
    # TCP: no TCP field is written (port-preserving), the pseudo-header's addresses are
    assert [(i, at) for i, at, _ in _update_words(prog, "tcp", "ipv4")] == [
        ("ipv4", 12), ("ipv4", 14), ("ipv4", 16), ("ipv4", 18)]


def test_every_word_of_each_next_hop_copy_is_changed() -> None:
    """The TCP and UDP checksum updates under routes' next_hop: both destination words (dnat) and both source
    words (snat) change in some vector of the copy; the TTL word of the IPv4 update too."""
    cov = generated(NAT).coverage["checksum_words"]
    assert cov["covered"] == cov["feasible"] >= 60
    items = {i["item"] for i in cov["infeasible"]}
    # only the TTL word where next_hop does not run (to_host, a nop default) cannot change
    assert items and all("word ipv4[8:10] (ttl/protocol)" in i and "routes.next_hop" not in i for i in items)


def test_made_vectors_change_their_word_with_a_checksum_to_update() -> None:
    """The vectors the class made: the oracle changes the destination's low word (nat44.bpf.c:823 and :1120 of
    the fourth round) under next_hop, and the L4 checksum is updated (non-zero)."""
    made = [v for v in generated(NAT).vectors if "checksum_word" in v.tags]
    assert made
    low_dst = [v for v in made if v.name.startswith("csum_word.ipv4.18")]
    interp = TracingInterpreter(program(NAT))
    seen: set[str] = set()
    for v in low_dst:
        assert any(k == 18 for k, _b, _a in words(v, "ipv4"))
        interp.install(v.control)
        r = interp.run(v.packets, {})[0]
        l4 = next((i for i in ("tcp", "udp") if i in r.observations["offsets"]), None)
        if l4 is None or v.expected[0].verdict != "forward":
            continue  # the IPv4 header's own update on the path without L4; the to_host copies
        seen.add(l4)
        assert any(k == "checksum" and req == (l4, "ipv4") and did for k, req, did in r.observations["trace"])
    assert seen == {"tcp", "udp"}


def test_deterministic() -> None:
    prog = program(NAT)
    first = [v for v in generated(NAT).vectors if "checksum_word" in v.tags]
    again = [v for v in generate(prog, seed=0).vectors if "checksum_word" in v.tags]
    assert dumps_jsonl(first, prog) == dumps_jsonl(again, prog)
