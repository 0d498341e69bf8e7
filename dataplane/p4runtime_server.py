"""`c3po p4runtime serve NAME`: a P4Runtime v1 server in front of a program loaded with `c3po load --target xdp`.

Why: P4 controllers (p4runtime-shell scripts, ONOS, PTF tests) speak P4Runtime; the XDP program speaks bpf map
writes. This server answers P4Runtime with the P4Info of the P4 target's program for the same spec
(targets/p4/p4info.py: p4c's names and ids), so one controller script programs BMv2 and the kernel fast path
alike. Every entry goes through the target-neutral control API (dataplane/api.py: `Dataplane.table(...)`), which
checks names, widths, duplicates and capacity and is the only encoder of keys and values: this module turns
P4Runtime messages into the spec's canonical match form (`KeyElem`) and back, nothing more.

What maps to what:
- A P4 table is a spec table; a spec table applied from N places is N P4 tables (`t`, `t__2`, ...) on the P4
  target but one kernel table here. The copies are views of it: the server remembers which copies hold each
  entry (inserting the same entry in every copy, as a controller written for BMv2 does, installs it once;
  deleting it from the last copy removes it), a MODIFY through any copy changes the shared entry, and an entry
  inserted in one copy with an action different from the one another copy holds is refused
  (FAILED_PRECONDITION): the kernel program cannot give it two actions. Direct counters of the shared entry
  are reported on the first copy (the spec table's name), zeros on the others, so sums over copies agree with
  BMv2's; so are the `T__miss` counters (the default action's counter).
- Priorities: P4Runtime priority P (>= 1, higher wins) is spec priority P - 1, as the P4 target maps them.
- Constant entries of the spec are ordinary entries (the P4 target installs them through the control plane
  too); a pipeline COMMIT empties every table, as it does on BMv2.

Pipeline config: the P4Info must equal this program's (byte-for-byte after parsing); the device config is the
BPF object `c3po load` built and attached, gzip-compressed (`p4_device_config` of GetForwardingPipelineConfig:
an object carries its tables' zero-filled global sections, megabytes that compress to almost nothing, and a
default gRPC client takes messages of at most 4 MiB), and a Set accepts it, the object itself or an empty one — this server cannot replace the program (that is `c3po load`), only verify that the
controller means this one. VERIFY checks; VERIFY_AND_COMMIT and COMMIT check, then reset the forwarding state
(every entry deleted, defaults back to the program's, counters and registers zeroed) as a new pipeline on BMv2
starts empty; RECONCILE_AND_COMMIT keeps the state (the pipeline is the same).

Arbitration: one primary per device (the highest election id among open streams); secondaries may Read, not
Write or Set (PERMISSION_DENIED); an election id already used by another stream is refused (INVALID_ARGUMENT)
and the stream closed. Only the default role is served. Writes are CONTINUE_ON_ERROR: each update is applied or
refused on its own; when one fails, the call ends UNKNOWN with one p4.v1.Error per update in the status details,
as P4Runtime specifies. Packet I/O is opt-in (`--packet-io`, `Server.start_packet_io`): PacketIn carries
what the program sends to the host, with the ingress port as metadata id 1; without it a PacketOut is answered
with a StreamError UNIMPLEMENTED.

Security: there is no authentication or TLS unless `--tls-cert/--tls-key` are given; anyone who can reach the
address can become primary and rewrite the tables. The default address is 127.0.0.1:9559; a unix socket
(`unix:PATH`, created mode 0600) limits it to root; any other address needs `--allow-remote`.
"""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from p4.config.v1 import p4info_pb2
from p4.v1 import p4data_pb2, p4runtime_pb2, p4runtime_pb2_grpc

from c3po_compiler import ir
from c3po_compiler.expr import KeyElem
from targets.p4.control_gen import table_copies
from targets.p4.p4info import p4info

from .api import ControlError, Dataplane, Entry, entry_identity
from .p4runtime_cli import DEFAULT_ADDRESS

API_VERSION = "1.4.1"
PACKET_PORT_ID = 1  # PacketIn metadata: ingress port; PacketOut metadata: egress port (c3po's ids)
ETH_P_ALL = 0x0003
IDLE_RELEASE = 0.05  # seconds without a request before the server gives the program's lock back


