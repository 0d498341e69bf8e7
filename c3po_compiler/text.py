"""Input-derived text in the comments of generated code: the one place it is made safe.

Spec file paths (the directories a user builds from included), and any other text from the input that is not a
validated identifier, reach comments of generated C, P4 and Markdown. `comment_text` makes any string safe inside
a C/P4 `/* ... */` or `// ...` comment and an HTML `<!-- ... -->` comment in Markdown; every target uses it for
every such insertion (`loc_text` for a spec location). Ordinary printable text, an ordinary path in particular, is
returned unchanged; everything else is escaped visibly, with a backslash, so the comment still says what it was:

* `\\` for a backslash; `\\n`, `\\r`, `\\t`, `\\xHH`, `\\uHHHH`, `\\UHHHHHHHH` for control, format (bidi
  overrides, zero-width), separator, surrogate, private-use and unassigned characters (`str.isprintable`);
* `*\\/` and `/\\*` (no comment closes or opens), `?\\?` (no trigraph: `??/` is a backslash under `-std=c99`),
  `--\\>` and `--!\\>` (no HTML comment closes);
* a text never ends with a backslash (a final one is `\\x5c`), so a `//` comment cannot swallow the next line;
* at most MAX_CHARS characters of the input are shown: a longer text keeps its start and its end around `...`.

`terminal_text` is its sibling for what is printed on a terminal (every diagnostic, through `Problem.format`, and
the commands' one-line errors): the same visible escapes for every character that is not printable (C0 and C1
controls, DEL, ESC and so the start of every escape sequence, bidi overrides, line and paragraph separators), so
a spec value can neither colour, move nor add a line; a backslash and ordinary text are left as they are, no
length cap. `terminal_lines` keeps the line breaks of a text that is several lines by design.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS = 200
HEAD_CHARS = 60  # of a text longer than MAX_CHARS: its start, and the rest of the budget from its end
ELLIPSIS = "..."

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _code(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def _escape(s: str, final: bool) -> str:
    out: list[str] = []
    last = len(s) - 1
    for i, c in enumerate(s):
        prev = s[i - 1] if i else ""
        if c == "\\":
            out.append("\\x5c" if final and i == last else "\\\\")
        elif c in _NAMED:
            out.append(_NAMED[c])
        elif not c.isprintable():
            out.append(_code(c))
        elif (c == "/" and prev == "*") or (c == "*" and prev == "/") or (c == "?" and prev == "?"):
            out.append("\\" + c)
        elif c == ">" and (s.endswith("--", 0, i) or s.endswith("--!", 0, i)):
            out.append("\\>")
        else:
            out.append(c)
    return "".join(out)


def terminal_text(s: object) -> str:
    """`s` as one line safe to print on a terminal: every non-printable character escaped visibly."""
    text = str(s)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _NAMED.get(c) or _code(c) for c in text)


def terminal_lines(s: object) -> str:
    """`s`, several lines by design (a compiler's output), with each line made safe by `terminal_text`."""
    return "\n".join(terminal_text(line) for line in str(s).split("\n"))


def comment_text(s: object) -> str:
    """`s` as text safe inside any comment of generated C, P4 or Markdown (see the module docstring)."""
    text = str(s)
    if len(text) <= MAX_CHARS:
        return _escape(text, final=True)
    tail = MAX_CHARS - HEAD_CHARS - len(ELLIPSIS)
    return _escape(text[:HEAD_CHARS], final=False) + ELLIPSIS + _escape(text[-tail:], final=True)


def loc_text(loc: Any, default: str = "") -> str:
    """`file:line` of a spec location for a comment: the file as the user wrote it, made safe by `comment_text`;
    `default` when there is no file."""
    file = getattr(loc, "file", None)
    if not file:
        return default
    return f"{comment_text(file)}:{loc.line}"
