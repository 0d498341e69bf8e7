"""Reading input files (specs, includes, vector files): regular files only, and never more than a cap.

Every reader of user-named files goes through `read_input`, `read_input_text` or `input_lines`, so that a
spec including `/proc/kmsg` or a FIFO does not block, `/dev/zero` does not fill memory, and a 1.5 GB file is
refused before it is read. Errors are `InputFileError`: a message without the file name (the caller knows
how to name the file: a spec position, or `FILE:LINE:` for vector files) and, where known, the line.

Caps (bytes; environment variables raise or lower them):

- `C3PO_MAX_SPEC_BYTES`, default 16 MiB: a spec and each of its includes.
- `C3PO_MAX_VECTOR_BYTES`, default 256 MiB: a vector file (YAML, JSON Lines, pcap, STF). JSON Lines files are
  streamed, one line in memory at a time; the others are read whole.
- `C3PO_MAX_VECTOR_LINE_BYTES`, default 1 MiB: one line of a JSON Lines vector file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20

SPEC_LIMIT_ENV = "C3PO_MAX_SPEC_BYTES"
DEFAULT_SPEC_LIMIT = 16 * MIB
VECTOR_LIMIT_ENV = "C3PO_MAX_VECTOR_BYTES"
DEFAULT_VECTOR_LIMIT = 256 * MIB
VECTOR_LINE_LIMIT_ENV = "C3PO_MAX_VECTOR_LINE_BYTES"
DEFAULT_VECTOR_LINE_LIMIT = 1 * MIB

# Pseudo file systems: their files say they are regular and empty, and reading may block (/proc/kmsg) or never
# end. Nothing c3po reads lives there.
_PSEUDO_ROOTS = ("/proc", "/sys")


_READ_HINT = "check that the file exists and that you may read it"


class InputFileError(Exception):
    """An input file that is not read: the message (without the file name), a hint, and the line if known."""

    def __init__(self, message: str, hint: str | None = None, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.line = line
        self.col = col


@dataclass(frozen=True)
class Limit:
    """A size cap and the environment variable that sets it, so that messages can name both."""

    env: str
    default: int

    def value(self) -> int:
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            n = int(text.replace("_", ""), 0)
        except ValueError:
            n = -1
        if n <= 0:
            raise InputFileError(f"{self.env}={text!r} is not a positive number of bytes",
                                 f"unset it for the default of {human_size(self.default)}")
        return n


SPEC_LIMIT = Limit(SPEC_LIMIT_ENV, DEFAULT_SPEC_LIMIT)
VECTOR_LIMIT = Limit(VECTOR_LIMIT_ENV, DEFAULT_VECTOR_LIMIT)
VECTOR_LINE_LIMIT = Limit(VECTOR_LINE_LIMIT_ENV, DEFAULT_VECTOR_LINE_LIMIT)


def human_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _too_large(what: str, size: str, limit: Limit, cap: int) -> InputFileError:
    return InputFileError(f"the {what} is {size}, more than the limit of {human_size(cap)}",
                          f"set {limit.env} (bytes) to raise the limit")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _open(path: Path, what: str, limit: Limit) -> tuple[int, int]:
    """An open descriptor of a regular file no larger than the cap, and the cap."""
    cap = limit.value()
    name = os.fsdecode(path)
    if "\0" in name:
        raise InputFileError(f"the {what} name contains a NUL byte", "file names cannot contain NUL bytes")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputFileError(f"cannot read the {what}: {exc.strerror or exc}", _READ_HINT) from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise InputFileError(f"the {what} is {kind}, not a regular file",
                                 "name a regular file, not a pipe or device" if kind != "a directory"
                                 else "name the files in it")
    real = os.path.realpath(name)
    for root in _PSEUDO_ROOTS:
        if real == root or real.startswith(root + "/"):
            raise InputFileError(f"the {what} is in {root}, a kernel pseudo file system, not a regular file",
                                 "copy what you need into a file")
    if st.st_size > cap:
        raise _too_large(what, f"{st.st_size} bytes", limit, cap)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the stat, opening and reading do not block.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(f"cannot read the {what}: {exc.strerror or exc}", _READ_HINT) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputFileError(f"the {what} is not a regular file", "name a file, not a pipe or device")
    return fd, cap


def read_input(path: str | Path, what: str, limit: Limit) -> bytes:
    """The whole file, refused (InputFileError) unless it is a regular file of at most the cap."""
    fd, cap = _open(Path(path), what, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:  # the cap holds while reading too: a file may grow after the stat
            chunk = os.read(fd, min(1 * MIB, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise _too_large(what, f"more than {total - 1} bytes", limit, cap)
    except BlockingIOError:
        raise InputFileError(f"cannot read the {what}: it would block", "name a regular file") from None
    except OSError as exc:
        raise InputFileError(f"cannot read the {what}: {exc.strerror or exc}", _READ_HINT) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 text (a UTF-8 byte order mark is dropped); anything else is refused with the line it fails on."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputFileError(f"the {what} is UTF-16 encoded", "save it as UTF-8", 1, 1)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputFileError(f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})", "save it as UTF-8",
                             line, col) from None


def read_input_text(path: str | Path, what: str, limit: Limit) -> str:
    return decode_text(read_input(path, what, limit), what)


def input_lines(path: str | Path, what: str, limit: Limit, line_limit: Limit) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line, streamed: one line in memory at a time, each at most `line_limit`
    bytes, the whole file at most `limit`."""
    fd, cap = _open(Path(path), what, limit)
    line_cap = line_limit.value()
    total = 0
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            lineno = 0
            while True:
                try:
                    raw = f.readline(line_cap + 2)  # the text, then CR LF
                except BlockingIOError:
                    raise InputFileError(f"cannot read the {what}: it would block", "name a regular file") from None
                except OSError as exc:
                    raise InputFileError(f"cannot read the {what}: {exc.strerror or exc}", _READ_HINT) from None
                if not raw:
                    return
                lineno += 1
                total += len(raw)
                if total > cap:
                    raise _too_large(what, f"more than {total - 1} bytes", limit, cap)
                body = raw[:-1] if raw.endswith(b"\n") else raw
                if len(body.rstrip(b"\r")) > line_cap:
                    raise InputFileError(f"line {lineno} is longer than the limit of {human_size(line_cap)}",
                                         f"set {line_limit.env} (bytes) to raise the limit", lineno, 1)
                if lineno == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise InputFileError(f"the {what} is UTF-16 encoded", "save it as UTF-8", 1, 1)
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputFileError(f"line {lineno} is not UTF-8 text (byte 0x{body[exc.start]:02x})",
                                         "save it as UTF-8", lineno, exc.start + 1) from None
                yield lineno, text.removeprefix("\ufeff") if lineno == 1 else text
    finally:
        os.close(fd)
