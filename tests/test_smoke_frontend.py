"""The front end accepts every example and protocol library file."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.loader import schema_problems
from c3po_compiler.yaml_source import load_yaml

from .conftest import EXAMPLES, PROTOCOLS


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_example_checks(spec: Path) -> None:
    loaded = load_program(spec)
    assert loaded.program.parser.states
    assert loaded.program.deparse


@pytest.mark.parametrize("spec", PROTOCOLS, ids=lambda p: p.stem)
def test_protocol_library_is_schema_valid(spec: Path) -> None:
    assert schema_problems(load_yaml(spec)) == []


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 6
