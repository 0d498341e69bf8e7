#!/usr/bin/env python3
"""The long hostile-input campaign of issue 12: seeded mutants of every spec and vector file, run through the
code paths the `c3po` command runs, each judged the way a user would judge the command.

Why a script and not only the property tests: CI runs the hypothesis tests at a few hundred examples; this runs
the same kinds of mutation by the hundred thousand, once, with per-mutant isolation (a worker process that a
hang or a runaway allocation can be killed in), per-mutant time and memory, and reproducer files for anything
that goes wrong. `docs/robustness.md` has the figures of the run that was made.

Mutants (every one a function of `--seed` and its index alone, so any one can be made again with `--only`):

* `spec-structure`: a spec of `spec/examples/` or `conformance/suite/`, or one of the `spec/protocols/` files it
  includes, parsed, changed 1-3 times (keys deleted, renamed or added; values swapped, widened, renamed, made
  junk, deeply nested, control characters; expressions edited, nested past the limit) and written back;
* `spec-text`: the same files damaged as text (tokens, control characters, deletions, duplications, truncation,
  numbers out of range, re-indentation, repeated lines);
* `vectors-yaml-structure` / `-text` and `vectors-jsonl-structure` / `-text`: the suite's YAML vector files and
  vector files written by `c3po conformance gen` (YAML and JSON Lines) for a few specs, mutated the same ways.

A spec mutant runs `c3po check SPEC`; a vector mutant `c3po conformance run SPEC --vectors FILE --targets ref -q`
(argument parsing, the command function, the runner, the reports) with the reference driver in the worker's own
process instead of a child per target (a second per run saved; the driver code is the same). Outcomes:

* `accepted`: exit 0 (for vectors: the file loaded and the reference ran it, whether its vectors passed or not);
* `rejected`: exit 1 with the project's own error (spec problems, or one `c3po conformance:` line);
* `internal`: any other exception, which the CLI would turn into exit 70; `memory`: a MemoryError under the
  worker's address-space limit; `hang`: more than `--timeout` seconds.

For each mutant also: wall time; peak RSS (VmHWM, reset before each mutant through /proc/self/clear_refs); the
printed output has no non-printable character (no forged line, no escape sequence); every `error:` line of a spec
is followed by its hint; a rejected vector file is one line; the reference never reports an ERROR outcome that
is a Python exception. Anything else than a clean outcome is a finding, saved under `<out>.reproducers/`.

    .venv/bin/python scripts/fuzz_campaign.py --count 100000 --seed 1 --out campaign.json
    .venv/bin/python scripts/fuzz_campaign.py --seed 1 --only 4711      # one mutant again, in this process

SIGUSR1 pauses the campaign between mutants (SIGUSR2 resumes it): for sharing the machine without a pause
being counted as a hang.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent.parent
# What a snapshot holds: the code under test and the specs, as of one commit (see `snapshot`).
TREE_PARTS = ["c3po_compiler", "conformance", "dataplane", "targets", "spec", "schema"]
# Specs whose generated vectors (YAML and JSON Lines) join the suite's hand-written vector files.
GENERATED_FOR = ["registers", "match_exact", "match_ternary", "table_counters", "tlv", "header_stack",
                 "counters", "const_entries"]
KINDS = {  # kind -> share of the campaign
    "spec-structure": 30, "spec-text": 25, "vectors-yaml-structure": 10, "vectors-yaml-text": 12,
    "vectors-jsonl-structure": 11, "vectors-jsonl-text": 12,
}
PROBLEM_LINE = re.compile(r"^.+:\d+:\d+: (error|warning): .+ \(at \$.*\)$")
HINT_LINE = re.compile(r"^    hint: .+$")
SUMMARY_LINE = re.compile(r"^.+: \d+ errors?$")
MAX_FINDINGS_LISTED = 50

# -- the corpus ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One file mutants are made from: `rel` inside the work tree (a copy of spec/ and conformance/suite/),
    `spec` the spec it is checked through (itself, or the spec that includes it, or the one its vectors are for)."""

    rel: str
    spec: str
    text: str


@dataclass
class Corpus:
    specs: list[Source]
    yaml_vectors: list[Source]
    jsonl_vectors: list[Source]


