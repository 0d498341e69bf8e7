"""How each spec header instance is laid out in P4 headers.

P4 has no "fixed part + optional groups + variable tail" header, so an instance becomes several P4 headers that
are extracted and emitted back to back: the fixed part `hdr.<i>`, one header per optional group
`hdr.<i>__<group>`, and the tail: a `varbit` header `hdr.<i>__<tail>`, or for TLV areas a stack of
header_unions `hdr.<i>__<tail>__tlv` (one element per option walked) plus `hdr.<i>__<tail>__pad` for the padding
after an end-of-options singleton. TLV option values are copied into shadow headers `hdr.<i>__<option>` that are
never emitted. `__` never occurs in spec identifiers, so these names cannot collide with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from c3po_compiler import ir
from c3po_compiler.text import loc_text


def tlv_field(name: str) -> str:
    """TLV option-header fields are named by the front end (`type`, `length`), and `type` is a P4 keyword."""
    return f"c3po_{name}"


def type_name(ht: ir.HeaderType) -> str:
    return ht.name.replace(".", "__") + "_t"


@dataclass(frozen=True)
class InstanceLayout:
    inst: ir.Instance

    @property
    def ident(self) -> str:
        return self.inst.ident

    @property
    def ht(self) -> ir.HeaderType:
        return self.inst.type

    @property
    def tlv(self) -> ir.Tlv | None:
        vl = self.ht.varlen
        # The area is walked only when the program reads one of its options (spec section 2, `walk_tlv`);
        # otherwise it is opaque bytes, a plain varbit tail.
        return vl.tlv if vl and self.inst.walk_tlv else None

    def group(self, g: ir.OptionalGroup) -> str:
        return f"hdr.{self.ident}__{g.name}"

    @property
    def varlen(self) -> str:
        assert self.ht.varlen is not None
        return f"hdr.{self.ident}__{self.ht.varlen.name}"

    @property
    def tlv_stack(self) -> str:
        return f"{self.varlen}__tlv"

    @property
    def tlv_pad(self) -> str:
        return f"{self.varlen}__pad"

    def tlv_elements(self) -> list[tuple[str, list[str]]]:
        """Per stack element and union member: the header and its fields (for checksums and emission)."""
        tlv = self.tlv
        assert tlv is not None
        out: list[tuple[str, list[str]]] = []
        for i in range(tlv.max_options):
            if tlv.singletons:
                out.append((f"{self.tlv_stack}[{i}].single", [tlv_field(tlv.header[0].name)]))
            out.append((f"{self.tlv_stack}[{i}].opt", [*(tlv_field(f.name) for f in tlv.header), "data"]))
        return out

    def emit_parts(self) -> list[str]:
        """The P4 headers of this instance in wire order: what the deparser emits. A stack with tails is emitted
        element by element, each element's fixed part then its tail (the two P4 stacks advance together)."""
        if self.inst.is_stack and self.ht.varlen:
            return [h for i in range(self.inst.stack) for h in (f"hdr.{self.ident}[{i}]", f"{self.varlen}[{i}]")]
        parts = [f"hdr.{self.ident}"]
        parts += [self.group(g) for g in self.ht.groups]
        if self.ht.varlen:
            if self.tlv:
                parts.append(self.tlv_stack)  # emits every walked option in order (the valid union member)
                parts.append(self.tlv_pad)
            else:
                parts.append(self.varlen)
        return parts

    def all_headers(self, prog: ir.Program) -> list[str]:
        """Every P4 header that holds part of this instance (emitted or shadow), for set_invalid."""
        parts = [p for p in self.emit_parts() if p != self.tlv_stack] if self.tlv else self.emit_parts()
        if self.tlv:
            parts += [h for h, _ in self.tlv_elements()]
            parts += [f"hdr.{o.replace('.', '__')}" for o in self.option_instances(prog)]
        return parts

    def option_instances(self, prog: ir.Program | None = None) -> list[str]:
        """Option instances (the front end may create only those the program refers to)."""
        tlv = self.tlv
        names = [f"{self.inst.name}.{o.name}" for o in tlv.options] if tlv else []
        return [n for n in names if prog is None or n in prog.instances]

    def checksum_fields(self, *, with_checksum: bool = False) -> list[str]:
        """The whole header in wire order, the checksum field left out unless `with_checksum` (it sits on a
        16-bit boundary, checked by `limits`, so leaving it out leaves the other words in place)."""
        cs = self.ht.checksum
        assert cs is not None
        out = [f"hdr.{self.ident}.{f.name}" for f in self.ht.fields if with_checksum or f.name != cs.field]
        for g in self.ht.groups:
            out += [f"{self.group(g)}.{f.name}" for f in g.fields]
        if self.ht.varlen:
            if self.tlv:
                out += [f"{h}.{f}" for h, fields in self.tlv_elements() for f in fields]
                out.append(f"{self.tlv_pad}.data")
            else:
                out.append(f"{self.varlen}.data")
        return out


