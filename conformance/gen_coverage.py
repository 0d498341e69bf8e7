"""What generated vectors cover: parse paths, parse edges, table × action pairs, control branches and
statements, each against the total, with the infeasible items and why.

A statement counts as executed when it ran, except update_checksum, which counts only when the update
changed a checksum: an update over unchanged fields leaves the same bytes as no update at all, so a vector
that merely runs it cannot tell a target that updates from one that does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from c3po_compiler import ir

from .gen_paths import ParsePath
from .tracing import parser_bodies, statement_points, stmt_id, tri


@dataclass
class ClassCoverage:
    """One gap class of gen_classes: its items ("t#0.udp.dst_port:hi+1"), those a vector covers, and those
    no vector can (with why)."""

    all: list[str] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)
    infeasible: dict[str, str] = field(default_factory=dict)


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
    # statement coverage ("stmt:file:line:col"); an update_checksum counts only when it changed a checksum
    stmts_all: list[str] = field(default_factory=list)
    stmts_covered: set[str] = field(default_factory=set)
    unreachable_stmts: dict[str, str] = field(default_factory=dict)
    # per gap class (gen_classes.CLASSES), reported after the structural parts
    classes: dict[str, ClassCoverage] = field(default_factory=dict)

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
        trace = obs.get("trace", [])
        changed = {request for kind, request, did in trace if kind == "checksum" and did}
        for kind, sid, extra in trace:
            if kind == "stmt" or (kind == "stmt_checksum" and extra in changed):
                out.add(f"stmt:{sid}")
        return out

    def add(self, items: set[str]) -> bool:
        """Record items; True when one of them was not covered before (the vector is worth keeping)."""
        new = False
        for it in items:
            target = (
                self.pairs_covered
                if it in self.pairs_all
                else self.branches_covered
                if it in self.branches_all
                else self.stmts_covered
                if it in self.stmts_all
                else None
            )
            if target is not None and it not in target:
                target.add(it)
                new = True
        return new

    def summary(self) -> dict[str, Any]:
        def part(all_: list[str], cov: set[str], infeasible: dict[str, str]) -> dict[str, Any]:
            feasible = [x for x in all_ if x not in infeasible]
            covered = [x for x in feasible if x in cov]
            return {
                "total": len(all_),
                "feasible": len(feasible),
                "covered": len(covered),
                "percent": round(100.0 * len(covered) / len(feasible), 1) if feasible else 100.0,
                "uncovered": [x for x in feasible if x not in cov],
                "infeasible": [{"item": k, "reason": v} for k, v in infeasible.items()],
            }

        edges_inf: dict[str, str] = {}
        for e in self.edges_all:
            if e in self.edges_covered:
                continue
            if e in self.edges_on_paths:
                edges_inf[e] = "only on infeasible parse paths"
            elif not self.paths_limited:
                edges_inf[e] = "on no path from the start state (unreachable state)"
        out = {
            "parse_paths": part(
                self.paths_feasible + list(self.infeasible_paths), self.paths_covered, self.infeasible_paths
            ),
            "parse_edges": part(self.edges_all, self.edges_covered, edges_inf),
            "table_actions": part(self.pairs_all, self.pairs_covered, self.unreachable_pairs),
            "branches": part(self.branches_all, self.branches_covered, self.unreachable_branches),
            "statements": part(self.stmts_all, self.stmts_covered, self.unreachable_stmts),
        }
        for name, c in self.classes.items():
            out[name] = {**part(list(dict.fromkeys(c.all)), c.covered, c.infeasible), "class": True}
        return out


def edge_name(state: str, edge: int | None) -> str:
    return f"{state}->{'default' if edge == -1 else 'next' if edge is None else f'case{edge}'}"


# ------------------------------------------------------------------------------------ per parse path, per copy

CTX_LIMIT = 32  # distinct copies (split contexts) of the control per parse path before falling back to none
WALK_LIMIT = 20000  # walk states per parse path, likewise
PATH_PARTS = ("per_path_table_actions", "per_path_branches", "per_path_statements")


def _effects(prog: ir.Program, stmts: list[ir.Stmt], seen: frozenset[str] = frozenset()) -> frozenset[Any]:
    """What a target's static view of a packet can tell apart after `stmts`: verdicts set, headers made valid
    or invalid, checksum updates requested (through called actions and applied tables' actions too)."""
    out: set[Any] = set()
    for s in ir.walk_stmts(stmts):
        if isinstance(s, ir.SetVerdict):
            out.add(("verdict", s.verdict.value))
        elif isinstance(s, ir.SetValid):
            out.add(("valid", s.instance, s.index, s.valid))
        elif isinstance(s, ir.UpdateChecksum):
            out.add(("csum", s.instance, s.pseudo))
        elif isinstance(s, ir.CallAction) and s.action not in seen:
            out |= _effects(prog, prog.actions[s.action].body, seen | {s.action})
        elif isinstance(s, ir.Apply):
            for a in _table_actions(prog.tables[s.table]):
                if a not in seen:
                    out |= _effects(prog, prog.actions[a].body, seen | {a})
    return frozenset(out)


def _table_actions(t: ir.Table) -> list[str]:
    return list(dict.fromkeys([*t.actions, t.default.action, *(e.action.action for e in t.entries)]))


@dataclass
class SplitPoints:
    """Where a target that copies the rest of the control per branch (xdp's tree-shaped parser, one copy per
    parse path, split again where branches end in different static views of the packet) makes copies: the ifs
    whose branches, tables whose actions, and tables whose hit/miss bodies differ in their effects."""

    ifs: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    hitmiss: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, prog: ir.Program) -> SplitPoints:
        sp = cls()
        for body in [prog.control, *(a.body for a in prog.user_actions.values())]:
            for s in ir.walk_stmts(body):
                if isinstance(s, ir.If) and _effects(prog, s.then) != _effects(prog, s.otherwise):
                    sp.ifs.add(stmt_id(s))
                elif isinstance(s, ir.Apply):
                    t = prog.tables[s.table]
                    sigs = {
                        _effects(prog, [*prog.actions[a].body, *s.by_action.get(a, [])]) for a in _table_actions(t)
                    }
                    if len(sigs) > 1:
                        sp.actions.add(s.table)
                    if _effects(prog, s.hit) != _effects(prog, s.miss):
                        sp.hitmiss.add(s.table)
        return sp


