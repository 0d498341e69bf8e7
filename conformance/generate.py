"""Vector generation: walk the parse graph, solve each path's select constraints into a packet, add error
cases (truncation, stack overflow, bad checksums), then explore table entries derived from the packet's real
key values until every table × action pair and control branch a packet can reach is covered. Expected
results come from the oracle. Deterministic: everything random is drawn from generators seeded from the
seed, so the same spec and seed give byte-identical output.

Parts: gen_paths (paths and packets), gen_control (entries, arguments, condition values), gen_coverage.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from typing import Any

from c3po_compiler import ir
from c3po_compiler.features import program_features

from .gen_classes import ClassContext, class_vectors
from .gen_control import condition_atoms, entry_for, param_value, semantics_states
from .gen_coverage import Coverage, PathCoverage, edge_name, path_key
from .gen_paths import MAX_PATHS, Builder, ParsePath, Rec, enumerate_paths
from .model import ControlState, Expected, PacketIn, Registers, Vector
from .tracing import TracingInterpreter, branch_points, infeasible_branches, statement_points

__all__ = ["GENERATOR", "Generated", "enumerate_paths", "fuzz_vectors", "generate"]

GENERATOR = "c3po-gen/1"
MAX_STATES_PER_PACKET = 48
MAX_PAIRS = 400
MAX_STATEFUL = 4  # multi-packet vectors per program, for counters and registers
RESTARTS = 128  # fresh random packets per path in phase 3
MAX_RESTARTS = 1024  # and in all: an item no packet can reach must not cost minutes
# Fuzzed frames cut short on purpose, below the bytes their parse path extracts (the parser's reject and
# bounds checks must meet some). The rest are at least as long as the shortest path's fixed headers: a frame
# shorter than any path (under 14 bytes for Ethernet) is N/A on XDP and tests nothing else either.
FUZZ_TRUNCATED_SHARE = 0.1


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
    stmt_guards = {f"stmt:{sid}": (all_of, any_of) for sid, all_of, any_of in statement_points(prog)}
    cov.stmts_all = list(stmt_guards)
    for st in prog.parser.states.values():
        if st.select:
            cov.edges_all += [edge_name(st.name, i) for i in range(len(st.cases))] + [edge_name(st.name, -1)]
        else:
            cov.edges_all.append(edge_name(st.name, None))
    vectors: list[Vector] = []
    names: set[str] = set()
    # per parse path and per copy of the control (gen_coverage.PathCoverage), once the accepted paths are known;
    # every emitted vector counts, so the exploration below only adds what no vector reached yet
    per_path: list[PathCoverage] = []
    path_results: list[Any] = []

    def emit(
        name: str,
        pid: int,
        control: ControlState,
        data: bytes,
        tags: list[str],
        port: int = 1,
        regs: Registers | None = None,
        repeat: int = 1,
    ) -> Any:
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}.{n}"
        names.add(name)
        interp.install(control)
        packets = [PacketIn(port, data)] * repeat
        results = interp.run(packets, regs or {})
        for res in results:
            if per_path:
                per_path[0].add(per_path[0].items(res))
            else:
                path_results.append(res)
        expected = [Expected.from_result(r) for r in results]
        for exp in expected:
            exp.observations.pop("trace", None)
        vectors.append(
            Vector(
                name,
                control,
                packets,
                dict(regs or {}),
                expected,
                tags,
                features,
                {"spec_hash": prog.source_hash, "generator": GENERATOR, "seed": seed, "path": pid},
            )
        )
        return results[0]

    def run_with(control: ControlState, data: bytes, port: int, regs: Registers) -> Any:
        interp.install(control)
        return interp.run([PacketIn(port, data)], regs)[0]

    def run(control: ControlState, data: bytes, port: int = 1) -> Any:
        return run_with(control, data, port, {})

    atoms = condition_atoms(prog)
    builder = Builder(prog, rng)
    accepted: list[tuple[int, ParsePath, list[Rec], bytes, list[int]]] = []
    truncated: set[tuple[tuple[str, ...], int]] = set()
    cov.paths_limited = len(paths) >= MAX_PATHS
    for path in paths:
        cov.edges_on_paths.update(
            edge_name(s.state, s.edge) for s in path.steps if s.next != "stack_overflow"
        )
    for pid, path in enumerate(paths):
        recs, reason = builder.recs_for(path, {}, True)
        if reason is None:
            data, starts = builder.assemble(recs, b"")
            recs, starts = recs[:-1], starts[:-1]
            r = run(ControlState(), data)
            expect_err = None if path.end == "accept" else path.end
            planned = [s.state for s in path.steps]
            if r.observations.get("path") != planned or r.observations.get("parser_error") != expect_err:
                reason = (
                    f"built packet parsed as {'-'.join(r.observations.get('path', []))} "
                    f"({r.observations.get('parser_error') or 'accept'})"
                )
        if reason is not None:
            cov.infeasible_paths[path.label] = reason
            continue
        cov.paths_feasible.append(path.label)
        cov.paths_covered.add(path.label)
        for s in path.steps:
            if s.next != "stack_overflow":
                cov.edges_covered.add(edge_name(s.state, s.edge))
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
            vst = next(
                (
                    prog.parser.states[s.state]
                    for s in path.steps
                    if prog.parser.states[s.state].extract == rec.instance
                ),
                None,
            )
            cs = rec.ht.checksum
            if vst is not None and rec.instance in vst.verify and cs is not None:
                f = rec.ht.field(cs.field)
                assert f is not None
                bit = starts[i] * 8 + f.offset + f.width - 1
                bad = bytearray(data)
                bad[bit // 8] ^= 0x80 >> (bit % 8)
                emit(f"p{pid:02d}.bad_checksum.{rec.instance}", pid, ControlState(), bytes(bad), ["checksum"])

    # control exploration: packets (base and field variants) × control states derived from the key values
    port_values = sorted(
        {
            param_value(act.name, prm)
            for act in prog.actions.values()
            for prm in act.params
            if "port" in prm.name
        }
    )
    stateful: list[str] = []
    first_apply: dict[str, tuple[int, bytes, int, ControlState, Registers, tuple[int, ...]]] = {}
    header_sets = [
        {r.instance if not prog.instances[r.instance].is_stack else f"{r.instance}[{r.index}]" for r in recs}
        | _option_names(prog, recs)
        for _pid, _path, recs, _d, _s in accepted
    ]
    infeasible = infeasible_branches(prog, header_sets)
    pc = PathCoverage.of(
        prog,
        [
            (path, hs - _option_names(prog, recs), _option_names(prog, recs))
            for hs, (_pid, path, recs, _d, _s) in zip(header_sets, accepted, strict=True)
        ],
    )
    per_path.append(pc)
    for res in path_results:
        pc.add(pc.items(res))

    def remaining(key: str | None = None) -> bool:
        """Something left to cover (on the parse path `key`: only its own per-path items count then)."""
        if key is not None and pc.remaining(key):
            return True
        return any(b not in cov.branches_covered and b not in infeasible for b in cov.branches_all) or any(
            st not in cov.stmts_covered and not stmt_unreachable(st) for st in cov.stmts_all
        )

    def stmt_unreachable(st: str) -> str | None:
        """Why a statement cannot run: an enclosing branch, or every table × action pair running its action,
        is unreachable."""
        all_of, any_of = stmt_guards[st]
        dead = {**infeasible, **cov.unreachable_pairs}
        for g in all_of:
            if g in dead:
                return f"under {g}: {dead[g]}"
        if any_of and all(p in dead for p in any_of):
            return f"its action runs only as {', '.join(any_of)}: {dead[any_of[0]]}"
        return None

    # phase 1: each packet alone and with single-field variants; phase 2 (only while branches are left):
    # pairs of variants, for conditions like `syn == 1 && ack == 0`; phase 3 (only while something is still
    # left): fresh random packets, for conditions on values computed from fields (`m = src[7:0] >> 3`, then
    # `x == 8`), whose constants name no packet field
    restarts = [0]
    for phase in (1, 2, 3):
        for pid, path, recs, data, _starts in accepted:
            key = path_key([s.state for s in path.steps])
            if phase >= 2 and not remaining(key):
                continue
            insts = {r.instance for r in recs}
            tlv = any(r.ht.varlen and r.ht.varlen.tlv for r in recs)
            relevant = [a for a in atoms if a[0].split(".", 1)[0] in insts]

            def variant(
                over: tuple[tuple[str, str, int], ...],
                with_options: bool,
                pid: int = pid,
                path: ParsePath = path,
                salt: str = "",
            ) -> bytes | None:
                key = ",".join(f"{i}.{f}={v}" for i, f, v in over) + ("" if with_options else "/noopt") + salt
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
                        new_struct = cov.add(cov.items(r))
                        if pc.add(pc.items(r)) or new_struct:
                            suffix = ".".join(label) or "empty"
                            where = "" if port == 1 else f".port{port}"
                            name = f"p{pid:02d}.{vname}{where}.{suffix}"
                            emit(name, pid, control, vdata, ["control"], port, regs)
                            if (r.counters or r.registers) and len(stateful) < MAX_STATEFUL:
                                # the same packet three times: counters add up, registers carry over
                                stateful.append(name)
                                emit(f"{name}.x3", pid, control, vdata, ["stateful"], port, regs, repeat=3)
                        have = {e.table for e in control.entries}
                        for kind, tname, keyvals in r.observations.get("trace", []):
                            if kind != "apply" or tname in have:
                                continue
                            first_apply.setdefault(tname, (pid, vdata, port, control, regs, keyvals))
                            pc.applied_without_entries(r, tname)
                            table = prog.tables[tname]
                            for act in table.actions:
                                e = entry_for(table, keyvals, act, prog)
                                queue.append(
                                    (ControlState((*control.entries, e)), regs, [*label, f"{tname}={act}"])
                                )
                            if r.observations.get("hit", {}).get(tname) and table.uses_priority:
                                # a constant entry won (the generated ones rank below it): each action once
                                # above it too, or an action no constant entry gives is never seen on this path
                                top = max(c.priority for c in table.entries) + 1
                                for act in table.actions:
                                    e = replace(entry_for(table, keyvals, act, prog), priority=top)
                                    queue.append(
                                        (ControlState((*control.entries, e)), regs, [*label, f"{tname}={act}.over"])
                                    )
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
                            explore(
                                f"{atom[0]}.{atom[1]}={atom[2]:#x}" + ("" if with_options else ".no_options"),
                                vdata,
                                [1],
                            )
                    if not with_options:
                        vdata = variant((), False)
                        if vdata is not None:
                            explore("no_options", vdata, [1])
            elif phase == 3:
                for k in range(RESTARTS):
                    if not remaining(key) or restarts[0] >= MAX_RESTARTS:
                        break
                    restarts[0] += 1
                    vdata = variant((), True, salt=f"/redraw{k}")
                    if vdata is not None:
                        explore(f"redraw{k}", vdata, [1, *port_values])
            else:
                for with_options in option_modes:
                    for a1, a2 in itertools.islice(itertools.combinations(relevant, 2), MAX_PAIRS):
                        if not remaining(key):
                            break
                        if (a1[0], a1[1]) == (a2[0], a2[1]):
                            continue
                        vdata = variant((a1, a2), with_options)
                        if vdata is not None:
                            explore(
                                f"{a1[0]}.{a1[1]}={a1[2]:#x}+{a2[0]}.{a2[1]}={a2[2]:#x}"
                                + ("" if with_options else ".no_options"),
                                vdata,
                                [1],
                            )

    def complete(state: ControlState, vdata: bytes, port: int, regs: Registers, skip: str) -> ControlState:
        """Entries for the tables applied downstream, matching what this packet carries there, so which entry
        won upstream (through metadata it wrote) shows in the output."""
        for _ in range(len(prog.tables)):
            r = run_with(state, vdata, port, regs)
            have = {skip, *(e.table for e in state.entries)}
            nxt = next(
                (
                    (t, k)
                    for kind, t, k in r.observations.get("trace", [])
                    if kind == "apply" and t not in have
                ),
                None,
            )
            if nxt is None:
                break
            table = prog.tables[nxt[0]]
            act = next((a for a in table.actions if prog.actions[a].params), table.actions[0])
            state = ControlState((*state.entries, entry_for(table, nxt[1], act, prog)), state.defaults)
        return state

    # Match semantics and default overrides, once per table: the control-plane behaviour coverage cannot see
    # (longest prefix, priorities, the install-order tie-break, a replaced default action).
    for tname in prog.tables:
        if tname not in first_apply:
            continue
        pid, vdata, port, control, regs, keyvals = first_apply[tname]
        for label, state in semantics_states(prog.tables[tname], keyvals, control, prog):
            emit(
                f"sem.{tname}.{label}",
                pid,
                complete(state, vdata, port, regs, tname),
                vdata,
                ["match_semantics"],
                port,
                regs,
            )

    # the gap classes of mutation analysis: constant entries, defaults, edges of ranges/selects/lengths/checksums
    class_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                               vectors, per_path=pc))
    # truncation inside option areas, keys with their top bit set (gen_bounds.py)
    from .gen_bounds import bound_vectors

    bound_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp, vectors))
    # control-plane state shapes reached by insert/modify/delete sequences (gen_sequences.py, its own owner):
    # collisions, zero keys, full tables, delete/re-insert, modify, priority ties; coverage part
    # "control_plane_states" in cov.classes
    from .gen_ports import port_vectors
    from .gen_sequences import sequence_vectors

    sequence_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                  vectors))
    from .gen_structures import structure_vectors  # the xdp target's cuckoo/trie shapes (gen_structures.py)

    structure_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                   vectors))
    from .gen_hashes import hash_vectors  # the xdp cuckoo's hash neighbours (gen_hashes.py)

    hash_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp, vectors))
    # ports other than 1 in, ports without a mapping out (gen_ports.py): coverage part "ports"
    port_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                              vectors))
    from .gen_portwidth import port_width_vectors  # forwarded ports at full width per path (gen_portwidth.py)

    port_width_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                    vectors))
    from .gen_percopy import percopy_vectors  # parser edges replayed behind other prefixes (gen_percopy.py)

    percopy_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                 vectors))
    from .gen_varlen_copies import varlen_copy_vectors  # empty option areas replayed with options

    varlen_copy_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                     vectors, per_path=pc))
    from .gen_condterms import condterm_vectors  # each valid(option) term of an && made false alone

    condterm_vectors(ClassContext(prog, seed, cov.classes, accepted, paths, first_apply, emit, run_with, interp,
                                  vectors))

    for item, why in infeasible.items():
        if item not in cov.branches_covered:
            cov.unreachable_branches[item] = why
    for t in prog.tables.values():
        if f"{t.name}:hit" in cov.unreachable_branches and f"{t.name}:miss" in cov.unreachable_branches:
            for pair in cov.pairs_all:
                if pair.startswith(f"{t.name}.") and pair not in cov.pairs_covered:
                    cov.unreachable_pairs[pair] = cov.unreachable_branches[f"{t.name}:hit"]
    for item in cov.stmts_all:
        if item not in cov.stmts_covered and (dead := stmt_unreachable(item)) is not None:
            cov.unreachable_stmts[item] = dead
    # the per-path parts after the structural ones, before the gap classes
    summary = {k: v for k, v in cov.summary().items() if not v.get("class")}
    summary |= pc.summary() | {k: v for k, v in cov.summary().items() if v.get("class")}
    for part in ("table_actions", "branches", "statements"):
        summary[part]["note"] = (
            "'uncovered' items were reached by no packet of any feasible parse path under any "
            "derived control state: either infeasible (e.g. a condition contradicting the "
            "parse graph) or beyond the generator's search"
        )
    if fuzz:
        seeds = [
            v
            for v in vectors
            if (v.control.entries or v.control.defaults) and not v.registers and len(v.packets) == 1
        ]
        vectors += fuzz_vectors(prog, paths, cov, seed, fuzz, interp, features, seeds)
    return Generated(vectors, summary)


def path_fixed_bytes(prog: ir.Program, path: ParsePath) -> int:
    """The bytes a parse path's extracts need at least (fixed parts only): the fuzzer's lower bound for frames
    that are not truncated on purpose."""
    total = 0
    for step in path.steps:
        name = prog.parser.states[step.state].extract if step.state in prog.parser.states else None
        if name and name in prog.instances:
            total += prog.instances[name].type.fixed_bytes
    return total


def fuzz_vectors(
    prog: ir.Program,
    paths: list[ParsePath],
    cov: Coverage,
    seed: int,
    n: int,
    interp: TracingInterpreter,
    features: list[str],
    seeds: list[Vector] | None = None,
) -> list[Vector]:
    """Random packets drawn from the parse graph: valid, mutated (bit flips) or truncated; seeded.

    Only FUZZ_TRUNCATED_SHARE of them are cut short; the others keep at least the bytes of their parse path
    (random bytes, when no path yields a packet, at least the shortest path's), so few are N/A on XDP.

    Half of them (when `seeds` has any) start from a generated vector's packet under its control state
    instead of the empty one: with empty tables every lookup misses, so no action body — and no rewrite or
    checksum update — would ever meet a fuzzed packet."""
    rng = random.Random(f"fuzz/{seed}")
    feasible = [p for p in paths if p.label in cov.paths_covered]
    floor = min((path_fixed_bytes(prog, p) for p in feasible), default=0)
    inputs: list[tuple[ControlState, int, bytes, str]] = []
    for _ in range(n):
        b = Builder(prog, rng)
        data = b""
        control = ControlState()
        port = -1
        if seeds and rng.random() < 0.5:
            base = seeds[rng.randrange(len(seeds))]
            control, data, port = base.control, base.packets[0].data, base.packets[0].port
        elif feasible:
            path = feasible[rng.randrange(len(feasible))]
            recs, reason = b.recs_for(path, {}, rng.random() < 0.5)
            if reason is None:
                data = b.assemble(recs, b"")[0]
        if not data:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(max(1, floor), max(1, floor) + 64)))
        roll = rng.random()
        mode = "truncated" if roll < FUZZ_TRUNCATED_SHARE else "valid" if roll < 0.55 else "mutated"
        if mode == "valid" and port >= 0:
            # a seed's packet as it is was a generated vector already: give it another payload length
            data += bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        if mode == "mutated":
            buf = bytearray(data)
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
            data = bytes(buf)
        elif mode == "truncated" and len(data) > 1:
            data = data[: rng.randrange(1, len(data))]
        if port < 0:
            port = rng.randrange(0, 8)
        inputs.append((control, port, data, mode))
    # Each run is independent (fresh counters, no registers): the packets under one control state run behind
    # one install of it. Installing per packet, as the seeds alternate, took 90% of the time (a seed's state is
    # a hundred entries).
    by_state: dict[str, list[int]] = {}
    for i, (control, _, _, _) in enumerate(inputs):
        by_state.setdefault(control.key(), []).append(i)
    results: dict[int, Expected] = {}
    for indices in by_state.values():
        interp.install(inputs[indices[0]][0])
        for i in indices:
            _, port, data, _ = inputs[i]
            exp = Expected.from_result(interp.run([PacketIn(port, data)], {})[0])
            exp.observations.pop("trace", None)
            results[i] = exp
    empty = ControlState().key()
    out: list[Vector] = []
    for i, (control, port, data, mode) in enumerate(inputs):
        out.append(
            Vector(
                f"fuzz{i:04d}.{mode}" + ("" if control.key() == empty else ".seeded"),
                control,
                [PacketIn(port, data)],
                {},
                [results[i]],
                ["fuzz", mode],
                features,
                {"spec_hash": prog.source_hash, "generator": GENERATOR + "/fuzz", "seed": seed, "path": i},
            )
        )
    return out
