"""The plain, sorted view of a program that the XDP templates render: the parser and the control, as C.

All decisions happen in Python: how the parse graph is unrolled (one C label per parser state and header-stack
fill level, so loops become a DAG the verifier walks without back-edges; past 128 labels, tailcall.py splits it;
with few paths, a tree whose every path has its own copy of the control), how each table maps to a BPF map
(layout.py, keys.py), and how statements become C. Templates only lay the pieces out.

The program edits the frame in place: headers are packet pointers (NULL while invalid) and writes go straight to
the packet. What the emitter knows about the headers along each path (paths.py) decides where the rest of the
control is written once per branch; every path ends in the deparser (deparse.py). New headers are built from
constant images (images.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from c3po_compiler import hexpr, ir
from c3po_compiler.reorder import exits_before_lookups
from targets.c_bounds import range_cond

from . import crcpre, images, keys, tailcall
from . import layout as L
from . import paths as P
from .bitvec import DEBRUIJN, DEFAULT_RANK, BitVecLayout
from .cexpr import Scope, Translator, Unsupported, const, ctype, field_access, group_ptr, hash_slot, mask
from .ctext import DONE, SNAPSHOT, Done, Frame, HitMiss, Lines, ParseNode, elem_ptr, where
from .cuckoo import C1, C2, C3
from .deparse import Deparser
from .tlv import TLV_BUF, option_instances, walkers

PARSE_NODE_LIMIT = 8192
TREE_LEAVES = 8  # parse paths, at most, for a tree-shaped parser (one copy of the control per path)
FAST_STEPS = 4  # parse states one fast path's test covers, at most (Emitter.fast_paths)
LIKELY_HIT_STATEMENTS = 24  # statements, at most, on the path a straight-line likely hit copies (likely_hit)
HASH_STACK_MAX = 128  # bytes of hash inputs kept on the 512-byte BPF stack; past that, in the scratch map
LINEAR_TABLE_LIMIT = 65536
# Priority tables of at most this many entries are searched by an inlined loop; larger ones through bpf_loop. The
# verifier walks an inlined search once per entry and per way out of it, and the paths multiply with the rest of
# the program: a 16-entry table with two range keys read from a TLV option took it past 1,000,000 instructions
# (found by the random-spec campaign), the same at 8 entries 18,000, through bpf_loop 1,100.
LINEAR_INLINE_MAX = 8
# Larger priority tables are searched through bpf_loop a chunk at a time: the callback is verified once whatever
# the table size, and an inline chunk costs one indirect call per LINEAR_CHUNK entries instead of one per entry.
LINEAR_CHUNK = 64
# A raw action parameter's C "value" (layout.raw_params): the local holding its bytes in network order, behind a
# marker that only the assignment that copies it into the frame understands (anywhere else it is a C syntax error).
RAW = "@raw "
# Up to this size (and 4 key words) a priority table is searched by a global function instead: verified once
# apart from the program like the bpf_loop callback, but its key stays in registers (measured on the ACL
# benchmark's 32 rules: 44 ns against 71 ns through bpf_loop).
LINEAR_GLOBAL_MAX = 256


def linear_search(t: ir.Table, lay: L.TableLayout) -> str:
    """How a priority table is searched: 'inline' (a loop in the program), 'global' or 'chunks' (bpf_loop)."""
    if t.size <= LINEAR_INLINE_MAX:
        return "inline"
    return "global" if t.size <= LINEAR_GLOBAL_MAX and lay.key_size <= 4 else "chunks"

XDP_FOR_VERDICT = {"drop": "XDP_DROP", "to_host": "XDP_PASS"}


@dataclasses.dataclass(frozen=True)
class FastPath:
    """One common case through the parser, tested at once (Emitter.fast_paths)."""

    leaf: str
    steps: list[tuple[ir.Instance, str, int]]  # each header, its pointer, its offset from cur
    test: str
    total: int  # bytes of all its headers
    knows: dict[tuple[str, str], int]  # the field values its copy of the control reads as constants


class Emitter:
    def __init__(self, prog: ir.Program) -> None:
        # Tests that make a lookup irrelevant run before it (the TTL test before the router-MAC lookup):
        # c3po_compiler/reorder.py, which says why no packet, counter or register can tell.
        self.prog = prog = exits_before_lookups(prog)
        self.layouts = {n: L.table_layout(prog, t) for n, t in sorted(prog.tables.items())}
        self.objects = touch_objects(prog)
        self.hash_buffers: list[tuple[str, int]] = []
        self.hash_in_map = False  # see control(): hash inputs move to the scratch map past HASH_STACK_MAX bytes
        self.placed: dict[str, int] = {}  # new header -> its offset, on a path after insert_now
        self.prehashed: dict[int, str] = {}  # id(ir.Hash) -> C local, on a path after insert_now (prehash)
        self.prehash_count = 0
        self.crc_starts: dict[int, tuple[str, str, int]] = {}  # Scope.crc_start, in an action's case of an apply
        self.pending: dict[str, images.Image] = {}  # placed headers whose constant bytes are not written yet
        # images written, with the lines they were written to and where those lines ended: a checksum taken with
        # nothing but comments in between sums their constant words at compile time (deparse.csum_updates)
        self.built: dict[str, tuple[images.Image, list[str], int]] = {}
        self.csum_flags: list[tuple[str, str]] = []  # (flag var, instance name)
        self.l4_requests: list[tuple[str, str, str | None]] = []  # (flag var, l4 instance, pseudo-header ip)
        self.perr_used: set[str] = set()
        # Parse DAG facts for "definitely valid" headers: a header extracted on every path to a point needs no
        # NULL check there (fewer branches for the CPU and fewer states for the verifier).
        self.set_valid_slots: dict[str, tuple[int, int]] = {}  # pointer -> (offset in c3po_scratch.hdr, bytes)
        self.invalidated: set[str] = set()  # pointers some set_invalid may clear
        self._collect_validity_changes()
        self.dp = Deparser(self)
        self.walkers = walkers(prog)
        # Whether a packet can be forwarded, and whether anything writes the per-CPU state record (egress port,
        # touched counters/registers): a program that does neither never looks the record up.
        # (The built-in actions are in prog.actions whether or not anything uses them: only the user's count.)
        bodies = [prog.control, *(a.body for a in prog.actions.values() if not a.builtin)]
        self.uses_forward = any((isinstance(s, ir.SetVerdict) and s.verdict == ir.Verdict.FORWARD) or
                                (isinstance(s, ir.CallAction) and s.action == "forward")
                                for b in bodies for s in ir.walk_stmts(b)) or any(
            "forward" in t.actions or t.default.action == "forward" for t in prog.tables.values())
        self.uses_reflect = any((isinstance(s, ir.SetVerdict) and s.verdict == ir.Verdict.REFLECT) or
                                (isinstance(s, ir.CallAction) and s.action == "reflect")
                                for b in bodies for s in ir.walk_stmts(b)) or any(
            "reflect" in t.actions or t.default.action == "reflect" for t in prog.tables.values())
        self.uses_state = self.uses_forward or bool(self.objects)
        # Validity bits for control conditions: see cexpr.Translator.x_Valid and paths.outcomes.
        # Only headers the control tests get a bit: a bit the verifier carries for nothing keeps it from merging
        # parse paths that meet again (their words differ).
        tested = {x.instance for b in [prog.control, *(a.body for a in prog.actions.values())]
                  for st in ir.walk_stmts(b) for e in ir.stmt_exprs(st) for x in ir.walk_expr(e)
                  if isinstance(x, ir.Valid)}
        tested |= {x.instance for t in prog.tables.values() for k in t.keys for x in ir.walk_expr(k.expr)
                   if isinstance(x, ir.Valid)}
        self.tested = frozenset(p for inst, p in self.deparse_elements() if inst.name in tested)
        self.valid_bits = {p: i for i, p in enumerate(p for inst, p in self.deparse_elements()
                                                      if inst.name in tested)}
        if len(self.valid_bits) > 64:
            self.valid_bits = {}
        self.exact = frozenset(self.valid_bits)
        self.edges: dict[str, set[str]] = {}
        self.extracted: dict[str, str] = {}
        self.must: dict[str, frozenset[str]] = {}
        self.control_valid: frozenset[str] = frozenset()
        # Parser as a tree (see tree_worth): each parse path ends in its own copy of the control (`leaves`: the
        # label a path's accept jumps to -> the last parse state before it).
        self.tree = False
        self.parse_leaves: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        # Fast leaves (fast_paths), and the general leaves beside them: per leaf, the values its parse path left
        # some fields (one: read as a constant; comparisons that give one answer for all of them fold); while a
        # leaf's control is emitted, its own. At most TREE_LEAVES leaves in all.
        self.fast_leaves: set[str] = set()
        self.leaf_values: dict[str, dict[tuple[str, str], frozenset[int]]] = {}
        self.path_values: dict[tuple[str, str], frozenset[int]] = {}
        self.fast_budget = self.fast_left = 0
        self.stable_fields = self._stable_fields()
        # Bytes known to be in the frame past `cur` when a parse state starts (an earlier bounds check on every
        # path to it covered them), and what each state needs: (bytes extracted, lookahead bytes, variable).
        self.avail: dict[str, int] = {}
        self.needs: dict[str, tuple[int, int, bool]] = {}
        if len(self.parser_nodes()) > tailcall.NODES_PER_PROGRAM:  # first pass: learn the DAG, then what is valid where
            # The parser is split over tail calls (tailcall.py), which hand over header pointers, not this word:
            # valid(...) tests the pointers, and the worlds follow the verifier's view of those tests.
            self.valid_bits = {}
            self.exact = frozenset()
        else:
            if self.tree_worth():
                self.tree = True
                self.fast_budget = TREE_LEAVES - self._path_counts()[0]  # (before the DAG gives way to the tree)
                self.edges, self.extracted, self.needs = {}, {}, {}
                self.parser_nodes()
            self._compute_avail()
        self._compute_must()
        self.hash_buffers.clear()
        self.perr_used.clear()
        start = next(iter(self.edges), "parsed")
        self.parse_family: P.Family = P.parse_family(self.edges, self.extracted, start,
                                                     self.prog.default_verdict)
        if self.tree:
            self.parse_family = frozenset(self.leaf_world(leaf) for leaf in self.parse_leaves)
        self.tails_left = P.TAIL_BUDGET

    def _topo(self) -> list[str]:
        """The parse states in topological order (the unrolled parse graph is a DAG)."""
        indeg: dict[str, int] = {lbl: 0 for lbl in self.edges}
        for succs in self.edges.values():
            for b in succs:
                if b in indeg:
                    indeg[b] += 1
        ready = [lbl for lbl in self.edges if not indeg[lbl]]
        order: list[str] = []
        while ready:
            lbl = ready.pop()
            order.append(lbl)
            for b in sorted(self.edges[lbl]):
                if b in indeg:
                    indeg[b] -= 1
                    if not indeg[b]:
                        ready.append(b)
        return order

    def tree_worth(self) -> bool:
        """Whether to write the parser as a tree, each parse state once per path that reaches it, each path
        ending in its own copy of the control. The copy then knows exactly which headers are valid and where they
        are (pointers are the frame start plus a constant on fixed-size paths): valid() folds, field accesses need
        no NULL test, no pointer has to be merged where paths meet (clang materialises every merged pointer on
        every incoming edge), and the verifier walks straight-line paths. Worth it while the paths are few, and
        when the control tests the validity of a header some parse paths extract and others do not (so it
        branches on the parse path anyway); otherwise the copies would only multiply the verifier's work (a
        linear table search is walked once per copy)."""
        start = next(iter(self.edges), "parsed")
        fam = P.parse_family(self.edges, self.extracted, start, self.prog.default_verdict)
        if not fam or not (self.tested & (frozenset().union(*(w.parsed for w in fam)) - P.must_valid(fam))):
            return False
        leaves, states = self._path_counts()
        return 1 < leaves <= TREE_LEAVES and states <= tailcall.NODES_PER_PROGRAM

    def _path_counts(self) -> tuple[int, int]:
        """Over the parse DAG: the parse paths (the leaves a tree has) and the states a tree unrolls."""
        start = next(iter(self.edges), "parsed")
        paths: dict[str, int] = {start: 1}  # parse paths from the start state to each state
        leaves = 0
        for lbl in self._topo():
            n = paths.get(lbl, 0)
            for b in self.edges[lbl]:
                if b == "parsed":
                    leaves += n
                elif b in self.edges:
                    paths[b] = paths.get(b, 0) + n
        return leaves, sum(paths.values())

    def _stable_fields(self) -> frozenset[tuple[str, str]]:
        """(instance, field) pairs no statement can change once parsed: the field is never assigned and the
        header is never made valid or invalid. What a parse path learnt of them holds in the whole control."""
        prog = self.prog
        written: set[tuple[str, str]] = set()
        touched: set[str] = set()
        for body in [prog.control, *(a.body for a in prog.actions.values())]:
            for s in ir.walk_stmts(body):
                if isinstance(s, ir.Assign) and isinstance(s.target, ir.FieldRef):
                    written.add((s.target.instance, s.target.field_name))
                elif isinstance(s, ir.SetValid):
                    touched.add(s.instance)
        return frozenset((n, f.name) for n, inst in prog.instances.items()
                         if not inst.is_stack and not inst.tlv_parent and n not in touched
                         for f in inst.type.fields if (n, f.name) not in written)

    def leaf_world(self, leaf: str) -> P.World:
        hdrs = set()
        lbl: str | None = self.parse_leaves[leaf]
        while lbl is not None:
            if lbl in self.extracted:
                hdrs.add(self.extracted[lbl])
            lbl = self.parent.get(lbl)
        return P.World(frozenset(hdrs), frozenset(hdrs), frozenset(), verdict=self.prog.default_verdict)

    def _compute_avail(self) -> None:
        out: dict[str, int] = {}
        preds: dict[str, list[str]] = {}
        for src, succs in self.edges.items():
            for b in succs:
                preds.setdefault(b, []).append(src)
        for lbl in self._topo():
            n = min((out[p] for p in preds.get(lbl, [])), default=0)
            self.avail[lbl] = n
            fixed, look, variable = self.needs.get(lbl, (0, 0, True))
            n = 0 if variable else max(n, fixed) - fixed
            out[lbl] = max(n, look)

    def _compute_must(self) -> None:
        preds: dict[str, list[str]] = {}
        for a, succs in self.edges.items():
            for b in succs:
                preds.setdefault(b, []).append(a)
        labels = list(self.edges)
        every = frozenset(self.extracted.values())
        must = {lbl: (frozenset() if not preds.get(lbl) else every) for lbl in labels}
        must["parsed"] = every
        changed = True
        while changed:
            changed = False
            for lbl in [*labels, "parsed"]:
                ins = [must.get(p, every) | ({self.extracted[p]} if p in self.extracted else set())
                       for p in preds.get(lbl, [])]
                new = frozenset.intersection(*ins) if ins else frozenset()
                if new != must.get(lbl):
                    must[lbl] = new
                    changed = True
        self.must = must
        self.control_valid = (must["parsed"] if preds.get("parsed") else frozenset()) - self.invalidated




    def _collect_validity_changes(self) -> None:
        bodies = [self.prog.control, *(a.body for a in self.prog.user_actions.values())]
        off = 0
        for body in bodies:
            for s in ir.walk_stmts(body):
                if not isinstance(s, ir.SetValid):
                    continue
                ptr = self.setvalid_ptr(s)
                if not s.valid:
                    self.invalidated.add(ptr)
                elif ptr not in self.set_valid_slots:
                    n = self.prog.instances[s.instance].type.fixed_bytes
                    self.set_valid_slots[ptr] = (off, n)
                    off += (n + 7) // 8 * 8

    def setvalid_ptr(self, s: ir.SetValid) -> str:
        inst = self.prog.instances[s.instance]
        if inst.is_stack and s.index is None:
            raise Unsupported(f"set_valid/set_invalid on stack '{s.instance}' needs an index")
        return elem_ptr(inst, s.index)

    def fresh_bit(self, ptr: str) -> str | None:
        """Bit of `fresh` that says the header behind `ptr` was made by set_valid (it lives in scratch memory),
        None when the program cannot make it or has too many such headers to track (then no in-place deparse)."""
        if ptr not in self.set_valid_slots or not self.track_fresh:
            return None
        return f"(1ULL << {list(self.set_valid_slots).index(ptr)})"

    @property
    def track_fresh(self) -> bool:
        return 0 < len(self.set_valid_slots) <= 64

    @property
    def relayout(self) -> bool:
        return bool(self.set_valid_slots or self.invalidated)

    # ---- names
    def header_ptrs(self) -> list[str]:
        out = []
        for inst in sorted(self.prog.instances.values(), key=lambda i: i.name):
            if inst.tlv_parent and not self.prog.instances[inst.tlv_parent].walk_tlv:
                continue
            out += [elem_ptr(inst, i) for i in range(inst.stack)] if inst.is_stack else [elem_ptr(inst, None)]
        return out

    def group_ptrs(self) -> list[str]:
        out = []
        for inst in sorted(self.prog.instances.values(), key=lambda i: i.name):
            if inst.tlv_parent or not inst.type.groups:
                continue
            ptrs = [elem_ptr(inst, i) for i in range(inst.stack)] if inst.is_stack else [elem_ptr(inst, None)]
            out += [group_ptr(p, g.name) for p in ptrs for g in inst.type.groups]
        return out

    def varlen_vars(self) -> list[str]:
        out = []
        for inst in sorted(self.prog.instances.values(), key=lambda i: i.name):
            if inst.type.varlen and not inst.tlv_parent:
                out += [f"vl_{p[2:]}" for p in ([elem_ptr(inst, i) for i in range(inst.stack)] if inst.is_stack
                                                  else [elem_ptr(inst, None)])]
        return out

    def control_ptr(self, name: str, index: int | str | None) -> str:
        inst = self.prog.instances[name]
        if inst.is_stack:
            if not isinstance(index, int):
                raise Unsupported(f"'{name}' is a header stack: index it with a constant")
            return elem_ptr(inst, index)
        return elem_ptr(inst, None)

    def translator(self, params: dict[str, str] | None = None, fam: P.Family = None,
                   exact: bool = False) -> Translator:
        """`exact`: the expression is evaluated in `fam` itself; otherwise anywhere in a statement that may run
        set_invalid first (so headers some set_invalid may clear are not assumed valid)."""
        valid = self.control_valid
        invalid: frozenset[str] = frozenset()
        if fam is not None:
            valid = P.must_valid(fam) if exact else valid | (P.must_valid(fam) - self.invalidated)
            if exact and fam:  # NULL in every world the verifier explores: a constant, not a test
                invalid = frozenset(p for _, p in self.deparse_elements()) - frozenset().union(
                    *(w.valid for w in fam))
        return Translator(Scope(self.prog, self.control_ptr, dict(params or {}), hash_buffers=self.hash_buffers,
                                valid=valid, valid_bits=self.valid_bits, invalid=invalid, values=self.path_values,
                                hash_in_map=self.hash_in_map, precomputed=self.prehashed,
                                crc_start=self.crc_starts))

    # ---- parser
    def parser_nodes(self) -> list[ParseNode]:
        prog = self.prog
        stacks = sorted(n for n, i in prog.instances.items() if i.is_stack)
        start = (prog.parser.start, tuple(0 for _ in stacks))
        labels: dict[tuple[tuple[str, tuple[int, ...]], str | None], str] = {}  # (state, counts), tree parent
        order: list[tuple[tuple[str, tuple[int, ...]], str | None]] = []

        names: set[str] = set()
        self.parse_leaves, self.parent = {}, {}
        self.fast_leaves, self.leaf_values, self.fast_left = set(), {}, self.fast_budget

        def label(node: tuple[str, tuple[int, ...]], parent: str | None = None) -> str:
            name, counts = node
            if name == "accept":
                if not self.tree:
                    return "parsed"
                leaf = f"parsed_{parent}"
                self.parse_leaves.setdefault(leaf, parent or "")
                return leaf
            if name == "reject":
                self.perr_used.add("reject")
                return "perr_reject"
            key = (node, parent if self.tree else None)
            if key not in labels:
                base = f"st_{name}" + "".join(f"_{c}" for c in counts) if stacks else f"st_{name}"
                lbl = base
                k = 1
                while lbl in names:  # the same state on another path (tree)
                    k += 1
                    lbl = f"{base}__{k}"
                names.add(lbl)
                labels[key] = lbl
                if self.tree and parent is not None:
                    self.parent[lbl] = parent
                order.append(key)
                if len(order) > PARSE_NODE_LIMIT:
                    raise Unsupported(f"the parse graph unrolls into more than {PARSE_NODE_LIMIT} states "
                                      "(header stacks multiply them); the xdp target's limit (past 128 it splits "
                                      "the parser over tail-called programs)")
            return labels[key]

        label(start)
        nodes: list[ParseNode] = []
        i = 0
        while i < len(order):
            key = order[i]
            i += 1
            nodes.append(self.parse_node(key[0], labels[key], stacks, label))
        return nodes

    def parse_node(self, node: tuple[str, tuple[int, ...]], lbl: str, stacks: list[str],
                   label: Callable[..., str]) -> ParseNode:
        prog = self.prog
        name, counts = node
        st = prog.parser.states[name]
        out = Lines(depth=1)
        self.edges.setdefault(lbl, set())
        known = set(self.must.get(lbl, frozenset()))
        avail = self.avail.get(lbl, 0)  # bytes past cur an earlier check covered
        cur_ptr: dict[str, str] = {}
        new_counts = list(counts)
        if st.extract:
            inst = prog.instances[st.extract]
            if inst.is_stack:
                k = stacks.index(inst.name)
                if counts[k] >= inst.stack:
                    self.perr_used.add("stack_overflow")
                    out.add(f"goto perr_stack_overflow; /* '{inst.name}' holds {inst.stack} elements */")
                    return ParseNode(lbl, f"parser state {name} ({where(prog, st.loc)})", out.out)
                ptr = elem_ptr(inst, counts[k])
                new_counts[k] += 1
            else:
                ptr = elem_ptr(inst, None)
            cur_ptr[inst.name] = ptr
            self.extracted[lbl] = ptr
            ht = inst.type

            def verify(fixed_only: bool) -> None:
                for v in st.verify:
                    vinst = prog.instances[v]
                    vptr = cur_ptr.get(v) or self.control_ptr(v, 0 if vinst.is_stack else None)
                    self.perr_used.add("checksum")
                    guard = "" if vptr in known else f"{vptr} && "
                    total = self.csum_sum(vinst, vptr, fixed_only=fixed_only and vptr == ptr)
                    out.add(f"if ({guard}!c3po_csum_ok({total}))")
                    out.add("\tgoto perr_checksum;")

            walk = bool(ht.varlen and inst.walk_tlv and ht.varlen.tlv is not None)
            if ht.varlen and not walk:  # the common cases first, each a parse path of its own (fast_paths)
                for fp in self.fast_paths(st, inst, lbl, new_counts, label, avail):
                    self.fast_block(out, fp, known, verify)
            if avail < ht.fixed_bytes:
                self.perr_used.add("truncated")
                out.add(f"if (cur + {ht.fixed_bytes} > end)")
                out.add("\tgoto perr_truncated;")
            else:
                out.add(f"/* {ht.fixed_bytes} bytes: covered by an earlier bounds check on every path here */")
            avail = 0 if ht.groups or ht.varlen else max(avail, ht.fixed_bytes) - ht.fixed_bytes
            out.add(f"{ptr} = cur;")
            if ptr in self.valid_bits:
                out.add(f"c3po_valid |= 1ULL << {self.valid_bits[ptr]};")
            out.add(f"cur += {ht.fixed_bytes};")
            known.add(ptr)
            for g in ht.groups:
                tr_g = Translator(Scope(prog, lambda n, i: ptr, local_type=ht, hash_buffers=self.hash_buffers,
                                      hash_in_map=self.hash_in_map))
                gp = group_ptr(ptr, g.name)
                out.open(f"if ({tr_g.expr(g.when)}) {{ /* optional group {g.name} ({where(prog, g.loc)}) */")
                out.add(f"if (cur + {g.bytes} > end)")
                out.add("\tgoto perr_truncated;")
                out.add(f"{gp} = cur;")
                out.add(f"cur += {g.bytes};")
                out.close()

            if not ht.varlen:
                verify(False)
            else:
                vl = ht.varlen
                tr = Translator(Scope(prog, lambda n, i: ptr, local_type=ht, hash_buffers=self.hash_buffers,
                                      hash_in_map=self.hash_in_map))
                self.perr_used.add("bad_length")
                vlv, length = f"vl_{ptr[2:]}", tr.expr(vl.length)
                # Most frames have no variable part (IPv4 without options): its checks and the checksum's variable
                # part only where there is one. Measured on the router's IPv4 frames: 2.5-6 ns less per packet.
                if not walk:  # one field tested first for the value with no variable part (IHL 5), where it can be
                    zero = empty_tail_test(ht, tr)
                    out.open(f"if ({f'{zero} && ' if zero else ''}{length} == 0) {{ /* no variable part: "
                             f"{ht.fixed_bytes} bytes */")
                    verify(True)
                    out.close("} else {")
                    out.depth += 1
                out.add(f"{vlv} = {length}; /* {vl.name}: at most {vl.max_bytes} bytes */")
                out.add(f"if ({vlv} > {vl.max_bytes})")
                out.add("\tgoto perr_bad_length;")
                out.add(f"if (cur + {vlv} > end)")
                out.add("\tgoto perr_truncated;")
                if walk:
                    self.tlv_walk(out, inst, ptr)
                out.add(f"cur += {vlv};")
                verify(False)
                if not walk:
                    out.close()

        def ptr_in_parser(n: str, index: int | str | None) -> str:
            inst = prog.instances[n]
            if not inst.is_stack:
                return elem_ptr(inst, None)
            filled = new_counts[stacks.index(n)]
            if index == "last":
                return elem_ptr(inst, filled - 1) if filled else "((__u8 *)0)"
            if not isinstance(index, int):
                raise Unsupported(f"'{n}' is a header stack: index it with a constant or 'last'")
            return elem_ptr(inst, index)

        def nxt(state: str) -> str:
            target: str = label((state, tuple(new_counts)), lbl)  # type: ignore[operator]
            self.edges[lbl].add(target)
            return target

        tr = Translator(Scope(prog, ptr_in_parser, hash_buffers=self.hash_buffers, valid=frozenset(known),
                              hash_in_map=self.hash_in_map))
        self.stmts(out, st.do, tr)  # metadata assignments and if (the front end allows nothing else)
        look = 0
        if st.select:
            for e in st.select:
                for sub in ir.walk_expr(e):
                    if isinstance(sub, ir.Lookahead):
                        look = max(look, (sub.offset + sub.bits + 7) // 8)
            if look > avail:
                self.perr_used.add("truncated")
                out.add(f"if (cur + {look} > end) /* lookahead */")
                out.add("\tgoto perr_truncated;")
            raw = raw_select(st, prog, tr, ptr_in_parser)
            if raw is not None:
                ptr, off, width = raw
                sel = st.select[0]
                assert isinstance(sel, ir.FieldRef)
                out.open(f"switch (*(__u{width} *)({ptr} + {off})) {{ /* {sel.instance}.{sel.field_name} as the packet "
                         "holds it: the case values byte-swapped */")
                for case in st.cases:
                    value = case.keyset[0].a & mask(width)
                    swapped = int.from_bytes(value.to_bytes(width // 8, "big"), "little")
                    out.add(f"case {swapped:#x}: /* {value:#x} ({where(prog, case.loc)}) */")
                    out.add(f"\tgoto {nxt(case.next)};")
                out.add("default:")
                out.add(f"\tgoto {nxt(st.default)};")
                out.close()
            else:
                sels = []
                for j, e in enumerate(st.select):
                    out.add(f"{ctype(e.width)} sel{j} = {tr.expr(e)};")
                    sels.append((f"sel{j}", e.width))
                for case in st.cases:
                    conds = [keyset_cond(v, w, k) for (v, w), k in zip(sels, case.keyset, strict=True)]
                    conds = [c for c in conds if c != "1"] or ["1"]
                    out.add(f"if ({' && '.join(conds)}) /* {where(prog, case.loc)} */")
                    out.add(f"\tgoto {nxt(case.next)};")
                out.add(f"goto {nxt(st.default)};")
        else:
            out.add(f"goto {nxt(st.default)};")
        ext = prog.instances[st.extract].type if st.extract else None
        self.needs[lbl] = (ext.fixed_bytes if ext else 0, look if st.select else 0,
                           bool(ext and (ext.groups or ext.varlen)))
        out.out = ["\t{", *("\t" + x for x in out.out), "\t}"]
        return ParseNode(lbl, f"parser state {name} ({where(prog, st.loc)})", out.out)

    def fast_paths(self, st: ir.ParserState, inst: ir.Instance, lbl: str, counts: list[int],
                   label: Callable[..., str], avail: int) -> list[FastPath]:
        """Parse paths of their own for the common cases through a header with a variable part (IPv4 with IHL 5):
        from this state, each case that a single value selects (or the default, with no select) followed through
        states that extract one fixed header each (or one whose variable part is empty) and take their first such
        case, up to accept. One test at the state's start covers the whole path -- one bounds check for all its
        headers, the length fields' empty values, the cases' values (the benchmark ACL's `data + 42 <= end &&
        ip[0] & 0xf == 5 && ip[9] == 17`, where the general code checks each header's bounds apart and computes the
        options' length) -- and jumps to the path's own copy of the control, in which the values it tested read
        as constants (the router's `ihl != 5` folds away) and, with no helper call for a variable part in between,
        clang keeps the checksum's loads in registers. The test only steers: a frame that passes it would take
        the same path through the general code, which a frame that fails it takes, testing everything in the
        spec's order, so parse errors and their precedence do not change. At most TREE_LEAVES leaves in all."""
        if not self.tree or self.fast_left <= 0:
            return []
        paths: list[FastPath] = []
        for first in self._fast_cases(st, inst):
            if self.fast_left <= 0:
                break
            steps: list[tuple[ir.Instance, int]] = [(inst, 0)]
            facts: list[dict[str, int]] = [first[1]]
            exclusive, off, node_lbl, nxt, varlens = first[2], inst.type.fixed_bytes, lbl, first[0], 1
            chain_lbls = [lbl]
            while nxt != "accept":
                nst = self.prog.parser.states.get(nxt)
                ninst = self.prog.instances.get(nst.extract or "") if nst else None
                if nst is None or ninst is None or len(steps) >= FAST_STEPS or nst.verify or ninst.type.groups or \
                        any(i is ninst for i, _ in steps):
                    break
                cases = self._fast_cases(nst, ninst)  # (none for a stack, a TLV option, a walked TLV area)
                if not cases:
                    break
                node_lbl = label((nxt, tuple(counts)), node_lbl)
                chain_lbls.append(node_lbl)
                steps.append((ninst, off))
                facts.append(cases[0][1])
                varlens += ninst.type.varlen is not None
                exclusive = exclusive and cases[0][2]
                off += ninst.type.fixed_bytes
                nxt = cases[0][0]
            if nxt != "accept":
                continue
            paths.append(self._fast_path(steps, facts, chain_lbls, off, avail, exclusive and varlens == 1))
        return paths

    def _fast_cases(self, st: ir.ParserState, inst: ir.Instance) -> list[tuple[str, dict[str, int], bool]]:
        """A state's transitions a fast path can take: (next state, the values of the header's fields it
        needs, whether no other case or the default goes to the same state). With no select, the default; else
        each case of single values (or `_`) that no earlier case can match, given those values. The state's
        header has no variable part there: its length field's empty value is one of the values. Nothing where the
        select reads anything but the header's own fixed fields, or the length has no empty value."""
        if st.do or inst.is_stack or inst.tlv_parent or any(isinstance(e, ir.Lookahead) for x in st.select
                                                            for e in ir.walk_expr(x)):
            return []
        ht = inst.type
        base: dict[str, int] = {}
        if ht.varlen:
            value = _empty_tail_value(ht.varlen.length, ht)
            ref = next((e for e in ir.walk_expr(ht.varlen.length) if isinstance(e, ir.FieldRef)), None)
            if value is None or ref is None or (inst.walk_tlv and ht.varlen.tlv is not None):
                return []
            base[ref.field_name] = value
        if not st.select:
            return [(st.default, base, True)]
        fields: list[ir.Field] = []
        for e in st.select:
            f = ht.field(e.field_name) if isinstance(e, ir.FieldRef) and e.instance == inst.name and \
                e.group is None else None
            if f is None:
                return []
            fields.append(f)
        out = []
        for i, case in enumerate(st.cases):
            if any(k.kind not in ("value", "any") for k in case.keyset):
                continue
            vals = dict(base)
            clash = False
            for f, k in zip(fields, case.keyset, strict=True):
                if k.kind == "value":
                    v = k.a & mask(f.width)
                    clash |= vals.setdefault(f.name, v) != v
            if clash or any(all(f.name not in vals or k.selects(vals[f.name])
                                    for f, k in zip(fields, c.keyset, strict=True)) for c in st.cases[:i]):
                continue  # (an earlier case may match these values: it would win)
            alone = all(c.next != case.next for j, c in enumerate(st.cases) if j != i) and st.default != case.next
            out.append((case.next, vals, alone))
        return out

    def _fast_path(self, steps: list[tuple[ir.Instance, int]], facts: list[dict[str, int]], chain: list[str],
                   total: int, avail: int, exclusive: bool) -> FastPath:
        """Register the path's leaf and what it and the general leaf beside it know (see fast_paths)."""
        first, last = chain[0], chain[-1]
        leaf = f"parsed_{last}__fixed" if len(chain) == 1 else f"parsed_{last}__fixed_{first}"
        self.fast_left -= 1
        self.parse_leaves[leaf] = last
        self.edges.setdefault(last, set()).add(leaf)
        self.fast_leaves.add(leaf)
        terms = [f"cur + {total} <= end"] if avail < total else []
        for (inst, off), vals in zip(steps, facts, strict=True):
            ht, where_ = inst.type, "cur" if off == 0 else f"(cur + {off})"
            named = {(inst.name, f): v for f, v in vals.items()}
            byte = one_byte_test(ht, where_, named) if len(named) > 1 else None
            if byte:
                terms.append(byte)
                continue
            fields = [(f, v) for f, v in ((ht.field(n), v) for n, v in vals.items()) if f is not None]
            terms += [f"({field_access(f.offset, f.width).get(where_)}) == {const(v, f.width)}"
                      for f, v in sorted(fields, key=lambda fv: fv[0].offset)]
        known = {(inst.name, f): v for (inst, _), vals in zip(steps, facts, strict=True) for f, v in vals.items()
                 if (inst.name, f) in self.stable_fields}
        self.leaf_values[leaf] = {k: frozenset({v}) for k, v in known.items()}
        # The general leaf beside it (the same states through the general code): the first header's length
        # field holds a value whose variable part fits its bound (others end in bad_length). When that header is
        # the path's only one with a variable part and each case is the only way to its next state, a frame
        # there failed the fast test on that field alone (the bounds are the same sum; a case's values failing
        # would have taken another state): not its empty value either, and the cases' values hold there too.
        inst0 = steps[0][0]
        ht0 = inst0.type
        assert ht0.varlen is not None
        ref = next(e for e in ir.walk_expr(ht0.varlen.length) if isinstance(e, ir.FieldRef))
        general = {k: frozenset({v}) for k, v in known.items() if exclusive and k != (inst0.name, ref.field_name)}
        f0 = ht0.field(ref.field_name)
        if f0 is not None and (inst0.name, f0.name) in self.stable_fields:
            try:  # (a value the length cannot be computed for: nothing said)
                fits = {x for x in range(1 << f0.width)
                        if hexpr.eval_header_expr(ht0.varlen.length, {f0.name: x}) <= ht0.varlen.max_bytes}
                general[(inst0.name, f0.name)] = frozenset(fits - ({facts[0][f0.name]} if exclusive else set()))
            except hexpr.HeaderExprError:
                pass
        merged = dict(self.leaf_values.get(f"parsed_{last}", {}))  # (another path's facts hold there too)
        for k, v in general.items():
            merged[k] = merged[k] & v if k in merged else v
        self.leaf_values[f"parsed_{last}"] = merged
        return FastPath(leaf, [(inst, elem_ptr(inst, None), off) for inst, off in steps], " && ".join(terms),
                        total, known)

    def fast_block(self, out: Lines, fp: FastPath, known: set[str], verify: Callable[[bool], None]) -> None:
        """The fast path's test and, behind it, what the general code would do on that path: header pointers,
        validity bits, the first header's checksum over its fixed part (the only check that can still fail)."""
        names = ", ".join(i.name for i, _, _ in fp.steps)
        knows = ", ".join(f"{n}.{f} = {v}" for (n, f), v in sorted(fp.knows.items()))
        out.open(f"if ({fp.test}) {{ /* the common case first: {names}, no variable part: a parse path of its own, "
                 "with its own copy of the control" + (f", which knows {knows}" if knows else "") + " */")
        for k, (_, ptr, off) in enumerate(fp.steps):
            out.add(f"{ptr} = {'cur' if off == 0 else f'cur + {off}'};")
            if ptr in self.valid_bits:
                out.add(f"c3po_valid |= 1ULL << {self.valid_bits[ptr]};")
            if k == 0:
                known.add(ptr)
                verify(True)
        out.add(f"cur += {fp.total};")
        out.add(f"goto {fp.leaf};")
        out.close()

    def deparse_elements(self) -> list[tuple[ir.Instance, str]]:
        out = []
        for name in self.prog.deparse:
            inst = self.prog.instances[name]
            if inst.tlv_parent:
                continue
            ptrs = [elem_ptr(inst, i) for i in range(inst.stack)] if inst.is_stack else [elem_ptr(inst, None)]
            out += [(inst, p) for p in ptrs]
        return out




    def check_l4(self, inst: ir.Instance, pseudo: str | None) -> None:
        ht = inst.type
        if ht.fixed_bytes % 2 or ht.groups:
            raise Unsupported(f"incremental checksum over '{inst.name}' (odd size or optional groups)")
        if pseudo is not None:
            for fname in ("src", "dst"):
                f = self.prog.instances[pseudo].type.field(fname)
                if f is None or f.offset % 16 or f.width % 16:
                    raise Unsupported(f"pseudo-header field '{pseudo}.{fname}' is not made of 16-bit words")



    def tlv_walk(self, out: Lines, inst: ir.Instance, ptr: str) -> None:
        """Walk the TLV area at `cur` (see tlv.py); sets the option pointers or goes to perr_bad_length."""
        w = self.walkers[inst.name]
        vl = f"vl_{ptr[2:]}"
        hb = w.tlv.header_bytes
        index = {o.name: k for k, o in enumerate(w.options)}
        self.perr_used.add("bad_length")
        out.open(f"if ({vl} > 0) {{ /* TLV options of {inst.name} */")
        out.add("struct c3po_tlvbuf *tb = bpf_map_lookup_elem(&c3po_tlvbuf, &zero);")
        out.add("if (!tb)")
        out.add("\treturn XDP_ABORTED;")
        out.add(f"__u64 n = {vl};")
        out.add('asm volatile("" : "+r"(n)); /* check and use the same register (verifier) */')
        out.add(f"if (n < 1 || n > {min(w.max_bytes, TLV_BUF)} || bpf_xdp_load_bytes(ctx, cur - data, tb->b, n))")
        out.add("\tgoto perr_truncated;")
        out.add(f"struct {w.found} f = {{ .len = n }};")
        out.add(f"bpf_loop({w.iterations}, {w.func}, &f, 0);")
        out.add("if (f.err)")
        out.add("\tgoto perr_bad_length;")
        for opt_inst in option_instances(self.prog, inst.name):
            assert opt_inst.tlv_option is not None
            k = index[opt_inst.tlv_option.name]
            need = hb + opt_inst.tlv_option.data_bytes
            out.open(f"if (f.off[{k}]) {{ /* {opt_inst.name} */")
            out.add(f"__u64 o = f.off[{k}] - 1;")
            out.add(f"if (o > {w.max_bytes} || cur + o + {need} > end)")
            out.add("\tgoto perr_bad_length;")
            out.add(f"{elem_ptr(opt_inst, None)} = cur + o + {hb};")
            out.close()
        out.close()

    def csum_sum(self, inst: ir.Instance, ptr: str, fixed_only: bool = False) -> str:
        """C expression: the one's-complement sum over a header (fixed part and varlen tail; `fixed_only` where
        the tail is known to be empty)."""
        ht = inst.type
        if ht.groups:
            raise Unsupported("checksums over headers with optional groups are not supported by the xdp target")
        if ht.fixed_bytes % 2:
            raise Unsupported(f"checksum over '{inst.name}' whose fixed part has an odd number of bytes")
        s = f"c3po_csum_fixed({ptr}, {ht.fixed_bytes})"
        if ht.varlen and not fixed_only:
            if ht.varlen.max_bytes > 64:
                raise Unsupported(f"checksums over '{inst.name}', whose variable-length tail may exceed 64 bytes "
                                  "(the xdp target's limit)")
            s = (f"c3po_csum_var(ctx, {ptr} + {ht.fixed_bytes} - data, vl_{ptr[2:]}, {ht.varlen.max_bytes}, "
                 f"{s})")
        return s

    # ---- control
    def stmts(self, out: Lines, stmts: list[ir.Stmt], tr: Translator) -> None:
        for s in stmts:
            self.stmt(out, s, tr)

    def stmt(self, out: Lines, s: ir.Stmt, tr: Translator) -> None:
        prog = self.prog
        if isinstance(s, ir.Assign):
            t = s.target
            v = tr.expr(s.value)
            if isinstance(t, ir.MetaRef):
                out.add(f"m_{t.name} = {v};")
            elif isinstance(t, ir.RegRead):
                out.add(f"r_{t.register}_write({tr.expr(t.index)}, {v}, st);")
            else:
                ptr = self.control_ptr(t.instance, t.index)
                if t.group is not None:
                    ptr = group_ptr(ptr, t.group)
                f = prog.instances[t.instance].type.field(t.field_name)
                if f is None or prog.instances[t.instance].tlv_parent:
                    raise Unsupported(f"writing '{t.instance}.{t.field_name}' is not supported")
                store = ((self.dp.word_store(t.instance, f, ptr, v) if t.group is None else None)
                         or field_access(f.offset, f.width).set(ptr, v))
                if v.startswith(RAW):  # a raw parameter (layout.raw_params): its bytes as they are, no swap
                    store = f"c3po_st_raw({ptr} + {f.offset // 8}, {f.width // 8}, {v[len(RAW):]})"
                if ptr in tr.scope.invalid:
                    out.add(f"/* {where(prog, s.loc)}: '{t.instance}' is invalid on this path: no effect */")
                elif ptr in tr.scope.valid:
                    out.add(f"{store}; /* {where(prog, s.loc)} */")
                else:
                    out.add(f"if ({ptr}) /* {where(prog, s.loc)} */")
                    out.add(f"\t{store};")
        elif isinstance(s, ir.SetVerdict):
            out.add(f"verdict = C3PO_V_{s.verdict.name};")
            if s.port is not None:
                out.add(f"egress = {tr.expr(s.port)};")
        elif isinstance(s, ir.UpdateChecksum):
            inst = prog.instances[s.instance]
            ck = inst.type.checksum
            if ck is None or inst.is_stack or (s.pseudo is not None and prog.instances[s.pseudo].is_stack):
                raise Unsupported("checksum updates on header stacks are not supported by the xdp target")
            if ck.kind == "l4":
                self.check_l4(inst, s.pseudo)
                flag = self.csum_flag(s)
                if (flag, inst.name, s.pseudo) not in self.l4_requests:
                    self.l4_requests.append((flag, inst.name, s.pseudo))
                out.add(f"{flag} = 1; /* update_checksum({s.instance}{', ' + s.pseudo if s.pseudo else ''}) "
                        "at deparse */")
                return
            f = inst.type.field(ck.field)
            if f is None or f.offset % 16 or f.width != 16:
                raise Unsupported(f"checksum field '{s.instance}.{ck.field}' is not a 16-bit word of the header")
            flag = f"csum_{inst.ident}"
            if (flag, inst.name) not in self.csum_flags:
                self.csum_flags.append((flag, inst.name))
            out.add(f"{flag} = 1; /* update_checksum({s.instance}) at deparse */")
        elif isinstance(s, ir.Count):
            c = prog.counters[s.counter]
            out.add(f"c3po_count(&c_{c.name}, {tr.expr(s.index)}, c3po_pkt_len, st, "
                    f"{self.objects[('counter', c.name)]});")
        elif isinstance(s, ir.CallAction):
            a = prog.actions[s.action]
            out.open(f"{{ /* {s.action}() ({where(prog, s.loc)}) */")
            params = {}
            for p, arg in zip(a.params, s.args, strict=True):
                out.add(f"{ctype(p.width)} p_{p.name} = {tr.expr(arg)};")
                params[p.name] = f"p_{p.name}"
            self.action_body(out, a, self.translator(params))
            out.close()
        elif isinstance(s, ir.If):
            out.open(f"if ({tr.expr(s.cond)}) {{ /* {where(prog, s.loc)} */")
            self.stmts(out, s.then, tr)
            if s.otherwise:
                out.close("} else {")
                out.depth += 1
                self.stmts(out, s.otherwise, tr)
            out.close()
        elif isinstance(s, ir.Apply):
            self.apply(out, s, tr)
        elif isinstance(s, HitMiss):
            out.open("if (hit) {")
            self.stmts(out, s.hit, tr)
            out.close("} else {")
            out.depth += 1
            self.stmts(out, s.miss, tr)
            out.close()
        elif isinstance(s, ir.SetValid):
            ptr = self.setvalid_ptr(s)
            vl = f"vl_{ptr[2:]}" if prog.instances[s.instance].type.varlen else None
            if s.valid and ptr in self.placed:
                off = self.placed[ptr]
                n = prog.instances[s.instance].type.fixed_bytes
                out.open(f"if (!{ptr}) {{ /* set_valid({s.instance}{'' if s.index is None else f'[{s.index}]'}) "
                         f"({where(prog, s.loc)}): a zeroed header in its place at the front of the frame */")
                out.add(f"{ptr} = data + {off};")
                out.add(f"c3po_zero({ptr}, {n});")
                if ptr in self.valid_bits:
                    out.add(f"c3po_valid |= 1ULL << {self.valid_bits[ptr]};")
                out.close()
            elif s.valid:
                off, n = self.set_valid_slots[ptr]
                out.open(f"if (!{ptr}) {{ /* set_valid({s.instance}{'' if s.index is None else f'[{s.index}]'}) "
                         f"({where(prog, s.loc)}): a zeroed header in scratch memory */")
                out.add("C3PO_SCRATCH();")
                out.add(f"c3po_zero(sc->hdr + {off}, {n});")
                out.add(f"{ptr} = sc->hdr + {off};")
                for g in prog.instances[s.instance].type.groups:
                    out.add(f"{group_ptr(ptr, g.name)} = NULL; /* groups of a new header are absent */")
                if prog.instances[s.instance].walk_tlv:
                    for oi in option_instances(prog, s.instance):
                        out.add(f"{elem_ptr(oi, None)} = NULL; /* no options in a new header */")
                if vl:
                    out.add(f"{vl} = 0;")
                if (bit := self.fresh_bit(ptr)) is not None:
                    out.add(f"fresh |= {bit};")
                if ptr in self.valid_bits:
                    out.add(f"c3po_valid |= 1ULL << {self.valid_bits[ptr]};")
                out.add("relayout = 1;")
                out.close()
            else:
                out.add(f"{ptr} = NULL; /* set_invalid({s.instance}{'' if s.index is None else f'[{s.index}]'}) "
                        f"({where(prog, s.loc)}) */")
                for g in prog.instances[s.instance].type.groups:
                    out.add(f"{group_ptr(ptr, g.name)} = NULL;")
                if prog.instances[s.instance].walk_tlv:
                    for oi in option_instances(prog, s.instance):
                        out.add(f"{elem_ptr(oi, None)} = NULL; /* its options go with it */")
                if (bit := self.fresh_bit(ptr)) is not None:
                    out.add(f"fresh &= ~{bit};")
                if ptr in self.valid_bits:
                    out.add(f"c3po_valid &= ~(1ULL << {self.valid_bits[ptr]});")
                out.add("relayout = 1;")
        else:
            raise Unsupported(f"statement {type(s).__name__} is not supported by the xdp target")

    def action_body(self, out: Lines, a: ir.Action, tr: Translator) -> None:
        if a.builtin:
            if a.name == "nop":
                return
            out.add(f"verdict = C3PO_V_{a.name.upper()};")
            if a.name == "forward":
                out.add(f"egress = {tr.scope.params['port']};")
            return
        self.stmts(out, a.body, tr)

    def apply(self, out: Lines, s: ir.Apply, tr: Translator, fam: P.Family = None,
              cont: list[Frame] | None = None) -> None:
        """With `cont`, each action's case goes on with the hit/miss and by-action statements and then the rest
        of the control, ending in its own deparser; without, the cases join after the switch."""
        prog = self.prog
        t = prog.tables[s.table]
        lay = self.layouts[t.name]
        ktr = tr if fam is None else self.translator(tr.scope.params, fam, exact=True)  # keys: before any action
        out.open(f"{{ /* apply {t.name} ({where(prog, s.loc)}) */")
        if lay.bitvec:
            self.bitvec_lookup(out, t, lay.bitvec, ktr)
        elif lay.kind == "linear":
            out.add(f"struct t_{t.name}_ctx c = {{}};")
            for kf in lay.keys:
                v = ktr.expr(t.keys[kf.index].expr)
                if kf.size == 2:
                    out.add(f"c3po_u128 k{kf.index} = {v};")
                    out.add(f"c.k[{kf.offset}] = (__u64)(k{kf.index} >> 64);")
                    out.add(f"c.k[{kf.offset + 1}] = (__u64)k{kf.index};")
                else:
                    out.add(f"c.k[{kf.offset}] = {v};")
            search = linear_search(t, lay)
            if search == "inline":  # small: a bounded loop the verifier walks (faster per entry)
                out.add(f"for (__u32 i = 0; i < {t.size}; i++)")
                out.add(f"\tif (t_{t.name}_match(i, &c))")
                out.add("\t\tbreak;")
            elif search == "global":
                words = "".join(f"c.k[{w}], " for w in range(max(lay.key_size, 1)))
                out.add(f"c.found = c3po__search_{t.name}({words}&c.val);")
            else:  # large: bpf_loop over inline chunks, verified once whatever the size
                out.add(f"bpf_loop({-(-t.size // LINEAR_CHUNK)}, t_{t.name}_chunk, &c, 0);")
            out.add(f"struct t_{t.name}_value *v = c.found ? &c.val : NULL;")
        elif lay.kind == "direct" and lay.percpu:
            out.add(f"__u32 k = (__u32)({ktr.expr(t.keys[0].expr)}); /* the key is the array index */")
            out.add(f"struct t_{t.name}_elem *e = bpf_map_lookup_elem(&t_{t.name}, &k); /* this CPU's copy: "
                    "the action data and the entry's counter */")
            self.likely_hit(out, s, tr, fam, cont)
            out.add(f"struct t_{t.name}_value *v = NULL;")
            out.open("if (e && e->v.action) {")
            out.add("v = &e->v;")
            out.close("} else { /* no entry at this index: the default's element counts the miss */")
            out.depth += 1
            out.add(f"k = {lay.default_elem};")
            out.add(f"e = bpf_map_lookup_elem(&t_{t.name}, &k);")
            out.close()
        elif lay.direct_global:
            bound = (1 << t.keys[0].width) - 1
            out.add(f"__u32 k = (__u32)({ktr.expr(t.keys[0].expr)}) & {bound:#x}; /* the key is the array index "
                    "(the mask: bounded for the verifier) */")
            out.add(f"struct t_{t.name}_value *v = &td_{t.name}[k]; /* from the global copy */")
            out.add("if (!v->action) /* no entry at this index */")
            out.add("\tv = NULL;")
        elif lay.kind == "direct":
            out.add(f"__u32 k = (__u32)({ktr.expr(t.keys[0].expr)}); /* the key is the array index */")
            out.add(f"struct t_{t.name}_value *v = bpf_map_lookup_elem(&t_{t.name}, &k);")
            out.add("if (v && !v->action) /* no entry at this index */")
            out.add("\tv = NULL;")
        elif lay.trie_nodes:
            self.trie_lookup(out, t, ktr)
        elif lay.cuckoo_buckets:
            self.cuckoo_lookup(out, t, lay, ktr)
        else:
            out.add(f"struct t_{t.name}_key k __attribute__((aligned(8))); /* written word by word (keys.py) */")
            members: list[tuple[L.KeyField, keys.Source]] = []
            for kf in lay.keys:
                e = t.keys[kf.index].expr
                src = keys.packet_source(kf, e, prog, ktr, self.control_ptr)
                if src is None:
                    src = keys.Source(local=f"k{kf.index}")
                    out.add(f"{'c3po_u128' if kf.size > 8 else '__u64'} k{kf.index} = {ktr.expr(e)}; /* {kf.text} */")
                else:
                    out.add(f"/* {kf.text}: from the packet, in network order already */")
                members.append((kf, src))
            if lay.kind == "lpm":
                out.add("k.prefixlen = 8 * (sizeof(k) - 4);")
            for line in keys.build(members, 4 if lay.kind == "lpm" else 0, lay.key_size):
                out.add(line)
            out.add(f"struct t_{t.name}_value *v = bpf_map_lookup_elem(&t_{t.name}, &k);")
        by_action = lay.bitvec is not None and bool(lay.bitvec.action_ids)
        if not lay.leaf and not by_action:  # (a trie leaf, or the classifier's action masks, gave hit and act)
            if lay.bitvec is None or not lay.bitvec.default_rank:  # (its catch-all rank gave v and hit)
                out.add("int hit = v != NULL;")
                # A miss reads the default from the .data.defaults global (no lookup, no NULL test), and both are
                # loaded into the same scalars, so the action code below is one verifier path whatever was chosen.
                out.add("if (!v)")
                out.add(f"\tv = &c3po_defaults.{t.name}; /* the default action */")
            out.add("__u32 act = v->action;")
            if t.counters and not lay.percpu:
                out.add("__u32 ent = v->entry + 1; /* counter index: entry + 1, 0 for the default */")
            for i in arg_indexes(lay):
                out.add(f"__u64 arg{i} = v->args[{i}];")
        if lay.percpu:
            out.open("if (e) {")
            self.count_element(out, t)
            out.close()
        elif t.counters:
            out.add(f"c3po_count(&tc_{t.name}, ent, c3po_pkt_len, st, {self.objects[('table', t.name)]});")
        out.open("switch (act) {")
        # Split: every case ends its path, and act is always one of the table's action ids, so one of them is the
        # `default` (nop when the table has it only as a possible default): no path for an impossible act.
        last = "nop" if "nop" in lay.action_ids else list(lay.action_ids)[-1]
        for name in lay.action_ids:
            if cont is not None and name == last:
                out.open(f"default: {{ /* {name} ({lay.action_ids[name]}) */")
            else:
                out.open(f"case {lay.action_ids[name]}: {{ /* {name} */")
            self.action_case(out, s, name, tr, fam, cont)
            if cont is None:
                out.add("break;")
            out.close()
        out.close()
        if cont is not None:
            out.close()
            return
        if s.hit or s.miss:
            self.stmt(out, HitMiss(s.hit, s.miss), tr)
        if s.by_action:
            out.open("switch (act) {")
            for name, body in s.by_action.items():
                out.open(f"case {lay.action_ids[name]}: {{ /* action {name} ran */")
                self.stmts(out, body, tr)
                out.add("break;")
                out.close()
            out.close()
        out.close()

    def action_case(self, out: Lines, s: ir.Apply, name: str, tr: Translator, fam: P.Family,
                    cont: list[Frame] | None) -> None:
        """What an apply runs for one of its table's actions, from the `arg<i>` scalars on: the parameters, the
        body and, with `cont`, the rest of the control to its deparser (a case of the apply's switch, or the
        straight-line hit of `likely_hit`)."""
        prog = self.prog
        t = prog.tables[s.table]
        lay = self.layouts[t.name]
        a = prog.actions[name]
        params = {}
        for pname, width, slot in lay.arg_slots[name]:
            if pname in lay.raw.get(name, ()):  # its bytes in network order: only copied into the frame
                params[pname] = f"{RAW}arg{slot}"
                continue
            val = (f"C3PO_U128(arg{slot}, arg{slot + 1})" if width > 64
                   else f"(arg{slot} & {const(mask(width), 64)})")
            out.add(f"{ctype(width)} p_{pname} = {val};")
            params[pname] = f"p_{pname}"
        outer = self.crc_starts
        if name in lay.crc:  # on a hit, its hashes start from the entry's CRC registers (crcpre.py)
            found = crcpre.sites(t, a)
            assert [k for _, k in found] == [p.keys for p in lay.crc[name]]
            self.crc_starts = {**outer, **{
                id(h): ("hit", f"arg{p.slot} >> {p.shift}" if p.shift else f"arg{p.slot}", len(p.keys))
                for (h, _), p in zip(found, lay.crc[name], strict=True)}}
        if cont is None:
            self.action_body(out, a, self.translator(params))
        else:
            frames: list[Frame] = [([HitMiss(s.hit, s.miss)] if s.hit or s.miss else [], tr.scope.params),
                                   (s.by_action.get(name, []), tr.scope.params), *cont]
            if a.builtin:
                self.action_body(out, a, self.translator(params))
                self.branch(out, [], params, self.after_action(a, fam), frames)
            else:
                self.branch(out, a.body, params, fam, frames)
        self.crc_starts = outer

    def likely_hit(self, out: Lines, s: ir.Apply, tr: Translator, fam: P.Family, cont: list[Frame] | None) -> None:
        """A hit in a per-CPU direct table that runs its likely action, as straight-line code ahead of the general
        lookup: the element's counter, its arguments and the action with the rest of the control, with no join of
        hit and miss before them. The general form (hit or miss, then one `switch`) makes clang lay the hit out as
        a jump to the join, a select of the value pointer and a second test of the action; the router's next hop,
        so built by hand on its rendered program (`bench_xdp_revisions.py FILE.c`, 40 loads, twice), ran IPv4
        routed frames 1.9–3.2 ns and IPv6 2.6–3.0 ns faster. The likely action is the first of the table's
        actions that is not its default (what entries are installed for); only where every case ends its own
        path (`cont`) and the rest of the control applies no other table, so the copy is bounded: one more copy
        of one action's tail. No __builtin_expect on the test: with it clang made the hit a jump out of line."""
        t = self.prog.tables[s.table]
        lay = self.layouts[t.name]
        name = likely_action(t, lay)
        if cont is None or name is None or not tail_is_bounded(self.prog, s, name, cont):
            return
        out.open(f"if (e && e->v.action == {lay.action_ids[name]}) {{ /* a hit running {name}, the likely case: "
                 "straight-line, ahead of the general form below */")
        out.add("int hit = 1;")
        out.add(f"__u32 act = {lay.action_ids[name]};")
        for i in arg_indexes(lay):
            out.add(f"__u64 arg{i} = e->v.args[{i}];")
        self.count_element(out, t)
        self.action_case(out, s, name, tr, fam, cont)
        out.close()

    def count_element(self, out: Lines, t: ir.Table) -> None:
        """The packet counted in `e`, the per-CPU element the lookup chose (index `k`), and logged for an
        observer."""
        out.add("e->c.packets += 1;")
        out.add("e->c.bytes += c3po_pkt_len;")
        out.add(f"c3po_touch(st, {self.objects[('table', t.name)]}, k); /* the element: the driver maps it to the "
                "counter index */")

    def bitvec_lookup(self, out: Lines, t: ir.Table, bv: BitVecLayout, ktr: Translator) -> None:
        """The bit-vector classifier (bitvec.py): one word per key byte and per range field, ANDed; the lowest set
        bit is the highest-priority match, and its de Bruijn slot holds that entry's value -- or, in by-action
        mode, testing it against each action's rank mask gives `act` and `hit` directly (no value pointer).

        A key byte of a whole-byte field read from a header known valid is one byte load from the packet, not a
        byte of the field's host-order value (no word load, byte swap and shift per byte)."""
        lay = self.layouts[t.name]
        catch_all = f"{1 << DEFAULT_RANK:#x}ULL"
        if not bv.action_ids and not bv.default_rank:
            out.add(f"struct t_{t.name}_value *v = NULL;")
        else:  # (the default is rank 63, set in every word, or read at the end of the action masks' chain)
            out.add(f"struct t_{t.name}_value *v;" if not bv.action_ids else "__u32 act;")
            out.add("int hit;")
        out.open("{ /* bit-vector classifier: the entries that accept every key byte, the first of them wins */")
        shift = bv.stride.bit_length() - 1
        out.add(f"struct t_{t.name}_bv_image *im = (struct t_{t.name}_bv_image *)((__u8 *)&tb_{t.name}.img0 + "
                f"((tb_{t.name}.active & 1) << {shift})); /* read once: one whole image (image 1 is 2^{shift} bytes "
                "after image 0) */")
        in_packet = {i: src for i, k in enumerate(t.keys) if k.kind != "range"
                     and (src := keys.packet_bytes(k.expr, self.prog, ktr, self.control_ptr))}
        for i, k in enumerate(t.keys):
            if i not in in_packet:
                out.add(f"{'c3po_u128' if k.width > 64 else '__u64'} k{i} = {ktr.expr(k.expr)}; /* {k.text} */")
        terms = []
        for p in bv.parts:
            if p.byte < 0:
                terms.append(f"im->k{p.key}_range[k{p.key} & {const(mask(p.width), 64)}]")
            elif p.key in in_packet:
                ptr, first = in_packet[p.key]
                terms.append(f"im->k{p.key}_{p.byte}[{ptr}[{first + p.byte}]]")
            else:
                shift = 8 * (-(-p.width // 8) - 1 - p.byte)
                word = f"(k{p.key} >> {shift})" if shift else f"k{p.key}"
                terms.append(f"im->k{p.key}_{p.byte}[(__u64){word} & 0xff]")
        out.add(f"__u64 m = {' & '.join(terms) or '~0ULL'};")
        slot = f"im->val[((m & -m) * {DEBRUIJN:#x}ULL) >> 58]"
        if bv.default_rank:
            out.add(f"hit = m != {catch_all}; /* only the catch-all: a miss */")
        if not bv.action_ids:
            if bv.default_rank:
                out.add(f"v = &{slot}; /* the lowest set bit: the first match, or the default's rank */")
            else:
                out.add("if (m)")
                out.add(f"\tv = &{slot}; /* the lowest set bit: the first match */")
            out.close()
            return
        if not bv.default_rank:
            out.add("hit = m != 0;")
        out.add("__u64 first = m & -m; /* the lowest set bit: the first match" +
                (", or the default's rank */" if bv.default_rank else " (0: none) */"))
        ids = lay.mask_actions
        # The last action is what a set bit in none of the other masks runs; without a default rank, no set bit
        # at all is a miss: the default is read there, at the end of the chain, off the path of every hit.
        choice = f"{ids[-1][1]}" if bv.default_rank else f"m ? {ids[-1][1]} : c3po_defaults.{t.name}.action"
        for n, (_, aid) in reversed(list(enumerate(ids[:-1]))):
            choice = f"(first & im->act[{n}]) ? {aid} : {choice}"
        out.add(f"act = {choice}; /* its action: {', '.join(f'{a} {n}' for n, a in ids)} */")
        out.close()

    def trie_lookup(self, out: Lines, t: ir.Table, ktr: Translator) -> None:
        """A walk of the table's multibit trie (targets/xdp/trie.py): the root slot from the key's top 16 bits,
        then one level per following byte while the slot points to a node, each a direct load from the global copy
        `c3po_tries.<table>` (a node beyond a copy capped by layout.TRIE_COPY_SLOTS_MAX: an inlined lookup of
        `tt_<table>`); nested, so the verifier sees one path per depth. The key is a host-order integer: its bytes
        are shifts, no key struct in memory."""
        w = t.keys[0].width
        kt = "c3po_u128" if w > 64 else "__u64"
        out.add(f"{kt} kv = {ktr.expr(t.keys[0].expr)}; /* {t.keys[0].text} */")
        out.add(f"__u32 ti = (__u32)(kv >> {w - L.TRIE_ROOT_BITS}) & 0xffff;")
        out.add(f"__u64 ts = c3po_tries.{t.name}[ti]; /* the root, from the global copy (64-bit: no zero-extension per "
                "level) */")
        levels = (w - L.TRIE_ROOT_BITS) // L.TRIE_STRIDE
        lay = self.layouts[t.name]
        copied = L.trie_copied_slots(lay.trie_nodes)
        every = not L.trie_map(lay)  # the copy holds every node: no map lookup at all
        for d in range(levels):
            shift = w - L.TRIE_ROOT_BITS - L.TRIE_STRIDE * (d + 1)
            out.open("if (ts & C3PO_TRIE_LINK) {")
            byte = f"(__u32)(kv >> {shift})" if shift else "(__u32)kv"
            bits = f"bits {w - shift - 8}..{w - shift - 1}" if shift else "the last byte"
            out.add(f"__u64 tn = (ts ^ C3PO_TRIE_LINK) | ({byte} & 0xff); /* {bits} */")
            if every:
                out.add(f"ts = tn < {copied} ? c3po_tries.{t.name}[tn] : 0; /* from the global copy (a link never "
                        "leaves it) */")
            else:
                out.add(f"ts = tn < {copied} ? c3po_tries.{t.name}[tn] : c3po_trie_slot(&tt_{t.name}, tn); /* the "
                        "first nodes from the global copy */")
        for _ in range(levels):
            out.close()
        # The walk ends on a slot that is not a link, or after the last level, whose nodes hold no links (the key
        # is a whole number of strides): so a hit is a nonzero slot, with no second test of the link bit.
        if lay.leaf is None:
            self.entry_value(out, t, "ts", "ts")
            return
        # The leaf is the route's action data (layout.TrieLeaf): no second lookup. Hit and miss load the same
        # scalars (from the leaf, or from the default in .data.defaults), so the action code is one path.
        out.add("int hit = ts != 0; /* a leaf (action ids start at 1), or 0: no route */")
        # A miss makes the default's leaf (every action of the table fits one), so hit and miss decode the same
        # scalar: one verifier path through the action code, as with a value pointer.
        out.add("if (!hit)")
        parts = [f"(c3po_defaults.{t.name}.action << {lay.leaf.act_shift})"]
        for slot, shift, width in lay.leaf.fields:
            arg = f"(__u32)(c3po_defaults.{t.name}.args[{slot}] & {const(mask(width), 32)})"
            parts.append(f"({arg} << {shift})" if shift else arg)
        out.add(f"\tts = {' | '.join(parts)}; /* the default action */")
        out.add(f"__u32 act = ts >> {lay.leaf.act_shift}; /* the leaf: {lay.leaf.describe()} */")
        for slot, shift, width in lay.leaf.fields:
            out.add(f"__u64 arg{slot} = {f'(ts >> {shift})' if shift else 'ts'} & {const(mask(width), 32)};")

    def entry_value(self, out: Lines, t: ir.Table, found: str, slot: str) -> None:
        """`v`: the action data of the entry a trie or cuckoo lookup found (`slot` holds entry + 1 when `found`),
        NULL on a miss. In a `percpu` table (layout.percpu) also `e`, the element that counts the packet: the
        entry's, or on a miss the default's (one lookup either way), and `k`, its index."""
        lay = self.layouts[t.name]
        out.add(f"struct t_{t.name}_value *v = NULL;")
        if hit_constant(self.prog, t, lay):
            out.add(f"if ({found}) /* an entry can only run {t.actions[0]}, with no data and no counter: no lookup */")
            out.add(f"\tv = (struct t_{t.name}_value *)&t_{t.name}_hit;")
            return
        if lay.percpu:
            out.add(f"__u32 k = {found} ? {slot} - 1 : {lay.default_elem}; /* the entry index, or the default's "
                    "element */")
            out.add(f"struct t_{t.name}_elem *e = bpf_map_lookup_elem(&tv_{t.name}, &k); /* this CPU's copy: the "
                    "action data and the entry's counter */")
            out.add(f"if (e && k != {lay.default_elem})")
            out.add("\tv = &e->v;")
            return
        out.open(f"if ({found}) {{")
        out.add(f"__u32 te = {slot} - 1; /* the entry index */")
        out.add(f"v = bpf_map_lookup_elem(&tv_{t.name}, &te);")
        out.close()

    def cuckoo_lookup(self, out: Lines, t: ir.Table, lay: L.TableLayout, ktr: Translator) -> None:
        """Two buckets of the table's cuckoo hash (targets/xdp/cuckoo.py), 1 or 4 slots each, compared in registers:
        the key fields composed as layout.cuckoo_key_parts lays them out (whole-byte header fields as their bytes
        lie, first), k0 the low 64 bits."""
        words = L.key_words(t)
        kt = "c3po_u128" if words > 1 else "__u64"
        layout = sorted(L.cuckoo_key_parts(t), key=lambda p: p.shift)
        parts = []
        for p in layout:
            k = t.keys[p.index]
            v = ktr.raw(k.expr, k.width // 8) if p.raw else f"({kt}){ktr.expr(k.expr)}"
            if p.raw and words > 1:
                v = f"({kt}){v}"
            parts.append(f"({v} << {p.shift})" if p.shift else v)
        raw = [t.keys[p.index].text for p in layout if p.raw]
        rest = [t.keys[p.index].text for p in layout if not p.raw]
        if raw and not rest:
            note = f"{', '.join(raw)}: in memory order"
        elif raw:
            note = f"{', '.join(raw)}: their bytes as they lie, then {', '.join(rest)} above them"
        else:
            note = f"{', '.join(k.text for k in t.keys)}: the first the most significant"
        out.add(f"{kt} kv = {' | '.join(parts)}; /* {note} */")
        out.add("__u64 k0 = (__u64)kv;")
        x = "k0"
        if words > 1:
            out.add("__u64 k1 = (__u64)(kv >> 64);")
            x = f"(k0 ^ (k1 * {C3:#x}ULL))"
        bits = lay.cuckoo_buckets.bit_length() - 1
        tag = L.cuckoo_tag(t)
        kw = ["k0", "k1"][:words]
        if tag != (0, 0):  # a live slot holds the key with its tag: no entry word to test first
            i = 1 if tag[1] else 0
            out.add(f"__u64 kt{i} = k{i} | {tag[i]:#x}ULL; /* the key as a live slot holds it (cuckoo.tag_for) */")
            kw[i] = f"kt{i}"
        # A hit that needs no data only needs to know the key is there (hit_constant): no entry word is read.
        found = "1" if tag != (0, 0) and hit_constant(self.prog, t, lay) else None
        out.add("__u32 ce = 0;")
        for n, c in enumerate((C1, C2)):
            out.open(f"if (!ce) {{ /* bucket {n + 1} */" if n else "{ /* bucket 1 */")
            out.add(f"__u32 cb = (__u32)(({x} * {c:#x}ULL) >> {64 - bits});")
            if lay.cuckoo_global:
                out.add(f"struct t_{t.name}_bucket *b = &th_{t.name}[cb]; /* the buckets are a global */")
            else:
                out.add(f"struct t_{t.name}_bucket *b = bpf_map_lookup_elem(&th_{t.name}, &cb);")
                out.open("if (b) {")
            for w in range(lay.cuckoo_ways):
                same = " && ".join([*([f"b->s[{w}].entry"] if tag == (0, 0) else []),
                                    *(f"b->s[{w}].k{i} == {x}" for i, x in enumerate(kw))])
                out.add(f"{'' if w == 0 else 'else '}if ({same})")
                out.add(f"\tce = {found or f'b->s[{w}].entry'};")
            if not lay.cuckoo_global:
                out.close()
            out.close()
        self.entry_value(out, t, "ce", "ce")

    # ---- the end of a path: deparser and verdict





    def default_args(self, t: ir.Table, lay: L.TableLayout) -> str:
        return ", ".join(const(x, 64) for x in L.arg_slots(lay, t.default.action, t.default.args))

    def emit(self) -> tuple[list[ParseNode], list[str]]:
        """The parser and the control, as C. Hash inputs that would take more than HASH_STACK_MAX bytes of the
        512-byte BPF stack go to the per-CPU scratch map instead: then both are emitted again in that mode."""
        self.hash_buffers.clear()
        parser, control = self.parser_nodes(), self.control()
        if not self.hash_in_map and sum(hash_slot(n) for _, n in self.hash_buffers) > HASH_STACK_MAX:
            self.hash_in_map = True
            self.hash_buffers.clear()
            parser, control = self.parser_nodes(), self.control()
        return parser, control

    def control(self) -> list[str]:
        """The control and, at the end of each path through it, the deparser and the verdict (see paths.py)."""
        out = Lines(depth=1)
        if self.tree:
            for leaf in self.parse_leaves:
                w = self.leaf_world(leaf)
                parsed = ", ".join(i.name for i, p in self.deparse_elements() if p in w.parsed) or "nothing"
                vals = self.leaf_values.get(leaf, {})
                facts = ", ".join(f"{n}.{f} = {next(iter(v))}" for (n, f), v in sorted(vals.items()) if len(v) == 1)
                known = (f" (its common case: {facts})" if facts else " (its common case)") \
                    if leaf in self.fast_leaves else ""
                out.out.append(f"{leaf}:; /* the parse path to {self.parse_leaves[leaf]} ends here: {parsed}{known} */")
                out.open("{")
                out.out.append(SNAPSHOT)
                self.tails_left = P.TAIL_BUDGET
                self.placed, self.prehashed = {}, {}
                self.path_values = self.leaf_values.get(leaf, {})
                end = self.block(out, self.prog.control, {}, frozenset({w}), [])
                if not isinstance(end, Done):
                    self.dp.tail(out, end)
                out.close()
            self.path_values = {}
            return out.out
        self.tails_left = P.TAIL_BUDGET
        self.placed, self.prehashed = {}, {}
        fam = self.parse_family
        out.out.append(SNAPSHOT)
        if fam is not None:
            # From here on, NULL tests of these pointers are what decides (the static worlds rely on them): hide
            # where the pointers came from, so clang cannot replace a test by a parse condition it knows to be
            # equivalent, which the verifier could not follow (it would then find a NULL dereference).
            maybe = sorted({p for w in fam for p in w.parsed} - P.must_valid(fam))
            for p in maybe:
                out.add(f'asm volatile("" : "+r"({p})); /* valid on some parse paths only */')
            if self.valid_bits:
                out.add('asm volatile("" : "+r"(c3po_valid)); /* tested as a number below, never rederived */')
        end = self.block(out, self.prog.control, {}, self.parse_family, [])
        if not isinstance(end, Done):
            self.dp.tail(out, end)
        return out.out

    # ---- control paths: static knowledge of the headers, and specialised copies of the rest of the control
    def valid_ptr(self, e: ir.Valid) -> str | None:
        """The pointer whose validity the worlds track (None: not tracked, e.g. a TLV option the walker finds)."""
        inst = self.prog.instances[e.instance]
        if inst.tlv_parent or (inst.is_stack and not isinstance(e.index, int)):
            return None
        return elem_ptr(inst, e.index if inst.is_stack else None)

    def csum_flag(self, s: ir.UpdateChecksum) -> str:
        inst = self.prog.instances[s.instance]
        ck = inst.type.checksum
        if ck is not None and ck.kind == "l4" and s.pseudo:
            return f"csum_{inst.ident}__{self.prog.instances[s.pseudo].ident}"
        return f"csum_{inst.ident}"

    def after(self, s: ir.Stmt, fam: P.Family) -> P.Family:
        """The worlds after statement `s` runs in one of `fam`'s (pure: emits nothing)."""
        if fam is None:
            return None
        if isinstance(s, ir.SetVerdict):
            return P.with_verdict(fam, s.verdict.value)
        if isinstance(s, ir.UpdateChecksum):
            return P.with_csum(fam, self.csum_flag(s))
        if isinstance(s, ir.SetValid):
            return P.set_valid(fam, self.setvalid_ptr(s), s.valid)
        if isinstance(s, ir.CallAction):
            return self.after_action(self.prog.actions[s.action], fam)
        if isinstance(s, ir.If):
            return P.union([self.after_all(s.then, P.refine(fam, s.cond, True, self.valid_ptr, self.exact)),
                            self.after_all(s.otherwise, P.refine(fam, s.cond, False, self.valid_ptr, self.exact))])
        if isinstance(s, HitMiss):
            return P.union([self.after_all(s.hit, fam), self.after_all(s.miss, fam)])
        if isinstance(s, ir.Apply):
            ends = self.stmt_leaves(s, fam)
            return None if ends is None else P.union(ends)
        return fam

    def after_all(self, stmts: list[ir.Stmt], fam: P.Family) -> P.Family:
        for s in stmts:
            fam = self.after(s, fam)
        return fam

    def after_action(self, a: ir.Action, fam: P.Family) -> P.Family:
        if a.builtin:
            return fam if a.name == "nop" else P.with_verdict(fam, a.name)
        return self.after_all(a.body, fam)

    def leaves(self, stmts: list[ir.Stmt], fam: P.Family) -> list[P.Family] | None:
        """The worlds at the end of each path through `stmts` (None: too many paths to follow)."""
        outs: list[P.Family] = [fam]
        for s in stmts:
            nxt: list[P.Family] = []
            for f in outs:
                r = self.stmt_leaves(s, f)
                if r is None:
                    return None
                nxt += r
            outs = list(dict.fromkeys(nxt))
            if len(outs) > P.WORLD_LIMIT:
                return None
        return outs

    def stmt_leaves(self, s: ir.Stmt, fam: P.Family) -> list[P.Family] | None:
        if fam is None:
            return None
        parts: list[list[P.Family] | None]
        if isinstance(s, ir.If):
            parts = [self.leaves(s.then, P.refine(fam, s.cond, True, self.valid_ptr, self.exact)),
                     self.leaves(s.otherwise, P.refine(fam, s.cond, False, self.valid_ptr, self.exact))]
        elif isinstance(s, HitMiss):
            parts = [self.leaves(s.hit, fam), self.leaves(s.miss, fam)]
        elif isinstance(s, ir.Apply):
            parts = []
            for name in self.layouts[s.table].action_ids:
                a = self.prog.actions[name]
                tail: list[ir.Stmt] = ([HitMiss(s.hit, s.miss)] if s.hit or s.miss else []) + s.by_action.get(name, [])
                if a.builtin:
                    parts.append(self.leaves(tail, self.after_action(a, fam)))
                else:
                    parts.append(self.leaves([*a.body, *tail], fam))
        else:
            return [self.after(s, fam)]
        out: list[P.Family] = []
        for part in parts:
            if part is None:
                return None
            out += part
        return out

    def worth_splitting(self, s: ir.Stmt, fam: P.Family, branches: int) -> bool:
        """Split (emit the rest of the control once per branch) when paths through `s` end in different worlds,
        so each copy can end in a deparser specialised to its world; within a budget, as the rest of the control
        is copied."""
        ends = self.stmt_leaves(s, fam)
        if ends is None or len({P.feasible(f) for f in ends}) < 2 or branches - 1 > self.tails_left:
            return False
        self.tails_left -= branches - 1
        return True

    def block(self, out: Lines, stmts: list[ir.Stmt], params: dict[str, str], fam: P.Family,
              rest: list[Frame]) -> P.Family | Done:
        """Emit `stmts`; where a branch is split, its branches also get `rest` (the statements after this block,
        outermost last) and end in their own deparser, and DONE is returned (every path has returned)."""
        for i, s in enumerate(stmts):
            cont: list[Frame] = [(stmts[i + 1:], params), *rest]
            if isinstance(s, ir.Apply):
                s = self.test_first(s, fam) or s
            if not self.absorbable(s):  # before anything of `s` is emitted, split branches included
                self.flush_images(out)
            if isinstance(s, ir.If | HitMiss):
                if isinstance(s, ir.If):
                    fams = [P.refine(fam, s.cond, True, self.valid_ptr, self.exact), P.refine(fam, s.cond, False, self.valid_ptr, self.exact)]
                    bodies, cond = [s.then, s.otherwise], None
                else:
                    fams, bodies, cond = [fam, fam], [s.hit, s.miss], "hit"
                if self.worth_splitting(s, fam, 2):
                    tr = self.translator(params, fam, exact=True)  # the condition is evaluated in `fam` itself
                    head = cond or tr.expr(s.cond)  # type: ignore[union-attr]
                    if head in ("0", "1"):  # known on this path (a field the parse path fixed): one branch
                        out.add(f"/* {where(self.prog, s.loc)}: {'true' if head == '1' else 'false'} on this "
                                "path */")
                        k = 0 if head == "1" else 1
                        self.branch(out, bodies[k], params, fams[k], cont)
                        return DONE
                    out.open(f"if ({head}) {{ /* {where(self.prog, s.loc) if cond is None else 'hit'}: "
                             "the rest of the control follows, per branch */")
                    self.branch(out, bodies[0], params, fams[0], cont)
                    out.close("} else {")
                    out.depth += 1
                    self.branch(out, bodies[1], params, fams[1], cont)
                    out.close()
                    return DONE
            elif isinstance(s, ir.Apply) and self.worth_splitting(s, fam, len(self.layouts[s.table].action_ids)):
                self.apply(out, s, self.translator(params, fam), fam=fam, cont=cont)
                return DONE
            if isinstance(s, ir.SetValid) and s.valid and not self.placed:
                plan = self.dp.insertion_plan(s, fam, cont)
                if plan is not None:
                    self.prehash(out, stmts[i:], params, fam)
                    self.dp.insert_now(out, plan, fam)
            if self.dropped_anyway(s, fam, cont):
                out.add(f"/* {where(self.prog, s.loc)}: not run, the frame is dropped */")
            else:
                tr = self.translator(params, fam, exact=not isinstance(s, ir.If | HitMiss | ir.Apply | ir.CallAction))
                if not self.image_stmt(out, s, tr):
                    self.stmt(out, s, tr)
            fam = self.after(s, fam)
        self.flush_images(out)
        return fam

    def prehash(self, out: Lines, stmts: list[ir.Stmt], params: dict[str, str], fam: P.Family) -> None:
        """Before the frame start moves for new headers: the hashes that the straight-line statements after it
        take over headers already in the frame, whose fields and metadata nothing before them writes. Taken here,
        a CRC's chain of table loads runs beside the bpf_xdp_adjust_head call instead of after it (the VXLAN
        gateway's outer UDP source port: 3 ns less per encapsulated frame). The bytes do not move: adjust_head
        only moves the frame start."""
        here = P.must_valid(fam)
        written: set[str] = set()  # instances (any field) and meta.<name> written so far
        todo: list[tuple[ir.Hash, ir.Stmt]] = []
        for s in stmts:
            if isinstance(s, ir.Assign):
                for e in ir.walk_expr(s.value):
                    if isinstance(e, ir.Hash) and self.prehashable(e, here, written):
                        todo.append((e, s))
                t = s.target
                written.add(t.instance if isinstance(t, ir.FieldRef) else
                            f"meta.{t.name}" if isinstance(t, ir.MetaRef) else "*")
            elif isinstance(s, ir.SetValid | ir.UpdateChecksum):
                written.add(s.instance)
            elif not isinstance(s, ir.SetVerdict):
                break  # branches, tables, actions: stop looking
            if "*" in written:
                break
        if not todo:
            return
        tr = self.translator(params, fam, exact=True)
        for e, at in todo:
            name = f"c3po_hv{self.prehash_count}"
            self.prehash_count += 1
            out.add(f"__u64 {name} = {tr.expr(e)}; /* {where(self.prog, at.loc)}: its hash, taken before the "
                    "frame start moves */")
            self.prehashed = {**self.prehashed, id(e): name}

    def prehashable(self, e: ir.Hash, valid: frozenset[str], written: set[str]) -> bool:
        for sub in ir.walk_expr(e):
            if isinstance(sub, ir.FieldRef):
                inst = self.prog.instances.get(sub.instance)
                if (inst is None or inst.is_stack or sub.group is not None or sub.instance in written
                        or elem_ptr(inst, None) not in valid):
                    return False
            elif isinstance(sub, ir.MetaRef):
                if f"meta.{sub.name}" in written:
                    return False
            elif not isinstance(sub, ir.Hash | ir.Const | ir.ParamRef | ir.Binary | ir.Unary | ir.Cast | ir.Slice):
                return False
        return True

    # ---- new headers built from constants (images.py)
    def flush_images(self, out: Lines, only: str | None = None) -> None:
        done = images.flush(out, self.pending, only)
        for ptr, img in done.items():
            self.built[ptr] = (img, out.out, len(out.out))

    def absorbable(self, s: ir.Stmt) -> bool:
        """Whether `s` leaves the pending header images unobserved (they can still wait)."""
        if not self.pending:
            return True
        if isinstance(s, ir.SetValid):
            return s.valid
        if isinstance(s, ir.UpdateChecksum):  # a flag: the sum is taken at deparse, after the images are written
            return True
        if isinstance(s, ir.Assign):
            return not isinstance(s.target, ir.RegRead) and not images.reads(s.value, self.pending, self.control_ptr)
        if isinstance(s, ir.SetVerdict):
            return s.port is None or not images.reads(s.port, self.pending, self.control_ptr)
        return False

    def image_stmt(self, out: Lines, s: ir.Stmt, tr: Translator) -> bool:
        """Emit `s` through the images when it makes or fills a new header in place; False: not handled."""
        prog = self.prog
        if isinstance(s, ir.SetValid) and s.valid:
            ptr = self.setvalid_ptr(s)
            inst = prog.instances[s.instance]
            if ptr not in self.placed or ptr not in tr.scope.invalid or not images.simple(inst):
                return False
            out.add(f"{ptr} = data + {self.placed[ptr]}; /* set_valid({s.instance}) ({where(prog, s.loc)}): in its "
                    "place at the front of the frame; its constant bytes are written below */")
            if ptr in self.valid_bits:
                out.add(f"c3po_valid |= 1ULL << {self.valid_bits[ptr]};")
            self.pending[ptr] = images.Image(inst)
            return True
        if not isinstance(s, ir.Assign) or not isinstance(s.target, ir.FieldRef) or s.target.group is not None:
            return False
        t = s.target
        ptr = self.control_ptr(t.instance, t.index)
        img = self.pending.get(ptr)
        f = prog.instances[t.instance].type.field(t.field_name)
        if img is None or f is None:
            return False
        value = images.constant(s.value)
        if value is not None and not img.bytes_of(f) & img.dynamic:
            img.put(f, value)
            out.add(f"/* {where(prog, s.loc)}: {t.instance}.{t.field_name} = 0x{value & mask(f.width):x}, "
                    "in the constant bytes */")
            return True
        if value is None and f.offset % 8 == 0 and f.width % 8 == 0:
            img.dynamic |= img.bytes_of(f)  # stored now, by the plain assignment
        else:
            self.flush_images(out, ptr)
        return False

    def test_first(self, s: ir.Apply, fam: P.Family) -> ir.If | None:
        """A lookup whose result nothing can observe when a test on its hit path sends the packet where a miss
        would: `apply T {hit: [if c then X else Y], miss: X}` is `if c then X else apply T {hit: Y, miss: X}` when
        T's actions do nothing (nop: no effect on the frame or metadata, so c reads the same values either way) and
        T has no counters. The test then runs first and the lookup only where it decides: the router's TTL test
        before its router-MAC lookup (an expiring packet goes to the host either way), as an expert writes it.
        Tests that are constant on this parse path (valid(ipv4) where IPv4 was parsed) are looked through."""
        t = self.prog.tables[s.table]
        if fam is None or t.counters or s.by_action or not self.does_nothing(t):
            return None
        hit = s.hit
        while len(hit) == 1 and isinstance(hit[0], ir.If):
            c = hit[0]
            yes = P.feasible(P.refine(fam, c.cond, True, self.valid_ptr, self.exact))
            no = P.feasible(P.refine(fam, c.cond, False, self.valid_ptr, self.exact))
            if yes and no:  # decided at run time: the candidate
                if same_stmts(c.then, s.miss):
                    return ir.If(c.cond, list(s.miss), [ir.Apply(s.table, c.otherwise, s.miss, loc=s.loc)], loc=c.loc)
                return None
            hit = c.then if yes else c.otherwise
        return None

    def does_nothing(self, t: ir.Table) -> bool:
        """Whether every action the table can run (its entries' and its default) leaves frame, metadata and verdict
        alone."""
        names = {*t.actions, t.default.action, *(e.action.action for e in t.entries)}
        return all(self.prog.actions[n].name == "nop" or (not self.prog.actions[n].builtin
                                                           and not self.prog.actions[n].body) for n in names)

    def inert(self, s: ir.Stmt) -> bool:
        """Whether the statement only affects the frame, metadata or verdict (nothing a dropped frame leaves
        behind: no counter, register or table counter)."""
        if isinstance(s, ir.Assign):
            return not isinstance(s.target, ir.RegRead) and not any(
                isinstance(x, ir.RegRead) for x in ir.walk_expr(s.value))
        if isinstance(s, ir.SetValid | ir.UpdateChecksum | ir.SetVerdict):
            return True
        if isinstance(s, ir.If):
            return all(self.inert(x) for x in [*s.then, *s.otherwise])
        if isinstance(s, ir.CallAction):
            a = self.prog.actions[s.action]
            return a.builtin or all(self.inert(x) for x in a.body)
        return False

    def dropped_anyway(self, s: ir.Stmt, fam: P.Family, cont: list[Frame]) -> bool:
        """A statement whose effects the rest of its path discards: everything after it is inert too and every
        path from there ends in a drop (split horizon: `to_remote` followed by `drop`)."""
        if fam is None or not self.inert(s):
            return False
        rest = [x for stmts, _ in cont for x in stmts]
        if not all(self.inert(x) for x in rest):
            return False
        ends = self.leaves(rest, self.after(s, fam))
        return ends is not None and all(f is not None and P.feasible(f) and all(
            w.verdict == "drop" for w in P.feasible(f) or ()) for f in ends)

    def branch(self, out: Lines, stmts: list[ir.Stmt], params: dict[str, str], fam: P.Family,
               rest: list[Frame]) -> None:
        """Emit `stmts` and then `rest`, ending every path in a deparser."""
        if fam is not None and not P.feasible(fam):
            out.add("return XDP_ABORTED; /* no packet takes this branch (the verifier explores it) */")
            return
        # an insertion made on this path holds until its end, which this call emits
        placed, prehashed = self.placed, self.prehashed
        end = self.block(out, stmts, params, fam, rest)
        for j, (more, p) in enumerate(rest):
            if isinstance(end, Done):
                break
            end = self.block(out, more, p, end, rest[j + 1:])
        if not isinstance(end, Done):
            self.dp.tail(out, end)
        self.placed, self.prehashed = placed, prehashed

    # ---- headers added in place: encapsulation without scratch memory



def hit_constant(prog: ir.Program, t: ir.Table, lay: L.TableLayout) -> bool:
    """Whether a hit in a trie or cuckoo table needs no action data: its entries can only have one action (the API
    and the driver refuse others), which takes no parameters, and it counts nothing. Then a hit reads the constant
    `t_<table>_hit` (in .rodata) instead of looking up the entry's data: the router's MAC table, whose entries are
    all `nop`. The control plane still writes the data array; packets do not read it. (A trie whose leaves hold
    the data, layout.TrieLeaf, needs neither.)"""
    return (bool(lay.trie_nodes or lay.cuckoo_buckets) and not lay.leaf and not t.counters and not lay.crc
            and len(set(t.actions)) == 1 and not prog.actions[t.actions[0]].params)


def likely_action(t: ir.Table, lay: L.TableLayout) -> str | None:
    """The action a hit most likely runs: the first of the table's actions that is not its default (entries are
    installed for it; the default covers the rest), or None when there is none."""
    for name in t.actions:  # in the spec's order
        if name in lay.action_ids and name not in (t.default.action, "nop"):
            return name
    return None


def tail_is_bounded(prog: ir.Program, s: ir.Apply, name: str, cont: list[Frame]) -> bool:
    """Whether an action's path to its deparser applies no other table and has a few statements at most, so that
    a second copy of it (`Emitter.likely_hit`) stays small and copies nothing that copies again."""
    stmts = [*prog.actions[name].body, *s.hit, *s.miss, *s.by_action.get(name, [])]
    for body, _ in cont:
        stmts += body
    walked: list[ir.Stmt] = []
    while stmts:  # (a HitMiss of an enclosing apply holds statements walk_stmts does not enter)
        found = ir.walk_stmts(stmts)
        walked += found
        stmts = [y for x in found if isinstance(x, HitMiss) for y in (*x.hit, *x.miss)]
    return len(walked) <= LIKELY_HIT_STATEMENTS and not any(isinstance(x, ir.Apply) for x in walked)


def arg_indexes(lay: L.TableLayout) -> list[int]:
    """The value's argument slots some action of the table reads (`arg<i>` in the generated apply)."""
    return sorted({slot + j for name in lay.action_ids for _, width, slot in lay.arg_slots[name]
                   for j in range(2 if width > 64 else 1)} | {p.slot for pres in lay.crc.values() for p in pres})


def raw_select(st: ir.ParserState, prog: ir.Program, tr: Translator,
               ptr_of: Callable[[str, int | str | None], str]) -> tuple[str, int, int] | None:
    """(header pointer, byte offset, width) when a state selects on one 16- or 32-bit whole-byte field of a header
    known valid, with two or more cases that are all distinct single values: then the transition is a `switch` on
    the field as it lies in the packet. clang compiles the `if` chain on the byte-swapped value (the same
    tests) into a select of a state number and a second dispatch on it, six BPF instructions more on every
    packet through the state (an EtherType with IPv4 and IPv6 cases); the switch is one load and the tests."""
    if len(st.select) != 1 or len(st.cases) < 2 or st.select[0].width not in (16, 32):
        return None
    if any(len(c.keyset) != 1 or c.keyset[0].kind != "value" for c in st.cases):
        return None
    values = [c.keyset[0].a & mask(st.select[0].width) for c in st.cases]
    if len(set(values)) != len(values):  # a repeated value: the first case wins, which a switch cannot say
        return None
    at = keys.packet_bytes(st.select[0], prog, tr, ptr_of)
    return None if at is None else (at[0], at[1], st.select[0].width)


def one_byte_test(ht: ir.HeaderType, ptr: str, facts: dict[tuple[str, str], int]) -> str | None:
    """The field values as one masked compare of one byte, when all the fields lie in it (IPv4's version and
    IHL: `h_ipv4[0] == 0x45`)."""
    at: set[int] = set()
    m = v = 0
    for (_, name), value in sorted(facts.items()):
        f = ht.field(name)
        if f is None or f.offset // 8 != (f.offset + f.width - 1) // 8:
            return None
        at.add(f.offset // 8)
        shift = 8 - f.offset % 8 - f.width
        m |= mask(f.width) << shift
        v |= (value & mask(f.width)) << shift
    if len(at) != 1:
        return None
    b = f"{ptr}[{at.pop()}]"
    return f"{b} == {v:#x}" if m == 0xFF else f"({b} & {m:#x}) == {v:#x}"


def keyset_cond(var: str, width: int, k: ir.KeyElem) -> str:
    if k.kind == "any":
        return "1"
    if k.kind == "value":
        return f"{var} == {const(k.a & mask(width), width)}"
    if k.kind == "mask":
        return f"({var} & {const(k.b & mask(width), width)}) == {const(k.a & k.b & mask(width), width)}"
    return range_cond(var, k.a, k.b, width, const)


def empty_tail_test(ht: ir.HeaderType, tr: Translator) -> str | None:
    """A C test of one narrow field (at most 8 bits) for the value that gives the header no variable part, when
    the length depends on that field alone (IPv4: `ihl == 5`). It only steers: the emitter tests the length too,
    behind it (`ihl == 5 && vl == 0`), which clang folds once the field is known, so the fast path tests one
    field where the length's arithmetic was; a wrong choice would cost time, never correctness."""
    assert ht.varlen is not None
    value = _empty_tail_value(ht.varlen.length, ht)
    if value is None:
        return None
    ref = next(e for e in ir.walk_expr(ht.varlen.length) if isinstance(e, ir.FieldRef))
    return f"({tr.expr(ref)} == {value}ULL)"


_EMPTY_TAIL: dict[int, tuple[ir.Expr, int | None]] = {}


def _empty_tail_value(length: ir.Expr, ht: ir.HeaderType) -> int | None:
    """The first value of the one field the length reads that makes it 0; kept per length expression, since a
    parser visits a header at every path through it (hundreds of nodes in a router) and each answer is 256
    evaluations. The cache holds the expression, so its id is never reused while the entry lives."""
    hit = _EMPTY_TAIL.get(id(length))
    if hit is not None and hit[0] is length:
        return hit[1]
    refs = {e.field_name for e in ir.walk_expr(length) if isinstance(e, ir.FieldRef)}
    f = ht.field(next(iter(refs))) if len(refs) == 1 else None
    value: int | None = None
    if f is not None and f.width <= 8:
        try:
            value = next(iter([v for v in range(1 << f.width) if hexpr.eval_header_expr(length, {f.name: v}) == 0]),
                         None)
        except hexpr.HeaderExprError:
            value = None
    if len(_EMPTY_TAIL) > 4096:
        _EMPTY_TAIL.clear()
    _EMPTY_TAIL[id(length)] = (length, value)
    return value


def same_stmts(a: object, b: object) -> bool:
    """Structural equality of IR statements and expressions, their source locations aside."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_stmts(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_stmts(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same_stmts(getattr(a, f.name), getattr(b, f.name))
                   for f in dataclasses.fields(a) if f.name not in ("loc", "pos"))
    return a == b


def touch_objects(prog: ir.Program) -> dict[tuple[str, str], int]:
    """Ids of the counter/register objects a packet can touch, as recorded in c3po_state.touch."""
    names = [("counter", n) for n in sorted(prog.counters)]
    names += [("table", n) for n in sorted(prog.tables) if prog.tables[n].counters]
    names += [("register", n) for n in sorted(prog.registers)]
    return {k: i + 1 for i, k in enumerate(names)}
