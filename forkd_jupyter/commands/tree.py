"""`tree`: the branch tree as indented text.

Each sandbox is followed by the snapshots taken of it, each snapshot by the
sandboxes spawned from it, recursively. A node whose parent is gone (a
killed-and-removed source, a deleted snapshot) is a root. Diff layering is
shown as ``on <parent>`` on the snapshot's line, not as nesting."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from .common import CommandError, add_json_flag, connect, fmt_ms, print_json, register

UNICODE_GLYPHS = ("├── ", "└── ", "│   ", "    ")
ASCII_GLYPHS = ("|-- ", "`-- ", "|   ", "    ")


def _tree_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root",
        nargs="?",
        metavar="NODE",
        help="only the subtree of this sandbox (id or name) or snapshot (id or tag)",
    )
    add_json_flag(parser)


def node_line(node: dict) -> str:
    if node["kind"] == "sandbox":
        name = f' "{node["name"]}"' if node.get("name") not in (None, node["id"]) else ""
        status = node["status"]
        if status == "dead" and node.get("exit_reason"):
            status = f"dead: {node['exit_reason']}"
        elif node.get("busy"):
            status += ", busy"
        return f"{node['id']}{name} [{status}]"
    tag = f' "{node["tag"]}"' if node.get("tag") else ""
    status = node["status"]
    if status == "failed" and node.get("error"):
        status = f"failed: {node['error']}"
    on = f", on {node['parent']}" if node.get("parent") else ""
    pause = fmt_ms(node.get("pause_ms"))
    return f"{node['id']}{tag} ({node['mode']}, pause {pause} ms{on}) [{status}]"


def _nesting(tree: dict) -> tuple[dict[str, dict], dict[str, list[str]], set[str]]:
    """Nodes by id, the ids nested under each node, and the ids that have a parent."""
    nodes = {n["id"]: n for n in tree["nodes"]}
    below: dict[str, list[str]] = defaultdict(list)
    has_parent: set[str] = set()
    for edge in tree["edges"]:
        if edge["kind"] in ("branch", "spawn") and edge["source"] in nodes:
            if edge["target"] in nodes:
                below[edge["source"]].append(edge["target"])
                has_parent.add(edge["target"])
    return nodes, below, has_parent


def subtree(tree: dict, root: str) -> dict:
    """The tree document restricted to ``root`` and what is nested below it."""
    nodes, below, _ = _nesting(tree)
    keep, todo = set(), [_find(nodes, root)]
    while todo:
        node_id = todo.pop()
        if node_id not in keep:
            keep.add(node_id)
            todo += below[node_id]
    return {
        **tree,
        "nodes": [n for n in tree["nodes"] if n["id"] in keep],
        "edges": [e for e in tree["edges"] if e["source"] in keep and e["target"] in keep],
    }


def render_tree(tree: dict, glyphs=UNICODE_GLYPHS) -> str:
    nodes, below, has_parent = _nesting(tree)

    def order(ids):
        return sorted(ids, key=lambda i: (nodes[i].get("created_at") or 0, _numeric_suffix(i)))

    roots = order(i for i in nodes if i not in has_parent)
    tee, last, pipe, blank = glyphs
    lines: list[str] = []
    seen: set[str] = set()

    def walk(node_id: str, prefix: str, connector: str, child_prefix: str) -> None:
        if node_id in seen:  # the daemon's tree has no cycles; never loop if it did
            return
        seen.add(node_id)
        lines.append(prefix + connector + node_line(nodes[node_id]))
        kids = order(below[node_id])
        for i, kid in enumerate(kids):
            is_last = i == len(kids) - 1
            walk(kid, prefix + child_prefix, last if is_last else tee, blank if is_last else pipe)

    for node_id in roots:
        walk(node_id, "", "", "")
    return "\n".join(lines)


def _find(nodes: dict[str, dict], key: str) -> str:
    if key in nodes:
        return key
    for node in nodes.values():
        if key in (node.get("name"), node.get("tag")):
            return node["id"]
    raise CommandError(f"no sandbox or snapshot {key!r} in the tree")


def _numeric_suffix(node_id: str) -> int:
    tail = node_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _glyphs_for_stdout():
    try:
        "".join(UNICODE_GLYPHS).encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII_GLYPHS
    return UNICODE_GLYPHS


def _tree(args: argparse.Namespace) -> int:
    tree = connect().tree()
    if args.root is not None:
        tree = subtree(tree, args.root)
    if args.json:
        print_json(tree)
        return 0
    if not tree["nodes"]:
        print("no sandboxes or snapshots")
        return 0
    print(render_tree(tree, _glyphs_for_stdout()))
    return 0


register("tree", "show sandboxes, their snapshots and children as a tree", _tree_args, _tree)
