#!/usr/bin/env python3
"""A deliberately broken vendor plugin: the example plugin, crashing on every packet whose first byte is even.
Used by the tests to check that a crashing target costs single vectors an ERROR and never hangs a run."""

from __future__ import annotations

import json
import sys

from c3po_compiler import load_program
from conformance.interpreter import Interpreter
from conformance.model import PacketIn
from conformance.subprocess_driver import result_to_json
from conformance.vectors import control_from_data, registers_from_data


def main() -> int:
    prog = interp = None
    for line in sys.stdin:
        msg = json.loads(line)
        reply: dict[str, object] = {"ok": True}
        if msg["op"] == "open":
            prog = load_program(msg["spec"]).program
            interp = Interpreter(prog)
        elif msg["op"] == "install":
            assert prog is not None and interp is not None
            interp.install(control_from_data(msg["control"], prog, "install"))
        elif msg["op"] == "run":
            assert prog is not None and interp is not None
            packets = [PacketIn(p["port"], bytes.fromhex(p["data"])) for p in msg["packets"]]
            if any(p.data[:1] and p.data[0] % 2 == 0 for p in packets):
                sys.exit(11)
            reply["results"] = [
                result_to_json(r)
                for r in interp.run(packets, registers_from_data(msg["registers"], prog, "run"))
            ]
        elif msg["op"] == "close":
            print(json.dumps(reply), flush=True)
            return 0
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
