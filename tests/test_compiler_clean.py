"""Specs that `check` accepts compile cleanly (issue 12, class 6): gcc with the NIC's -Werror flags, clang for
xdp and p4c-bm2-ss never refuse generated code, and what they would refuse `check` refuses with a position.

One regression test per reproducer: `unsigned >= 0` (gcc -Wtype-limits, even for the shipped select_range
suite spec), an unused `pos` when no state extracts, priorities past 2^31 - 1, clang's 256-bracket limit at the
64-level expression limit, a program named after an xdp helper (`forward` made `c3po_forward` twice).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from c3po_compiler import names
from c3po_compiler.cli import main
from targets.xdp.ctext import HELPER_NAMES, entry_name
from tests.conftest import ROOT, need_bpf, need_p4, need_tool

TARGETS = "xdp,nic,p4"
BRACKET_LIMIT = 256  # clang's default -fbracket-depth


def need_compilers(targets: str = TARGETS) -> None:
    need_tool("gcc", "clang")
    if "p4" in targets.split(","):
        need_p4()


def c3po(*argv: str) -> tuple[int, str]:
    """Runs the CLI in this process (a subprocess per spec would dominate the property test's time)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def build(spec: Path, outdir: Path, targets: str = TARGETS) -> None:
    """check, then build: both must succeed with nothing but the spec's warnings on stderr (no compiler dump)."""
    code, err = c3po("check", str(spec))
    assert code == 0, err
    code, err = c3po("build", str(spec), "--target", targets, "-o", str(outdir))
    others = [line for line in err.splitlines()
              if line.strip() and ": warning: " not in line and not line.lstrip().startswith("hint:")]
    assert code == 0 and not others, err


def bracket_depth(text: str) -> int:
    best = depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


HEADERS = """c3po: 1
program: {name}
headers:
  h: {{fields: {{a: 16, b: 16}}}}
  w: {{fields: {{c: 128}}}}
metadata: {{m: 8, x: 16}}
registers: {{r: {{width: 16, size: 16}}}}
parser:
  start: s
  states:
    s: {{extract: h, select: h.a, cases: {{"1": t}}, default: accept}}
    t: {{extract: w}}
"""


# ---- unsigned comparisons that always hold are folded, never emitted (gcc -Werror=type-limits) ------------

def test_shipped_select_range_builds_under_the_nic_flags(tmp_path: Path) -> None:
    need_compilers()
    build(ROOT / "conformance" / "suite" / "select_range.yaml", tmp_path)
    nic_c = (tmp_path / "nic" / "select_range.c").read_text()
    assert ">= UINT64_C(0x0)" not in nic_c


@pytest.mark.parametrize("cond", [
    "meta.m >= 0", "0 <= meta.m", "meta.m < 0", "meta.m <= 255", "meta.m > 255", "255 >= meta.m",
    "(bit<16>)meta.m <= 255", "(bit<16>)meta.m > 255", "h.a >= 0", "w.c >= 0", "0 > w.c", "(h.a & 15) <= 15",
    "meta.m >= 0 && meta.m <= 255 && h.b < 0xffff",
])
def test_comparisons_decided_by_the_operand_width_compile(tmp_path: Path, cond: str) -> None:
    need_compilers("xdp,nic")
    spec = write(tmp_path, "cmp", HEADERS.format(name="cmp") + f"control:\n  - if: '{cond}'\n    then: [forward(1)]\n"
                 "    else: [drop]\n")
    build(spec, tmp_path / "out", "xdp,nic")


def test_select_ranges_at_the_bounds_emit_no_trivial_half(tmp_path: Path) -> None:
    need_compilers()
    spec = write(tmp_path, "sr", HEADERS.format(name="sr").replace(
        'cases: {"1": t}', 'cases: {"0 .. 5": t, "7 .. 0xffff": accept, "0 .. 0xffff": reject}') + "control: [drop]\n")
    build(spec, tmp_path / "out")
    for path in (tmp_path / "out" / "nic" / "sr.c", tmp_path / "out" / "xdp" / "sr.bpf.c"):
        text = path.read_text()
        assert not re.search(r">= (UINT64_C\()?0x0\b", text), path


# ---- no unused variables --------------------------------------------------------------------------------

def test_a_parser_that_extracts_nothing_builds(tmp_path: Path) -> None:
    need_compilers()
    spec = write(tmp_path, "noextract", """c3po: 1
program: noextract
metadata: {m: 8}
parser:
  start: first
  states:
    first: {default: accept}
control: [forward(1)]
""")
    build(spec, tmp_path / "out")


# ---- priorities fit the int32_t of the generated C and P4Runtime ----------------------------------------

PRIORITY_SPEC = """c3po: 1
program: prio
include: [{eth}]
parser:
  start: ethernet
  states:
    ethernet: {{extract: ethernet}}
tables:
  t:
    key: {{ethernet.ethertype: ternary, ethernet.src: range}}
    actions: [forward, drop]
    default: drop
    entries:
      - {{match: {{ethernet.ethertype: "0x0800 &&& 0xffff"}}, action: forward(4), priority: {prio}}}
      - {{match: {{ethernet.ethertype: "0x0800 &&& 0xff00"}}, action: forward(5), priority: 0}}
control:
  - apply: t
"""


def test_the_largest_priority_builds(tmp_path: Path) -> None:
    need_compilers()
    eth = ROOT / "spec" / "protocols" / "ethernet.yaml"
    build(write(tmp_path, "prio", PRIORITY_SPEC.format(eth=eth, prio=2**31 - 1)), tmp_path / "out")


@pytest.mark.parametrize("prio", [2**31, 2**32])
def test_priorities_past_int32_are_refused_with_a_position(tmp_path: Path, prio: int) -> None:
    eth = ROOT / "spec" / "protocols" / "ethernet.yaml"
    spec = write(tmp_path, "prio", PRIORITY_SPEC.format(eth=eth, prio=prio))
    code, err = c3po("check", str(spec))
    assert code == 1
    assert re.search(rf"prio\.yaml:14:\d+: error: priority {prio} is out of range 0\.\.2147483647", err), err


# ---- expressions at the nesting limit stay under clang's bracket limit ----------------------------------

def nest(form: str, levels: int) -> str:
    """`form` applied to h.a until the expression is `levels` deep (each application adds form's levels)."""
    expr = "h.a"
    for _ in range(levels):
        expr = form.replace("E", expr)
    return expr


# (form, applications): each at the 64-level limit, the forms with the most C brackets per level
NEST_FORMS = [
    ("-E", 64),
    ("~E", 64),
    ("(E + h.b)", 63),
    ("(E)[15:0]", 64),
    ("(bit<16>)(bit<128>)(E)", 21),
    ("((bit<128>)(E) + w.c)[15:0]", 21),
    ("r[(bit<128>)(E)]", 21),
    ("(bit<16>)r[E]", 32),
    ("(bit<16>)(~(bit<128>)(E))", 12),
]


@pytest.mark.parametrize(("form", "reps"), NEST_FORMS)
def test_expressions_at_the_nesting_limit_compile(tmp_path: Path, form: str, reps: int) -> None:
    need_compilers("xdp,nic")
    expr = nest(form, reps)
    ifs = "".join(f"{'    ' * i}  - if: 'h.b == {i}'\n{'    ' * i}    then:\n" for i in range(30))
    spec = write(tmp_path, "deep", HEADERS.format(name="deep") + "control:\n" + ifs
                 + f"{'    ' * 30}  - \"meta.x = {expr}\"\n  - forward(1)\n")
    code, err = c3po("check", str(spec))
    assert code == 0, err
    # one more application is past the limit
    deeper = write(tmp_path, "deeper", spec.read_text().replace(expr, form.replace("E", expr)))
    code, err = c3po("check", str(deeper))
    assert code == 1 and "nests deeper than 64 levels" in err, err
    build(spec, tmp_path / "out", "xdp,nic")
    for path in (tmp_path / "out" / "xdp" / "deep.bpf.c", tmp_path / "out" / "nic" / "deep.c"):
        assert bracket_depth(path.read_text()) < BRACKET_LIMIT * 3 // 4, path


# ---- generated identifiers never collide with the program's name -----------------------------------------

def xdp_identifiers() -> set[str]:
    """Every `c3po_*` identifier of the xdp runtime, templates and generator (without the `c3po_`)."""
    xdp = ROOT / "targets" / "xdp"
    found: set[str] = set()
    for path in [*xdp.glob("*.py"), *(xdp / "templates").glob("*"), *(xdp / "runtime").glob("*")]:
        found |= set(re.findall(r"\bc3po_([a-z0-9_]+)\b", path.read_text(encoding="utf-8")))
    return found


def test_every_xdp_helper_name_is_known_to_the_entry_naming() -> None:
    """The entry is `c3po_<program>` unless that names one of the file's helpers: the list must be complete,
    and no helper may start like the fallback `c3po_entry_`."""
    helpers = {n for n in xdp_identifiers() if names.ident_problem(n) is None and not n.endswith("_")}
    assert not helpers - HELPER_NAMES, f"add to targets.xdp.ctext.HELPER_NAMES: {sorted(helpers - HELPER_NAMES)}"
    assert not any(n.startswith("entry_") and n != "entry_" for n in xdp_identifiers())
    assert entry_name("forward") == "c3po_entry_forward" and entry_name("router") == "c3po_router"


@pytest.mark.parametrize("program", ["forward", "shl", "zero", "state_rec"])
def test_programs_named_after_xdp_helpers_build(tmp_path: Path, program: str) -> None:
    need_compilers()
    spec = write(tmp_path, program, HEADERS.format(name=program) + "control: [forward(1)]\n")
    build(spec, tmp_path / "out")
    assert f"int c3po_entry_{program}(struct xdp_md" in (tmp_path / "out" / "xdp" / f"{program}.bpf.c").read_text()


def test_a_program_named_forward_loads_and_runs(tmp_path: Path) -> None:
    need_bpf()
    from c3po_compiler import load_program
    from conformance.model import PacketIn
    from targets.xdp.driver import XdpDriver

    spec = write(tmp_path, "forward", HEADERS.format(name="forward") + "control: [forward(3)]\n")
    prog = load_program(str(spec)).program
    with XdpDriver() as drv:
        drv.open(prog, tmp_path / "xdp")
        [res] = drv.run([PacketIn(port=0, data=bytes(range(4)) * 8)], {})
    assert (str(res.verdict), res.port) == ("forward", 3)