def head_commit() -> str | None:
    """The commit a campaign runs against; None outside a git checkout (the files as they are are used)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=30)
        return proc.stdout.strip()
    return None


def snapshot(commit: str | None, dest: Path) -> Path:
    """The code and specs of `commit` extracted to `dest`: others commit in the same checkout while a campaign
    runs for half an hour, and every worker (one started late included) must test the same code with the same
    corpus. A worker imports c3po from its snapshot and writes its spec mutants into it (the protocol library,
    `c3po_compiler/std`, is a link to its `spec/protocols`). Without a commit, the checkout's files are copied."""
    dest.mkdir(parents=True, exist_ok=True)
    if commit is None:
        for part in TREE_PARTS:
            if (ROOT / part).is_dir():
                shutil.copytree(ROOT / part, dest / part, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
        return dest
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", commit], capture_output=True,
                            text=True, check=True, timeout=60).stdout.split()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit,
                              *[p for p in TREE_PARTS if p in listed]], capture_output=True, check=True,
                             timeout=300).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def spec_files(tree: Path) -> list[Path]:
    suite = tree / "conformance" / "suite"
    return sorted((tree / "spec" / "examples").glob("*.yaml")) + sorted(
        p for p in suite.glob("*.yaml") if not p.name.endswith(".vectors.yaml"))


def _includes(spec: Path, tree: Path) -> list[Path]:
    """The files a spec includes: paths relative to it, and `std/NAME` in the protocol library."""
    doc = yaml.safe_load(spec.read_text(encoding="utf-8"))
    out = []
    for inc in doc.get("include") or []:
        if isinstance(inc, str):
            path = tree / "spec" / "protocols" / f"{inc[4:]}.yaml" if inc.startswith("std/") and "/" not in inc[
                4:] else spec.parent / inc
            if path.is_file():
                out.append(path.resolve())
    return out


def build_corpus(tree: Path) -> Corpus:
    """The files mutants are made from, out of a snapshot (`tree`), and vector files generated into tree/gen/
    with the snapshot's own code (imported from it: the caller put it first on sys.path)."""
    tree = tree.resolve()
    suite = tree / "conformance" / "suite"
    specs: list[Source] = []
    for spec in spec_files(tree):
        rel_spec = str(spec.relative_to(tree))
        specs.append(Source(rel_spec, rel_spec, spec.read_text(encoding="utf-8")))
        for inc in _includes(spec, tree):  # each include once per spec that includes it, checked through that spec
            specs.append(Source(str(inc.relative_to(tree)), rel_spec, inc.read_text(encoding="utf-8")))
    yaml_vectors = [Source(str(p.relative_to(tree)), str(p.with_name(p.name.replace(".vectors", "")).relative_to(tree)),
                           p.read_text(encoding="utf-8")) for p in sorted(suite.glob("*.vectors.yaml"))]
    from c3po_compiler import load_program
    from conformance.generate import generate
    from conformance.vector_io import save_vectors

    jsonl: list[Source] = []
    (tree / "gen").mkdir(exist_ok=True)
    for name in GENERATED_FOR:
        spec = suite / f"{name}.yaml"
        prog = load_program(spec).program
        vectors = generate(prog, seed=0).vectors
        for suffix, bucket in ((".vectors.yaml", yaml_vectors), (".jsonl", jsonl)):
            out = tree / "gen" / f"{name}{suffix}"
            save_vectors(out, vectors, prog, str(spec))
            bucket.append(Source(f"gen/{out.name}", str(spec.relative_to(tree)), out.read_text(encoding="utf-8")))
    return Corpus(specs, yaml_vectors, jsonl)


# -- mutations ----------------------------------------------------------------------------------------------------

CONTROL = ["\x1b[31m", "\x1b]0;owned\x07", "\n", "\r", "\x00", "\u202e", "\u2066", "\u2028", "\u2029", "\x85",
           "\x9b", "\x7f", "\t", "\u200b", "\x1b[2K\rfake.yaml:1:1: error: forged", "\ufeff", "\ud800"]
TOKENS = ["*a", "&a ", "[", "]", "{", "}", "- ", ": ", '"', "'", "\t", "\x00", "\xff", "\xe9", "99999999999999999999999",
          "-1", "null", "true", "word", "0x", "0b_", "0x_", "1.5", "~", "!!python/tuple", "!!binary", "!!set",
          "1" * 5000, "\n", "\n  ", ", ", "#", "?", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "<<: *a\n",
          "table", "index", "port", "priority", "registers", "entries", "defaults", "args", "tags", "include",
          "extract", "select", "cases", "next", "width", "size", "key", "apply", "if", "then", "else",
          "65536", "0", "&&&", "..", "/", "()", "\xef\xbb\xbf", "ipv4", "ethernet", "meta.x", "valid(", "(" * 400,
          "[" * 300, "{" * 300, "&& true " * 300, "/proc/self/status", "/dev/zero", "../" * 50, "a\x00b.yaml",
          "x" * 300, *CONTROL]
