"""The sorted, plain dictionaries the XDP templates render (tables, counters, registers, parser, control)."""

from __future__ import annotations

from typing import Any

from c3po_compiler import ir
from c3po_compiler.text import comment_text

from . import crc
from . import layout as L
from .cexpr import ctype, hash_slot
from .coverage import COVER_WORDS, cover_returns
from .ctext import SNAPSHOT, entry_name, unlikely_errors
from .emitter import (
    LINEAR_CHUNK,
    LINEAR_INLINE_MAX,
    XDP_FOR_VERDICT,
    Emitter,
    hit_constant,
    linear_search,
    where,
)
from .tailcall import Split, plan

MAP_TYPES = {"hash": "BPF_MAP_TYPE_HASH", "lpm": "BPF_MAP_TYPE_LPM_TRIE", "linear": "BPF_MAP_TYPE_ARRAY",
             "direct": "BPF_MAP_TYPE_ARRAY"}  # a direct table with counters: PERCPU_ARRAY (layout.percpu)
KEY_CTYPES = {1: "__u8", 2: "__be16", 4: "__be32", 8: "__be64"}


def key_members(lay: L.TableLayout) -> list[str]:
    out = ["__u32 prefixlen; /* 8 * (sizeof key - 4) for lookups */"] if lay.kind == "lpm" else []
    end = 4 if lay.kind == "lpm" else 0
    for kf in lay.keys:
        if kf.size == 16:
            decl = f"__be64 k{kf.index}[2];"
        elif kf.size in KEY_CTYPES:
            decl = f"{KEY_CTYPES[kf.size]} k{kf.index};"
        else:  # 3, 5, 6 or 7 bytes (hash keys take exactly their bytes)
            decl = f"__u8 k{kf.index}[{kf.size}];"
        out.append(f"{decl} /* {kf.text}: {kf.kind}, bit<{kf.width}>, big-endian at byte {kf.offset} */")
        end = max(end, kf.offset + kf.size)
    if lay.key_size > end:
        out.append(f"__u8 pad[{lay.key_size - end}]; /* zero: the key is a whole number of 32-bit words */")
    return out


def match_cond(lay: L.TableLayout) -> str:
    conds = []
    for kf in lay.keys:
        for w in range(kf.offset, kf.offset + kf.size):
            if kf.kind == "range":
                conds.append(f"(c->k[{w}] >= e->a[{w}] && c->k[{w}] <= e->b[{w}])")
            else:
                conds.append(f"(c->k[{w}] & e->b[{w}]) == e->a[{w}]")
    return " &&\n\t    ".join(conds) or "1"


def table_doc(t: ir.Table, lay: L.TableLayout) -> str:
    keys = ", ".join(f"{k.text} {k.kind}" for k in t.keys) or "no keys"
    how = {"hash": "hash map", "lpm": "LPM trie (exact keys first)", "direct": "array indexed by the key",
           "linear": "priority-ordered array, linear search"}[lay.kind]
    if lay.percpu:
        how = "per-CPU array indexed by the key, the action data and the entry's counter in one element"
    if lay.cuckoo_buckets:
        how = (f"cuckoo hash ({lay.cuckoo_buckets:,} buckets of {lay.cuckoo_ways}, two multiply-shift hashes), entries recorded in "
               "a hash map")
    if lay.bitvec:
        how = (f"bit-vector classifier ({len(lay.bitvec.parts)} tables of match bits, {lay.bitvec.image_bytes:,} bytes "
               f"per image, two images {lay.bitvec.stride:,} bytes apart), entries recorded in a priority-ordered array")
    if lay.trie_nodes:
        how = (f"multibit trie ({L.TRIE_ROOT_BITS}-bit root, {L.TRIE_STRIDE} bits per level, {lay.trie_nodes:,} "
               f"nodes{', the action data in the leaves' if lay.leaf else ''}), entries recorded in an LPM trie map")
    return f"{keys}; {how}; size {t.size}"