class P4RError(Exception):
    """A refusal with its P4Runtime canonical code (google.rpc.Code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> P4RError:
    return P4RError(code_pb2.INVALID_ARGUMENT, message)


def _bytes_int(b: bytes, width: int, what: str) -> int:
    if not b:
        raise _invalid(f"{what}: empty bytestring")
    v = int.from_bytes(b, "big")
    if v >> width:
        raise _invalid(f"{what}: {v:#x} does not fit bit<{width}>")
    return v


def _enc(v: int) -> bytes:
    """P4Runtime canonical bytestring (no leading zero bytes; zero is one byte)."""
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


@dataclass
class _PTable:
    """One P4 table: which spec table it is a copy of, and its P4Info."""

    name: str
    spec: ir.Table
    copy: int  # 0 for the first copy (named like the spec table)
    copies: list[str]
    info: Any
    fields: dict[int, Any] = field(default_factory=dict)
    refs: dict[int, int] = field(default_factory=dict)  # action id -> scope


class _Stream:
    def __init__(self) -> None:
        self.out: queue.Queue[Any] = queue.Queue()
        self.election_id: int | None = None
        self.arbitrated = False


class Server(p4runtime_pb2_grpc.P4RuntimeServicer):
    """The P4Runtime service over one loaded program (`dp`); `device_config` is the loaded object's bytes, served
    gzip-compressed (deterministic: no name, no time)."""

    def __init__(self, dp: Dataplane, device_id: int = 0, device_config: bytes = b"") -> None:
        self.dp = dp
        self.prog = dp.prog
        self.device_id = device_id
        self.device_config = device_config
        self.device_config_gz = gzip.compress(device_config, 9, mtime=0) if device_config else b""
        self.info = p4info(self.prog)
        self.cookie: int | None = None
        self.lock = threading.RLock()  # one Write/Set at a time; reads too, so a read never sees half a batch
        self.streams: list[_Stream] = []
        self.primary_id: int | None = None
        # spec table -> identity -> copies that do NOT hold the entry (absent: held by every copy)
        self.missing: dict[str, dict[tuple[Any, ...], set[str]]] = {t: {} for t in self.prog.tables}
        copies = table_copies(self.prog)
        self.tables: dict[int, _PTable] = {}
        for pt in self.info.tables:
            spec_name = next(s for s, names in copies.items() if pt.preamble.name in names)
            names = copies[spec_name]
            t = _PTable(pt.preamble.name, self.prog.tables[spec_name], names.index(pt.preamble.name), names, pt)
            t.fields = {f.id: f for f in pt.match_fields}
            t.refs = {r.id: r.scope for r in pt.action_refs}
            self.tables[pt.preamble.id] = t
        self.actions = {a.preamble.id: a for a in self.info.actions}
        self.action_ids = {a.preamble.name: a.preamble.id for a in self.info.actions}
        self.counters = {c.preamble.id: c for c in self.info.counters}
        self.direct = {c.preamble.id: c for c in self.info.direct_counters}
        self.registers = {r.preamble.id: r for r in self.info.registers}
        self.table_by_name = {t.name: t for t in self.tables.values()}
        self._stack: contextlib.ExitStack | None = None
        self._index: dict[str, dict[tuple[Any, ...], Entry]] = {}
        self._last = 0.0
        self._closed = threading.Event()
        self._releaser: threading.Thread | None = None
        self.ports: dict[int, socket.socket] = {}  # packet I/O (start_packet_io): port -> AF_PACKET socket

    # ------------------------------------------------------------------------------------ arbitration

    def _check_device(self, device_id: int) -> None:
        if device_id != self.device_id:
            raise P4RError(code_pb2.NOT_FOUND, f"device id {device_id} is not served here (this is device "
                           f"{self.device_id})")

    def _elect(self, arriving: _Stream | None = None) -> None:
        """Make the highest election id among arbitrated streams primary; tell every stream when the primary
        changed, else only the one `arriving` (a new backup does not concern the others)."""
        ids = [s.election_id for s in self.streams if s.arbitrated and s.election_id is not None]
        new = max(ids) if ids else None
        changed = new != self.primary_id
        self.primary_id = new
        for s in self.streams:
            if not s.arbitrated or (not changed and s is not arriving):
                continue
            rep = p4runtime_pb2.StreamMessageResponse()
            arb = rep.arbitration
            arb.device_id = self.device_id
            if new is not None:
                arb.election_id.high, arb.election_id.low = new >> 64, new & (2**64 - 1)
            if new is not None and s.election_id == new:
                arb.status.code = code_pb2.OK
                arb.status.message = "this client is primary"
            elif new is not None:
                arb.status.code = code_pb2.ALREADY_EXISTS
                arb.status.message = "another client is primary; this one is a backup (read-only)"
            else:
                arb.status.code = code_pb2.NOT_FOUND
                arb.status.message = "no primary client"
            s.out.put(rep)

    def _arbitrate(self, s: _Stream, arb: Any) -> None:
        self._check_device(arb.device_id)
        if arb.HasField("role") and arb.role.name:
            raise P4RError(code_pb2.UNIMPLEMENTED, f"role '{arb.role.name}': only the default role is served")
        eid = (arb.election_id.high << 64 | arb.election_id.low) if arb.HasField("election_id") else None
        with self.lock:
            if eid is not None and any(o is not s and o.arbitrated and o.election_id == eid for o in self.streams):
                raise _invalid(f"election id ({eid >> 64}, {eid & (2**64 - 1)}) is already used by another "
                               "client")
            s.election_id, s.arbitrated = eid, True  # a client may arbitrate again with another id
            self._elect(arriving=s)

    def _check_primary(self, election: Any, what: str) -> None:
        eid = election.high << 64 | election.low
        if self.primary_id is None or eid != self.primary_id:
            who = "there is no primary client" if self.primary_id is None else "it is not the primary's"
            raise P4RError(code_pb2.PERMISSION_DENIED, f"{what} refused: election id ({election.high}, "
                           f"{election.low}) is not primary ({who}); open a StreamChannel with the highest "
                           "election id first")

    def StreamChannel(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:
        s = _Stream()
        with self.lock:
            self.streams.append(s)
        abort: list[P4RError] = []

        def read() -> None:
            try:
                for req in request_iterator:
                    kind = req.WhichOneof("update")
                    if kind == "arbitration":
                        self._arbitrate(s, req.arbitration)
                    elif kind == "packet":
                        problem = self._packet_out(s, req.packet)
                        if problem is not None:
                            rep = p4runtime_pb2.StreamMessageResponse()
                            rep.error.canonical_code, rep.error.message = problem
                            rep.error.packet_out.packet_out.CopyFrom(req.packet)
                            s.out.put(rep)
                    elif not s.arbitrated:
                        raise P4RError(code_pb2.FAILED_PRECONDITION,
                                       "the first message on a stream must be a MasterArbitrationUpdate")
            except P4RError as exc:
                abort.append(exc)
            except Exception:  # the client went away (cancelled, disconnected) or sent garbage
                pass
            finally:
                s.out.put(None)

        threading.Thread(target=read, name="p4rt-stream", daemon=True).start()
        # A cancelled RPC (client gone, server stopping) must not leave this worker waiting on the queue: a
        # blocked worker thread would keep the process from exiting.
        context.add_callback(lambda: s.out.put(None))
        try:
            while True:
                try:
                    msg = s.out.get(timeout=1.0)
                except queue.Empty:
                    if context.is_active():
                        continue
                    break
                if msg is None:
                    break
                yield msg
            if abort:
                context.abort(_grpc_code(abort[0].code), abort[0].message)
        finally:
            with self.lock:
                if s in self.streams:
                    self.streams.remove(s)
                    if s.arbitrated and s.election_id == self.primary_id:
                        self._elect()

    # ------------------------------------------------------------------------------------ packet I/O

    def start_packet_io(self, ports: list[tuple[int, str]], netns: str | None = None) -> None:
        """PacketIn/PacketOut over the program's interfaces. What the XDP program gives the host (`to_host`,
        XDP_PASS) is what the kernel receives on the interface, and frames it forwards or drops never reach the
        kernel there: an AF_PACKET socket on each port's interface sees exactly the frames the program sends to
        the host. Each becomes a PacketIn to the primary with metadata id 1 = ingress port (16-bit); a PacketOut
        with metadata id 1 = egress port is sent out of that port's interface as it is (it does not pass through
        the program, as on a switch's CPU port). The ids are c3po's: the P4 target has no
        `@controller_header`, so its P4Info (and this one, which equals it) declares no packet metadata."""
        from targets.p4.netns import entered

        ctx = entered(netns) if netns else contextlib.nullcontext()
        with ctx:
            for port, ifname in ports:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.bind((ifname, 0))
                sock.settimeout(0.5)  # so the reader notices `close`
                self.ports[port] = sock
        for port, sock in self.ports.items():
            threading.Thread(target=self._packet_in, args=(port, sock), name=f"p4rt-port{port}",
                             daemon=True).start()

    def _packet_in(self, port: int, sock: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            rep = p4runtime_pb2.StreamMessageResponse()
            rep.packet.payload = data
            rep.packet.metadata.add(metadata_id=PACKET_PORT_ID, value=_enc(port))
            with self.lock:
                for s in self.streams:
                    if s.arbitrated and s.election_id is not None and s.election_id == self.primary_id:
                        s.out.put(rep)

    def _packet_out(self, s: _Stream, packet: Any) -> tuple[int, str] | None:
        """Send a PacketOut; returns (code, message) when it cannot be sent."""
        if not self.ports:
            return code_pb2.UNIMPLEMENTED, "packet I/O is off (c3po p4runtime serve --packet-io)"
        if s.election_id is None or s.election_id != self.primary_id:
            return code_pb2.PERMISSION_DENIED, "only the primary may send packets"
        meta = {m.metadata_id: m.value for m in packet.metadata}
        if PACKET_PORT_ID not in meta:
            return code_pb2.INVALID_ARGUMENT, f"metadata id {PACKET_PORT_ID} (egress port) is missing"
        port = int.from_bytes(meta[PACKET_PORT_ID], "big")
        sock = self.ports.get(port)
        if sock is None:
            return code_pb2.INVALID_ARGUMENT, f"egress port {port} has no interface (ports: {sorted(self.ports)})"
        try:
            sock.send(packet.payload)
        except OSError as exc:
            return code_pb2.INVALID_ARGUMENT, f"payload could not be sent on port {port}: {exc.strerror}"
        return None

    # ------------------------------------------------------------------------------------ capabilities, pipeline

    def Capabilities(self, request: Any, context: Any) -> Any:
        return p4runtime_pb2.CapabilitiesResponse(p4runtime_api_version=API_VERSION)

    def SetForwardingPipelineConfig(self, request: Any, context: Any) -> Any:
        try:
            self._check_device(request.device_id)
            with self.lock:
                self._check_primary(request.election_id, "SetForwardingPipelineConfig")
                A = p4runtime_pb2.SetForwardingPipelineConfigRequest
                action = request.action
                if action == A.UNSPECIFIED:
                    raise _invalid("action: UNSPECIFIED (use VERIFY, VERIFY_AND_COMMIT, COMMIT or "
                                   "RECONCILE_AND_COMMIT)")
                if action != A.COMMIT or request.HasField("config"):
                    self._verify(request.config)
                if action in (A.VERIFY_AND_COMMIT, A.COMMIT):
                    self._reset()
                if action != A.VERIFY and request.config.HasField("cookie"):
                    self.cookie = request.config.cookie.cookie
                return p4runtime_pb2.SetForwardingPipelineConfigResponse()
        except P4RError as exc:
            context.abort(_grpc_code(exc.code), exc.message)
        raise AssertionError("unreachable")

    def _verify(self, config: Any) -> None:
        if not config.HasField("p4info"):
            raise _invalid("config.p4info is missing")
        if config.p4info != self.info:
            want = {t.preamble.name for t in self.info.tables}
            got = {t.preamble.name for t in config.p4info.tables}
            hint = f" (tables {sorted(got)} given, {sorted(want)} loaded)" if got != want else ""
            raise _invalid("config.p4info is not the P4Info of the loaded program '"
                           f"{self.prog.name}'{hint}: load the new program with `c3po load` first")
        if config.p4_device_config and config.p4_device_config not in (self.device_config, self.device_config_gz):
            raise _invalid("config.p4_device_config is not the loaded program's object: give it empty, the "
                           ".bpf.o c3po load built, or what GetForwardingPipelineConfig gave (this server cannot "
                           "replace the program)")

    def _reset(self) -> None:
        """The state a freshly committed pipeline has on BMv2: no entries, program defaults, zero counters
        and registers."""
        self._hold()
        self._index = {}
        for name, t in self.prog.tables.items():
            self.dp.table(name).clear()
            self.dp._set_default(name, t.default.action, tuple(t.default.args))
            self.missing[name] = {}
        for c in self.prog.counters:
            self.dp.counter_reset(c)
        for r in self.prog.registers:
            for i in self.dp.register_read(r):
                self.dp.register_write(r, i, 0)
        for t in self.prog.tables.values():
            if t.counters:
                self._zero_miss(t.name)

    def _zero_miss(self, table: str) -> None:
        """Zero the default action's counter (`T__miss`): the control API can read it, not reset it, so this
        uses the XDP backend's own primitive (element 0 of the table's counter map) where it has one."""
        reset = getattr(self.dp, "_zero_counter", None)
        if reset is not None:
            self._hold()
            reset(table, -1)

    def GetForwardingPipelineConfig(self, request: Any, context: Any) -> Any:
        try:
            self._check_device(request.device_id)
        except P4RError as exc:
            context.abort(_grpc_code(exc.code), exc.message)
        R = p4runtime_pb2.GetForwardingPipelineConfigRequest
        rep = p4runtime_pb2.GetForwardingPipelineConfigResponse()
        cfg = rep.config
        if request.response_type in (R.ALL, R.P4INFO_AND_COOKIE):
            cfg.p4info.CopyFrom(self.info)
        if request.response_type in (R.ALL, R.DEVICE_CONFIG_AND_COOKIE):
            cfg.p4_device_config = self.device_config_gz
        if self.cookie is not None:
            cfg.cookie.cookie = self.cookie
        return rep

    # ------------------------------------------------------------------------------------ write

    def Write(self, request: Any, context: Any) -> Any:
        try:
            self._check_device(request.device_id)
            if request.atomicity != p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR:
                raise P4RError(code_pb2.UNIMPLEMENTED, "atomicity: only CONTINUE_ON_ERROR is supported (kernel "
                               "map writes are atomic per entry, not per batch)")
            if request.role:
                raise P4RError(code_pb2.UNIMPLEMENTED, f"role '{request.role}': only the default role is served")
            with self.lock:
                self._check_primary(request.election_id, "Write")
                errors: list[tuple[int, str]] = []
                self._hold()
                for u in request.updates:
                    try:
                        self._update(u)
                        errors.append((code_pb2.OK, ""))
                    except P4RError as exc:
                        errors.append((exc.code, exc.message))
                    except ControlError as exc:
                        errors.append((_control_code(exc), str(exc)))
                    except Exception as exc:  # a fault here: reported for this update, the batch goes on
                        errors.append((code_pb2.INTERNAL, f"internal error: {exc!r}"))
        except P4RError as exc:
            context.abort(_grpc_code(exc.code), exc.message)
        failed = [(i, c, m) for i, (c, m) in enumerate(errors) if c != code_pb2.OK]
        if failed:
            status = status_pb2.Status(code=code_pb2.UNKNOWN,
                                       message=f"{len(failed)} of {len(errors)} updates failed: {failed[0][2]}")
            for c, m in errors:
                detail = any_pb2.Any()
                detail.Pack(p4runtime_pb2.Error(canonical_code=c, message=m))
                status.details.append(detail)
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
            context.set_code(grpc.StatusCode.UNKNOWN)
            context.set_details(status.message)
        return p4runtime_pb2.WriteResponse()

    def _update(self, u: Any) -> None:
        U = p4runtime_pb2.Update
        if u.type == U.UNSPECIFIED:
            raise _invalid("update type: UNSPECIFIED (INSERT, MODIFY or DELETE)")
        kind = u.entity.WhichOneof("entity")
        if kind == "table_entry":
            self._write_table_entry(u.type, u.entity.table_entry)
        elif kind == "counter_entry":
            self._write_counter(u.type, u.entity.counter_entry)
        elif kind == "direct_counter_entry":
            self._write_direct_counter(u.type, u.entity.direct_counter_entry)
        elif kind == "register_entry":
            self._write_register(u.type, u.entity.register_entry)
        elif kind is None:
            raise _invalid("entity: empty")
        else:
            raise P4RError(code_pb2.UNIMPLEMENTED, f"entity {kind} is not supported by this program")

    def _table(self, table_id: int) -> _PTable:
        t = self.tables.get(table_id)
        if t is None:
            raise P4RError(code_pb2.NOT_FOUND, f"table_id {table_id} is not a table of the P4Info")
        return t

    def _match(self, t: _PTable, te: Any) -> tuple[KeyElem, ...]:
        """The P4Runtime match as one canonical element per key, checked as the specification requires."""
        by_id: dict[int, Any] = {}
        for fm in te.match:
            f = t.fields.get(fm.field_id)
            if f is None:
                raise _invalid(f"match field_id {fm.field_id} is not a field of table '{t.name}'")
            if fm.field_id in by_id:
                raise _invalid(f"match field '{f.name}' is given twice")
            by_id[fm.field_id] = fm
        out = []
        MF = p4info_pb2.MatchField
        for fid, f in t.fields.items():
            fm = by_id.get(fid)
            what = f"match field '{f.name}'"
            w = f.bitwidth
            full = (1 << w) - 1
            if fm is None:
                if f.match_type == MF.EXACT:
                    raise _invalid(f"{what} (exact) is missing")
                out.append(KeyElem("any"))
                continue
            kind = fm.WhichOneof("field_match_type")
            want = {MF.EXACT: "exact", MF.LPM: "lpm", MF.TERNARY: "ternary", MF.RANGE: "range"}[f.match_type]
            if kind != want:
                raise _invalid(f"{what} is {want}, the entry gives {kind}")
            if kind == "exact":
                out.append(KeyElem("value", _bytes_int(fm.exact.value, w, what)))
            elif kind == "lpm":
                v, plen = _bytes_int(fm.lpm.value, w, what), fm.lpm.prefix_len
                if not 0 < plen <= w:
                    raise _invalid(f"{what}: prefix_len {plen} is outside 1..{w} (a /0 is a don't-care: leave "
                                   "the field out)")
                if v & ((1 << (w - plen)) - 1):
                    raise _invalid(f"{what}: value {v:#x} has bits set beyond the /{plen} prefix")
                out.append(KeyElem("prefix", v, plen))
            elif kind == "ternary":
                v, m = _bytes_int(fm.ternary.value, w, what), _bytes_int(fm.ternary.mask, w, what + " mask")
                if m == 0:
                    raise _invalid(f"{what}: mask 0 is a don't-care: leave the field out")
                if v & ~m:
                    raise _invalid(f"{what}: value {v:#x} has bits set outside mask {m:#x}")
                out.append(KeyElem("mask", v, m))
            else:
                lo, hi = _bytes_int(fm.range.low, w, what + " low"), _bytes_int(fm.range.high, w, what + " high")
                if lo > hi:
                    raise _invalid(f"{what}: low {lo:#x} is above high {hi:#x}")
                if (lo, hi) == (0, full):
                    raise _invalid(f"{what}: the full range is a don't-care: leave the field out")
                out.append(KeyElem("range", lo, hi))
        return tuple(out)

    def _priority(self, t: _PTable, te: Any) -> int:
        if t.spec.uses_priority:
            if te.priority <= 0:
                raise _invalid(f"priority: table '{t.name}' has ternary or range fields, its entries need a "
                               "priority of 1 or more")
            return int(te.priority) - 1
        if te.priority:
            raise _invalid(f"priority: table '{t.name}' has no ternary or range field, priority must be 0")
        return 0

    def _action(self, t: _PTable, te: Any, default: bool) -> tuple[str, tuple[int, ...]]:
        kind = te.action.WhichOneof("type")
        if kind != "action":
            raise (_invalid("action: missing") if kind is None else
                   P4RError(code_pb2.UNIMPLEMENTED, f"action.{kind}: action profiles are not supported"))
        a = te.action.action
        pa = self.actions.get(a.action_id)
        if pa is None or a.action_id not in t.refs:
            raise _invalid(f"action.action_id {a.action_id} is not an action of table '{t.name}'")
        scope = t.refs[a.action_id]
        if not default and scope == p4info_pb2.ActionRef.DEFAULT_ONLY:
            raise _invalid(f"action '{pa.preamble.name}' is default-only in table '{t.name}'")
        if default and scope == p4info_pb2.ActionRef.TABLE_ONLY:
            raise _invalid(f"action '{pa.preamble.name}' is table-only in table '{t.name}'")
        given: dict[int, Any] = {}
        params = {p.id: p for p in pa.params}
        for p in a.params:
            if p.param_id not in params:
                raise _invalid(f"action '{pa.preamble.name}': param_id {p.param_id} is not one of its parameters")
            if p.param_id in given:
                raise _invalid(f"action '{pa.preamble.name}': parameter '{params[p.param_id].name}' given twice")
            given[p.param_id] = p
        args = []
        for pid, pp in params.items():
            if pid not in given:
                raise _invalid(f"action '{pa.preamble.name}': parameter '{pp.name}' is missing")
            args.append(_bytes_int(given[pid].value, pp.bitwidth, f"action '{pa.preamble.name}' parameter "
                                   f"'{pp.name}'"))
        return pa.preamble.name, tuple(args)

    # ---- the program's lock, held over bursts of requests

    def _hold(self) -> None:
        """Take the registry lock of the program (if this server does not hold it yet) and keep it until the
        server has been idle for `IDLE_RELEASE` seconds. While it is held no other c3po process changes the
        tables, so what was read of them stays true: entries are read from the kernel once per burst, not once
        per Write (a 1,000-entry LPM table takes milliseconds to read back). Other c3po commands on the program
        wait for the burst to end. Called with `self.lock` held."""
        if self._closed.is_set():
            raise P4RError(code_pb2.UNAVAILABLE, "the server is shutting down")
        self._last = time.monotonic()
        if self._stack is None:
            stack = contextlib.ExitStack()
            stack.enter_context(self.dp.locked())
            self._stack, self._index = stack, {}
            if self._releaser is None:
                self._releaser = threading.Thread(target=self._release_when_idle, name="p4rt-lock", daemon=True)
                self._releaser.start()

    def _release_when_idle(self) -> None:
        while not self._closed.wait(IDLE_RELEASE / 2):
            with self.lock:
                if self._stack is not None and time.monotonic() - self._last > IDLE_RELEASE:
                    self._release()

    def _release(self) -> None:
        stack, self._stack, self._index = self._stack, None, {}
        if stack is not None:
            stack.close()

    def close(self) -> None:
        """Give the program's lock back (the server keeps running; stop the grpc.Server first)."""
        self._closed.set()
        with self.lock:
            self._release()
            for stream in self.streams:
                stream.out.put(None)
            for sock in self.ports.values():
                sock.close()

    def _entries(self, spec: ir.Table) -> dict[tuple[Any, ...], Entry]:
        """Identity -> entry of a spec table, read once per burst and kept up to date by the writes."""
        idx = self._index.get(spec.name)
        if idx is None:
            idx = self._index[spec.name] = {entry_identity(spec, e.match, e.priority): e
                                            for e in self.dp.table(spec.name).entries(counters=False)}
        return idx

    def _write_table_entry(self, kind: int, te: Any) -> None:
        U = p4runtime_pb2.Update
        t = self._table(te.table_id)
        table = self.dp.table(t.spec.name)
        if te.is_default_action:
            if kind != U.MODIFY:
                raise _invalid("is_default_action: the default entry can only be modified")
            if te.match or te.priority:
                raise _invalid("is_default_action: the default entry has no match and no priority")
            program_default = (t.spec.default.action, tuple(t.spec.default.args))
            # P4Runtime: a default MODIFY without an action restores the program's default
            action, args = self._action(t, te, default=True) if te.HasField("action") else program_default
            if (action, args) == program_default:  # always allowed, even where it is no action of the table
                self.dp._set_default(t.spec.name, action, args)
            else:
                table.set_default(action, args)
            return
        if te.HasField("counter_data") and (te.counter_data.packet_count or te.counter_data.byte_count):
            raise P4RError(code_pb2.UNIMPLEMENTED, "counter_data: the XDP target's per-CPU counters can only "
                           "be zeroed, not set")
        if te.HasField("meter_config") or te.idle_timeout_ns or te.HasField("time_since_last_hit"):
            raise P4RError(code_pb2.UNIMPLEMENTED, "meters and idle timeouts are not supported by this program")
        match = self._match(t, te)
        prio = self._priority(t, te)
        ident = entry_identity(t.spec, match, prio)
        missing = self.missing[t.spec.name]
        index = self._entries(t.spec)
        old = index.get(ident)
        if old is None:
            missing.pop(ident, None)
        held = old is not None and t.name not in missing.get(ident, set())
        if kind == U.INSERT:
            action, args = self._action(t, te, default=False)
            if held:
                raise P4RError(code_pb2.ALREADY_EXISTS, f"table '{t.name}' already has an entry with this match"
                               + (" and priority" if t.spec.uses_priority else ""))
            if old is None:
                if len(index) >= t.spec.size:
                    raise P4RError(code_pb2.RESOURCE_EXHAUSTED, f"table '{t.name}' is full ({t.spec.size} "
                                   "entries)")
                # What Dataplane.apply does once the checks are done (names, widths and priority checked by
                # the table, duplicates and capacity against the index): the backend's one encoder writes it.
                entry = Entry(table._check_match(match), action, table._check_action(action, args),
                              table._check_priority(prio))
                self.dp._insert(t.spec.name, entry)
                index[ident] = entry
                if len(t.copies) > 1:
                    missing[ident] = set(t.copies) - {t.name}
                return
            if (old.action, old.args) != (action, args):
                raise P4RError(code_pb2.FAILED_PRECONDITION, f"table '{t.name}' shares its entries with "
                               f"{', '.join(c for c in t.copies if c != t.name)} in the XDP program, where this "
                               f"match has action '{old.action}': insert the same action in every copy")
            missing[ident].discard(t.name)
            if not missing[ident]:
                del missing[ident]
            return
        if not held:
            raise P4RError(code_pb2.NOT_FOUND, f"table '{t.name}' has no entry with this match"
                           + (" and priority" if t.spec.uses_priority else ""))
        assert old is not None
        if kind == U.MODIFY:
            action, args = self._action(t, te, default=False)
            new = Entry(old.match, action, table._check_action(action, args), old.priority, const=old.const)
            self.dp._modify(t.spec.name, old, new)
            index[ident] = new
        elif kind == U.DELETE:
            gone = missing.setdefault(ident, set())
            gone.add(t.name)
            if gone >= set(t.copies):
                del missing[ident]
                self.dp._remove(t.spec.name, old)
                del index[ident]

    def _element(self, what: str, objects: dict[int, Any], oid: int, index: Any | None) -> tuple[Any, int | None]:
        """The counter or register `oid` of the P4Info and the element index asked for (None: every one)."""
        obj = objects.get(oid)
        if obj is None:
            raise P4RError(code_pb2.NOT_FOUND, f"{what}_id {oid} is not a {what} of the P4Info")
        i = index.index if index is not None else None
        if i is not None and not 0 <= i < obj.size:
            raise P4RError(code_pb2.OUT_OF_RANGE, f"index {i} is outside {what} '{obj.preamble.name}' "
                           f"(0..{obj.size - 1})")
        return obj, i

    def _write_counter(self, kind: int, ce: Any) -> None:
        if kind != p4runtime_pb2.Update.MODIFY:
            raise _invalid("counter entries can only be modified")
        c, index = self._element("counter", self.counters, ce.counter_id, ce.index if ce.HasField("index") else None)
        if ce.data.packet_count or ce.data.byte_count:
            raise P4RError(code_pb2.UNIMPLEMENTED, "data: the XDP target's per-CPU counters can only be zeroed")
        name = c.preamble.name
        if name in self.prog.counters:
            self.dp.counter_reset(name, index)
        else:  # T__miss: the default action's counter of the shared table
            t = self.table_by_name[name[: -len("__miss")]]
            if t.copy == 0:
                self._zero_miss(t.spec.name)

    def _write_direct_counter(self, kind: int, dce: Any) -> None:
        """Zero one entry's counter (what controllers do to restart a measurement). The control API has no
        per-entry reset, so this uses the XDP backend's own primitives: the entry's counter slot
        (`_state(...).find`) and `_zero_counter`; a backend without them answers UNIMPLEMENTED."""
        if kind != p4runtime_pb2.Update.MODIFY:
            raise _invalid("direct counter entries can only be modified")
        if dce.data.packet_count or dce.data.byte_count:
            raise P4RError(code_pb2.UNIMPLEMENTED, "data: the XDP target's per-CPU counters can only be zeroed")
        te = dce.table_entry
        t = self._table(te.table_id)
        if not t.spec.counters:
            raise _invalid(f"table_entry.table_id: table '{t.name}' has no direct counter")
        state, zero = getattr(self.dp, "_state", None), getattr(self.dp, "_zero_counter", None)
        if state is None or zero is None:
            raise P4RError(code_pb2.UNIMPLEMENTED, "direct counter writes are not supported by this target")
        ident = entry_identity(t.spec, self._match(t, te), self._priority(t, te))
        entry = self._entries(t.spec).get(ident)
        if entry is None or t.name in self.missing[t.spec.name].get(ident, ()):
            raise P4RError(code_pb2.NOT_FOUND, f"table '{t.name}' has no entry with this match")
        if t.copy == 0:  # the shared counter is reported on the first copy
            _, (_, slot, _) = state(t.spec.name).find(entry)
            zero(t.spec.name, slot)

    def _write_register(self, kind: int, re: Any) -> None:
        if kind != p4runtime_pb2.Update.MODIFY:
            raise _invalid("register entries can only be modified")
        if not re.HasField("index"):
            raise P4RError(code_pb2.UNIMPLEMENTED, "index: wildcard register writes are not supported")
        r, index = self._element("register", self.registers, re.register_id, re.index)
        if re.data.WhichOneof("data") != "bitstring":
            raise _invalid(f"data: register '{r.preamble.name}' holds a bitstring")
        w = r.type_spec.bitstring.bit.bitwidth
        assert index is not None
        self.dp.register_write(r.preamble.name, index,
                               _bytes_int(re.data.bitstring, w, f"register '{r.preamble.name}' data"))

    # ------------------------------------------------------------------------------------ read

    def Read(self, request: Any, context: Any) -> Iterator[Any]:
        try:
            self._check_device(request.device_id)
            with self.lock:
                self._hold()
                out: list[Any] = []
                for ent in request.entities:
                    kind = ent.WhichOneof("entity")
                    if kind == "table_entry":
                        out += self._read_tables(ent.table_entry)
                    elif kind == "counter_entry":
                        out += self._read_counters(ent.counter_entry)
                    elif kind == "direct_counter_entry":
                        out += self._read_direct(ent.direct_counter_entry)
                    elif kind == "register_entry":
                        out += self._read_registers(ent.register_entry)
                    else:
                        raise P4RError(code_pb2.UNIMPLEMENTED, f"reading {kind} is not supported")
        except P4RError as exc:
            context.abort(_grpc_code(exc.code), exc.message)
        except ControlError as exc:
            context.abort(_grpc_code(_control_code(exc)), str(exc))
        for i in range(0, len(out), 1000):
            yield p4runtime_pb2.ReadResponse(entities=out[i:i + 1000])

    def _table_entry(self, t: _PTable, e: Entry, counters: bool) -> Any:
        te = p4runtime_pb2.TableEntry(table_id=t.info.preamble.id)
        for (fid, f), m in zip(t.fields.items(), e.match, strict=True):
            if m.kind == "any":
                continue
            fm = te.match.add(field_id=fid)
            if m.kind == "value":
                fm.exact.value = _enc(m.a)
            elif m.kind == "prefix":
                fm.lpm.value, fm.lpm.prefix_len = _enc(m.a), m.b
            elif m.kind == "mask":
                fm.ternary.value, fm.ternary.mask = _enc(m.a), _enc(m.b)
            else:
                fm.range.low, fm.range.high = _enc(m.a), _enc(m.b)
            del f
        if t.spec.uses_priority:
            te.priority = e.priority + 1
        self._set_action(te, e.action, e.args)
        if counters and t.spec.counters:
            p, b = (e.counter or (0, 0)) if t.copy == 0 else (0, 0)
            te.counter_data.packet_count, te.counter_data.byte_count = p, b
        return te

    def _set_action(self, te: Any, action: str, args: tuple[int, ...]) -> None:
        aid = self.action_ids[action]
        a = te.action.action
        a.action_id = aid
        for p, v in zip(self.actions[aid].params, args, strict=True):
            a.params.add(param_id=p.id, value=_enc(v))

    def _read_tables(self, req: Any) -> list[Any]:
        tables = [self._table(req.table_id)] if req.table_id else list(self.tables.values())
        counters = req.HasField("counter_data")
        out = []
        for t in tables:
            if req.is_default_action:
                te = p4runtime_pb2.TableEntry(table_id=t.info.preamble.id, is_default_action=True)
                action, args = self.dp.table(t.spec.name).default()
                self._set_action(te, action, args)
                out.append(p4runtime_pb2.Entity(table_entry=te))
                continue
            want = None
            if req.match:
                m = self._match(t, req)
                want = entry_identity(t.spec, m, self._priority(t, req))
            missing = self.missing[t.spec.name]
            for e in self.dp.table(t.spec.name).entries(counters=counters):
                ident = entry_identity(t.spec, e.match, e.priority)
                if t.name in missing.get(ident, ()) or (want is not None and ident != want):
                    continue
                if req.priority and not req.match and e.priority + 1 != req.priority:
                    continue
                out.append(p4runtime_pb2.Entity(table_entry=self._table_entry(t, e, counters)))
        return out

    def _read_counters(self, req: Any) -> list[Any]:
        ids = [req.counter_id] if req.counter_id else list(self.counters)
        out = []
        for cid in ids:
            c, index = self._element("counter", self.counters, cid, req.index if req.HasField("index") else None)
            name = c.preamble.name
            if name in self.prog.counters:
                values = self.dp.counter_read(name, index)
            else:
                t = self.table_by_name[name[: -len("__miss")]]
                dc = self.dp.table(t.spec.name).default_counter() if t.copy == 0 else None
                values = {0: dc or (0, 0)}
            for i in [index] if index is not None else range(c.size):
                p, b = values.get(i, (0, 0))
                ce = p4runtime_pb2.CounterEntry(counter_id=c.preamble.id, index=p4runtime_pb2.Index(index=i))
                ce.data.packet_count, ce.data.byte_count = p, b
                out.append(p4runtime_pb2.Entity(counter_entry=ce))
        return out

    def _read_direct(self, req: Any) -> list[Any]:
        te = req.table_entry
        ids = [te.table_id] if te.table_id else [t.direct_table_id for t in self.direct.values()]
        out = []
        for tid in ids:
            t = self._table(tid)
            if not t.spec.counters:
                raise _invalid(f"table_entry.table_id: table '{t.name}' has no direct counter")
            q = p4runtime_pb2.TableEntry(table_id=tid, match=te.match, priority=te.priority)
            q.counter_data.SetInParent()
            for ent in self._read_tables(q):
                dce = p4runtime_pb2.DirectCounterEntry(table_entry=ent.table_entry)
                dce.table_entry.ClearField("counter_data")
                dce.table_entry.ClearField("action")
                dce.data.CopyFrom(ent.table_entry.counter_data)
                out.append(p4runtime_pb2.Entity(direct_counter_entry=dce))
        return out

    def _read_registers(self, req: Any) -> list[Any]:
        ids = [req.register_id] if req.register_id else list(self.registers)
        out = []
        for rid in ids:
            r, index = self._element("register", self.registers, rid, req.index if req.HasField("index") else None)
            values = self.dp.register_read(r.preamble.name, index)
            for i in [index] if index is not None else range(r.size):
                re = p4runtime_pb2.RegisterEntry(register_id=r.preamble.id, index=p4runtime_pb2.Index(index=i),
                                                 data=p4data_pb2.P4Data(bitstring=_enc(values.get(i, 0))))
                out.append(p4runtime_pb2.Entity(register_entry=re))
        return out


