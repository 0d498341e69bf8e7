"""The protocol library by name (`include: [std/ethernet]`) and the JSON Schemas as package data.

A spec written outside the clone can only reach what the installed package carries: these tests check the names
resolve (with a positioned did-you-mean for a wrong one), that the library and the schemas are one copy shared by
the clone and the package, and, in a fresh virtualenv with a non-editable `pip install` of a clone of this
repository, that a spec in an empty directory checks and builds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c3po_compiler import ir, load_program
from c3po_compiler.cli import main
from c3po_compiler.loader import LIBRARIES, SCHEMA_PATH, VECTORS_SCHEMA_PATH, is_library_name, library_names
from c3po_compiler.problems import SpecError

from .conftest import IN_CI, ROOT, bpf_unavailable_reason

SPEC = """\
c3po: 1
program: outside
include: [std/ethernet, std/ipv4]
parser:
  start: ethernet
  states:
    ethernet:
      extract: ethernet
      select: ethernet.ethertype
      cases: {0x0800: ipv4}
      default: accept
    ipv4:
      extract: ipv4
tables:
  ttl_floor:
    key: {ipv4.ttl: exact}
    actions: [drop, to_host]
    default: to_host
    entries:
      - {match: {ipv4.ttl: 1}, action: drop}
control:
  - if: "valid(ipv4)"
    then: [apply: ttl_floor]
