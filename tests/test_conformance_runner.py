"""The runner, out-of-process plugins, expected failures, reports and the `c3po conformance` command."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from c3po_compiler import load_program
from c3po_compiler.cli import main as c3po_main
from conformance.expected_failures import ExpectedFailuresError, load_expected_failures
from conformance.generate import generate
from conformance.model import Expected, PacketIn, Vector
from conformance.reports import terminal, to_json, write_html, write_json, write_junit
from conformance.runner import RunRequest, VectorOutcome, exit_status, run_conformance

from .conftest import ROOT

PLUGINS = ROOT / "tests" / "plugins"
PY = sys.executable
GOOD = f"cmd:{PY} {PLUGINS / 'ref_plugin.py'}"
BROKEN = f"cmd:{PY} {PLUGINS / 'broken_plugin.py'}"
SPEC = str(ROOT / "conformance" / "suite" / "update_checksum_ipv4.yaml")


def _vectors() -> list[Vector]:
    return generate(load_program(SPEC).program, seed=2).vectors


def test_good_plugin_passes_and_broken_plugin_errors_without_hanging() -> None:
    vectors = _vectors()
    (report,) = run_conformance([RunRequest(SPEC, vectors)], ["ref", GOOD, BROKEN], timeout=20, jobs=3)
    by = {(o.target, o.vector): o for o in report.outcomes}
    assert all(by[("ref", v.name)].outcome == "PASS" for v in vectors)
    assert all(by[(GOOD, v.name)].outcome == "PASS" for v in vectors)
    crashing = [v for v in vectors if v.packets[0].data[:1] and v.packets[0].data[0] % 2 == 0]
    surviving = [v for v in vectors if v not in crashing]
    assert crashing and surviving, "the seed should give both kinds of first byte"
    assert all(by[(BROKEN, v.name)].outcome == "ERROR" for v in crashing)
    assert all("exited" in " ".join(by[(BROKEN, v.name)].detail) for v in crashing)
    assert all(by[(BROKEN, v.name)].outcome == "PASS" for v in surviving)
    assert exit_status([report]) == 1


def test_a_hanging_plugin_times_out_per_vector() -> None:
    vectors = _vectors()[:3]
    prefix = vectors[1].packets[0].data[:4].hex()
    hang = f"cmd:{PY} {PLUGINS / 'ref_plugin.py'} --hang-on {prefix}"
    (report,) = run_conformance([RunRequest(SPEC, vectors)], [hang], timeout=2, jobs=1)
    outcomes = {o.vector: o for o in report.outcomes}
    assert outcomes[vectors[1].name].outcome == "ERROR"
    assert "did not answer within 2s" in " ".join(outcomes[vectors[1].name].detail)
    assert outcomes[vectors[2].name].outcome in ("PASS", "ERROR")
    if vectors[2].packets[0].data[:4].hex() != prefix:
        assert outcomes[vectors[2].name].outcome == "PASS"


def test_mismatch_names_the_differing_field_and_xfail_xpass(tmp_path: Path) -> None:
    prog = load_program(SPEC).program
    good = next(v for v in _vectors() if v.expected[0].verdict == "forward" and len(v.packets[0].data) >= 34)
    wrong = Expected(**{**good.expected[0].__dict__})
    data = bytearray(wrong.data)
    data[22] ^= 0x01  # ipv4.ttl
    wrong.data = bytes(data)
    bad = Vector("wrong_ttl", good.control, good.packets, expected=[wrong])
    na = Vector(
        "needs_magic", good.control, good.packets, expected=list(good.expected), requires=["teleport"]
    )
    (report,) = run_conformance([RunRequest(SPEC, [good, bad, na])], ["ref"], jobs=1)
    by = {o.vector: o for o in report.outcomes}
    assert by[good.name].outcome == "PASS"
    assert by["wrong_ttl"].outcome == "FAIL"
    assert "ipv4.ttl" in by["wrong_ttl"].fields
    assert any("ipv4.ttl: expected" in line for line in by["wrong_ttl"].detail)
    assert by["needs_magic"].outcome == "N/A"
    xfail_file = tmp_path / "xfail.yaml"
    xfail_file.write_text(
        f"- {{vector: 'wrong_*', target: ref, reason: 'ipv4\\.ttl', note: bug 1}}\n"
        f"- {{vector: '{prog.name}/{good.name}', target: 'r*'}}\n"
    )
    xfail = load_expected_failures(xfail_file)
    (report,) = run_conformance([RunRequest(SPEC, [good, bad])], ["ref"], jobs=1, xfail=xfail)
    by = {o.vector: o for o in report.outcomes}
    assert by["wrong_ttl"].outcome == "XFAIL" and "bug 1" in by["wrong_ttl"].detail[0]
    assert by[good.name].outcome == "XPASS"
    assert exit_status([report]) == 0
    xfail_file.write_text("- {vector: 'wrong_*', reason: 'checksum'}\n")
    (report,) = run_conformance(
        [RunRequest(SPEC, [bad])], ["ref"], jobs=1, xfail=load_expected_failures(xfail_file)
    )
    assert report.outcomes[0].outcome == "FAIL", "a reason pattern that does not match leaves a FAIL"


def test_bad_expected_failures_file(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("- {target: xdp}\n")
    with pytest.raises(ExpectedFailuresError, match="rule 0: needs 'vector' or 'feature'"):
        load_expected_failures(f)


def test_reports_are_well_formed(tmp_path: Path) -> None:
    vectors = _vectors()[:4]
    bad = Vector(
        "bad",
        vectors[0].control,
        [PacketIn(1, vectors[0].packets[0].data)],
        expected=[Expected("forward", 99, b"\x00")],
    )
    reports = run_conformance([RunRequest(SPEC, [*vectors, bad])], ["ref", "p4"], jobs=1)
    write_junit(reports, tmp_path / "j.xml")
    write_json(reports, tmp_path / "r.json")
    write_html(reports, tmp_path / "r.html")
    root = ET.parse(tmp_path / "j.xml").getroot()
    cases = root.findall(".//testcase")
    ref_cases = [c for c in cases if c.get("classname", "").endswith(".ref")]
    assert len(ref_cases) == 5
    assert len([c for c in ref_cases if c.find("failure") is not None]) == 1
    # p4 runs where p4c/BMv2 are installed (the bad vector fails there too) and is skipped elsewhere.
    p4_ran = any(c.get("classname", "").endswith(".p4") and c.find("skipped") is None for c in cases)
    assert len(root.findall(".//failure")) == 1 + p4_ran
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc == to_json(reports)
    assert doc["runs"][0]["counts"]["ref"]["FAIL"] == 1 and doc["runs"][0]["counts"]["ref"]["PASS"] == 4
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "http" not in html.split("<body>", 1)[0].replace("http-equiv", "")
    assert "<link" not in html and "<script" not in html


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = c3po_main(["conformance", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_gen_is_deterministic_and_run_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(ROOT / "conformance" / "suite" / "match_exact.yaml")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _cli(["gen", spec, "-o", str(a), "--seed", "4", "--fuzz", "20"], capsys)[0] == 0
    assert _cli(["gen", spec, "-o", str(b), "--seed", "4", "--fuzz", "20"], capsys)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    # the broken plugin below crashes on frames whose first byte is even: some vector must have one
    assert any(
        int(json.loads(line)["packets"][0]["data"][:2], 16) % 2 == 0
        for line in a.read_text().splitlines()[1:]
    )
    code, out, _ = _cli(
        [
            "run",
            spec,
            "--vectors",
            str(a),
            "--targets",
            "ref",
            "-q",
            "--junit",
            str(tmp_path / "j.xml"),
            "--json",
            str(tmp_path / "r.json"),
            "--report",
            str(tmp_path / "rep"),
        ],
        capsys,
    )
    assert code == 0 and "ref" in out
    assert (tmp_path / "rep" / "report.html").exists() and (tmp_path / "j.xml").exists()
    code, _, err = _cli(["run", spec, "--targets", "ref,warp_drive", "-q"], capsys)
    assert code == 2 and "unknown target 'warp_drive'" in err
    code, out, _ = _cli(["run", spec, "--vectors", str(a), "--targets", f"ref,{BROKEN}", "-q"], capsys)
    assert code == 1 and "ERROR" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("c3po_vectors: 1\nvectors:\n  - {name: x, packets: [{port: 1, data: 'qq'}]}\n")
    code, _, err = _cli(["run", spec, "--vectors", str(bad), "--targets", "ref", "-q"], capsys)
    assert code == 1 and str(bad) in err and "vectors[0] ('x')" in err and "Traceback" not in err


def test_cli_unavailable_target_exit_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # p4c and BMv2 out of sight, wherever they are installed
    spec = str(ROOT / "conformance" / "suite" / "action_drop.yaml")
    code, out, _ = _cli(["run", spec, "--targets", "ref,p4", "-q"], capsys)
    assert code == 0 and "p4: skipped (" in out, "a p4 skip alone is not an error when another target ran"
    code, out, _ = _cli(["run", spec, "--targets", "p4", "-q"], capsys)
    assert code == 2 and "p4: skipped (" in out


def test_pytest_plugin_gives_one_test_per_vector_and_target(tmp_path: Path) -> None:
    spec = ROOT / "conformance" / "suite" / "action_reflect.yaml"
    n = len(generate(load_program(spec).program).vectors)
    from importlib.metadata import entry_points

    installed = any(ep.value == "conformance.pytest_plugin" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "conformance.pytest_plugin"]
    proc = subprocess.run(
        [
            PY,
            "-m",
            "pytest",
            *load,
            "--c3po-spec",
            str(spec),
            "--c3po-targets",
            f"ref,{GOOD}",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"{2 * n} passed" in proc.stdout, proc.stdout[-2000:]


def test_hand_written_suite_vectors_pass_on_the_reference() -> None:
    from conformance.vector_io import load_vectors

    requests = []
    for hand in sorted((ROOT / "conformance" / "suite").glob("*.vectors.yaml")):
        spec = hand.with_name(hand.name.replace(".vectors.yaml", ".yaml"))
        vectors = load_vectors(hand, load_program(spec).program)
        assert any(v.expected for v in vectors), f"{hand.name} should state some expectations by hand"
        requests.append(RunRequest(str(spec), vectors))
    assert len(requests) >= 5
    for report in run_conformance(requests, ["ref"], jobs=2):
        assert [o.vector for o in report.outcomes if o.outcome != "PASS"] == [], report.program


@pytest.mark.parametrize("cls", ["HangingDriver", "DyingDriver"])
def test_a_python_driver_that_hangs_or_dies_costs_one_vector(cls: str) -> None:
    spec = str(ROOT / "conformance" / "suite" / "action_drop.yaml")
    prog = load_program(spec).program
    base = generate(prog).vectors[0]
    bad = Vector("bad", base.control, [PacketIn(1, b"\xee" + bytes(13))])
    after = Vector("after", base.control, [PacketIn(1, b"\x02" + bytes(13))])
    (report,) = run_conformance(
        [RunRequest(spec, [bad, after])], [f"py:tests.plugins.misbehaving_driver:{cls}"], timeout=0.5, jobs=1
    )
    by = {o.vector: o for o in report.outcomes}
    assert by["bad"].outcome == "ERROR"
    assert ("timed out" if cls == "HangingDriver" else "died") in " ".join(by["bad"].detail)
    assert by["after"].outcome == "PASS", "the worker is restarted and the run goes on"


def test_cli_suite_and_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["suite", "--targets", "ref", "--only", "match_exact,registers", "-q"], capsys)
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.startswith(("match_exact", "registers"))]
    assert [r[0] for r in rows] == ["match_exact", "registers"] and all(r[1] == "PASS" for r in rows)
    spec = str(ROOT / "conformance" / "suite" / "match_exact.yaml")
    hand = str(ROOT / "conformance" / "suite" / "match_exact.vectors.yaml")
    stf = tmp_path / "m.stf"
    assert _cli(["convert", spec, hand, "-o", str(stf)], capsys)[0] == 0
    assert "add t ethernet.dst:0x20000000002 forward(port:0x5)" in stf.read_text()
    back = tmp_path / "m.yaml"
    assert _cli(["convert", spec, str(stf), "-o", str(back)], capsys)[0] == 0
    code, out, _ = _cli(["run", spec, "--vectors", str(back), "--targets", "ref", "-q"], capsys)
    assert code == 0 and "ref         2" in out


def test_a_plugin_failing_at_open_is_one_target_error_quoting_its_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "dead_plugin.py"
    lines = "".join(f"print('noise line {i}', file=sys.stderr)\n" for i in range(30))
    plugin.write_text(
        f"import sys\n{lines}print('ModuleNotFoundError: No module named vendor_sdk', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    dead = f"cmd:{PY} {plugin}"
    vectors = _vectors()
    (report,) = run_conformance([RunRequest(SPEC, vectors)], ["ref", dead], timeout=5, jobs=2)
    assert [o for o in report.outcomes if o.target == dead] == [], "not one ERROR per vector"
    status = next(t for t in report.targets if t.name == dead)
    assert not status.ran and status.error
    assert "exited (status 1)" in status.reason
    assert "No module named vendor_sdk" in status.reason
    assert "noise line 29" in status.reason and "noise line 5\n" not in status.reason, "only the last lines"
    assert exit_status([report]) == 1
    lines_out = terminal([report]).splitlines()
    assert sum("No module named vendor_sdk" in line for line in lines_out) == 1
    junit = tmp_path / "j.xml"
    write_junit([report], junit)
    errors = ET.parse(junit).getroot().findall(".//testcase[@name='(target)']/error")
    assert len(errors) == 1 and "vendor_sdk" in errors[0].get("message", "")


class _HtmlTables(HTMLParser):
    """Headings and table rows (cell texts) of a report page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, Any]] = []  # ("h2", text) | ("row", [cells]) | ("p", text)
        self._text: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th", "h2", "p"):
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._text is not None:
            self._row.append("".join(self._text))
            self._text = None
        elif tag == "tr" and self._row is not None:
            self.items.append(("row", self._row))
            self._row = None
        elif tag in ("h2", "p") and self._text is not None:
            self.items.append((tag, "".join(self._text)))
            self._text = None


