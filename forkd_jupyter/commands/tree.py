"""`tree`: the branch tree as indented text.

Each sandbox is followed by the snapshots taken of it, each snapshot by the
sandboxes spawned from it, recursively. A node whose parent is gone (a
killed-and-removed source, a deleted snapshot) is a root. Diff layering is
shown as ``on <parent>`` on the snapshot's line, not as nesting."""

from __future__ import annotations

import argparse
import sys

from ..client.text import ASCII_GLYPHS, UNICODE_GLYPHS, render_tree, subtree
from .common import CommandError, add_json_flag, connect, print_json, register


def _tree_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root",
        nargs="?",
        metavar="NODE",
        help="only the subtree of this sandbox (id or name) or snapshot (id or tag)",
    )
    add_json_flag(parser)


def glyphs_for_stdout():
    try:
        "".join(UNICODE_GLYPHS).encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII_GLYPHS
    return UNICODE_GLYPHS


def _tree(args: argparse.Namespace) -> int:
    tree = connect().tree()
    if args.root is not None:
        try:
            tree = subtree(tree, args.root)
        except LookupError as e:
            raise CommandError(str(e)) from None
    if args.json:
        print_json(tree)
        return 0
    if not tree["nodes"]:
        print("no sandboxes or snapshots")
        return 0
    print(render_tree(tree, glyphs_for_stdout()))
    return 0


register("tree", "show sandboxes, their snapshots and children as a tree", _tree_args, _tree)
