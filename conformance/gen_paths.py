"""Parse paths and the packets that take them: the first half of vector generation.

The parse graph is unrolled over stack fill levels into an acyclic networkx multigraph, every simple path to
accept/reject/stack_overflow is enumerated, and a `Builder` turns a path into header values that make each
select take the planned edge (values, masks, ranges, defaults, lookaheads), with consistent varlen lengths,
TLV options and IPv4 checksums. The oracle checks each result; see generate.py.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem

from .packets import PacketBuildError, eval_header_expr, ipv4_checksum, pack_header

MAX_PATHS = 1024
EXHAUSTIVE_SELECT = 1 << 17  # select value spaces up to this size are searched exhaustively
RETRIES = 8  # fresh draws for a path whose first draw left no solution
# infeasibility reasons that no other random draw can change
_PLANNED = " given the planned values"
_PROOFS = ("matches an earlier case (exhaustive)", f"earlier case{_PLANNED} (exhaustive)",
           "(lookahead into the payload)")
TERMINALS = ("accept", "reject", "stack_overflow")
PAYLOAD_TYPE = ir.HeaderType("payload", [ir.Field("bytes", 8 * 24, 0)])  # lookaheads may read into it


# --------------------------------------------------------------------------------------------- parse paths


@dataclass(frozen=True)
class Step:
    state: str
    edge: int | None  # case index, -1 for default, None for a state without select
    next: str
    parallel: bool = False  # another case of the state leads to the same next state: the label names the case


@dataclass
class ParsePath:
    steps: list[Step]
    end: str  # accept | reject | stack_overflow

    @property
    def label(self) -> str:
        return "-".join(f"{s.state}#{s.edge}" if s.parallel else s.state for s in self.steps) + f"-{self.end}"

    def edges(self) -> list[tuple[str, int | None]]:
        return [(s.state, s.edge) for s in self.steps if s.next != "stack_overflow"]


def unrolled_graph(prog: ir.Program) -> nx.MultiDiGraph:
    """States × stack fill levels, so stack loops unroll up to their size and the graph is acyclic."""
    p = prog.parser
    stacks = sorted(
        {st.extract for st in p.states.values() if st.extract and prog.instances[st.extract].is_stack}
    )
    g: nx.MultiDiGraph = nx.MultiDiGraph()
    start = (p.start, tuple(0 for _ in stacks))
    todo = [start]
    seen = {start}
    while todo:
        node = todo.pop()
        name, fill = node
        st = p.states[name]
        nfill = fill
        if st.extract in stacks:
            i = stacks.index(st.extract)
            if fill[i] >= prog.instances[st.extract].stack:
                g.add_edge(node, ("stack_overflow",), key=("x", None))
                continue
            nfill = (*fill[:i], fill[i] + 1, *fill[i + 1 :])
        outs: list[tuple[int | None, str]] = []
        if st.select:
            outs = [(i, c.next) for i, c in enumerate(st.cases)]
            outs.append((-1, st.default))
        else:
            outs = [(None, st.default)]
        for edge, nxt in outs:
            target = (nxt,) if nxt in ("accept", "reject") else (nxt, nfill)
            g.add_edge(node, target, key=(name, edge))
            if len(target) == 2 and target not in seen:
                seen.add(target)
                todo.append(target)
    g.graph["start"] = start
    return g


def _parse_path(g: nx.MultiDiGraph, edge_path: list[tuple[Any, Any, Any]]) -> ParsePath:
    steps = []
    for u, v, key in edge_path:
        steps.append(Step(u[0], key[1] if key[0] != "x" else None, v[0], g.number_of_edges(u, v) > 1))
    end = edge_path[-1][1][0]
    if end == "stack_overflow":
        steps[-1] = Step(steps[-1].state, None, "stack_overflow")
    return ParsePath(steps, end)


def enumerate_paths(prog: ir.Program, limit: int = MAX_PATHS) -> list[ParsePath]:
    """Every path to a terminal, up to `limit`; past it, one shortest path through each edge no path took yet.

    The simple paths come depth first, so a graph with more than `limit` of them (QinQ x an MPLS stack x the
    IPv6 extension chain) would otherwise end in the first few edges' subtrees and never try the others."""
    g = unrolled_graph(prog)
    targets = [t for t in [("accept",), ("reject",), ("stack_overflow",)] if t in g]
    out: list[ParsePath] = []
    covered: set[tuple[Any, Any, Any]] = set()
    for found in nx.all_simple_edge_paths(g, g.graph["start"], targets):
        edge_path: list[tuple[Any, Any, Any]] = list(found)  # type: ignore[arg-type]  # a multigraph: keys too
        out.append(_parse_path(g, edge_path))
        covered.update(edge_path)
        if len(out) >= limit:
            break
    else:
        covered = set(g.edges(keys=True))
    for edge in g.edges(keys=True):
        if edge in covered:
            continue
        try:
            head = nx.shortest_path(g, g.graph["start"], edge[0])
            tail = min((nx.shortest_path(g, edge[1], t) for t in targets if nx.has_path(g, edge[1], t)), key=len)
        except (nx.NetworkXNoPath, ValueError):
            continue
        path = [(a, b, next(iter(g[a][b]))) for a, b in itertools.pairwise(head)] + [edge] + [
            (a, b, next(iter(g[a][b]))) for a, b in itertools.pairwise(tail)]
        out.append(_parse_path(g, path))
        covered.update(path)
    out.sort(key=lambda p: (len(p.steps), p.label, [str(s.edge) for s in p.steps]))
    return out


