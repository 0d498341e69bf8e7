"""Table writes per second through P4Runtime: c3po's XDP server (`c3po p4runtime serve`) against BMv2's own
(`simple_switch_grpc` running the P4 target of the same spec), batches of 1 and of 1,000 updates.

    .venv/bin/python benchmarks/bench_p4runtime.py [--updates 2000] [--repeat 5] [--targets xdp,bmv2]

The router example is loaded with no interface (tables only), the XDP one by `c3po load`, BMv2 by the P4
target's `load`; the XDP server runs as its own process (`c3po p4runtime serve NAME --address unix:...`), as a
user runs it, so client and server do not share an interpreter. The client is a bare gRPC stub with messages
built beforehand (what the controller pays for building them is not measured): each round INSERTs `--updates`
IPv4 /32 routes into `routes_v4` (LPM) and DELETEs them again, in Write requests of 1 or 1,000 updates; writes/s
counts both. Reported: the median over `--repeat` rounds. Needs root, clang and BPF; BMv2 and p4c for bmv2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from p4.v1 import p4runtime_pb2 as pb  # noqa: E402
from p4.v1 import p4runtime_pb2_grpc  # noqa: E402

from c3po_compiler import load_program  # noqa: E402
from c3po_compiler.cli import main  # noqa: E402
from dataplane import registry  # noqa: E402
from targets.p4.p4info import P4Ids, p4rt_id  # noqa: E402

SPEC = ROOT / "spec" / "examples" / "router.yaml"
ELECTION = (0, 7)


@contextlib.contextmanager
def xdp_server(run: Path) -> Iterator[str]:
    from targets.xdp import control

    name = "bench_p4rt"
    prog = load_program(SPEC).program
    record = registry.Record(name=name, target="xdp", spec=str(SPEC), program=prog.name)
    registry.create(record, prog)
    control.load(prog, record, record.dir).close()  # attached nowhere: only its tables are written
    address = f"unix:{run}/p4rt.sock"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "c3po"), "p4runtime", "serve", name,
                             "--address", address], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "serving ..."
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        main(["unload", name, "--force"])


@contextlib.contextmanager
def bmv2_server() -> Iterator[str]:
    from targets.p4 import control

    prog = load_program(SPEC).program
    record = registry.Record(name="bench_p4rt_bmv2", target="p4", spec=str(SPEC), program=prog.name)
    registry.create(record, prog)
    try:
        control.load(prog, record, record.dir).close()
        yield str(record.extra["grpc"])
    finally:
        control.unload(record)
        registry.remove(record.name)


def updates(kind: int, n: int) -> list[Any]:
    table, action = p4rt_id(P4Ids.TABLE, "routes_v4"), p4rt_id(P4Ids.ACTION, "set_nexthop")
    out = []
    for i in range(n):
        te = pb.TableEntry(table_id=table)
        fm = te.match.add(field_id=1)
        fm.lpm.value, fm.lpm.prefix_len = bytes([10, 100 + (i >> 16), i >> 8 & 255, i & 255]), 32
        if kind == pb.Update.INSERT:
            te.action.action.action_id = action
            te.action.action.params.add(param_id=1, value=bytes([1 + i % 64]))
        out.append(pb.Update(type=kind, entity=pb.Entity(table_entry=te)))
    return out


def requests(ups: list[Any], batch: int) -> list[Any]:
    out = []
    for i in range(0, len(ups), batch):
        req = pb.WriteRequest(device_id=0)
        req.election_id.high, req.election_id.low = ELECTION
        req.updates.extend(ups[i:i + batch])
        out.append(req)
    return out


def measure(address: str, n: int, repeat: int) -> dict[int, float]:
    channel = grpc.insecure_channel(address)
    stub = p4runtime_pb2_grpc.P4RuntimeStub(channel)
    stub.Capabilities(pb.CapabilitiesRequest(), wait_for_ready=True, timeout=60)
    import queue

    q: queue.Queue[Any] = queue.Queue()
    arb = pb.StreamMessageRequest()
    arb.arbitration.device_id = 0
    arb.arbitration.election_id.high, arb.arbitration.election_id.low = ELECTION
    q.put(arb)
    stream = stub.StreamChannel(iter(q.get, None))
    if next(stream).arbitration.status.code != 0:
        raise SystemExit(f"{address}: not primary")
    ins, dels = updates(pb.Update.INSERT, n), updates(pb.Update.DELETE, n)
    out: dict[int, float] = {}
    try:
        for batch in (1, 1000):
            plan = requests(ins, batch) + requests(dels, batch)
            rates = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for req in plan:
                    stub.Write(req, timeout=120)
                rates.append(2 * n / (time.perf_counter() - t0))
            out[batch] = statistics.median(rates)
    finally:
        q.put(None)
        channel.close()
    return out


def main_bench() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--targets", default="xdp,bmv2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="c3po-bench-p4rt-") as tmp:
        os.environ["C3PO_RUN_DIR"] = str(Path(tmp) / "run")
        results: dict[str, dict[int, float]] = {}
        for target in args.targets.split(","):
            server = xdp_server(Path(tmp)) if target == "xdp" else bmv2_server()
            with server as address:
                results[target] = measure(address, args.updates, args.repeat)
    print(f"P4Runtime table writes/s (router routes_v4 LPM, {args.updates} inserts + {args.updates} deletes "
          f"per round, median of {args.repeat}):")
    print(f"{'target':8} {'batch of 1':>12} {'batch of 1000':>14}")
    for target, r in results.items():
        print(f"{target:8} {r[1]:12,.0f} {r[1000]:14,.0f}")


if __name__ == "__main__":
    main_bench()
