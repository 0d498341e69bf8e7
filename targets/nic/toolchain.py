"""Compiling generated programs for the host: the ctypes shared object, the sanitizer harness, check objects.

Kept apart from the driver so the tests and the benchmark build exactly what the driver runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.target_api import run_to_outputs, write_atomic

from .emitter import program_view
from .render import _ENV, HERE, render_program

FREESTANDING_FLAGS = ["-std=c99", "-ffreestanding", "-nostdlib", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
HARNESS_MAIN = HERE / "runtime" / "harness_main.c"
LIBFUZZER_MAIN = HERE / "runtime" / "libfuzzer_main.c"
# The driver's builds log the counter/register elements each packet writes (C3PO_TOUCH in c3po_nic.h), so it
# reads back only those; the freestanding build and the fuzzer leave the hook empty.
TOUCH_LOG = "-DC3PO_TOUCH_LOG"


class ToolchainError(Exception):
    """A compiler step failed; the message carries the compiler's output."""


def write_sources(prog: ir.Program, outdir: Path, with_shim: bool = True) -> dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for rel, text in render_program(prog).items():
        path = outdir / rel
        write_atomic(path, text)
        files[rel] = path
    if with_shim:
        shim = outdir / f"{prog.name}_shim.c"
        write_atomic(shim, _ENV.get_template("host_shim.c.j2").render(v=program_view(prog)))
        files["shim"] = shim
    return files


def compiler(preferred: str = "gcc") -> str:
    for cc in (preferred, "gcc", "clang", "cc"):
        path = shutil.which(cc)
        if path:
            return path
    raise ToolchainError("no C compiler found (apt-get install gcc)")


def run_cc(cmd: list[str]) -> None:
    """Run a compile; its output (`-o FILE`) goes through `run_to_outputs`, so a failed or interrupted compile
    leaves no truncated shared object or harness under the name the driver loads or executes."""
    outputs = [cmd[cmd.index("-o") + 1]] if "-o" in cmd[:-1] else []
    proc = run_to_outputs(cmd, outputs)
    if proc.returncode != 0:
        raise ToolchainError(f"{' '.join(cmd)}\n{proc.stderr}")


def build_shared(prog: ir.Program, outdir: Path, cc: str = "gcc") -> Path:
    """The program plus its shim as one shared object for ctypes (-O2)."""
    files = write_sources(prog, outdir)
    so = outdir / f"lib{prog.name}_nic.so"
    run_cc([compiler(cc), "-std=gnu99", "-O2", "-shared", "-fPIC", TOUCH_LOG, "-I", str(outdir),
            str(files[f"{prog.name}.c"]),
            str(files["shim"]), "-o", str(so)])
    return so


def build_harness(prog: ir.Program, outdir: Path, cc: str = "gcc", write: bool = True) -> Path:
    """The standalone sanitizer harness (ASan + UBSan, aborting on the first finding). `write=False` compiles
    the sources already in `outdir` (a test plants a bug in them to prove the harness reports it)."""
    if write:
        write_sources(prog, outdir)
    exe = outdir / f"{prog.name}_harness"
    run_cc([compiler(cc), "-std=gnu99", "-O1", *SANITIZE_FLAGS, TOUCH_LOG, "-I", str(outdir),
            str(outdir / f"{prog.name}.c"),
            str(outdir / f"{prog.name}_shim.c"), str(HARNESS_MAIN), "-o", str(exe)])
    return exe


def check_freestanding(prog: ir.Program, outdir: Path, cc: str) -> Path:
    """Compile with the freestanding flags and link -nostdlib into a shared object with no undefined symbol."""
    files = write_sources(prog, outdir, with_shim=False)
    so = outdir / f"{prog.name}.{Path(cc).name}.so"
    run_cc([compiler(cc), *FREESTANDING_FLAGS, "-O2", "-shared", "-fPIC", "-Wl,-z,defs",
            str(files[f"{prog.name}.c"]), "-o", str(so)])
    return so


def build_libfuzzer(prog: ir.Program, outdir: Path) -> Path:
    """A coverage-guided libFuzzer binary for the program (clang only: -fsanitize=fuzzer)."""
    write_sources(prog, outdir)
    exe = outdir / f"fuzz_{prog.name}"
    run_cc([compiler("clang"), "-std=gnu99", "-O1", "-g", "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=all", "-I", str(outdir), str(outdir / f"{prog.name}.c"),
            str(outdir / f"{prog.name}_shim.c"), str(LIBFUZZER_MAIN), "-o", str(exe)])
    return exe


DIFFERENTIAL_MAIN = HERE / "runtime" / "differential_main.c"


def build_differential(base: Path, copies: dict[str, list[Path]], renames: list[str], exe: Path,
                       cc: str = "clang") -> Path:
    """The differential libFuzzer binary of mutation hunting: two copies of a program (each its program file
    and host shim, `copies` maps a copy's prefix, "o" or "m", to those sources) against each other. Each copy's
    global symbols get the prefix `c3po_<copy>_` through -D renames of `renames` (the globals its objects
    define, as `nm` lists them: C identifiers only), so both link into one binary with no clash; headers come
    from `base`. A copy's object is cached next to its source, keyed by nothing: a caller rebuilding a copy
    removes its old object (conformance/mutate_hunt.py keeps the original's and rebuilds the mutant's)."""
    clang = compiler(cc)
    objs: list[Path] = []
    for prefix, sources in copies.items():
        defines = [f"-D{s}=c3po_{prefix}_{s}" for s in renames]
        for src in sources:
            obj = src.with_name(f"{src.stem}.{prefix}.fuzz.o")
            if not obj.exists():
                run_cc([clang, "-std=gnu99", "-O1", "-fsanitize=fuzzer-no-link", TOUCH_LOG, *defines, "-I",
                        str(base), "-c", str(src), "-o", str(obj)])
            objs.append(obj)
    run_cc([clang, "-O1", "-fsanitize=fuzzer", *[str(o) for o in objs], str(DIFFERENTIAL_MAIN), "-o", str(exe)])
    return exe
