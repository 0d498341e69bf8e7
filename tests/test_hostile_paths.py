"""Issue 12, class 1: spec file paths reach comments of the generated code, and a hostile one must stay there.

A directory name with `*/`, a newline and `#include </etc/passwd>` once put any code into the kernel program.
Every path (and any other input text that is not a validated identifier) now goes through
`c3po_compiler.text.comment_text`. Here specs are built from directories and files with hostile names for every
target: the outputs compile (the builds run clang, gcc and p4c-bm2-ss), the code outside comments is exactly the
code built from an ordinary directory (so no comment closed early and nothing leaked), and no raw control or
bidi character is anywhere in the files.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c3po_compiler.cli import main
from c3po_compiler.text import ELLIPSIS, MAX_CHARS, comment_text, loc_text
from tests.conftest import ROOT, need_bpf, need_tool

# -- the escaping function ------------------------------------------------------------------------------------------


def unescape(s: str) -> str:
    """The inverse of comment_text for texts of at most MAX_CHARS characters."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(s[i + 2:i + 2 + n], 16)))
            i += 2 + n
        else:
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
            i += 2
    return "".join(out)


def assert_comment_safe(out: str) -> None:
    for bad in ("*/", "/*", "??", "-->", "--!>"):
        assert bad not in out, (bad, out)
    assert all(c.isprintable() for c in out), out
    assert not out.endswith("\\"), out  # a `//` comment ending in a backslash would swallow the next line


@given(st.text())
def test_comment_text_is_safe_for_any_string(s: str) -> None:
    out = comment_text(s)
    assert_comment_safe(out)
    assert len(out) <= 10 * MAX_CHARS + len(ELLIPSIS)
    if len(s) <= MAX_CHARS:
        assert ascii(unescape(out)) == ascii(s)
    else:
        assert ELLIPSIS in out


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-+=,@~ %:()[]{}#&^!;'\"<>$|", max_size=MAX_CHARS))
def test_ordinary_ascii_is_unchanged(s: str) -> None:
    """Only `*/`, `/*`, `??`, `-->`, backslashes and non-printables change; ordinary paths read as they were."""
    if "--" not in s:
        assert comment_text(s) == s
    assert unescape(comment_text(s)) == s


@pytest.mark.parametrize("text, shown", [
    ("spec/examples/router.yaml", "spec/examples/router.yaml"),
    ("a*/\n#include </etc/passwd>\n/*b", "a*\\/\\n#include </etc/passwd>\\n/\\*b"),
    ("\x1b[31m\u202eRLO\u200b", "\\x1b[31m\\u202eRLO\\u200b"),
    ("C:\\dir\\", "C:\\\\dir\\x5c"),
    ("??/ -->x --!> <!--", "?\\?/ --\\>x --!\\> <!--"),
    (os.fsdecode(b"bad\xffbyte"), "bad\\udcffbyte"),
], ids=["plain", "comment_close", "escape_seq", "backslashes", "trigraph_html", "not_utf8"])
def test_comment_text_examples(text: str, shown: str) -> None:
    assert ascii(comment_text(text)) == ascii(shown)  # ascii(): xdist cannot report a raw surrogate


def test_long_text_keeps_both_ends() -> None:
    text = "d" * 1000 + "/router.yaml"
    out = comment_text(text)
    assert len(out) == MAX_CHARS and out.endswith("/router.yaml") and ELLIPSIS in out


def test_loc_text() -> None:
    class Loc:
        file, line = "x*/y.yaml", 7

    assert loc_text(Loc()) == "x*\\/y.yaml:7"
    assert loc_text(None, "prog") == "prog"


# -- building from hostile directories ------------------------------------------------------------------------------