def build_view(prog: ir.Program) -> dict[str, Any]:
    em = Emitter(prog)
    parser, control = em.emit()
    snapshot = em.dp.l4_snapshot() + em.dp.csum_snapshot()
    control = [x for line in control for x in (["\t" * em.tree + y for y in snapshot] if line == SNAPSHOT
                                                else [line])]
    tables = []
    default_offset = 0
    for name, lay in em.layouts.items():
        t = prog.tables[name]
        tables.append({
            "default_offset": default_offset, "default_id": lay.action_ids[t.default.action],
            "default_args": em.default_args(t, lay),
            "name": name, "where": where(prog, t.loc), "doc": table_doc(t, lay), "kind": lay.kind,
            "map_type": MAP_TYPES[lay.kind], "size": (1 << t.keys[0].width) if lay.kind == "direct" else t.size, "slots": lay.slots, "words": max(lay.key_size, 1),
            "word_type": "__u32" if lay.word_bytes == 4 else "__u64",
            "key_members": key_members(lay), "match_cond": match_cond(lay), "counters": t.counters,
            "percpu": lay.percpu, "default_elem": lay.default_elem,
            "direct_global": lay.direct_global, "cuckoo_global": lay.cuckoo_global,
            "hit_id": lay.action_ids[t.actions[0]] if hit_constant(prog, t, lay) else 0,
            "default": t.default.action, "counter_size": t.size,
            "trie_elements": L.trie_slots(lay.trie_nodes) // 2 if lay.trie_nodes else 0,  # two u32 slots each
            "trie_map": L.trie_map(lay),
            "trie_leaf": lay.leaf.describe() if lay.leaf else "",
            "cuckoo_buckets": lay.cuckoo_buckets, "cuckoo_ways": lay.cuckoo_ways, "key_words": L.key_words(t),
            "cuckoo_narrow": L.cuckoo_narrow(t),
            "search": ("bitvec" if lay.bitvec else linear_search(t, lay)) if lay.kind == "linear" else "",
            "bitvec": lay.bitvec and [(f"k{p.key}_{p.byte}" if p.byte >= 0 else f"k{p.key}_range", p.words,
                                        t.keys[p.key].text + (f", byte {p.byte}" if p.byte >= 0 else ", range"))
                                       for p in lay.bitvec.parts],
            "bitvec_masks": len(lay.mask_actions),
            "bitvec_pad": lay.bitvec.stride - lay.bitvec.image_bytes if lay.bitvec else 0,
            "bitvec_masks_doc": ", ".join(f"{i} {n}" for n, i in lay.mask_actions),
        })
        default_offset += lay.value_size
    registers = []
    for name, r in sorted(prog.registers.items()):
        wide = r.width > 64
        registers.append({
            "name": name, "where": where(prog, r.loc), "size": r.size, "width": r.width, "ctype": ctype(r.width),
            "value_type": "struct c3po_wide" if wide else "__u64",
            "load": "C3PO_U128(v->hi, v->lo)" if wide else "*v",
            "store": ("v->hi = (__u64)(val >> 64); v->lo = (__u64)val;" if wide else "*v = val;"),
            "object": em.objects[("register", name)],
        })
    errors = []
    for kind in sorted(em.perr_used):
        verdict = prog.parser.on_error.get(kind, prog.parser.on_error.get("default", "drop"))
        errors.append({"kind": kind, "action": XDP_FOR_VERDICT[verdict]})
    # each copy's ways out, counted in the observing build (coverage.py); error exits hinted cold (ctext.py)
    control = unlikely_errors(cover_returns(control))
    for node in parser:
        node.lines = unlikely_errors(cover_returns(node.lines))
    split = plan(em, parser, control)
    code = "\n".join([*control, *(x for n in parser for x in n.lines), *(x for w in em.walkers.values()
                                                                          for x in w.function(prog))])
    return {
        "crc_pairs": [crc.c_text(a) for a in sorted(crc.ALGORITHMS) if f"c3po_{a}_pairs" in code],
        "cover_words": COVER_WORDS,
        "name": prog.name,
        "relayout": em.relayout,
        "valid_bits": bool(em.valid_bits),
        "uses_state": em.uses_state,
        "track_fresh": em.relayout and em.track_fresh,
        "scratch_hdr": max(8, sum((n + 7) // 8 * 8 for _, n in em.set_valid_slots.values())),
        "scratch_out": (em.dp.out_max() + 7) // 8 * 8,
        "sources": ", ".join(map(comment_text, prog.files)) if prog.files else prog.name,
        "tables": tables,
        "trie_copies": trie_copies(em.layouts),
        "counters": [{"name": n, "size": c.size, "where": where(prog, c.loc)} for n, c in sorted(prog.counters.items())],
        "registers": registers,
        "header_ptrs": em.header_ptrs(),
        "varlen_vars": em.varlen_vars(),
        "group_ptrs": em.group_ptrs(),
        "tlv_walkers": ["\n".join(w.function(prog)) for w in {id(w): w for w in em.walkers.values()}.values()],
        "metadata": [{"name": n, "width": w, "ctype": ctype(w)} for n, w in sorted(prog.metadata.items())],
        "csum_flags": [f for f, _ in em.csum_flags] + [f for f, _, _ in em.l4_requests],
        "hash_buffers": [] if em.hash_in_map else [{"name": n, "size": s, "slot": hash_slot(s)}
                                                  for n, s in em.hash_buffers],
        "hash_in_map": em.hash_in_map,
        "scratch_hb": sum(hash_slot(s) for _, s in em.hash_buffers) if em.hash_in_map else 0,
        "default_verdict": prog.default_verdict.upper(),
        "parser_start": parser[0].label if parser else "parsed",
        "parser": [{"label": n.label, "comment": n.comment, "lines": n.lines} for n in parser],
        "control": control,
        "parser_errors": errors,
        "layouts": em.layouts,
        "split": split,
        "linear_inline_max": LINEAR_INLINE_MAX, "linear_chunk": LINEAR_CHUNK, "tx_ports": L.TX_PORTS,
        "programs": program_views(prog, parser, errors, split, em.tree),
    }


def trie_copies(layouts: dict[str, L.TableLayout]) -> list[dict[str, Any]]:
    """The members of the global `c3po_tries` (layout.trie_copies: the order the control plane maps them in)."""
    out = []
    for name, (first, slots) in L.trie_copies(layouts).items():
        nodes = (slots - L.trie_slots(0)) >> L.TRIE_STRIDE
        lay = layouts[name]
        of = f"the first {nodes:,} of its {lay.trie_nodes:,} nodes" if L.trie_map(lay) else f"all {nodes:,} nodes"
        out.append({"name": name, "slots": slots,
                    "doc": f"table {name}: the root and {of}; bytes {4 * first:,}..{4 * (first + slots) - 1:,}"})
    return out


def program_views(prog: ir.Program, parser: list[Any], errors: list[dict[str, str]],
                  split: Split | None, tree: bool = False) -> list[dict[str, Any]]:
    """The SEC("xdp") functions of the object: one, or the entry program and the ones it tail-calls."""
    def node_views(nodes: list[Any]) -> list[dict[str, Any]]:
        return [{"label": n.label, "comment": n.comment, "lines": n.lines} for n in nodes]

    if split is None:
        return [{"fn": entry_name(prog.name), "index": 0, "nodes": node_views(parser), "resumes": [], "exits": [],
                 "runs_control": True, "tree": tree, "errors": errors}]
    action = {e["kind"]: e["action"] for e in errors}
    return [{"fn": p.fn, "index": p.index, "nodes": node_views(p.nodes), "resumes": p.resumes, "exits": p.exits,
             "runs_control": p.runs_control, "tree": False, "errors": [{"kind": k, "action": action[k]} for k in p.errors],
             "first": p.nodes[0].label, "last": p.nodes[-1].label, "stack": p.stack}
            for p in split.programs]
