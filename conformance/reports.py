"""Run reports: a terminal table, JUnit XML (for CI dashboards), JSON (for scripts), and one self-contained
HTML page (inline CSS, no external assets, so it can be attached to a bug report as is)."""

from __future__ import annotations

import html
import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from c3po_compiler.target_api import atomic_output
from c3po_compiler.text import terminal_lines, terminal_text

from .runner import OUTCOMES, RunReport, TargetStatus, VectorOutcome

# "p4c / simple_switch not found (p4c-bm2-ss, simple_switch missing)" says "not found" twice over.
_NOT_FOUND_TWICE = re.compile(r"[^:()]*? not found \((?P<names>[^()]+?) missing\)")


def tidy_reason(reason: str) -> str:
    """A driver's unavailability message as printed: the missing names said once."""
    return _NOT_FOUND_TWICE.sub(lambda m: f"{m['names']} not found", reason, count=1)


def target_note(t: TargetStatus) -> str:
    """Why a target has no vector results: skipped (cannot run here) or ERROR (broke while opening)."""
    return f"{t.name}: {'ERROR' if t.error else 'skipped'} ({tidy_reason(t.reason)})"


def skipped_lines(reports: list[RunReport]) -> list[str]:
    """Why each target did not run, once per target, ready for a terminal: a driver's reason may be several
    lines by design (a compiler's output), each made safe by `terminal_lines`."""
    seen: set[str] = set()
    out = []
    for r in reports:
        for t in r.targets:
            if not t.ran and t.name not in seen:
                seen.add(t.name)
                out.append(terminal_lines(target_note(t)))
    return out


def terminal(
    reports: list[RunReport], verbose: bool = False, max_failures: int = 20, notes: bool = True
) -> str:
    """Failures, then a count per target and outcome; `notes` adds why targets did not run (off when the
    feature table follows, which ends with the same lines).

    Vector names, failure details and target names come from vector files, drivers and the command line: every
    line goes through `terminal_text`, so none of them can colour, move or add a line on the terminal."""
    lines: list[str] = []
    shown = 0
    for r in reports:
        for o in r.outcomes:
            if o.outcome in ("FAIL", "ERROR", "XPASS") and shown < max_failures:
                shown += 1
                lines.append(terminal_text(f"{o.outcome} {r.program}/{o.vector} on {o.target}"))
                lines += ["    " + terminal_text(d) for d in o.detail[: 12 if not verbose else None]]
    if lines:
        lines.append("")
    targets = list(dict.fromkeys(t.name for r in reports for t in r.targets))
    names = {t: terminal_text(t) for t in targets}
    totals = {t: dict.fromkeys(OUTCOMES, 0) for t in targets}
    for r in reports:
        for t, c in r.counts().items():
            for k, n in c.items():
                totals[t][k] += n
    width = max([6, *(len(t) for t in names.values())])
    lines.append(f"{'target':<{width}}  " + "  ".join(f"{k:>5}" for k in OUTCOMES))
    for t in targets:
        ran = any(ts.ran for r in reports for ts in r.targets if ts.name == t)
        if not ran:
            continue
        lines.append(f"{names[t]:<{width}}  " + "  ".join(f"{totals[t][k]:>5}" for k in OUTCOMES))
    lines += target_coverage_lines(reports, 5 if not verbose else 1000)
    if notes:
        lines += skipped_lines(reports)
    return "\n".join(lines)


def target_coverage_lines(reports: list[RunReport], show: int = 5) -> list[str]:
    """Per program and target that counts it (Driver.coverage): how much of its generated code the vectors ran,
    and the first places they never reached, so a vendor sees which copies of the control no vector tests."""
    out = []
    for r in reports:
        for t in r.targets:
            c = t.coverage
            if not c:
                continue
            what = c.get("what", "generated code")
            if c.get("reached") is None:
                out.append(terminal_text(f"{r.program} on {t.name}: {what}: {c.get('note', 'not counted')}"))
                continue
            missed = list(c.get("unreached", []))
            more = len(missed) - show + int(c.get("unreached_more", 0))
            out.append(terminal_text(f"{r.program} on {t.name}: {what}: {c['reached']} of {c['total']} reached"
                                     + (f" ({c['note']})" if c.get("note") else "")))
            out += ["    never: " + terminal_text(m) for m in missed[:show]]
            if more > 0:
                out.append(f"    ... and {more} more (report.json lists them)")
    return out


def feature_table(reports: list[RunReport]) -> str:
    """The suite's view: one row per program (feature), one column per target. A cell shows the worst
    outcome with its count (ERROR, FAIL, XPASS, XFAIL), else the passes, with N/A vectors in brackets. Target
    and program names are shown through `terminal_text` (a `cmd:` target is whatever the user typed)."""
    targets = list(dict.fromkeys(t.name for r in reports for t in r.targets))
    names = [terminal_text(t) for t in targets]
    programs = [terminal_text(r.program) for r in reports]
    width = max([7, *(len(p) for p in programs)])
    rows = [[_feature_cell(r, t) for t in targets] for r in reports]
    # each column as wide as its widest cell, so "PASS 12 (1 N/A)" does not push the next column right
    cws = [max([len(t), *(len(row[i]) for row in rows)]) for i, t in enumerate(names)]
    lines = [f"{'feature':<{width}}  " + "  ".join(f"{t:>{cw}}" for t, cw in zip(names, cws, strict=True))]
    for program, cells in zip(programs, rows, strict=True):
        lines.append(
            f"{program:<{width}}  " + "  ".join(f"{c:>{cw}}" for c, cw in zip(cells, cws, strict=True))
        )
    lines += skipped_lines(reports)
    return "\n".join(lines)