def header_decls(prog: ir.Program) -> list[dict[str, object]]:
    """Header and header_union type declarations, once per spec header type, sorted by name."""
    decls: dict[str, dict[str, object]] = {}

    def add(name: str, fields: list[tuple[str, str]], doc: str, kind: str = "header") -> None:
        decls.setdefault(name, {"name": name, "kind": kind, "fields": fields, "doc": doc})

    for _, inst in sorted(prog.instances.items()):
        ht = inst.type
        base = ht.name.replace(".", "__")
        where = loc_text(ht.loc)
        if inst.tlv_option is not None:
            # Never emitted, but BMv2 still wants whole bytes (and no empty headers).
            fields = [(f"bit<{f.width}>", f.name) for f in ht.fields]
            pad = -sum(f.width for f in ht.fields) % 8 or (0 if fields else 8)
            if pad:
                fields.append((f"bit<{pad}>", "c3po_pad"))
            add(type_name(ht), fields, f"TLV option values of {ht.name} (shadow copy, never emitted; {where})")
            continue
        add(type_name(ht), [(f"bit<{f.width}>", f.name) for f in ht.fields], f"header {ht.name} ({where})")
        for g in ht.groups:
            add(f"{base}__{g.name}_t", [(f"bit<{f.width}>", f.name) for f in g.fields],
                f"optional group {ht.name}.{g.name} ({loc_text(g.loc)})")
        vl = ht.varlen
        if vl is None:
            continue
        tlv = InstanceLayout(inst).tlv
        if tlv is None:
            add(f"{base}__{vl.name}_t", [(f"varbit<{vl.max_bytes * 8}>", "data")],
                f"variable-length tail {ht.name}.{vl.name} ({loc_text(vl.loc)})")
            continue
        tname = f"{base}__{vl.name}"
        members: list[tuple[str, str]] = []
        if tlv.singletons:
            add(f"{tname}__single_t", [(f"bit<{tlv.header[0].width}>", tlv_field(tlv.header[0].name))],
                f"single-field TLV options of {ht.name}.{vl.name}")
            members.append((f"{tname}__single_t", "single"))
        opt_bits = max(8, (vl.max_bytes - tlv.header_bytes) * 8)
        add(f"{tname}__opt_t", [*((f"bit<{f.width}>", tlv_field(f.name)) for f in tlv.header),
                                (f"varbit<{opt_bits}>", "data")],
            f"one TLV option of {ht.name}.{vl.name} ({loc_text(tlv.loc)})")
        members.append((f"{tname}__opt_t", "opt"))
        add(f"{tname}__u", members, f"one walked TLV option of {ht.name}.{vl.name}", kind="header_union")
        add(f"{tname}__pad_t", [(f"varbit<{vl.max_bytes * 8}>", "data")],
            f"padding after the end-of-options singleton of {ht.name}.{vl.name}")
    return list(decls.values())  # declaration order: a union follows its members


def struct_members(prog: ir.Program) -> list[tuple[str, str]]:
    """(type, member) of the headers struct, in deparse order first so the file reads like the wire."""
    order = [*prog.deparse, *sorted(n for n in prog.instances if n not in prog.deparse)]
    out: list[tuple[str, str]] = []
    for name in order:
        inst = prog.instances[name]
        if inst.tlv_option is not None:
            continue
        lay = InstanceLayout(inst)
        ht = inst.type
        base = ht.name.replace(".", "__")
        # P4-16 stacks are `T[N] name;` (spec §8.18), never C's `T name[N];`.
        suffix = f"[{inst.stack}]" if inst.is_stack else ""
        out.append((f"{type_name(ht)}{suffix}", inst.ident))
        vl = ht.varlen
        if inst.is_stack and vl is not None:  # one tail per element: a parallel stack (never a TLV walk)
            out.append((f"{base}__{vl.name}_t{suffix}", f"{inst.ident}__{vl.name}"))
            continue
        for g in ht.groups:
            out.append((f"{base}__{g.name}_t", f"{inst.ident}__{g.name}"))
        vl = ht.varlen
        if vl is not None:
            if lay.tlv is None:
                out.append((f"{base}__{vl.name}_t", f"{inst.ident}__{vl.name}"))
            else:
                out.append((f"{base}__{vl.name}__u[{lay.tlv.max_options}]", f"{inst.ident}__{vl.name}__tlv"))
                out.append((f"{base}__{vl.name}__pad_t", f"{inst.ident}__{vl.name}__pad"))
                for oname in lay.option_instances(prog):
                    out.append((type_name(prog.instances[oname].type), prog.instances[oname].ident))
    return out