# ----------------------------------------------------------------------------------------- packet building


@dataclass
class Rec:
    """One extracted header on a path, with the values the generator chose."""

    instance: str
    index: int
    ht: ir.HeaderType
    values: dict[str, int] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)
    planned: set[str] = field(default_factory=set)  # fixed by the caller's overrides: the same in every draw
    tail: bytes = b""
    with_options: bool = True
    option_values: dict[tuple[str, str], int] = field(default_factory=dict)


def _cands(e: KeyElem, width: int, current: int, others: list[KeyElem]) -> list[int]:
    m = (1 << width) - 1
    if e.kind == "value":
        c = [e.a]
    elif e.kind == "mask":
        c = [e.a & e.b, (e.a & e.b) | (~e.b & m), (e.a & e.b) | (current & ~e.b & m)]
    elif e.kind == "range":
        c = [e.a, e.b, (e.a + e.b) // 2]
    else:
        c = [current, 0, 1, m]
        for o in others:
            c += [o.a - 1, o.a + 1, o.b + 1, o.a ^ 1, (o.a ^ o.b) & m, ~o.b & m]
    return list(dict.fromkeys(x & m for x in c if x >= 0))


@dataclass
class _Ref:
    """Bits of one or more fields read as one value, MSB first: (record, field, low bit, number of bits)."""

    pieces: list[tuple[Rec, str, int, int]]

    def get(self) -> int:
        v = 0
        for rec, f, lo, n in self.pieces:
            v = (v << n) | ((rec.values[f] >> lo) & ((1 << n) - 1))
        return v

    def fixed(self) -> bool:
        return any(f in rec.fixed for rec, f, _, _ in self.pieces)

    def set(self, v: int) -> None:
        shift = sum(n for *_, n in self.pieces)
        for rec, f, lo, n in self.pieces:
            shift -= n
            part = (v >> shift) & ((1 << n) - 1)
            m = ((1 << n) - 1) << lo
            rec.values[f] = (rec.values[f] & ~m) | (part << lo)
            rec.fixed.add(f)


@dataclass
class _Fixed:
    """A select value the generator cannot choose: metadata computed by parser-state statements."""

    value: int

    def get(self) -> int:
        return self.value

    def fixed(self) -> bool:
        return True

    def set(self, v: int) -> None:
        """Nothing to set: the solver only ever offers this value back."""


_LENGTHS: dict[tuple[int, str, tuple[tuple[str, int], ...]], tuple[ir.VarLen, list[tuple[int, int]]]] = {}


def _length_table(vl: ir.VarLen, f: ir.Field, others: dict[str, int]) -> list[tuple[int, int]]:
    """(field value, varlen length) for every value of the length field, memoised: generation asks the
    same question for every packet variant of every path."""
    key = (id(vl), f.name, tuple(sorted(others.items())))
    hit = _LENGTHS.get(key)
    if hit is not None and hit[0] is vl:
        return hit[1]
    values = dict(others)
    table = []
    for v in range(min(1 << f.width, 1 << 16)):
        values[f.name] = v
        table.append((v, eval_header_expr(vl.length, values)))
    if len(_LENGTHS) > 4096:
        _LENGTHS.clear()
    _LENGTHS[key] = (vl, table)
    return table


@dataclass(frozen=True)
class ParserFacts:
    """What the builder asks of each parser state on every draw, computed once per program: a generator makes
    thousands of Builders (one per packet it plans) and retries each draw, and walking the states' statements
    again each time was most of the time of a program with long paths (parser_do_tailcall: 28 s)."""

    writes: dict[str, dict[str, ir.Stmt]]  # state -> meta name -> the last top-level `do` statement that may write it
    select_metas: dict[str, list[str]]  # state -> the metadata its select reads, in order
    steered: dict[str, list[tuple[ir.FieldRef, int]]]  # state -> (field, constant) compares in its `if`s, in order


_FACTS: dict[int, tuple[ir.Program, ParserFacts]] = {}


def parser_facts(prog: ir.Program) -> ParserFacts:
    """The program's ParserFacts, made on first use (the program is kept with them, so its id is not reused)."""
    hit = _FACTS.get(id(prog))
    if hit is not None and hit[0] is prog:
        return hit[1]
    writes: dict[str, dict[str, ir.Stmt]] = {}
    metas: dict[str, list[str]] = {}
    steered: dict[str, list[tuple[ir.FieldRef, int]]] = {}
    for name, st in prog.parser.states.items():
        w: dict[str, ir.Stmt] = {}
        for s in st.do:
            for x in ir.walk_stmts([s]):
                if isinstance(x, ir.Assign) and isinstance(x.target, ir.MetaRef):
                    w[x.target.name] = s  # a later statement wins: it is the last write
        writes[name] = w
        metas[name] = [x.name for e in st.select for x in ir.walk_expr(e) if isinstance(x, ir.MetaRef)]
        steered[name] = [(x.left, x.right.value) for s in ir.walk_stmts(st.do) if isinstance(s, ir.If)
                         for x in ir.walk_expr(s.cond)
                         if isinstance(x, ir.Binary) and isinstance(x.right, ir.Const)
                         and isinstance(x.left, ir.FieldRef)]
    if len(_FACTS) > 64:
        _FACTS.clear()
    facts = ParserFacts(writes, metas, steered)
    _FACTS[id(prog)] = (prog, facts)
    return facts


class Builder:
    """Turns a parse path into concrete header values and bytes."""

    def __init__(self, prog: ir.Program, rng: random.Random) -> None:
        self.prog = prog
        self.rng = rng
        self.facts = parser_facts(prog)

    def recs_for(
        self, path: ParsePath, overrides: dict[tuple[str, str], int], with_options: bool
    ) -> tuple[list[Rec], str | None]:
        """Values for every header on the path; returns (records, reason when infeasible).

        A failed attempt is retried with fresh random values: a select's default edge keeps the random
        value of the bits it reads when that value takes the default, and those bits may also be a length
        field a later header needs in range (gre_tunnel's lookahead at the IPv4 version/IHL byte); one
        unlucky draw must not make a feasible path look infeasible."""
        recs, reason = self._recs_once(path, overrides, with_options)
        for _ in range(RETRIES):
            if reason is None or reason.endswith(_PROOFS):
                break
            recs, reason = self._recs_once(path, overrides, with_options)
        return recs, reason

    def _recs_once(
        self, path: ParsePath, overrides: dict[tuple[str, str], int], with_options: bool
    ) -> tuple[list[Rec], str | None]:
        prog = self.prog
        recs: list[Rec] = []
        counts: dict[str, int] = {}
        sel_at: list[tuple[int, Step]] = []
        for step in path.steps:
            st = prog.parser.states[step.state]
            if (st.extract and step.next != "stack_overflow") or (
                st.extract and step.next == "stack_overflow"
            ):
                inst = prog.instances[st.extract]
                idx = counts.get(inst.name, 0)
                counts[inst.name] = idx + 1
                rec = Rec(inst.name, idx, inst.type, with_options=with_options)
                for f in inst.type.all_fields():
                    rec.values[f.name] = self.rng.getrandbits(f.width)
                for (iname, fname), v in overrides.items():
                    if iname == inst.name and inst.type.field(fname) is not None:
                        rec.values[fname] = v
                        rec.fixed.add(fname)
                        rec.planned.add(fname)
                    elif iname.startswith(inst.name + "."):
                        rec.option_values[(iname, fname)] = v
                recs.append(rec)
            sel_at.append((len(recs) - 1, step))
        payload = Rec("payload", 0, PAYLOAD_TYPE)
        payload.values["bytes"] = self.rng.getrandbits(PAYLOAD_TYPE.fixed_bits)
        recs.append(payload)
        self._steer_conditions(sel_at, recs)
        # Selects on metadata that a `do` copied from a field are solved first: they fix that field, which an
        # earlier state's select (usually its default edge) must then respect, rather than the other way round.
        order = sorted(range(len(sel_at)), key=lambda k: (not self._aliased_select(sel_at, k), k))
        for k in order:
            rec_i, step = sel_at[k]
            st = prog.parser.states[step.state]
            if step.edge is None or not st.select:
                continue
            reason = self._solve_select(st, step.edge, recs, rec_i, sel_at[:k + 1])
            if reason:
                return recs, f"state '{st.name}': {reason}"
        for rec in recs:
            reason = self._solve_length(rec)
            if reason:
                return recs, f"header '{rec.instance}': {reason}"
        return recs, None

    def _ref(self, e: ir.Expr, recs: list[Rec], rec_i: int) -> _Ref | None:
        """The bits a select expression reads, as pieces of fields of the headers on the path; a lookahead
        is mapped onto the fixed parts of the headers extracted after this state."""
        if isinstance(e, ir.FieldRef):
            cands = [r for r in recs[: rec_i + 1] if r.instance == e.instance]
            if isinstance(e.index, int):
                cands = [r for r in cands if r.index == e.index]
            if not cands:
                return None
            return _Ref([(cands[-1], e.field_name, 0, e.width)])
        if isinstance(e, ir.Lookahead):
            pieces: list[tuple[Rec, str, int, int]] = []
            base = 0
            want_lo, want_hi = e.offset, e.offset + e.bits
            for rec in recs[rec_i + 1 :]:
                for f in rec.ht.fields:
                    lo, hi = base + f.offset, base + f.offset + f.width
                    a, b = max(lo, want_lo), min(hi, want_hi)
                    if a < b:
                        # bits [a, b) of the window are field bits [hi - b, hi - a) counted from the LSB
                        pieces.append((rec, f.name, hi - b, b - a))
                base += rec.ht.fixed_bits
                if base >= want_hi:
                    break
            if sum(p[3] for p in pieces) != e.bits:
                return None
            return _Ref(pieces)
        return None

    # -- metadata set by parser-state statements (`do`) ------------------------------------------------------

    def _last_write(self, name: str, upto: list[tuple[int, Step]]) -> tuple[int, ir.Stmt] | None:
        """The last top-level statement along the path (this state's `do` included) that may write meta.NAME."""
        writes = self.facts.writes
        for rec_i, step in reversed(upto):
            s = writes[step.state].get(name)
            if s is not None:
                return rec_i, s
        return None

    def _aliased_select(self, sel_at: list[tuple[int, Step]], k: int) -> bool:
        metas = self.facts.select_metas[sel_at[k][1].state]
        for m in metas:
            last = self._last_write(m, sel_at[:k + 1])
            if last is None or not (isinstance(last[1], ir.Assign) and isinstance(last[1].value, ir.FieldRef)):
                return False
        return bool(metas)

    def _meta_ref(self, e: ir.MetaRef, recs: list[Rec], upto: list[tuple[int, Step]]) -> _Ref | _Fixed | None:
        """What a select on metadata reads: the field a plain `meta.x = h.f` copied (so the solver can choose
        it), else the value the path's statements compute from the values chosen so far."""
        last = self._last_write(e.name, upto)
        if last is None:
            return _Fixed(0)
        rec_i, s = last
        if isinstance(s, ir.Assign) and isinstance(s.value, ir.FieldRef):
            return self._ref(s.value, recs, rec_i)
        try:
            return _Fixed(self._run_do(upto, recs).get(e.name, 0))
        except PacketBuildError:
            return None

    def _run_do(self, upto: list[tuple[int, Step]], recs: list[Rec]) -> dict[str, int]:
        """The metadata after the `do` statements of the states on the path, over the current values."""
        meta: dict[str, int] = {}

        def leaf_at(rec_i: int) -> Callable[[ir.Expr], int | None]:
            def leaf(x: ir.Expr) -> int | None:
                if isinstance(x, ir.MetaRef):
                    return meta.get(x.name, 0)
                if isinstance(x, ir.FieldRef):
                    ref = self._ref(x, recs, rec_i)
                    return ref.get() if ref is not None else 0
                if isinstance(x, ir.Valid):
                    return int(any(r.instance == x.instance and (x.index is None or r.index == x.index)
                                   for r in recs[:rec_i + 1]))
                if isinstance(x, ir.Present | ir.StdRef):
                    raise PacketBuildError("the generator does not follow present() or std.* in parser statements")
                return None
            return leaf

        def run(stmts: list[ir.Stmt], leaf: Callable[[ir.Expr], int | None]) -> None:
            for s in stmts:
                if isinstance(s, ir.Assign) and isinstance(s.target, ir.MetaRef):
                    meta[s.target.name] = eval_header_expr(s.value, {}, leaf) & ((1 << s.target.width) - 1)
                elif isinstance(s, ir.If):
                    run(s.then if eval_header_expr(s.cond, {}, leaf) else s.otherwise, leaf)

        for rec_i, step in upto:
            run(self.prog.parser.states[step.state].do, leaf_at(rec_i))
        return meta

    def _steer_conditions(self, sel_at: list[tuple[int, Step]], recs: list[Rec]) -> None:
        """A field an `if` in a parser state compares with a constant gets that constant (or a neighbour) three
        times in four, so both branches are drawn within a few retries (a random 13-bit fragment offset is
        almost never 0)."""
        for rec_i, step in sel_at:
            for left, right in self.facts.steered[step.state]:
                ref = self._ref(left, recs, rec_i)
                if ref is None or ref.fixed() or self.rng.random() < 0.25:
                    continue
                v = (right + self.rng.choice((0, 0, 0, 1, -1))) & ((1 << left.width) - 1)
                for rec, f, lo, n in ref.pieces:
                    rec.values[f] = (rec.values[f] & ~(((1 << n) - 1) << lo)) | ((v & ((1 << n) - 1)) << lo)

    def _solve_select(self, st: ir.ParserState, edge: int, recs: list[Rec], rec_i: int,
                      upto: list[tuple[int, Step]] | None = None) -> str | None:
        refs: list[_Ref | _Fixed | None] = [
            self._meta_ref(e, recs, upto or []) if isinstance(e, ir.MetaRef) else self._ref(e, recs, rec_i)
            for e in st.select]
        if any(r is None for r in refs):
            return "select reads bits beyond the headers on this path (lookahead into the payload)"
        target = st.cases[edge].keyset if edge >= 0 else [KeyElem("any")] * len(st.select)
        earlier = st.cases[:edge] if edge >= 0 else st.cases
        cand_lists = []
        for j, ref in enumerate(refs):
            assert ref is not None
            width = st.select[j].width
            if ref.fixed():
                cand_lists.append([ref.get()])
            else:
                cand_lists.append(_cands(target[j], width, ref.get(), [c.keyset[j] for c in st.cases]))

        def takes(combo: tuple[int, ...]) -> bool:
            return all(target[j].selects(v) for j, v in enumerate(combo)) and not any(
                all(c.keyset[j].selects(v) for j, v in enumerate(combo)) for c in earlier
            )

        found = next((c for c in itertools.islice(itertools.product(*cand_lists), 5000) if takes(c)), None)
        which = "the default" if edge < 0 else f"case {edge}"
        if found is None:
            # Small spaces are searched exhaustively, so "infeasible" is then a proof, not a guess.
            spaces = [
                [ref.get()] if ref.fixed() else range(1 << st.select[j].width)
                for j, ref in enumerate(refs)
                if ref is not None
            ]
            size = 1
            for sp in spaces:
                size *= len(sp)
            if size > EXHAUSTIVE_SELECT:
                return (
                    f"no value takes {which} among the candidates tried (the space of 2^n values is too big)"
                )
            found = next((c for c in itertools.product(*spaces) if takes(c)), None)
            if found is None and any(isinstance(r, _Fixed) for r in refs):
                return f"no value takes {which} with the metadata this draw's values gave (parser statements)"
            if found is None:
                fixed = " given the values earlier states fixed" if any(r and r.fixed() for r in refs) else ""
                if fixed and all(all(f in rec.planned for rec, f, _, _ in r.pieces)
                                 for r in refs if isinstance(r, _Ref) and r.fixed()):
                    fixed = _PLANNED  # fixed by the overrides alone: no other draw changes them
                return f"no value takes {which}: every value matches an earlier case{fixed} (exhaustive)"
        for ref, v in zip(refs, found, strict=True):
            assert ref is not None
            ref.set(v)
        return None

    def _options_bytes(self, rec: Rec) -> bytes:
        vl = rec.ht.varlen
        if vl is None or vl.tlv is None or not rec.with_options:
            return b""
        tlv = vl.tlv
        out = b""
        for inst in self.prog.instances.values():
            if inst.tlv_parent != rec.instance or inst.tlv_option is None:
                continue
            opt = inst.tlv_option
            size_target = tlv.header_bytes + opt.data_bytes
            hv = {f.name: opt.match.get(f.name, 0) for f in tlv.header}
            free = [f for f in tlv.header if f.name not in opt.match and f.name not in tlv.key]
            found = False
            for f in free:
                for v in range(min(1 << f.width, 4096)):
                    hv[f.name] = v
                    if eval_header_expr(tlv.size, hv) == size_target:
                        found = True
                        break
                if found:
                    break
            if not found and eval_header_expr(tlv.size, hv) != size_target:
                continue
            head = pack_header(ir.HeaderType("h", tlv.header), hv)
            data_vals = {
                f.name: rec.option_values.get((inst.name, f.name), self.rng.getrandbits(f.width))
                for f in opt.fields
            }
            data = pack_header(ir.HeaderType("d", opt.fields), data_vals) if opt.fields else b""
            if len(out) + len(head) + len(data) <= vl.max_bytes:
                out += head + data
        return out

    def _solve_length(self, rec: Rec) -> str | None:
        vl = rec.ht.varlen
        if vl is None:
            return None
        content = self._options_bytes(rec)
        refs = [e for e in ir.walk_expr(vl.length) if isinstance(e, ir.FieldRef)]
        names = list(dict.fromkeys(r.field_name for r in refs))
        free = [n for n in names if n not in rec.fixed]

        def ok(n: int, need: int) -> bool:
            return need <= n <= vl.max_bytes and (n == need or vl.tlv is None or bool(vl.tlv.singletons))

        for attempt in (content, b""):
            need = len(attempt)
            best: tuple[int, int] | None = None
            if free:
                f = rec.ht.field(free[0])
                assert f is not None
                for v, n in _length_table(vl, f, {k: rec.values[k] for k in names if k != f.name}):
                    if ok(n, need) and (best is None or n < best[0]):
                        best = (n, v)
                if best is not None:
                    rec.values[f.name] = best[1]
            else:
                n = eval_header_expr(vl.length, rec.values)
                best = (n, 0) if ok(n, need) else None
            if best is not None:
                pad = best[0] - need
                fill = b""
                if pad and vl.tlv is not None:
                    end = vl.tlv.end[0] if vl.tlv.end else next(iter(vl.tlv.singletons), None)
                    first = vl.tlv.singletons.get(end, 0) if end else 0
                    unit = vl.tlv.singleton_bytes
                    fill = first.to_bytes(unit, "big") + bytes(pad - unit) if pad >= unit else bytes(pad)
                elif pad:
                    fill = bytes(self.rng.getrandbits(8) for _ in range(pad))
                rec.tail = attempt + fill
                return None
        return "no field value gives a varlen length within 0..max"

    def assemble(self, recs: list[Rec], payload: bytes) -> tuple[bytes, list[int]]:
        """Bytes (checksums computed) and each header's start offset."""
        starts, out = [], b""
        for rec in recs:
            cs = rec.ht.checksum
            if cs is not None and cs.kind == "ipv4_header":
                rec.values[cs.field] = 0
                rec.values[cs.field] = ipv4_checksum(pack_header(rec.ht, rec.values, rec.tail))
            starts.append(len(out))
            out += pack_header(rec.ht, rec.values, rec.tail)
        return out + payload, starts
