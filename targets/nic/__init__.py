"""The NIC offload target: one spec → freestanding C99 (`<program>.h`, `<program>.c`, runtime `c3po_nic.h`).

The generated code needs no libc, heap, recursion or floating point and bounds every loop by a size from the
spec, so it can run on a SmartNIC core or in any host process. `build` also compiles a check object with gcc
when it is installed (warnings are errors) and reports each table's memory footprint.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.features import FEATURES
from c3po_compiler.problems import Problem, error
from c3po_compiler.target_api import BuildError, BuildResult, Target, run_to_outputs

from .emitter import Unsupported
from .render import render_program
from .toolchain import FREESTANDING_FLAGS

__all__ = ["FREESTANDING_FLAGS", "NicTarget"]


class NicTarget(Target):
    name = "nic"
    description = "freestanding C99 for SmartNIC cores (no libc, no heap, bounded loops)"
    supports = frozenset(FEATURES)

    def limits(self, prog: ir.Program) -> list[Problem]:
        try:
            render_program(prog)
        except Unsupported as exc:
            return [error(prog.loc, f"target 'nic' cannot generate this program: {exc}",
                          "simplify this part of the program, or build for another target (docs/targets.md)")]
        return []

    def render(self, prog: ir.Program) -> dict[str, str]:
        return render_program(prog)

    def build(self, prog: ir.Program, outdir: Path) -> BuildResult:
        result = super().build(prog, outdir)
        cc = shutil.which("gcc")
        if cc is None:
            result.notes.append("gcc not found: skipped the check compile and the footprint report")
            return result
        src = outdir / f"{prog.name}.c"
        obj = outdir / f"{prog.name}.o"
        cmd = [cc, *FREESTANDING_FLAGS, "-O2", "-c", str(src), "-o", str(obj)]
        proc = run_to_outputs(cmd, [obj])  # never a truncated object under the real name
        if proc.returncode != 0:
            raise BuildError(f"gcc rejected the generated {src.name}:\n{proc.stderr}")
        result.files["object"] = obj
        result.notes += footprint_notes(prog, outdir, cc)
        total = next((n for n in result.notes if n.startswith("state total: ")), None)
        if total is not None:
            result.footprint = int(total.split()[2].replace(",", ""))
        return result


def footprint_notes(prog: ir.Program, outdir: Path, cc: str) -> list[str]:
    """Exact sizes from the compiler (sizeof), via a tiny host program: the layout is the C compiler's call."""
    lines = [f'printf("%zu\\n", sizeof(((struct {prog.name}_state *)0)->t_{t}));' for t in prog.tables]
    lines.append(f'printf("%zu\\n", sizeof(struct {prog.name}_state));')
    main = f'#include <stdio.h>\n#include "{prog.name}.h"\nint main(void) {{\n' + "\n".join(lines) + "\nreturn 0;\n}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp) / "fp.c"
        c.write_text(main)
        exe = Path(tmp) / "fp"
        proc = subprocess.run([cc, "-std=gnu99", "-I", str(outdir), str(c), "-o", str(exe)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            return ["footprint: could not compile the size probe"]
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=False).stdout.split()
    notes = [f"table {t}: {int(sz):,} bytes ({prog.tables[t].size} entries)" for t, sz in zip(prog.tables, out, strict=False)]
    if out:
        notes.append(f"state total: {int(out[-1]):,} bytes (struct {prog.name}_state)")
    return notes