JUNK: list[Any] = [None, True, False, 0, -1, 129, 1 << 70, 10**400, 2**31, 2**32, 2**64, 1.5, float("inf"), "", "x",
                   "Bad Name", "__x", "ipv4.", "(bit<8>", "0x", "0b_", "a: b", [], {}, [1, "two"], {"k": None},
                   "10.0.0.1/33", "ff::1::2", "02:00:00:00:00:01", "1 .. 0", "1 &&& 0", "x" * 5000, "/dev/zero",
                   "/proc/kmsg", "../" * 40 + "etc/passwd", "a\x00b", "9" * 5000, *CONTROL]
NAMES = ["ipv4", "ethernet", "ipv6", "tcp", "udp", "accept", "reject", "drop", "nop", "forward", "meta.x",
         "ipv4.ttl", "std.ingress_port", "vlan[7].vid", "type", "switch", "hash", "c3po_x", "unknown", "main",
         "int", "forward(1)", "set_port", "count", "seen", "hits", "t", "routes_v4"]
EXPR_EDITS = ["{}x", "{} + 1", "({} == 1)", "!{}", "~{}", "{}[3:0]", "{}[200:0]", "(bit<4>) {}", "(bit<0>) {}",
              "{}.last", "{}[9]", "{}[0]", "valid({})", "lookahead(8)", "hash(crc32, {})", "{} && true", "{}, 1",
              "meta.{}", "std.{}", "{}(1)", "{} = 1", "0x1ffffffffffffffffffffffffffffffff", "::1", "{}..",
              "present({}.g)", "{} << 200", "-{}", "1.2.3.4", "aa:bb:cc:dd:ee:ff", "(" * 100 + "{}" + ")" * 100,
              " && ".join(["{}"] * 200), "{}" + "[7:0]" * 100, "~" * 300 + "{}", "{}[", "{}(", "{} ? 1 : 2",
              "{} << 458689410100", "1 << 10**12"]
NUMBERS = [0, 1, 3, 7, 8, 9, 33, 64, 65, 128, 129, 255, 256, 1024, 1025, 65535, 65536, 2**20, 2**20 + 1, 2**31 - 1,
           2**31, 2**32, 2**63, 2**64, 2**128, -1, -(2**63)]

Path_ = tuple[Any, ...]


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _get(node: Any, path: Path_) -> Any:
    for p in path:
        node = node[p]
    return node


def _put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def mutate_structure(rng: random.Random, doc: Any) -> Any:
    """1-3 edits of a parsed document; the ideas of tests/test_frontend_properties.py, and a few hostile ones
    (deep nesting, huge numbers, control characters, expressions past the limits)."""
    for _ in range(rng.randint(1, 3)):
        all_paths = list(_paths(doc))
        path = rng.choice(all_paths)
        value = _get(doc, path)
        op = rng.choice(["delete", "swap", "number", "rename", "rename_key", "expr", "expr", "junk", "add_key",
                         "control", "nest", "duplicate", "type"])
        if op == "delete" and path:
            del _get(doc, path[:-1])[path[-1]]
        elif op == "swap":
            doc = _put(doc, path, copy.deepcopy(_get(doc, rng.choice(all_paths))))
        elif op == "number" and isinstance(value, int) and not isinstance(value, bool):
            doc = _put(doc, path, rng.choice([*NUMBERS, value + 1, value * 2, -value, value << 40]))
        elif op == "rename" and isinstance(value, str):
            doc = _put(doc, path, rng.choice([value + "x", value[:-1], value.upper(), value * 50, *NAMES]))
        elif op == "expr" and isinstance(value, str):
            words = re.findall(r"[a-z_][a-z0-9_.]*", value) or [value]
            word = rng.choice(words)
            doc = _put(doc, path, value.replace(word, rng.choice(EXPR_EDITS).replace("{}", word), 1))
        elif op == "junk":
            doc = _put(doc, path, copy.deepcopy(rng.choice(JUNK)))
        elif op == "rename_key" and isinstance(value, dict) and value:
            old = rng.choice(list(value))
            new = rng.choice([*NAMES, "goto", "meta", "a__b", "x" * 300, f"{old}x", 7, None, True, *CONTROL])
            doc = _put(doc, path, {(new if k == old else k): v for k, v in value.items()})
        elif op == "add_key" and isinstance(value, dict):
            key = rng.choice(["extra", "Bad", "ipv4", "default", "c3po", "include", "program", "priority",
                              "registers", "entries", "name", 1, None])
            value[key] = copy.deepcopy(rng.choice(JUNK))
        elif op == "control" and isinstance(value, str):
            at = rng.randint(0, len(value))
            doc = _put(doc, path, value[:at] + rng.choice(CONTROL) + value[at:])
        elif op == "nest":
            for _ in range(rng.choice([2, 10, 63, 64, 65, 200])):
                value = [value] if rng.random() < 0.5 else {"k": value}
            doc = _put(doc, path, value)
        elif op == "duplicate" and isinstance(value, list) and value:
            value.extend(copy.deepcopy(value[rng.randrange(len(value))]) for _ in range(rng.choice([1, 2, 100])))
        elif op == "type":
            doc = _put(doc, path, rng.choice([[value], {"v": value}, str(value), None]))
    return doc


