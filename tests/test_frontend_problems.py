"""The shape of every diagnostic, and the did-you-mean hints that most of them carry."""

from __future__ import annotations

from c3po_compiler.names import ident_problem
from c3po_compiler.problems import Loc, SpecError, did_you_mean, error, warning


def test_close_names_are_suggested_best_first() -> None:
    assert did_you_mean("routes", ["routes_v4", "acl", "nexthops"]) == "did you mean 'routes_v4'?"
    assert did_you_mean("ethrnet", ["ethernet", "ipv4", "ether"]) == "did you mean 'ethernet' or 'ether'?"


def test_a_short_list_is_shown_when_nothing_is_close() -> None:
    assert did_you_mean("zzz", ["drop", "set_port"]) == "known: drop, set_port"


def test_no_hint_when_nothing_is_close_and_the_list_is_long() -> None:
    assert did_you_mean("zzz", [f"name{i}" for i in range(20)]) is None
    assert did_you_mean("x", []) is None


def test_format_is_file_line_col_severity_message_path_and_hint() -> None:
    p = error(Loc("a.yaml", 3, 7, "$.tables.t"), "undefined table 'x'", "did you mean 'y'?")
    assert p.format() == "a.yaml:3:7: error: undefined table 'x' (at $.tables.t)\n    hint: did you mean 'y'?"
    assert warning(Loc("a.yaml", 1, 1), "w").format() == "a.yaml:1:1: warning: w (at $)"


def test_spec_error_lists_problems_in_file_order() -> None:
    exc = SpecError([error(Loc("b.yaml", 1, 1), "b"), error(Loc("a.yaml", 9, 1), "late"),
                     error(Loc("a.yaml", 2, 5), "early")])
    assert [p.message for p in exc.problems] == ["early", "late", "b"]
    assert str(exc).splitlines()[0].startswith("a.yaml:2:5: error: early")


def test_identifier_rules() -> None:
    assert ident_problem("routes_v4") is None
    assert ident_problem("type", is_field=True) == ("'type' is a reserved word in P4", "rename it, e.g. 'type_'")
    assert ident_problem("hash") == ("'hash' is a reserved word in P4/v1model", "rename it, e.g. 'hash_'")
    assert ident_problem("hash", is_field=True) is None  # fields live in a struct: only keywords clash
    assert ident_problem("while") == ("'while' is a reserved word in C", "rename it, e.g. 'while_'")
    assert ident_problem("c3po_x") is not None and ident_problem("a__b") is not None
    bad = ident_problem("My-Name")
    assert bad is not None and bad[1].endswith("e.g. 'my_name'")
    assert ident_problem("a" * 49) == (f"identifier '{'a' * 49}' is longer than 48 characters",
                                       "choose a shorter name")
