"""A content-addressed cache of compiler runs, opt-in through the environment (C3PO_CACHE_DIR), as ccache is.

Why: the same generated source is compiled again and again where nothing changed — `c3po conformance` after
`c3po build`, a vendor's campaign re-running a program, and above all the test suite, where the conformance,
P4Runtime, semantics and operate tests each compile the same programs (p4c takes up to 13 s for one example).
A hit copies the outputs of an earlier run instead.

The key is everything that decides the outputs and that c3po controls or can see cheaply: the tool binary
(resolved path, size and modification time, so an upgraded or a different clang is another key), the command
line with each input file and output named by its position rather than its path (a build in another directory
hits), and the bytes of every input file: the command's own file arguments and, transitively, the files their
`#include "..."` lines name. What it does not cover: system headers found through the compiler's default or `/usr` include
paths (libbpf's, the kernel's UAPI); after upgrading those, delete the directory. Debug information may name
the directory of the build that filled the entry; no c3po tool reads it.

Only successful runs are kept. Entries are written under a temporary name and renamed into place, so parallel
builds (pytest-xdist's workers) never read half an entry; the directory is never pruned by c3po (a test run uses
its own and removes it)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

ENV = "C3PO_CACHE_DIR"
VERSION = b"c3po-compile-cache 1"


def cache_dir() -> Path | None:
    where = os.environ.get(ENV)
    return Path(where) if where else None


def _tool_identity(tool: str) -> str:
    path = shutil.which(tool) or tool
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return f"{tool}\0missing"
    return f"{real}\0{st.st_size}\0{st.st_mtime_ns}"


INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)
MAX_INCLUDES = 256


def _include_dirs(cmd: Sequence[str]) -> list[str]:
    dirs: list[str] = []
    for i, a in enumerate(map(str, cmd)):
        if a == "-I" and i + 1 < len(cmd):
            dirs.append(str(cmd[i + 1]))
        elif a.startswith("-I") and len(a) > 2:
            dirs.append(a[2:])
    return dirs


def _with_includes(files: list[str], dirs: list[str]) -> list[str]:
    """`files` and, for C sources and headers, the files their `#include "..."` lines name, found as the
    compiler finds them (the including file's directory, then the -I directories), transitively. Angle-bracket
    includes are system headers, outside the key (the module's doc)."""
    out = list(files)
    seen = set(out)
    i = 0
    while i < len(out) and len(out) < MAX_INCLUDES:
        f = out[i]
        i += 1
        if not f.endswith((".c", ".h")):
            continue
        try:
            text = Path(f).read_bytes()
        except OSError:
            continue
        for m in INCLUDE.finditer(text):
            rel = m.group(1).decode(errors="replace")
            for d in [str(Path(f).parent), *dirs]:
                cand = os.path.normpath(os.path.join(d, rel))
                if os.path.isfile(cand):
                    if cand not in seen:
                        seen.add(cand)
                        out.append(cand)
                    break
    return out


def key(cmd: Sequence[str], outputs: Sequence[Path | str]) -> str | None:
    """The entry's name, or None when an input cannot be read (then the run is not cached)."""
    outs = [str(p) for p in outputs]
    args = list(dict.fromkeys(str(a) for a in cmd[1:] if str(a) not in outs and os.path.isfile(a)))
    files = _with_includes(args, _include_dirs(cmd))
    # Paths become placeholders, longest first so a file's path is replaced before its directory's.
    names = {p: f"<out{i}>" for i, p in enumerate(outs)}
    names.update({p: f"<in{i}>" for i, p in enumerate(files)})
    for i, d in enumerate(dict.fromkeys(str(Path(p).parent) for p in [*files, *outs])):
        names.setdefault(d, f"<dir{i}>")
    order = sorted(names, key=len, reverse=True)
    h = hashlib.sha256(VERSION)
    h.update(_tool_identity(str(cmd[0])).encode())
    for arg in cmd[1:]:
        a = str(arg)
        for p in order:
            a = a.replace(p, names[p])
        h.update(b"\0arg\0" + a.encode())
    for p in files:
        try:
            data = Path(p).read_bytes()
        except OSError:
            return None
        h.update(b"\0file\0" + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def lookup(where: Path, name: str, cmd: Sequence[str], outputs: Sequence[Path | str]
           ) -> subprocess.CompletedProcess[str] | None:
    """Copy a hit's outputs into place (each whole or not at all); None on a miss."""
    from .target_api import atomic_output

    entry = where / name[:2] / name
    try:
        meta = json.loads((entry / "run.json").read_text(encoding="utf-8"))
        for i, out in enumerate(outputs):
            with atomic_output(out) as tmp:
                shutil.copy(entry / f"out{i}", tmp)  # the mode too: a harness stays executable
    except (OSError, ValueError):
        return None
    return subprocess.CompletedProcess(list(cmd), 0, meta["stdout"], meta["stderr"])


def store(where: Path, name: str, proc: subprocess.CompletedProcess[str], outputs: Sequence[Path | str]) -> None:
    """Keep a successful run; a failure to write (a full disk, a race lost to another process) only costs the
    next run a compile."""
    final = where / name[:2] / name
    if final.exists():
        return
    with contextlib.suppress(OSError):
        final.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=f".{name[:8]}.", dir=final.parent))
        try:
            for i, out in enumerate(outputs):
                shutil.copy(out, part / f"out{i}")
            (part / "run.json").write_text(json.dumps({"stdout": proc.stdout, "stderr": proc.stderr}),
                                           encoding="utf-8")
            os.rename(part, final)  # fails if another process stored it first: theirs is the same
        finally:
            shutil.rmtree(part, ignore_errors=True)
