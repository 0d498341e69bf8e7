"""The NIC table API's refusals (issue 16, "the nic table API"): what the generated C must refuse and no vector can
name, because vectors name entries by their match, never by a handle or an action id. The NIC driver asks each
table, once a state is installed (targets/nic/driver.py `_check_refusals`, and after each delete op `_lookup`):

- a handle one past the last, the last one while not given out, and a handle deleted and not reused:
  `_modify`, `_delete`, `_counter` say NOENT;
- an action id no action has: `_add`, `_modify`, `_set_default` say ARG;
- a hash table's `_add` of an installed match says EXISTS (FULL once the table is full);
- `_lookup` finds the constant entries at handles 0..n-1 (the handles their counters are read by).

Each check is shown to pass on the generated code and to catch the mutant of `c3po conformance mutate` that
survived before it (the generated C patched the way the mutation operator does, then built as the driver does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.model import ControlOp, ControlState, EntryState, PacketIn
from targets.nic import driver as nic_driver
from targets.nic.driver import NicDriver

from .conftest import ROOT

SPEC = ROOT / "conformance" / "suite" / "table_sequences.yaml"  # macs: exact, 8 entries, counters; acl: priority

pytestmark = pytest.mark.gcc


@pytest.fixture(scope="module")
def prog() -> ir.Program:
    return load_program(str(SPEC)).program


def _mac(value: int, action: str = "forward", args: tuple[int, ...] = (3,)) -> EntryState:
    return EntryState("macs", (KeyElem("value", value),), action, args)


def _ins(e: EntryState) -> ControlOp:
    return ControlOp("insert", e.table, e.match, e.action, e.args, e.priority)


def _del(e: EntryState) -> ControlOp:
    return ControlOp("delete", e.table, e.match, "", (), e.priority)


def _open(prog: ir.Program, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          patch: Callable[[str], str] | None = None) -> NicDriver:
    """A native NIC driver over the program's generated C, changed by `patch` (a mutant) when given."""
    if patch is not None:
        from targets.nic.toolchain import TOUCH_LOG, compiler, run_cc, write_sources

        def build(p: ir.Program, outdir: Path, cc: str = "gcc") -> Path:
            files = write_sources(p, outdir)
            src = files[f"{p.name}.c"]
            text = src.read_text()
            mutated = patch(text)
            assert mutated != text, "the patch did not apply: the generated code changed"
            src.write_text(mutated)
            so = outdir / f"lib{p.name}_nic.so"
            run_cc([compiler(cc), "-std=gnu99", "-O2", "-shared", "-fPIC", TOUCH_LOG, "-I", str(outdir), str(src),
                    str(files["shim"]), "-o", str(so)])
            return so

        monkeypatch.setattr(nic_driver, "build_shared", build)
    drv = NicDriver(sanitize=False)
    drv.open(prog, tmp_path)
    return drv


def _frame(dst: int) -> bytes:
    return dst.to_bytes(6, "big") + bytes.fromhex("020000000001") + b"\x88\xb5" + bytes(46)


