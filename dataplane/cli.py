"""`c3po load | unload | status | table | counter | register | apply | dump`: run a built program on live
interfaces and drive it by name (registered through the `c3po.commands` entry point).

Exit status: 0 done; 1 the request was refused (unknown name, full table, duplicate, missing entry, bad value)
or the target could not run; 2 usage. Every refusal is one line naming what was wrong and a hint, and nothing
was written.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from c3po_compiler import SpecError, ir, load_program
from c3po_compiler.input_files import VECTOR_LIMIT, InputFileError, read_input_text
from c3po_compiler.target_api import BuildError, write_atomic
from c3po_compiler.text import terminal_lines, terminal_text
from c3po_compiler.yaml_source import load_yaml

from . import registry
from .api import ControlError, Dataplane, Diff, Entry
from .syntax import action_text, entry_text, match_text, parse_action, parse_match, value
from .targets import LOADABLE, control_module


def _say(text: str) -> None:
    print(terminal_text(text))


def _fail(text: str) -> int:
    print(terminal_lines(text), file=sys.stderr)
    return 1


@contextmanager
def _in_netns(name: str | None) -> Iterator[None]:
    """Run the body in network namespace `name` (this thread only, the mount namespace unchanged: pins in
    bpffs must outlive the command, which they would not inside `ip netns exec`'s private mounts)."""
    if not name:
        yield
        return
    from targets.p4.netns import NETNS_DIR, entered

    if not registry.NAME_RE.match(name.replace("-", "_")) or not (Path(NETNS_DIR) / name).exists():
        raise ControlError(f"there is no network namespace '{name}'", "list them with: ip netns list")
    with entered(name):
        yield


@contextmanager
def _opened(name: str) -> Iterator[tuple[registry.Record, Dataplane]]:
    record, prog = registry.get(name)
    with _in_netns(record.extra.get("netns")):
        dp = control_module(record.target).open(prog, record)
        try:
            yield record, dp
        finally:
            dp.close()


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ControlError as exc:
            return _fail(f"c3po {args.command}: {terminal_text(exc.message)}"
                         + (f"\n    hint: {terminal_text(exc.hint)}" if exc.hint else ""))
        except BuildError as exc:
            return _fail(f"c3po {args.command}: {exc}")
    return run


# ------------------------------------------------------------------------------------------- load, unload

def _ports(args: argparse.Namespace) -> list[registry.Port]:
    """--dev IF (ports 0, 1, ... in order) and --port N=IF, each interface resolved to its ifindex now."""
    wanted: list[tuple[int, str]] = [(i, d) for i, d in enumerate(args.dev or [])]
    for item in args.port or []:
        num, sep, ifname = item.partition("=")
        if not sep or not num.isdigit() or int(num) > 0xFFFF:
            raise ControlError(f"--port '{item}' is not N=IF", "e.g. --port 3=eth1 (N is 0..65535)")
        wanted = [(n, d) for n, d in wanted if d != ifname and n != int(num)] + [(int(num), ifname)]
    if not wanted:
        raise ControlError("no interface given", "add --dev IF (port 0), --dev IF2 (port 1), or --port N=IF")
    out = []
    for port, ifname in sorted(wanted):
        try:
            ifindex = socket.if_nametoindex(ifname)
        except OSError:
            raise ControlError(f"there is no interface '{ifname}' in this network namespace",
                               "list them with: ip -br link") from None
        out.append(registry.Port(port, ifname, ifindex))
    return out


@_guard
def cmd_load(args: argparse.Namespace) -> int:
    if args.target not in LOADABLE:
        raise ControlError(f"target '{args.target}' cannot be loaded on interfaces", f"targets: {', '.join(LOADABLE)}")
    try:
        prog = load_program(args.spec).program
    except SpecError as exc:
        for p in exc.problems:
            print(p.format(), file=sys.stderr)
        return 1
    name = registry.check_name(args.name or prog.name)
    with _in_netns(args.netns):
        return _load(args, prog, name)


def _load(args: argparse.Namespace, prog: ir.Program, name: str) -> int:
    ports = _ports(args)
    module = control_module(args.target)
    why = module.unavailable()
    if why:
        raise ControlError(f"the {args.target} target cannot run here: {why}")
    with registry.lock(name):
        record = registry.Record(name, args.target, str(Path(args.spec).resolve()), prog.name, ports,
                                 args.mode or "", time.time())
        if args.netns:
            record.extra["netns"] = args.netns
        registry.create(record, prog)
        try:
            dp = module.load(prog, record, record.dir)
            record.save()
        except BaseException:
            module.unload(record)  # a half-done load leaves nothing attached, pinned or running
            registry.remove(name)
            raise
    try:
        consts = sum(len(t.entries) for t in prog.tables.values())
        _say(f"loaded {name} ({args.target}, {record.mode or 'default'} mode) on "
             + ", ".join(f"{p.ifname} (port {p.port})" for p in ports)
             + (f"; {consts} constant {'entry' if consts == 1 else 'entries'} installed" if consts else ""))
    finally:
        dp.close()
    return 0


@_guard
def cmd_unload(args: argparse.Namespace) -> int:
    name = registry.check_name(args.name)
    with registry.lock(name):
        try:
            record, _ = registry.get(name)
        except ControlError:
            if args.force:
                registry.remove(name)
                return 0
            raise
        with _in_netns(record.extra.get("netns")):
            removed = control_module(record.target).unload(record)
        registry.remove(name)
    _say(f"unloaded {name}" + (f" ({len(removed)} objects removed)" if removed else ""))
    return 0


@_guard
def cmd_status(args: argparse.Namespace) -> int:
    names = [registry.check_name(args.name)] if args.name else registry.names()
    rows = []
    for name in names:
        with _opened(name) as (record, dp):
            st = dp.status()
            rows.append({"name": name, "target": record.target, "spec": record.spec, "program": record.program,
                         "mode": record.mode, "loaded_at": record.created,
                         "ports": [{"port": p.port, "interface": p.ifname, "ifindex": p.ifindex}
                                   for p in record.ports], **st})
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        _say("nothing is loaded")
    for r in rows:
        _say(f"{r['name']}: {r['target']} ({r['mode'] or 'default'} mode), program {r['program']} from {r['spec']}")
        _say("  ports: " + ", ".join(f"{p['port']}={p['interface']}" for p in r["ports"]))
        for t, info in r["tables"].items():
            _say(f"  table {t}: {info['entries']}/{info['size']} entries")
    return 0


# ------------------------------------------------------------------------------------------------ tables

def _split(items: list[str]) -> tuple[list[str], str | None, list[str]]:
    """KEY=VALUE items, then the action name, then its parameters."""
    keys: list[str] = []
    for i, item in enumerate(items):
        if "=" not in item or "(" in item.split("=", 1)[0]:
            return keys, item, items[i + 1:]
        keys.append(item)
    return keys, None, []


@_guard
def cmd_table(args: argparse.Namespace) -> int:
    with _opened(args.name) as (_, dp):
        table = dp.table(args.table)
        t = table.spec
        op = args.op
        if op == "dump":
            entries = table.entries(counters=True)
            if args.json:
                print(json.dumps({"table": t.name, "default": _action_json(dp.prog, *table.default()),
                                  "default_counter": table.default_counter(),
                                  "entries": [_entry_json(dp.prog, t, e) for e in entries]}, indent=2))
                return 0
            for e in entries:
                counter = f"  [{e.counter[0]} packets, {e.counter[1]} bytes]" if e.counter else ""
                _say(entry_text(dp.prog, t, e) + counter)
            dc = table.default_counter()
            _say(f"default: {action_text(dp.prog, *table.default())}"
                 + (f"  [{dc[0]} packets, {dc[1]} bytes]" if dc else ""))
            _say(f"{len(entries)}/{t.size} entries")
            return 0
        if op == "clear":
            n = table.clear()
            _say(f"{t.name}: {n} entries deleted")
            return 0
        if op == "default":
            if not args.items:
                raise ControlError("default needs an action", "actions: " + ", ".join([*t.actions, "nop"]))
            dname, dargs = parse_action(dp.prog, t, args.items[0], args.items[1:], default=True)
            table.set_default(dname, dargs)
            _say(f"{t.name}: default {action_text(dp.prog, dname, dargs)}")
            return 0
        keys, action, params = _split(args.items)
        match = parse_match(t, keys)
        if op == "delete":
            if action is not None:
                raise ControlError(f"delete takes only the key (KEY=VALUE), not '{action}'")
            table.delete(match, args.priority)
            _say(f"{t.name}: deleted {match_text(t, match)}")
            return 0
        if action is None:
            raise ControlError(f"{op} needs an action after the key", "actions: " + ", ".join(t.actions))
        name, vals = parse_action(dp.prog, t, action, params)
        (table.add if op == "add" else table.modify)(match, name, vals, args.priority)
        _say(f"{t.name}: {'added' if op == 'add' else 'modified'} "
             f"{entry_text(dp.prog, t, Entry(match, name, vals, args.priority))}")
    return 0


def _action_json(prog: ir.Program, action: str, args: tuple[int, ...]) -> dict[str, Any]:
    return {"action": action, "args": {p.name: a for p, a in zip(prog.actions[action].params, args, strict=True)}}


def _entry_json(prog: ir.Program, t: ir.Table, e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"match": {k.text: m.spec_text() for k, m in zip(t.keys, e.match, strict=True)
                                     if m.kind != "any"}, **_action_json(prog, e.action, e.args)}
    if t.uses_priority:
        out["priority"] = e.priority
    if e.counter is not None:
        out["counter"] = {"packets": e.counter[0], "bytes": e.counter[1]}
    if e.const:
        out["const"] = True
    return out


# ------------------------------------------------------------------------------------- counters, registers

def _index(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise ControlError(f"index '{text}' is not a number")
    return int(text)


@_guard
def cmd_counter(args: argparse.Namespace) -> int:
    with _opened(args.name) as (_, dp):
        index = _index(args.index)
        if args.op == "reset":
            dp.counter_reset(args.counter, index)
            _say(f"{args.counter}: reset" + (f" [{index}]" if index is not None else ""))
            return 0
        values = dp.counter_read(args.counter, index)
        if args.json:
            print(json.dumps({str(i): {"packets": p, "bytes": b} for i, (p, b) in values.items()}, indent=2))
        else:
            for i, (p, b) in sorted(values.items()):
                _say(f"{args.counter}[{i}]: {p} packets, {b} bytes")
            if not values:
                _say(f"{args.counter}: all zero")
    return 0


@_guard
def cmd_register(args: argparse.Namespace) -> int:
    with _opened(args.name) as (_, dp):
        index = _index(args.index)
        if args.op == "write":
            reg = dp._register_spec(args.register)
            if index is None or args.value is None:
                raise ControlError("write needs INDEX and VALUE")
            dp.register_write(args.register, index, value(args.value, reg.width, "value"))
            _say(f"{args.register}[{index}] = {args.value}")
            return 0
        values = dp.register_read(args.register, index)
        if args.json:
            print(json.dumps({str(i): v for i, v in values.items()}, indent=2))
        else:
            for i, v in sorted(values.items()):
                _say(f"{args.register}[{i}] = {v:#x}")
            if not values:
                _say(f"{args.register}: all zero")
    return 0


# --------------------------------------------------------------------------------------------- apply, dump

def load_entries(path: str, prog: ir.Program) -> tuple[dict[str, list[Entry]], dict[str, tuple[str, tuple[int, ...]]]]:
    """An entries file: the `control` format of vector files (`entries:` and `defaults:` lists, optionally
    under `control:`), read with the vector files' limits and no YAML aliases."""
    from conformance.vector_io import MAX_DEPTH, _depth
    from conformance.vectors import VectorFormatError, control_from_data

    data: Any
    if path.endswith(".json"):  # what `c3po dump --json` writes; parsed in C, so large files load fast
        try:
            data = json.loads(read_input_text(path, "entries file", VECTOR_LIMIT))
        except InputFileError as exc:
            raise ControlError(f"{path}: {exc.message}", exc.hint) from None
        except json.JSONDecodeError as exc:
            raise ControlError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
        except (RecursionError, ValueError) as exc:
            raise ControlError(f"{path}: not usable JSON ({type(exc).__name__})",
                               "entries files nest a few levels and hold integers of at most 128 bits") from None
        if _depth(data) > MAX_DEPTH:
            raise ControlError(f"{path}: nests deeper than {MAX_DEPTH} levels")
    else:
        try:
            data = load_yaml(Path(path), path, what="entries file", limit=VECTOR_LIMIT, aliases=False).data
        except SpecError as exc:
            p = exc.problems[0]
            raise ControlError(f"{p.loc.file}:{p.loc.line}:{p.loc.col}: {p.message}", p.hint) from None
    if isinstance(data, dict) and "control" in data:
        data = data["control"]
    if data is not None and not (isinstance(data, dict) and set(data) <= {"entries", "defaults"}):
        raise ControlError(f"{path}: expected a map with 'entries' and/or 'defaults' lists",
                           "write it as `c3po dump NAME -o FILE` does")
    try:
        control = control_from_data(data, prog, path)
    except VectorFormatError as exc:
        raise ControlError(str(exc)) from None
    tables: dict[str, list[Entry]] = {n: [] for n in prog.tables}
    for es in control.entries:
        tables[es.table].append(Entry(es.match, es.action, es.args, es.priority))
    defaults = {t: (a, args) for t, a, args in control.defaults}
    return tables, defaults


def dump_entries(dp: Dataplane) -> dict[str, Any]:
    from conformance.model import ControlState, EntryState
    from conformance.vectors import control_to_data

    tables, defaults = dp.dump()
    entries = tuple(EntryState(t, e.match, e.action, e.args, e.priority) for t, es in tables.items() for e in es)
    return control_to_data(ControlState(entries, tuple((t, a, args) for t, (a, args) in defaults.items())), dp.prog)


def _diff_lines(dp: Dataplane, diff: Diff) -> list[str]:
    out = []
    for sign, rows in (("-", diff.deleted), ("+", diff.added), ("~", diff.modified)):
        for t, e in rows:
            out.append(f"{sign} {t}: {entry_text(dp.prog, dp.prog.tables[t], e)}")
    for t, a, args in diff.defaults:
        out.append(f"~ {t}: default {action_text(dp.prog, a, args)}")
    return out


@_guard
def cmd_apply(args: argparse.Namespace) -> int:
    with _opened(args.name) as (_, dp):
        tables, defaults = load_entries(args.entries, dp.prog)
        t0 = time.perf_counter()
        diff = dp.apply(tables, defaults)
        dt = time.perf_counter() - t0
        if args.json:
            print(json.dumps({"added": len(diff.added), "modified": len(diff.modified),
                              "deleted": len(diff.deleted), "defaults": len(diff.defaults), "seconds": dt}))
            return 0
        lines = _diff_lines(dp, diff)
        for line in lines[:args.show] if args.show >= 0 else lines:
            _say(line)
        if 0 <= args.show < len(lines):
            _say(f"... and {len(lines) - args.show} more")
        _say(f"{len(diff.added)} added, {len(diff.modified)} modified, {len(diff.deleted)} deleted, "
             f"{len(diff.defaults)} defaults changed in {dt:.2f} s")
    return 0


@_guard
def cmd_dump(args: argparse.Namespace) -> int:
    import yaml

    with _opened(args.name) as (_, dp):
        data = dump_entries(dp)
    text = json.dumps(data, indent=2) + "\n" if args.json else yaml.safe_dump(data, sort_keys=False)
    if args.output:
        write_atomic(Path(args.output), text)
        n = len(data.get("entries", []))
        _say(f"wrote {n} entries to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------------------------------------- parsers

def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("load", help="build a spec and run it on interfaces (xdp: attach; p4: start BMv2)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-t", "--target", required=True, help="xdp or p4")
    p.add_argument("--dev", action="append", metavar="IF", help="an interface; the n-th --dev is port n")
    p.add_argument("--port", action="append", metavar="N=IF", help="port N is interface IF")
    p.add_argument("--mode", choices=["native", "generic"], help="xdp attach mode (default: native where the "
                   "driver supports it, else generic)")
    p.add_argument("--name", help="name to drive it by (default: the program's name)")
    p.add_argument("--netns", metavar="NS", help="the interfaces are in network namespace NS (ip netns); use "
                   "this rather than `ip netns exec`, whose private mounts would take the bpffs pins with them")
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("unload", help="stop a loaded program and remove everything it left")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="also forget a record whose program is gone")
    p.set_defaults(func=cmd_unload)
    p = sub.add_parser("status", help="what is loaded: interfaces, modes, tables")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("table", help="add/modify/delete/dump/clear entries, set the default action")
    p.add_argument("name", metavar="NAME")
    p.add_argument("table", metavar="TABLE")
    p.add_argument("op", choices=["add", "modify", "delete", "dump", "clear", "default"])
    p.add_argument("items", nargs="*", metavar="KEY=VALUE|ACTION|PARAM=VALUE")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_table)
    p = sub.add_parser("counter", help="read or reset a counter")
    p.add_argument("name", metavar="NAME")
    p.add_argument("counter", metavar="COUNTER")
    p.add_argument("op", choices=["read", "reset"])
    p.add_argument("index", nargs="?", metavar="INDEX")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_counter)
    p = sub.add_parser("register", help="read or write a register")
    p.add_argument("name", metavar="NAME")
    p.add_argument("register", metavar="REGISTER")
    p.add_argument("op", choices=["read", "write"])
    p.add_argument("index", nargs="?", metavar="INDEX")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_register)
    p = sub.add_parser("apply", help="make the live tables equal to an entries file, printing the changes")
    p.add_argument("name", metavar="NAME")
    p.add_argument("entries", metavar="ENTRIES.yaml")
    p.add_argument("--show", type=int, default=50, help="changes to list (-1: all; default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apply)
    p = sub.add_parser("dump", help="write the live tables and defaults as an entries file")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--output", metavar="ENTRIES.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dump)
    from .p4runtime_cli import register as register_p4runtime  # `c3po p4runtime serve` (docs/p4runtime.md)

    register_p4runtime(sub)