def test_html_report_puts_failures_first_and_explains_every_row(tmp_path: Path) -> None:
    vectors = _vectors()[:3]
    frame = vectors[0].packets[0].data
    bad = Vector("bad", vectors[0].control, [PacketIn(1, frame)], expected=[Expected("forward", 99, b"\x00")])
    (report,) = run_conformance([RunRequest(SPEC, [*vectors, bad])], ["ref", GOOD], jobs=2, timeout=20)
    reason = "packet 0: N/A: BPF_PROG_TEST_RUN refuses frames shorter than 14 bytes"
    report.outcomes.append(VectorOutcome(GOOD, "tiny", "N/A", [reason]))
    write_html([report], tmp_path / "r.html")
    page = _HtmlTables()
    page.feed((tmp_path / "r.html").read_text())
    heads = [text for kind, text in page.items if kind == "h2"]
    assert heads[:2] == ["Summary", "Failures (2)"], "failures come right after the summary"
    start = page.items.index(("h2", "Failures (2)"))
    end = next(i for i, (kind, _) in enumerate(page.items) if kind == "h2" and i > start)
    failure_rows = [row for kind, row in page.items[start:end] if kind == "row"][1:]
    assert sorted((row[1], row[2], row[3]) for row in failure_rows) == sorted(
        [("bad", "ref", "FAIL"), ("bad", GOOD, "FAIL")]
    )
    assert all(frame.hex() in row[4] for row in failure_rows), "a FAIL shows its input packet"
    rows = [row for kind, row in page.items[end:] if kind == "row" and row[0] != "vector"]
    na = [row for row in rows if row[2] == "N/A"]
    assert len(na) == 1 and reason in na[0][3]
    assert not [row for row in rows if row[1] == "ref" and row[2] == "PASS"], "ref-vs-ref rows left out"
    assert ("bad", "ref", "FAIL") in [(row[0], row[1], row[2]) for row in rows], "a failing ref row stays"
    assert len([row for row in rows if row[1] == GOOD and row[2] == "PASS"]) == len(vectors)
    assert any(kind == "p" and text.startswith(f"ref: {len(vectors)} PASS") for kind, text in page.items)


