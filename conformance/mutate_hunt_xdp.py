"""`c3po conformance mutate --target xdp --hunt SECONDS`: a second opinion on each xdp survivor, in the kernel.

The nic hunter (`mutate_hunt`) links both copies into one libFuzzer binary; an eBPF program runs only in the
kernel, which gives no coverage feedback to a fuzzer. So here the original and the mutant objects are both loaded
(the xdp driver, exactly as `conformance run` and `mutate` use it: `mutate._xdp_driver` of each build), given the
same control state (up to MAX_STATES of the vectors' distinct states, `mutate_hunt.pick_states`), and fed the same
candidate frames through BPF_PROG_TEST_RUN; any difference in what a vector observes (verdict, egress port, output
frame, counters and registers touched) is a candidate, then confirmed as the nic hunt confirms (a vector with the
reference interpreter's expected results that passes on the original and fails on the mutant: `distinguished`). Both
run with the driver's dirty headroom (`targets/xdp/driver.py`: the metadata area filled with non-zero bytes), so a
header byte a mutant pushes and leaves unwritten differs here as it does in `conformance run`.

Candidates come from a structured, seeded mutation fuzzer: every packet of the vectors (fuzzed ones included) is
a seed, parsed once by the reference interpreter so its header fields and header boundaries are known; a
candidate is a seed with one to three of:

- a header field set to an edge: 0, all ones, the top bit alone, the top bit minus one, one off its value, or one
  of the program's constants (table keys of the states and constant entries, range bounds one off -- the nic
  hunter's `key_words` -- and every constant of the IR: selects' case values and masks, comparisons,
  assignments), exactly or one off;
- a dictionary word written at a field's start or at any byte; a byte set to 0x00/0xff/0x7f/0x80/0x01 or a
  random one; a bit flipped;
- the frame truncated at a header boundary (or anywhere, down to the 14 bytes BPF_PROG_TEST_RUN accepts),
  extended with zero or random bytes, bytes inserted or deleted at a header boundary (varying a length), or
  another seed's tail spliced in at a header boundary;
- the ingress port, now and then, another of the vectors' ports.

Candidates run in batches (one driver `run` call each, both programs), round-robin over the states; the sequence
of candidates depends only on the seed (`--seed`), the time bound (SECONDS per survivor) on how many are tried.
Registers carry over within a batch (as within a vector), so a difference is first re-run alone; when only the
batch's prefix reproduces it, the vector is that prefix.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from c3po_compiler import ir
from c3po_compiler.expr import Const, KeyElem

from .model import PacketIn, Result
from .mutate_hunt import (
    MAX_SEEDS,
    HunterBase,
    HuntResult,
    HuntUnavailable,
    key_words,
    max_frame,
    pick_states,
)
from .mutate_ops import Mutant

if TYPE_CHECKING:
    from targets.xdp.driver import XdpDriver

BATCH = 64  # candidates per driver run (per state installed)
ROUNDS_PER_STATE = 4  # batches before the next state is installed
MAX_CONFIRM = 3  # differences sent to the drivers for confirmation per survivor before giving up
MIN_FRAME = 14  # BPF_PROG_TEST_RUN refuses shorter frames
MAX_CONSTANTS = 2000
_OPEN = threading.Lock()  # the driver's open stands in a module attribute (mutate._standing_in): one at a time


def ir_constants(prog: ir.Program) -> list[int]:
    """Every integer constant of the program: `Const` expressions (selects, comparisons, assignments, arguments)
    and the key elements of select cases and constant entries (values, masks, range bounds, prefixes)."""
    found: set[int] = set()
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen or isinstance(node, (str, bytes, bool, float, type(None))):
            return
        if isinstance(node, int):
            return
        seen.add(id(node))
        if isinstance(node, Const) and not node.is_bool:
            found.add(node.value)
        if isinstance(node, KeyElem):
            found.update((node.a, node.b) if node.kind in ("mask", "range") else (node.a,))
            return
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple, set, frozenset)):
            for v in node:
                walk(v)
        elif dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                walk(getattr(node, f.name))

    walk(prog)
    return sorted(v for v in found if v >= 0)[:MAX_CONSTANTS]


@dataclasses.dataclass
class _Seed:
    state: int
    port: int
    data: bytes
    fields: list[tuple[int, int]]  # (bit offset, width) of each header field the oracle parsed
    bounds: list[int]  # byte offsets where a header ends (and the frame's start)


def _set_bits(buf: bytearray, bit_off: int, width: int, value: int) -> None:
    start, end = bit_off // 8, (bit_off + width + 7) // 8
    if end > len(buf) or width <= 0:
        return
    shift = end * 8 - (bit_off + width)
    mask = ((1 << width) - 1) << shift
    chunk = int.from_bytes(buf[start:end], "big")
    chunk = (chunk & ~mask) | ((value << shift) & mask)
    buf[start:end] = chunk.to_bytes(end - start, "big")


def _get_bits(buf: bytes | bytearray, bit_off: int, width: int) -> int:
    start, end = bit_off // 8, (bit_off + width + 7) // 8
    chunk = int.from_bytes(buf[start:end], "big")
    return (chunk >> (end * 8 - (bit_off + width))) & ((1 << width) - 1)


def observed(r: Result) -> tuple[Any, ...]:
    """What a vector can observe of a result (the frame of a dropped packet is not observable)."""
    return (r.verdict, r.port, b"" if r.verdict == "drop" else r.data, sorted(r.counters.items()),
            sorted((k, v) for k, v in r.registers.items() if v), r.error is not None)


class Mutator:
    """The structured candidate maker: seeds, a dictionary, and a seeded random source."""

    def __init__(self, seeds: list[_Seed], words: list[bytes], constants: list[int], ports: list[int],
                 max_len: int, rng: random.Random) -> None:
        self.seeds, self.words, self.constants, self.ports = seeds, words, constants, ports
        self.max_len, self.rng = max_len, rng
        self.by_state: dict[int, list[_Seed]] = {}
        for s in seeds:
            self.by_state.setdefault(s.state, []).append(s)
        self.ops = [(self._field, 6), (self._word, 2), (self._byte, 2), (self._bit, 1), (self._cut, 1),
                    (self._extend, 1), (self._shift, 1), (self._splice, 1)]
        self.weights = [w for _, w in self.ops]

    def candidate(self, state: int) -> PacketIn:
        rng = self.rng
        pool = self.by_state.get(state) if rng.random() < 0.75 else None
        seed = rng.choice(pool or self.seeds)
        buf = bytearray(seed.data)
        for op in rng.choices([o for o, _ in self.ops], self.weights, k=rng.choice((1, 1, 1, 2, 2, 3))):
            op(buf, seed)
        if len(buf) < MIN_FRAME:
            buf += bytes(MIN_FRAME - len(buf))
        port = seed.port if rng.random() < 0.9 else rng.choice(self.ports)
        return PacketIn(port, bytes(buf[:self.max_len]))

    def _value(self, width: int, old: int) -> int:
        rng, top = self.rng, 1 << (width - 1)
        pick = rng.randrange(9)
        if pick == 0:
            return 0
        if pick == 1:
            return (1 << width) - 1
        if pick == 2:
            return top
        if pick == 3:
            return top - 1
        if pick == 4:
            return old + rng.choice((-1, 1))
        if pick == 5:
            return rng.getrandbits(width)
        if not self.constants:
            return old ^ top
        return rng.choice(self.constants) + (0 if pick < 8 else rng.choice((-1, 1)))

    def _field(self, buf: bytearray, seed: _Seed) -> None:
        if not seed.fields:
            return self._byte(buf, seed)
        off, width = self.rng.choice(seed.fields)
        if (off + width + 7) // 8 > len(buf):
            return None
        _set_bits(buf, off, width, self._value(width, _get_bits(buf, off, width)) & ((1 << width) - 1))
        return None

    def _word(self, buf: bytearray, seed: _Seed) -> None:
        if not self.words or not buf:
            return
        word = self.rng.choice(self.words)
        starts = [o // 8 for o, _ in seed.fields if o % 8 == 0] or [0]
        at = self.rng.choice(starts) if self.rng.random() < 0.7 else self.rng.randrange(len(buf))
        buf[at:at + len(word)] = word[:max(0, len(buf) - at)]

    def _byte(self, buf: bytearray, seed: _Seed) -> None:
        if buf:
            buf[self.rng.randrange(len(buf))] = self.rng.choice((0, 0xFF, 0x7F, 0x80, 1, self.rng.randrange(256)))

    def _bit(self, buf: bytearray, seed: _Seed) -> None:
        if buf:
            buf[self.rng.randrange(len(buf))] ^= 1 << self.rng.randrange(8)

    def _cut(self, buf: bytearray, seed: _Seed) -> None:
        cuts = [b for b in seed.bounds if MIN_FRAME <= b < len(buf)]
        if cuts and self.rng.random() < 0.7:
            del buf[self.rng.choice(cuts) + self.rng.choice((0, 0, -1, 1)):]
        elif len(buf) > MIN_FRAME:
            del buf[self.rng.randrange(MIN_FRAME, len(buf)):]

    def _extend(self, buf: bytearray, seed: _Seed) -> None:
        n = self.rng.choice((1, 2, 4, 8, 20, 64))
        buf += bytes(n) if self.rng.random() < 0.5 else self.rng.randbytes(n)

    def _shift(self, buf: bytearray, seed: _Seed) -> None:
        at = self.rng.choice([b for b in seed.bounds if b <= len(buf)] or [len(buf)])
        n = self.rng.choice((1, 2, 4, 8))
        if self.rng.random() < 0.5:
            buf[at:at] = bytes(n) if self.rng.random() < 0.5 else self.rng.randbytes(n)
        else:
            del buf[at:at + n]

    def _splice(self, buf: bytearray, seed: _Seed) -> None:
        other = self.rng.choice(self.seeds)
        common = sorted(set(seed.bounds) & set(other.bounds) & set(range(1, len(buf) + 1)))
        at = self.rng.choice(common) if common else self.rng.randrange(1, max(2, len(buf)))
        buf[at:] = other.data[at:]


class XdpHunter(HunterBase):
    """Differential fuzzing of xdp survivors against the original build, both loaded in the kernel."""

    target = "xdp"
    method = "in-kernel differential fuzzing"
    summary = "in-kernel differential fuzzing (structured mutation, no coverage guidance)"

    # set by prepare: the seeds, the dictionary words, the constants, the longest candidate
    seeds: list[_Seed]
    words: list[bytes]
    constants: list[int]
    max_len: int
    fuzzing: dict[int, float]  # thread -> seconds of running candidates in its current hunt (--jobs N)

    @staticmethod
    def unavailable() -> str | None:
        from targets.xdp.driver import XdpDriver

        return XdpDriver.unavailable()

    def _rate(self, execs: int, took: float) -> str:
        """Per second of running candidates (both programs, the comparison, making them): loading the two
        objects and installing states are left out."""
        fuzzing = self.fuzzing.get(threading.get_ident(), 0.0)
        return f", {execs / fuzzing:.0f}/s" if fuzzing > 0 else ""

    def _open(self, slot: Path, name: str) -> XdpDriver:
        from .mutate import _xdp_driver

        drv: Any = _xdp_driver(slot)()
        with _OPEN:
            try:
                drv.open(self.prog, self.workdir / name)
            except BaseException:
                drv.close()
                raise
        return drv  # type: ignore[no-any-return]

    def prepare(self) -> None:
        """States the original installs, seeds parsed by the oracle, the dictionary and the constants."""
        from .runner import layout_function

        self.workdir.mkdir(parents=True, exist_ok=True)
        groups, keys, chosen = pick_states(self.vectors)
        drv = self._open(self.original, "prepare")
        try:
            index = self.install_states(drv, groups, chosen, (ValueError, KeyError, OSError))
        finally:
            drv.close()
        if not self.states:
            raise HuntUnavailable("no control state of the vectors installs on the xdp driver")
        self.ports = sorted({p.port for v in self.vectors for p in v.packets} | {1})[:256]
        self.max_len = max_frame(self.prog, self.vectors)
        layout_for = layout_function(self.prog)
        self.seeds, self.fuzzing = [], {}
        seen: set[tuple[int, int, bytes]] = set()
        for g, key in enumerate(keys):
            k = index.get(key, g % len(self.states))
            for v in groups[key]:
                for p in v.packets:
                    item = (k, p.port, p.data[:self.max_len])
                    if len(p.data) < MIN_FRAME or item in seen or len(seen) >= MAX_SEEDS:
                        continue
                    seen.add(item)
        for k, port, data in sorted(seen):
            try:
                spans = layout_for(data)
            except Exception:  # a frame the oracle cannot parse is still a seed, without fields
                spans = []
            fields = [(s.bit_offset, s.width) for s in spans if s.name != "payload" and 0 < s.width <= 128]
            ends: dict[str, int] = {}
            for s in spans:
                inst = s.name.rsplit(".", 1)[0]
                ends[inst] = max(ends.get(inst, 0), (s.bit_offset + s.width + 7) // 8)
            self.seeds.append(_Seed(k, port, data, fields, sorted({0, *ends.values()})))
        if not self.seeds:
            raise HuntUnavailable("the vectors have no frame of 14 bytes or more to start from")
        self.words = key_words(self.prog, [st.control for st in self.states])
        self.constants = sorted(set(ir_constants(self.prog)) | {int.from_bytes(w, "big") for w in self.words})

    def hunt(self, m: Mutant, slot: Path, original_target: str, mutant_target: str) -> HuntResult:
        """Fuzz the mutant built in `slot` against the original for `seconds`; `original_target` and
        `mutant_target` are the runner's names of their drivers (for the confirmation)."""
        start = time.monotonic()
        try:
            orig = self._open(self.original, "hunt-o")
        except Exception as exc:  # reported as the hunt's error, the survivor stays one
            return HuntResult("error", f"the original does not load for hunting: {str(exc)[:200]}")
        try:
            try:
                mut = self._open(slot, "hunt-m")
            except Exception as exc:
                return HuntResult("error", f"the mutant does not load for hunting: {str(exc)[:200]}")
            try:
                return self._hunt(m, orig, mut, start, original_target, mutant_target)
            finally:
                mut.close()  # before the original: each close restores the CPU affinity its open found
        finally:
            orig.close()

    def _hunt(self, m: Mutant, orig: XdpDriver, mut: XdpDriver, start: float, original_target: str,
              mutant_target: str) -> HuntResult:
        rng = random.Random(self.seed)
        maker = Mutator(self.seeds, self.words, self.constants, self.ports, self.max_len, rng)
        deadline = start + self.seconds
        execs, confirms, batches = 0, 0, 0
        me = threading.get_ident()
        self.fuzzing[me] = 0.0
        last: HuntResult | None = None
        k = -1
        installed = False
        while time.monotonic() < deadline and confirms < MAX_CONFIRM:
            if batches % ROUNDS_PER_STATE == 0 or not installed:
                k = (k + 1) % len(self.states)
                batches, installed = 0, self._install(k, orig, mut)
                if not installed:
                    continue
            batches += 1
            t0 = time.monotonic()
            batch = [maker.candidate(k) for _ in range(BATCH)]
            regs = self.states[k].registers
            try:
                a, b = orig.run(batch, regs), mut.run(batch, regs)
            except OSError:  # BPF_PROG_TEST_RUN refused the batch: the next state
                installed = False
                continue
            execs += BATCH
            self.fuzzing[me] += time.monotonic() - t0
            i = next((j for j, (x, y) in enumerate(zip(a, b, strict=True)) if observed(x) != observed(y)), None)
            if i is None:
                continue
            packets = batch[i:i + 1]
            if regs or self.prog.registers:  # registers carry over within the batch: does it differ alone?
                self._install(k, orig, mut)
                x, y = orig.run(packets, regs)[0], mut.run(packets, regs)[0]
                if observed(x) == observed(y):
                    packets = batch[:i + 1]
                installed = self._install(k, orig, mut)
            confirms += 1
            took = time.monotonic() - start
            last = self.found_packets(m, k, packets, "", took, execs, original_target, mutant_target)
            if last.status == "distinguished":
                return last
        if last is not None:
            return last
        return self.not_found(execs, time.monotonic() - start)

    def _install(self, k: int, orig: XdpDriver, mut: XdpDriver) -> bool:
        control = self.states[k].control
        try:
            orig.install(control)
        except (ValueError, KeyError, OSError):
            return False
        try:
            mut.install(control)
        except (ValueError, KeyError, OSError):
            return False
        return True