def test_the_generated_api_passes_every_refusal(prog: ir.Program, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = _mac(0x0a), _mac(0x0b, args=(4,)), _mac(0x0c, args=(5,))
    drv = _open(prog, tmp_path, monkeypatch)
    try:
        # a deleted handle (a's) not reused, one reused (b's, by c), a table filled to its size
        drv.install(ControlState(ops=(_ins(a), _ins(b), _del(a), _del(b), _ins(c))))
        out = drv.run([PacketIn(1, _frame(0x0c)), PacketIn(1, _frame(0x0a))], {})
        assert [r.verdict for r in out] == ["forward", "to_host"] and out[0].port == 5
        drv.install(ControlState(tuple(_mac(0x100 + i) for i in range(8))))
        assert drv.run([PacketIn(1, _frame(0x107))], {})[0].port == 3
    finally:
        drv.close()


MUTANTS = {
    # (uint32_t)handle >= SIZE -> > SIZE: a counter read one past the last handle must be refused
    "counter_bound": (lambda s: s.replace("if ((uint32_t)handle >= 8u ||", "if ((uint32_t)handle > 8u ||", 1),
                      "counter of handle 8 (one past the last)"),
    "counter_size": (lambda s: s.replace("if ((uint32_t)handle >= 8u ||", "if ((uint32_t)handle >= 9u ||", 1),
                     "counter of handle 8 (one past the last)"),
    "modify_bound": (lambda s: s.replace("if (handle >= 8u ||", "if (handle > 8u ||", 1),
                     "modify of handle 8 (one past the last)"),
    # init's loop over the handles one short: the last handle is left pointing at slot 0
    "init_bound": (lambda s: s.replace("for (i = 0; i < 8u; i++) {", "for (i = 0; i < 7u; i++) {", 1),
                   "(the last, not given out)"),
    # a delete that leaves the handle pointing at its old slot
    "stale_handle": (lambda s: s.replace("t->where[handle] = C3PO_NONE;\n", ";\n", 1), "(deleted)"),
    # action_ok accepting every id
    "action_ok": (lambda s: s.replace("    default:\n        return 0;", "    default:\n        return 1;", 1),
                  "not ARG"),
    # a hash table's add that no longer refuses a match it holds
    "exists": (lambda s: s.replace(" != C3PO_NONE) return C3PO_ERR_EXISTS;", " == 12345u) return C3PO_ERR_EXISTS;",
                                   1), "not EXISTS"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_refusal_catches_its_mutant(name: str, prog: ir.Program, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    patch, says = MUTANTS[name]
    a, b = _mac(0x0a), _mac(0x0b, args=(4,))
    with pytest.raises(ValueError, match=r".*") as info:
        drv = _open(prog, tmp_path, monkeypatch, patch)
        try:
            drv.install(ControlState(ops=(_ins(a), _ins(b), _del(a))))
        finally:
            drv.close()
    assert says in str(info.value), str(info.value)


def test_a_delete_the_lookup_still_finds_is_caught(prog: ir.Program, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the priority array's delete that forgets to shrink: the last entry stays findable
    def patch(s: str) -> str:
        head, sep, tail = s.partition("int table_sequences_acl_delete(")
        return head + sep + tail.replace("    t->n--;\n", "", 1)

    e = EntryState("acl", (KeyElem("mask", 0x0a000001, 0xffffffff), KeyElem("mask", 6, 0xff)), "drop", (), 10)
    drv = _open(prog, tmp_path, monkeypatch, patch)
    try:
        with pytest.raises(ValueError, match="lookup finds"):
            drv.install(ControlState(ops=(_ins(e), _del(e))))
    finally:
        drv.close()


def test_constant_entries_hold_the_first_handles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # router_init's free list off by one ('65536u' -> '65537u'): handles 1..65536, so the last one given out
    # (at 65,536 entries: no vector fills the table) is out of range; the constant entries show it at once
    prog = load_program(str(ROOT / "spec" / "examples" / "router.yaml")).program
    drv = _open(prog, tmp_path / "ok", monkeypatch)
    drv.close()
    drv = _open(prog, tmp_path / "mutant", monkeypatch,
                lambda s: s.replace("free_[i] = 65536u - 1u - i;", "free_[i] = 65537u - 1u - i;", 1))
    try:  # open() installs its empty state without asking: a mutant that loads is killed by vectors, not stillborn
        with pytest.raises(ValueError, match="lookup of constant entry 0 finds 1, not handle 0"):
            drv.install(ControlState())
    finally:
        drv.close()


def test_key_wildcards_give_each_key_its_own_mask(prog: ir.Program) -> None:
    from conformance.gen_sequences import API_CLASS
    from conformance.generate import generate
    from conformance.interpreter import Interpreter

    g = generate(prog, seed=0)
    part = g.coverage[API_CLASS]
    assert not [x for x in [*part["uncovered"], *part["infeasible"]] if "key_wildcards" in str(x)]
    wild = [v for v in g.vectors if "key_wildcards" in v.tags]
    assert sorted(v.name for v in wild) == ["seq.acl.wildcard_ipv4.protocol", "seq.acl.wildcard_ipv4.src"]
    ref = Interpreter(prog)
    for v in wild:
        first, *above = v.control.ops
        assert [m.kind for m in first.match].count("any") == 1  # one key wildcarded, the other exact-masked
        ref.install(ControlState(v.control.entries, v.control.defaults))
        missed = ref.run(v.packets, v.registers)[0]
        exp = v.expected[0]
        assert (missed.verdict, missed.port, missed.data) != (exp.verdict, exp.port, exp.data)  # losing it shows
        assert len(above) == 1 and above[0].priority > first.priority  # the one-bit-off entry above it


def test_a_mask_read_at_another_keys_offset_loses_the_wildcard_entry(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # acl_firewall's acl_v6 decode reading the destination's mask at the source's ('52u' -> '20u'): an entry
    # with the source exact and the destination wildcarded (the key_wildcards shape) no longer matches
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    acl = load_program(str(ROOT / "spec" / "examples" / "acl_firewall.yaml")).program
    src = 0x20010DB8000000000000000000000001
    entry = EntryState("acl_v6", (KeyElem("any"), KeyElem("mask", src, (1 << 128) - 1), KeyElem("any"),
                                  KeyElem("any"), KeyElem("any"), KeyElem("any"), KeyElem("any")), "permit", (), 300)
    frame = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8:ffff::2") / UDP(sport=9999, dport=9999))
    verdicts = []
    for name, patch in (("ok", None), ("mutant", lambda s: s.replace("c3po_ld128(m, 52u, 16u)",
                                                                      "c3po_ld128(m, 20u, 16u)", 1))):
        drv = _open(acl, tmp_path / name, monkeypatch, patch)
        try:
            drv.install(ControlState(ops=(_ins(entry),)))
            verdicts.append(drv.run([PacketIn(1, frame)], {})[0].verdict)
        finally:
            drv.close()
    assert verdicts == ["to_host", "drop"]


def test_an_image_byte_of_a_constant_entry_is_caught_and_a_value_bit_under_a_zero_mask_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # acl_firewall.yaml:122 (SSH from 10.0.0.0/8): its source mask 0xff -> 0xfe is another entry; a bit of the
    # VLAN value under its zero mask is the same entry after the decode (an equivalent mutant)
    acl = load_program(str(ROOT / "spec" / "examples" / "acl_firewall.yaml")).program
    image = "static const uint8_t m[] = { 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0xff,"
    for name, now, caught in (("mask", "0xfe,", True), ("under_zero_mask", None, False)):
        def patch(s: str, now: str | None = now) -> str:
            if now is None:
                return s.replace(image, image.replace("{ 0x00,", "{ 0x01,", 1), 1)
            return s.replace(image, image[:-5] + now, 1)

        drv = _open(acl, tmp_path / name, monkeypatch, patch)
        try:
            if caught:
                with pytest.raises(ValueError, match="lookup of constant entry 0 finds NOENT"):
                    drv.install(ControlState())
            else:
                drv.install(ControlState())
        finally:
            drv.close()
