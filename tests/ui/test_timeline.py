"""Attach mode's history in the real JupyterLab, in headless chromium
against the real daemon and a real kernel: the branch-tree widget and the
panel show the attached sandbox's checkpoints as a row of cells; a click
asks first, then checks the sandbox out there (the daemon's records and
the kernel's state follow) or branches a new sandbox from there; the cells
whose effects were undone are marked in the notebook, in either theme.
Screenshots in tests/artifacts/."""

from __future__ import annotations

import time

import pytest
from lab_helpers import open_lab, run_all_cells, screenshot, write_notebook
from test_panel import PANEL, UI_TIMEOUT_MS
from themes import DARK, LIGHT, WCAG_AA, contrast, wait_for_theme

pytestmark = pytest.mark.kvm

CELLS = [
    "%load_ext forkd_jupyter",
    "%forkd attach timeline --mem 512",
    "x = 1",
    "x = 2",
    "x = 3",
    "%forkd tree",
]
WIDGET = ".forkd-branch-tree"
UNDONE = ".jp-Notebook .jp-Cell.jp-forkd-undone"


@pytest.fixture
def notebook(jupyter_lab_root, daemon, theme):
    """A notebook of its own per theme: a kernel of its own, never one a
    previous test left attached."""
    path = f"timeline-{theme_name(theme)}.ipynb"
    write_notebook(jupyter_lab_root / path, CELLS)
    yield path
    for s in daemon.list_sandboxes():
        if s["status"] == "running" and s["name"].startswith("timeline"):
            daemon.kill_sandbox(s["id"])


def attached(daemon) -> dict:
    [sb] = [
        s for s in daemon.list_sandboxes() if s["name"] == "timeline" and s["status"] == "running"
    ]
    return sb


def wait_until(check, timeout_s: float = 30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out")


def x_of(daemon, sandbox_id: str) -> str:
    return daemon.run_cell(sandbox_id, "str(globals().get('x'))").result["text/plain"]


@pytest.mark.parametrize("theme", [LIGHT, DARK], indirect=True, ids=["light", "dark"])
def test_checkpoints_are_a_timeline_to_check_out_from(page, jupyter_lab, notebook, daemon, theme):
    open_lab(page, jupyter_lab, notebook)
    wait_for_theme(page, theme)
    run_all_cells(page, len(CELLS))
    chips = f"{WIDGET} .forkd-timeline .forkd-checkpoint[data-snapshot]"
    page.wait_for_function(
        f"() => document.querySelectorAll({chips!r}).length === 3", timeout=UI_TIMEOUT_MS
    )
    cells = page.eval_on_selector_all(chips, "els => els.map(e => e.dataset.cell)")
    assert cells == ["3", "4", "5"]
    assert "x = 2" in page.text_content(f'{chips}[data-cell="4"]')
    ratios = contrast(page, f"{WIDGET} .forkd-checkpoint")
    assert ratios and all(r["ratio"] >= WCAG_AA for r in ratios), ratios

    # The widget: a click asks, "Check out" goes back to before [4] (x == 1).
    before = attached(daemon)
    page.click(f'{chips}[data-cell="4"]')
    page.wait_for_selector(f"{WIDGET} .forkd-confirm", timeout=5_000)
    screenshot(page, f"timeline-widget-confirm-{theme_name(theme)}")
    page.click(f"{WIDGET} .forkd-do-checkout")
    target = page.get_attribute(f'{chips}[data-cell="4"]', "data-snapshot")
    now = wait_until(lambda: next(
        (s for s in daemon.list_sandboxes()
         if s["name"] == "timeline" and s["status"] == "running" and s["id"] != before["id"]),
        None,
    ))  # fmt: skip
    assert now["parent_snapshot"] == target
    assert x_of(daemon, now["id"]) == "'1'"
    # Cells [4] and [5] ran, their effects are gone: the notebook marks them.
    page.wait_for_function(
        f"() => document.querySelectorAll({UNDONE!r}).length === 2", timeout=UI_TIMEOUT_MS
    )
    marked = page.eval_on_selector_all(
        UNDONE, "els => els.map(e => e.querySelector('.jp-InputPrompt').textContent)"
    )
    assert marked == ["[4]:", "[5]:"]
    # The present was kept: a snapshot of the old sandbox, in the tree.
    assert any(s["source_id"] == before["id"] and s["tag"] for s in daemon.list_snapshots())

    # The panel: the same history, a click asks in a dialog, then checks out.
    page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
    rows = f"{PANEL} .jp-forkd-timeline .jp-forkd-checkpoint"
    page.wait_for_function(
        f"() => document.querySelectorAll({rows!r}).length === 2", timeout=UI_TIMEOUT_MS
    )
    assert page.get_attribute(f"{rows}.jp-forkd-here", "data-snapshot") == target
    ratios = contrast(page, rows)
    assert ratios and all(r["ratio"] >= WCAG_AA for r in ratios), ratios
    screenshot(page, f"timeline-panel-{theme_name(theme)}")
    page.click(f'{rows}[data-cell="3"]')
    page.wait_for_selector(".jp-Dialog", timeout=5_000)
    page.click(".jp-Dialog button.jp-forkd-checkout")
    first = page.get_attribute(f'{rows}[data-cell="3"]', "data-snapshot")
    later = wait_until(lambda: next(
        (s for s in daemon.list_sandboxes()
         if s["name"] == "timeline" and s["status"] == "running" and s["parent_snapshot"] == first),
        None,
    ))  # fmt: skip
    assert x_of(daemon, later["id"]) == "'None'"
    page.wait_for_function(
        f"() => document.querySelectorAll({UNDONE!r}).length === 3", timeout=UI_TIMEOUT_MS
    )

    # "Branch from here": a new sandbox from the checkpoint, the notebook's stays.
    page.click(f'{rows}[data-cell="3"]')
    page.wait_for_selector(".jp-Dialog", timeout=5_000)
    page.click(".jp-Dialog button.jp-forkd-branch-here")
    wait_until(lambda: [
        s for s in daemon.list_sandboxes()
        if s["parent_snapshot"] == first and s["status"] == "running" and s["name"] != "timeline"
    ])  # fmt: skip
    assert attached(daemon)["id"] == later["id"]
    screenshot(page, f"timeline-undone-{theme_name(theme)}")


def theme_name(theme: str) -> str:
    return "dark" if theme == DARK else "light"
