"""Control-plane sequences in vectors (issue 16): ops applied in order through each target's update path, the
image they leave as the oracle's state, generated sequence shapes, ports without a mapping.

Targets run where their toolchain is (need_*: skipped locally without it, failing under CI=true).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from c3po_compiler import load_program
from conformance.model import ControlState, Vector, replay
from conformance.runner import RunRequest, fill_expected, run_conformance
from conformance.vector_io import VectorFileError, load_vectors

from .conftest import ROOT, need_bpf, need_p4_driver, need_tool

SEQ_SPEC = ROOT / "conformance" / "suite" / "table_sequences.yaml"
FWD_SPEC = ROOT / "conformance" / "suite" / "action_forward.yaml"

IPV4 = "layers: {ethernet: {dst: '02:00:00:00:00:01', ethertype: 0x0800}, " \
       "ipv4: {version: 4, ihl: 5, ttl: 64, protocol: 6, src: SRC, dst: 10.1.2.3}}"

SEQUENCES = f"""\
c3po_vectors: 1
program: table_sequences
vectors:
  - name: exact_insert_delete_modify_default
    control:
      entries:
        - {{table: macs, match: {{ethernet.dst: "02:00:00:00:00:01"}}, action: forward(1)}}
        - {{table: macs, match: {{ethernet.dst: "02:00:00:00:00:02"}}, action: forward(2)}}
      ops:
        - {{op: insert, table: macs, match: {{ethernet.dst: "02:00:00:00:00:03"}}, action: forward(3)}}
        - {{op: delete, table: macs, match: {{ethernet.dst: "02:00:00:00:00:01"}}}}
        - {{op: modify, table: macs, match: {{ethernet.dst: "02:00:00:00:00:02"}}, action: forward(7)}}
        - {{op: insert, table: macs, match: {{ethernet.dst: "02:00:00:00:00:01"}}, action: forward(5)}}
        - {{op: default, table: macs, action: forward(9)}}
    packets:
      - {{port: 1, data: "020000000001 020000000009 88b5"}}
      - {{port: 1, data: "020000000002 020000000009 88b5"}}
      - {{port: 1, data: "020000000003 020000000009 88b5"}}
      - {{port: 1, data: "020000000004 020000000009 88b5"}}
  - name: ternary_tie_first_installed_wins
    control:
      entries:
        - {{table: macs, match: {{ethernet.dst: "02:00:00:00:00:01"}}, action: forward(1)}}
      ops:
        - {{op: insert, table: routes, match: {{ipv4.dst: "10.0.0.0/8"}}, action: forward(2)}}
        - {{op: insert, table: acl, match: {{ipv4.src: "10.0.0.0 &&& 255.0.0.0"}}, action: forward(3), priority: 5}}
        - {{op: insert, table: acl, match: {{ipv4.src: "10.1.0.0 &&& 255.255.0.0"}}, action: forward(4), priority: 5}}
    packets:
      - {{port: 1, {IPV4.replace("SRC", "10.1.2.3")}}}
  - name: ternary_tie_reinserted_entry_loses
    control:
      entries:
        - {{table: macs, match: {{ethernet.dst: "02:00:00:00:00:01"}}, action: forward(1)}}
        - {{table: routes, match: {{ipv4.dst: "10.1.0.0/16"}}, action: drop}}
        - {{table: acl, match: {{ipv4.src: "10.0.0.0 &&& 255.0.0.0"}}, action: forward(3), priority: 5}}
        - {{table: acl, match: {{ipv4.src: "10.1.0.0 &&& 255.255.0.0"}}, action: forward(4), priority: 5}}
      ops:
        - {{op: delete, table: routes, match: {{ipv4.dst: "10.1.0.0/16"}}}}
        - {{op: insert, table: routes, match: {{ipv4.dst: "10.1.0.0/16"}}, action: forward(2)}}
        - {{op: delete, table: acl, match: {{ipv4.src: "10.0.0.0 &&& 255.0.0.0"}}, priority: 5}}
        - {{op: insert, table: acl, match: {{ipv4.src: "10.0.0.0 &&& 255.0.0.0"}}, action: forward(6), priority: 5}}
    packets:
      - {{port: 1, {IPV4.replace("SRC", "10.1.2.3")}}}
      - {{port: 1, {IPV4.replace("SRC", "10.9.2.3")}}}
