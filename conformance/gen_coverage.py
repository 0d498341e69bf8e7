"""What generated vectors cover: parse paths, parse edges, table × action pairs, control branches and
statements, each against the total, with the infeasible items and why.

A statement counts as executed when it ran, except update_checksum, which counts only when the update
changed a checksum: an update over unchanged fields leaves the same bytes as no update at all, so a vector
that merely runs it cannot tell a target that updates from one that does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
