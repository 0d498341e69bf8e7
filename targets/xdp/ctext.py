"""C text building blocks the emitter and the deparser share: the lines being written, header pointer names,
spec locations for comments, and the markers of a control path emitted per branch."""

from __future__ import annotations

from dataclasses import dataclass, field

from c3po_compiler import ir
from c3po_compiler.text import loc_text

# The `c3po_*` helpers, maps and types of an xdp program's C file, without the prefix (tests/test_compiler_clean.py
# keeps the list in step with the runtime header, the templates and the generator).
HELPER_NAMES = frozenset(["compiler", "copy", "count", "counter", "cover", "crc16_bytes", "crc16_bytes_on", "crc16_pairs", "crc16_pairs_on", "crc16_tab", "crc16_tab16", "crc32_bytes", "crc32_bytes_on", "crc32_pairs", "crc32_pairs_on", "crc32_tab", "crc32_tab16", "csum_area", "csum_fixed", "csum_fold", "csum_fold2", "csum_ok", "csum_step", "csum_var", "defaults", "forward", "get", "getw", "hv", "ifports", "ingress_port", "ld", "ld_raw", "ldw", "meta", "parse", "pkt_len", "progs", "scratch", "set", "setw", "shl", "shr", "st", "st_in16", "st_raw", "state", "state_rec", "stb", "stw", "tlvbuf", "touch", "trie_slot", "trie_step", "tx_ports", "u128", "valid", "wide", "xdp", "zero"])


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
