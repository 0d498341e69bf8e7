"""The reference interpreter as a conformance driver: the oracle, available everywhere, supporting every feature."""

from __future__ import annotations

from pathlib import Path

from c3po_compiler import ir
from c3po_compiler.features import FEATURES

from .driver import Driver
from .interpreter import Interpreter
from .model import ControlState, PacketIn, Registers, Result

__all__ = ["RefDriver"]


class RefDriver(Driver):
    name = "ref"
    supports = frozenset(FEATURES)

    def __init__(self) -> None:
        self.interp: Interpreter | None = None

    def open(self, prog: ir.Program, workdir: Path) -> None:
        self.interp = Interpreter(prog)

    def _require(self) -> Interpreter:
        if self.interp is None:
            raise RuntimeError("RefDriver: open() a program first")
        return self.interp

    def install(self, control: ControlState) -> None:
        self._require().install(control)

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        return self._require().run(packets, registers)

    def close(self) -> None:
        self.interp = None
