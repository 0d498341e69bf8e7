"""The end of each path through the control: checksum updates, the header layout and the verdict.

Where the emitter knows a path's world (paths.py), the deparser is straight-line code for it: a drop returns at
once, a front insertion or removal moves the frame start (`bpf_xdp_adjust_head`) and writes only what is new, an
unchanged frame goes to its verdict. Where it does not, `rebuild` decides at run time: the same fast cases when a
check proves them, and otherwise a copy of the whole header stack through per-CPU scratch memory.

Header checksums (RFC 1071 kind) are summed in full, except where the parser verified them: then RFC 1624 over
the words the program may write gives the same value for less work. L4 checksums are always incremental (RFC 1624,
as the spec defines them).

RAW_ORDER_SUMS: the incremental updates work on the words as they are in the frame (network order), with no byte
swaps: a ones'-complement sum of byte-swapped words is the byte-swapped sum (RFC 1071 section 2(B)), and the tests
they make (a word unchanged, a zero sum, a zero UDP checksum) do not depend on the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from c3po_compiler import ir

from . import images
from . import paths as P
from .cexpr import FieldAccess, Unsupported, field_access, group_ptr
from .ctext import Frame, HitMiss, Lines, elem_ptr

if TYPE_CHECKING:
    from .emitter import Emitter


def csum_step(raw: bool, old: str, ptr: str, off: int) -> str:
    """One word of an RFC 1624 update: `old` the word as parsed, the one at ptr + off as it is now."""
    if raw:
        return f"s = c3po_csum_step(s, {old}, *(__u16 *)({ptr} + {off}));"
    return f"s = c3po_csum_step(s, bpf_ntohs({old}), c3po_ld({ptr} + {off}, 2));"


class Deparser:
    """The deparse half of an `Emitter` (it reads the emitter's header pointers, checksum requests and worlds)."""

    def __init__(self, em: Emitter) -> None:
        self.em = em
        self.words = self._incremental_csum_words()

    def _incremental_csum_words(self) -> dict[str, list[int]]:
        """Header checksums (RFC 1071 kind) that can be updated incrementally, and the 16-bit words the program may
        write. Incrementally (RFC 1624) gives the recomputed value only when the checksum was right to start with:
        so only headers the parser verifies in every state that extracts them, and only when they came from the
        frame (a header set_valid made is summed in full)."""
        prog = self.em.prog
        out: dict[str, list[int]] = {}
        for name, inst in sorted(prog.instances.items()):
            ck = inst.type.checksum
            if ck is None or ck.kind == "l4" or inst.is_stack or inst.tlv_parent or inst.type.groups:
                continue
            states = [st for st in prog.parser.states.values() if st.extract == name]
            if not states or any(name not in st.verify for st in states):
                continue
            cf = inst.type.field(ck.field)
            if cf is None or cf.offset % 16 or cf.width != 16:
                continue
            words: set[int] = set()
            for body in [prog.control, *(a.body for a in prog.actions.values())]:
                for st in ir.walk_stmts(body):
                    if isinstance(st, ir.Assign) and isinstance(st.target, ir.FieldRef) and st.target.instance == name:
                        f = inst.type.field(st.target.field_name)
                        if f is None:
                            continue
                        words |= set(range(f.offset // 16, (f.offset + f.width - 1) // 16 + 1))
            words.discard(cf.offset // 16)
            out[name] = sorted(w for w in words if 2 * w + 2 <= inst.type.fixed_bytes)
        return out

    def csum_snapshot(self) -> list[str]:
        """At the start of the control: the words of each incrementally updated header checksum's header that the
        program may write, as parsed (RFC 1624 needs the old values)."""
        out = Lines(depth=1)
        for _, name in self.em.csum_flags:
            words = self.words.get(name)
            if not words:
                continue
            inst = self.em.prog.instances[name]
            ptr = elem_ptr(inst, None)
            out.add(f"__u16 oc_{inst.ident}[{len(words)}] = {{}}; /* {name}: the words the program may write, as "
                    "parsed */")
            out.open(f"if ({ptr}) {{")
            for k, w in enumerate(words):
                out.add(f"oc_{inst.ident}[{k}] = *(__u16 *)({ptr} + {2 * w});")
            out.close()
        return out.out

    def csum_incremental(self, out: Lines, name: str, ptr: str) -> None:
        inst = self.em.prog.instances[name]
        ck = inst.type.checksum
        assert ck is not None
        f = inst.type.field(ck.field)
        assert f is not None
        words = self.words[name]
        assert len(words) < 1024  # the sum below stays under 2^32
        # In network order throughout (RAW_ORDER_SUMS): no byte swaps. RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'),
        # is HC + (m - m') mod 0xffff, and its result is the representative in 0..0xfffe (the complement of a
        # fold in 1..0xffff): a zero sum stores as 0x0000, as the full recomputation writes it, and an incoming
        # 0xffff (the other zero the parser accepts) becomes 0x0000. So: HC + (0xffff + m - m') per word, which
        # keeps every partial sum positive and below (2n + 1) * 0xffff < 2^32; one 16-bit fold leaves 0..0x1fffe,
        # and c + ((c + 1) >> 16), cut to 16 bits, takes 0xffff..0x1fffe down by 0xffff. 16 BPF instructions on the
        # router's path where summing the complements and folding twice took 21. Unchanged words add 0 mod 0xffff.
        out.add(f"__u64 c = *(__u16 *)({ptr} + {f.offset // 8}) + {len(words) * 0xffff:#x}; /* HC + 0xffff per word "
                "written, raw order (64-bit: no 32-bit masking before the shift) */")
        for k, w in enumerate(words):
            out.add(f"c += oc_{inst.ident}[{k}] - *(__u16 *)({ptr} + {2 * w}); /* m - m' */")
        out.add("c = (c & 0xffff) + (c >> 16);")
        out.add(f"*(__u16 *)({ptr} + {f.offset // 8}) = (__u16)(c + ((c + 1) >> 16)); /* 0..0xfffe */")

    def word_store(self, instance: str, f: ir.Field, ptr: str, value: str) -> str | None:
        """The store of a field narrower than 16 bits inside one of the words an incremental checksum update reads
        back, as its whole word (load, merge, one 16-bit store), so clang hands the update the stored value in a
        register. After a 1-byte store the update's 16-bit load would read memory the store has not reached, and
        x86 cannot forward a store to a wider load: the load waits for the store to retire (~12 cycles). None for
        other fields."""
        words = self.words.get(instance)
        w = f.offset // 16
        if not words or f.width >= 16 or (f.offset + f.width - 1) // 16 != w or w not in words:
            return None
        if f.width == 8 and f.offset % 8 == 0:  # a whole byte (the TTL): merged in memory order, no byte swaps
            return f"c3po_st_in16({ptr} + {2 * w}, {f.offset % 16 // 8}, {value})"
        return FieldAccess(2 * w, 2, 16 - f.offset % 16 - f.width, f.width).set(ptr, value)

    def out_max(self) -> int:
        return sum(inst.type.max_bytes for inst, _ in self.em.deparse_elements())

    def rebuild(self, depth: int = 1) -> list[str]:
        """When headers were added or removed: copy the valid headers, in deparse order, to scratch memory, move
        the frame start with bpf_xdp_adjust_head, and store them back in front of the payload."""
        out = Lines(depth=depth)
        out_max = self.out_max()
        out.open("if (relayout) { /* headers were added or removed: rebuild the header stack in deparse order */")
        elems = self.em.deparse_elements()
        if all(not inst.type.groups and not inst.type.varlen for inst, _ in elems):
            self.in_place(out, elems)
            out.open("if (relayout) { /* otherwise: copy the header stack through scratch memory */")
        out.add("__u64 oldlen = cur - data;")
        out.add('asm volatile("" : "+r"(oldlen)); /* a number to clang too: no packet pointer arithmetic with newlen */')
        out.add("C3PO_SCRATCH();")
        out.add("sc->pos = 0;")
        for inst, ptr in self.em.deparse_elements():
            fixed = inst.type.fixed_bytes
            most = inst.type.max_bytes
            # The pointer is tested through an opaque copy: clang may otherwise test a parse condition it knows to
            # be equivalent (a stack's next EtherType) and load through a register the verifier sees as NULL.
            out.open(f"{{ /* {inst.name} */")
            out.add(f"__u8 *src = {ptr};")
            out.add('asm volatile("" : "+r"(src));')
            out.open("if (src) {")
            out.add("__u64 pos = sc->pos; /* read back from the map: one verifier state whatever the layout */")
            out.add(f"if (pos > {out_max - most})")
            out.add("\treturn XDP_ABORTED;")
            out.add(f"c3po_copy(sc->out + pos, src, {fixed});")
            if inst.type.groups:
                out.add(f"pos += {fixed};")
                fixed = 0
                for g in inst.type.groups:
                    gp = group_ptr(ptr, g.name)
                    out.open(f"if ({gp}) {{ /* group {g.name} */")
                    out.add(f"c3po_copy(sc->out + pos, {gp}, {g.bytes});")
                    out.add(f"pos += {g.bytes};")
                    out.close()
                out.add(f"if (pos > {out_max - (inst.type.varlen.max_bytes if inst.type.varlen else 0)})")
                out.add("\treturn XDP_ABORTED;")
            if inst.type.varlen:
                vl = f"vl_{ptr[2:]}"
                out.add(f"__u64 n = {vl};")
                out.open(f"if (n > 0 && n <= {inst.type.varlen.max_bytes}) {{ /* tail bytes verbatim */")
                out.add(f"if (bpf_xdp_load_bytes(ctx, {ptr} + {fixed} - data, sc->out + pos + {fixed}, n))")
                out.add("\treturn XDP_ABORTED;")
                out.close()
                out.add(f"sc->pos = pos + {fixed} + ({vl} <= {inst.type.varlen.max_bytes} ? {vl} : 0);")
            else:
                out.add(f"sc->pos = pos + {fixed};")
            out.close()
            out.close()
        out.add("__u64 newlen = sc->pos;")
        out.add("if (bpf_xdp_adjust_head(ctx, (int)oldlen - (int)newlen))")
        out.add("\treturn XDP_ABORTED;")
        out.add(f"if (newlen > 0 && newlen <= {out_max} && bpf_xdp_store_bytes(ctx, 0, sc->out, newlen))")
        out.add("\treturn XDP_ABORTED;")
        out.close()
        return out.out

    def in_place(self, out: Lines, elems: list[tuple[ir.Instance, str]]) -> None:
        """The fast paths of the rebuild, taken when a runtime check proves them equivalent to it: the headers
        that came from the frame and are still valid sit back to back, where the parser found them, up to the
        cursor, and every header set_valid made comes before all of them in deparse order. Then the deparsed
        frame is the new headers followed by the frame from the first kept header on: moving the frame start
        by the difference and writing the new headers over the front gives exactly the rebuild's bytes
        (decapsulation adds nothing, encapsulation keeps everything), with no copy of the kept headers and no
        helper call to store them."""
        slots = self.em.set_valid_slots
        out.add("__u64 keep = cur - data; /* offset of the kept headers if they are still in place */")
        out.add("__u64 moved = 0; /* offsets as scalars, so the check adds no verifier state */")
        out.add("__u64 added = 0; /* bytes of the headers set_valid made */")
        for inst, ptr in reversed(elems):
            n = inst.type.fixed_bytes
            bit = self.em.fresh_bit(ptr)
            out.open(f"if ({ptr}) {{ /* {inst.name} */")
            if bit is not None:
                out.open(f"if (fresh & {bit}) {{ /* made by set_valid */")
                out.add(f"added += {n};")
                out.close("} else {")
                out.depth += 1
            elif ptr in slots:
                out.add("moved = 1; /* may be in scratch memory: rebuild */")
            if bit is not None or ptr not in slots:
                out.add("moved |= added; /* a header from the frame after a new one: rebuild */")
                out.add(f"keep -= {n};")
                out.add(f"__u8 *at = {ptr};")
                out.add("asm volatile(\"\" : \"+r\"(at)); /* keep the pointer subtraction under the NULL check */")
                out.add("moved |= (__u64)(at - data) ^ keep;")
            if bit is not None:
                out.close()
            out.close()
        out.open("if (!moved) { /* (nothing to move when set_invalid only hit invalid headers) */")
        out.add("if (keep != added && bpf_xdp_adjust_head(ctx, (int)keep - (int)added))")
        out.add("\treturn XDP_ABORTED;")
        if self.em.track_fresh:
            out.open("if (added) { /* write the new headers over the front of the frame, in deparse order */")
            out.add("data = (__u8 *)(long)ctx->data;")
            out.add("end = (__u8 *)(long)ctx->data_end;")
            out.add("__u64 pos = 0;")
            total = 0
            for inst, ptr in elems:
                bit = self.em.fresh_bit(ptr)
                if bit is None:
                    continue
                n = inst.type.fixed_bytes
                off = slots[ptr][0]
                out.open(f"if ({ptr} && (fresh & {bit})) {{ /* {inst.name} */")
                if total:
                    out.add(f"if (pos > {total})")
                    out.add("\treturn XDP_ABORTED;")
                out.add("__u8 *dst = data + pos;")
                out.add(f"if (dst + {n} > end)")
                out.add("\treturn XDP_ABORTED;")
                out.add("C3PO_SCRATCH();")
                out.add(f"c3po_copy(dst, sc->hdr + {off}, {n});")
                out.add(f"pos += {n};")
                out.close()
                total += n
            out.close()
        out.add("relayout = 0;")
        out.close()
        out.close()

    def l4_snapshot(self) -> list[str]:
        """At the start of the control: the L4 words and pseudo-header addresses as parsed (RFC 1624 needs them)."""
        out = Lines(depth=1)
        done: set[str] = set()
        for _, name, pseudo in self.em.l4_requests:
            for inst_name, fields in ((name, None), (pseudo, ("src", "dst"))):
                if inst_name is None or f"{inst_name}:{fields}" in done:
                    continue
                done.add(f"{inst_name}:{fields}")
                inst = self.em.prog.instances[inst_name]
                ptr = elem_ptr(inst, None)
                arr = f"o_{inst.ident}" if fields is None else f"o_{inst.ident}_addrs"
                spans = ([(0, inst.type.fixed_bytes)] if fields is None else
                         [(f.offset // 8, f.width // 8) for f in (inst.type.field(n) for n in fields) if f])
                total = sum(n for _, n in spans)
                out.add(f"__u16 {arr}[{total // 2}] = {{}}; /* {inst_name} "
                        f"{'fixed part' if fields is None else 'src, dst'} as parsed */")
                out.open(f"if ({ptr}) {{")
                k = 0
                for off, n in spans:
                    out.add(f"__builtin_memcpy(&{arr}[{k}], {ptr} + {off}, {n});")
                    k += n // 2
                out.close()
        return out.out

    def l4_updates(self, depth: int = 1, only: frozenset[str] | None = None) -> list[str]:
        out = Lines(depth=depth)
        for flag, name, pseudo in self.em.l4_requests:
            if only is not None and flag not in only:
                continue
            inst = self.em.prog.instances[name]
            ck = inst.type.checksum
            assert ck is not None
            f = inst.type.field(ck.field)
            assert f is not None
            acc = field_access(f.offset, f.width)
            ptr = elem_ptr(inst, None)
            out.open(f"if ({flag} && {ptr}) {{ /* update_checksum({name}{', ' + pseudo if pseudo else ''}): "
                     "RFC 1624 over the changed words */")
            raw = f.offset % 16 == 0 and f.width == 16  # RAW_ORDER_SUMS: the whole update in network order
            out.add(f"__u32 hc = {f'*(__u16 *)({ptr} + {f.offset // 8})' if raw else acc.get(ptr)};"
                    + (" /* raw order */" if raw else ""))
            out.open("if (hc != 0) {" if ck.zero_means_none else "{")
            out.add("__u32 s = ~hc & 0xffff;")
            word = f.offset // 16
            for i in range(inst.type.fixed_bytes // 2):
                if i != word:
                    out.add(csum_step(raw, f"o_{inst.ident}[{i}]", ptr, 2 * i))
            if pseudo is not None:
                pinst = self.em.prog.instances[pseudo]
                pptr = elem_ptr(pinst, None)
                out.open(f"if ({pptr}) {{")
                k = 0
                for fname in ("src", "dst"):
                    pf = pinst.type.field(fname)
                    assert pf is not None
                    for j in range(pf.width // 16):
                        out.add(csum_step(raw, f"o_{pinst.ident}_addrs[{k}]", pptr, pf.offset // 8 + 2 * j))
                        k += 1
                out.close()
            out.add("__u32 r = ~s & 0xffff;")
            if ck.zero_means_none:
                out.add("if (r == 0)")
                out.add("\tr = 0xffff;")
            out.add(f"*(__u16 *)({ptr} + {f.offset // 8}) = (__u16)r;" if raw else acc.set(ptr, "r") + ";")
            out.close()
            out.close()
        return out.out

    def tail(self, out: Lines, fam: P.Family) -> None:
        """The deparser and verdict at the end of one path through the control: straight-line code for the one
        world this path is in when that is known, the run-time deparser otherwise."""
        real = P.feasible(fam)
        if real and all(x.verdict == "drop" for x in real):  # (statements before it may have been skipped)
            out.add("return XDP_DROP; /* nothing to deparse for a dropped frame */")
            return
        if self.em.placed:  # the frame already has its final layout (insert_now)
            if real is None or any(x.new - set(self.em.placed) or x.pkt != x.parsed for x in real):
                raise Unsupported("internal error: a path changed its layout after its headers were inserted")
            out.add("/* deparse: the new headers were built in place */")
            one = next(iter(real)) if len(real) == 1 else None
            self.csum_updates(out, one, P.must_valid(fam))
            verdicts = {x.verdict for x in real}
            self.verdict_return(out, verdicts.pop() if len(verdicts) == 1 else None)
            return
        w = next(iter(real)) if real is not None and len(real) == 1 else None
        if w is None and real and len({(x.verdict, x.csum) for x in real}) == 1 and all(
                not x.new and x.pkt == x.parsed for x in real):
            # several worlds, none adds or removes headers and all agree on the verdict: only the checksums
            # (each under its own NULL test) and the verdict are left. Any of them stands for all (the same one
            # whatever the set's order: the generated bytes must not depend on Python's hash seed)
            w = min(real, key=lambda x: (sorted(x.parsed), sorted(x.csum)))
            if w.verdict == "drop":
                out.add("return XDP_DROP; /* nothing to deparse for a dropped frame */")
                return
            self.csum_updates(out, w, P.must_valid(fam), guard_all=True)
            self.verdict_return(out, w.verdict)
            return
        if w is None:
            self.generic_tail(out)
            return
        if w.verdict == "drop":
            out.add("return XDP_DROP; /* nothing to deparse for a dropped frame */")
            return
        shown = ", ".join(f"{'+' if p in w.new else ''}{p[2:]}" for _, p in self.em.deparse_elements() if p in w.valid)
        gone = [p for _, p in self.em.deparse_elements() if p in w.parsed - w.pkt]
        out.add(f"/* deparse [{shown}]" + (f", removed [{', '.join(p[2:] for p in gone)}]" if gone else "")
                + (" (+: made by set_valid)" if w.new else "") + " */")
        self.csum_updates(out, w, P.must_valid(fam))
        self.static_relayout(out, w, P.must_valid(fam))
        self.verdict_return(out, w.verdict)

    def generic_tail(self, out: Lines) -> None:
        deparse = Lines(depth=out.depth)
        self.csum_updates(deparse, None)
        if self.em.relayout:
            deparse.out += self.rebuild(depth=out.depth)
        if deparse.out:
            out.add("if (verdict == C3PO_V_DROP) /* nothing to deparse for a dropped frame */")
            out.add("\treturn XDP_DROP;")
            out.add("/* deparse: headers were edited in place; apply checksum updates"
                    + (", then rebuild the header stack if headers were added or removed */" if self.em.relayout
                       else " */"))
            out.out += deparse.out
        self.verdict_return(out, None)

    def verdict_return(self, out: Lines, verdict: str | None) -> None:
        if verdict is None:
            out.open("switch (verdict) {")
            out.add("case C3PO_V_DROP:")
            out.add("\treturn XDP_DROP;")
            if self.em.uses_reflect:  # no case for a verdict nothing in the program sets (code no packet runs)
                out.add("case C3PO_V_REFLECT:")
                out.add("\treturn XDP_TX;")
            if self.em.uses_forward:
                out.add("case C3PO_V_FORWARD:")
                out.add("\treturn c3po_forward(st, egress);")
            out.add("default:")
            out.add("\treturn XDP_PASS;")
            out.close()
        elif verdict == "forward":
            out.add("return c3po_forward(st, egress);")
        else:
            out.add({"drop": "return XDP_DROP;", "reflect": "return XDP_TX;", "to_host": "return XDP_PASS;"}[verdict])

    def csum_updates(self, out: Lines, w: P.World | None, safe: frozenset[str] = frozenset(),
                     guard_all: bool = False) -> None:
        """RFC 1071 recomputation of the header checksums update_checksum asked for (`w`: in that world only). A
        header whose constant bytes were written on these lines with only comments since (so nothing else wrote
        it: no statement, no branch) has its constant words summed at compile time (images.partial_sum)."""
        built = {ptr: img for ptr, (img, lines, mark) in self.em.built.items()
                 if lines is out.out and images.simple(img.inst) and not img.inst.type.varlen
                 and all(comment_only(ln) for ln in lines[mark:])}
        for flag, name in self.em.csum_flags:
            inst = self.em.prog.instances[name]
            ck = inst.type.checksum
            assert ck is not None
            f = inst.type.field(ck.field)
            assert f is not None
            ptr = f"h_{inst.ident}"
            if w is None:
                guard = "" if ptr in self.em.control_valid else f" && {ptr}"
                out.open(f"if ({flag}{guard}) {{ /* update_checksum({name}): RFC 1071 over the whole header */")
            elif flag in w.csum and (ptr in w.valid or guard_all):
                out.open(f"{'' if ptr in safe else f'if ({ptr}) '}{{ /* update_checksum({name}): RFC 1071 over "
                         "the whole header */")
            else:
                continue
            # From the frame for sure (this world, or never made by set_valid): RFC 1624 over the words written.
            # guard_all: no world made or removed a header, so wherever the header is valid it came from the frame.
            from_frame = guard_all or (ptr not in self.em.set_valid_slots if w is None else ptr in w.pkt)
            if name in self.words and from_frame:
                out.add("/* verified by the parser, so updated incrementally (RFC 1624): same result, fewer loads */")
                self.csum_incremental(out, name, ptr)
                out.close()
                continue
            img = built.get(ptr)
            if img is not None:
                const, loads = images.partial_sum(img, f.offset // 8)
                terms = " + ".join([f"0x{const:x}ULL"] + [
                    f"*(__u{8 * n} *)({ptr} + {o})" for o, n in loads])
                fixed = [fl.name for fl in inst.type.fields
                         if fl.name != ck.field and not img.bytes_of(fl) & img.dynamic]
                out.add(f"/* built here from constants: the sum of its constant words ({', '.join(fixed)}) taken at "
                        "compile time, the words written at run time added (RFC 1071) */")
                out.add(f"*(__u16 *)({ptr} + {f.offset // 8}) = (__u16)~c3po_csum_fold({terms}); /* raw order */")
                out.close()
                continue
            out.add(f"*(__u16 *)({ptr} + {f.offset // 8}) = 0;")
            out.add(f"*(__u16 *)({ptr} + {f.offset // 8}) = (__u16)~c3po_csum_fold({self.em.csum_sum(inst, ptr)}); "
                    "/* raw order */")
            out.close()
        out.out += self.l4_updates(depth=out.depth, only=None if w is None else w.csum)

    def static_relayout(self, out: Lines, w: P.World, safe: frozenset[str]) -> None:
        """Move the frame start and write the new headers, for a world known at compile time. The fast case: every
        removed and every new header comes before all kept ones in deparse order, so the kept ones stay where they
        are (the parser's own layout) and only the front of the frame changes. Anything else goes through the
        run-time rebuild (a copy of the header stack through scratch memory)."""
        elems = self.em.deparse_elements()
        removed = [(i, inst) for i, (inst, p) in enumerate(elems) if p in w.parsed and p not in w.pkt]
        new = [(i, inst, p) for i, (inst, p) in enumerate(elems) if p in w.new]
        if not removed and not new:
            return
        kept = [i for i, (_, p) in enumerate(elems) if p in w.pkt]
        first = kept[0] if kept else len(elems)
        fixed = all(inst.type.is_fixed for _, inst in removed)
        if (any(i > first for i, _ in removed) or any(i > first for i, _, _ in new) or not self.em.track_fresh
                or (kept and not fixed and elems[first][1] not in safe)):
            out.out += self.rebuild(depth=out.depth)
            return
        new_bytes = sum(inst.type.fixed_bytes for _, inst, _ in new)
        if not kept:
            out.add(f"if (bpf_xdp_adjust_head(ctx, (int)(cur - data) - {new_bytes}))")
            out.add("\treturn XDP_ABORTED;")
        elif fixed:
            delta = sum(inst.type.fixed_bytes for _, inst in removed) - new_bytes
            if delta:
                out.add(f"if (bpf_xdp_adjust_head(ctx, {delta}))")
                out.add("\treturn XDP_ABORTED;")
        else:
            out.add(f"if (bpf_xdp_adjust_head(ctx, (int)({elems[first][1]} - data) - {new_bytes}))")
            out.add("\treturn XDP_ABORTED;")
        if new:
            out.add("data = (__u8 *)(long)ctx->data;")
            out.add("end = (__u8 *)(long)ctx->data_end;")
            out.add(f"if (data + {new_bytes} > end)")
            out.add("\treturn XDP_ABORTED;")
            out.add("C3PO_SCRATCH();")
            pos = 0
            for _, inst, p in new:
                n = inst.type.fixed_bytes
                out.add(f"c3po_copy(data + {pos}, sc->hdr + {self.em.set_valid_slots[p][0]}, {n}); /* {inst.name} */")
                pos += n

    def insertion_plan(self, s: ir.SetValid, fam: P.Family, cont: list[Frame]) -> dict[str, int] | None:
        """Where each new header goes, when this set_valid starts an insertion whose final layout is the same on
        every path from here: only headers added, all in front of the frame's own headers (which are all
        fixed-size). Then the frame start can move now and the new headers be built where they end up, as a
        hand-written encapsulation does, instead of in scratch memory copied at the deparser."""
        real = P.feasible(fam)
        if fam is None or real is None or len(fam) != 1 or len(real) != 1 or not self.em.track_fresh:
            return None
        w = next(iter(real))
        if w.new or w.pkt != w.parsed or self.em.placed:
            return None
        rest: list[ir.Stmt] = [s, *(x for stmts, _ in cont for x in stmts)]
        reach: list[ir.Stmt] = []
        todo = list(rest)
        while todo:  # every statement the rest of the path may run, action bodies included
            x = todo.pop()
            reach.append(x)
            if isinstance(x, ir.If):
                todo += x.then + x.otherwise
            elif isinstance(x, HitMiss):
                todo += x.hit + x.miss
            elif isinstance(x, ir.Apply):
                todo += x.hit + x.miss + [y for b in x.by_action.values() for y in b]
                todo += [y for a in self.em.layouts[x.table].action_ids for y in self.em.prog.actions[a].body]
            elif isinstance(x, ir.CallAction):
                todo += self.em.prog.actions[x.action].body
        if any(isinstance(x, ir.SetValid) and not x.valid for x in reach):
            return None
        ends = self.em.leaves(rest, fam)
        if ends is None or any(f is None for f in ends):
            return None
        finals = {(e.pkt, e.new) for f in ends for e in (P.feasible(f) or ())}
        if len(finals) != 1:
            return None
        pkt, new = finals.pop()
        if not new or any(isinstance(x, ir.SetValid) and x.valid and self.em.setvalid_ptr(x) not in new for x in reach):
            return None
        elems = self.em.deparse_elements()
        order = [p for _, p in elems]
        first = min((order.index(p) for p in pkt), default=len(order))
        if any(order.index(p) > first for p in new):
            return None
        if any(not inst.type.is_fixed or inst.walk_tlv for inst, p in elems if p in pkt):
            return None
        plan: dict[str, int] = {}
        pos = 0
        for inst, p in elems:
            if p in new or p in pkt:
                plan[p] = pos
                pos += inst.type.fixed_bytes
        return plan

    def insert_now(self, out: Lines, plan: dict[str, int], fam: P.Family) -> None:
        w = next(iter(P.feasible(fam) or ()))
        elems = self.em.deparse_elements()
        size = {p: inst.type.fixed_bytes for inst, p in elems}
        new_bytes = sum(size[p] for p in plan if p not in w.pkt)
        total = sum(size[p] for p in plan)
        shown = ", ".join(f"{'' if p in w.pkt else '+'}{p[2:]}" for p in plan)
        out.add(f"/* every path from here ends as [{shown}]: make room for the new headers now (+), and build them "
                "where they end up */")
        out.add(f"if (bpf_xdp_adjust_head(ctx, -{new_bytes}))")
        out.add("\treturn XDP_ABORTED;")
        out.add("data = (__u8 *)(long)ctx->data;")
        out.add("end = (__u8 *)(long)ctx->data_end;")
        out.add(f"if (data + {total} > end)")
        out.add("\treturn XDP_ABORTED;")
        for p, off in plan.items():
            if p in w.pkt:
                out.add(f"{p} = data + {off}; /* moved with the frame start */")
        out.add(f"cur = data + {total};")
        self.em.placed = {p: off for p, off in plan.items() if p not in w.pkt}


def comment_only(line: str) -> bool:
    """Whether a line of C is one comment and nothing else."""
    t = line.strip()
    return t.startswith("/*") and t.endswith("*/") and t.find("*/") == len(t) - 2
