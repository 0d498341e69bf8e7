"""The spec features a program uses, by target-neutral name.

Targets publish which of these they support; `c3po build` refuses a program that uses one a target lacks,
and the conformance framework marks such vectors N/A. `docs/targets.md` holds the matrix.
"""

from __future__ import annotations

from . import ir

FEATURES: dict[str, str] = {
    "unaligned_fields": "fields that do not start or end on a byte boundary",
    "wide_fields": "fields or metadata wider than 64 bits",
    "varlen": "variable-length header tails (options)",
    "tlv": "TLV option parsing inside a variable-length tail",
    "optional_groups": "flag-dependent optional field groups (GRE)",
    "header_stack": "header stacks and bounded parser loops",
    "stack_varlen": "stacks of variable-length headers (each element sized by its own length field)",
    "lookahead": "lookahead() in parser selects",
    "parser_do": "parser-state statements (do: metadata assignments and if)",
    "select_mask": "value &&& mask cases in parser selects",
    "select_range": "lo .. hi cases in parser selects",
    "verify_checksum": "IPv4 header checksum verification in the parser",
    "match_exact": "tables with exact keys",
    "match_lpm": "tables with an lpm key",
    "match_ternary": "tables with ternary keys",
    "match_range": "tables with range keys",
    "const_entries": "constant table entries",
    "table_counters": "per-entry table counters",
    "counters": "indexed counters",
    "registers": "registers (stateful arrays)",
    "hash": "hash(crc16|crc32, ...)",
    "update_checksum_ipv4": "IPv4 header checksum update",
    "update_checksum_l4": "incremental L4 checksum update",
    "set_valid": "adding headers (encapsulation)",
    "set_invalid": "removing headers (decapsulation)",
    "reflect": "the reflect verdict",
    "forward": "the forward verdict",
}


def program_features(prog: ir.Program) -> set[str]:
    used: set[str] = set()
    for inst in prog.instances.values():
        ht = inst.type
        for f in ht.all_fields():
            if f.offset % 8 or f.width % 8:
                used.add("unaligned_fields")
            if f.width > 64:
                used.add("wide_fields")
        if ht.varlen:
            used.add("varlen")
            if ht.varlen.tlv and inst.walk_tlv:
                used.add("tlv")
        if ht.groups:
            used.add("optional_groups")
        if inst.is_stack:
            used.add("header_stack")
            if ht.varlen:
                used.add("stack_varlen")
    if any(w > 64 for w in prog.metadata.values()):
        used.add("wide_fields")
    for st in prog.parser.states.values():
        if st.verify:
            used.add("verify_checksum")
        if st.do:
            used.add("parser_do")
        for sel in st.select:
            if any(isinstance(e, ir.Lookahead) for e in ir.walk_expr(sel)):
                used.add("lookahead")
        for case in st.cases:
            for elem in case.keyset:
                if elem.kind == "mask":
                    used.add("select_mask")
                elif elem.kind == "range":
                    used.add("select_range")
    for t in prog.tables.values():
        for k in t.keys:
            used.add(f"match_{k.kind}")
        if t.entries:
            used.add("const_entries")
        if t.counters:
            used.add("table_counters")
    if prog.counters:
        used.add("counters")
    if prog.registers:
        used.add("registers")
    bodies = [prog.control, *(a.body for a in prog.actions.values() if not a.builtin)]
    for t in prog.tables.values():
        for name in [*t.actions, t.default.action]:
            if name in ("reflect", "forward"):
                used.add(name)
    for body in bodies:
        for s in ir.walk_stmts(body):
            if isinstance(s, ir.UpdateChecksum):
                kind = prog.instances[s.instance].type.checksum
                used.add("update_checksum_l4" if kind and kind.kind == "l4" else "update_checksum_ipv4")
            elif isinstance(s, ir.SetValid):
                used.add("set_valid" if s.valid else "set_invalid")
            elif isinstance(s, ir.SetVerdict) and s.verdict in (ir.Verdict.REFLECT, ir.Verdict.FORWARD):
                used.add(s.verdict.value)
            for e in ir.stmt_exprs(s):
                for sub in ir.walk_expr(e):
                    if isinstance(sub, ir.Hash):
                        used.add("hash")
                    if sub.width > 64:
                        used.add("wide_fields")
    return used
