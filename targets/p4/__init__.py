"""The P4 target: P4-16 for BMv2's v1model (`simple_switch`), plus a P4Runtime/CLI description of its tables.

`render` gives `<program>.p4` and `<program>.entries.json`; compiling them needs p4c (`p4c-bm2-ss`), which is
not packaged for Debian, so `build` only compiles when p4c is on PATH. docs/targets/p4.md explains every
mapping choice and lists what v1model cannot express.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jinja2

from c3po_compiler import ir
from c3po_compiler.problems import Problem
from c3po_compiler.target_api import BuildError, BuildResult, Target, run_to_outputs

from .emitter import DEFAULT_CPU_PORT, build_view, limits, warnings
from .entries import describe

__all__ = ["DEFAULT_CPU_PORT", "P4_FEATURES", "P4Target"]

# Listed, not `frozenset(FEATURES)`: a feature added to the language later is refused here until this target
# implements it.
P4_FEATURES = frozenset({
    "const_entries", "counters", "forward", "hash", "header_stack", "stack_varlen", "lookahead", "match_exact", "match_lpm",
    "match_range", "match_ternary", "optional_groups", "parser_do", "reflect", "registers", "select_mask", "select_range",
    "set_invalid", "set_valid", "table_counters", "tlv", "unaligned_fields", "update_checksum_ipv4",
    "update_checksum_l4", "varlen", "verify_checksum", "wide_fields",
})

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("targets.p4", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


class P4Target(Target):
    name = "p4"
    description = "P4-16 for BMv2 simple_switch (v1model)"
    supports = P4_FEATURES

    def __init__(self, cpu_port: int = DEFAULT_CPU_PORT) -> None:
        self.cpu_port = cpu_port

    def limits(self, prog: ir.Program) -> list[Problem]:
        return limits(prog, self.cpu_port)

    def render(self, prog: ir.Program) -> dict[str, str]:
        text = _ENV.get_template("program.p4.j2").render(**build_view(prog, self.cpu_port))
        entries = json.dumps(describe(prog, self.cpu_port), indent=2, sort_keys=True) + "\n"
        return {f"{prog.name}.p4": text, f"{prog.name}.entries.json": entries}

    def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
        result = super().build(prog, outdir)
        result.notes += [p.format() for p in warnings(prog)]
        result.footprint, notes = footprint(prog)
        result.notes += notes
        p4c = shutil.which("p4c-bm2-ss")
        if p4c is None:
            result.notes.append("p4c-bm2-ss not found: wrote P4 source only (see docs/targets/p4.md to install p4c)")
            return result
        out = outdir / f"{prog.name}.json"
        p4info = outdir / f"{prog.name}.p4info.txtpb"
        cmd = compile_command(p4c, result.files[f"{prog.name}.p4"], out, p4info)
        # both written under temporary names and renamed only when p4c succeeds: never a half-written JSON
        proc = run_to_outputs(cmd, [out, p4info], timeout=300)
        if proc.returncode != 0:
            raise BuildError(f"p4c-bm2-ss failed on {result.files[f'{prog.name}.p4']}:\n{proc.stderr.strip()}")
        result.files["bmv2_json"] = out
        result.files["p4info"] = p4info
        return result


def _nbytes(width: int) -> int:
    return (width + 7) // 8


def footprint(prog: ir.Program) -> tuple[int, list[str]]:
    """An estimate of the switch's state from the sizes and widths BMv2 allocates: each table entry's key (twice
    for ternary and lpm keys: value and mask), its largest action data and 8 bytes of action id and priority;
    16 bytes (packets, bytes) per counter and table-counter element; each register element's bytes. BMv2's own
    per-object overhead comes on top.

    A table counts once per apply site: P4 applies a table once per control, so the generated program declares a
    copy per site ('t', 't__2', ...) and the BMv2 JSON holds each with its own entries and counters; a table never
    applied is left out of the JSON by p4c and counts nothing (p4c's keyless helper tables hold no entries)."""
    notes: list[str] = []
    total = 0
    sites = {name: 0 for name in prog.tables}
    for s in ir.walk_stmts(prog.control):
        if isinstance(s, ir.Apply):
            sites[s.table] += 1
    for t in prog.tables.values():
        key = sum(_nbytes(k.width) * (2 if k.kind in ("ternary", "lpm") else 1) for k in t.keys)
        data = max((sum(_nbytes(p.width) for p in prog.actions[a].params) for a in t.actions), default=0)
        n = sites[t.name]
        size = n * t.size * (key + data + 8 + (16 if t.counters else 0))
        if n == 0:
            notes.append(f"table {t.name}: 0 bytes (never applied: p4c leaves it out)")
        else:
            copies = f"{n} P4 tables (one per apply) x " if n > 1 else ""
            notes.append(f"table {t.name}: {size:,} bytes ({copies}{t.size} entries x ({key} key + {data} action data"
                         f" + 8{' + 16 counters' if t.counters else ''}) bytes)")
        total += size
    for c in prog.counters.values():
        notes.append(f"counter {c.name}: {c.size * 16:,} bytes ({c.size} elements x 16 bytes)")
        total += c.size * 16
    for r in prog.registers.values():
        notes.append(f"register {r.name}: {r.size * _nbytes(r.width):,} bytes ({r.size} elements x "
                     f"{_nbytes(r.width)} bytes)")
        total += r.size * _nbytes(r.width)
    notes.append(f"state total: {total:,} bytes (estimate from sizes and widths; BMv2's own overhead not counted)")
    return total, notes


def compile_command(p4c: str, source: Path, out: Path, p4info: Path | None = None) -> list[str]:
    """BMv2 JSON, and with `p4info` the P4Info P4Runtime clients need (p4c names and numbers every object)."""
    extra = ["--p4runtime-files", str(p4info)] if p4info is not None else []
    return [p4c, "--arch", "v1model", "--std", "p4-16", "-o", str(out), *extra, str(source)]