_CMP = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _field_key(e: ir.FieldRef) -> str | None:
    if isinstance(e.index, str):
        return None
    return f"{e.instance}{'' if e.index is None else f'[{e.index}]'}.{e.field_name}"


def _known(e: ir.Expr, meta: dict[str, int]) -> int | None:
    """The value of `e` when it is a constant, or metadata or a header field whose value the walk knows (None:
    unknown)."""
    if isinstance(e, ir.Const) and not e.is_bool:
        return e.value
    if isinstance(e, ir.MetaRef):
        return meta.get(e.name)
    if isinstance(e, ir.FieldRef):
        key = _field_key(e)
        return None if key is None else meta.get(key)
    if isinstance(e, ir.Cast):
        v = _known(e.operand, meta)
        return None if v is None else v & ((1 << e.to) - 1)
    return None


def cond3(e: ir.Expr, valid: frozenset[str], maybe: frozenset[str], meta: dict[str, int]) -> bool | None:
    """A condition's value from header validity and the metadata known on a parse path (None: depends on
    values): `meta.family != 0` is false on a path whose parser never set meta.family."""
    if isinstance(e, ir.Binary) and e.op in _CMP:
        a, b = _known(e.left, meta), _known(e.right, meta)
        return None if a is None or b is None else bool(_CMP[e.op](a, b))
    if isinstance(e, ir.Unary) and e.op == "!":
        v = cond3(e.operand, valid, maybe, meta)
        return None if v is None else not v
    if isinstance(e, ir.Binary) and e.op in ("&&", "||"):
        x, y = cond3(e.left, valid, maybe, meta), cond3(e.right, valid, maybe, meta)
        if e.op == "&&":
            return False if False in (x, y) else True if x is True and y is True else None
        return True if True in (x, y) else False if x is False and y is False else None
    return tri(e, valid, maybe)