def test_feature_table_columns_line_up_and_skip_reasons_print_once() -> None:
    from conformance.reports import feature_table
    from conformance.runner import RunReport, TargetStatus

    def report(program: str, passes: int, na: int) -> RunReport:
        outs = [VectorOutcome("ref", f"v{i}", "PASS") for i in range(passes + na)]
        outs += [VectorOutcome("xdp", f"v{i}", "PASS") for i in range(passes)]
        outs += [VectorOutcome("xdp", f"n{i}", "N/A", ["packet 0: N/A: short"]) for i in range(na)]
        p4 = TargetStatus("p4", False, "p4c / simple_switch not found (p4c-bm2-ss, simple_switch missing): see docs")
        return RunReport("s.yaml", program, [], [TargetStatus("ref", True), TargetStatus("xdp", True), p4], outs)

    reports = [report("short", 2, 0), report("a_longer_name", 12, 1)]
    out = terminal(reports, notes=False) + "\n\n" + feature_table(reports)
    note = "p4: skipped (p4c-bm2-ss, simple_switch not found: see docs)"
    assert out.splitlines().count(note) == 1 and out.count("p4: skipped") == 1
    table = feature_table(reports).splitlines()
    header, rows = table[0], table[1:3]
    assert "PASS 12 (1 N/A)" in rows[1]
    # every column's right edge sits where its header's does
    for name in ("ref", "xdp", "p4"):
        edge = header.index(name) + len(name)
        assert all(row[edge - 1] != " " and (len(row) == edge or row[edge] == " ") for row in rows), name


def test_pytest_plugin_opens_a_failing_target_once(tmp_path: Path) -> None:
    spec = ROOT / "conformance" / "suite" / "action_reflect.yaml"
    n = len(generate(load_program(spec).program).vectors)
    assert n >= 2
    starts = tmp_path / "starts"
    plugin = tmp_path / "dead_plugin.py"
    plugin.write_text(
        f"import sys\nopen({str(starts)!r}, 'a').write('x')\n"
        "print('ModuleNotFoundError: vendor_sdk', file=sys.stderr)\nsys.exit(1)\n"
    )
    from importlib.metadata import entry_points

    installed = any(ep.value == "conformance.pytest_plugin" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "conformance.pytest_plugin"]
    proc = subprocess.run(
        [PY, "-m", "pytest", *load, "--c3po-spec", str(spec), "--c3po-targets", f"cmd:{PY} {plugin}", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"{n} failed" in proc.stdout, proc.stdout[-2000:]
    assert "vendor_sdk" in proc.stdout
    assert starts.read_text() == "x", "the plugin is started once, not once per vector"