"""

# std.ingress_port -> forward(port): arrivals on port 0 and the top of the 16-bit range, forwards to ports no
# target maps (xdp's devmap holds 0..255, p4 wires 0..15 and 510)
PORTS = """\
c3po_vectors: 1
program: action_forward
vectors:
  - name: arrivals
    control:
      entries:
        - {table: t, match: {std.ingress_port: 0}, action: forward(2)}
        - {table: t, match: {std.ingress_port: 65535}, action: forward(3)}
    packets:
      - {port: 0, data: "020000000001 020000000009 88b5"}
      - {port: 65535, data: "020000000001 020000000009 88b5"}
  - name: unmapped_ports
    control:
      entries:
        - {table: t, match: {std.ingress_port: 0}, action: forward(2)}
        - {table: t, match: {std.ingress_port: 1}, action: forward(300)}
        - {table: t, match: {std.ingress_port: 2}, action: forward(16)}
    packets:
      - {port: 1, data: "020000000001 020000000009 88b5"}
      - {port: 2, data: "020000000001 020000000009 88b5"}
      - {port: 0, data: "020000000001 020000000009 88b5"}
"""


def _vectors(tmp_path: Path, text: str, spec: Path, name: str = "v.yaml") -> list[Vector]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_vectors(path, load_program(str(spec)).program)


def _results(vectors: list[Vector]) -> dict[str, list[tuple[str, int | None]]]:
    return {v.name: [(e.verdict, e.port) for e in v.expected] for v in vectors}


# ------------------------------------------------------------------------------------------------- oracle


def test_the_oracle_sees_the_image_the_ops_leave(tmp_path: Path) -> None:
    prog = load_program(str(SEQ_SPEC)).program
    vectors = _vectors(tmp_path, SEQUENCES, SEQ_SPEC)
    assert fill_expected(prog, vectors) == {}
    got = _results(vectors)
    # 01 deleted and re-inserted (forward 5), 02 modified (7), 03 inserted, 04 misses into the new default
    assert got["exact_insert_delete_modify_default"] == [("forward", 5), ("forward", 7), ("forward", 3),
                                                         ("forward", 9)]
    # equal priorities: the entry installed first wins; re-installed, it comes last
    assert got["ternary_tie_first_installed_wins"] == [("forward", 3)]
    assert got["ternary_tie_reinserted_entry_loses"] == [("forward", 4), ("forward", 6)]
    # counters follow the image's install order: 02 (kept its place), 03, then the re-inserted 01
    last = vectors[0].expected[-1].counters
    assert last == {("table.macs", 0): (1, 14), ("table.macs", 1): (1, 14), ("table.macs", 2): (1, 14),
                    ("table.macs", -1): (1, 14)}


def test_replay_numbers_every_incarnation(tmp_path: Path) -> None:
    prog = load_program(str(SEQ_SPEC)).program
    control = _vectors(tmp_path, SEQUENCES, SEQ_SPEC)[0].control
    plan = replay(prog, control)
    assert [e.args for e in plan.final.entries] == [(7,), (3,), (5,)]
    assert plan.steps == (2, 0, 1, 3, -1)  # insert -> new 2, delete 0, modify 1, insert -> new 3, a default
    assert plan.position == {1: 0, 2: 1, 3: 2}
    assert plan.final.defaults == (("macs", "forward", (9,)),)
    assert control.key() != ControlState(control.entries, control.defaults).key()


def test_a_vector_file_with_ops_round_trips(tmp_path: Path) -> None:
    from conformance.vector_io import save_vectors

    prog = load_program(str(SEQ_SPEC)).program
    vectors = _vectors(tmp_path, SEQUENCES, SEQ_SPEC)
    for name in ("out.jsonl", "out.yaml"):
        save_vectors(tmp_path / name, vectors, prog)
        again = load_vectors(tmp_path / name, prog)
        assert [v.control for v in again] == [v.control for v in vectors]


@pytest.mark.parametrize(("ops", "message"), [
    ("[{op: delete, table: macs, match: {ethernet.dst: 5}}]",
     r"control\.ops\[0\] \(delete in table 'macs'\): the table has no entry with this match"),
    ("[{op: insert, table: macs, match: {ethernet.dst: 5}, action: forward(1)},"
     " {op: insert, table: macs, match: {ethernet.dst: 5}, action: forward(2)}]",
     r"control\.ops\[1\] \(insert in table 'macs'\): the table already has an entry with this match"),
    ("[{op: upsert, table: macs}]", r"control\.ops\[0\]: op 'upsert' is not one of insert, modify, delete, default"),
    ("[{op: delete, table: macs, match: {ethernet.dst: 5}, action: drop}]",
     r"control\.ops\[0\]: a delete op names the entry by 'match'"),
    ("[{op: default, table: nosuch, action: drop}]", r"control\.ops\[0\]: unknown table 'nosuch'"),
    ("{op: insert}", r"control\.ops: expected a list, found map"),
])
def test_a_bad_ops_list_is_one_line_naming_file_and_line(tmp_path: Path, ops: str, message: str) -> None:
    text = ("c3po_vectors: 1\nprogram: table_sequences\nvectors:\n  - name: ok\n    packets: [{port: 1, data: '00'}]\n"
            f"  - name: bad\n    control:\n      ops: {ops}\n    packets: [{{port: 1, data: '00'}}]\n")
    with pytest.raises(VectorFileError) as err:
        _vectors(tmp_path, text, SEQ_SPEC, "bad.yaml")
    text_of = str(err.value)
    assert "\n" not in text_of
    assert text_of.startswith(f"{tmp_path / 'bad.yaml'}:6: vectors[1] ('bad').")
    assert re.search(message, text_of), text_of


def test_a_full_table_in_the_middle_of_a_sequence_is_refused(tmp_path: Path) -> None:
    inserts = ", ".join(f"{{op: insert, table: acl, match: {{ipv4.src: {i}}}, action: drop, priority: 1}}"
                        for i in range(5))
    text = f"c3po_vectors: 1\nvectors:\n  - name: x\n    control: {{ops: [{inserts}]}}\n    packets: [{{port: 1, data: '00'}}]\n"
    path = tmp_path / "v.jsonl"
    doc = yaml.safe_load(text)
    path.write_text(json.dumps({"c3po_vectors": 1}) + "\n" + json.dumps(doc["vectors"][0]) + "\n")
    with pytest.raises(VectorFileError, match=r"v\.jsonl:2: .*ops\[4\] \(insert in table 'acl'\): table 'acl' is "
                                              r"full: it holds 4 entries"):
        load_vectors(path, load_program(str(SEQ_SPEC)).program)


# ------------------------------------------------------------------------------------------------ targets


def _need(target: str) -> None:
    if target == "xdp":
        need_bpf()
    elif target == "p4":
        need_p4_driver()
    else:
        need_tool("gcc")


def _run(target: str, requests: list[RunRequest], monkeypatch: pytest.MonkeyPatch) -> None:
    name = target.removesuffix("-asan")
    monkeypatch.setenv("C3PO_NIC_SANITIZE", "1" if target.endswith("-asan") else "0")
    reports = run_conformance(requests, [name], timeout=30, jobs=1)
    for report in reports:
        assert [t.reason for t in report.targets if not t.ran] == []
        bad = [f"{o.vector}: {o.outcome}: {'; '.join(o.detail[:4])}" for o in report.outcomes
               if o.outcome not in ("PASS", "N/A", "XFAIL")]
        assert not bad, "\n".join(bad)
        assert any(o.outcome == "PASS" for o in report.outcomes)


@pytest.mark.parametrize("target", ["xdp", "nic", "nic-asan", "p4"])
def test_sequences_pass_through_each_targets_update_path(target: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _need(target)
    vectors = _vectors(tmp_path, SEQUENCES, SEQ_SPEC)
    _run(target, [RunRequest(str(SEQ_SPEC), vectors)], monkeypatch)


def _colliding(prog_table: object, count: int = 2) -> list[int]:
    """MAC keys of `macs` with the same NIC home slot."""
    from c3po_compiler.expr import KeyElem
    from conformance.gen_sequences import nic_home_slot

    by_slot: dict[int | None, list[int]] = {}
    for low in range(1, 4096):
        mac = 0x020000000000 | low
        slot = nic_home_slot(prog_table, (KeyElem("value", mac),))  # type: ignore[arg-type]
        by_slot.setdefault(slot, []).append(mac)
        if len(by_slot[slot]) == count:
            return by_slot[slot]
    raise AssertionError("no collision among 4,095 keys of a 16-slot table")


def test_the_nic_hash_replica_is_the_runtime_hash(tmp_path: Path) -> None:
    """gen_sequences crafts collisions with a Python copy of c3po_nic.h's mixers: they must agree."""
    need_tool("gcc")
    from conformance.gen_sequences import _fmix, _mix

    src = tmp_path / "h.c"
    src.write_text('#include <stdio.h>\n#include "c3po_nic.h"\nint main(void) {\n'
                   '    printf("%llu %llu\\n", (unsigned long long)c3po_fmix(0x0123456789abcdefull),\n'
                   '           (unsigned long long)c3po_fmix(c3po_mix(c3po_mix(7, 0x0200000000aaull), 9)));\n'
                   '    return 0;\n}\n')
    exe = tmp_path / "h"
    subprocess.run(["gcc", "-std=gnu99", "-I", str(ROOT / "targets" / "nic" / "runtime"), str(src), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [_fmix(0x0123456789ABCDEF), _fmix(_mix(_mix(7, 0x0200000000AA), 9))]


@pytest.mark.parametrize("target", ["nic", "nic-asan"])
def test_colliding_keys_pass_on_nic(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two keys with one home slot: the second probes past the first; deleting the first shifts it back."""
    _need(target)
    prog = load_program(str(SEQ_SPEC)).program
    a, b = _colliding(prog.tables["macs"])

    def mac(v: int) -> str:
        return ":".join(f"{(v >> s) & 0xff:02x}" for s in range(40, -8, -8))

    text = f"""\
c3po_vectors: 1
program: table_sequences
vectors:
  - name: collision_probed_then_shifted
    control:
      ops:
        - {{op: insert, table: macs, match: {{ethernet.dst: "{mac(a)}"}}, action: forward(1)}}
        - {{op: insert, table: macs, match: {{ethernet.dst: "{mac(b)}"}}, action: forward(2)}}
        - {{op: delete, table: macs, match: {{ethernet.dst: "{mac(a)}"}}}}
        - {{op: modify, table: macs, match: {{ethernet.dst: "{mac(b)}"}}, action: forward(3)}}
        - {{op: insert, table: macs, match: {{ethernet.dst: "{mac(a)}"}}, action: forward(4)}}
    packets:
      - {{port: 1, data: "{b:012x} 020000000009 88b5"}}
      - {{port: 1, data: "{a:012x} 020000000009 88b5"}}
"""
    vectors = _vectors(tmp_path, text, SEQ_SPEC)
    fill_expected(prog, vectors)
    assert _results(vectors)["collision_probed_then_shifted"] == [("forward", 3), ("forward", 4)]
    _run(target, [RunRequest(str(SEQ_SPEC), vectors)], monkeypatch)


@pytest.mark.parametrize("target", ["xdp", "nic", "p4"])
def test_a_forward_to_a_port_without_a_mapping_drops(target: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's decision is the oracle's (forward to the port, all 16 bits); where the target has a port
    layer, a port it has no mapping for drops the frame: xdp's devmap returns XDP_DROP. The p4 driver wires a
    port below BMv2's CPU port when the switch first sends to it, so the frame's bytes are compared there too.
    The nic program reports the port and leaves the mapping to its host."""
    _need(target)
    prog = load_program(str(FWD_SPEC)).program
    vectors = _vectors(tmp_path, PORTS, FWD_SPEC)
    fill_expected(prog, vectors)
    assert _results(vectors) == {"arrivals": [("forward", 2), ("forward", 3)],
                                 "unmapped_ports": [("forward", 300), ("forward", 16), ("forward", 2)]}
    _run(target, [RunRequest(str(FWD_SPEC), vectors)], monkeypatch)
    from conformance.driver import load_driver_class

    vector = vectors[1]
    drv = load_driver_class(target)()
    try:
        drv.open(prog, tmp_path)
        drv.install(vector.control)
        unmapped, wired, mapped = drv.run(vector.packets, {})
    finally:
        drv.close()
    assert (unmapped.verdict, unmapped.port) == ("forward", 300)
    if target == "xdp":
        assert unmapped.observations.get("dropped") is True, unmapped.observations
    else:  # nic: the host maps it; p4: wired when BMv2 sent to it, and captured
        assert unmapped.data == vector.expected[0].data and not unmapped.observations.get("dropped")
    # port 16: mapped on xdp (devmap 0..255), wired on demand on p4
    assert (wired.verdict, wired.port, wired.observations.get("dropped")) == ("forward", 16, None)
    assert (mapped.verdict, mapped.port, mapped.observations.get("dropped")) == ("forward", 2, None)


# ------------------------------------------------------------------------------------------- generation


def test_generated_sequences_cover_every_shape_of_a_small_table() -> None:
    from conformance.gen_sequences import CLASS, SHAPES
    from conformance.generate import generate

    g = generate(load_program(str(SEQ_SPEC)).program, seed=0)
    part = g.coverage[CLASS]
    assert part["uncovered"] == [] and part["infeasible"] == []
    assert part["covered"] == part["total"] == 3 * 6  # acl (ternary): a priority tie instead of a collision
    shapes = {tag for v in g.vectors if "sequence" in v.tags for tag in v.tags} - {"sequence"}
    assert shapes == set(SHAPES)
    full = next(v for v in g.vectors if v.name == "seq.macs.full_table")
    assert sum(op.op == "insert" for op in full.control.ops) == 8  # the table's size, the last slot included


def test_generated_port_vectors() -> None:
    from conformance.gen_ports import CLASS, EGRESS_PORTS, INGRESS_PORTS
    from conformance.generate import generate

    g = generate(load_program(str(FWD_SPEC)).program, seed=0)
    assert g.coverage[CLASS]["covered"] == len(INGRESS_PORTS) + len(EGRESS_PORTS)
    ports = {v.packets[0].port for v in g.vectors if "ingress" in v.tags}
    assert ports == set(INGRESS_PORTS)
    out = {v.expected[0].port for v in g.vectors if "egress_unmapped" in v.tags}
    assert out == set(EGRESS_PORTS)


def test_generated_port_vectors_solve_a_computed_port() -> None:
    """tlv_parser forwards to `logical_egress - first_lport + first_port`: the arguments are solved so the
    first packet leaves on each edge port (p4's 256..509 were never reached with the spec's arguments)."""
    from conformance.gen_ports import CLASS, EGRESS_PORTS
    from conformance.generate import generate

    g = generate(load_program(str(ROOT / "spec/examples/tlv_parser.yaml")).program, seed=0)
    part = g.coverage[CLASS]
    assert part["infeasible"] == [] and part["uncovered"] == []
    out = {v.expected[0].port: v for v in g.vectors if "egress_unmapped" in v.tags}
    assert set(out) == set(EGRESS_PORTS)
    args = {p: next(e.args for e in v.control.entries if e.table == "ovn_egress") for p, v in out.items()}
    shift = {p: (a[1] - a[0]) & 0xFFFF for p, a in args.items()}  # first_port - first_lport
    assert (shift[256] - shift[16]) & 0xFFFF == 240 and (shift[509] - shift[16]) & 0xFFFF == 493