PAYLOAD = "a*/\n#include </etc/passwd>\nint c3po_injected;\n/*b"
HOSTILE = {
    "comment_close": PAYLOAD,
    "escape_seq": "\x1b[31mred\x1b[0m\r\t\x7f\x85x",
    "slashes_quotes": "x//y\\z\"q'`$(id)",
    "bidi": "\u202egnp.\u2066evil\u2069\u200b\u2028\u2029",
    "trigraph_html": "t??/\n-->--!><!--??=",
    "trailing_backslash": "end\\",
    "not_utf8": os.fsdecode(b"bad\xff\xfebytes"),
    "everything": PAYLOAD + "\x1b[31m\u202e\u2066//\\\"'??/-->\\",
}
SPEC_NAME = "evil*\n#error c3po_injected\x1b\u202e??\\.yaml"
TARGETS = ("xdp", "p4", "nic")
SPECS = ["conformance/suite/const_entries.yaml", "conformance/suite/registers.yaml",
         "conformance/suite/counters.yaml", "conformance/suite/optional_groups.yaml",
         "conformance/suite/varlen.yaml", "conformance/suite/tlv.yaml", "spec/examples/router.yaml"]

_C_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*|<!--.*?-->', re.S)


def strip_comments(text: str) -> str:
    """C/P4 and (for the README) HTML comments removed, string and character literals kept."""
    return _C_TOKENS.sub(lambda m: m.group(0) if m.group(0)[0] in "\"'" else " ", text)


def need_target(target: str) -> None:
    if target == "xdp":
        need_bpf()  # clang and the libbpf headers: the build compiles the object
    elif target == "nic":
        need_tool("gcc")  # the build compiles with -std=c99 (trigraphs on) -Wall -Wextra -Werror -pedantic
    else:
        need_tool("p4c-bm2-ss")  # the build runs p4c when it is on PATH


def place(base: Path, spec: str, name: str) -> Path:
    """The spec under `base` as `name`, with the protocol library where its relative includes look."""
    shutil.copytree(ROOT / "spec" / "protocols", base / "spec" / "protocols")
    dest = base / Path(spec).parent / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / spec, dest)
    return dest


def build(spec: Path, target: str, out: Path) -> dict[str, str]:
    assert main(["build", "--target", target, "-o", str(out), str(spec)]) == 0
    texts = {}
    for p in sorted(out.iterdir()):
        if p.suffix in (".c", ".h", ".p4", ".md"):
            texts[p.name] = p.read_text(encoding="utf-8")
    assert texts
    return texts


def check_hostile_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, hostile: str,
                        target: str) -> None:
    need_target(target)
    monkeypatch.chdir(tmp_path)  # paths in comments are as written, relative to here: the payload is not cut off
    try:
        evil = place(Path("h") / hostile / "w", spec, SPEC_NAME)
    except (OSError, UnicodeError) as exc:  # a file system that refuses the name cannot be attacked through it
        pytest.skip(f"the file system refuses the name: {exc}")
    plain = place(Path("plain"), spec, "plain.yaml")
    got = build(evil, target, tmp_path / "out-evil")
    want = build(plain, target, tmp_path / "out-plain")
    assert got.keys() == want.keys()
    shown = comment_text(evil.name if target == "nic" else str(evil.parent))  # nic: names relative to the spec
    for name, text in got.items():
        assert ascii(strip_comments(text)) == ascii(strip_comments(want[name])), name
        for c in text:  # nothing raw: every control, format or bidi character is escaped
            assert c.isprintable() or c in "\n\t", (name, repr(c), unicodedata.name(c, "?"))
        assert "c3po_injected" not in strip_comments(text)
    assert any(shown in text for text in got.values())  # still readable where it came from


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_directory_names(hostile: str, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_hostile_build(tmp_path, monkeypatch, "conformance/suite/const_entries.yaml", HOSTILE[hostile], target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: Path(s).stem)
def test_every_comment_site(spec: str, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Specs with tables, entries, counters, registers, optional groups, variable-length tails and TLV options:
    each kind of node is commented with its spec location somewhere in some target."""
    check_hostile_build(tmp_path, monkeypatch, spec, HOSTILE["everything"], target)
