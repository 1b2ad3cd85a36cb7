"""Plain-text views of daemon records shared by the CLI and the magics: the
branch tree as indented text, tables, and number formats.

The tree: each sandbox is followed by the snapshots taken of it, each
snapshot by the sandboxes spawned from it, recursively. A node whose parent
is gone (a deleted snapshot) is a root. Diff layering is shown as ``on
<parent>`` on the snapshot's line, not as nesting."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

UNICODE_GLYPHS = ("├── ", "└── ", "│   ", "    ")
ASCII_GLYPHS = ("|-- ", "`-- ", "|   ", "    ")


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def sandbox_status(record: dict) -> str:
    """The one vocabulary of a sandbox's state, shared by the CLI, the
    magics, the widgets and the JupyterLab panel: ``idle`` (running, ready
    for a cell), ``busy`` (running a cell) or ``dead (reason)``. (The
    records' own ``status`` field stays the API's ``running``/``dead``.)"""
    if record.get("status") == "dead":
        reason = record.get("exit_reason")
        return f"dead ({reason})" if reason else "dead"
    return "busy" if record.get("busy") else "idle"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(r[i] in (None, "-") or _is_number(r[i]) for r in rows)
        for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def node_line(node: dict) -> str:
    if node["kind"] == "sandbox":
        name = f' "{node["name"]}"' if node.get("name") not in (None, node["id"]) else ""
        status = "busy" if node.get("busy") else "idle"
        if node["status"] == "dead":
            status = f"dead: {node['exit_reason']}" if node.get("exit_reason") else "dead"
        where = f" on {node['node']}" if node.get("node") else ""
        return f"{node['id']}{name}{where} [{status}]"
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
    raise LookupError(f"no sandbox or snapshot {key!r} in the tree")


def _numeric_suffix(node_id: str) -> int:
    tail = node_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def cluster_rows(info: dict) -> list[tuple]:
    """Rows of the cluster's node table: label (``*`` the daemon's own
    node), remote sandboxes, free memory, and ``ok`` or why not."""
    rows = []
    for n in info["nodes"]:
        free = fmt_bytes(n["free_bytes"]) if n["free_bytes"] is not None else "?"
        state = "ok" if n["usable"] else f"skipped: {n['reason']}"
        rows.append((n["label"] + (" *" if n["local"] else ""), n["remote_sandboxes"], free, state))
    return rows