def select_fixed(prog: ir.Program, path: ParsePath) -> dict[str, int]:
    """Header fields whose value a parse path fixes: a select case that takes one exact value of a field
    (`mpls.last.bos` is 1 under the bottom label)."""
    out: dict[str, int] = {}
    counts: dict[str, int] = {}
    for step in path.steps:
        st = prog.parser.states.get(step.state)
        if st is None:
            continue
        if st.extract:
            counts[st.extract] = counts.get(st.extract, 0) + 1
        if step.edge is None or step.edge < 0 or not st.select or step.next == "stack_overflow":
            continue
        for e, k in zip(st.select, st.cases[step.edge].keyset, strict=True):
            full = (1 << e.width) - 1 if e.width > 0 else -1
            if not isinstance(e, ir.FieldRef) or not (k.kind == "value" or (k.kind == "mask" and k.b == full)):
                continue
            inst = prog.instances[e.instance]
            index = e.index if isinstance(e.index, int) else counts.get(e.instance, 1) - 1 if inst.is_stack else None
            key = _field_key(ir.FieldRef(e.instance, index, e.field_name, e.group))
            if key is not None:
                out[key] = k.a
    return out


def path_key(states: list[str]) -> str:
    """A parse path as the states it went through (parallel cases to the same state are one path here)."""
    return "-".join(states)


def path_item(path: str, ctx: tuple[str, ...], item: str) -> str:
    """"ethernet-ipv4-tcp [nat44.yaml:76:5:then routes.to_host] stmt:spec/examples/nat44.yaml:82:17"."""
    return f"{path} [{' '.join(x.rsplit('/', 1)[-1] for x in ctx) or 'one copy'}] {item}"


