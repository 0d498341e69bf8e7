"""The XDP target: one spec becomes a libbpf-style eBPF C program (`SEC("xdp")`, BTF-defined maps) that the
kernel verifier accepts, compiled with clang when it is installed.

Capabilities are listed in `XdpTarget.supports`; anything else is refused at build time (see
docs/targets/xdp.md for why each missing feature is missing).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2

from c3po_compiler import ir
from c3po_compiler.features import program_features
from c3po_compiler.problems import Problem, error
from c3po_compiler.target_api import BuildError, BuildResult, Target, run_to_outputs

from . import layout as L
from .cexpr import Unsupported
from .emitter import LINEAR_TABLE_LIMIT, Emitter
from .readme import readme_view
from .view import build_view

__all__ = ["RUNTIME_HEADER", "SUPPORTS", "XdpTarget", "compile_object"]

HERE = Path(__file__).resolve().parent
RUNTIME_HEADER = HERE / "runtime" / "c3po_xdp.h"

SUPPORTS = frozenset({
    "unaligned_fields", "wide_fields", "varlen", "header_stack", "stack_varlen", "lookahead", "select_mask", "select_range",
    "verify_checksum", "match_exact", "match_lpm", "match_ternary", "match_range", "const_entries",
    "table_counters", "counters", "registers", "hash", "update_checksum_ipv4", "update_checksum_l4", "reflect",
    "forward", "set_valid", "set_invalid", "optional_groups", "tlv", "parser_do",
})

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(HERE / "templates")),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def clang_command(src: Path, obj: Path, observe: bool = False) -> list[str]:
    triple = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("gcc") else "x86_64-linux-gnu"
    return ["clang", "-O2", "-g", "-Wall", "-Wno-unused-label", "-Wno-unused-variable", "-target", "bpf",
            *(["-DC3PO_OBSERVE"] if observe else []),
            f"-I/usr/include/{triple}", f"-I{src.parent}", "-c", str(src), "-o", str(obj)]


def compile_object(src: Path, obj: Path, observe: bool = False) -> None:
    """clang -O2 -g -target bpf; a failure raises BuildError carrying clang's own message.

    `observe` builds the object the conformance driver runs: the same source with C3PO_OBSERVE defined, which
    adds only the stores that tell an observer what BPF_PROG_TEST_RUN cannot (the egress port of a redirect,
    which counters and registers a packet touched) into a per-CPU state record. A production object has none
    of them: no state record lookup, no store per packet beyond the program's own."""
    proc = run_to_outputs(clang_command(src, obj, observe), [obj])  # never a truncated object under the real name
    if proc.returncode != 0:
        if "BPF stack limit of 512 bytes is exceeded" in proc.stderr:
            first = next(line for line in proc.stderr.splitlines() if "stack limit" in line)
            raise BuildError(f"{src.name}: the program needs more than the kernel's 512-byte BPF stack (too many "
                             "header pointers, metadata or table keys live at once in one program); clang: "
                             f"{first.strip()}")
        raise BuildError(f"clang failed on {src}:\n{proc.stderr.strip()}")


class XdpTarget(Target):
    name = "xdp"
    description = "Linux XDP: eBPF C (libbpf style) for the in-kernel verifier, run natively or via BPF_PROG_TEST_RUN"
    supports = SUPPORTS

    def __init__(self, observe: bool = False) -> None:
        self.observe = observe  # the conformance driver's build (compile_object)

    def limits(self, prog: ir.Program) -> list[Problem]:
        problems: list[Problem] = []
        for t in sorted(prog.tables.values(), key=lambda t: t.name):
            lay = L.table_layout(prog, t)
            if lay.kind == "linear" and t.size > LINEAR_TABLE_LIMIT:
                problems.append(error(t.loc, f"table '{t.name}' has size {t.size}: the xdp target searches "
                                      f"ternary/range tables linearly and allows at most {LINEAR_TABLE_LIMIT} entries",
                                      "reduce 'size' or split the table"))
            for k in t.keys:
                if k.kind == "range" and k.width > 64:
                    problems.append(error(k.loc, f"range key '{k.text}' is wider than 64 bits (xdp target limit)",
                                          "use a ternary or lpm key for this field, or build for another target"))
        problems += deparse_order_problems(prog)
        if not problems and not program_features(prog) - self.supports:
            try:
                em = Emitter(prog)
                em.parser_nodes()
                em.control()
                build_view(prog)  # the tail-call split and its kernel limits (tailcall.py)
            except Unsupported as exc:
                problems.append(error(getattr(exc, "loc", None) or prog.loc,
                                      f"target 'xdp' cannot build this program: {exc}",
                                      "simplify this part of the program, or build for another target (docs/targets.md)"))
        return problems

    def render(self, prog: ir.Program) -> dict[str, str]:
        view = build_view(prog)
        out = {
            f"{prog.name}.bpf.c": _ENV.get_template("program.bpf.c.j2").render(**view),
            "c3po_xdp.h": RUNTIME_HEADER.read_text(encoding="utf-8"),
            "README.md": _ENV.get_template("README.md.j2").render(**readme_view(prog, view)),
        }
        # The P4 target's P4Info (same names and ids as p4c gives it): what `c3po p4runtime serve` speaks, so
        # P4Runtime controllers drive this object like BMv2 (docs/p4runtime.md). Needs the p4runtime package.
        try:
            from targets.p4.p4info import p4info_text
        except ImportError:
            return out
        out[f"{prog.name}.p4info.txtpb"] = p4info_text(prog)
        return out

    def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
        problems = self.refusals(prog)
        if problems:
            raise BuildError("\n".join(p.format() for p in problems))
        result = super().build(prog, outdir)
        src = result.files[f"{prog.name}.bpf.c"]
        if shutil.which("clang") is None:
            result.notes.append("clang not found: wrote the C source only (apt-get install clang libbpf-dev)")
            return result
        obj = outdir / f"{prog.name}.bpf.o"
        compile_object(src, obj, self.observe)
        result.files["object"] = obj
        result.files["source"] = result.files.pop(f"{prog.name}.bpf.c")
        result.footprint, notes = map_footprint(obj)
        result.notes += notes
        return result


