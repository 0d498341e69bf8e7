"""Splitting a parse graph too long for one XDP program into programs chained with tail calls.

Why split at all: the verifier copes with long unrolled parsers (a 250-deep label stack is ≈ 57,000 instructions
processed), but clang 14 has no long jumps, and a BPF jump reaches at most 32,767 instructions: a 1,000-deep
stack compiles to ≈ 107,000 instructions and the kernel refuses it with "jump out of range". So each program gets
at most `NODES_PER_PROGRAM` unrolled parse states (≈ 27 instructions each on the deep-stack spec), which leaves
most of the jump range to the control block that every program reaching `parsed` carries.

How: the unrolled DAG is ordered by longest distance from the start state (so every edge goes forward) and cut
into runs of `NODES_PER_PROGRAM` states. A `goto` into a later program becomes a trampoline that saves the parse
state into the per-CPU map `c3po_parse` and tail-calls the program through the `c3po_progs` prog array; that
program reloads the state, bounds-checks the packet pointers again and jumps to the node. Because edges only go
forward, a packet passes through each program at most once.

What is saved: the cursor, and for every header that may be valid at the node its offset (or "invalid"), its
optional groups, TLV option pointers and varlen length; and the metadata parser states' `do` may have set (the
entry program stores 0 for what it has not set: the map still holds the previous packet's values). A program holds in C variables (on its 512-byte stack)
only the state it reads or writes itself; the rest stays in the map untouched, so a 64-deep stack costs a
program that only passes it through no stack at all.

Why the control runs in whichever program reaches `parsed` (rather than in one dedicated last program): each
program knows exactly which headers may be valid at the nodes it resumes at, so the verifier explores only
combinations that a path can produce. A dedicated control program would reload every header that may be valid
at `parsed` from any path, and the verifier would walk every valid/invalid combination of them (2^63 for a
64-deep stack). Short packets also finish in the first program without a tail call. The cost is a copy of the
control and deparse code in every program that has an edge to `parsed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from c3po_compiler import ir

from .cexpr import Unsupported, ctype, group_ptr, hash_slot
from .ctext import entry_name

if TYPE_CHECKING:
    from .emitter import Emitter, ParseNode

NODES_PER_PROGRAM = 128  # unrolled parse states per program (see the module docstring for the measurement)
MAX_TAIL_CALLS = 33  # MAX_TAIL_CALL_CNT in the kernel: a 34th chained bpf_tail_call fails
PERCPU_VALUE_MAX = 32768  # PCPU_MIN_UNIT_SIZE: the largest value of a per-CPU array map
STACK_LIMIT = 512  # bytes of BPF stack per program
OFF_MAX = 0x7FFF  # largest saved offset: the verifier needs offset + header size <= MAX_PACKET_OFF (0xffff)
OFF_NONE = 0xFFFF  # saved offset of an invalid header

_NAME = re.compile(r"\b((?:h|g|vl|m)_\w+)\b")
_GOTO = re.compile(r"\bgoto (st_\w+);")
_PERR = re.compile(r"\bgoto perr_(\w+);")


class LimitError(Unsupported):
    """A kernel limit the spec cannot fit, with the spec location to report it at."""

    def __init__(self, message: str, loc: ir.Loc | None = None) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True)
class Slot:
    """One piece of parse state that may have to cross a tail call."""

    var: str  # the C variable (and the field of struct c3po_parse)
    owner: str  # the header pointer whose validity it follows
    size: int  # pointers: bytes bounds-checked on reload; lengths: the largest valid value
    is_len: bool = False  # a varlen length (u16 value) rather than a packet pointer
    optional: bool = False  # a group or TLV option: may be NULL even while its header is valid
    meta: str = ""  # metadata a parser state's `do` may have set: its C type (a value, valid on every path)


@dataclass
class Trampoline:
    label: str
    target: str
    node_id: int
    program: int
    fn: str
    lines: list[str]


@dataclass
class Resume:
    node_id: int
    label: str
    comment: str
    lines: list[str]


@dataclass
class Program:
    index: int
    fn: str
    nodes: list[ParseNode]
    resumes: list[Resume] = field(default_factory=list)
    exits: list[Trampoline] = field(default_factory=list)
    runs_control: bool = False
    errors: list[str] = field(default_factory=list)
    stack: int = 0


@dataclass
class Split:
    programs: list[Program]
    fields: list[tuple[str, str]]  # (C declaration, comment) of struct c3po_parse
    state_bytes: int
    longest_chain: int  # most programs one packet can pass through
    progs_map: str  # the prog array: named after the program, as it is pinned by name


def progs_map(prog: ir.Program) -> str:
    return f"c3po_progs_{prog.name}"


def slots(em: Emitter) -> list[Slot]:
    """Every header pointer, group pointer, TLV option pointer and varlen length the parser can set."""
    prog = em.prog
    out: list[Slot] = []
    for inst in sorted(prog.instances.values(), key=lambda i: i.name):
        if inst.tlv_parent:
            continue
        ptrs = [f"h_{inst.ident}_{i}" for i in range(inst.stack)] if inst.is_stack else [f"h_{inst.ident}"]
        for p in ptrs:
            out.append(Slot(p, p, inst.type.fixed_bytes))
            out += [Slot(group_ptr(p, g.name), p, g.bytes, optional=True) for g in inst.type.groups]
            if inst.type.varlen:
                out.append(Slot(f"vl_{p[2:]}", p, inst.type.varlen.max_bytes, is_len=True))
            if inst.walk_tlv:
                for opt in sorted(prog.instances.values(), key=lambda i: i.name):
                    if opt.tlv_parent == inst.name and opt.tlv_option is not None:
                        out.append(Slot(f"h_{opt.ident}", p, opt.tlv_option.data_bytes, optional=True))
    # Metadata set by parser states' `do` crosses tail calls like the header pointers (the control reads it).
    written = {s.target.name for st in prog.parser.states.values() for s in ir.walk_stmts(st.do)
               if isinstance(s, ir.Assign) and isinstance(s.target, ir.MetaRef)}
    for name in sorted(written):
        width = prog.metadata[name]
        out.append(Slot(f"m_{name}", "", width, meta=ctype(width)))
    return out


def referenced(lines: list[str]) -> set[str]:
    return {m for line in lines for m in _NAME.findall(line)}


def incoming_reads(lines: list[str]) -> set[str]:
    """Names a parse node reads before it assigns them: only those need their value from an earlier program (a
    node that extracts a header assigns its pointer first, then selects on it)."""
    seen: set[str] = set()
    reads: set[str] = set()
    for line in lines:
        for m in _NAME.finditer(line):
            name = m.group(1)
            # metadata: every use counts as a read (a write under an `if` keeps the incoming value otherwise)
            if name.startswith("m_") or (name not in seen and not re.match(r" = [^=]", line[m.end():])):
                reads.add(name)
            seen.add(name)
    return reads


def _topo(em: Emitter, labels: list[str]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Longest distance from the start of every node, and its predecessors."""
    preds: dict[str, list[str]] = {lbl: [] for lbl in labels}
    for a in labels:
        for b in sorted(em.edges.get(a, ())):
            if b in preds:
                preds[b].append(a)
    depth: dict[str, int] = {}
    pending = {lbl: len(preds[lbl]) for lbl in labels}
    ready = [lbl for lbl in labels if not pending[lbl]]
    pos = {lbl: i for i, lbl in enumerate(labels)}
    while ready:
        ready.sort(key=pos.__getitem__)
        a = ready.pop(0)
        depth[a] = max((depth[p] + 1 for p in preds[a]), default=0)
        for b in sorted(em.edges.get(a, ())):
            if b in pending:
                pending[b] -= 1
                if not pending[b]:
                    ready.append(b)
    return depth, preds