def mutate_text(rng: random.Random, text: str) -> bytes:
    """1-4 edits of a file as text, then as bytes: what structure-aware mutation cannot make (broken syntax,
    truncation, encodings, indentation)."""
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(text))
        op = rng.choice(["insert", "insert", "delete", "replace", "duplicate", "number", "truncate", "indent",
                         "repeat_line", "swap_lines"])
        if op == "insert":
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + rng.randint(1, 40):]
        elif op == "replace":
            text = text[:at] + rng.choice(TOKENS) + text[at + rng.randint(1, 8):]
        elif op == "duplicate":
            text = text[:at] + text[at:at + rng.randint(1, 200)] + text[at:]
        elif op == "number":
            digits = [m.start() for m in re.finditer(r"\d+", text)]
            if digits:
                i = rng.choice(digits)
                end = re.match(r"\d+", text[i:])
                n = end.end() if end else 1
                text = text[:i] + str(rng.choice(NUMBERS)) + text[i + n:]
        elif op == "truncate":
            text = text[:at]
        else:
            lines = text.splitlines(keepends=True)
            if not lines:
                continue
            i = rng.randrange(len(lines))
            if op == "indent":
                lines[i:i + 3] = [rng.choice(["  ", "\t", " "]) + ln for ln in lines[i:i + 3]]
            elif op == "repeat_line":
                lines[i:i] = [lines[i]] * rng.choice([2, 10, 1000])
            else:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    data = text.encode("utf-8", "surrogatepass")
    encoding = rng.random()
    if encoding < 0.01:
        return text.encode("utf-16", "surrogatepass")
    if encoding < 0.02:
        return text.encode("latin-1", "replace")
    return data


@dataclass(frozen=True)
class Mutant:
    index: int
    kind: str
    source: Source
    data: bytes

    @property
    def suffix(self) -> str:
        return ".jsonl" if self.source.rel.endswith(".jsonl") else ".yaml"


def make_mutant(corpus: Corpus, seed: int, index: int) -> Mutant:
    """Mutant `index` of campaign `seed`: a function of the two alone (string seeding of `random` is stable
    across runs and Python versions), so a finding is reproduced by its index."""
    rng = random.Random(f"c3po-campaign:{seed}:{index}")
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    pool = corpus.specs if kind.startswith("spec") else (
        corpus.yaml_vectors if kind.startswith("vectors-yaml") else corpus.jsonl_vectors)
    if kind.startswith("spec"):  # a spec, then itself (3 in 5) or one of the files it includes
        top = rng.choice([s for s in pool if s.rel == s.spec])
        included = [s for s in pool if s.spec == top.spec and s.rel != s.spec]
        source = top if not included or rng.random() < 0.6 else rng.choice(included)
    else:
        source = rng.choice(pool)
    if kind.endswith("text"):
        return Mutant(index, kind, source, mutate_text(rng, source.text))
    if kind == "vectors-jsonl-structure":
        lines = source.text.splitlines()
        i = rng.randrange(len(lines))
        doc = mutate_structure(rng, json.loads(lines[i]))
        lines[i] = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
        return Mutant(index, kind, source, ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    doc = mutate_structure(rng, yaml.safe_load(source.text))
    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=rng.random() < 0.5, width=rng.choice([80, 10**6]))
    except (yaml.YAMLError, RecursionError, ValueError):  # a key PyYAML cannot write: that document as JSON
        text = json.dumps(doc, default=str)
    return Mutant(index, kind, source, text.encode("utf-8", "surrogatepass"))


# -- running one mutant (in a worker) ---------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by SIGALRM in a worker when a mutant takes longer than the timeout."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang


