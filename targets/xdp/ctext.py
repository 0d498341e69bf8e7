"""C text building blocks the emitter and the deparser share: the lines being written, header pointer names,
spec locations for comments, and the markers of a control path emitted per branch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.text import loc_text

# The `c3po_*` helpers, maps and types of an xdp program's C file, without the prefix (tests/test_compiler_clean.py
# keeps the list in step with the runtime header, the templates and the generator).
HELPER_NAMES = frozenset(["compiler", "copy", "count", "counter", "cover", "crc16_bytes", "crc16_bytes_on", "crc16_pairs", "crc16_pairs_on", "crc16_tab", "crc16_tab16", "crc32_bytes", "crc32_bytes_on", "crc32_pairs", "crc32_pairs_on", "crc32_tab", "crc32_tab16", "csum_area", "csum_fixed", "csum_fold", "csum_ok", "csum_step", "csum_var", "defaults", "forward", "get", "getw", "hv", "ifports", "ingress_port", "ld", "ld_raw", "ldw", "meta", "parse", "pkt_len", "progs", "scratch", "set", "setw", "shl", "shr", "st", "st_in16", "st_raw", "state", "state_rec", "stb", "stw", "tlvbuf", "touch", "trie_slot", "tries", "tx_ports", "u128", "valid", "wide", "xdp", "zero"])


_IF = re.compile(r"^(\s*)if \((.*)\)(\s*/\*.*\*/)?$")
_ERROR_EXIT = re.compile(r"^\s*(goto perr_(truncated|bad_length|checksum|stack_overflow)|return XDP_ABORTED);")


def unlikely_errors(lines: list[str]) -> list[str]:
    """Each one-line `if (c)` whose only statement leaves for a parser error or aborts (a frame shorter than its
    headers, a bad length or checksum, a failed bpf_xdp_adjust_head) as `if (C3PO_UNLIKELY(c))`: clang then lays
    out the valid frames' path as the fall-through, in fewer code lines and taken branches. Measured on the VXLAN
    gateway, -4.8 ns of ~73 on the whole mix (docs/performance.md). A spec's `reject` is not an error here: it is
    a verdict some traffic takes."""
    out = list(lines)
    for i in range(len(out) - 1):
        m = _IF.match(out[i])
        if m and _ERROR_EXIT.match(out[i + 1]) and "C3PO_UNLIKELY" not in m.group(2):
            out[i] = f"{m.group(1)}if (C3PO_UNLIKELY({m.group(2)})){m.group(3) or ''}"
    return out


def entry_name(program: str) -> str:
    """The entry program's function, `c3po_<program>`, or `c3po_entry_<program>` when that would be one of the
    helpers' names (a program named `forward` would define c3po_forward twice). No helper starts c3po_entry_."""
    return f"c3po_entry_{program}" if program in HELPER_NAMES else f"c3po_{program}"


def where(prog: ir.Program, loc: ir.Loc) -> str:
    """`file:line` of a spec node, relative paths as the user wrote them, for comments in the C (made safe there
    by `c3po_compiler.text`)."""
    return loc_text(loc, prog.name)


@dataclass
class Lines:
    """C statements with indentation; the only place C text is assembled line by line."""

    out: list[str] = field(default_factory=list)
    depth: int = 1

    def add(self, text: str) -> None:
        self.out.append("\t" * self.depth + text)

    def open(self, text: str) -> None:
        self.add(text)
        self.depth += 1

    def close(self, text: str = "}") -> None:
        self.depth -= 1
        self.add(text)


@dataclass
class ParseNode:
    label: str
    comment: str
    lines: list[str]


@dataclass(eq=False)
class HitMiss(ir.Stmt):
    """The `hit:` / `miss:` statements of an apply, as a statement of their own when the rest of the control is
    emitted per action (the run-time `hit` of that apply decides)."""

    hit: list[ir.Stmt]
    miss: list[ir.Stmt]


class Done:
    """Returned by `Emitter.block` when every path through the block ended in its own deparser."""


DONE = Done()
SNAPSHOT = "\0snapshot"  # in the control's lines: where the parsed values RFC 1624 needs are saved (view.py)
Frame = tuple[list[ir.Stmt], dict[str, str]]  # statements still to run after a block, and their action params


def elem_ptr(inst: ir.Instance, index: int | None) -> str:
    return f"h_{inst.ident}_{index}" if inst.is_stack else f"h_{inst.ident}"
