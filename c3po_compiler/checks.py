"""Semantic checks on the IR: an ordered list of small passes, each `run(program) -> list[Problem]`.

Name resolution and widths are already checked while lowering; these passes reason about the program as a
whole (paths through the parse graph, emission order, what may be invalid where).
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from . import ir
from .expr import KeyElem
from .problems import Loc, Problem, error, warning

Check = Callable[[ir.Program], list[Problem]]


def unreachable_states(prog: ir.Program) -> list[Problem]:
    p = prog.parser
    if p.start not in p.graph:
        return []
    reach = nx.descendants(p.graph, p.start) | {p.start}
    return [warning(st.loc, f"parser state '{name}' is unreachable from '{p.start}'",
                    "remove it or add a transition to it")
            for name, st in p.states.items() if name not in reach]


def unbounded_cycles(prog: ir.Program) -> list[Problem]:
    """Every loop must pass through a state extracting a header stack: the stack size bounds it."""
    p = prog.parser
    bounded = {n for n, st in p.states.items() if st.extract and prog.instances[st.extract].is_stack}
    rest = p.graph.subgraph([n for n in p.graph if n not in bounded])
    try:
        cycle = nx.find_cycle(rest)
    except nx.NetworkXNoCycle:
        return []
    names = [u for u, _ in cycle]
    first = p.states[names[0]]
    hint = "loops must extract into a header stack (declare it in 'instances' with 'stack: N')"
    extracting = [x for n in names if (x := p.states[n].extract) is not None]
    if extracting:
        inst = prog.instances[extracting[0]]
        hint = (f"loops must extract into a header stack: declare '{inst.name}' as one in 'instances' "
                f"({inst.name}: {{type: {inst.type.name}, stack: N}}, N the most times the loop may repeat)")
    return [error(first.loc, "unbounded parser loop: " + " -> ".join([*names, names[0]]), hint)]


def extracted_before(prog: ir.Program) -> dict[str, set[str]]:
    """For each state: the instances extracted on every path from start up to and including it."""
    p = prog.parser
    every = set(prog.instances)
    out: dict[str, set[str]] = {n: set(every) for n in p.states}
    if p.start not in p.states:
        return out
    order = [n for n in nx.dfs_preorder_nodes(p.graph, p.start) if n in p.states]
    changed = True
    while changed:
        changed = False
        for n in order:
            preds = [q for q in p.graph.predecessors(n) if q in p.states]
            inn: set[str] = set() if n == p.start else set.intersection(*(out[q] for q in preds)) if preds else set()
            if n == p.start and preds:
                inn = set()
            extract = p.states[n].extract
            new = inn | ({extract} if extract else set())
            if new != out[n]:
                out[n] = new
                changed = True
    return out


def select_on_extracted(prog: ir.Program) -> list[Problem]:
    problems: list[Problem] = []
    avail = extracted_before(prog)
    for name, st in prog.parser.states.items():
        for sel in st.select:
            for e in ir.walk_expr(sel):
                if isinstance(e, ir.FieldRef):
                    inst = prog.instances[e.instance]
                    needed = inst.tlv_parent or inst.name
                    if needed not in avail.get(name, set()):
                        problems.append(error(st.loc, f"state '{name}' selects on '{needed}.{e.field_name}', but "
                                              f"'{needed}' is not extracted on every path into '{name}'",
                                              "select on a header extracted in this state or on every path "
                                              "before it"))
        for s in ir.walk_stmts(st.do):
            for e in ir.stmt_exprs(s):
                for x in ir.walk_expr(e):
                    if isinstance(x, ir.FieldRef) and x.index == "last" and x.instance not in avail.get(name, set()):
                        problems.append(error(s.loc, f"state '{name}' reads '{x.instance}.last.{x.field_name}', but "
                                              f"'{x.instance}' is not extracted on every path into '{name}'",
                                              "read '.last' where the stack was extracted on every path before; "
                                              f"elsewhere name an element, e.g. {x.instance}[0]"))
    return problems


def _elem_covers(a: KeyElem, b: KeyElem, width: int) -> bool:
    """Does keyset element `a` match every value that `b` matches?"""
    full = (1 << width) - 1
    if a.kind == "any":
        return True
    lo_b, hi_b = _span(b, full)
    if a.kind == "value":
        return (b.kind == "value" and a.a == b.a) or (b.kind == "range" and lo_b == hi_b == a.a)
    if a.kind == "range":
        if b.kind == "mask":
            return a.a == 0 and a.b == full if b.b != full else a.a <= b.a <= a.b
        return a.a <= lo_b and hi_b <= a.b
    # a is a mask: b must only produce values agreeing with a on a's mask bits
    if b.kind == "value":
        return (b.a & a.b) == (a.a & a.b)
    if b.kind == "mask":
        return (a.b & ~b.b) == 0 and (b.a & a.b) == (a.a & a.b)
    if b.kind == "range":
        return all((v & a.b) == (a.a & a.b) for v in range(b.a, min(b.b, b.a + 256) + 1)) and b.b - b.a <= 256
    return False


def _span(e: KeyElem, full: int) -> tuple[int, int]:
    if e.kind == "value":
        return e.a, e.a
    if e.kind == "range":
        return e.a, e.b
    return 0, full


def _elem_disjoint(a: KeyElem, b: KeyElem, width: int) -> bool:
    full = (1 << width) - 1
    if "any" in (a.kind, b.kind):
        return False
    if a.kind == "mask" and b.kind == "mask":
        common = a.b & b.b
        return (a.a & common) != (b.a & common)
    if a.kind == "mask" or b.kind == "mask":
        m, o = (a, b) if a.kind == "mask" else (b, a)
        lo, hi = _span(o, full)
        if hi - lo > 4096:
            return False
        return all((v & m.b) != (m.a & m.b) for v in range(lo, hi + 1))
    lo_a, hi_a = _span(a, full)
    lo_b, hi_b = _span(b, full)
    return hi_a < lo_b or hi_b < lo_a


def case_overlaps(prog: ir.Program) -> list[Problem]:
    """Duplicate cases and cases that an earlier case shadows are errors; partial overlaps are warnings."""
    problems: list[Problem] = []
    for name, st in prog.parser.states.items():
        widths = [s.width for s in st.select]
        for j, later in enumerate(st.cases):
            for i in range(j):
                earlier = st.cases[i]
                if earlier.keyset == later.keyset:
                    problems.append(error(later.loc, f"duplicate case in state '{name}'",
                                          f"the same keyset is given at {earlier.loc}"))
                    break
                if all(_elem_covers(a, b, w) for a, b, w in zip(earlier.keyset, later.keyset, widths, strict=True)):
                    problems.append(error(later.loc, f"case in state '{name}' can never match: an earlier case "
                                          "covers all its values", f"the earlier case is at {earlier.loc}; "
                                          "put the more specific case first"))
                    break
                later_covers = all(_elem_covers(b, a, w) for a, b, w in zip(earlier.keyset, later.keyset, widths,
                                                                              strict=True))
                disjoint = any(_elem_disjoint(a, b, w) for a, b, w in
                               zip(earlier.keyset, later.keyset, widths, strict=True))
                if not later_covers and not disjoint and earlier.next != later.next:
                    problems.append(warning(later.loc, f"case in state '{name}' overlaps an earlier case that "
                                            "leads elsewhere; the first match wins",
                                            f"the earlier case is at {earlier.loc}"))
    return problems


def deparse_order(prog: ir.Program) -> list[Problem]:
    """Every extracted header is emitted, and in an order consistent with every parse path."""
    p = prog.parser
    problems: list[Problem] = []
    pos = {name: i for i, name in enumerate(prog.deparse)}
    extractors: dict[str, list[str]] = {}
    for name, st in p.states.items():
        if st.extract:
            extractors.setdefault(st.extract, []).append(name)
            if st.extract not in pos:
                problems.append(error(st.loc, f"header '{st.extract}' is extracted but not in 'deparse'",
                                      "list it in 'deparse' (use set_invalid to remove it from a packet)"))
    if problems:
        return problems
    # Checking each extraction against the next ones along every path is enough: the deparse list is a
    # total order, so consecutive pairs in order make the whole path in order.
    nexts = _next_extractions(p)
    reported: set[tuple[str, str]] = set()
    for name, st in p.states.items():
        if not st.extract:
            continue
        for later in sorted(nexts(name)):
            a, b = st.extract, p.states[later].extract
            assert b is not None
            if a != b and pos[a] > pos[b] and (a, b) not in reported:
                reported.add((a, b))
                # reported at the state extracting the header that 'deparse' puts too early
                problems.append(error(p.states[later].loc,
                                      f"'deparse' emits '{b}' before '{a}', but the parser extracts "
                                      f"'{a}' (state '{name}') before '{b}' (state '{later}')",
                                      "order 'deparse' as the headers appear on the wire"))
    for name, inst in prog.instances.items():
        where = _set_valid_loc(prog, name) if inst.tlv_option is None and name not in pos else None
        if where is not None:
            problems.append(error(where, f"header '{name}' is made valid by set_valid but not in 'deparse'",
                                  "list it in 'deparse' where it goes on the wire"))
    return problems


def _next_extractions(p: ir.Parser) -> Callable[[str], set[str]]:
    """For a state, the extracting states reachable from it without passing another extracting state."""
    memo: dict[str, set[str]] = {}

    def through(state: str) -> set[str]:
        # A walk over the states reached from `state`'s successors, stopping at the first extracting state on
        # each path. Iterative: a chain of thousands of states that extract nothing must not overflow the stack.
        if state in memo:
            return memo[state]
        out: set[str] = set()
        seen: set[str] = {state}
        todo = [state]
        while todo:
            for succ in p.graph.successors(todo.pop()):
                st = p.states.get(succ)
                if st is None:
                    continue
                if st.extract:
                    out.add(succ)
                elif succ not in seen:
                    seen.add(succ)
                    todo.append(succ)
        memo[state] = out
        return out

    return through


def _set_valid_loc(prog: ir.Program, name: str) -> Loc | None:
    """Where the first `set_valid(name)` is, so the error points at the statement that adds the header."""
    bodies = [prog.control] + [a.body for a in prog.actions.values()]
    for body in bodies:
        for s in ir.walk_stmts(body):
            if isinstance(s, ir.SetValid) and s.instance == name and s.valid:
                return s.loc
    return None


def _guarded(cond: ir.Expr) -> set[str]:
    """Instances a condition proves valid (the `valid(h)` conjuncts of an && chain)."""
    if isinstance(cond, ir.Valid):
        return {cond.instance}
    if isinstance(cond, ir.Binary) and cond.op == "&&":
        return _guarded(cond.left) | _guarded(cond.right)
    return set()


def table_keys_on_invalid(prog: ir.Program) -> list[Problem]:
    """A key on a header that may be invalid reads 0 (documented); warn when nothing guards it."""
    avail = extracted_before(prog)
    accepting = [n for n in prog.parser.states if prog.parser.graph.has_edge(n, "accept")]
    always = set.intersection(*(avail[n] for n in accepting)) if accepting else set()
    problems: list[Problem] = []

    def walk(stmts: list[ir.Stmt], known: set[str]) -> None:
        for s in stmts:
            if isinstance(s, ir.If):
                walk(s.then, known | _guarded(s.cond))
                walk(s.otherwise, known)
            elif isinstance(s, ir.Apply):
                table = prog.tables[s.table]
                for k in table.keys:
                    if isinstance(k.expr, ir.FieldRef):
                        inst = prog.instances[k.expr.instance]
                        base = inst.name
                        # a TLV option may be absent even when its header is always there: it needs its own guard
                        if base not in known and base not in always:
                            problems.append(warning(k.loc, f"table '{table.name}' keys on '{k.text}', but "
                                                    f"'{base}' may be invalid here (the key then reads 0)",
                                                    f"apply it under 'if: valid({base})'"))
                walk(s.hit, known)
                walk(s.miss, known)
                for body in s.by_action.values():
                    walk(body, known)

    walk(prog.control, set())
    return problems


def table_defaults(prog: ir.Program) -> list[Problem]:
    problems: list[Problem] = []
    for t in prog.tables.values():
        if not t.keys:
            problems.append(error(t.loc, f"table '{t.name}' has no key", "add 'key: {field: exact}'"))
        if not t.actions:
            problems.append(error(t.loc, f"table '{t.name}' lists no actions", "add 'actions: [ACTION, ...]', e.g. [drop]"))
    return problems


CHECKS: list[Check] = [
    unreachable_states,
    unbounded_cycles,
    select_on_extracted,
    case_overlaps,
    deparse_order,
    table_keys_on_invalid,
    table_defaults,
]


# Checks that rest on another's result: skipped when that one found an error, whose follow-ons they would only
# report again. The deparse order is checked along the parse paths, which an unbounded loop makes endless: every
# order among the loop's headers contradicts some path, so each would be "wrong" because of the one loop.
DEPENDS: dict[Check, tuple[Check, ...]] = {
    deparse_order: (unbounded_cycles,),
}


def run_checks(prog: ir.Program) -> list[Problem]:
    problems: list[Problem] = []
    failed: set[Check] = set()
    for check in CHECKS:
        if any(dep in failed for dep in DEPENDS.get(check, ())):
            continue
        found = check(prog)
        if any(p.severity == "error" for p in found):
            failed.add(check)
        problems.extend(found)
    return problems
