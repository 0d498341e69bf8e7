"""The two builds of one generated XDP source: the production object (`c3po build`, `c3po load`) records nothing
for an observer, and the conformance driver's build (C3PO_OBSERVE) records the egress port and the touched
counters in its per-CPU state record -- and both decide every packet alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

from c3po_compiler import load_program
from conformance.generate import generate

from .conftest import ROOT, need_bpf, need_tool


def _state_relocations(obj: Path) -> int:
    """References to the state record map from the program's code (relocations of section xdp)."""
    out = subprocess.run(["llvm-objdump", "-r", str(obj)], capture_output=True, text=True, check=True).stdout
    section = out.split("RELOCATION RECORDS FOR [xdp]:")[1].split("RELOCATION RECORDS FOR")[0]
    return sum(1 for line in section.splitlines() if line.split()[-1:] == ["c3po_state"])


def test_only_the_observing_build_looks_up_the_state_record(tmp_path: Path) -> None:
    need_tool("clang", "llvm-objdump")
    from targets.xdp import XdpTarget

    prog = load_program(ROOT / "spec/examples/router.yaml").program
    production = XdpTarget().build(prog, tmp_path / "prod").files["object"]
    observed = XdpTarget(observe=True).build(prog, tmp_path / "obs").files["object"]
    assert _state_relocations(production) == 0
    assert _state_relocations(observed) >= 1


def test_both_builds_give_every_packet_the_same_action_and_frame(tmp_path: Path) -> None:
    """The generated vectors of the router (forwarding, counters, parser errors) through both objects."""
    need_bpf()
    from conformance.model import ControlState
    from targets.xdp.driver import META_MAGIC, XdpDriver
    from targets.xdp.libbpf import TestRunner

    prog = load_program(ROOT / "spec/examples/router.yaml").program
    vectors = [v for v in generate(prog, seed=3).vectors
               if len(v.packets) == 1 and not v.control.ops and len(v.packets[0].data) >= 14]
    drivers = [XdpDriver(observe=False), XdpDriver(observe=True)]
    try:
        for k, d in enumerate(drivers):
            d.open(prog, tmp_path / str(k))
        last: ControlState | None = None
        actions: set[int] = set()
        for v in vectors:
            if v.control != last:
                for d in drivers:
                    d.install(v.control)
                last = v.control
            p = v.packets[0]
            meta = META_MAGIC.to_bytes(4, "little") + (p.port & 0xFFFF).to_bytes(4, "little")
            prod, obs = (TestRunner(d.bpf.prog_fd).run(p.data, meta)[:2] for d in drivers if d.bpf)
            assert prod == obs, v.name
            actions.add(prod[0])
        assert {1, 2, 4} <= actions  # drops, to the host, forwards (XDP_REDIRECT)
    finally:
        for d in drivers:
            d.close()


def test_the_driver_counts_each_copy_of_the_control_it_ran(tmp_path: Path) -> None:
    """IPv4 vectors only: every counted return on the IPv6 path's copy stays unreached, and the report names
    them by parse path and spec line; the production build counts nothing."""
    need_bpf()
    from conformance.reports import terminal
    from conformance.runner import RunRequest, run_conformance

    prog = load_program(ROOT / "spec/examples/router.yaml").program
    v4 = [v for v in generate(prog, seed=1).vectors
          if all(len(p.data) >= 34 and p.data[12:14] == b"\x08\x00" for p in v.packets)]
    [report] = run_conformance([RunRequest(str(ROOT / "spec/examples/router.yaml"), v4)], ["xdp"])
    [status] = report.targets
    cov = status.coverage
    assert cov is not None and cov["total"] > 10
    assert 0 < cov["reached"] < cov["total"]
    missed = cov["unreached"]
    assert any("ethernet, ipv6" in m for m in missed)
    assert not any("ethernet, ipv4," in m or m.endswith("ethernet, ipv4") for m in missed if "ipv6" in m)
    assert all(m.startswith("router.bpf.c:") and "C3PO_RET(" in m for m in missed)
    assert f"router on xdp: generated returns (per copy): {cov['reached']} of {cov['total']}" in terminal([report])


def test_a_survivor_before_an_untaken_return_is_reported_as_unreached(tmp_path: Path) -> None:
    """Mutation analysis names survivors that sit in code no vector ran (the first counted return after the
    mutated line was never taken) apart from those the vectors ran but did not check."""
    need_tool("clang")
    from conformance.mutate import UNREACHED, unreached
    from conformance.mutate_ops import find_mutants
    from targets.xdp import XdpTarget
    from targets.xdp.coverage import COVER_WORDS, points, summary

    prog = load_program(ROOT / "spec/examples/router.yaml").program
    src = XdpTarget().build(prog, tmp_path).files["source"]
    text = src.read_text()
    pts = points(text)
    words = [0] * COVER_WORDS
    for i in range(0, len(pts), 2):  # every other return taken
        words[i >> 6] |= 1 << (i & 63)
    cov = summary(pts, words, src.name)
    assert cov["reached"] == (len(pts) + 1) // 2
    mutants = [m for m in find_mutants(text, src.name, "c", prog.name) if m.operator == "verdict" and "C3PO_RET(" in m.line_before]
    assert mutants
    for m in mutants:
        k = next(i for i, p in enumerate(pts) if p.line >= m.line)
        why = unreached(m, cov)
        assert why.startswith(UNREACHED) == (k % 2 == 1), (m.line, why)
