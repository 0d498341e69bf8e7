"""Same spec, same bytes, whatever Python's hash seed: every example and suite program rendered by every target in
two interpreters with different PYTHONHASHSEED values gives identical files. Within one process a set iterates in
one order, so a choice made by iterating a set is stable there and differs between runs (the xdp deparser once
picked a representative of several worlds with `next(iter(...))`, and with some seeds summed the IPv4 checksum in
full where others updated it incrementally)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Control statements shared by two parse paths (with and without IPv4) that agree on the verdict: the deparser
# emits one tail for both worlds, with the checksum update under a NULL test (deparse.tail).
SHARED_TAIL = """
c3po: 1
program: shared_tail
include: [std/ethernet, std/ipv4]
parser:
  start: ethernet
  states:
    ethernet: {extract: ethernet, select: ethernet.ethertype, cases: {"0x0800": ipv4}, default: accept}
    ipv4: {extract: ipv4, verify: [ipv4]}
control:
  - ipv4.identification = 0
  - update_checksum(ipv4)
  - forward(4)
"""

PROBE = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from c3po_compiler import load_program
from c3po_compiler.target_api import BUILTIN_TARGETS, load_target
from conformance.cli import suite_programs
root = Path(sys.argv[1])
out = {}
for spec in sorted((root / "spec" / "examples").glob("*.yaml")) + suite_programs() + [Path(sys.argv[2])]:
    prog = load_program(spec).program
    for name in sorted(BUILTIN_TARGETS):
        target = load_target(name)
        if target.refusals(prog):
            continue
        for fname, text in sorted(target.render(prog).items()):
            out[f"{spec.name}:{name}:{fname}"] = hashlib.sha256(text.encode()).hexdigest()
print(json.dumps(out))
"""


def _render(seed: int, extra: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(extra)], capture_output=True, text=True,
                          env=env,
                          check=True, timeout=600)
    out: dict[str, str] = json.loads(proc.stdout)
    return out


def test_generated_files_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    extra = tmp_path / "shared_tail.yaml"
    extra.write_text(SHARED_TAIL, encoding="utf-8")
    a, b = _render(1, extra), _render(3, extra)
    assert len(a) > 60  # every example and suite program, every target
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
