"""docs/getting-started.md shows a spec and what c3po says about it; both must stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from c3po_compiler import load_program
from c3po_compiler.problems import SpecError

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "getting-started.md"


def guide_spec() -> str:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", GUIDE.read_text(encoding="utf-8"), re.S | re.M)
    assert blocks, "the guide shows its spec in a ```yaml block"
    return str(blocks[0])


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """The guide's layout: spec/my/ next to spec/protocols/, as in a clone."""
    (tmp_path / "spec" / "my").mkdir(parents=True)
    (tmp_path / "spec" / "protocols").symlink_to(ROOT / "spec" / "protocols")
    return tmp_path / "spec" / "my"


def test_the_guides_spec_checks(spec_dir: Path) -> None:
    spec = spec_dir / "port_filter.yaml"
    spec.write_text(guide_spec(), encoding="utf-8")
    loaded = load_program(spec)
    assert loaded.program.name == "port_filter"
    assert loaded.warnings == []
    summary = "3 parser states, 3 headers, 1 tables, 0 actions"
    assert summary in GUIDE.read_text(encoding="utf-8")
    prog = loaded.program
    assert (len(prog.parser.states), len(prog.tables), len(prog.user_actions)) == (3, 1, 0)


def test_the_guides_error_is_what_c3po_reports(spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spec_dir.parent.parent)
    spec = Path("spec/my/port_filter.yaml")
    spec.write_text(guide_spec().replace("udp.dst_port", "udp.dport"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_program(spec)
    shown = "\n".join(p.format() for p in info.value.problems)
    assert len(info.value.problems) == 1
    assert shown in GUIDE.read_text(encoding="utf-8")
