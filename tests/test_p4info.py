"""targets/p4/p4info.py: the P4Info c3po writes without p4c must be the one p4c writes for the P4 target's
program — same names, ids, widths, match kinds, action parameters, counters, registers, in the same order —
because P4Runtime controllers address everything by those ids, on BMv2 and on c3po's XDP server alike."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from c3po_compiler import load_program
from targets.p4 import P4Target, compile_command
from targets.p4.p4info import P4Ids, p4info, p4info_text, p4rt_id
from targets.xdp import XdpTarget
from tests.conftest import EXAMPLES, ROOT, SUITE, need_p4

ROUTER = ROOT / "spec" / "examples" / "router.yaml"


def test_ids_are_p4cs_hash_of_the_name() -> None:
    # what p4c 1.2.4.8 assigned to the router's objects (its --p4runtime-files output)
    assert p4rt_id(P4Ids.TABLE, "nexthops") == 43518740
    assert p4rt_id(P4Ids.TABLE, "nexthops__2") == 39884463
    assert p4rt_id(P4Ids.ACTION, "drop") == 18759588
    assert p4rt_id(P4Ids.COUNTER, "nexthops__miss") == 308717374
    assert p4rt_id(P4Ids.DIRECT_COUNTER, "nexthops__counter") == 331618901


def test_router_p4info_describes_every_copy_key_action_and_counter() -> None:
    info = p4info(load_program(ROUTER).program)
    tables = {t.preamble.name: t for t in info.tables}
    assert list(tables) == ["nexthops", "nexthops__2", "router_mac", "routes_v4", "routes_v6"]
    (v4,) = tables["routes_v4"].match_fields
    assert (v4.id, v4.name, v4.bitwidth, v4.match_type) == (1, "ipv4.dst", 32, v4.LPM)
    actions = {a.preamble.id: a for a in info.actions}
    hop = next(a for a in info.actions if a.preamble.name == "next_hop")
    assert [(p.id, p.name, p.bitwidth) for p in hop.params] == [(1, "port", 16), (2, "smac", 48), (3, "dmac", 48)]
    refs = [(actions[r.id].preamble.name, r.scope) for r in tables["nexthops"].action_refs]
    assert refs == [("next_hop", 0), ("to_host", 0), ("nop", 2)]  # 2: DEFAULT_ONLY
    direct = {d.preamble.name: d.direct_table_id for d in info.direct_counters}
    assert direct == {"nexthops__counter": tables["nexthops"].preamble.id,
                      "nexthops__2__counter": tables["nexthops__2"].preamble.id}
    assert {c.preamble.name for c in info.counters} == {"nexthops__miss", "nexthops__2__miss"}


def test_xdp_build_writes_the_p4info_beside_the_object() -> None:
    prog = load_program(ROUTER).program
    files = XdpTarget().render(prog)
    assert files["router.p4info.txtpb"] == p4info_text(prog)
    assert files["router.p4info.txtpb"].startswith("# proto-file: p4/config/v1/p4info.proto")


# Programs with every kind of object the P4Info describes: apply-site copies and direct counters (router),
# ternary priorities, counter arrays and a register (ddos_filter), registers used only inside action branches
# (gre_tunnel), range and mixed keys, table counters, constant entries, an unused register.
REPRESENTATIVE = ["router", "ddos_filter", "gre_tunnel", "match_mixed", "match_range", "table_counters",
                  "const_entries", "registers", "counters"]


def _p4c_p4info(spec: Path, out: Path) -> tuple[str, str, str]:
    """(spec, p4c's P4Info text, c3po's) for one program. p4c's front and mid end decide the P4Info; `p4test`
    runs only those (a BMv2 back end adds nothing to it), so it is used where installed."""
    prog = load_program(spec).program
    for name, text in P4Target().render(prog).items():
        (out / name).write_text(text)
    info = out / f"{prog.name}.p4info.txtpb"
    if shutil.which("p4test"):
        cmd = ["p4test", "--arch", "v1model", "--std", "p4-16", "--p4runtime-files", str(info),
               str(out / f"{prog.name}.p4")]
    else:
        cmd = compile_command(shutil.which("p4c-bm2-ss") or "p4c-bm2-ss", out / f"{prog.name}.p4",
                              out / f"{prog.name}.json", info)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return spec.name, info.read_text(), p4info_text(prog)


def _compare(specs: list[Path], tmp_path: Path) -> list[str]:
    dirs = [tmp_path / f"{i}" for i in range(len(specs))]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(_p4c_p4info, specs, dirs))
    return [name for name, theirs, ours in results if theirs != ours]


@pytest.mark.p4
def test_equal_to_p4cs_for_representative_programs(tmp_path: Path) -> None:
    """Byte for byte (the text format is canonical)."""
    need_p4()
    specs = [p for p in [*EXAMPLES, *SUITE] if p.stem in REPRESENTATIVE]
    assert len(specs) == len(REPRESENTATIVE)
    assert _compare(specs, tmp_path) == []


@pytest.mark.p4
@pytest.mark.slow
@pytest.mark.campaign
def test_equal_to_p4cs_for_every_example_and_suite_program(tmp_path: Path) -> None:
    """All of them (about a minute on two cores: p4c takes a second or two per program)."""
    need_p4()
    specs = [*EXAMPLES, *SUITE]
    assert len(specs) >= 40
    assert _compare(specs, tmp_path) == []
