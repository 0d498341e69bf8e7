"""A conformance vector's control-plane state installed into BMv2's `simple_switch_grpc` over P4Runtime.

Transport is p4runtime-shell's `P4RuntimeClient` (gRPC channel, StreamChannel, master arbitration,
SetForwardingPipelineConfig) and its `Context` as the P4Info name index; the entries themselves are the shared
mapping `entries.to_p4runtime` (priorities, don't-care fields left out, wildcards cleared), turned into protobuf
messages here and sent in batches: one Read and at most two Writes per `install`, one Read per counter read, one
Write per counter reset. The global `p4runtime_sh.shell` client is not used, so several switches can be driven
from one process. Values are P4Runtime canonical bytestrings (big-endian, no leading zero bytes, zero is one
byte); BMv2 answers with the same form and reads are compared as integers anyway.

`install` replaces every entry and every default action of each spec table and of its P4 copies
(`desc["tables"][i]["p4_tables"]`): it reads what is there, deletes it, then inserts `entries.all_entries` (the
spec's constant entries first, then the state's, which the generated P4 does not declare as P4 `const entries`)
and sets each default (a MODIFY of the default entry; tables the state does not mention get the program's
default back with an action-less MODIFY, as P4Runtime specifies). A table P4 declares `const` (P4Info
`is_const_table`) is left alone: its entries live in the program. An entry whose match (and priority) repeats an
earlier entry of the same table is not sent — P4Runtime refuses duplicates, and the earlier one wins anyway — so
its counter stays zero, as in the reference.

A program operated at run time (targets/p4/control.py) uses the same session entry by entry: `connect(push=
False)` joins a running pipeline without emptying it, `write_items` / `read_items` take and give the
`to_p4runtime` form, and a refused Write raises `WriteError` naming the failed updates and their codes.

The switch: `simple_switch_grpc --no-p4 [-i PORT@IFACE ...] --thrift-port N -- --grpc-server-addr unix:PATH`
(a unix socket is reachable from outside the switch's network namespace; `connect` waits for it to answer).

What P4Runtime against BMv2 cannot do, checked with `simple_switch_grpc` 1.15.5 and p4runtime-shell 0.0.6;
the driver uses BMv2's Thrift API for these:
- **registers**: reads answer `UNIMPLEMENTED: Register reads are not supported yet`, writes
  `UNIMPLEMENTED: Register writes are not supported yet` — so resetting and writing a vector's registers, and
  reading them back, go through Thrift (`simple_switch_CLI register_read/register_write/register_reset`);
- **wildcard counter writes**: zeroing all of an indirect counter with one write (`Wildcard write is not
  supported for indirect counters yet`) and all direct counters of a table (`Missing non-ternary field in match
  key`) is refused, so `reset_table_counters` writes each element (one batch: every installed entry's direct
  counter and each `__miss` element);
- reading direct counters of *all* tables with one wildcard entity (`Reading all direct counters for ALL tables
  is not supported yet`): the counters are read per table instead (still one Read request);
- BMv2's direct counters do not count table misses; that is why the generated P4 has the `__miss` counters,
  which are ordinary indirect counters here.
Indirect counters (`counter_entry`, also the program's own `counter`s) read and write fine, element by
element; direct counters read with their table entries (`counter_data`) and write per entry.

p4runtime-shell itself: its `P4RuntimeWriteException` never finishes on a batch where some updates succeeded
and some failed (its error iterator does not advance past an OK status), its client's handshake calls
`sys.exit` when arbitration fails, and its stream thread is not a daemon; `_Client` and `_write_errors` replace
those parts.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import text_format
from google.rpc import code_pb2, status_pb2
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc
from p4runtime_sh.context import Context, P4Type
from p4runtime_sh.p4runtime import P4RuntimeClient

from conformance.model import ControlState

from .entries import all_entries, to_p4runtime

__all__ = ["P4RuntimeControl", "WriteError", "check_entries_against_p4info", "load_p4info"]

CONNECT_TIMEOUT = 30.0  # seconds for the switch's gRPC server to come up
RPC_TIMEOUT = 30.0
ELECTION_ID = (0, 1)  # (high, low)

_MATCH_TYPES = {"exact": p4info_pb2.MatchField.EXACT, "lpm": p4info_pb2.MatchField.LPM,
                "ternary": p4info_pb2.MatchField.TERNARY, "range": p4info_pb2.MatchField.RANGE}
_PRIORITY_TYPES = {p4info_pb2.MatchField.TERNARY, p4info_pb2.MatchField.RANGE, p4info_pb2.MatchField.OPTIONAL}

# (P4 table id, ((field id, kind, values...), ...), priority): an entry's identity in its table.
EntryKey = tuple[int, tuple[tuple[Any, ...], ...], int]


def load_p4info(path: Path | str) -> Any:
    """The P4Info text file p4c writes (`--p4runtime-files X.p4info.txtpb`) as a `p4.config.v1.P4Info`."""
    info = p4info_pb2.P4Info()
    text_format.Merge(Path(path).read_text(encoding="utf-8"), info, allow_unknown_field=True)
    return info


def _by_name(info: Any, kind: P4Type) -> dict[str, Any]:
    """Exact full names (Context also accepts unique suffixes, which a name check must not)."""
    ctx = Context()
    ctx.set_p4info(info)
    return dict(ctx.get_objs(kind))


def check_entries_against_p4info(desc: dict[str, Any], p4info_path: Path | str) -> list[str]:
    """Every table (and P4 copy), key field, action and action parameter `desc` (the `<program>.entries.json`
    of `entries.describe`) names resolves in the P4Info p4c wrote, with the same match kinds and bit widths;
    tables with counters have their direct `__counter` and 1-element `__miss` counters. Returns the problems."""
    return _check(desc, load_p4info(p4info_path))


def _check(desc: dict[str, Any], info: Any) -> list[str]:
    problems: list[str] = []
    tables, actions = _by_name(info, P4Type.table), _by_name(info, P4Type.action)
    counters, direct = _by_name(info, P4Type.counter), _by_name(info, P4Type.direct_counter)
    action_ids = {a.preamble.id: name for name, a in actions.items()}
    desc_actions = {a["name"]: a for a in desc["actions"]}
    for a in desc["actions"]:
        pa = actions.get(a["name"])
        if pa is None:
            problems.append(f"action {a['name']!r} is not in the P4Info")
            continue
        want = [(p["name"], p["bitwidth"]) for p in a["params"]]
        got = [(p.name, p.bitwidth) for p in pa.params]
        if want != got:
            problems.append(f"action {a['name']!r}: parameters {want} in entries.json, {got} in the P4Info")
    for t in desc["tables"]:
        used = [*t["actions"], t["default_action"]["name"], *(e["action"] for e in t["const_entries"])]
        problems += [f"table {t['name']!r}: action {a!r} is not described in entries.json"
                     for a in dict.fromkeys(used) if a not in desc_actions]
        for p4t in t["p4_tables"]:
            pt = tables.get(p4t)
            if pt is None:
                problems.append(f"table {p4t!r} (spec table {t['name']!r}) is not in the P4Info")
                continue
            fields = {f.name: f for f in pt.match_fields}
            for k in t["keys"]:
                f = fields.pop(k["name"], None)
                if f is None:
                    problems.append(f"table {p4t!r}: key field {k['name']!r} is not in the P4Info")
                    continue
                if f.bitwidth != k["bitwidth"]:
                    problems.append(f"table {p4t!r}: key field {k['name']!r} is bit<{k['bitwidth']}> in "
                                    f"entries.json, bit<{f.bitwidth}> in the P4Info")
                if _MATCH_TYPES.get(k["match_kind"]) != f.match_type:
                    problems.append(f"table {p4t!r}: key field {k['name']!r} is {k['match_kind']} in entries.json, "
                                    f"{p4info_pb2.MatchField.MatchType.Name(f.match_type)} in the P4Info")
            problems += [f"table {p4t!r}: P4Info key field {n!r} is not in entries.json" for n in fields]
            if pt.size != t["size"]:
                problems.append(f"table {p4t!r}: size {t['size']} in entries.json, {pt.size} in the P4Info")
            scopes = {action_ids.get(r.id, f"#{r.id}"): r.scope for r in pt.action_refs}
            for a in dict.fromkeys([*t["actions"], *(e["action"] for e in t["const_entries"])]):
                if a not in scopes:
                    problems.append(f"table {p4t!r}: action {a!r} is not one of its P4Info actions")
                elif scopes[a] == p4info_pb2.ActionRef.DEFAULT_ONLY:
                    problems.append(f"table {p4t!r}: action {a!r} is default-only in the P4Info")
            d = t["default_action"]["name"]
            if d not in scopes:
                problems.append(f"table {p4t!r}: default action {d!r} is not one of its P4Info actions")
            elif scopes[d] == p4info_pb2.ActionRef.TABLE_ONLY:
                problems.append(f"table {p4t!r}: default action {d!r} is table-only in the P4Info")
            if t["counters"]:
                dc, miss = direct.get(f"{p4t}__counter"), counters.get(f"{p4t}__miss")
                if dc is None or dc.direct_table_id != pt.preamble.id:
                    problems.append(f"table {p4t!r}: no direct counter {p4t}__counter on it in the P4Info")
                if miss is None or miss.size < 1:
                    problems.append(f"table {p4t!r}: no counter {p4t}__miss in the P4Info")
    return problems


def _encode(value: int, width: int) -> bytes:
    """P4Runtime canonical bytestring of an unsigned `width`-bit value."""
    if value < 0 or value >> width:
        raise ValueError(f"{value:#x} does not fit in bit<{width}>")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _field_key(fm: Any) -> tuple[Any, ...]:
    kind = fm.WhichOneof("field_match_type")
    if kind == "exact":
        return (fm.field_id, kind, _int(fm.exact.value))
    if kind == "lpm":
        return (fm.field_id, kind, _int(fm.lpm.value), fm.lpm.prefix_len)
    if kind == "ternary":
        return (fm.field_id, kind, _int(fm.ternary.value), _int(fm.ternary.mask))
    if kind == "range":
        return (fm.field_id, kind, _int(fm.range.low), _int(fm.range.high))
    if kind == "optional":
        return (fm.field_id, kind, _int(fm.optional.value))
    raise ValueError(f"unsupported field match {kind}")


_FIELD_JSON = {"exact": ("value",), "lpm": ("value", "prefix_len"), "ternary": ("value", "mask"),
               "range": ("low", "high"), "optional": ("value",)}


def _field_json(fm: Any) -> tuple[str, dict[str, Any]]:
    """A FieldMatch in `to_p4runtime`'s JSON form: (kind, {"value": "0x..", ...}); prefix lengths stay ints."""
    _, kind, *vals = _field_key(fm)
    return kind, {name: v if name == "prefix_len" else f"{v:#x}" for name, v in zip(_FIELD_JSON[kind], vals, strict=True)}