def _feature_cell(r: RunReport, t: str) -> str:
    status = next((ts for ts in r.targets if ts.name == t), None)
    outs = [o.outcome for o in r.outcomes if o.target == t]
    if status is not None and not status.ran:
        return "ERROR" if status.error else "skip"
    bad = next((k for k in ("ERROR", "FAIL", "XPASS", "XFAIL") if k in outs), None)
    na = outs.count("N/A")
    if bad is not None:
        return f"{bad} {outs.count(bad)}"
    if not outs:
        return "-"
    if na == len(outs):
        return "N/A"
    return f"PASS {outs.count('PASS')}" + (f" ({na} N/A)" if na else "")


def to_json(reports: list[RunReport]) -> dict[str, Any]:
    return {
        "format": "c3po-conformance-report",
        "version": 1,
        "runs": [
            {
                "spec": r.spec,
                "program": r.program,
                "features": r.features,
                "targets": [
                    {"name": t.name, "ran": t.ran, "reason": t.reason, "error": t.error,
                     **({"coverage": t.coverage} if t.coverage else {})} for t in r.targets
                ],
                "counts": r.counts(),
                **({"coverage": r.coverage} if r.coverage else {}),
                "results": [
                    {
                        "target": o.target,
                        "vector": o.vector,
                        "outcome": o.outcome,
                        "detail": o.detail,
                        "fields": o.fields,
                        "seconds": round(o.seconds, 6),
                        "tags": o.tags,
                        "packets": o.packets,
                    }
                    for o in r.outcomes
                ],
            }
            for r in reports
        ],
    }


def write_json(reports: list[RunReport], path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(reports), indent=1) + "\n", encoding="utf-8")


