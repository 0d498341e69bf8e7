"""TLV option walks for the XDP target.

The area is copied out of the frame with bpf_xdp_load_bytes into a per-CPU buffer and walked with bpf_loop,
one option per callback: the verifier checks the callback body rather than every iteration, so a walk of up to
`max_options` options does not multiply the states of the rest of the program. The walk records, per named
option, the offset of its first occurrence; the program then turns each offset into a bounds-checked packet
pointer to the option's data (`h_<parent>__<option>`), NULL when absent. Semantics follow the spec's section 2
"TLV areas" and the reference interpreter: singletons, end markers, `max_options`, and `bad_length` for options
shorter than their header or their declared fields, or running past the area.
"""

from __future__ import annotations

from dataclasses import dataclass

from c3po_compiler import ir

from .cexpr import Scope, Translator, Unsupported, const, field_access

TLV_BUF = 512  # bytes of the per-CPU copy of an area (the spec's varlen max is at most 512)


@dataclass
class TlvWalker:
    type_name: str
    tlv: ir.Tlv
    options: list[ir.TlvOption]  # the options the instances sharing this walker read
    max_bytes: int
    suffix: str = ""  # tells apart walkers of one header type that read different options

    @property
    def func(self) -> str:
        return f"c3po_tlv_{self.type_name}{self.suffix}"

    @property
    def found(self) -> str:
        return f"c3po_tlv_{self.type_name}{self.suffix}_found"

    def function(self, prog: ir.Program) -> list[str]:
        """C source of the walk: a state struct and a bpf_loop callback that steps over one option per call."""
        tlv = self.tlv
        hb = tlv.header_bytes
        local = ir.HeaderType(f"{self.type_name}_tlv_header", tlv.header)
        tr = Translator(Scope(prog, lambda n, i: "op", local_type=local))
        size = tr.expr(tlv.size)
        out = [f"struct {self.found} {{",
               "\t__u32 pos; /* offset of the next option */",
               "\t__u32 len; /* area length */",
               "\t__u32 err; /* 1: bad_length */",
               f"\t__u32 off[{max(len(self.options), 1)}]; /* per named option: offset + 1 of its first occurrence */",
               "};", "",
               f"/* One step of the walk over a '{self.type_name}' TLV area (max {self.max_bytes} bytes, "
               f"{tlv.max_options} options): returns 1 to stop. */",
               f"static long {self.func}(__u32 i, void *arg)",
               "{",
               f"\tstruct {self.found} *f = arg;",
               "\t__u32 zero = 0;",
               "\tstruct c3po_tlvbuf *b = bpf_map_lookup_elem(&c3po_tlvbuf, &zero);",
               "\t__u32 pos = f->pos, len = f->len;",
               f"\tif (!b || len > {min(self.max_bytes, TLV_BUF)}) {{",
               "\t\tf->err = 1;",
               "\t\treturn 1;",
               "\t}",
               "\tif (pos >= len)",
               "\t\treturn 1;",
               f"\tif (i >= {tlv.max_options}) {{ /* more than max_options options */",
               "\t\tf->err = 1;",
               "\t\treturn 1;",
               "\t}",
               f"\tconst __u8 *op = b->b + (pos & {TLV_BUF - 1});"]
        if tlv.singletons:
            sb = tlv.singleton_bytes
            first = field_access(0, 8 * sb)
            out += [f"\tif (pos + {sb} > len) {{", "\t\tf->err = 1;", "\t\treturn 1;", "\t}",
                    f"\t__u64 t = {first.get('op')};"]
            for name, value in sorted(tlv.singletons.items(), key=lambda kv: kv[1]):
                out.append(f"\tif (t == {const(value, 64)}) {{ /* {name} */")
                if name in tlv.end:
                    out.append("\t\treturn 1; /* the rest of the area is padding */")
                else:
                    out += [f"\t\tf->pos = pos + {sb};", "\t\treturn 0;"]
                out.append("\t}")
        out += [f"\tif (pos + {hb} > len) {{", "\t\tf->err = 1;", "\t\treturn 1;", "\t}",
                f"\t__u64 size = {size};",
                f"\tif (size < {hb} || pos + size > len) {{", "\t\tf->err = 1;", "\t\treturn 1;", "\t}"]
        for k, opt in enumerate(self.options):
            conds = []
            for fname, value in opt.match.items():
                f = next((x for x in tlv.header if x.name == fname), None)
                if f is None:
                    raise Unsupported(f"TLV option '{opt.name}' matches unknown field '{fname}'")
                conds.append(f"{field_access(f.offset, f.width).get('op')} == {const(value, 64)}")
            out += [f"\tif ({' && '.join(conds) or '1'}) {{ /* option {opt.name} */",
                    f"\t\tif (size < {hb + opt.data_bytes}) {{", "\t\t\tf->err = 1;", "\t\t\treturn 1;",
                    "\t\t}", f"\t\tif (!f->off[{k}])", f"\t\t\tf->off[{k}] = pos + 1;", "\t}"]
        out += ["\tf->pos = pos + size;", "\treturn 0;", "}"]
        return out

    @property
    def iterations(self) -> int:
        return self.tlv.max_options + 1


def walkers(prog: ir.Program) -> dict[str, TlvWalker]:
    """The walker of each instance whose TLV area is walked: one per header type and set of options the instance
    reads. Only those options are recognised (their first occurrence found, their size checked against their
    fields); every other option, declared or not, is skipped by its size like an unknown one, as the reference
    does (section 2, "TLV areas"): a short option the program never reads is no error."""
    out: dict[str, TlvWalker] = {}
    shared: dict[tuple[str, tuple[str, ...]], TlvWalker] = {}
    for inst in sorted(prog.instances.values(), key=lambda i: i.name):
        vl = inst.type.varlen
        if vl is None or vl.tlv is None or not inst.walk_tlv:
            continue
        if vl.max_bytes > TLV_BUF:
            raise Unsupported(f"TLV area of '{inst.name}' larger than {TLV_BUF} bytes")
        read = {o.tlv_option.name for o in option_instances(prog, inst.name) if o.tlv_option is not None}
        opts = [o for o in vl.tlv.options if o.name in read]
        key = (inst.type.name, tuple(o.name for o in opts))
        if key not in shared:  # c3po_tlv_<type>, then c3po_tlv_<type>__2...: spec names hold no "__"
            n = sum(1 for t, _ in shared if t == inst.type.name)
            shared[key] = TlvWalker(inst.type.name, vl.tlv, opts, vl.max_bytes, f"__{n + 1}" if n else "")
        out[inst.name] = shared[key]
    return out


def option_instances(prog: ir.Program, parent: str) -> list[ir.Instance]:
    """The option instances of a TLV parent, in the order of its type's options."""
    inst = prog.instances[parent]
    assert inst.type.varlen is not None and inst.type.varlen.tlv is not None
    names = [o.name for o in inst.type.varlen.tlv.options]
    opts = {i.tlv_option.name: i for i in prog.instances.values()
            if i.tlv_parent == parent and i.tlv_option is not None}
    return [opts[n] for n in names if n in opts]
