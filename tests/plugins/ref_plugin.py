#!/usr/bin/env python3
"""An example out-of-process vendor target for `--targets cmd:...`: speaks c3po's JSON-lines protocol and
answers with the reference interpreter, so it passes every vector. A vendor replaces `Interpreter` calls with
its own device. `--crash-on HEXPREFIX` makes it exit on packets starting with those bytes, and `--hang-on`
makes it stop answering: the tests use them to check that the runner reports ERROR and moves on."""

from __future__ import annotations

import argparse
import json
import sys
import time

from c3po_compiler import load_program
from conformance.interpreter import Interpreter
from conformance.model import PacketIn
from conformance.subprocess_driver import result_to_json
from conformance.vectors import control_from_data, registers_from_data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crash-on", default=None)
    ap.add_argument("--hang-on", default=None)
    opts = ap.parse_args()
    prog = interp = None
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg["op"]
        reply: dict[str, object] = {"ok": True}
        if op == "open":
            prog = load_program(msg["spec"]).program
            interp = Interpreter(prog)
        elif op == "install":
            assert prog is not None and interp is not None
            interp.install(control_from_data(msg["control"], prog, "install"))
        elif op == "run":
            assert prog is not None and interp is not None
            packets = [PacketIn(p["port"], bytes.fromhex(p["data"])) for p in msg["packets"]]
            for p in packets:
                if opts.crash_on and p.data.hex().startswith(opts.crash_on):
                    return 3
                if opts.hang_on and p.data.hex().startswith(opts.hang_on):
                    time.sleep(3600)
            results = interp.run(packets, registers_from_data(msg["registers"], prog, "run"))
            reply["results"] = [result_to_json(r) for r in results]
        elif op == "close":
            print(json.dumps(reply), flush=True)
            return 0
        else:
            reply = {"ok": False, "error": f"unknown op {op}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
