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
