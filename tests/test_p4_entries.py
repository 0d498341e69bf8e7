"""The control-plane description (`<program>.entries.json`) and the ControlState -> P4Runtime / CLI mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.expr import KeyElem
from conformance.model import ControlState, EntryState
from targets.p4 import P4Target
from targets.p4.entries import all_entries, canonical, describe, to_cli, to_p4runtime
from targets.p4.p4text import blocks
from tests.conftest import EXAMPLES

SPECS = [p for p in EXAMPLES]


def _load(name: str) -> ir.Program:
    prog = load_program(str(next(p for p in EXAMPLES if p.stem == name))).program
    assert prog is not None
    return prog


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_description_covers_every_table_and_action(path: Path) -> None:
    prog = load_program(str(path)).program
    assert prog is not None
    files = P4Target().render(prog)
    desc = json.loads(files[f"{prog.name}.entries.json"])
    assert desc == json.loads(json.dumps(describe(prog, 510)))
    assert sorted(t["name"] for t in desc["tables"]) == sorted(prog.tables)
    text = files[f"{prog.name}.p4"]
    p4_tables = blocks(text, "table")
    actions = {a["name"]: a for a in desc["actions"]}
    for t in desc["tables"]:
        table = prog.tables[t["name"]]
        assert [(k["name"], k["match_kind"], k["bitwidth"]) for k in t["keys"]] == \
            [(k.text, k.kind, k.width) for k in table.keys]
        assert t["actions"] == table.actions
        assert t["default_action"] == {"name": table.default.action, "args": table.default.args}
        assert len(t["const_entries"]) == len(table.entries)
        for p4t in t["p4_tables"]:
            assert p4t in p4_tables  # each P4 table named here exists in the P4 source
        for a in [*table.actions, table.default.action]:
            assert [(p["name"], p["bitwidth"]) for p in actions[a]["params"]] == \
                [(p.name, p.width) for p in prog.actions[a].params]
            # The P4 action carries the P4Runtime name the description promises.
            assert f'@name(".{a}") action ' in text


def test_router_table_applied_twice_gets_two_p4_tables() -> None:
    prog = _load("router")
    desc = describe(prog, 510)
    nexthops = next(t for t in desc["tables"] if t["name"] == "nexthops")
    assert nexthops["p4_tables"] == ["nexthops", "nexthops__2"]
    control = ControlState(entries=(EntryState("nexthops", (KeyElem("value", 7),), "next_hop", (3, 0x0200, 0x0201)),))
    cli = to_cli(desc, control)
    assert "table_add nexthops next_hop 0x7 => 0x3 0x200 0x201" in cli
    assert "table_add nexthops__2 next_hop 0x7 => 0x3 0x200 0x201" in cli
    p4rt = [e for e in to_p4runtime(desc, control) if e["table"].startswith("nexthops")]
    assert [e["table"] for e in p4rt] == ["nexthops", "nexthops__2"]
    assert p4rt[0]["match"] == [{"field": "meta.nexthop", "exact": {"value": "0x7"}}]
    assert p4rt[0]["action"] == {"name": "next_hop", "params": [{"name": "port", "value": "0x3"},
                                                                {"name": "smac", "value": "0x200"},
                                                                {"name": "dmac", "value": "0x201"}]}
    assert "priority" not in p4rt[0]


def test_const_entries_come_first_and_lpm_has_no_priority() -> None:
    prog = _load("router")
    desc = describe(prog, 510)
    control = ControlState(entries=(EntryState("routes_v4", (KeyElem("prefix", 0x0A000000, 8),), "set_nexthop",
                                               (7,)),))
    entries = all_entries(desc, control)
    n_const = sum(len(t.entries) for t in prog.tables.values())
    assert len(entries) == n_const + 1 and entries[-1] == control.entries[0]
    cli = to_cli(desc, control)
    assert cli[-1] == "table_add routes_v4 set_nexthop 0xa000000/8 => 0x7"
    assert "table_add routes_v4 c3po_drop" not in " ".join(cli)  # P4Runtime/CLI use the spec's action names
    assert any(c.startswith("table_add routes_v4 drop 0x0/8 =>") for c in cli)


def test_priorities_follow_spec_order_with_install_order_ties() -> None:
    prog = _load("acl_firewall")
    desc = describe(prog, 510)
    table = next(t for t in desc["tables"] if t["uses_priority"])
    nkeys = len(table["keys"])
    anym = tuple(KeyElem("any") for _ in range(nkeys))
    action = table["actions"][0]
    args = (0,) * len(next(a for a in desc["actions"] if a["name"] == action)["params"])
    control = ControlState(entries=(EntryState(table["name"], anym, action, args, 5),
                                    EntryState(table["name"], anym, action, args, 50),
                                    EntryState(table["name"], anym, action, args, 5)))
    consts = len(table["const_entries"])
    cli = [c for c in to_cli(desc, control) if c.startswith(f"table_add {table['name']} ")]
    bmv2 = [int(c.rsplit(" ", 1)[1]) for c in cli]  # BMv2: the lowest value wins
    mine = bmv2[consts:]
    assert mine[1] < mine[0] < mine[2]  # priority 50 first; equal priorities: installed first wins
    assert len(set(bmv2)) == len(bmv2)
    p4rt = [e["priority"] for e in to_p4runtime(desc, control) if e["table"] == table["name"]][consts:]
    assert p4rt[1] > p4rt[0] > p4rt[2]  # P4Runtime: the highest value wins


def test_match_forms_for_every_kind() -> None:
    prog = _load("acl_firewall")
    desc = describe(prog, 510)
    table = next(t for t in desc["tables"] if {k["match_kind"] for k in t["keys"]} >= {"ternary", "range"})
    match = []
    for k in table["keys"]:
        kind = k["match_kind"]
        match.append({"exact": KeyElem("value", 1), "ternary": KeyElem("mask", 1, 1),
                      "range": KeyElem("range", 2, 9), "lpm": KeyElem("prefix", 0, 0)}[kind])
    action = table["actions"][0]
    nparams = len(next(a for a in desc["actions"] if a["name"] == action)["params"])
    control = ControlState(entries=(EntryState(table["name"], tuple(match), action, (1,) * nparams, 3),),
                           defaults=((table["name"], action, (2,) * nparams),))
    cli = to_cli(desc, control)
    line = next(c for c in cli if c.startswith(f"table_add {table['name']} {action} 0x1"))
    keys = line.split(" => ")[0].split(" ")[3:]
    for k, text in zip(table["keys"], keys, strict=True):
        pattern = {"exact": r"0x1", "ternary": r"0x1&&&0x1", "range": r"0x2->0x9"}[k["match_kind"]]
        assert re.fullmatch(pattern, text), (k, text)
    assert cli[-1].startswith(f"table_set_default {table['name']} {action}")
    p4rt = to_p4runtime(desc, control)
    entry = [e for e in p4rt if e["table"] == table["name"] and not e.get("is_default_action")][-1]
    kinds = [next(iter(set(m) - {"field"})) for m in entry["match"]]
    assert kinds == [k["match_kind"] for k in table["keys"]]
    assert p4rt[-1]["is_default_action"] is True


def test_wildcards_are_left_out_in_p4runtime_and_spelled_out_in_cli() -> None:
    prog = _load("acl_firewall")
    desc = describe(prog, 510)
    table = next(t for t in desc["tables"] if t["uses_priority"])
    anym = tuple(KeyElem("any") for _ in table["keys"])
    action = table["actions"][0]
    nparams = len(next(a for a in desc["actions"] if a["name"] == action)["params"])
    control = ControlState(entries=(EntryState(table["name"], anym, action, (0,) * nparams, 1),))
    assert to_p4runtime(desc, control)[-1]["match"] == []
    keys = to_cli(desc, control)[-1].split(" => ")[0].split(" ")[3:]
    for k, text in zip(table["keys"], keys, strict=True):
        full = hex((1 << k["bitwidth"]) - 1)
        assert text == {"ternary": "0x0&&&0x0", "range": f"0x0->{full}", "lpm": "0x0/0"}[k["match_kind"]]


def test_canonical_matches_clear_dont_care_bits() -> None:
    assert canonical(KeyElem("prefix", 0x0A0000FF, 8), "lpm", 32) == KeyElem("prefix", 0x0A000000, 8)
    assert canonical(KeyElem("value", 7), "lpm", 8) == KeyElem("prefix", 7, 8)
    assert canonical(KeyElem("any"), "lpm", 8) == KeyElem("prefix", 0, 0)
    assert canonical(KeyElem("mask", 0xFF, 0x0F), "ternary", 8) == KeyElem("mask", 0x0F, 0x0F)
    assert canonical(KeyElem("any"), "range", 12) == KeyElem("range", 0, 0xFFF)
    assert canonical(KeyElem("value", 3), "range", 12) == KeyElem("range", 3, 3)
    assert canonical(KeyElem("value", 0x1FF), "exact", 8) == KeyElem("value", 0xFF)
