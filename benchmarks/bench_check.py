"""How `c3po check` scales: a generated spec with N parser states and N/5 tables, N = 10, 100, 1000.

Prints the median wall time over several runs per size and the time per state, so linear growth shows as a
flat last column. Goal (issue 2): 1,000 states and 200 tables in under 2 s.
Run: python benchmarks/bench_check.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from c3po_compiler import load_program


def generate_spec(states: int, tables: int) -> str:
    """A chain of `states` parser states, each extracting its own header and selecting on a tag field
    (with a few exact, mask and range cases), and `tables` tables keyed on those headers."""
    lines = ["c3po: 1", "program: big", "headers:"]
    for i in range(states):
        lines.append(f"  h{i}: {{fields: {{tag: 16, a: 8, b: 8, c: 32}}}}")
    lines += ["parser:", "  start: s0", "  states:"]
    for i in range(states):
        nxt = f"s{i + 1}" if i + 1 < states else "accept"
        lines.append(f"    s{i}: {{extract: h{i}, select: h{i}.tag, cases: {{{2 * i + 1}: {nxt}, "
                     f"\"0x8000 &&& 0x8000\": accept, \"100 .. 200\": {nxt}}}, default: accept}}")
    lines.append("actions:")
    lines.append("  set_b: {params: {v: 8}, do: [\"h0.b = v\", \"forward(1)\"]}")
    lines.append("tables:")
    for t in range(tables):
        h = t % states
        lines.append(f"  t{t}: {{key: {{h{h}.c: lpm, h{h}.a: exact}}, actions: [set_b, drop], default: drop, "
                     f"size: 1024}}")
    lines.append("control:")
    for t in range(tables):
        lines.append(f"  - {{if: \"valid(h{t % states})\", then: [{{apply: t{t}}}]}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"{'states':>7} {'tables':>7} {'median s':>10} {'us/state':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10, 100, 1000):
            path = Path(tmp) / f"big{n}.yaml"
            path.write_text(generate_spec(n, max(1, n // 5)))
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                load_program(path)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(f"{n:>7} {max(1, n // 5):>7} {med:>10.3f} {med / n * 1e6:>9.0f}")


if __name__ == "__main__":
    main()
