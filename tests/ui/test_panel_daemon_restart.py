"""`daemon stop` while JupyterLab is open, in headless chromium against a
daemon and a JupyterLab of this test's own (so the session's daemon is not
disturbed): the panel says the daemon is stopped and does not start it
again by itself; "Start the daemon" starts it and the panel reloads the
whole state (the sandbox that died with the old daemon shown dead, at
once); the notebook whose current sandbox died gets "Spawn a fresh one",
which spawns one in its kernel and moves the current badge there."""

from __future__ import annotations

import time

import pytest
from daemon_private import PrivateDaemon
from lab_helpers import open_lab, run_all_cells, screenshot, write_notebook
from lab_server import running_jupyter_lab
from test_panel import PANEL, row

from forkd_jupyter.client import Controller, connection

pytestmark = pytest.mark.kvm

NOTEBOOK = "restart.ipynb"
UI_TIMEOUT_MS = 60_000


def test_a_stopped_daemon_is_reported_not_restarted(page, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    private = PrivateDaemon(state).start()
    url = f"unix://{private.socket}"
    env = {
        "FORKD_JUPYTER_STATE_DIR": str(state),
        "FORKD_JUPYTER_SOCKET": str(private.socket),
        "FORKD_JUPYTER_URL": url,
    }
    root = tmp_path / "root"
    root.mkdir()
    cell = "%load_ext forkd_jupyter\nsb = %forkd spawn --mem 256 --name doomed"
    write_notebook(root / NOTEBOOK, [cell])
    conn = connection.resolve(url)
    try:
        with running_jupyter_lab(root, tmp_path / "home", **env) as lab:
            open_lab(page, lab, NOTEBOOK)
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
            run_all_cells(page, 1)
            page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
            current = f"{PANEL} .jp-forkd-row.jp-forkd-mod-current"
            page.wait_for_selector(current, timeout=UI_TIMEOUT_MS)
            doomed = page.get_attribute(f"{current} >> xpath=..", "data-id")

            private.stop()  # `forkd-jupyter daemon stop`, as far as the panel can tell
            page.wait_for_selector(f"{PANEL} .jp-forkd-daemon-stopped", timeout=UI_TIMEOUT_MS)
            screenshot(page, "panel-daemon-stopped")
            time.sleep(4)  # several retries: none of them may start it
            assert not connection.is_up(conn, timeout=1.0)
            assert page.query_selector(f"{PANEL} .jp-forkd-daemon-stopped")

            page.click(f"{PANEL} .jp-forkd-start-daemon")
            page.wait_for_selector(f"{PANEL} .jp-forkd-footer", timeout=UI_TIMEOUT_MS)
            assert connection.is_up(conn, timeout=5.0)
            # The whole state again, at once: the sandbox died with the old daemon.
            page.wait_for_selector(
                f'{PANEL} li[data-id="{doomed}"] > .jp-forkd-status-dead', timeout=10_000
            )
            banner = page.wait_for_selector(
                f"{PANEL} .jp-forkd-dead-current", timeout=UI_TIMEOUT_MS
            )
            assert "dead" in banner.inner_text() and "daemon restarted" in banner.inner_text()
            screenshot(page, "panel-dead-current")
            page.click(f"{PANEL} .jp-forkd-spawn-current")
            page.wait_for_function(
                """([sel, doomed]) => {
                    const row = document.querySelector(sel);
                    return row && row.parentElement.dataset.id !== doomed;
                }""",
                arg=[current, doomed],
                timeout=UI_TIMEOUT_MS,
            )
            fresh = page.get_attribute(f"{current} >> xpath=..", "data-id")
            with Controller(url=url, autostart=False) as controller:
                assert controller.get_sandbox(fresh)["status"] == "running"
            page.wait_for_selector(f"{PANEL} .jp-forkd-dead-current", state="detached")
            assert page.query_selector(row("sandbox", fresh))
            screenshot(page, "panel-fresh-current")
    finally:
        if connection.is_up(conn, timeout=1.0):
            with Controller(url=url, autostart=False) as controller:
                controller.shutdown_daemon()
        private.stop()