def _vm(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), 0 where there is no /proc."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Make VmHWM (peak RSS) start again from the current RSS (Linux: `5` to /proc/PID/clear_refs)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


_load_cached: Callable[[str], Any] | None = None


class Runner:
    """What a worker holds: the work tree, the CLI's argument parser, and the patches that run the reference
    in this process."""

    def __init__(self, work: Path, corpus: Corpus, repro: Path) -> None:
        import functools

        from c3po_compiler import cli, load_program
        from conformance import cli as conformance_cli
        from conformance import runner

        self.work, self.corpus, self.repro = work, corpus, repro
        self.last_output = ("", "")
        self.parser = cli.build_parser(cli._command_plugins())
        global _load_cached
        # the vector mutants' specs are the snapshot's, unchanged (a spec mutant is restored before the next one)
        _load_cached = functools.cache(load_program)
        self._patches: list[Any] = [
            mock.patch.object(conformance_cli, "load_program", _load_cached),
            mock.patch.object(runner, "load_program", _load_cached),
            mock.patch.object(runner, "TargetSession", InProcessSession),
            # once per run, it scans the temporary directory: nothing of ours to sweep
            mock.patch.object(runner, "sweep_stale", lambda *a, **k: []),
        ]
        for patch in self._patches:
            patch.start()
        self._alarm = signal.signal(signal.SIGALRM, _on_alarm)  # the per-mutant timeout raises Hang

    def close(self) -> None:
        """Undo the patches and the alarm handler (a test runs a Runner inside its own process)."""
        signal.signal(signal.SIGALRM, self._alarm)
        for patch in reversed(self._patches):
            patch.stop()

    def argv(self, m: Mutant) -> tuple[list[str], Path]:
        if m.kind.startswith("spec"):
            return ["check", str(self.work / m.source.spec)], self.work / m.source.rel
        path = self.work / f"mutant{'.vectors' if m.suffix == '.yaml' else ''}{m.suffix}"
        return (["conformance", "run", str(self.work / m.source.spec), "--vectors", str(path), "--targets", "ref",
                 "-q"], path)

    def run(self, m: Mutant, timeout: float) -> dict[str, Any]:
        argv, path = self.argv(m)
        path.write_bytes(m.data)
        out, err = io.StringIO(), io.StringIO()
        problem = None
        code: int | None = None
        _reset_peak()
        before = _vm("VmRSS")
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                args = self.parser.parse_args(argv)
                code = args.func(args)
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome = {0: "accepted", 1: "rejected"}.get(code, "internal")
            if outcome == "internal":
                problem = f"exit status {code}"
        except Hang:
            outcome, problem = "hang", f"more than {timeout:g} s"
        except MemoryError:
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome, problem = "memory", traceback.format_exc(limit=-8)
        except BaseException:  # SystemExit from argparse too
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome, problem = "internal", traceback.format_exc(limit=-12)
        seconds = time.monotonic() - t0
        if m.kind.startswith("spec"):
            path.write_text(m.source.text, encoding="utf-8")  # the work tree as it was, for the next mutant
        result: dict[str, Any] = {"index": m.index, "kind": m.kind, "outcome": outcome, "seconds": seconds,
                                  "peak_kib": _vm("VmHWM"), "rss_before_kib": before, "code": code}
        self.last_output = out.getvalue(), err.getvalue()
        if m.kind.startswith("vectors") and outcome == "rejected" and not self.last_output[1].startswith(
                "c3po conformance: "):
            outcome = "accepted"  # exit 1 without an error line: the file loaded and ran, and a vector failed
        result["outcome"] = outcome
        result["findings"] = self.judge(m, outcome, *self.last_output)
        if problem is not None:
            result["findings"].insert(0, f"{outcome}: {problem}")
        if result["findings"]:
            result["reproducer"] = str(save_reproducer(self.repro, m, argv, result["findings"]))
        # interrupted anywhere (a lock held, a cache half filled) or near its memory cap: a fresh worker next
        result["restart"] = outcome in ("hang", "memory")
        return result

    def judge(self, m: Mutant, outcome: str, out: str, err: str) -> list[str]:
        """What the output must be, whatever the input: printable lines only; a spec's errors each with a hint
        and nothing but problem, hint and summary lines; a vector file's rejection one line."""
        found: list[str] = []
        for line in (out + "\n" + err).split("\n"):
            if not line.isprintable():
                found.append(f"unsafe output line: {line[:300]!r}")
                break
        lines = err.splitlines()
        if m.kind.startswith("spec") and outcome == "rejected":
            for i, line in enumerate(lines):
                if PROBLEM_LINE.match(line):
                    if ": error: " in line and not (i + 1 < len(lines) and HINT_LINE.match(lines[i + 1])):
                        found.append(f"error without a hint: {line[:300]!r}")
                elif not (HINT_LINE.match(line) or SUMMARY_LINE.match(line)):
                    found.append(f"unexpected output line: {line[:300]!r}")
        if (m.kind.startswith("vectors") and outcome == "rejected" and lines
                and lines[0].startswith("c3po conformance: ") and len(lines) != 1):
            found.append(f"a rejected vector file took {len(lines)} lines: {err[:300]!r}")
        if m.kind.startswith("vectors") and outcome in ("accepted", "rejected"):
            found += [f"reference ERROR: {line.strip()[:300]!r}" for line in out.splitlines()
                      if re.match(r"\s+(?:packet \d+: )?[A-Z][A-Za-z]*(Error|Exception): ", line)
                      and "VectorFormatError" not in line][:1]
        return found