"""


def _write(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_program(path)
    return [p.format() for p in info.value.problems]


def test_library_names_are_the_files_of_spec_protocols() -> None:
    """One copy: the package's std/ is the clone's spec/protocols/, so a fix to either is a fix to both."""
    assert LIBRARIES[1].resolve() == (ROOT / "spec" / "protocols").resolve()
    assert library_names(1) == sorted(f"std/{p.stem}" for p in (ROOT / "spec" / "protocols").glob("*.yaml"))
    assert {"std/ethernet", "std/ipv4", "std/ipv6", "std/tcp", "std/udp"} <= set(library_names(1))
    assert SCHEMA_PATH.resolve() == (ROOT / "schema" / "c3po.schema.json").resolve()
    assert VECTORS_SCHEMA_PATH.resolve() == (ROOT / "schema" / "vectors.schema.json").resolve()


def test_the_schema_offers_every_library_name() -> None:
    """The editor completes `include:` items from the schema's examples: they must be the library's names."""
    include = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["properties"]["include"]
    assert include["items"]["examples"] == library_names(1)


def test_the_reference_lists_every_library_file() -> None:
    """docs/spec-reference.md's library table is how users find a name: a file missing there is missing."""
    text = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(std/[a-z0-9_]+)` \|", text, re.M)
    assert rows == library_names(1)


@pytest.mark.parametrize(("name", "library"), [
    ("std/ethernet", True), ("std/ipv6_ext", True), ("std/nope", True),
    ("std/ethernet.yaml", False), ("std/sub/x", False), ("../protocols/ethernet.yaml", False),
    ("lib/std/ethernet", False), ("ethernet", False),
])
def test_what_counts_as_a_library_name(name: str, library: bool) -> None:
    assert is_library_name(name) is library


def test_std_includes_load_like_relative_ones(tmp_path: Path) -> None:
    by_name = load_program(_write(tmp_path, SPEC)).program
    relative = SPEC.replace("[std/ethernet, std/ipv4]",
                            f"[{ROOT}/spec/protocols/ethernet.yaml, {ROOT}/spec/protocols/ipv4.yaml]")
    by_path = load_program(_write(tmp_path, relative, "relative.yaml")).program
    assert set(by_name.instances) == set(by_path.instances) == {"ethernet", "ipv4"}
    def layout(prog: ir.Program) -> dict[str, list[tuple[str, int]]]:
        return {n: [(f.name, f.width) for f in h.fields] for n, h in prog.header_types.items()}

    assert layout(by_name) == layout(by_path)


def test_a_library_file_and_its_path_are_one_include(tmp_path: Path) -> None:
    """In a clone `std/ethernet` and `spec/protocols/ethernet.yaml` are one file, loaded once (no duplicates)."""
    text = SPEC.replace("[std/ethernet, std/ipv4]", f"[std/ethernet, std/ipv4, {ROOT}/spec/protocols/ethernet.yaml]")
    assert load_program(_write(tmp_path, text)).program.name == "outside"


def test_an_unknown_library_name_is_one_positioned_error_with_did_you_mean(tmp_path: Path) -> None:
    path = _write(tmp_path, SPEC.replace("std/ipv4]", "std/ipv5]"))
    [problem] = _problems(path)
    assert "spec.yaml:3:25: error: unknown protocol library file 'std/ipv5' (at $.include[1])" in problem
    assert "hint: did you mean 'std/ipv6' or 'std/ipv4'" in problem


def test_a_name_nothing_resembles_lists_the_library(tmp_path: Path) -> None:
    [problem] = _problems(_write(tmp_path, SPEC.replace("std/ipv4]", "std/zzz]")))
    assert "unknown protocol library file 'std/zzz'" in problem
    assert "std/arp, std/ethernet" in problem and "relative to this file" in problem


def test_a_library_name_written_as_a_path_gets_the_name_as_hint(tmp_path: Path) -> None:
    [problem] = _problems(_write(tmp_path, SPEC.replace("std/ipv4]", "protocols/ipv4.yaml]")))
    assert "spec.yaml:3:25: error: included spec file not found: " in problem
    assert "'std/ipv4'" in problem


def test_a_user_directory_named_std_stays_reachable_by_path(tmp_path: Path) -> None:
    (tmp_path / "std").mkdir()
    _write(tmp_path / "std", "c3po: 1\nheaders:\n  shim: {fields: {tag: 16, ethertype: 16}}\n", "shim.yaml")
    text = SPEC.replace("[std/ethernet, std/ipv4]", "[std/ethernet, std/ipv4, std/shim.yaml]")
    assert "shim" in load_program(_write(tmp_path, text)).program.header_types


def test_a_wrong_language_version_is_reported_once(tmp_path: Path) -> None:
    """`c3po: 2` is the schema's error; the library of an unknown version is not a second one."""
    problems = _problems(_write(tmp_path, SPEC.replace("c3po: 1", "c3po: 2")))
    assert len(problems) == 1 and "'c3po'" not in problems[0] and ":1:7:" in problems[0], problems


@pytest.mark.parametrize(("flag", "expected"), [([], SCHEMA_PATH), (["--vectors"], VECTORS_SCHEMA_PATH),
                                                (["--library"], LIBRARIES[1])])
def test_c3po_schema_prints_the_installed_path(capsys: pytest.CaptureFixture[str], flag: list[str],
                                               expected: Path) -> None:
    assert main(["schema", *flag]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == expected and printed.exists()
    if not flag:
        assert json.loads(printed.read_text(encoding="utf-8"))["title"]


# -- a fresh virtualenv, a non-editable install of a clone ---------------------------------------------------


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_pip_install_of_a_clone_checks_and_builds_a_spec_in_an_empty_directory(tmp_path: Path) -> None:
    """What a new user does: `pip install <clone>` into a fresh virtualenv, then a spec of their own.

    The clone is of the committed HEAD (what CI tests). The new virtualenv borrows this one's dependencies through a
    .pth line (`--no-deps`: no PyPI download of them; only the build backend, setuptools>=77, comes from PyPI or
    pip's cache, in pip's isolated build), but c3po itself is a wheel built from the clone, so the library and
    schemas it finds are the installed package data, never this checkout's. About 11 s.
    """
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        if IN_CI:
            pytest.fail("CI=true and this is not a git checkout with git installed")
        pytest.skip("needs a git checkout and git")
    started = time.monotonic()
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", str(ROOT), str(clone)], tmp_path, dict(os.environ))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, dict(os.environ)).stdout.strip())
    ours = Path(_run([sys.executable, "-c", "import jsonschema, os; print(os.path.dirname(os.path.dirname("
                                            "jsonschema.__file__)))"], tmp_path, dict(os.environ)).stdout.strip())
    (site / "zz_dependencies.pth").write_text(f"{ours}\n", encoding="utf-8")  # after the venv's own packages
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(clone)],
         tmp_path, env, timeout=300)
    installed = Path(_run([str(python), "-c", "import c3po_compiler; print(c3po_compiler.__file__)"],
                          tmp_path, env).stdout.strip())
    assert installed.is_relative_to(site) and not installed.is_symlink(), installed

    work = tmp_path / "empty"
    work.mkdir()
    _write(work, SPEC)
    c3po = str(venv / "bin" / "c3po")
    assert "ok — program 'outside'" in _run([c3po, "check", "spec.yaml"], work, env).stdout
    for flag, name in (([], "c3po.schema.json"), (["--vectors"], "vectors.schema.json"), (["--library"], "std")):
        printed = Path(_run([c3po, "schema", *flag], work, env).stdout.strip())
        assert printed.is_relative_to(site / "c3po_compiler") and printed.name == name and printed.exists()
        assert not printed.is_symlink(), "the package must carry the files, not a link back into the clone"
    # the installed schema is used: a misspelt key is the schema's error, with its did-you-mean
    _write(work, SPEC.replace("    ipv4:\n      extract: ipv4", "    ipv4:\n      extrct: ipv4"), "typo.yaml")
    typo = subprocess.run([c3po, "check", "typo.yaml"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert typo.returncode == 1 and "unknown key 'extrct'" in typo.stderr and "did you mean 'extract'" in typo.stderr

    targets = ["nic"] + ([] if bpf_unavailable_reason() else ["xdp"])
    for target in targets:
        out = _run([c3po, "build", "spec.yaml", "--target", target, "-o", f"out/{target}"], work, env)
        assert f"{target}: wrote" in out.stdout
    assert (work / "out" / "nic" / "outside.c").exists()
    if shutil.which("gcc"):
        assert (work / "out" / "nic" / "outside.o").exists()
    if "xdp" in targets:
        assert (work / "out" / "xdp" / "outside.bpf.o").exists()
    # the conformance command comes from the installed entry points too
    run = _run([c3po, "conformance", "run", "spec.yaml", "--targets", "ref,nic", "--gen"], work, env)
    assert "nic" in run.stdout
    assert time.monotonic() - started < 90, f"the install test took {time.monotonic() - started:.0f} s"
