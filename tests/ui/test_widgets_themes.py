"""The widgets in JupyterLab 4 and Notebook 7, in the Light and the Dark
theme, in headless chromium against the real daemon and a real kernel:
node labels keep a WCAG contrast ratio of at least 4.5 against their own
node's fill (measured from the computed colours, not eyeballed), a
`BranchTree()` built directly outlines the notebook's current sandbox, and
a double click on a node makes it the notebook's current sandbox (as the
kernel's session then reports). Screenshots of each combination are kept
under tests/artifacts/."""

from __future__ import annotations

import pytest
from lab_helpers import (
    open_lab,
    open_notebook7,
    run_all_cells,
    run_in_new_cell,
    screenshot,
    write_notebook,
)
from themes import DARK, LIGHT, WCAG_AA, contrast, wait_for_theme

pytestmark = pytest.mark.kvm

UI_TIMEOUT_MS = 60_000
NOTEBOOK = "themes.ipynb"
CELLS = [
    "%load_ext forkd_jupyter\nfrom forkd_jupyter.widgets import BranchTree, PauseTimings",
    "sb = %forkd spawn --mem 256 --name theme-source",
    "kids = %forkd branch -n 1 --tag theme-snap",
    "tree = BranchTree()\ntree",
    "PauseTimings()",
]
FRONT_ENDS = {"jupyterlab": open_lab, "notebook7": open_notebook7}


@pytest.fixture
def notebook(jupyter_lab_root, daemon):
    write_notebook(jupyter_lab_root / NOTEBOOK, CELLS)
    yield
    for snap in daemon.list_snapshots()[::-1]:
        if snap["tag"] == "theme-snap":
            daemon.delete_snapshot(snap["id"], cascade=True)
    for sandbox in daemon.list_sandboxes():
        if sandbox["name"] == "theme-source" and sandbox["status"] == "running":
            daemon.kill_sandbox(sandbox["id"])


@pytest.mark.parametrize("theme", [LIGHT, DARK], indirect=True, ids=["light", "dark"])
@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_widget_labels_keep_their_contrast(page, jupyter_lab, notebook, daemon, front_end, theme):
    FRONT_ENDS[front_end](page, jupyter_lab, NOTEBOOK)
    wait_for_theme(page, theme)
    run_all_cells(page, len(CELLS))
    page.wait_for_selector(".forkd-branch-tree g.forkd-current", timeout=UI_TIMEOUT_MS)
    [source] = [
        s
        for s in daemon.list_sandboxes()
        if s["name"] == "theme-source" and s["status"] == "running"
    ]
    # BranchTree() outlines the notebook's current sandbox: the one spawned.
    current = page.get_attribute(".forkd-branch-tree g.forkd-current", "data-id")
    assert current == source["id"]
    page.wait_for_selector(".forkd-pause-timings .forkd-dot", timeout=UI_TIMEOUT_MS)
    labels = contrast(page, ".forkd-branch-tree g.forkd-node text", "rect")
    assert len(labels) >= 6  # source, snapshot, child: two lines each
    weak = [x for x in labels if x["ratio"] < WCAG_AA]
    assert not weak, weak
    chart = contrast(page, ".forkd-pause-timings svg text")
    assert chart and not [x for x in chart if x["ratio"] < WCAG_AA], chart
    # The chart says what it shows, in which unit, with a legend; no mark
    # lies over a dot (each dot's tooltip stays reachable).
    assert "ms" in page.text_content(".forkd-pause-timings .forkd-title")
    legend = page.text_content(".forkd-pause-timings .forkd-legend")
    assert all(word in legend for word in ("live", "diff", "full", "p50", "p90"))
    page.locator(".forkd-pause-timings svg").scroll_into_view_if_needed()
    covered = page.evaluate(
        """() => [...document.querySelectorAll('.forkd-pause-timings .forkd-dot[data-snapshot]')]
            .filter(dot => {
              const r = dot.getBoundingClientRect();
              const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
              return !top || !top.classList.contains('forkd-dot');
            }).map(dot => dot.dataset.snapshot)"""
    )
    assert covered == [], covered
    screenshot(page, f"widgets-{front_end}-{'dark' if theme == DARK else 'light'}")

    # A double click makes the child the notebook's current sandbox.
    [child] = [
        s
        for s in daemon.list_sandboxes()
        if s["parent_snapshot"]
        and s["status"] == "running"
        and daemon.get_snapshot(s["parent_snapshot"])["tag"] == "theme-snap"
    ]
    page.dblclick(f'.forkd-branch-tree g[data-id="{child["id"]}"] rect')
    page.wait_for_selector(
        f'.forkd-branch-tree g.forkd-current[data-id="{child["id"]}"]', timeout=UI_TIMEOUT_MS
    )
    run_in_new_cell(
        page,
        "from forkd_jupyter.magics import current_session\n"
        "print('session:', current_session().current, 'tree:', tree.current)",
    )
    page.wait_for_selector(
        f"text=session: {child['id']} tree: {child['id']}", timeout=UI_TIMEOUT_MS
    )
