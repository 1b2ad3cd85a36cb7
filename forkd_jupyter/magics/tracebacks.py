"""What a `%%forkd` cell's failure looks like in the notebook.

- A limit of the sandbox (more threads than it runs at once) ends in one
  line that says so, instead of a long traceback through the standard
  library's internals. Shell commands, script cell magics and subprocesses
  run in the sandbox like any other code.
- Frames of the sandbox's own agent (``.../forkd_agent/...``) are never
  shown: they are the machinery, not the user's code.
- Frames of the cell are numbered as the notebook numbers its cells, with
  the notebook's line numbers (the cell's first line is ``%%forkd``).

Invariant: a rewritten traceback keeps every frame of user and library code
in order; only agent frames go, and only cell labels change."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..run_result import GuestError

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# IPython labels a cell's frame "Cell In[7], line 3" (coloured between the parts).
_CELL_LABEL = re.compile(r"In\[(\d+)\](\x1b\[[0-9;]*m)?, line (\d+)")
_AGENT = "/forkd_agent/"
_ARROW = re.compile(r"-*>")  # IPython's mark of a frame's current line
# A listing line's number: "      1 code" or "----> 3 code", maybe coloured.
_LISTING_NUMBER = re.compile(r"^((?:\x1b\[[0-9;]*m)?(?:\s+|-*>\s*))(\d+)")


def unsupported(error: GuestError, traceback: list[str]) -> str | None:
    """A one-line explanation when the guest failed at a limit of the
    sandbox, else None (``traceback``: the rewritten one, whose innermost
    frame of the cell is named)."""
    if error.ename == "RuntimeError" and "can't start new thread" in error.evalue:
        what = "a sandbox runs at most 128 threads at once"
    else:
        return None
    where = _last_cell_line(traceback)
    return f"{error.ename}: {error.evalue}: {what}" + (f" ({where})" if where else "")


def _last_cell_line(traceback: list[str]) -> str | None:
    """``line N: code`` of the cell's innermost frame, if it is known."""
    lines = _ANSI.sub("", "\n".join(traceback)).splitlines()
    found = None
    for i, line in enumerate(lines):
        if line.startswith("Cell In[") and ", line " in line:
            number = line.split(", line ")[1].split(",")[0].strip()
            code = next((_code_of(x) for x in lines[i + 1 :] if _ARROW.match(x)), "")
            found = f"line {number}: {code}" if code else f"line {number}"
    return found


def _code_of(arrow_line: str) -> str:
    """``t.start()`` from IPython's ``----> 3 t.start()``."""
    return re.sub(r"^-*>\s*\d+\s?", "", arrow_line).strip()


def rewrite(traceback: list[str], numbers: Mapping[int, int]) -> list[str]:
    """The traceback without agent frames, with the frames of the cells in
    ``numbers`` (the sandbox's count of a `%%forkd` cell -> the notebook's
    number of it) labelled by the notebook's cell and line numbers."""
    lines = "\n".join(traceback).split("\n")
    kept: list[str] = []
    dropping = False
    for line in lines:
        plain = _ANSI.sub("", line)
        header = plain.startswith(("File ", "Cell ")) or plain.lstrip().startswith('File "')
        if header:
            dropping = _AGENT in plain
        elif plain.strip() == "" or not (plain[:1].isspace() or _ARROW.match(plain)):
            dropping = False  # a frame's end: a blank line, or the exception's line
        if not dropping:
            kept.append(line)
    out: list[str] = []
    in_cell = False  # inside a frame of a known cell: its listing is renumbered too
    for line in kept:
        match = _CELL_LABEL.search(line)
        if match is not None:
            number = numbers.get(int(match.group(1)))
            in_cell = number is not None
            if in_cell:
                line = _CELL_LABEL.sub(
                    lambda m, n=number: f"In[{n}]{m.group(2) or ''}, line {int(m.group(3)) + 1}",
                    line,
                )
        elif _ANSI.sub("", line).strip() == "":
            in_cell = False
        elif in_cell:
            line = _LISTING_NUMBER.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + 1}", line, 1)
        out.append(line)
    return out
