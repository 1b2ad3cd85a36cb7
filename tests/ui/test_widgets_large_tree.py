"""A large tree in the BranchTree widget, in real JupyterLab and headless
chromium against the real daemon: sixteen children of one snapshot wrap
into rows of at most six, "Fit" brings every node inside the output, a
subtree collapses from its node's toggle and comes back; the layout's
live-lineage rule is checked on the real tree document."""

from __future__ import annotations

import re

import pytest
from lab_helpers import open_lab, run_all_cells, screenshot, write_notebook

from forkd_jupyter.magics.housekeeping import delete_snapshot

pytestmark = pytest.mark.kvm

NOTEBOOK = "large-tree.ipynb"
CHILDREN = 16
WRAP = 6


@pytest.fixture
def large(jupyter_lab_root, daemon):
    [source] = daemon.spawn_sandboxes(memory_limit_mib=256, name="large-source")
    out = daemon.branch_sandbox(source["id"], mode="live", count=CHILDREN, tag="large-snap")
    cells = [
        "%load_ext forkd_jupyter",
        f"%forkd use {out['children'][-1]['id']}",  # the source is not current, only an ancestor
        "from forkd_jupyter.widgets import BranchTree\ntree = BranchTree()\ntree",
    ]
    write_notebook(jupyter_lab_root / NOTEBOOK, cells)
    yield source, out["snapshot"], out["children"], len(cells)
    delete_snapshot(daemon, out["snapshot"]["id"], cascade=True)
    daemon.kill_sandbox(source["id"])


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {id: e.dataset.id, x: r.x, y: r.y, right: r.right, bottom: r.bottom}; })",
    )


def hidden_dead(page) -> int:
    """The count in the widget's "dead hidden (N)"."""
    text = page.inner_text(".forkd-branch-tree .forkd-bar")
    return int(re.search(r"dead hidden \((\d+)\)", text).group(1))


def test_sixteen_children_wrap_fit_and_collapse(page, jupyter_lab, large, daemon):
    source, snapshot, children, count = large
    open_lab(page, jupyter_lab, NOTEBOOK)
    run_all_cells(page, count)
    kids = ", ".join(f'.forkd-branch-tree g[data-id="{k["id"]}"]' for k in children)
    page.wait_for_function(
        f"document.querySelectorAll('{kids}').length === {CHILDREN}".replace("\n", " "),
        timeout=60_000,
    )
    placed = boxes(page, kids)
    rows = sorted({round(b["y"]) for b in placed})
    assert len(rows) == -(-CHILDREN // WRAP), rows  # 16 children: rows of 6, 6, 4
    for y in rows:
        assert sum(1 for b in placed if round(b["y"]) == y) <= WRAP
    screenshot(page, "widgets-large-tree")

    page.click(".forkd-branch-tree .forkd-fit")
    output = page.eval_on_selector(
        ".forkd-branch-tree",
        "e => { const r = e.getBoundingClientRect(); return {x: r.x, right: r.right}; }",
    )
    for b in boxes(page, ".forkd-branch-tree g.forkd-node"):
        assert output["x"] - 1 <= b["x"] and b["right"] <= output["right"] + 1, b
    screenshot(page, "widgets-large-tree-fit")

    toggle = f'.forkd-branch-tree [data-toggle="{snapshot["id"]}"]'
    page.click(toggle)
    page.wait_for_selector(f'.forkd-branch-tree g[data-id="{children[0]["id"]}"]', state="detached")
    assert page.text_content(toggle).startswith(f"+{CHILDREN}")
    page.click(toggle)
    page.wait_for_selector(f'.forkd-branch-tree g[data-id="{children[0]["id"]}"]')

    # The live lineage: a dead leaf goes (counted), a dead ancestor of live
    # children stays, drawn dead; "dead hidden" brings the leaf back.
    leaf = f'.forkd-branch-tree g[data-id="{children[0]["id"]}"]'
    before = hidden_dead(page)
    daemon.kill_sandbox(children[0]["id"])
    page.wait_for_selector(leaf, state="detached", timeout=10_000)
    assert hidden_dead(page) == before + 1
    daemon.kill_sandbox(source["id"])
    page.wait_for_selector(
        f'.forkd-branch-tree g.forkd-status-dead[data-id="{source["id"]}"]', timeout=10_000
    )
    page.check(".forkd-branch-tree .forkd-show-dead")
    page.wait_for_selector(f"{leaf}.forkd-status-dead", timeout=10_000)
    # Many trees side by side (every dead sandbox of the session is a root
    # now) wrap into rows too, so "Fit" keeps nodes readable.
    roots = len(daemon.list_sandboxes())
    assert roots > WRAP
    page.click(".forkd-branch-tree .forkd-fit")
    widths = [b["right"] - b["x"] for b in boxes(page, ".forkd-branch-tree g.forkd-node")]
    assert min(widths) >= 50, sorted(widths)[:5]
