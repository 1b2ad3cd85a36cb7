"""The magics reference in docs/magics.md is generated from the parsers
(``python -m forkd_jupyter.magics.reference``), so it cannot drift; a test
compares the two."""

from __future__ import annotations

from .magics import ForkdMagics
from .subcommands import SUBCOMMANDS


def _block(doc: str) -> str:
    return "```\n" + doc.replace("::\n\n", "", 1).strip() + "\n```\n"


def reference() -> str:
    parts = ["## `%%forkd` (cell magic)\n\n", _block(ForkdMagics.forkd_cell.__doc__)]
    parts.append("\n## `%forkd` sub-commands (line magic)\n")
    for name, fn in SUBCOMMANDS.items():
        parts.append(f"\n### `%forkd {name}`\n\n" + _block(fn.__doc__))
    return "".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
