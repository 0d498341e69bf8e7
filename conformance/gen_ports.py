"""Generated port vectors (issue 16, "ports"): every other generated vector arrives on port 1 and forwards to a
small port every target wires. These arrive elsewhere and leave for ports nothing is mapped to.

- ingress: the first accepted packet of the program again, arriving on port 0, 2, 255, 256, 511 and 65535 (the
  spec's 16-bit `std.ingress_port`: its extremes and the edges of the targets' port tables: XDP's devmap holds
  0..255 in the driver, v1model ports are 9 bits). On xdp every port but 1 comes in through the production
  ifindex -> port map (targets/xdp/driver.py); on p4 a port without a veth is N/A.
- egress_unmapped: an entry whose action forwards to a parameter, set to 16, 256, 509, 510 and 65535 (a port
  computed from parameters, `forward(field - first_lport + first_port)`, gets the arguments that make it come
  out there for the table's first packet: a parameter it follows one for one, moved by the difference): ports
  without a mapping on some target (p4 starts with 0..15 and the CPU port 510 wired; xdp's devmap 0..255). The
  reference says forward to that port (the program's decision); a target whose port layer has no mapping must
  drop the frame there rather than send it elsewhere (a truncated port): xdp returns XDP_DROP, reported as
  forward to the port with `dropped` in the result's observations; the p4 driver wires a port below 510 when
  BMv2 first sends to it and compares the frame's bytes; the nic program reports the port, all 16 bits, and
  leaves the mapping to its host. v1model cannot address 510 and up (targets/p4/known_deviations.yaml).

Items are `ingress:<port>` and `egress_unmapped:<table>.<action>:<port>`, reported under CLASS.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.expr import Expr, ParamRef, children

from .gen_control import entry_for, param_value
from .gen_coverage import ClassCoverage
from .model import ControlState, EntryState

__all__ = ["CLASS", "EGRESS_PORTS", "INGRESS_PORTS", "port_vectors"]

CLASS = "ports"
INGRESS_PORTS = (0, 2, 255, 256, 511, 65535)
EGRESS_PORTS = (16, 256, 509, 510, 65535)


def forward_params(action: ir.Action) -> list[str]:
    """The parameters `forward(param)` sends to, directly."""
    return [s.port.name for s in ir.walk_stmts(action.body)
            if isinstance(s, ir.SetVerdict) and s.verdict == ir.Verdict.FORWARD and isinstance(s.port, ParamRef)]


def computed_port_params(action: ir.Action) -> list[str]:
    """The parameters inside a computed `forward(expr)` port (e.g. `field - first_lport + first_port`), in order."""
    out: list[str] = []
    for s in ir.walk_stmts(action.body):
        if isinstance(s, ir.SetVerdict) and s.verdict == ir.Verdict.FORWARD and s.port is not None \
                and not isinstance(s.port, ParamRef):
            stack: list[Expr] = [s.port]
            while stack:
                e = stack.pop()
                if isinstance(e, ParamRef) and e.name not in out:
                    out.append(e.name)
                stack.extend(reversed(children(e)))
    return out


def _with_entry(control: ControlState, entry: EntryState) -> ControlState:
    """The state with `entry` as its table's only entry."""
    return ControlState((*(x for x in control.entries if x.table != entry.table), entry), control.defaults)


def _solve_port(ctx: Any, action: ir.Action, names: list[str], base: tuple[int, ...], port: int,
                where: tuple[ControlState, EntryState], packet: tuple[bytes, int, Any]) -> tuple[int, ...] | None:
    """Arguments that make a computed port come out at `port` for the packet: a parameter the port follows with
    slope +-1 (two oracle runs tell), moved by the difference. Bounded: three runs per parameter."""
    control, entry = where

    def run(args: tuple[int, ...]) -> Any:
        return ctx.run_with(_with_entry(control, replace(entry, args=args)), *packet)

    for name in names:
        i = next(k for k, p in enumerate(action.params) if p.name == name)
        mask = (1 << action.params[i].width) - 1
        r0, r1 = run(base), run((*base[:i], (base[i] + 1) & mask, *base[i + 1:]))
        if r0.verdict != "forward" or r1.verdict != "forward" or r0.port is None or r1.port is None:
            continue
        slope = (r1.port - r0.port) & 0xFFFF
        if slope not in (1, 0xFFFF):
            continue
        delta = (port - r0.port) if slope == 1 else (r0.port - port)
        args = (*base[:i], (base[i] + delta) & mask, *base[i + 1:])
        r = run(args)
        if r.verdict == "forward" and r.port == port:
            return args
    return None


def port_vectors(ctx: Any) -> None:
    """Called from generate() with its ClassContext: adds the vectors and the coverage part CLASS."""
    prog: ir.Program = ctx.prog
    part = ctx.classes.setdefault(CLASS, ClassCoverage())
    items = [f"ingress:{p}" for p in INGRESS_PORTS]
    part.all += items
    if not ctx.accepted:
        for item in items:
            part.infeasible[item] = "no parse path is accepted"
    else:
        pid, _path, _recs, data, _starts = ctx.accepted[0]
        for p in INGRESS_PORTS:
            ctx.emit(f"port.in{p}", pid, ControlState(), data, ["ports", "ingress"], p)
            part.covered.add(f"ingress:{p}")
    for tname, t in prog.tables.items():
        for aname in t.actions:
            action = prog.actions[aname]
            params = forward_params(action)
            computed = computed_port_params(action)
            if not params and not computed:
                continue
            first = ctx.first_apply.get(tname)
            for port in EGRESS_PORTS:
                item = f"egress_unmapped:{tname}.{aname}:{port}"
                part.all.append(item)
                if first is None:
                    part.infeasible[item] = "no generated packet reaches the table"
                    continue
                fpid, fdata, fport, control, regs, keyvals = first
                e = entry_for(t, keyvals, aname, prog)

                prio = e.priority if t.uses_priority else 0
                if params:
                    args = tuple(port & ((1 << p.width) - 1) if p.name in params else param_value(aname, p)
                                 for p in action.params)
                    if any(port >> p.width for p in action.params if p.name in params):
                        part.infeasible[item] = f"the port parameter is narrower than {port.bit_length()} bits"
                        continue
                else:  # a computed port: solve for the arguments that send the first packet there
                    base = tuple(param_value(aname, p) for p in action.params)
                    solved = _solve_port(ctx, action, computed, base, port, (control, EntryState(
                        tname, e.match, aname, base, prio)), (fdata, fport, regs))
                    if solved is None:
                        part.infeasible[item] = "no argument value sends the first packet there (the computed port follows none one for one, or not that far)"
                        continue
                    args = solved
                state = _with_entry(control, EntryState(tname, e.match, aname, args, prio))
                r = ctx.emit(f"port.out.{tname}.{aname}.{port}", fpid, state, fdata, ["ports", "egress_unmapped"],
                             fport, regs)
                if r.verdict == "forward" and r.port == port:
                    part.covered.add(item)
                else:
                    part.infeasible[item] = (f"the packet's verdict is {r.verdict}"
                                             f"{'' if r.port is None else f' to port {r.port}'} (a later statement)")
