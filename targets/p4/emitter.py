"""From the IR to the plain, sorted view the P4 template renders, and the build-time refusals.

Everything is computed here; `templates/program.p4.j2` only prints lists of lines and names.
"""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir
from c3po_compiler.problems import Problem, error, warning
from c3po_compiler.text import comment_text, loc_text

from .control_gen import ControlGen, verdict_lines
from .layout import InstanceLayout, header_decls, struct_members
from .parser_gen import ParserGen

DEFAULT_CPU_PORT = 510
ZERO16 = "c3po_zero16"  # a 16-bit metadata field nothing writes: verify_checksum's comparand
# Names the generated program declares or that v1model.p4/core.p4 define: a spec name equal to one of them
# would shadow it in P4, so such programs are refused with a rename hint.
RESERVED = frozenset({
    "hdr", "meta", "standard_metadata", "pkt", "main", "start", "counter", "direct_counter", "meter",
    "direct_meter", "register", "hash", "random", "digest", "clone", "clone3", "resubmit", "resubmit_preserving_field_list",
    "recirculate", "recirculate_preserving_field_list", "clone_preserving_field_list", "truncate", "assert",
    "assume", "log_msg", "mark_to_drop", "verify", "verify_checksum", "update_checksum",
    "verify_checksum_with_payload", "update_checksum_with_payload", "action_profile", "action_selector",
    "V1Switch", "CounterType", "MeterType", "HashAlgorithm", "CloneType", "standard_metadata_t", "NoAction",
    "packet_in", "packet_out", "exact", "ternary", "lpm", "range", "optional", "selector", "accept", "reject",
    "error", "match_kind", "C3poParser", "C3poVerifyChecksum", "C3poIngress", "C3poEgress",
    "C3poComputeChecksum", "C3poDeparser", "c3po_headers_t", "c3po_metadata_t", "static_assert",
})


def _names(prog: ir.Program) -> list[tuple[str, str]]:
    out = [(n, "table") for n in prog.tables] + [(n, "action") for n in prog.user_actions]
    out += [(n, "counter") for n in prog.counters] + [(n, "register") for n in prog.registers]
    out += [(n, "parser state") for n in prog.parser.states if not (n == "start" == prog.parser.start)]
    for a in prog.user_actions.values():
        out += [(p.name, f"parameter of action {a.name}") for p in a.params]
    return out


def _uses_checksum(prog: ir.Program, name: str) -> bool:
    if any(name in st.verify for st in prog.parser.states.values()):
        return True
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    return any(isinstance(s, ir.UpdateChecksum) and s.instance == name for b in bodies for s in ir.walk_stmts(b))


def limits(prog: ir.Program, cpu_port: int) -> list[Problem]:
    """What v1model cannot express for this program, each with the reason and what to do instead."""
    problems: list[Problem] = []
    for name, kind in _names(prog):
        if name in RESERVED:
            problems.append(error(prog.loc, f"the {kind} name '{name}' is a name P4/v1model reserves",
                                  f"rename it, e.g. '{name}_'"))
    type_names = {ht.name + "_t" for ht in prog.header_types.values()}
    for name, kind in _names(prog):
        if name in type_names:
            problems.append(error(prog.loc, f"the {kind} name '{name}' collides with the P4 header type '{name}'",
                                  f"rename it, e.g. '{name}_'"))
    control_scope = [n for n, k in _names(prog) if k in ("table", "action", "counter", "register")]
    for name in sorted({n for n in control_scope if control_scope.count(n) > 1}):
        problems.append(error(prog.loc, f"'{name}' names two of tables, actions, counters and registers, which "
                              "share one scope in the P4 ingress control", f"rename one, e.g. '{name}_'"))
    for inst in prog.instances.values():
        ht = inst.type
        if inst.is_stack and ht.groups:
            problems.append(error(inst.loc, f"target 'p4' cannot make a stack of '{ht.name}', which has optional "
                                  "groups", "use separate instances"))
        if ht.checksum is not None and inst.is_stack and _uses_checksum(prog, inst.name):
            problems.append(error(inst.loc, f"target 'p4' cannot verify or update the checksum of the header stack "
                                  f"'{inst.name}'", "use a separate instance for the checksummed header"))
        if ht.checksum is not None:
            f = ht.field(ht.checksum.field)
            if f is not None and f.offset % 16:
                problems.append(error(ht.checksum.loc, f"target 'p4' needs the checksum field '{f.name}' on a 16-bit "
                                      "boundary of the header", "move the checksum field to a bit offset that is a multiple of 16"))
        if inst.tlv_parent is None and InstanceLayout(inst).tlv and inst.is_stack:
            problems.append(error(inst.loc, "target 'p4' cannot walk TLV options of a header stack",
                                  "declare the TLV header as a single instance, or build for xdp or nic"))
    if not 0 < cpu_port < 511:
        problems.append(error(prog.loc, f"CPU port {cpu_port} is not a v1model port (1..510; 511 drops)",
                              "choose a CPU port from 1 to 510"))
    return problems


def warnings(prog: ir.Program) -> list[Problem]:
    """What the build goes on with but the user should know (printed as build notes, not refusals)."""
    problems: list[Problem] = []
    for t in prog.tables.values():
        n = sum(1 for s in ir.walk_stmts(prog.control) if isinstance(s, ir.Apply) and s.table == t.name)
        if n > 1:
            problems.append(warning(t.loc, f"table '{t.name}' is applied from {n} places: target 'p4' makes {n} "
                                    f"P4 tables of it ('{t.name}', '{t.name}__2', ...), which the control plane "
                                    "fills identically"))
    return problems + deparse_order_problems(prog)


