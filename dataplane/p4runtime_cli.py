"""`c3po p4runtime serve NAME [--address ...]`: the command line of dataplane/p4runtime_server.py.

Kept apart from the server so that every other `c3po` command starts without importing grpc and the P4Runtime
bindings (the server module needs both at import time).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import registry
from .api import ControlError
from .targets import control_module

DEFAULT_ADDRESS = "127.0.0.1:9559"


def _device_config(record: registry.Record) -> bytes:
    objs = sorted((record.dir / "build").glob("*.bpf.o"))
    return objs[0].read_bytes() if objs else b""


def cmd_serve(args: argparse.Namespace) -> int:
    import grpc

    from .cli import _fail
    from .p4runtime_server import check_address, serve

    try:
        address = check_address(args.address, args.allow_remote)
        record, prog = registry.get(args.name)
        if record.target != "xdp":
            raise ControlError(f"program '{args.name}' runs on target '{record.target}'",
                               "BMv2 serves P4Runtime itself (its gRPC address is in c3po status --json); "
                               "this server is for xdp programs")
        creds = None
        if args.tls_cert or args.tls_key:
            if not (args.tls_cert and args.tls_key):
                raise ControlError("--tls-cert and --tls-key go together")
            creds = grpc.ssl_server_credentials([(Path(args.tls_key).read_bytes(),
                                                  Path(args.tls_cert).read_bytes())])
        dp = control_module(record.target).open(prog, record)
        server, service = serve(dp, address, args.device_id, _device_config(record), creds)
        if args.packet_io:
            service.start_packet_io([(p.port, p.ifname) for p in record.ports], record.extra.get("netns"))
    except ControlError as exc:
        return _fail(f"c3po p4runtime serve: {exc.message}" + (f"\n    hint: {exc.hint}" if exc.hint else ""))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"c3po p4runtime: serving '{args.name}' (device {args.device_id}) on {address}", flush=True)
    while not stop.wait(1.0):
        if not (record.dir / "record.json").exists():
            print(f"c3po p4runtime: '{args.name}' was unloaded, stopping", file=sys.stderr)
            break
    server.stop(grace=1.0).wait(timeout=5)  # bounded: grpc may not report the end of a cancelled stream
    service.close()
    dp.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("p4runtime", help="serve P4Runtime for a loaded xdp program (docs/p4runtime.md)")
    inner = p.add_subparsers(dest="p4runtime_command", required=True)
    s = inner.add_parser("serve", help="a P4Runtime v1 gRPC server in front of a program loaded with c3po load")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--address", default=DEFAULT_ADDRESS, help=f"HOST:PORT or unix:PATH (default {DEFAULT_ADDRESS})")
    s.add_argument("--device-id", type=int, default=0, help="the P4Runtime device id (default 0)")
    s.add_argument("--allow-remote", action="store_true", help="allow a non-loopback address: no authentication, "
                   "anyone reaching it controls the tables")
    s.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    s.add_argument("--tls-key", metavar="PEM", help="and this private key")
    s.add_argument("--packet-io", action="store_true", help="PacketIn: frames the program sends to the host, "
                   "PacketOut: frames sent out of a port (metadata id 1: the port)")
    s.set_defaults(func=cmd_serve)