def write_junit(reports: list[RunReport], path: str | Path) -> None:
    """One testsuite per program and target, one testcase per vector: FAIL → failure, ERROR → error,
    N/A, XFAIL and skipped targets → skipped (XFAIL keeps its reason), XPASS → a passing case with a
    note."""
    root = ET.Element("testsuites", name="c3po conformance")
    for r in reports:
        for t in r.targets:
            outs = [o for o in r.outcomes if o.target == t.name]
            suite = ET.SubElement(
                root,
                "testsuite",
                name=f"{r.program}.{t.name}",
                tests=str(len(outs) + (0 if t.ran else 1)),
                failures=str(sum(o.outcome == "FAIL" for o in outs)),
                errors=str(sum(o.outcome == "ERROR" for o in outs) + int(t.error)),
                skipped=str(
                    sum(o.outcome in ("N/A", "XFAIL") for o in outs) + (0 if t.ran or t.error else 1)
                ),
            )
            if not t.ran:
                case = ET.SubElement(suite, "testcase", classname=f"{r.program}.{t.name}", name="(target)")
                ET.SubElement(case, "error" if t.error else "skipped", message=t.reason)
            for o in outs:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"{r.program}.{t.name}",
                    name=o.vector,
                    time=f"{o.seconds:.6f}",
                )
                text = "\n".join(o.detail)
                if o.outcome == "FAIL":
                    ET.SubElement(
                        case, "failure", message=o.detail[0] if o.detail else "mismatch"
                    ).text = text
                elif o.outcome == "ERROR":
                    ET.SubElement(case, "error", message=o.detail[0] if o.detail else "error").text = text
                elif o.outcome in ("N/A", "XFAIL"):
                    ET.SubElement(case, "skipped", message=f"{o.outcome}: {text}")
                elif o.outcome == "XPASS":
                    ET.SubElement(case, "system-out").text = "XPASS: " + text
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f2f2f2}
.PASS{background:#dff0d8}.FAIL{background:#f2dede}.ERROR{background:#f0c0c0}.NA{background:#eee}
.XFAIL{background:#fcf8e3}.XPASS{background:#d9edf7}pre{margin:0;font-size:12px;white-space:pre-wrap}"""


REFERENCE = "ref"
_FAILURES = ("FAIL", "ERROR", "XPASS")


def trace_commands(spec: str, o: VectorOutcome) -> list[str]:
    """The `c3po trace` command per input frame of a FAIL: it explains the reference's steps and shows the
    target's first difference. The vector's table state is not in the outcome: its `control:` map, saved as
    a file, is what `--entries` takes."""
    if o.outcome != "FAIL":
        return []
    out = []
    for p in o.packets:
        port, _, data = p.removeprefix("port ").partition(": ")
        if port.isdigit() and data:
            out.append(f"c3po trace {shlex.quote(spec)} --packet {data} --port {port} --target {o.target}"
                       " [--entries FILE: the vector's control: state]")
    return out


def _html_row(e: Any, o: VectorOutcome, program: str | None = None, spec: str | None = None) -> str:
    cls = "NA" if o.outcome == "N/A" else o.outcome
    detail = list(o.detail)
    if o.packets:
        detail += ["input:", *(f"  {p}" for p in o.packets)]
    if spec is not None and (commands := trace_commands(spec, o)):
        detail += ["reproduce and explain:", *(f"  {c}" for c in commands)]
    first = f"<td>{e(program)}</td>" if program is not None else ""
    return (
        f"<tr>{first}<td>{e(o.vector)}</td><td>{e(o.target)}</td><td class='{cls}'>{e(o.outcome)}</td>"
        f"<td><pre>{e(chr(10).join(detail))}</pre></td></tr>"
    )


def coverage_html(coverage: dict[str, Any]) -> str:
    """The generator's coverage as a table, the gap classes (mutation analysis, issue 16) after the structural
    parts: what the vectors reached against what is feasible, and each item left out with why."""
    e = html.escape
    rows = []
    for part, c in sorted(coverage.items(), key=lambda kv: bool(kv[1].get("class"))):
        if c.get("class") and not c.get("total"):
            continue
        notes = [f"not covered: {x}" for x in c.get("uncovered", [])]
        notes += [f"infeasible: {x.get('item')}: {x.get('reason')}" for x in c.get("infeasible", [])]
        if c.get("more"):
            notes.append(f"... and {c['more']} more")
        kind = "gap class" if c.get("class") else "structure"
        rows.append(
            f"<tr><td>{e(part.replace('_', ' '))}</td><td>{kind}</td>"
            f"<td>{e(str(c.get('covered')))}/{e(str(c.get('feasible')))}</td><td>{e(str(c.get('percent')))}%</td>"
            f"<td>{len(c.get('infeasible', [])) + (c.get('more') or 0) if c.get('infeasible') else 0}</td>"
            f"<td><pre>{e(chr(10).join(notes))}</pre></td></tr>"
        )
    return (
        "<table class='coverage'><tr><th>coverage</th><th>kind</th><th>covered/feasible</th><th>%</th>"
        "<th>infeasible</th><th>items left out</th></tr>" + "".join(rows) + "</table>"
    )


def write_html(reports: list[RunReport], path: str | Path) -> None:
    """Failures first (what a reader opens the page for), then each program's vectors. Passing rows of the
    reference target are collapsed into a count: with oracle-computed expectations they compare the
    oracle with itself and say nothing."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>c3po conformance</title>",
        f"<style>{_CSS}</style></head><body><h1>c3po conformance</h1>",
    ]
    parts.append("<h2>Summary</h2><pre>" + e(terminal(reports, max_failures=0)) + "</pre>")
    failures = [(r.program, r.spec, o) for r in reports for o in r.outcomes if o.outcome in _FAILURES]
    parts.append(f"<h2 id='failures'>Failures ({len(failures)})</h2>")
    if failures:
        parts.append(
            "<table class='failures'><tr><th>program</th><th>vector</th><th>target</th><th>outcome</th>"
            "<th>detail</th></tr>"
        )
        parts += [_html_row(e, o, program, spec) for program, spec, o in failures]
        parts.append("</table>")
    else:
        parts.append("<p>none</p>")
    for r in reports:
        parts.append(f"<h2>{e(r.program)} <small>({e(r.spec)})</small></h2>")
        parts.append("<p>features: " + e(", ".join(r.features) or "none") + "</p>")
        if r.coverage:
            parts.append(coverage_html(r.coverage))
        for t in r.targets:
            if not t.ran:
                parts.append(f"<div class='target-note'><pre>{e(target_note(t))}</pre></div>")
        shown = [o for o in r.outcomes if not (o.target == REFERENCE and o.outcome == "PASS")]
        ref_passes = len(r.outcomes) - len(shown)
        if ref_passes:
            parts.append(
                f"<p class='ref-collapsed'>{REFERENCE}: {ref_passes} PASS (the reference interpreter against "
                "its own expectations; rows left out)</p>"
            )
        parts.append("<table><tr><th>vector</th><th>target</th><th>outcome</th><th>detail</th></tr>")
        parts += [_html_row(e, o, spec=r.spec) for o in shown]
        parts.append("</table>")
    parts.append("</body></html>\n")
    Path(path).write_text("".join(parts), encoding="utf-8")


def write_report_dir(reports: list[RunReport], directory: str | Path) -> list[Path]:
    """report.html, report.json and junit.xml in `directory`, each written under a temporary name and renamed
    (`atomic_output`): a full disk or an interrupt leaves the previous report or none, never a truncated one
    that a CI dashboard would read as a short run."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    writers = [(d / "report.html", write_html), (d / "report.json", write_json), (d / "junit.xml", write_junit)]
    for path, write in writers:
        with atomic_output(path) as tmp:
            write(reports, tmp)
    return [path for path, _ in writers]
