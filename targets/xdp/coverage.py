"""Coverage of the code the xdp target generated, per copy: which of its ways out a run of vectors took.

The xdp target copies the control once per parse path and splits it per branch, so one spec statement becomes
many copies, each ending in its own `return`. Coverage counted on the spec says a statement ran; it cannot say
which copies did, and a copy no vector reaches is code no vector tests (issue 16). So every `return` of a verdict
in the program becomes `return C3PO_RET(verdict);`: in the conformance driver's build (C3PO_OBSERVE) the macro
sets the bit of that return in a global bitmap, numbered by clang's __COUNTER__ in source order; in a production
build it is the verdict alone. Returns of XDP_ABORTED are left out: they end paths no packet takes by construction
(a failed lookup of a one-element array, a branch the emitter proved dead).

The driver reads the bitmap once after a run (`XdpDriver.coverage`), and `points` names each bit by its line, the
parse path whose copy holds it and the spec line nearest above, from the generated source itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COVER_WORDS = 64  # bits for 4,096 returns; a program with more reports its coverage as unavailable
COVER_MAP = ".data.c3po_cover"  # the bitmap's global, as libbpf names its map
_RETURN = re.compile(r"^(\s*)return (?!XDP_ABORTED\b)(.+?);(.*)$")
_COVERED = "return C3PO_RET("
_PATH = re.compile(r"/\* the parse path to \S+ ends here: ([^*]+?) \*/")
_ORIGIN = re.compile(r"([\w./-]+\.ya?ml:\d+)")


def cover_returns(lines: list[str]) -> list[str]:
    """The lines with each verdict return counted (see the module docstring)."""
    return [_RETURN.sub(r"\1return C3PO_RET(\2);\3", line) for line in lines]


@dataclass(frozen=True)
class Point:
    line: int  # in the generated .bpf.c, from 1
    code: str  # the return statement
    path: str  # the parse path whose copy of the control holds it ('' outside the per-path copies)
    origin: str  # the spec line of the nearest origin comment above it

    def label(self, source: str) -> str:
        where = f" on the parse path {self.path}" if self.path else ""
        near = f", after {self.origin}" if self.origin else ""
        return f"{source}:{self.line}: {self.code}{where}{near}"


def points(source: str) -> list[Point]:
    """The counted returns of a generated program, in the order __COUNTER__ numbers them."""
    out: list[Point] = []
    path = origin = ""
    for n, line in enumerate(source.splitlines(), 1):
        m = _PATH.search(line)
        if m:
            path = m.group(1)
        elif line.startswith("SEC(") or line.startswith("perr_"):
            path = ""
        o = _ORIGIN.search(line)
        if o:
            origin = o.group(1)
        if _COVERED in line:
            out.append(Point(n, line.strip().split(";")[0] + ";", path, origin))
    return out


def summary(pts: list[Point], words: list[int], source: str, show: int = 40) -> dict[str, object]:
    """What the coverage report shows: counts and the returns never taken (at most `show` of them named)."""
    if len(pts) > 64 * COVER_WORDS:
        return {"what": "generated returns (per copy)", "total": len(pts), "reached": None,
                "note": f"{len(pts)} returns, more than the {64 * COVER_WORDS} the bitmap counts"}
    hit = [bool(words[i >> 6] >> (i & 63) & 1) for i in range(len(pts))]
    missed = [p.label(source) for p, h in zip(pts, hit, strict=True) if not h]
    return {"what": "generated returns (per copy)", "total": len(pts), "reached": sum(hit),
            "unreached": missed[:show], "unreached_more": max(0, len(missed) - show),
            "counted_lines": [p.line for p in pts],
            "unreached_lines": [p.line for p, h in zip(pts, hit, strict=True) if not h]}
