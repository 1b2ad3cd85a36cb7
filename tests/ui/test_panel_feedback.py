"""The panel's feedback and housekeeping in real JupyterLab and headless
chromium against the real daemon: "Killing…" on a row while its kill runs,
a toast for Copy, a confirmation before deleting any snapshot, the
progress of a cascade delete (its sandboxes killed in parallel), clearing
dead sandboxes and the setting that hides them, saving a snapshot to
disk, icon buttons with
tooltips, and the bundle's version matching the server extension's."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from lab_helpers import open_lab, screenshot
from test_panel import PANEL, UI_TIMEOUT_MS, kill_new_sandboxes, open_panel, row  # noqa: F401

import forkd_jupyter

pytestmark = pytest.mark.kvm

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"

# Every text a row's pending mark or the progress line ever showed, kept by
# the page itself (a short state could come and go between two polls).
RECORD_TEXTS = """
() => {
  window.__forkdSeen = [];
  const seen = () => document.querySelectorAll('.jp-forkd-pending, .jp-forkd-progress')
    .forEach(e => window.__forkdSeen.push(e.textContent));
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true,
    characterData: true});
}
"""


def seen_texts(page) -> list[str]:
    return page.evaluate("window.__forkdSeen")


def show_dead_setting(jupyter_lab) -> bool | None:
    base_url, token = jupyter_lab
    request = urllib.request.Request(
        f"{base_url}/lab/api/settings/forkd-jupyter:plugin",
        headers={"Authorization": f"token {token}"},
    )
    for _ in range(50):
        with urllib.request.urlopen(request, timeout=30) as response:
            value = json.loads(response.read()).get("settings", {}).get("showDead")
        if value is False:
            return value
        time.sleep(0.1)
    return value


def confirm(page, button: str) -> str:
    dialog = page.wait_for_selector(".jp-Dialog")
    text = dialog.inner_text()
    page.click(f'.jp-Dialog button:has-text("{button}")')
    page.wait_for_selector(".jp-Dialog", state="detached")
    return text


def test_feedback_on_slow_and_destructive_actions(page, jupyter_lab, daemon):
    [source] = daemon.spawn_sandboxes(n=1, memory_limit_mib=256, name="feedback-source")
    branched = daemon.branch_sandbox(source["id"], count=3, tag="feedback-kids")
    snap, kids = branched["snapshot"]["id"], branched["children"]
    lone = daemon.branch_sandbox(source["id"], mode="full", tag="feedback-lone")["snapshot"]["id"]
    open_panel(page, jupyter_lab)
    page.wait_for_selector(row("sandbox", kids[-1]["id"]), timeout=UI_TIMEOUT_MS)
    page.evaluate(RECORD_TEXTS)

    # Toolbar and row actions are icon buttons with tooltips.
    for button in ("spawn", "clear-dead", "show-dead", "reload"):
        assert page.get_attribute(f"{PANEL} .jp-forkd-{button}", "title")
    page.hover(row("sandbox", source["id"]))
    for action in ("use", "branch", "copy", "kill"):
        selector = f'{row("sandbox", source["id"])} [data-action="{action}"]'
        assert page.get_attribute(selector, "title"), action
        assert page.query_selector(f"{selector} svg"), action  # an icon, not a word

    page.click(f'{row("sandbox", source["id"])} [data-action="copy"]')
    page.wait_for_selector(f"text=Copied {source['name']}", timeout=UI_TIMEOUT_MS)
    screenshot(page, "panel-copy-toast")

    page.click(f'{row("sandbox", kids[0]["id"])} [data-action="kill"]')
    confirm(page, "Kill")
    page.wait_for_selector(
        f'{PANEL} li[data-id="{kids[0]["id"]}"] > .jp-forkd-status-dead', timeout=UI_TIMEOUT_MS
    )
    assert "Killing…" in seen_texts(page)

    # Save: the snapshot is written to disk (kept across daemon restarts).
    page.click(f'{row("snapshot", lone)} [data-action="save"]')
    page.wait_for_selector(f"text=Saved {lone} to disk", timeout=120_000)
    page.wait_for_function(
        "sel => document.querySelector(sel).textContent.includes('saved')",
        arg=f"{row('snapshot', lone)} .jp-forkd-details",
        timeout=UI_TIMEOUT_MS,
    )
    assert daemon.get_snapshot(lone)["saved_path"]
    assert "Saving…" in seen_texts(page)

    # A snapshot without dependents is deleted only after a confirmation.
    page.click(f'{row("snapshot", lone)} [data-action="delete"]')
    assert lone in confirm(page, "Cancel")
    assert lone in {s["id"] for s in daemon.list_snapshots()}
    page.click(f'{row("snapshot", lone)} [data-action="delete"]')
    confirm(page, "Delete")
    page.wait_for_selector(f'{PANEL} li[data-id="{lone}"]', state="detached")

    # With dependents: listed, killed in parallel with progress, then deleted.
    page.click(f'{row("snapshot", snap)} [data-action="delete"]')
    text = confirm(page, "Delete all")
    assert all(k["id"] in text for k in kids)
    page.wait_for_selector(f'{PANEL} li[data-id="{snap}"]', state="detached", timeout=60_000)
    progress = [t for t in seen_texts(page) if "sandboxes killed" in t]
    assert progress and re.search(r"2 of 2 sandboxes killed", " ".join(progress)), progress
    assert all(daemon.get_sandbox(k["id"])["status"] == "dead" for k in kids)
    screenshot(page, "panel-after-cascade")

    # Hiding dead sandboxes (a toolbar toggle backed by a setting), clearing them.
    dead_row = f'{PANEL} li[data-id="{kids[1]["id"]}"]'
    page.wait_for_selector(dead_row)
    page.click(f"{PANEL} .jp-forkd-show-dead")
    page.wait_for_selector(dead_row, state="detached")
    assert show_dead_setting(jupyter_lab) is False  # the Settings Editor's value
    page.click(f"{PANEL} .jp-forkd-show-dead")
    page.wait_for_selector(dead_row)
    page.click(f"{PANEL} .jp-forkd-clear-dead")
    for kid in kids:
        page.wait_for_selector(f'{PANEL} li[data-id="{kid["id"]}"]', state="detached")
    assert not [s for s in daemon.list_sandboxes() if s["status"] == "dead"]
    assert daemon.get_sandbox(source["id"])["status"] == "running"


def test_the_bundle_is_the_server_extensions_version(page, jupyter_lab):
    bundle = re.search(
        r"BUNDLE_VERSION = '([^']+)'", (LABEXTENSION / "src" / "version.ts").read_text()
    ).group(1)
    package = json.loads((LABEXTENSION / "package.json").read_text())["version"]
    assert bundle == package == forkd_jupyter.__version__
    open_lab(page, jupyter_lab)
    page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
    page.wait_for_selector(f"{PANEL} .jp-forkd-footer", timeout=UI_TIMEOUT_MS)
    assert page.query_selector(f"{PANEL} .jp-forkd-stale-bundle") is None
