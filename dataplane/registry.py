"""What is loaded: one directory per program under /run/c3po/loaded/<name>/ (root only, gone at reboot like
the programs themselves), holding `record.json` (target, spec, interfaces, target-specific handles), the
program's IR as built (`program.pickle`, so a later command drives exactly what was loaded even if the spec
changed since) and `lock`, the file lock every mutating command holds.

Names come from the command line: they are validated like spec identifiers (they become bpffs paths and
process names), never used raw.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from c3po_compiler import ir
from c3po_compiler.text import terminal_text

from .api import ControlError

_held: dict[str, int] = {}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def run_dir() -> Path:
    """/run/c3po/loaded, or $C3PO_RUN_DIR/loaded (tests, non-standard systems)."""
    return Path(os.environ.get("C3PO_RUN_DIR", "/run/c3po")) / "loaded"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ControlError(f"'{terminal_text(name)}' is not a valid program name",
                           "names match [a-z][a-z0-9_]{0,31} (lower case, digits, underscore)")
    return name


@dataclass
class Port:
    port: int
    ifname: str
    ifindex: int


@dataclass
class Record:
    name: str
    target: str
    spec: str
    program: str
    ports: list[Port] = field(default_factory=list)
    mode: str = ""
    created: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return run_dir() / self.name

    def save(self) -> None:
        tmp = self.dir / "record.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.dir / "record.json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        ports = [Port(**p) for p in data.pop("ports", [])]
        return cls(ports=ports, **data)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.geteuid():
        raise ControlError(f"{path} is not owned by this user: refusing to use it")


@contextlib.contextmanager
def lock(name: str) -> Iterator[None]:
    """Exclusive lock on a program's state (blocks while another c3po command changes it). The lock file
    outlives crashes; flock is released by the kernel when the holder dies, so a killed command never
    leaves it held."""
    check_name(name)
    if name in _held:  # re-entrant within this process (load holds it while the backend installs entries)
        _held[name] += 1
        try:
            yield
        finally:
            _held[name] -= 1
        return
    d = run_dir()
    _private_dir(d)
    fd = os.open(d / f".{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[name] = 1
        try:
            yield
        finally:
            del _held[name]
    finally:
        os.close(fd)


def create(record: Record, prog: ir.Program) -> None:
    d = record.dir
    if (d / "record.json").exists():
        raise ControlError(f"a program named '{record.name}' is already loaded",
                           f"unload it first (c3po unload {record.name}) or choose another --name")
    if d.exists():  # a load that died before writing its record: nothing in it is live
        shutil.rmtree(d)
    _private_dir(d)
    with open(d / "program.pickle", "wb") as f:
        pickle.dump(prog, f, protocol=pickle.HIGHEST_PROTOCOL)
    record.save()


def get(name: str) -> tuple[Record, ir.Program]:
    d = run_dir() / check_name(name)
    try:
        data = json.loads((d / "record.json").read_text())
    except FileNotFoundError:
        known = names()
        hint = f"loaded: {', '.join(known)}" if known else "nothing is loaded (c3po load SPEC --target T --dev IF)"
        raise ControlError(f"no program named '{name}' is loaded", hint) from None
    st = (d / "program.pickle").stat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ControlError(f"{d / 'program.pickle'} is writable by others: refusing to read it")
    with open(d / "program.pickle", "rb") as f:
        prog = pickle.load(f)  # written by c3po load into a root-only directory
    return Record.from_json(data), prog


def unfinished(name: str) -> Path:
    """The mark a command holding the program's lock leaves in its record while it changes the tables, removed
    when it is done: the next holder that finds it knows the last one died half-way (kill -9, out of memory)
    and repairs what packets read from the tables' records before going on."""
    return run_dir() / check_name(name) / "unfinished"


def names() -> list[str]:
    d = run_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if (p / "record.json").exists())


def remove(name: str) -> None:
    shutil.rmtree(run_dir() / check_name(name), ignore_errors=True)