# Map types the kernel allocates once per possible CPU (include/uapi/linux/bpf.h).
PERCPU_MAP_TYPES = {5: "percpu hash", 6: "percpu array", 10: "lru percpu hash"}
# Arrays store no keys, and the kernel rounds each element up to 8 bytes (a trie's u32 slots come in pairs).
ARRAY_MAP_TYPES = {2: "array", 6: "percpu array"}


def map_footprint(obj: Path) -> tuple[int | None, list[str]]:
    """The maps' memory as the object declares them: (key + value) x max_entries each (arrays: the value rounded up
    to 8 bytes, no key), x the possible CPUs of this machine for per-CPU maps (the kernel allocates a value per
    CPU); hash and LPM maps at their maximum (their entries are allocated as they are added). Read with libbpf
    from the ELF, nothing loaded."""
    import ctypes

    from .libbpf import lib

    try:
        lb = lib()
    except OSError:
        return None, ["footprint: libbpf not found, maps not measured (the memory budget is not checked)"]
    vp = ctypes.c_void_p
    for fn, res in (("bpf_map__name", ctypes.c_char_p), ("bpf_map__type", ctypes.c_int),
                    ("bpf_map__key_size", ctypes.c_uint32), ("bpf_map__value_size", ctypes.c_uint32),
                    ("bpf_map__max_entries", ctypes.c_uint32)):
        getattr(lb, fn).argtypes = [vp]
        getattr(lb, fn).restype = res
    handle = lb.bpf_object__open_file(str(obj).encode(), None)
    if not handle or lb.libbpf_get_error(handle):
        return None, [f"footprint: libbpf cannot open {obj.name}, maps not measured (the memory budget is not checked)"]
    cpus = max(1, lb.libbpf_num_possible_cpus())
    notes: list[str] = []
    total = 0
    try:
        m = lb.bpf_object__next_map(handle, None)
        while m:
            name = lb.bpf_map__name(m).decode()
            kind, entries = lb.bpf_map__type(m), lb.bpf_map__max_entries(m)
            key, value = lb.bpf_map__key_size(m), lb.bpf_map__value_size(m)
            array = kind in ARRAY_MAP_TYPES
            elem = -(-value // 8) * 8 if array else key + value
            size = elem * entries * (cpus if kind in PERCPU_MAP_TYPES else 1)
            # .rodata: the program's constants, not state; .data.<x>: a table's copy in a global (td_, th_, tb_);
            # "<object>.bss": the tries' copies (c3po_tries)
            if not name.startswith(".") or name.startswith(".data."):
                per_cpu = f" x {cpus} CPUs" if kind in PERCPU_MAP_TYPES else ""
                shape = f"{elem} bytes" if array else f"({key} + {value}) bytes"
                notes.append(f"map {name}: {size:,} bytes ({entries} entries x {shape}{per_cpu})")
            total += size
            m = lb.bpf_object__next_map(handle, m)
    finally:
        lb.bpf_object__close(handle)
    notes.append(f"state total: {total:,} bytes (maps; per-CPU maps counted for the {cpus} possible CPUs of this "
                 "machine)")
    return total, notes


def deparse_order_problems(prog: ir.Program) -> list[Problem]:
    """This target edits frames in place, so every parsed header must be deparsed, in the order it was parsed."""
    order = {n: i for i, n in enumerate(prog.deparse)}
    problems = []
    for st in sorted(prog.parser.states.values(), key=lambda s: s.name):
        if st.extract and prog.instances[st.extract].tlv_parent is None and st.extract not in order:
            problems.append(error(st.loc, f"'{st.extract}' is parsed but not deparsed: the xdp target edits frames "
                                  "in place and cannot drop headers", f"add '{st.extract}' to 'deparse'"))
    g = prog.parser.graph
    for a, b in sorted(g.edges()):
        ea, eb = prog.parser.states.get(a), prog.parser.states.get(b)
        if (ea and eb and ea.extract and eb.extract and ea.extract != eb.extract
                and order.get(ea.extract, 0) > order.get(eb.extract, 0)):
            problems.append(error(eb.loc, f"deparse order puts '{eb.extract}' before '{ea.extract}', which "
                                  "the parser reads after it: the xdp target cannot reorder headers",
                                  f"list '{ea.extract}' before '{eb.extract}' in 'deparse'"))
    return problems