@dataclass
class _Walk:
    """One parse path's walk through the control: every (copy, item) a packet on it can reach."""

    prog: ir.Program
    split: SplitPoints
    stmt_ids: set[str]
    valid0: frozenset[str]
    maybe: frozenset[str]
    fixed: dict[str, int]
    items: set[tuple[str, tuple[str, ...], str]] = field(default_factory=set)  # (part, copy, item)
    ctxs: set[tuple[str, ...]] = field(default_factory=set)
    seen: set[Any] = field(default_factory=set)
    lists: dict[int, list[ir.Stmt]] = field(default_factory=dict)

    def frame(self, stmts: list[ir.Stmt]) -> tuple[int, int]:
        self.lists[id(stmts)] = stmts
        return (id(stmts), 0)

    def run(self, start: list[list[ir.Stmt]]) -> bool:
        """Walk; False when the path has more copies than CTX_LIMIT (or the walk more states than WALK_LIMIT)."""
        meta0 = frozenset({m: 0 for m in self.prog.metadata}.items() | self.fixed.items())  # metadata starts at 0
        start_state: Any = (tuple(self.frame(b) for b in start if b), (), frozenset(), self.prog.default_verdict,
                       self.valid0, meta0)
        todo: list[Any] = [start_state]
        while todo:
            state = todo.pop()
            if state in self.seen:
                continue
            self.seen.add(state)
            if len(self.seen) > WALK_LIMIT or len(self.ctxs) > CTX_LIMIT:
                return False
            todo += self.step(*state)
        return True

    def add(self, part: str, ctx: tuple[str, ...], item: str) -> None:
        self.ctxs.add(ctx)
        self.items.add((f"per_path_{part}", ctx, item))

    def step(
        self,
        frames: tuple[tuple[int, int], ...],
        ctx: tuple[str, ...],
        pending: frozenset[tuple[str, str]],
        verdict: str | None,
        valid: frozenset[str],
        meta: frozenset[tuple[str, int]],
    ) -> list[Any]:
        if not frames:
            if verdict != "drop":  # checksums are updated at deparse; a dropped frame has none
                for sid, inst in pending:
                    # and only a valid header's: update_checksum(ipv4) in an action that IPv6 packets also run
                    if tri(ir.Valid(inst, None), valid, self.maybe) is not False:
                        self.add("statements", ctx, f"stmt:{sid}")
            return []
        (lid, i), rest = frames[0], frames[1:]
        stmts = self.lists[lid]
        if i >= len(stmts):
            return [(rest, ctx, pending, verdict, valid, meta)]
        s = stmts[i]
        after = ((lid, i + 1), *rest)
        sid = stmt_id(s)
        if sid in self.stmt_ids and not isinstance(s, ir.UpdateChecksum):
            self.add("statements", ctx, f"stmt:{sid}")
        prog = self.prog
        if isinstance(s, ir.If):
            out = []
            for want, body, label in ((True, s.then, "then"), (False, s.otherwise, "else")):
                if cond3(s.cond, valid, self.maybe, dict(meta)) not in (None, want):
                    continue
                item = f"{sid}:{label}"
                if (s.then or s.otherwise) and sid in self.stmt_ids:
                    self.add("branches", ctx, item)
                sub = (*ctx, item) if sid in self.split.ifs else ctx
                out.append(((self.frame(body), *after), sub, pending, verdict, valid, meta))
            return out
        if isinstance(s, ir.Apply):
            t = prog.tables[s.table]
            out = []
            for a in _table_actions(t):
                for hit in (True, False):
                    if (hit and a not in t.actions and all(e.action.action != a for e in t.entries)) or (
                        not hit and a != t.default.action
                    ):
                        continue
                    hm = f"{t.name}:{'hit' if hit else 'miss'}"
                    self.add("table_actions", ctx, f"{t.name}.{a}")
                    self.add("branches", ctx, hm)
                    sub = ctx + ((f"{t.name}.{a}",) if t.name in self.split.actions else ())
                    sub += (hm,) if t.name in self.split.hitmiss else ()
                    bodies = [prog.actions[a].body, s.hit if hit else s.miss, s.by_action.get(a, [])]
                    out.append(((*(self.frame(b) for b in bodies), *after), sub, pending, verdict, valid, meta))
            return out
        if isinstance(s, ir.CallAction):
            return [((self.frame(prog.actions[s.action].body), *after), ctx, pending, verdict, valid, meta)]
        if isinstance(s, ir.SetVerdict):
            verdict = s.verdict.value
        elif isinstance(s, ir.SetValid):
            stack = prog.instances[s.instance].is_stack
            hdr = s.instance if not stack or s.index is None else f"{s.instance}[{s.index}]"
            valid = valid | {hdr} if s.valid else valid - {hdr}
            meta = frozenset((k, v) for k, v in meta if not k.startswith((f"{s.instance}.", f"{s.instance}[")))
        elif isinstance(s, ir.UpdateChecksum) and sid in self.stmt_ids:
            pending = pending | {(sid, s.instance)}
        elif isinstance(s, ir.Assign) and isinstance(s.target, ir.MetaRef | ir.FieldRef):
            known = dict(meta)
            target = s.target.name if isinstance(s.target, ir.MetaRef) else _field_key(s.target)
            v = _known(s.value, known)
            known.pop(target or "", None)
            if v is not None and target is not None:
                known[target] = v & ((1 << s.target.width) - 1) if s.target.width > 0 else v
            meta = frozenset(known.items())
        return [(after, ctx, pending, verdict, valid, meta)]