def max_offsets(em: Emitter, labels: list[str], depth: dict[str, int], preds: dict[str, list[str]]) -> dict[str, int]:
    """The largest cursor offset at each node: saved offsets must stay within OFF_MAX."""
    by_ptr: dict[str, int] = {}
    for inst in em.prog.instances.values():
        if not inst.tlv_parent:
            for p in ([f"h_{inst.ident}_{i}" for i in range(inst.stack)] if inst.is_stack else [f"h_{inst.ident}"]):
                by_ptr[p] = inst.type.max_bytes
    size: dict[str, int] = {}
    for lbl, ptr in em.extracted.items():
        size[lbl] = by_ptr.get(ptr, 0)
    off: dict[str, int] = {}
    for lbl in sorted(labels, key=lambda x: depth[x]):
        off[lbl] = max((off[p] + size.get(p, 0) for p in preds[lbl]), default=0)
    return off


def plan(em: Emitter, nodes: list[ParseNode], control: list[str] | None = None) -> Split | None:
    """The programs a parser needs, or None when it fits one (the generated C is then exactly as without tail
    calls). `control` is the control and deparse C (for the stack estimate and what the last programs read);
    raises LimitError when a kernel limit cannot be met."""
    if len(nodes) <= NODES_PER_PROGRAM:
        return None
    prog = em.prog
    labels = [n.label for n in nodes]
    by_label = {n.label: n for n in nodes}
    node_id = {lbl: i for i, lbl in enumerate(labels)}
    depth, preds = _topo(em, labels)
    if len(depth) != len(labels):
        raise Unsupported("the unrolled parse graph has a cycle (internal error)")
    ordered = sorted(labels, key=lambda x: (depth[x], node_id[x]))
    segment = {lbl: i // NODES_PER_PROGRAM for i, lbl in enumerate(ordered)}
    count = (len(ordered) + NODES_PER_PROGRAM - 1) // NODES_PER_PROGRAM

    # Programs a packet passes through: tail calls on a path are one fewer.
    chain: dict[str, int] = {}
    for lbl in ordered:
        chain[lbl] = max((chain[a] + (segment[a] != segment[lbl]) for a in preds[lbl]), default=1)
        if chain[lbl] - 1 > MAX_TAIL_CALLS:
            st = prog.parser.states[lbl_state(lbl, prog)]
            raise LimitError(
                f"parse state '{st.name}' (unrolled: {lbl}) is reached after {chain[lbl] - 1} tail calls on its "
                "longest path "
                f"({NODES_PER_PROGRAM} unrolled parse states per program), over the kernel's limit of "
                f"{MAX_TAIL_CALLS} chained tail calls (MAX_TAIL_CALL_CNT)", st.loc)
    longest = max(chain.values())

    offsets = max_offsets(em, labels, depth, preds)
    for lbl in labels:
        if offsets[lbl] > OFF_MAX:
            st = prog.parser.states[lbl_state(lbl, prog)]
            raise LimitError(
                f"parse state '{st.name}' may start {offsets[lbl]} bytes into the frame: the parse state saved "
                f"across tail calls records offsets up to {OFF_MAX} bytes", st.loc)

    # may[n]: header pointers valid on some path to n (must[n], from the emitter: on every path).
    may: dict[str, frozenset[str]] = {}
    for lbl in ordered:
        acc: set[str] = set()
        for a in preds[lbl]:
            acc |= may[a]
            if a in em.extracted:
                acc.add(em.extracted[a])
        may[lbl] = frozenset(acc)
    all_slots = slots(em)
    control_lines = control or []

    fn = entry_name(prog.name)
    programs = [Program(i, fn if i == 0 else f"{fn}_p{i}", []) for i in range(count)]
    for lbl in ordered:
        programs[segment[lbl]].nodes.append(by_label[lbl])
    # keep the discovery order inside a program: the C reads in the order the parser was written
    for p in programs:
        p.nodes.sort(key=lambda n: node_id[n.label])

    targets: dict[int, list[str]] = {}
    local: dict[int, set[str]] = {}
    reads: dict[int, set[str]] = {}
    for p in programs:
        targets[p.index] = []
        new_nodes = []
        for n in p.nodes:
            def retarget(m: re.Match[str], here: int = p.index) -> str:
                t = m.group(1)
                if t in segment and segment[t] != here:
                    if t not in targets[here]:
                        targets[here].append(t)
                    return f"goto tc_{t};"
                return m.group(0)
            new_nodes.append(type(n)(n.label, n.comment, [_GOTO.sub(retarget, line) for line in n.lines]))
        p.nodes = new_nodes
        p.runs_control = any("parsed" in em.edges.get(n.label, ()) for n in p.nodes)
        body = [line for n in p.nodes for line in n.lines]
        p.errors = sorted({m for line in body for m in _PERR.findall(line)})
        local[p.index] = referenced(body) | (referenced(control_lines) if p.runs_control else set())
        reads[p.index] = set().union(*(incoming_reads(n.lines) for n in p.nodes)) | (
            referenced(control_lines) if p.runs_control else set())
    # needed[i]: state program i takes from the map, to read it or to pass it on (it holds that state in C
    # variables, so it stores it again before the next tail call)
    needed: dict[int, set[str]] = {}
    later_of: dict[int, set[str]] = {}
    for p in reversed(programs):
        later_of[p.index] = set().union(*(needed[q.index] for q in programs[p.index + 1:]))
        needed[p.index] = reads[p.index] | (local[p.index] & later_of[p.index])
    crossing: set[str] = set()
    for p in programs:
        # state a later program takes: the only state worth saving (or marking invalid) on the way there
        later = later_of[p.index]
        mine = local[p.index]
        entries = sorted((lbl for lbl in crossing if segment[lbl] == p.index), key=node_id.__getitem__)
        saved: set[str] = set()
        for t in sorted(targets[p.index], key=node_id.__getitem__):
            lines, used = save_lines(all_slots, mine & later, later if p.index == 0 else set(), may[t],
                                     em.must.get(t, frozenset()), node_id[t])
            saved |= used
            q = programs[segment[t]]
            lines += [f"bpf_tail_call(ctx, &{progs_map(prog)}, {q.index});",
                      "return XDP_ABORTED; /* the tail call failed: never skip the rest of the parse */"]
            p.exits.append(Trampoline(f"tc_{t}", t, node_id[t], q.index, q.fn, lines))
        exit_may = frozenset().union(*(may[t] for t in targets[p.index]))
        reloaded: set[str] = set()
        for e in entries:
            lines, used = reload_lines(all_slots, mine, needed[p.index], later, may[e], em.must.get(e, frozenset()),
                                       exit_may)
            reloaded |= used
            p.resumes.append(Resume(node_id[e], e, by_label[e].comment, lines))
        crossing |= set(targets[p.index])
        held = saved | reloaded | (referenced(control_lines) & mine if p.runs_control else set())
        p.stack = 8 * len(held) + (control_stack(em) if p.runs_control else BASE_STACK)
        if any("c3po_csum_var" in line for line in body + (control_lines if p.runs_control else [])):
            p.stack += 64  # the frame of c3po_csum_area (calls share the 512 bytes)
        if p.stack > STACK_LIMIT:
            raise LimitError(
                f"program {p.fn} (parse states {p.nodes[0].label}..{p.nodes[-1].label}) needs an estimated "
                f"{p.stack} bytes of stack, over the kernel's {STACK_LIMIT}-byte BPF stack: {len(held)} header "
                f"pointers and lengths live across its parse states ({', '.join(sorted(held)[:6])}"
                f"{', ...' if len(held) > 6 else ''}) at 8 bytes each, plus {p.stack - 8 * len(held)} for the "
                "control's locals", prog.parser.loc)

    taken = set().union(*(needed[p.index] for p in programs[1:]))
    used_slots = [s for s in all_slots if s.var in taken and (s.meta or any(s.owner in may[t] for t in crossing))]
    fields = [("__u32 node;", "the parse node to resume at"), ("__u16 cur;", "cursor offset")]
    fields += [(f"__u16 {s.var};", f"bytes of {s.owner}'s variable-length tail" if s.is_len
                else "offset, C3PO_OFF_NONE while invalid") for s in used_slots if not s.meta]
    fields += [(f"{s.meta} {s.var};", f"meta.{s.var[2:]}, set by a parser state") for s in used_slots if s.meta]
    meta_bytes = sum(16 if s.size > 64 else 8 for s in used_slots if s.meta)
    state_bytes = (8 + 2 * sum(not s.meta for s in used_slots) + 7) // 8 * 8 + meta_bytes
    if state_bytes > PERCPU_VALUE_MAX:
        raise LimitError(f"the parse state saved across tail calls needs {state_bytes} bytes, over the "
                         f"{PERCPU_VALUE_MAX}-byte limit of a per-CPU map value", prog.parser.loc)
    return Split(programs, fields, state_bytes, longest, progs_map(prog))


def lbl_state(lbl: str, prog: ir.Program) -> str:
    """The spec parser state of an unrolled node label (st_<state>[_<fill>...])."""
    name = lbl[3:]
    while name not in prog.parser.states and "_" in name:
        name = name.rsplit("_", 1)[0]
    return name


def save_lines(all_slots: list[Slot], local: set[str], untouched: set[str], may: frozenset[str],
               must: frozenset[str], node: int) -> tuple[list[str], set[str]]:
    """C that stores the state live at a node into c3po_parse before a tail call. Only this program's variables
    are stored: state it never touches is already in the map, except in the entry program (`untouched`: what
    later programs take), where the map still holds an earlier packet's state: that is marked invalid."""
    out = ["struct c3po_parse *ps = bpf_map_lookup_elem(&c3po_parse, &zero);", "if (!ps)",
           "\treturn XDP_ABORTED;", f"ps->node = {node};", "ps->cur = cur - data;"]
    used: set[str] = set()
    for s in all_slots:
        if s.meta:
            if s.var in local:
                used.add(s.var)
                out.append(f"ps->{s.var} = {s.var};")
            elif s.var in untouched:
                out.append(f"ps->{s.var} = 0; /* not set yet */")
            continue
        if s.owner in may and s.var not in local and s.var in untouched:
            out.append(f"ps->{s.var} = {'0' if s.is_len else 'C3PO_OFF_NONE'}; /* not parsed yet */")
        if s.owner not in may or s.var not in local:
            continue
        used.add(s.var)
        if s.is_len:
            out.append(f"ps->{s.var} = {s.var};")
        elif s.var in must and not s.optional:
            out.append(f"ps->{s.var} = {s.var} - data;")
        else:
            out.append(f"ps->{s.var} = {s.var} ? {s.var} - data : C3PO_OFF_NONE;")
    return out, used


def reload_lines(all_slots: list[Slot], local: set[str], needed: set[str], later: set[str], may: frozenset[str],
                 must: frozenset[str], exit_may: frozenset[str]) -> tuple[list[str], set[str]]:
    """C that reloads, at a resumed node, the state this program uses, with the bounds checks the verifier needs
    (it does not trust offsets read from a map). State this program passes on without touching and that is
    invalid at this node is marked invalid in the map: the map may still hold it from an earlier packet."""
    out: list[str] = []
    used: set[str] = set()
    for s in all_slots:
        if s.meta:
            if s.var in needed:
                used.add(s.var)
                out.append(f"{s.var} = ps->{s.var};")
            continue
        if s.var in needed and s.owner in may:
            used.add(s.var)
            if s.is_len:
                out.append(f"C3PO_RELOAD_LEN({s.var}, ps->{s.var}, {s.size});")
            elif s.var in must and not s.optional:
                out.append(f"C3PO_RELOAD_VALID({s.var}, ps->{s.var}, {s.size});")
            else:
                out.append(f"C3PO_RELOAD({s.var}, ps->{s.var}, {s.size});")
        elif s.var not in local and s.var in later and s.owner in exit_may and s.owner not in may:
            out.append(f"ps->{s.var} = {'0' if s.is_len else 'C3PO_OFF_NONE'}; /* invalid here, passed on */")
    return out, used


BASE_STACK = 64  # data, end, cur, the state pointers, verdict, egress and spills of temporaries


def control_stack(em: Emitter) -> int:
    """A coarse estimate of the stack the control and deparse take: metadata, hash buffers, the largest table
    key (apply blocks are disjoint scopes, so clang reuses their slots), L4 checksum snapshots, flags."""
    prog = em.prog
    meta = sum(16 if w > 64 else 8 for w in prog.metadata.values())
    keys = 0
    for lay in em.layouts.values():
        if lay.kind == "linear":
            keys = max(keys, 8 * max(lay.key_size, 1) + 8)
        else:
            keys = max(keys, (lay.key_size + 7) // 8 * 8 + 8 * lay.slots + 16)
    l4 = 0
    for _, name, pseudo in em.l4_requests:
        l4 += prog.instances[name].type.fixed_bytes + (32 if pseudo else 0)
    flags = 8 * (len(em.csum_flags) + len(em.l4_requests))
    hashes = 0 if em.hash_in_map else sum(hash_slot(n) for _, n in em.hash_buffers)
    return BASE_STACK + meta + hashes + keys + l4 + flags