def _grpc_code(code: int) -> grpc.StatusCode:
    return next(s for s in grpc.StatusCode if s.value[0] == code)


def _control_code(exc: ControlError) -> int:
    """The P4Runtime code of a refusal from the control API (it raises one exception type for all)."""
    text = exc.message
    if "is full" in text:
        return int(code_pb2.RESOURCE_EXHAUSTED)
    if "already has an entry" in text:
        return int(code_pb2.ALREADY_EXISTS)
    if "has no entry" in text:
        return int(code_pb2.NOT_FOUND)
    if "out of range" in text or "is outside" in text:
        return int(code_pb2.OUT_OF_RANGE)
    return int(code_pb2.INVALID_ARGUMENT)


# ---------------------------------------------------------------------------------------------- the command

def check_address(address: str, allow_remote: bool) -> str:
    """unix:PATH, or HOST:PORT on a loopback address unless `allow_remote` (no TLS: see the module doc)."""
    if address.startswith("unix:"):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ControlError(f"address '{address}' is not HOST:PORT or unix:PATH", f"e.g. {DEFAULT_ADDRESS}")
    host = host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ControlError(f"address '{address}' is not a loopback address: P4Runtime has no authentication, "
                           "anyone who reaches it can rewrite the tables",
                           "add --allow-remote to bind it anyway (and --tls-cert/--tls-key for TLS)")
    return address


def serve(dp: Dataplane, address: str, device_id: int = 0, device_config: bytes = b"",
          credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, Server]:
    """Start the server (returns at once; `grpc.Server.stop` ends it)."""
    service = Server(dp, device_id, device_config)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="p4rt"),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_send_message_length", 64 << 20)])
    p4runtime_pb2_grpc.add_P4RuntimeServicer_to_server(service, server)
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if not port and not address.startswith("unix:"):
        raise ControlError(f"cannot listen on {address}", "is another server using that port?")
    server.start()
    if address.startswith("unix:"):
        os.chmod(address[len("unix:"):].removeprefix("//"), 0o600)
    return server, service


__all__ = ["DEFAULT_ADDRESS", "Server", "check_address", "serve"]
