"""Generated egress-port widths per path (issue 16, third round's survivors): an action parameter that `forward`
sends to, at its full declared width, on every parse path the action is reached on.

`full_width` keeps port parameters at a port every target maps, and `ports` (gen_ports.py) sends the unmapped
ports from the first packet that reaches the table only; the xdp target copies the control per parse path, so the
IPv6 copy of the router's `port & 0xffff` was never run with a port of 32,768 or more. For each table, action and
parameter forwarded to, and each parse path on which a generated vector hits the table with that action (at most
MAX_PATHS), the same vector with the parameter set to:

- `top`: its top bit and bit 0 (`0x8001` for 16 bits): a target that cuts the top bit forwards to port 1, which
  every target maps, where the reference forwards to an unmapped port;
- `all_ones`: every bit (`0xffff`): a target that reports the port (nic) shows any bit cut.

Items are `<table>.<action>.<param>:<value>@<path>` (the path's parse states joined by `>`), reported under
CLASS; covered when the oracle forwards the packet to exactly that port. Expected results come from the oracle.
Tags: `port_width` and the value's name.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir

from .gen_coverage import ClassCoverage
from .gen_fullwidth import path_bases
from .gen_ports import forward_params
from .model import ControlState

__all__ = ["CLASS", "MAX_PATHS", "port_width_vectors"]

CLASS = "port_width"
MAX_PATHS = 8


def _values(width: int) -> dict[str, int]:
    return {"top": (1 << (width - 1)) | 1, "all_ones": (1 << width) - 1}


def port_width_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    for tname, t in prog.tables.items():
        for aname in t.actions:
            action = prog.actions.get(aname)
            if action is None or not forward_params(action):
                continue
            names = forward_params(action)
            bases = path_bases(list(ctx.vectors), tname, aname, MAX_PATHS)  # gen_fullwidth.py
            for pname in dict.fromkeys(names):
                param = next(p for p in action.params if p.name == pname)
                for label, value in _values(param.width).items():
                    if not bases:
                        item = f"{tname}.{aname}.{pname}:{label}"
                        part.all.append(item)
                        part.infeasible[item] = "no generated vector hits an entry of the table with this action"
                        continue
                    for path, base in bases.items():
                        _one(ctx, part, base, tname, aname, pname, label, value, ">".join(path))


def _one(ctx: Any, part: ClassCoverage, base: Any, tname: str, aname: str, pname: str, label: str, value: int,
         where: str) -> None:
    item = f"{tname}.{aname}.{pname}:{label}@{where}"
    part.all.append(item)
    action = ctx.prog.actions[aname]
    entries = []
    for e in base.control.entries:
        if e.table == tname and e.action == aname:
            e = type(e)(e.table, e.match, e.action,
                        tuple(value if p.name == pname else a for p, a in zip(action.params, e.args, strict=True)),
                        e.priority)
        entries.append(e)
    p = base.packets[0]
    r = ctx.emit(f"portw.{tname}.{aname}.{pname}.{label}.{where}", int(base.provenance.get("path", 0)),
                 ControlState(tuple(entries), base.control.defaults), p.data, ["port_width", label], p.port, {})
    if r.verdict == "forward" and r.port == value:
        part.covered.add(item)
    else:
        part.infeasible[item] = (f"the packet's verdict is {r.verdict}"
                                 f"{'' if r.port is None else f' to port {r.port}'} (a later statement decides)")
