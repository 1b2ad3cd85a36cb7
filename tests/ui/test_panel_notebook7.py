"""The panel in Notebook 7 (View > Left Sidebar), in headless chromium
against the real daemon and a real kernel: the notebook's current sandbox
gets the "current" badge there too."""

from __future__ import annotations

import pytest
from lab_helpers import open_notebook7, run_all_cells, screenshot, write_notebook
from test_panel import PANEL, kill_new_sandboxes, row  # noqa: F401
from test_panel_themes import wait_for_sandbox_named

pytestmark = pytest.mark.kvm

NOTEBOOK = "notebook7-panel.ipynb"


def test_current_badge_in_notebook7(page, jupyter_lab, jupyter_lab_root, daemon):
    cell = "%load_ext forkd_jupyter\nsb = %forkd spawn --mem 256 --name nb7-current"
    write_notebook(jupyter_lab_root / NOTEBOOK, [cell])
    open_notebook7(page, jupyter_lab, NOTEBOOK)
    page.click("#menu-panel >> text=View")
    page.hover(".lm-Menu >> text=Left Sidebar")
    page.click(".lm-Menu >> text=Show forkd sandboxes and snapshots")
    page.wait_for_selector(f"{PANEL} .jp-forkd-footer", timeout=60_000)
    run_all_cells(page, 1)
    mine = wait_for_sandbox_named(daemon, "nb7-current")
    page.wait_for_selector(f"{row('sandbox', mine)}.jp-forkd-mod-current", timeout=60_000)
    assert page.inner_text(f"{row('sandbox', mine)} .jp-forkd-badge") == "current"
    screenshot(page, "panel-notebook7-current")