def entry_key(te: Any) -> EntryKey:
    """A table entry's identity (table, match, priority), independent of byte padding and field order."""
    return te.table_id, tuple(sorted(_field_key(fm) for fm in te.match)), te.priority


class WriteError(RuntimeError):
    """A Write the switch refused: `code` is the gRPC status name (UNKNOWN when single updates failed, then
    `errors` holds (update index, canonical code name, message) of each failed one)."""

    def __init__(self, message: str, code: str, errors: list[tuple[int, str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.errors = errors or []


def _write_errors(exc: Any) -> list[tuple[int, Any]]:
    """(update index, p4.v1.Error) of each failed update of a batch, from the status details P4Runtime puts
    in the trailing metadata. (p4runtime-shell's P4RuntimeWriteException loops forever when a batch has both
    failed and successful updates: its iterator does not advance past an OK one.)"""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = []
            for i, detail in enumerate(status.details):
                err = p4runtime_pb2.Error()
                if detail.Unpack(err) and err.canonical_code != code_pb2.OK:
                    out.append((i, err))
            return out
    return []


class _Client(P4RuntimeClient):  # type: ignore[misc]
    """p4runtime-shell's client (channel, pipeline push, tear-down, stream queues) with its StreamChannel set
    up differently: the receiving thread is a daemon, so a session that was never closed cannot keep the
    process alive at exit, and a failed arbitration is reported (`failure`) instead of exiting the process.
    `primary` says whether this client won the election."""

    primary = False
    failure: str | None = None

    def set_up_stream(self) -> None:
        self.stream_out_q: queue.Queue[Any] = queue.Queue()
        self.stream_in_q: dict[str, queue.Queue[Any]] = {k: queue.Queue() for k in
                            ("arbitration", "packet", "digest", "idle_timeout_notification", "unknown")}

        def requests() -> Iterator[Any]:
            while (msg := self.stream_out_q.get()) is not None:
                yield msg

        def receive() -> None:
            try:
                for msg in self.stream:
                    kind = msg.WhichOneof("update")
                    self.stream_in_q.get(kind, self.stream_in_q["unknown"]).put(msg)
            except grpc.RpcError as exc:
                if self.failure is None:
                    self.failure = f"P4Runtime stream closed: {exc.code().name} {exc.details()}"
            for q in self.stream_in_q.values():
                q.put(None)

        self.stream = self.stub.StreamChannel(requests())
        self.stream_recv_thread = threading.Thread(target=receive, name="p4runtime-stream", daemon=True)
        self.stream_recv_thread.start()
        self.handshake()

    def handshake(self) -> None:
        req = p4runtime_pb2.StreamMessageRequest()
        arb = req.arbitration
        arb.device_id = self.device_id
        arb.election_id.high, arb.election_id.low = self.election_id
        if self.role_name is not None:
            arb.role.name = self.role_name
        self.stream_out_q.put(req)
        rep = self.get_stream_packet("arbitration", timeout=CONNECT_TIMEOUT)
        if rep is None:
            self.failure = self.failure or "no arbitration answer on the P4Runtime stream"
            return
        self.primary = rep.arbitration.status.code == code_pb2.OK

    def tear_down(self) -> None:
        """Half-close the stream and wait briefly for the server to end it (cancel it otherwise), then close
        the channel; p4runtime-shell's own tear-down waits for the server however long it takes."""
        self.stream_out_q.put(None)
        self.stream_recv_thread.join(timeout=2)
        if self.stream_recv_thread.is_alive():
            self.stream.cancel()
            self.stream_recv_thread.join(timeout=2)
        self.channel.close()


class P4RuntimeControl:
    """One P4Runtime session with one BMv2 device: pipeline push, table state, table counters."""

    def __init__(self, grpc_addr: str, p4info: Path, bmv2_json: Path, desc: dict[str, Any],
                 device_id: int = 0) -> None:
        self.grpc_addr = grpc_addr
        self.p4info_path, self.bmv2_json = Path(p4info), Path(bmv2_json)
        self.desc = desc
        self.device_id = device_id
        self.client: _Client | None = None
        self.info = load_p4info(self.p4info_path)
        problems = _check(desc, self.info)
        if problems:
            raise ValueError(f"{self.p4info_path}: entries.json does not match the P4Info: " + "; ".join(problems))
        self._tables = _by_name(self.info, P4Type.table)
        self._actions = _by_name(self.info, P4Type.action)
        self._counters = _by_name(self.info, P4Type.counter)
        self._table_names = {t.preamble.id: n for n, t in self._tables.items()}
        self._action_names = {a.preamble.id: n for n, a in self._actions.items()}
        self._spec_tables = {t["name"]: t for t in desc["tables"]}
        # Entries this session installed: key -> (spec table, index in all_entries order within that table).
        self._index: dict[EntryKey, tuple[str, int]] = {}
        self._counted: list[Any] = []  # table-entry keys (no action) of installed entries with direct counters

    # -- session ----------------------------------------------------------------------------------------------

    def connect(self, push: bool = True, election_id: tuple[int, int] = ELECTION_ID) -> None:
        """Wait for the gRPC server, become primary (`election_id`), push P4Info + BMv2 JSON with
        VERIFY_AND_COMMIT (which also empties every table). Connecting again starts a new session. Without
        `push`, the session drives the pipeline the switch already runs (a program loaded earlier: pushing
        would empty its tables)."""
        self.close()
        probe = grpc.insecure_channel(self.grpc_addr)
        try:  # blocks until the server answers (the switch may still be starting), fast once it does
            p4runtime_pb2_grpc.P4RuntimeStub(probe).Capabilities(p4runtime_pb2.CapabilitiesRequest(),
                                                                 wait_for_ready=True, timeout=CONNECT_TIMEOUT)
        except grpc.RpcError as exc:
            raise ConnectionError(f"no P4Runtime server at {self.grpc_addr} "
                                  f"({exc.code().name} after up to {CONNECT_TIMEOUT:.0f} s)") from None
        finally:
            probe.close()
        client = _Client(self.device_id, self.grpc_addr, election_id)
        self.client = client
        if client.failure or not client.primary:
            self.close()
            raise ConnectionError(f"P4Runtime at {self.grpc_addr}: "
                                  f"{client.failure or f'another client is primary for device {self.device_id}'}")
        if not push:
            return
        try:
            client.set_fwd_pipe_config(str(self.p4info_path), str(self.bmv2_json))
        except Exception as exc:  # p4runtime_sh's P4RuntimeException, or a P4Info parse error
            raise RuntimeError(f"SetForwardingPipelineConfig on {self.grpc_addr} failed: {exc}") from None
        self._index, self._counted = {}, []

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.tear_down()

    def __enter__(self) -> P4RuntimeControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self) -> _Client:
        if self.client is None:
            raise RuntimeError("P4RuntimeControl: not connected (call connect() first)")
        return self.client

    def _read(self, entities: Iterable[Any]) -> list[Any]:
        req = p4runtime_pb2.ReadRequest(device_id=self.device_id)
        req.entities.extend(entities)
        if not req.entities:
            return []
        try:
            return [e for rep in self._client().stub.Read(req, timeout=RPC_TIMEOUT) for e in rep.entities]
        except grpc.RpcError as exc:
            raise RuntimeError(f"P4Runtime Read failed ({exc.code().name}): {exc.details()}") from None

    def _write(self, updates: list[Any], what: list[str]) -> None:
        """One WriteRequest; `what` names each update for the error message."""
        if not updates:
            return
        client = self._client()
        req = p4runtime_pb2.WriteRequest(device_id=self.device_id)
        req.election_id.high, req.election_id.low = client.election_id
        req.updates.extend(updates)
        try:
            client.stub.Write(req, timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            code = exc.code().name
            if exc.code() != grpc.StatusCode.UNKNOWN:
                raise WriteError(f"P4Runtime Write failed ({code}): {exc.details()}", code) from None
            errors = _write_errors(exc)
            if not errors:
                raise WriteError(f"P4Runtime Write failed: {exc.details()}", code) from None
            lines = [f"{what[i]}: {code_pb2.Code.Name(e.canonical_code)} {e.message}" for i, e in errors[:10]]
            raise WriteError(f"P4Runtime Write: {len(errors)} of {len(updates)} updates failed: " + "; ".join(lines),
                             code, [(i, code_pb2.Code.Name(e.canonical_code), e.message) for i, e in errors]) from None

    # -- messages ---------------------------------------------------------------------------------------------

    def _action(self, msg: Any, action: dict[str, Any]) -> None:
        pa = self._actions[action["name"]]
        msg.action_id = pa.preamble.id
        params = {p.name: p for p in pa.params}
        for p in action["params"]:
            pp = params[p["name"]]
            msg.params.add(param_id=pp.id, value=_encode(int(p["value"], 16), pp.bitwidth))

    def _table_entry(self, item: dict[str, Any]) -> Any:
        """A `to_p4runtime` item as a p4.v1.TableEntry."""
        pt = self._tables[item["table"]]
        te = p4runtime_pb2.TableEntry(table_id=pt.preamble.id)
        fields = {f.name: f for f in pt.match_fields}
        for m in item.get("match", []):
            f = fields[m["field"]]
            fm = te.match.add(field_id=f.id)
            if "exact" in m:
                fm.exact.value = _encode(int(m["exact"]["value"], 16), f.bitwidth)
            elif "lpm" in m:
                fm.lpm.value = _encode(int(m["lpm"]["value"], 16), f.bitwidth)
                fm.lpm.prefix_len = m["lpm"]["prefix_len"]
            elif "ternary" in m:
                fm.ternary.value = _encode(int(m["ternary"]["value"], 16), f.bitwidth)
                fm.ternary.mask = _encode(int(m["ternary"]["mask"], 16), f.bitwidth)
            elif "range" in m:
                fm.range.low = _encode(int(m["range"]["low"], 16), f.bitwidth)
                fm.range.high = _encode(int(m["range"]["high"], 16), f.bitwidth)
            else:
                raise ValueError(f"unsupported match {m}")
        if item.get("is_default_action"):
            te.is_default_action = True
        elif any(f.match_type in _PRIORITY_TYPES for f in pt.match_fields):
            te.priority = item.get("priority", 0)
        if "action" in item:
            self._action(te.action.action, item["action"])
        return te

    @staticmethod
    def _update(kind: int, **entity: Any) -> Any:
        u = p4runtime_pb2.Update(type=kind)
        for field, msg in entity.items():
            getattr(u.entity, field).CopyFrom(msg)
        return u

    def _p4_tables(self) -> list[Any]:
        return [self._tables[p4t] for t in self.desc["tables"] for p4t in t["p4_tables"]]

    # -- the interface the driver uses ------------------------------------------------------------------------

    def install(self, control: ControlState) -> None:
        """Make every table hold exactly `control`'s entries (after the spec's constant entries) and
        defaults: one Read of what is there, one Write deleting it, one Write inserting the entries and
        setting every default."""
        items = to_p4runtime(self.desc, control)
        tables = [pt for pt in self._p4_tables() if not pt.is_const_table]
        old = self._read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=pt.preamble.id))
                         for pt in tables)
        deletes: list[Any] = []
        for e in old:
            te = e.table_entry
            key = p4runtime_pb2.TableEntry(table_id=te.table_id, match=te.match, priority=te.priority)
            deletes.append(self._update(p4runtime_pb2.Update.DELETE, table_entry=key))
        self._index, self._counted = {}, []
        self._write(deletes, [f"delete from {self._table_names.get(e.table_entry.table_id)}" for e in old])

        updates: list[Any] = []
        what: list[str] = []
        it = iter(items)
        per_table: dict[str, int] = {}
        for e in all_entries(self.desc, control):
            spec = self._spec_tables[e.table]
            i = per_table.get(e.table, 0)
            per_table[e.table] = i + 1
            for p4t in spec["p4_tables"]:
                item = next(it)
                assert item["table"] == p4t and not item.get("is_default_action"), (item, p4t)
                te = self._table_entry(item)
                key = entry_key(te)
                if key in self._index:
                    continue  # same match as an earlier entry: that one wins, this one never matches
                self._index[key] = (e.table, i)
                if self._tables[p4t].is_const_table:
                    continue
                updates.append(self._update(p4runtime_pb2.Update.INSERT, table_entry=te))
                what.append(f"entry {i} of {p4t} ({e.action} {[m.kind for m in e.match]})")
                if spec["counters"]:
                    self._counted.append(p4runtime_pb2.TableEntry(table_id=te.table_id, match=te.match,
                                                                  priority=te.priority))
        defaults = {item["table"]: item for item in it}
        for t in self.desc["tables"]:
            for p4t in t["p4_tables"]:
                pt = self._tables[p4t]
                d = defaults.get(p4t)
                if d is None and pt.const_default_action_id:
                    continue  # the program's default, which cannot change anyway
                te = self._table_entry(d or {"table": p4t, "is_default_action": True})
                updates.append(self._update(p4runtime_pb2.Update.MODIFY, table_entry=te))
                what.append(f"default of {p4t}: " + (d["action"]["name"] if d else "program default"))
        self._write(updates, what)

    def read_entries(self) -> list[dict[str, Any]]:
        """Every entry and default entry of the described tables as the switch reports them, in
        `to_p4runtime`'s JSON form (key fields in key order, hex values, `priority` when not 0)."""
        entities: list[Any] = []
        for pt in self._p4_tables():
            entities.append(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=pt.preamble.id)))
            entities.append(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=pt.preamble.id,
                                                                                     is_default_action=True)))
        return [self._to_json(e.table_entry) for e in self._read(entities)]

    def _to_json(self, te: Any) -> dict[str, Any]:
        name = self._table_names[te.table_id]
        pt = self._tables[name]
        fields = {f.id: f for f in pt.match_fields}
        order = {f.id: i for i, f in enumerate(pt.match_fields)}
        match = []
        for fm in sorted(te.match, key=lambda fm: order.get(fm.field_id, fm.field_id)):
            kind, body = _field_json(fm)
            match.append({"field": fields[fm.field_id].name, kind: body})
        out: dict[str, Any] = {"table": name}
        if te.is_default_action:
            out["is_default_action"] = True
        else:
            out["match"] = match
        a = te.action.action
        pa = self._actions[self._action_names[a.action_id]]
        pnames = {p.id: p.name for p in pa.params}
        out["action"] = {"name": pa.preamble.name,
                         "params": [{"name": pnames[p.param_id], "value": f"{_int(p.value):#x}"}
                                    for p in sorted(a.params, key=lambda p: p.param_id)]}
        if te.priority:
            out["priority"] = te.priority
        return out

    def _miss_counter_ids(self) -> list[tuple[str, int]]:
        return [(t["name"], self._counters[f"{p4t}__miss"].preamble.id)
                for t in self.desc["tables"] if t["counters"] for p4t in t["p4_tables"]]

    def read_table_counters(self) -> dict[tuple[str, int], tuple[int, int]]:
        """("table.NAME", i) -> (packets, bytes), i the entry's index among that table's entries in
        `all_entries` order and -1 for misses, summed over the table's P4 copies; zeros left out."""
        return self.read_counters([], tables=True)

    def read_counters(self, names: list[str], tables: bool = False) -> dict[tuple[str, int], tuple[int, int]]:
        """(counter, index) -> (packets, bytes) of the program's counter arrays `names` (a CounterEntry without
        an index reads every element) and, with `tables`, the per-entry counters as `read_table_counters` has
        them, all in one Read; zeros left out."""
        entities = [p4runtime_pb2.Entity(counter_entry=p4runtime_pb2.CounterEntry(
            counter_id=self._counters[n].preamble.id)) for n in names]
        by_id = {self._counters[n].preamble.id: n for n in names}
        miss: dict[int, str] = {}
        if tables:
            for t in self.desc["tables"]:
                if t["counters"]:
                    for p4t in t["p4_tables"]:
                        te = p4runtime_pb2.TableEntry(table_id=self._tables[p4t].preamble.id)
                        te.counter_data.SetInParent()
                        entities.append(p4runtime_pb2.Entity(table_entry=te))
            miss = {cid: name for name, cid in self._miss_counter_ids()}
            entities += [p4runtime_pb2.Entity(counter_entry=p4runtime_pb2.CounterEntry(
                counter_id=cid, index=p4runtime_pb2.Index(index=0))) for cid in miss]
        total: dict[tuple[str, int], tuple[int, int]] = {}

        def add(key: tuple[str, int], data: Any) -> None:
            p, b = total.get(key, (0, 0))
            total[key] = (p + data.packet_count, b + data.byte_count)

        for e in self._read(entities) if entities else []:
            if e.HasField("table_entry"):
                slot = self._index.get(entry_key(e.table_entry))
                if slot is not None:  # an entry this session did not install has no index
                    add((f"table.{slot[0]}", slot[1]), e.table_entry.counter_data)
            elif e.counter_entry.counter_id in miss:
                add((f"table.{miss[e.counter_entry.counter_id]}", -1), e.counter_entry.data)
            else:
                add((by_id[e.counter_entry.counter_id], e.counter_entry.index.index), e.counter_entry.data)
        return {k: v for k, v in total.items() if v != (0, 0)}

    def reset_table_counters(self) -> None:
        """Zero the direct counter of every installed entry and every `__miss` counter (one Write)."""
        updates = [self._update(p4runtime_pb2.Update.MODIFY, direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
            table_entry=te, data=p4runtime_pb2.CounterData())) for te in self._counted]
        misses = self._miss_counter_ids()
        updates += [self._update(p4runtime_pb2.Update.MODIFY, counter_entry=p4runtime_pb2.CounterEntry(
            counter_id=cid, index=p4runtime_pb2.Index(index=0), data=p4runtime_pb2.CounterData()))
            for _, cid in misses]
        self._write(updates, [f"direct counter {i}" for i in range(len(self._counted))]
                    + [f"miss counter of {name}" for name, _ in misses])

    # -- single entries, for a program operated at run time (targets/p4/control.py) ---------------------------

    def write_items(self, kind: str, items: list[dict[str, Any]]) -> None:
        """One WriteRequest of `to_p4runtime`-form items (`kind`: insert, modify or delete; a default entry's
        item is a MODIFY with `is_default_action`). Raises WriteError, whose `errors` say which items failed:
        BMv2 applies the others (P4Runtime's CONTINUE_ON_ERROR)."""
        kinds = {"insert": p4runtime_pb2.Update.INSERT, "modify": p4runtime_pb2.Update.MODIFY,
                 "delete": p4runtime_pb2.Update.DELETE}
        updates = [self._update(kinds[kind], table_entry=self._table_entry(item)) for item in items]
        self._write(updates, [f"{kind} {item['table']}" for item in items])

    def read_items(self, p4_tables: list[str], counters: bool = False, defaults: bool = False,
                   entries: bool = True) -> list[dict[str, Any]]:
        """The entries of `p4_tables` (and/or their default entries, with `defaults`) in one Read, in
        `to_p4runtime`'s JSON form, in the order the switch reports them; with `counters`, each entry's direct
        counter as `"counter": (packets, bytes)`."""
        entities: list[Any] = []
        for name in p4_tables:
            te = p4runtime_pb2.TableEntry(table_id=self._tables[name].preamble.id)
            if counters:
                te.counter_data.SetInParent()
            if entries:
                entities.append(p4runtime_pb2.Entity(table_entry=te))
            if defaults:
                entities.append(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
                    table_id=te.table_id, is_default_action=True)))
        out = []
        for e in self._read(entities):
            item = self._to_json(e.table_entry)
            if counters and e.table_entry.HasField("counter_data"):
                item["counter"] = (e.table_entry.counter_data.packet_count, e.table_entry.counter_data.byte_count)
            out.append(item)
        return out

    def counter_elements(self, name: str, index: int | None = None) -> dict[int, tuple[int, int]]:
        """Index -> (packets, bytes) of the indirect counter `name`: one element, or every element (zeros
        included) with `index` None, in one Read."""
        ce = p4runtime_pb2.CounterEntry(counter_id=self._counters[name].preamble.id)
        if index is not None:
            ce.index.index = index
        return {e.counter_entry.index.index: (e.counter_entry.data.packet_count, e.counter_entry.data.byte_count)
                for e in self._read([p4runtime_pb2.Entity(counter_entry=ce)])}

    def counter_zero(self, name: str, indices: list[int]) -> None:
        """Zero the given elements of the indirect counter `name` in one Write (BMv2 refuses a wildcard write
        of an indirect counter)."""
        cid = self._counters[name].preamble.id
        self._write([self._update(p4runtime_pb2.Update.MODIFY, counter_entry=p4runtime_pb2.CounterEntry(
            counter_id=cid, index=p4runtime_pb2.Index(index=i), data=p4runtime_pb2.CounterData()))
            for i in indices], [f"counter {name}[{i}]" for i in indices])
