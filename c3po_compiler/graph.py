"""The parse graph as a picture: DOT text, rendered to SVG/PNG by Graphviz when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import ir
from .expr import KeyElem


def _keyset_label(keyset: list[KeyElem]) -> str:
    return ", ".join(e.spec_text() for e in keyset)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(prog: ir.Program) -> str:
    p = prog.parser
    lines = [f"digraph {_q(prog.name + ' parser')} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];',
]
    used = {n for st in p.states.values() for n in st.successors()}
    if "accept" in used:
        lines.append('  accept [shape=doublecircle, fillcolor="#d8f0d8"];')
    if "reject" in used:
        lines.append('  reject [shape=doublecircle, fillcolor="#f6d5d5"];')
    for name, st in p.states.items():
        label = name
        if st.extract:
            inst = prog.instances[st.extract]
            label += f"\\nextract {inst.name}" + (f" (stack {inst.stack})" if inst.is_stack else "")
        if st.verify:
            label += "\\nverify " + ", ".join(st.verify)
        shape = ', penwidth=2' if name == p.start else ""
        lines.append(f"  {_q(name)} [label={_q(label).replace(chr(92) * 2 + 'n', chr(92) + 'n')}{shape}];")
    for name, st in p.states.items():
        for case in st.cases:
            lines.append(f"  {_q(name)} -> {_q(case.next)} [label={_q(_keyset_label(case.keyset))}];")
        if st.select:
            lines.append(f'  {_q(name)} -> {_q(st.default)} [label="default", style=dashed];')
        else:
            lines.append(f"  {_q(name)} -> {_q(st.default)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(Exception):
    pass


def write_graph(prog: ir.Program, out: Path) -> None:
    """Write DOT, or SVG/PNG/PDF (by the file's suffix) through Graphviz's `dot`."""
    dot = to_dot(prog)
    fmt = out.suffix.lstrip(".").lower()
    if fmt in ("dot", "gv", ""):
        out.write_text(dot, encoding="utf-8")
        return
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(f"writing {fmt.upper()} needs Graphviz's 'dot' (apt-get install graphviz); "
                              f"use -o {out.with_suffix('.dot')} for DOT text")
    subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot.encode(), check=True)