def deparse_order_problems(prog: ir.Program) -> list[Problem]:
    """A frame with a parser error must leave unchanged; BMv2 re-emits what was extracted in deparse order, which
    reproduces the input only if every parse path extracts instances in that order (and all are deparsed)."""
    order = {name: i for i, name in enumerate(prog.deparse)}
    problems: list[Problem] = []
    seen: set[tuple[str, int]] = set()
    todo = [(prog.parser.start, -1)]
    while todo:
        state, last = todo.pop()
        if (state, last) in seen or state not in prog.parser.states:
            continue
        seen.add((state, last))
        st = prog.parser.states[state]
        if st.extract is not None:
            idx = order.get(st.extract)
            if idx is None or idx < last:
                what = "is not in 'deparse'" if idx is None else "comes earlier in 'deparse' than a header before it"
                problems.append(warning(st.loc, f"'{st.extract}' {what}: on target 'p4' a frame with a parser error "
                                        "after this state does not leave unchanged", "list 'deparse' in parse order"))
                continue
            last = idx
        todo += [(nxt, last) for nxt in st.successors()]
    return problems


def field_list(fields: list[str], per_line: int = 4) -> list[str]:
    rows = [", ".join(fields[i:i + per_line]) for i in range(0, len(fields), per_line)]
    return ["    {"] + [f"        {r}," if i + 1 < len(rows) else f"        {r}" for i, r in enumerate(rows)] + ["    },"]


def verify_lines(prog: ir.Program) -> list[str]:
    out: list[str] = []
    for name in sorted({v for st in prog.parser.states.values() for v in st.verify}):
        inst = prog.instances[name]
        lay = InstanceLayout(inst)
        cs = inst.type.checksum
        assert cs is not None
        # The spec's test, verbatim: the one's-complement sum of the whole header, checksum included, is 0xffff,
        # i.e. csum16 (its complement) over it is 0. Comparing csum16 without the checksum field to the field
        # would refuse the checksum 0xffff where the other words sum to 0xffff (one's-complement -0 for +0).
        # BMv2 wants a field to compare with, not a constant: meta.c3po_zero16 is never written.
        out.append(f"/* verify: [{name}] (kind {cs.kind}): csum16 over the whole header, checksum included, must "
                   "be 0; a mismatch sets standard_metadata.checksum_error */")
        out.append(f"verify_checksum(meta.c3po_verify__{inst.ident} == 1w1,")
        out += field_list(lay.checksum_fields(with_checksum=True))
        out.append(f"    meta.{ZERO16}, HashAlgorithm.csum16);")
    return out


def compute_lines(prog: ir.Program, gen: ControlGen) -> list[str]:
    out: list[str] = []
    for name in gen.full:
        inst = prog.instances[name]
        lay = InstanceLayout(inst)
        cs = inst.type.checksum
        assert cs is not None
        out.append(f"/* update_checksum({name}): full recompute (kind {cs.kind}) */")
        out.append(f"update_checksum(meta.{gen.csum_flag(name, None)} == 1w1 && hdr.{inst.ident}.isValid(),")
        out += field_list(lay.checksum_fields())
        out.append(f"    hdr.{inst.ident}.{cs.field}, HashAlgorithm.csum16);")
    return out


def deparse_lines(prog: ir.Program) -> list[str]:
    out: list[str] = []
    for name in prog.deparse:
        lay = InstanceLayout(prog.instances[name])
        out += [f"pkt.emit({h});" for h in lay.emit_parts()]
    return out


def build_view(prog: ir.Program, cpu_port: int = DEFAULT_CPU_PORT) -> dict[str, Any]:
    pgen = ParserGen(prog)
    states = pgen.run()
    cgen = ControlGen(prog, cpu_port)
    ingress = cgen.ingress()
    meta = [(w, n) for n, w in sorted(prog.metadata.items(), key=lambda x: x[0])]
    verify = verify_lines(prog)
    return {
        "program": prog.name,
        "spec_file": comment_text(prog.loc.file),
        "files": [comment_text(f) for f in prog.files],
        "cpu_port": cpu_port,
        "header_types": header_decls(prog),
        "headers": struct_members(prog),
        "metadata": meta,
        "internal_metadata": cgen.metadata_fields() + ([(16, ZERO16)] if verify else []),
        "parser_locals": list(dict.fromkeys(pgen.locals)),
        "states": states,
        "verify": verify,
        "counters": [(c.name, c.size, loc_text(c.loc)) for c in
                     sorted(prog.counters.values(), key=lambda c: c.name)],
        "registers": [(r.name, r.width, r.size, loc_text(r.loc)) for r in
                      sorted(prog.registers.values(), key=lambda r: r.name)],
        "actions": cgen.p4_actions(),
        "tables": cgen.tables(),
        "control_locals": [*cgen.temps.decls, *list(dict.fromkeys(cgen.locals)), *cgen.l4_locals()],
        "ingress": ingress,
        "compute": compute_lines(prog, cgen),
        "deparse": deparse_lines(prog),
        "verdict_lines": verdict_lines(cpu_port),
    }
