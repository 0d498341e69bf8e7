"""Python drivers that misbehave, for the runner's process isolation: one hangs and one kills its process on
packets whose first byte is 0xee (and one segfaults on them); otherwise they are the reference driver. Selected as
`py:tests.plugins.misbehaving_driver:HangingDriver`."""

from __future__ import annotations

import os
import signal
import time

from conformance.model import PacketIn, Registers, Result
from conformance.ref_driver import RefDriver


class HangingDriver(RefDriver):
    name = "hanging"

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        if any(p.data[:1] == b"\xee" for p in packets):
            time.sleep(3600)
        return super().run(packets, registers)


class DyingDriver(RefDriver):
    name = "dying"

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        if any(p.data[:1] == b"\xee" for p in packets):
            os._exit(9)  # like a segfault in native code: no exception, the process is gone
        return super().run(packets, registers)


class SegfaultingDriver(RefDriver):
    """Dies by SIGSEGV, as a NIC worker with an out-of-bounds write does: the runner must name the signal."""

    name = "segfaulting"

    def run(self, packets: list[PacketIn], registers: Registers) -> list[Result]:
        if any(p.data[:1] == b"\xee" for p in packets):
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # faulthandler (pytest's) would catch it otherwise
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().run(packets, registers)
