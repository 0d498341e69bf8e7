"""The parse graph as a picture: DOT text, rendered to SVG/PNG by Graphviz when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import ir
from .expr import KeyElem


def _value(v: int) -> str:
    """Small numbers as people write them (protocol 6, version 4), larger ones in hex (ethertype 0x800)."""
    return str(v) if v < 256 else f"{v:#x}"


def _keyset_label(keyset: list[KeyElem]) -> str:
    parts = []
    for e in keyset:
        if e.kind == "any":
            parts.append("_")
        elif e.kind == "mask":
            parts.append(f"{_value(e.a)} &&& {_value(e.b)}")
        elif e.kind == "range":
            parts.append(f"{_value(e.a)}..{_value(e.b)}")
        else:
            parts.append(_value(e.a))
    return ", ".join(parts)


def _select_text(e: ir.Expr) -> str:
    if isinstance(e, ir.FieldRef):
        index = "" if e.index is None else f".{e.index}" if e.index == "last" else f"[{e.index}]"
        return f"{e.instance}{index}.{e.field_name}"
    if isinstance(e, ir.Lookahead):
        return f"lookahead({e.offset}, {e.bits})" if e.offset else f"lookahead({e.bits})"
    if isinstance(e, ir.Slice):
        return f"{_select_text(e.operand)}[{e.hi}:{e.lo}]"
    return "expr"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Past this many edges into `accept`, each state gets its own small accept mark, so a big graph does not
# collapse into a fan of long edges converging on one node.
_SHARED_ACCEPT_LIMIT = 8


def to_dot(prog: ir.Program) -> str:
    p = prog.parser
    lines = [f"digraph {_q(prog.name + ' parser')} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    into_accept = sum(n == "accept" for st in p.states.values() for n in st.successors())
    split_accept = into_accept > _SHARED_ACCEPT_LIMIT
    used = {n for st in p.states.values() for n in st.successors()}
    if "accept" in used and not split_accept:
        lines.append('  accept [shape=doublecircle, fillcolor="#d8f0d8"];')
    if "reject" in used:
        lines.append('  reject [shape=doublecircle, fillcolor="#f6d5d5"];')
    for name, st in p.states.items():
        label = [name]
        if st.extract:
            inst = prog.instances[st.extract]
            label.append(f"extract {inst.name}" + (f" (stack {inst.stack})" if inst.is_stack else ""))
        if st.verify:
            label.append("verify " + ", ".join(st.verify))
        if st.select:
            label.append("select " + ", ".join(_select_text(e) for e in st.select))
        bold = ", penwidth=2" if name == p.start else ""
        # DOT's own "\n" escape separates label lines; _q escapes everything else.
        text = _q("\x00".join(label)).replace("\x00", "\\n")
        lines.append(f"  {_q(name)} [label={text}{bold}];")
        if split_accept and "accept" in st.successors():
            lines.append(f'  {_q(name + "/accept")} [label="accept", shape=circle, fillcolor="#d8f0d8", '
                         'fontsize=9, width=0.3];')

    def dest(src: str, target: str) -> str:
        return _q(src + "/accept") if split_accept and target == "accept" else _q(target)

    for name, st in p.states.items():
        for case in st.cases:
            lines.append(f"  {_q(name)} -> {dest(name, case.next)} [label={_q(_keyset_label(case.keyset))}];")
        if st.select:
            lines.append(f'  {_q(name)} -> {dest(name, st.default)} [label="default", style=dashed];')
        else:
            lines.append(f"  {_q(name)} -> {dest(name, st.default)};")
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
