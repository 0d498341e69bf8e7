"""What the generated README says: how to load the object and how each table's maps are laid out, with
`bpftool map update` lines for the spec's constant entries (a BPF object cannot pre-fill hash maps)."""

from __future__ import annotations

import shlex
from typing import Any

from c3po_compiler import ir

from . import layout as L
from .ctext import entry_name


def hexbytes(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


def entry_key(lay: L.TableLayout, match: list[ir.KeyElem] | tuple[ir.KeyElem, ...]) -> bytes:
    """Key bytes of a hash/LPM entry (the driver installs the same bytes)."""
    if lay.kind == "direct":
        return (match[0].a & 0xFFFFFFFF).to_bytes(4, "little")
    key = bytearray(lay.key_size)
    prefix = None
    for kf in lay.keys:
        m = match[kf.index]
        if m.kind == "prefix":
            prefix = m.b
        elif m.kind == "any":
            prefix = 0
        key[kf.offset:kf.offset + kf.size] = L.encode_be(m.a if m.kind != "any" else 0, kf.size)
    if lay.kind == "lpm":
        key[0:4] = L.lpm_prefix_bits(lay, prefix or 0).to_bytes(4, "little")
        lk = lay.keys[-1]
        bits = L.lpm_prefix_bits(lay, prefix or 0) - 8 * (lk.offset - 4)  # mask host bits beyond the prefix
        val = int.from_bytes(key[lk.offset:lk.offset + lk.size], "big")
        keep = 8 * lk.size
        val &= ((1 << keep) - 1) ^ ((1 << (keep - bits)) - 1) if bits < keep else (1 << keep) - 1
        key[lk.offset:lk.offset + lk.size] = val.to_bytes(lk.size, "big")
    return bytes(key)


def linear_entry(lay: L.TableLayout, match: list[ir.KeyElem] | tuple[ir.KeyElem, ...], value: bytes) -> bytes:
    """One array element of a linear table: a[] words, b[] words, then the value."""
    words = max(lay.key_size, 1)
    a, b = [0] * words, [0] * words
    full64 = (1 << 64) - 1
    for kf in lay.keys:
        m = match[kf.index]
        w = kf.width
        full = (1 << w) - 1
        if m.kind in ("value", "prefix", "mask"):
            if m.kind == "value":
                v, mk = m.a, full
            elif m.kind == "prefix":
                v, mk = m.a, (full ^ ((1 << (w - m.b)) - 1)) if m.b else 0
            else:
                v, mk = m.a, m.b
            v &= mk & full
            if kf.size == 2:
                a[kf.offset], a[kf.offset + 1] = v >> 64, v & full64
                b[kf.offset], b[kf.offset + 1] = (mk & full) >> 64, mk & full64
            else:
                a[kf.offset], b[kf.offset] = v, mk & full
        elif m.kind == "range":
            a[kf.offset], b[kf.offset] = m.a, m.b
        else:  # any
            if kf.kind == "range":
                a[kf.offset], b[kf.offset] = 0, full
            # ternary/lpm any: value 0, mask 0
    keys = b"".join(x.to_bytes(lay.word_bytes, "little") for x in a + b)
    return keys.ljust(lay.entry_size - len(value), b"\0") + value


def readme_view(prog: ir.Program, view: dict[str, Any]) -> dict[str, Any]:
    tables = []
    for name, lay in view["layouts"].items():
        t = prog.tables[name]
        cmds = []
        for i, e in enumerate(t.entries):
            value = L.encode_value(lay, e.action.action, e.action.args, i, e.match)
            if lay.kind == "linear" or lay.trie_nodes:
                continue
            if lay.percpu:  # the value and a zero counter (bpftool copies it into every CPU's copy)
                value += bytes(L.COUNTER_BYTES)
            cmds.append(f"bpftool map update name t_{name[:13]} key hex {hexbytes(entry_key(lay, e.match))} "
                        f"value hex {hexbytes(value)}")
        keys = [{"text": k.text, "kind": k.kind, "width": k.width, "offset": k.offset, "size": k.size}
                for k in lay.keys]
        tables.append({
            "name": name, "kind": lay.kind, "key_fields": keys, "key_size": lay.key_size, "value_size": lay.value_size,
            "word_bytes": lay.word_bytes, "entry_size": lay.entry_size,
            "actions": [{"name": a, "id": i, "params": lay.arg_slots[a], "raw": lay.raw.get(a, ())}
                        for a, i in lay.action_ids.items()],
            "percpu": lay.percpu, "default_elem": lay.default_elem if lay.percpu else 0,
            "commands": cmds, "const_linear": bool(t.entries) and lay.kind == "linear", "counters": t.counters,
            "trie_nodes": lay.trie_nodes, "const_trie": bool(t.entries) and lay.trie_nodes > 0,
            "trie_every": not L.trie_map(lay),
            "trie_leaf": lay.leaf.describe() if lay.leaf else "",
            "size": t.size, "default": t.default.action,
            "default_offset": next(v["default_offset"] for v in view["tables"] if v["name"] == name),
        })
    return {"name": prog.name, "entry": entry_name(prog.name), "tables": tables, "sources": view["sources"],
            "examples": example_commands(prog),
            "counters": view["counters"], "registers": view["registers"], "split": view["split"], "tx_ports": L.TX_PORTS}


def _sample(width: int, kind: str) -> str:
    """A plausible value for a key or parameter of this width, in the syntax people write."""
    if width == 48:
        return "02:00:00:00:00:01"
    if width == 32:
        return "10.0.0.0/8" if kind == "lpm" else "10.0.0.1"
    if width == 128:
        return "2001:db8::/32" if kind == "lpm" else "2001:db8::1"
    if kind == "ternary":
        return f"1&&&{(1 << width) - 1:#x}"
    if kind == "range":
        return f"1..{min((1 << width) - 1, 1023)}"
    return "1"


def example_commands(prog: ir.Program) -> list[str]:
    """One `c3po table ... add` per table (its first action that takes parameters, else its first), and the
    counter and register commands: what a user runs instead of writing map bytes."""
    out = []
    for name, t in prog.tables.items():
        keys = [f"{k.text}={_sample(k.width, k.kind)}" for k in t.keys]
        action = next((a for a in t.actions if prog.actions[a].params), t.actions[0] if t.actions else "nop")
        params = [f"{p.name}={_sample(p.width, 'exact')}" for p in prog.actions[action].params]
        prio = " --priority 10" if t.uses_priority else ""
        out.append(" ".join([f"c3po table {prog.name} {name} add", *map(shlex.quote, keys), action,
                             *map(shlex.quote, params)]) + prio)
    for name in prog.counters:
        out.append(f"c3po counter {prog.name} {name} read")
    for name in prog.registers:
        out.append(f"c3po register {prog.name} {name} read 0")
    return out
