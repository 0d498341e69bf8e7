"""Which target modules implement the control API, and the protocol they follow.

A target's `targets/<target>/control.py` provides:

- `unavailable() -> str | None`: why this machine cannot run it (no root, no BPF, no BMv2), else None;
- `load(prog, record, workdir) -> Dataplane`: start the program on `record.ports` (attach, start a switch),
  install the spec's constant entries and defaults, fill `record.mode` / `record.extra` with what `open` and
  `unload` need later (pin paths, pids, addresses); `workdir` is the record's private directory;
- `open(prog, record) -> Dataplane`: reach a program loaded earlier, from any process;
- `unload(record) -> list[str]`: stop it and remove everything it left (pins, processes, sockets), also after a
  crash half-way through `load`; returns what it removed, for the user.

The nic target runs in-process (`targets.nic.control.NicDataplane`): it has no `load` on interfaces.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from c3po_compiler import ir

from .api import ControlError, Dataplane
from .registry import Record

LOADABLE = ("xdp", "p4")


class TargetControl(Protocol):
    def unavailable(self) -> str | None: ...
    def load(self, prog: ir.Program, record: Record, workdir: Path) -> Dataplane: ...
    def open(self, prog: ir.Program, record: Record) -> Dataplane: ...
    def unload(self, record: Record) -> list[str]: ...


def control_module(target: str) -> TargetControl:
    if target not in LOADABLE:
        hint = "the nic target runs in-process: use targets.nic.control.NicDataplane from Python" \
            if target == "nic" else f"targets that load on interfaces: {', '.join(LOADABLE)}"
        raise ControlError(f"target '{target}' cannot be loaded on interfaces", hint)
    module: ModuleType = importlib.import_module(f"targets.{target}.control")
    return cast(TargetControl, module)
