"""Vector generation: walk the parse graph, solve each path's select constraints into a packet, add error
cases (truncation, stack overflow, bad checksums), then explore table entries derived from the packet's real
key values until every table × action pair and control branch a packet can reach is covered. Expected
results come from the oracle. Deterministic: everything random is drawn from one seeded generator, so the
same spec and seed give byte-identical output.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from c3po_compiler.features import program_features

from .model import ControlState, EntryState, Expected, PacketIn, Registers, Vector
from .packets import eval_header_expr, ipv4_checksum, pack_header
from .tracing import TracingInterpreter, branch_points, infeasible_branches

GENERATOR = "c3po-gen/1"
MAX_PATHS = 1024
MAX_STATES_PER_PACKET = 48
MAX_PAIRS = 400
EXHAUSTIVE_SELECT = 1 << 17  # select value spaces up to this size are searched exhaustively
TERMINALS = ("accept", "reject", "stack_overflow")
PAYLOAD_TYPE = ir.HeaderType("payload", [ir.Field("bytes", 8 * 24, 0)])  # lookaheads may read into it


# --------------------------------------------------------------------------------------------- parse paths

@dataclass(frozen=True)
class Step:
    state: str
    edge: int | None  # case index, -1 for default, None for a state without select
    next: str


@dataclass
class ParsePath:
    steps: list[Step]
    end: str  # accept | reject | stack_overflow

    @property
    def label(self) -> str:
        return "-".join(s.state for s in self.steps) + f"-{self.end}"

    def edges(self) -> list[tuple[str, int | None]]:
        return [(s.state, s.edge) for s in self.steps if s.next != "stack_overflow"]


def unrolled_graph(prog: ir.Program) -> nx.MultiDiGraph:
    """States × stack fill levels, so stack loops unroll up to their size and the graph is acyclic."""
    p = prog.parser
    stacks = sorted({st.extract for st in p.states.values()
                     if st.extract and prog.instances[st.extract].is_stack})
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
            nfill = (*fill[:i], fill[i] + 1, *fill[i + 1:])
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


def enumerate_paths(prog: ir.Program, limit: int = MAX_PATHS) -> list[ParsePath]:
    g = unrolled_graph(prog)
    targets = [t for t in [("accept",), ("reject",), ("stack_overflow",)] if t in g]
    out: list[ParsePath] = []
    for edge_path in nx.all_simple_edge_paths(g, g.graph["start"], targets):
        steps = []
        for edge in edge_path:
            u, v, key = edge[0], edge[1], edge[2]  # type: ignore[misc]
            steps.append(Step(u[0], key[1] if key[0] != "x" else None, v[0]))
        end = edge_path[-1][1][0]
        if end == "stack_overflow":
            steps[-1] = Step(steps[-1].state, None, "stack_overflow")
        out.append(ParsePath(steps, end))
        if len(out) >= limit:
            break
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
    tail: bytes = b""
    with_options: bool = True
    option_values: dict[tuple[str, str], int] = field(default_factory=dict)


def _elem_ok(e: KeyElem, v: int) -> bool:
    if e.kind == "value":
        return v == e.a
    if e.kind == "mask":
        return v & e.b == e.a & e.b
    if e.kind == "range":
        return e.a <= v <= e.b
    return True


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


class Builder:
    """Turns a parse path into concrete header values and bytes."""

    def __init__(self, prog: ir.Program, rng: random.Random) -> None:
        self.prog = prog
        self.rng = rng

    def recs_for(self, path: ParsePath, overrides: dict[tuple[str, str], int], with_options: bool) -> tuple[
            list[Rec], str | None]:
        """Values for every header on the path; returns (records, reason when infeasible)."""
        prog = self.prog
        recs: list[Rec] = []
        counts: dict[str, int] = {}
        sel_at: list[tuple[int, Step]] = []
        for step in path.steps:
            st = prog.parser.states[step.state]
            if (st.extract and step.next != "stack_overflow") or (st.extract and step.next == "stack_overflow"):
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
                    elif iname.startswith(inst.name + "."):
                        rec.option_values[(iname, fname)] = v
                recs.append(rec)
            sel_at.append((len(recs) - 1, step))
        payload = Rec("payload", 0, PAYLOAD_TYPE)
        payload.values["bytes"] = self.rng.getrandbits(PAYLOAD_TYPE.fixed_bits)
        recs.append(payload)
        for rec_i, step in sel_at:
            st = prog.parser.states[step.state]
            if step.edge is None or not st.select:
                continue
            reason = self._solve_select(st, step.edge, recs, rec_i)
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
            for rec in recs[rec_i + 1:]:
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

    def _solve_select(self, st: ir.ParserState, edge: int, recs: list[Rec], rec_i: int) -> str | None:
        refs = [self._ref(e, recs, rec_i) for e in st.select]
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
            return all(_elem_ok(target[j], v) for j, v in enumerate(combo)) and \
                not any(all(_elem_ok(c.keyset[j], v) for j, v in enumerate(combo)) for c in earlier)

        found = next((c for c in itertools.islice(itertools.product(*cand_lists), 5000) if takes(c)), None)
        which = "the default" if edge < 0 else f"case {edge}"
        if found is None:
            # Small spaces are searched exhaustively, so "infeasible" is then a proof, not a guess.
            spaces = [[ref.get()] if ref.fixed() else range(1 << st.select[j].width)
                      for j, ref in enumerate(refs) if ref is not None]
            size = 1
            for sp in spaces:
                size *= len(sp)
            if size > EXHAUSTIVE_SELECT:
                return f"no value takes {which} among the candidates tried (the space of 2^n values is too big)"
            found = next((c for c in itertools.product(*spaces) if takes(c)), None)
            if found is None:
                fixed = " given the values earlier states fixed" if any(r and r.fixed() for r in refs) else ""
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
            data_vals = {f.name: rec.option_values.get((inst.name, f.name), self.rng.getrandbits(f.width))
                         for f in opt.fields}
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


# --------------------------------------------------------------------------------------------- coverage

@dataclass
class Coverage:
    """What the generated vectors cover, against everything there is to cover; items are strings
    ("state->case2", "table.action", "file:line:col:then", "table:hit")."""

    paths_feasible: list[str] = field(default_factory=list)
    paths_covered: set[str] = field(default_factory=set)
    infeasible_paths: dict[str, str] = field(default_factory=dict)
    paths_limited: bool = False  # enumeration stopped at MAX_PATHS
    edges_all: list[str] = field(default_factory=list)
    edges_on_paths: set[str] = field(default_factory=set)  # on some enumerated path, feasible or not
    edges_covered: set[str] = field(default_factory=set)
    pairs_all: list[str] = field(default_factory=list)
    pairs_covered: set[str] = field(default_factory=set)
    unreachable_pairs: dict[str, str] = field(default_factory=dict)
    branches_all: list[str] = field(default_factory=list)
    branches_covered: set[str] = field(default_factory=set)
    unreachable_branches: dict[str, str] = field(default_factory=dict)

    def items(self, r: Any) -> set[str]:
        obs = r.observations
        out: set[str] = set()
        for t, a in obs.get("tables", {}).items():
            out.add(f"{t}.{a}")
        for kind, sid, extra in obs.get("trace", []):
            if kind == "if":
                out.add(f"{sid}:{'then' if extra else 'else'}")
        for t, hit in obs.get("hit", {}).items():
            out.add(f"{t}:{'hit' if hit else 'miss'}")
        return out

    def add(self, items: set[str]) -> bool:
        """Record items; True when one of them was not covered before (the vector is worth keeping)."""
        new = False
        for it in items:
            target = self.pairs_covered if it in self.pairs_all else self.branches_covered \
                if it in self.branches_all else None
            if target is not None and it not in target:
                target.add(it)
                new = True
        return new

    def summary(self) -> dict[str, Any]:
        def part(all_: list[str], cov: set[str], infeasible: dict[str, str]) -> dict[str, Any]:
            feasible = [x for x in all_ if x not in infeasible]
            covered = [x for x in feasible if x in cov]
            return {"total": len(all_), "feasible": len(feasible), "covered": len(covered),
                    "percent": round(100.0 * len(covered) / len(feasible), 1) if feasible else 100.0,
                    "uncovered": [x for x in feasible if x not in cov],
                    "infeasible": [{"item": k, "reason": v} for k, v in infeasible.items()]}

        edges_inf: dict[str, str] = {}
        for e in self.edges_all:
            if e in self.edges_covered:
                continue
            if e in self.edges_on_paths:
                edges_inf[e] = "only on infeasible parse paths"
            elif not self.paths_limited:
                edges_inf[e] = "on no path from the start state (unreachable state)"
        return {"parse_paths": part(self.paths_feasible + list(self.infeasible_paths), self.paths_covered,
                                    self.infeasible_paths),
                "parse_edges": part(self.edges_all, self.edges_covered, edges_inf),
                "table_actions": part(self.pairs_all, self.pairs_covered, self.unreachable_pairs),
                "branches": part(self.branches_all, self.branches_covered, self.unreachable_branches)}


def _edge_name(state: str, edge: int | None) -> str:
    return f"{state}->{'default' if edge == -1 else 'next' if edge is None else f'case{edge}'}"


# --------------------------------------------------------------------------------------------- generator

def _param_value(action: str, param: ir.Param) -> int:
    """Non-trivial but stable action arguments; ports stay small so every target can map them."""
    if "port" in param.name:
        return 2 + int(hashlib.sha256(f"{action}.{param.name}".encode()).hexdigest(), 16) % 6
    h = int(hashlib.sha256(f"{action}.{param.name}".encode()).hexdigest(), 16)
    v = h & ((1 << param.width) - 1)
    return v or 1


def _entry_for(table: ir.Table, keyvals: tuple[int, ...], action: str, prog: ir.Program) -> EntryState:
    match = []
    for k, v in zip(table.keys, keyvals, strict=True):
        w = k.width
        if k.kind == "exact":
            match.append(KeyElem("value", v))
        elif k.kind == "lpm":
            plen = max(1, w - 8) if w > 8 else w
            mask = ((1 << plen) - 1) << (w - plen)
            match.append(KeyElem("prefix", v & mask, plen))
        elif k.kind == "ternary":
            match.append(KeyElem("mask", v, (1 << w) - 1))
        else:
            match.append(KeyElem("range", max(0, v - 1), min((1 << w) - 1, v + 1)))
    args = tuple(_param_value(action, p) for p in prog.actions[action].params)
    return EntryState(table.name, tuple(match), action, args, priority=10)


def _broad(table: ir.Table, keyvals: tuple[int, ...]) -> tuple[KeyElem, ...]:
    """A match that also covers `keyvals` but less specifically than `_entry_for`'s."""
    out = []
    for k, v in zip(table.keys, keyvals, strict=True):
        w = k.width
        if k.kind == "exact":
            out.append(KeyElem("value", v))
        elif k.kind == "lpm":
            plen = max(0, (w - 8) // 2) if w > 8 else max(0, w - 1)
            mask = ((1 << plen) - 1) << (w - plen)
            out.append(KeyElem("prefix", v & mask, plen))
        elif k.kind == "ternary":
            mask = ((1 << (w // 2)) - 1) << (w - w // 2)
            out.append(KeyElem("mask", v & mask, mask))
        else:
            out.append(KeyElem("range", 0, (1 << w) - 1))
    return tuple(out)


def _two_outcomes(table: ir.Table, prog: ir.Program) -> tuple[tuple[str, tuple[int, ...]], tuple[str, tuple[int, ...]]] | None:
    """Two (action, args) a target cannot confuse: other arguments for one action, or two actions."""
    for a in table.actions:
        params = prog.actions[a].params
        if params:
            first = tuple(_param_value(a, p) for p in params)
            second = tuple((x + 1) & ((1 << p.width) - 1) if "port" in p.name else x ^ ((1 << p.width) - 1) or 1
                           for x, p in zip(first, params, strict=True))
            return (a, first), (a, second)
    if len(table.actions) >= 2:
        return (table.actions[0], ()), (table.actions[1], ())
    return None


def _semantics_states(table: ir.Table, keyvals: tuple[int, ...], control: ControlState,
                      prog: ir.Program) -> list[tuple[str, ControlState]]:
    out: list[tuple[str, ControlState]] = []
    for a in table.actions:
        if a != table.default.action:
            args = tuple(_param_value(a, p) for p in prog.actions[a].params)
            out.append((f"default_{a}", ControlState(control.entries, (*control.defaults, (table.name, a, args)))))
    outcomes = _two_outcomes(table, prog)
    if outcomes is None or all(k.kind == "exact" for k in table.keys):
        return out
    (a1, x1), (a2, x2) = outcomes
    narrow = _entry_for(table, keyvals, a1, prog).match
    broad = _broad(table, keyvals)

    def entry(match: tuple[KeyElem, ...], act: str, args: tuple[int, ...], prio: int) -> EntryState:
        return EntryState(table.name, match, act, args, prio)

    if table.uses_priority:
        out.append(("priority_wins", ControlState((*control.entries, entry(narrow, a1, x1, 5),
                                                   entry(broad, a2, x2, 10)), control.defaults)))
        out.append(("tie_first_installed", ControlState((*control.entries, entry(broad, a2, x2, 7),
                                                         entry(narrow, a1, x1, 7)), control.defaults)))
    elif table.lpm_key is not None:
        out.append(("longest_prefix", ControlState((*control.entries, entry(broad, a2, x2, 0),
                                                    entry(narrow, a1, x1, 0)), control.defaults)))
        out.append(("longest_prefix_installed_first", ControlState((*control.entries, entry(narrow, a1, x1, 0),
                                                                    entry(broad, a2, x2, 0)), control.defaults)))
    return out


def _atoms(prog: ir.Program) -> list[tuple[str, str, int]]:
    """(instance, field, value) candidates from if-conditions and group `when`s, so both branches occur."""
    out: list[tuple[str, str, int]] = []
    bodies = [prog.control, *(a.body for a in prog.user_actions.values())]
    exprs: list[ir.Expr] = []
    for body in bodies:
        for s in ir.walk_stmts(body):
            exprs += ir.stmt_exprs(s)
    for e in exprs:
        for sub in ir.walk_expr(e):
            if isinstance(sub, ir.Binary) and sub.op in ("==", "!=", "<", "<=", ">", ">="):
                for a, b in ((sub.left, sub.right), (sub.right, sub.left)):
                    shift = 0
                    if isinstance(a, ir.Slice | ir.Cast) and isinstance(a.operand, ir.FieldRef):
                        shift = a.lo if isinstance(a, ir.Slice) else 0
                        a = a.operand
                    if isinstance(a, ir.FieldRef) and isinstance(b, ir.Const):
                        m = (1 << a.width) - 1
                        for v in (b.value - 1, b.value, b.value + 1):
                            if 0 <= v << shift <= m:
                                out.append((a.instance, a.field_name, v << shift))
    for inst in prog.instances.values():
        for g in inst.type.groups:
            for sub in ir.walk_expr(g.when):
                if isinstance(sub, ir.FieldRef):
                    out += [(inst.name, sub.field_name, 0), (inst.name, sub.field_name, 1)]
    return list(dict.fromkeys(out))


def _option_names(prog: ir.Program, recs: list[Rec]) -> set[str]:
    """TLV option instances that may be valid on a path (any option of a TLV header on it)."""
    names = {r.instance for r in recs}
    return {n for n, i in prog.instances.items() if i.tlv_parent in names}


@dataclass
class Generated:
    vectors: list[Vector]
    coverage: dict[str, Any]


def generate(prog: ir.Program, seed: int = 0, fuzz: int = 0) -> Generated:
    rng = random.Random(seed)
    interp = TracingInterpreter(prog)
    features = sorted(program_features(prog))
    paths = enumerate_paths(prog)
    cov = Coverage()
    for t in prog.tables.values():
        for a in dict.fromkeys([*t.actions, t.default.action]):
            cov.pairs_all.append(f"{t.name}.{a}")
    cov.branches_all = [f"{a}:{b}" for a, b in branch_points(prog)]
    for st in prog.parser.states.values():
        if st.select:
            cov.edges_all += [_edge_name(st.name, i) for i in range(len(st.cases))] + [_edge_name(st.name, -1)]
        else:
            cov.edges_all.append(_edge_name(st.name, None))
    vectors: list[Vector] = []
    names: set[str] = set()

    def emit(name: str, pid: int, control: ControlState, data: bytes, tags: list[str], port: int = 1,
             regs: Registers | None = None) -> Any:
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.add(name)
        interp.install(control)
        r = interp.run([PacketIn(port, data)], regs or {})[0]
        exp = Expected.from_result(r)
        exp.observations.pop("trace", None)
        vectors.append(Vector(name, control, [PacketIn(port, data)], dict(regs or {}), [exp], tags, features,
                              {"spec_hash": prog.source_hash, "generator": GENERATOR, "seed": seed, "path": pid}))
        return r

    def run_with(control: ControlState, data: bytes, port: int, regs: Registers) -> Any:
        interp.install(control)
        return interp.run([PacketIn(port, data)], regs)[0]

    def run(control: ControlState, data: bytes, port: int = 1) -> Any:
        return run_with(control, data, port, {})

    atoms = _atoms(prog)
    builder = Builder(prog, rng)
    accepted: list[tuple[int, ParsePath, list[Rec], bytes, list[int]]] = []
    truncated: set[tuple[tuple[str, ...], int]] = set()
    cov.paths_limited = len(paths) >= MAX_PATHS
    for path in paths:
        cov.edges_on_paths.update(_edge_name(s.state, s.edge) for s in path.steps if s.next != "stack_overflow")
    for pid, path in enumerate(paths):
        recs, reason = builder.recs_for(path, {}, True)
        if reason is None:
            data, starts = builder.assemble(recs, b"")
            recs, starts = recs[:-1], starts[:-1]
            r = run(ControlState(), data)
            expect_err = None if path.end == "accept" else path.end
            planned = [s.state for s in path.steps]
            if r.observations.get("path") != planned or r.observations.get("parser_error") != expect_err:
                reason = (f"built packet parsed as {'-'.join(r.observations.get('path', []))} "
                          f"({r.observations.get('parser_error') or 'accept'})")
        if reason is not None:
            cov.infeasible_paths[path.label] = reason
            continue
        cov.paths_feasible.append(path.label)
        cov.paths_covered.add(path.label)
        for s in path.steps:
            if s.next != "stack_overflow":
                cov.edges_covered.add(_edge_name(s.state, s.edge))
        tag = "parse" if path.end == "accept" else f"parse_error:{path.end}"
        r = emit(f"p{pid:02d}.{path.label}", pid, ControlState(), data, [tag])
        cov.add(cov.items(r))
        if path.end != "accept":
            continue
        accepted.append((pid, path, recs, data, starts))
        # truncation at every header boundary, and one byte into each header
        for i, start in enumerate(starts):
            prefix = (tuple(r.instance for r in recs[: i + 1]), i)
            if prefix in truncated:
                continue
            truncated.add(prefix)
            for c in ([start] if i else []) + [start + 1]:
                emit(f"p{pid:02d}.trunc{c}", pid, ControlState(), data[:c], ["truncated"])
        for i, rec in enumerate(recs):
            vst = next((prog.parser.states[s.state] for s in path.steps
                        if prog.parser.states[s.state].extract == rec.instance), None)
            cs = rec.ht.checksum
            if vst is not None and rec.instance in vst.verify and cs is not None:
                f = rec.ht.field(cs.field)
                assert f is not None
                bit = starts[i] * 8 + f.offset + f.width - 1
                bad = bytearray(data)
                bad[bit // 8] ^= 0x80 >> (bit % 8)
                emit(f"p{pid:02d}.bad_checksum.{rec.instance}", pid, ControlState(), bytes(bad), ["checksum"])

    # control exploration: packets (base and field variants) × control states derived from the key values
    port_values = sorted({_param_value(act.name, prm) for act in prog.actions.values() for prm in act.params
                          if "port" in prm.name})
    first_apply: dict[str, tuple[int, bytes, int, ControlState, Registers, tuple[int, ...]]] = {}
    header_sets = [{r.instance if not prog.instances[r.instance].is_stack else f"{r.instance}[{r.index}]"
                    for r in recs} | _option_names(prog, recs) for _pid, _path, recs, _d, _s in accepted]
    infeasible = infeasible_branches(prog, header_sets)

    def remaining() -> bool:
        return any(b not in cov.branches_covered and b not in infeasible for b in cov.branches_all)

    # phase 1: each packet alone and with single-field variants; phase 2 (only while branches are left):
    # pairs of variants, for conditions like `syn == 1 && ack == 0`
    for phase in (1, 2):
        for pid, path, recs, data, _starts in accepted:
            if phase == 2 and not remaining():
                break
            insts = {r.instance for r in recs}
            tlv = any(r.ht.varlen and r.ht.varlen.tlv for r in recs)
            relevant = [a for a in atoms if a[0].split(".", 1)[0] in insts]

            def variant(over: tuple[tuple[str, str, int], ...], with_options: bool, pid: int = pid,
                        path: ParsePath = path) -> bytes | None:
                key = ",".join(f"{i}.{f}={v}" for i, f, v in over) + ("" if with_options else "/noopt")
                b2 = Builder(prog, random.Random(f"{seed}/{pid}/{key}"))
                built, reason = b2.recs_for(path, {(i, f): v for i, f, v in over}, with_options)
                if reason is not None:
                    return None
                vdata = b2.assemble(built, b"")[0]
                probe = run(ControlState(), vdata)
                return vdata if probe.observations.get("path") == [s.state for s in path.steps] else None

            def explore(vname: str, vdata: bytes, ports: list[int], pid: int = pid) -> None:
                for port in ports:
                    queue: list[tuple[ControlState, Registers, list[str]]] = [(ControlState(), {}, [])]
                    explored = 0
                    while queue and explored < MAX_STATES_PER_PACKET:
                        control, regs, label = queue.pop(0)
                        explored += 1
                        interp.install(control)
                        r = interp.run([PacketIn(port, vdata)], regs)[0]
                        if cov.add(cov.items(r)):
                            suffix = ".".join(label) or "empty"
                            where = "" if port == 1 else f".port{port}"
                            emit(f"p{pid:02d}.{vname}{where}.{suffix}", pid, control, vdata, ["control"], port, regs)
                        have = {e.table for e in control.entries}
                        for kind, tname, keyvals in r.observations.get("trace", []):
                            if kind != "apply" or tname in have:
                                continue
                            first_apply.setdefault(tname, (pid, vdata, port, control, regs, keyvals))
                            table = prog.tables[tname]
                            for act in table.actions:
                                e = _entry_for(table, keyvals, act, prog)
                                queue.append((ControlState((*control.entries, e)), regs,
                                              [*label, f"{tname}={act}"]))
                        if not regs and r.registers:
                            # registers this packet wrote: start them near their maximum (threshold tests)
                            high = {k: (1 << prog.registers[k[0]].width) - 2 for k in r.registers}
                            queue.append((control, high, [*label, "registers_high"]))

            option_modes = [True, False] if tlv else [True]
            if phase == 1:
                explore("base", data, [1, *port_values])
                for with_options in option_modes:
                    for atom in relevant:
                        vdata = variant((atom,), with_options)
                        if vdata is not None:
                            explore(f"{atom[0]}.{atom[1]}={atom[2]:#x}" + ("" if with_options else ".no_options"),
                                    vdata, [1])
                    if not with_options:
                        vdata = variant((), False)
                        if vdata is not None:
                            explore("no_options", vdata, [1])
            else:
                for with_options in option_modes:
                    for a1, a2 in itertools.islice(itertools.combinations(relevant, 2), MAX_PAIRS):
                        if not remaining():
                            break
                        if (a1[0], a1[1]) == (a2[0], a2[1]):
                            continue
                        vdata = variant((a1, a2), with_options)
                        if vdata is not None:
                            explore(f"{a1[0]}.{a1[1]}={a1[2]:#x}+{a2[0]}.{a2[1]}={a2[2]:#x}"
                                    + ("" if with_options else ".no_options"), vdata, [1])

    def complete(state: ControlState, vdata: bytes, port: int, regs: Registers, skip: str) -> ControlState:
        """Entries for the tables applied downstream, matching what this packet carries there, so which entry
        won upstream (through metadata it wrote) shows in the output."""
        for _ in range(len(prog.tables)):
            r = run_with(state, vdata, port, regs)
            have = {skip, *(e.table for e in state.entries)}
            nxt = next(((t, k) for kind, t, k in r.observations.get("trace", [])
                        if kind == "apply" and t not in have), None)
            if nxt is None:
                break
            table = prog.tables[nxt[0]]
            act = next((a for a in table.actions if prog.actions[a].params), table.actions[0])
            state = ControlState((*state.entries, _entry_for(table, nxt[1], act, prog)), state.defaults)
        return state

    # Match semantics and default overrides, once per table: the control-plane behaviour coverage cannot see
    # (longest prefix, priorities, the install-order tie-break, a replaced default action).
    for tname in prog.tables:
        if tname not in first_apply:
            continue
        pid, vdata, port, control, regs, keyvals = first_apply[tname]
        for label, state in _semantics_states(prog.tables[tname], keyvals, control, prog):
            emit(f"sem.{tname}.{label}", pid, complete(state, vdata, port, regs, tname), vdata, ["match_semantics"],
                 port, regs)

    for item, why in infeasible.items():
        if item not in cov.branches_covered:
            cov.unreachable_branches[item] = why
    for t in prog.tables.values():
        if f"{t.name}:hit" in cov.unreachable_branches and f"{t.name}:miss" in cov.unreachable_branches:
            for pair in cov.pairs_all:
                if pair.startswith(f"{t.name}.") and pair not in cov.pairs_covered:
                    cov.unreachable_pairs[pair] = cov.unreachable_branches[f"{t.name}:hit"]
    summary = cov.summary()
    for part in ("table_actions", "branches"):
        summary[part]["note"] = ("'uncovered' items were reached by no packet of any feasible parse path under any "
                                 "derived control state: either infeasible (e.g. a condition contradicting the "
                                 "parse graph) or beyond the generator's search")
    if fuzz:
        vectors += fuzz_vectors(prog, paths, cov, seed, fuzz, interp, features)
    return Generated(vectors, summary)


def fuzz_vectors(prog: ir.Program, paths: list[ParsePath], cov: Coverage, seed: int, n: int,
                 interp: TracingInterpreter, features: list[str]) -> list[Vector]:
    """Random packets drawn from the parse graph: valid, mutated (bit flips) or truncated; seeded."""
    rng = random.Random(f"fuzz/{seed}")
    feasible = [p for p in paths if p.label in cov.paths_covered]
    out: list[Vector] = []
    interp.install(ControlState())
    for i in range(n):
        b = Builder(prog, rng)
        data = b""
        if feasible:
            path = feasible[rng.randrange(len(feasible))]
            recs, reason = b.recs_for(path, {}, rng.random() < 0.5)
            if reason is None:
                data = b.assemble(recs, b"")[0]
                data = data[: len(data) - rng.randrange(0, 24)]
        if not data:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        mode = rng.choice(["valid", "mutated", "truncated"])
        if mode == "mutated":
            buf = bytearray(data)
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
            data = bytes(buf)
        elif mode == "truncated" and len(data) > 1:
            data = data[: rng.randrange(1, len(data))]
        port = rng.randrange(0, 8)
        r = interp.run([PacketIn(port, data)], {})[0]
        exp = Expected.from_result(r)
        exp.observations.pop("trace", None)
        out.append(Vector(f"fuzz{i:04d}.{mode}", ControlState(), [PacketIn(port, data)], {}, [exp], ["fuzz", mode],
                          features, {"spec_hash": prog.source_hash, "generator": GENERATOR + "/fuzz", "seed": seed,
                                     "path": i}))
    return out
