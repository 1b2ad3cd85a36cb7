"""Both widgets rendered by real JupyterLab and by Notebook 7 in headless
chromium, running a real notebook against the test daemon: a branch made
elsewhere shows up in the drawn tree and in the timings chart."""

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

pytestmark = pytest.mark.kvm

UI_TIMEOUT_MS = 30_000
NOTEBOOK = "widgets.ipynb"
CELLS = [
    "from forkd_jupyter.client import Controller\n"
    "from forkd_jupyter.widgets import BranchTree, PauseTimings\n"
    "c = Controller()\n"
    "sb = c.spawn_sandboxes(memory_limit_mib=256, name='widget-source')[0]",
    "tree = BranchTree(controller=c)\ntree",
    "timings = PauseTimings(controller=c)\ntimings",
]


@pytest.fixture
def notebook(jupyter_lab_root, daemon):
    write_notebook(jupyter_lab_root / NOTEBOOK, CELLS)
    yield
    sources = {s["id"] for s in daemon.list_sandboxes() if s["name"] == "widget-source"}
    for snap in daemon.list_snapshots()[::-1]:
        if snap["source_id"] in sources:
            daemon.delete_snapshot(snap["id"], cascade=True)
    for sb in daemon.list_sandboxes():
        if sb["name"] == "widget-source" and sb["status"] == "running":
            daemon.kill_sandbox(sb["id"])


FRONT_ENDS = {"jupyterlab": open_lab, "notebook7": open_notebook7}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_widgets_render_and_follow_a_branch(page, jupyter_lab, notebook, daemon, front_end):
    FRONT_ENDS[front_end](page, jupyter_lab, NOTEBOOK)
    page.wait_for_selector(".jp-Notebook", state="visible")
    run_all_cells(page, len(CELLS))
    page.wait_for_selector(".forkd-branch-tree g.forkd-sandbox", timeout=60_000)
    [sb] = [
        s
        for s in daemon.list_sandboxes()
        if s["name"] == "widget-source" and s["status"] == "running"
    ]
    page.wait_for_selector(f'.forkd-branch-tree g[data-id="{sb["id"]}"]', timeout=UI_TIMEOUT_MS)
    page.wait_for_selector(".forkd-pause-timings", timeout=UI_TIMEOUT_MS)
    screenshot(page, f"widgets-{front_end}-before-branch")

    out = daemon.branch_sandbox(sb["id"], mode="live", count=2, tag="from-the-test")
    snap, kids = out["snapshot"], out["children"]
    page.wait_for_selector(
        f'.forkd-branch-tree g.forkd-snapshot[data-id="{snap["id"]}"]', timeout=UI_TIMEOUT_MS
    )
    for kid in kids:
        page.wait_for_selector(f'.forkd-branch-tree g[data-id="{kid["id"]}"]', timeout=5_000)
    label = page.text_content(f'.forkd-branch-tree g[data-id="{snap["id"]}"] .forkd-label')
    assert "from-the-test" in label
    dot = f'.forkd-pause-timings circle[data-snapshot="{snap["id"]}"]'
    page.wait_for_selector(dot, timeout=5_000)
    assert "live" in page.text_content(f"{dot} title")
    edges = page.eval_on_selector_all(".forkd-branch-tree path.forkd-edge", "els => els.length")
    assert edges >= 3  # source -> snapshot -> two children

    # A click on a drawn node reaches the kernel as the widget's `selected`.
    page.click(f'.forkd-branch-tree g[data-id="{snap["id"]}"]')
    run_in_new_cell(page, "print('selected:', tree.selected)")
    page.wait_for_selector(f"text=selected: {snap['id']}", timeout=UI_TIMEOUT_MS)
    screenshot(page, f"widgets-{front_end}-after-branch")
