"""The p4 target's documented deviation (forward to a port at or above the CPU port drops) explains exactly that
failure: a program sending such a frame anywhere else, or failing otherwise besides, is a FAIL, not an XFAIL
that mutation analysis cannot tell from the original (issue 16: the p4 column of the mutation measure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.compare import compare
from conformance.expected_failures import Rule, load_expected_failures
from conformance.generate import generate
from conformance.runner import fill_expected
from targets.p4.driver import P4Driver
from tests.conftest import need_p4_driver, router_p4_with

DROPPED = ("verdict: expected forward, got drop\nport: expected {port}, got None\n"
           "  expected: 00112233\n  actual:   (dropped, no frame)")


def _rule() -> Rule:
    assert P4Driver.known_deviations is not None
    [rule] = load_expected_failures(P4Driver.known_deviations).rules
    return rule


@pytest.mark.parametrize("port", [510, 511, 599, 600, 999, 1000, 65535])
def test_the_deviation_explains_a_drop_at_ports_from_510(port: int) -> None:
    assert _rule().explains(DROPPED.format(port=port))


def test_every_packet_of_a_vector_may_show_it() -> None:
    one = DROPPED.format(port=510).split("\n")
    text = "\n".join([f"packet 0: {line}" for line in one] + [f"packet 2: {line}" for line in one])
    assert _rule().explains(text)


@pytest.mark.parametrize("text", [
    DROPPED.format(port=509),  # a port v1model has
    DROPPED.format(port=16),
    DROPPED.format(port=510).replace("got drop", "got to_host"),  # 510 went to the CPU port
    "port: expected 510, got None",  # verdict right, port lost: not the deviation
    DROPPED.format(port=510) + "\npacket 1: bytes differ (60 expected, 60 got) in: ipv4.ttl",
])
def test_the_deviation_does_not_explain_anything_else(text: str) -> None:
    assert not _rule().explains(text)


@pytest.mark.p4
def test_wrong_frames_to_unwired_ports_and_the_cpu_port_fail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The router with `port < 510` turned into `port <= 510` and its TTL / hop limit decremented by 2. A frame
    for port 510 leaves on the CPU port: the old reason matched the port line alone, so that was an XFAIL like
    the original's, and mutation analysis counted the mutant as alive. Frames for ports 16, 256 and 509 left on
    ports without an interface, unseen, so their bytes were never compared: the driver now wires such a port
    and sends the frame again, and the counts stay those of one pass."""
    need_p4_driver()
    prog = router_p4_with(monkeypatch, {"meta.c3po_port < 16w510": "meta.c3po_port <= 16w510",
                                        ": 8w0) - 8w1)": ": 8w0) - 8w2)"})
    vectors = [v for v in generate(prog, seed=1).vectors if v.name.startswith("port.out.")]
    fill_expected(prog, vectors)
    lines: dict[str, list[str]] = {}
    with P4Driver() as drv:
        drv.open(prog, tmp_path)
        for v in vectors:
            drv.install(v.control)
            [exp], [res] = v.expected, drv.run(v.packets, v.registers)
            assert res.error is None, res.error
            lines[v.name.rsplit(".", 1)[1]] = compare(exp, res).lines
    for port in ("16", "256", "509"):  # forwarded, captured, compared: the hop count is wrong, nothing else
        assert lines[port] and lines[port][0].startswith("bytes differ"), lines[port]
        assert not any(line.startswith(("verdict", "port", "counter")) for line in lines[port]), lines[port]
    assert _rule().explains("\n".join(lines["65535"]))  # dropped: the deviation
    assert lines["510"] and not _rule().explains("\n".join(lines["510"]))  # sent to the CPU port: a FAIL
