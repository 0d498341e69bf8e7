"""Rendering: the program view through the Jinja templates, plus the hand-written runtime header."""

from __future__ import annotations

from pathlib import Path

import jinja2

from c3po_compiler import ir

from .emitter import ERR_CODES, program_view

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "runtime" / "c3po_nic.h"

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def render_program(prog: ir.Program) -> dict[str, str]:
    v = program_view(prog)
    start_id = list(prog.parser.states).index(prog.parser.start) + 2 if prog.parser.start in prog.parser.states else 0
    ctx = {"v": v, "start_id": start_id, "reject_code": ERR_CODES["reject"]}
    return {
        f"{prog.name}.h": _ENV.get_template("program.h.j2").render(**ctx),
        f"{prog.name}.c": _ENV.get_template("program.c.j2").render(**ctx),
        "c3po_nic.h": RUNTIME.read_text(encoding="utf-8"),
    }