@dataclass
class PathCoverage:
    """Coverage per parse path and per copy of the control a target makes on it (see SplitPoints): items
    "PATH [CTX] ITEM" where CTX is the branches and actions taken at the split points before ITEM (all of
    them for a checksum update, which runs in each copy's deparser) and ITEM a table × action pair, a branch
    or a statement, named as in the structural parts."""

    prog: ir.Program
    split: SplitPoints
    all: dict[str, list[str]] = field(default_factory=lambda: {p: [] for p in PATH_PARTS})
    covered: set[str] = field(default_factory=set)
    with_ctx: set[str] = field(default_factory=set)  # paths whose copies are told apart
    owner: dict[str, str] = field(default_factory=dict)  # item -> part
    const_hits: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)  # runs, all hit a constant
    names: dict[str, tuple[str, tuple[str, ...], str]] = field(default_factory=dict)  # item -> (path, copy, what)
    counts: dict[str, int] = field(default_factory=dict)  # runs that reached each item
    guards: dict[str, list[str]] = field(default_factory=dict)  # statement id -> the branches it is under
    why_memo: dict[str, str | None] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)  # path -> its items no vector reached yet

    @classmethod
    def of(cls, prog: ir.Program, paths: list[tuple[ParsePath, set[str], set[str]]]) -> PathCoverage:
        """`paths`: each accepted parse path, the headers valid after it and the TLV options that may be."""
        # the parser's `do` statements run on the walk (they set metadata the control tests) but are not items:
        # a target's parser code is per state, not per path
        parser_ids = {stmt_id(s) for body in parser_bodies(prog) for s in ir.walk_stmts(body)}
        stmt_ids = {sid for sid, _, _ in statement_points(prog)} - parser_ids
        pc = cls(prog, SplitPoints.of(prog))
        pc.guards = {sid: all_of for sid, all_of, _ in statement_points(prog)}
        groups: dict[str, tuple[ParsePath, set[str], set[str], dict[str, int]]] = {}
        for path, valid, maybe in paths:
            key = path_key([s.state for s in path.steps])
            fixed = select_fixed(prog, path)
            if key in groups:  # parallel cases to the same state: what both fix
                first = groups[key]
                fixed = {k: v for k, v in first[3].items() if fixed.get(k) == v}
                path, valid, maybe = first[0], first[1] | valid, first[2] | maybe
            groups[key] = (path, valid, maybe, fixed)
        for key, (path, valid, maybe, fixed) in groups.items():
            states = [s.state for s in path.steps]
            do = [prog.parser.states[s].do for s in states if s in prog.parser.states]
            w = _Walk(prog, pc.split, stmt_ids, frozenset(valid), frozenset(maybe), fixed)
            if w.run([*do, prog.control]):
                pc.with_ctx.add(key)
            else:
                w = _Walk(prog, SplitPoints(), stmt_ids, frozenset(valid), frozenset(maybe), fixed)
                w.run([*do, prog.control])
            for part, ctx, item in sorted(w.items):
                name = path_item(key, ctx, item)
                pc.all[part].append(name)
                pc.owner[name] = part
                pc.names[name] = (key, ctx, item)
                pc.left[key] = pc.left.get(key, 0) + 1
        return pc

    def items(self, r: Any) -> set[str]:
        """The items a run of the oracle (TracingInterpreter) reached."""
        obs = r.observations
        if obs.get("parser_error") is not None or "trace" not in obs:
            return set()
        key = path_key(obs.get("path", []))
        split = self.split if key in self.with_ctx else SplitPoints()
        ctx: tuple[str, ...] = ()
        out: set[str] = set()
        trace = obs["trace"]
        changed = {request for kind, request, did in trace if kind == "checksum" and did}
        pending: list[str] = []
        tables, hits = obs.get("tables", {}), obs.get("hit", {})
        for kind, a, b in trace:
            if kind == "stmt":
                out.add(path_item(key, ctx, f"stmt:{a}"))
            elif kind == "stmt_checksum":
                if b in changed:
                    pending.append(a)
            elif kind == "if":
                item = f"{a}:{'then' if b else 'else'}"
                out.add(path_item(key, ctx, item))
                if a in split.ifs:
                    ctx = (*ctx, item)
            elif kind == "apply" and a in tables:
                act, hm = f"{a}.{tables[a]}", f"{a}:{'hit' if hits.get(a) else 'miss'}"
                out |= {path_item(key, ctx, act), path_item(key, ctx, hm)}
                ctx += ((act,) if a in split.actions else ()) + ((hm,) if a in split.hitmiss else ())
        if r.verdict != "drop":
            out |= {path_item(key, ctx, f"stmt:{sid}") for sid in pending}
        return {x for x in out if x in self.owner}

    def applied_without_entries(self, r: Any, table: str) -> None:
        """Note a run in which `table` had no generated entry: whether one of its constant entries matched."""
        key = (path_key(r.observations.get("path", [])), table)
        n, all_hit = self.const_hits.get(key, (0, True))
        self.const_hits[key] = (n + 1, all_hit and bool(r.observations.get("hit", {}).get(table)))

    def why_not(self, item: str) -> str | None:
        """Why an item no vector reached cannot be reached, where the runs show it: a miss of a table that a
        constant entry matched in every run on the path (the generator cannot take constant entries away); a
        branch whose condition ran on the path, in that copy, and always went the other way (it depends on
        values the parse path constrains beyond what the walk follows: a range, a sum); an item under one of
        those."""
        if item in self.why_memo:
            return self.why_memo[item]
        self.why_memo[item] = None  # cycles
        key, ctx, what = self.names[item]
        why: str | None = None
        if what.endswith(":miss"):
            table = what[: -len(":miss")]
            n, all_hit = self.const_hits.get((key, table), (0, False))
            if n and all_hit:
                why = (f"every packet on this path that reached {table} ({n} drawn) matched one of its constant "
                       "entries: no control state removes them")
        elif what.endswith((":then", ":else")):
            n = self.counts.get(path_item(key, ctx, f"stmt:{what.rsplit(':', 1)[0]}"), 0)
            if n:
                why = (f"its condition ran {n} times on this path in this copy and never went this way (values the "
                       "parse path constrains; not proven)")
        if why is None and what.startswith("stmt:"):
            for g in self.guards.get(what[len("stmt:"):], []):
                for k in range(len(ctx), -1, -1):
                    outer = path_item(key, ctx[:k], g)
                    if outer in self.owner and outer not in self.covered and (w := self.why_not(outer)):
                        why = f"under {g}: {w}"
                        break
                if why:
                    break
        if why is None:
            # a copy reached only through a branch judged unreachable
            for k in range(len(ctx)):
                outer = path_item(key, ctx[:k], ctx[k])
                if outer in self.owner and outer not in self.covered and (w := self.why_not(outer)):
                    why = f"in the copy after {ctx[k]}: {w}"
                    break
        self.why_memo[item] = why
        return why

    def add(self, items: set[str]) -> bool:
        for x in items:
            self.counts[x] = self.counts.get(x, 0) + 1
        new = items - self.covered
        self.covered |= new
        for x in new:
            self.left[self.names[x][0]] -= 1
        return bool(new)

    def remaining(self, key: str) -> bool:
        return self.left.get(key, 0) > 0

    def summary(self) -> dict[str, Any]:
        """The three per-path parts, in the structural parts' shape. An item no vector reached is 'uncovered':
        the walk knows header validity only, so a copy whose conditions contradict each other (or a checksum
        update in a copy where nothing it covers changes) is counted as feasible."""
        out: dict[str, Any] = {}
        for part in PATH_PARTS:
            all_ = self.all[part]
            infeasible = {x: why for x in all_ if x not in self.covered and (why := self.why_not(x))}
            feasible = [x for x in all_ if x not in infeasible]
            covered = [x for x in feasible if x in self.covered]
            out[part] = {
                "total": len(all_),
                "feasible": len(feasible),
                "covered": len(covered),
                "percent": round(100.0 * len(covered) / len(feasible), 1) if feasible else 100.0,
                "uncovered": [x for x in feasible if x not in self.covered],
                "infeasible": [{"item": k, "reason": v} for k, v in infeasible.items()],
                "note": "per parse path (its states) and per copy of the control a target may make on it "
                "(in brackets: the branches and actions taken at the split points before the item)",
            }
        return out