class InProcessSession:
    """`runner.TargetSession` without the worker process: the driver's calls answered as `runner._serve` answers
    them (an exception becomes an ("error", ...) reply, exactly as the worker would send it)."""

    def __init__(self, target: str, spec: str, workdir: str, timeout: float, stopper: Any = None) -> None:
        from conformance.runner import make_driver

        self.driver = make_driver(target, timeout)
        self.spec, self.workdir = spec, workdir

    def start(self) -> None:
        assert _load_cached is not None
        self.driver.open(_load_cached(self.spec).program, Path(self.workdir))

    def install(self, control: Any) -> tuple[str, Any]:
        return self.call(("install", control), 0.0)

    def call(self, msg: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
        from conformance.subprocess_driver import NotApplicable

        try:
            if msg[0] == "install":
                self.driver.install(msg[1])
                return ("ok", None)
            if msg[0] == "run":
                return ("ok", self.driver.run(msg[1], msg[2]))
            return ("ok", self.driver.run_batch(msg[1]))
        except NotApplicable as exc:
            return ("na", str(exc))
        except Exception as exc:  # as the worker does: the vector's ERROR
            return ("error", f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self.driver.close()


def save_reproducer(directory: Path, m: Mutant, argv: list[str], findings: list[str]) -> Path:
    """The mutant's bytes, named by index and kind, and beside it what was run and found."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{m.index:07d}-{m.kind}{m.suffix}"
    path.write_bytes(m.data)
    note = {"index": m.index, "kind": m.kind, "replaces": m.source.rel, "spec": m.source.spec,
            "command": ["c3po", *argv], "findings": findings}
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(note, indent=1) + "\n", encoding="utf-8")
    return path


# -- workers ------------------------------------------------------------------------------------------------------


def _worker(conn: Connection, seed: int, timeout: float, memory_mib: int, repro: str, commit: str | None) -> None:
    """One worker: its own snapshot (code, specs, corpus); answers an index with that mutant's result, until told
    to stop. Its address space is capped so a runaway allocation is a MemoryError here, not the machine's
    problem."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    with tempfile.TemporaryDirectory(prefix="c3po-campaign-") as tmp:
        work = snapshot(commit, Path(tmp))
        sys.path.insert(0, str(work))  # c3po as of the snapshot, not as the shared checkout has it now
        corpus = build_corpus(work)
        if memory_mib:
            limit = memory_mib << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        runner = Runner(work, corpus, Path(repro))
        conn.send(("ready", None))
        while True:
            try:
                index = conn.recv()
            except (EOFError, OSError):
                return
            if index is None:
                return
            conn.send(("done", runner.run(make_mutant(corpus, seed, index), timeout)))


@dataclass
class Worker:
    proc: Any
    conn: Connection
    index: int | None = None
    started: float = 0.0
    served: int = 0


class Campaign:
    """The parent: hands out indexes, times every mutant from outside (a hang in C code, where SIGALRM cannot
    reach Python, is caught here and the worker killed), and keeps the figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.repro = self.out.with_name(self.out.stem + ".reproducers")
        self.ctx = mp.get_context("spawn")
        self.by_kind: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        self.findings: list[dict[str, Any]] = []
        self.finding_count = 0
        self.done = 0
        self.max_seconds: dict[str, Any] = {"seconds": 0.0}
        self.max_peak: dict[str, Any] = {"peak_kib": 0}
        self.max_growth: dict[str, Any] = {"growth_kib": 0}
        self.total_seconds = 0.0
        self.slow = 0  # mutants over 1 s
        self.paused = False
        self.t0 = time.monotonic()
        self._corpus: Corpus | None = None
        self._work = Path(tempfile.mkdtemp(prefix="c3po-campaign-parent-"))
        self.commit = None if args.working_tree else (args.commit or head_commit())

    def corpus(self) -> Corpus:
        """The corpus again, in this process (to make a hung mutant's bytes): from a snapshot of its own."""
        if self._corpus is None:
            tree = snapshot(self.commit, self._work)
            sys.path.insert(0, str(tree))
            self._corpus = build_corpus(tree)
        return self._corpus

    def spawn(self) -> Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.args.seed, self.args.timeout,
                                                      self.args.memory_limit, str(self.repro), self.commit),
                                daemon=True)
        proc.start()
        child.close()
        if not parent.poll(120):
            raise RuntimeError("a worker did not start within 120 s")
        parent.recv()
        return Worker(proc, parent)

    def retire(self, w: Worker) -> None:
        """An idle worker told to stop (it removes its work tree), killed only if it does not."""
        with contextlib.suppress(OSError):
            w.conn.send(None)
        w.proc.join(10)
        self.kill(w)

    def kill(self, w: Worker) -> None:
        with contextlib.suppress(Exception):
            w.proc.kill()
            w.proc.join(5)
        w.conn.close()

    def record(self, r: dict[str, Any]) -> None:
        self.done += 1
        counts = self.by_kind[r["kind"]]
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        self.total_seconds += r["seconds"]
        self.slow += r["seconds"] > 1.0
        if r["seconds"] > self.max_seconds["seconds"]:
            self.max_seconds = {k: r[k] for k in ("seconds", "index", "kind", "outcome")}
        if r.get("peak_kib", 0) > self.max_peak["peak_kib"]:
            self.max_peak = {k: r[k] for k in ("peak_kib", "index", "kind", "outcome")}
        growth = r.get("peak_kib", 0) - r.get("rss_before_kib", 0)
        if growth > self.max_growth["growth_kib"]:
            self.max_growth = {"growth_kib": growth, **{k: r[k] for k in ("index", "kind", "outcome")}}
        if r["findings"]:
            self.finding_count += 1
            if len(self.findings) < MAX_FINDINGS_LISTED:
                self.findings.append({k: r.get(k) for k in ("index", "kind", "outcome", "findings", "reproducer")})

    def hang(self, w: Worker) -> None:
        """A worker that did not answer in time: the mutant is a hang; its bytes are made again here."""
        assert w.index is not None
        m = make_mutant(self.corpus(), self.args.seed, w.index)
        seconds = time.monotonic() - w.started
        self.kill(w)
        problem = f"hang: no answer within {seconds:.1f} s (the worker was killed)"
        path = save_reproducer(self.repro, m, ["(see the kind and the replaced file)"], [problem])
        self.record({"index": m.index, "kind": m.kind, "outcome": "hang", "seconds": seconds, "peak_kib": 0,
                     "rss_before_kib": 0, "findings": [problem], "reproducer": str(path)})

    def report(self, final: bool) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for counts in self.by_kind.values():
            for k, n in counts.items():
                outcomes[k] = outcomes.get(k, 0) + n
        return {
            "format": "c3po-fuzz-campaign", "finished": final, "commit": self.commit or "(working tree)",
            "seed": self.args.seed, "count": self.args.count,
            "mutants": self.done, "timeout_seconds": self.args.timeout, "jobs": self.args.jobs,
            "worker_memory_limit_mib": self.args.memory_limit, "elapsed_seconds": round(time.monotonic() - self.t0, 1),
            "mean_seconds": round(self.total_seconds / max(1, self.done), 4), "over_1s": self.slow,
            "outcomes": outcomes, "by_kind": self.by_kind,
            "max_seconds": {**self.max_seconds, "seconds": round(self.max_seconds["seconds"], 3)},
            # a worker's peak RSS while it ran one mutant (the mutant's own bytes included), and the most one
            # mutant added to the RSS the worker had before it: what c3po itself allocated for that input
            "max_peak_rss": self.max_peak, "max_growth_in_one_mutant": self.max_growth,
            "parent_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "findings": self.finding_count, "findings_listed": self.findings,
            "reproducers": str(self.repro),
        }

    def write(self, final: bool) -> dict[str, Any]:
        rep = self.report(final)
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        tmp.write_text(json.dumps(rep, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.out)
        return rep

    def progress(self, force: bool = False) -> None:
        rate = self.done / max(1e-9, time.monotonic() - self.t0)
        totals = self.report(False)["outcomes"]
        line = (f"[{self.done}/{self.args.count}] {rate:.0f}/s " + " ".join(f"{k} {n}" for k, n in sorted(
            totals.items())) + f" findings {self.finding_count}" + (" (paused)" if self.paused else ""))
        if sys.stderr.isatty():
            print("\r" + line, end="\n" if force else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def run(self) -> dict[str, Any]:
        signal.signal(signal.SIGUSR1, lambda *_: setattr(self, "paused", True))
        signal.signal(signal.SIGUSR2, lambda *_: setattr(self, "paused", False))
        todo = iter(range(self.args.start, self.args.start + self.args.count))
        workers = [self.spawn() for _ in range(self.args.jobs)]
        limit = self.args.timeout + 5.0  # the worker's own alarm reports first; this is the backstop
        last_line = last_write = time.monotonic()
        exhausted = False
        try:
            while True:
                for i, w in enumerate(workers):
                    if w.index is None and not exhausted and not self.paused:
                        if w.served >= self.args.recycle:
                            self.retire(w)
                            w = workers[i] = self.spawn()
                        nxt = next(todo, None)
                        if nxt is None:
                            exhausted = True
                            continue
                        w.index, w.started = nxt, time.monotonic()
                        w.conn.send(nxt)
                busy = [w for w in workers if w.index is not None]
                if not busy:
                    if exhausted:
                        break
                    time.sleep(0.2)  # paused
                    continue
                for conn in wait([w.conn for w in busy], timeout=0.5):
                    w = next(w for w in busy if w.conn is conn)
                    try:
                        _, result = w.conn.recv()
                    except (EOFError, OSError):  # the worker died: as a hang, it is a finding with its mutant
                        self.hang(w)
                        workers[workers.index(w)] = self.spawn()
                        continue
                    self.record(result)
                    w.index, w.served = None, w.served + 1
                    if result.get("restart"):
                        w.served = self.args.recycle
                now = time.monotonic()
                for i, w in enumerate(workers):
                    if w.index is not None and now - w.started > limit:
                        self.hang(w)
                        workers[i] = self.spawn()
                if now - last_line > (0.5 if sys.stderr.isatty() else 30.0):
                    self.progress()
                    last_line = now
                if now - last_write > 30.0:
                    self.write(False)
                    last_write = now
        finally:
            for w in workers:
                self.retire(w)
            shutil.rmtree(self._work, ignore_errors=True)
        self.progress(force=True)
        return self.write(True)


def run_one(args: argparse.Namespace) -> int:
    """`--only INDEX`: that mutant, in this process, its findings and traceback printed (and saved)."""
    with tempfile.TemporaryDirectory(prefix="c3po-campaign-") as tmp:
        tree = snapshot(None if args.working_tree else (args.commit or head_commit()), Path(tmp))
        sys.path.insert(0, str(tree))
        corpus = build_corpus(tree)
        out = Path(args.out)
        runner = Runner(tree, corpus, out.with_name(out.stem + ".reproducers"))
        m = make_mutant(corpus, args.seed, args.only)
        result = runner.run(m, args.timeout)
        print(f"{m.kind} of {m.source.rel}; the output of c3po was:\n{runner.last_output[0]}{runner.last_output[1]}")
        print(json.dumps(result, indent=1))
        return 1 if result["findings"] else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="mutants to run (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first mutant index (to continue a campaign)")
    ap.add_argument("--out", default="campaign.json", help="the report (JSON); reproducers go to OUT.reproducers/")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per mutant before it is a hang")
    ap.add_argument("--memory-limit", type=int, default=2048, metavar="MIB",
                    help="address-space limit of each worker (default 2048 MiB; 0: none)")
    ap.add_argument("--recycle", type=int, default=5000, help="mutants per worker before a fresh one")
    ap.add_argument("--only", type=int, metavar="INDEX", help="run one mutant in this process and print it")
    ap.add_argument("--commit", metavar="REV", help="the commit to test (default HEAD; the report records it)")
    ap.add_argument("--working-tree", action="store_true",
                    help="test the checkout's files as they are, uncommitted changes included, not a commit")
    args = ap.parse_args(argv)
    if args.only is not None:
        return run_one(args)
    rep = Campaign(args).run()
    print(json.dumps({k: rep[k] for k in ("mutants", "outcomes", "max_seconds", "max_peak_rss", "findings")}))
    bad = rep["findings"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
