"""The panel in JupyterLab's Light and Dark themes, in headless chromium
against the real daemon and a real kernel: every row's name, details and
badge (the active notebook's current row included) and the legend keep a
WCAG contrast ratio of at least 4.5 (measured from computed colours);
"use in this notebook" makes a sandbox the kernel's current one (its magics
then report it, and the badge moves). Screenshots in tests/artifacts/."""

from __future__ import annotations

import time

import pytest
from lab_helpers import open_lab, run_all_cells, screenshot, write_notebook
from test_panel import PANEL, UI_TIMEOUT_MS, kill_new_sandboxes, row  # noqa: F401
from themes import DARK, LIGHT, WCAG_AA, contrast, wait_for_theme

pytestmark = pytest.mark.kvm

NOTEBOOK = "panel-theme.ipynb"


@pytest.fixture
def notebook(jupyter_lab_root, daemon):
    cell = "%load_ext forkd_jupyter\nsb = %forkd spawn --mem 256 --name panel-theme-a"
    write_notebook(jupyter_lab_root / NOTEBOOK, [cell])
    yield
    for snap in daemon.list_snapshots():
        if snap["tag"] == "panel-theme-snap":
            daemon.delete_snapshot(snap["id"], cascade=True)


def wait_for_sandbox_named(daemon, name: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for sandbox in daemon.list_sandboxes():
            if sandbox["name"] == name and sandbox["status"] == "running":
                return sandbox["id"]
        time.sleep(0.2)
    raise AssertionError(f"no running sandbox {name}")


@pytest.mark.parametrize("theme", [LIGHT, DARK], indirect=True, ids=["light", "dark"])
def test_panel_rows_keep_their_contrast(page, jupyter_lab, notebook, daemon, theme):
    [other] = daemon.spawn_sandboxes(n=1, memory_limit_mib=256, name="panel-theme-b")
    daemon.branch_sandbox(other["id"], mode="full", tag="panel-theme-snap")
    open_lab(page, jupyter_lab, NOTEBOOK)
    wait_for_theme(page, theme)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
    run_all_cells(page, 1)
    page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
    current = f"{PANEL} .jp-forkd-row.jp-forkd-mod-current"
    mine = wait_for_sandbox_named(daemon, "panel-theme-a")
    page.wait_for_selector(f"{row('sandbox', mine)}.jp-forkd-mod-current", timeout=60_000)

    texts = ", ".join(
        f"{PANEL} {sel}"
        for sel in (
            ".jp-forkd-row .jp-forkd-name",
            ".jp-forkd-row .jp-forkd-details",
            ".jp-forkd-badge",
            ".jp-forkd-legend > span",
            ".jp-forkd-title",
        )
    )
    ratios = contrast(page, texts)
    assert len(ratios) >= 8
    weak = [r for r in ratios if r["ratio"] < WCAG_AA]
    assert not weak, weak
    name = "dark" if theme == DARK else "light"
    screenshot(page, f"panel-{name}")

    # "Use in this notebook" on the other sandbox: the kernel's current moves.
    page.hover(row("sandbox", other["id"]))
    page.click(f'{row("sandbox", other["id"])} [data-action="use"]')
    used = f"{row('sandbox', other['id'])}.jp-forkd-mod-current"
    page.wait_for_selector(used, timeout=UI_TIMEOUT_MS)
    assert page.eval_on_selector_all(current, "n => n.length") == 1
    hovered = contrast(page, f"{PANEL} .jp-forkd-row:hover .jp-forkd-name")
    assert all(r["ratio"] >= WCAG_AA for r in hovered), hovered
    screenshot(page, f"panel-{name}-used")
