"""The Driver interface every target's runner implements, and the registry that finds them.

Fixed phases, as in p4c's STF runners: `open` (build or load artifacts for a program), `install` (a control
state; vectors sharing one are grouped so tables are installed once), `run` (a vector's packets from a fresh
register/counter state), `close` (nothing left loaded, also after a failure).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from types import TracebackType
from typing import Any

from c3po_compiler import ir

from .model import ControlState, PacketIn, Registers, Result

BUILTIN_DRIVERS = {
    "ref": "conformance.ref_driver:RefDriver",
    "xdp": "targets.xdp.driver:XdpDriver",
    "nic": "targets.nic.driver:NicDriver",
    "p4": "targets.p4.driver:P4Driver",
}


class DriverUnavailable(Exception):
    """The target cannot run here (a tool is missing, no privileges): the message says what to install."""


class Driver(ABC):
    name: str = ""
    # Feature names (c3po_compiler.features.FEATURES) this driver's target supports; vectors of programs
    # needing others are N/A on it.
    supports: frozenset[str] = frozenset()
    # The target's documented deviations from the reference (an expected-failures YAML file shipped with the
    # driver): each rule names the upstream reason, so a deviation is an XFAIL, never a silent skip.
    known_deviations: Path | None = None

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this driver cannot run on this machine (with install hints), or None when it can."""
        return None

    @abstractmethod
    def open(self, prog: ir.Program, workdir: Path) -> None:
        """Build/load the program. Raise DriverUnavailable or an exception with a clear message."""

    @abstractmethod
    def install(self, control: ControlState) -> None:
        """Replace all table entries and defaults with `control`."""

    @abstractmethod
    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        """Reset counters to zero and registers to `registers` (others 0), then run the packets in order."""

    def run_batch(self, batch: list[tuple[list[PacketIn], Registers]]) -> list[list[Result]]:
        """Several vectors of one control state, each as `run` would; a target that can overlap them (BMv2,
        where one packet's round trip is milliseconds) overrides this."""
        return [self.run(packets, registers) for packets, registers in batch]

    def coverage(self) -> dict[str, Any] | None:
        """Coverage of the code the target generated, accumulated over every run since `open`, where the target can
        count it (the xdp target: each copy's ways out); None where it cannot."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional hook: drivers holding nothing need not override it
        """Release everything; must be safe to call twice and after a failed open."""

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def available_drivers() -> dict[str, str]:
    found = dict(BUILTIN_DRIVERS)
    for ep in entry_points(group="c3po.drivers"):
        found.setdefault(ep.name, ep.value)
    return found


def load_driver_class(name: str) -> type[Driver]:
    spec = available_drivers().get(name)
    if spec is None:
        raise KeyError(name)
    module_name, _, attr = spec.partition(":")
    cls: type[Driver] = getattr(importlib.import_module(module_name), attr)
    return cls
