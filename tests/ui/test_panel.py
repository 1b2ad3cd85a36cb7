"""The JupyterLab sidebar panel in real headless chromium, against a real
JupyterLab (with the installed server extension and labextension) and the
real test daemon: the tree, spawning, branching, killing, deleting, copying,
live updates, the current-sandbox highlight, and the message shown when the
daemon is unavailable."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from lab_helpers import is_disabled, open_lab, screenshot
from lab_server import running_jupyter_lab

pytestmark = pytest.mark.kvm

PANEL = '[id="forkd-jupyter:panel"]'
UI_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True)
def kill_new_sandboxes(daemon):
    """The daemon is shared by the whole session: leave no sandbox running."""
    before = {s["id"] for s in daemon.list_sandboxes()}
    yield
    for sandbox in daemon.list_sandboxes():
        if sandbox["id"] not in before and sandbox["status"] == "running":
            daemon.kill_sandbox(sandbox["id"])


def open_panel(page, jupyter_lab) -> None:
    open_lab(page, jupyter_lab)
    page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
    page.wait_for_selector(PANEL, state="visible")


def row(kind: str, record_id: str) -> str:
    """The selector of a record's own row (not its descendants')."""
    return f'{PANEL} li[data-kind="{kind}"][data-id="{record_id}"] > .jp-forkd-row'


def sandbox_ids_shown(page) -> set[str]:
    return set(
        page.eval_on_selector_all(
            f'{PANEL} li[data-kind="sandbox"]', "nodes => nodes.map(n => n.dataset.id)"
        )
    )


def wait_for_new_sandbox(page, known: set[str]) -> str:
    page.wait_for_function(
        """([panel, known]) => [...document.querySelectorAll(panel + ' li[data-kind="sandbox"]')]
              .some(n => !known.includes(n.dataset.id))""",
        arg=[PANEL, sorted(known)],
        timeout=UI_TIMEOUT_MS,
    )
    (new,) = sandbox_ids_shown(page) - known
    return new


def lab_request(jupyter_lab, method: str, path: str, doc: dict | None = None) -> dict:
    base_url, token = jupyter_lab
    request = urllib.request.Request(
        f"{base_url}/{path}",
        data=json.dumps(doc).encode() if doc is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else {}


def test_panel_spawns_and_branches(page, jupyter_lab, daemon):
    open_panel(page, jupyter_lab)
    page.wait_for_selector(f"{PANEL} .jp-forkd-footer")  # the handshake succeeded
    assert daemon.version()["version"] in page.inner_text(f"{PANEL} .jp-forkd-footer")
    before = sandbox_ids_shown(page)
    assert before == {s["id"] for s in daemon.list_sandboxes()}

    page.click(f"{PANEL} .jp-forkd-spawn")
    page.fill(f"{PANEL} .jp-forkd-spawn-name", "panel-made")
    page.select_option(f"{PANEL} .jp-forkd-spawn-memory", "512")
    screenshot(page, "panel-spawn-form")
    page.click(f"{PANEL} .jp-forkd-spawn-submit")
    parent = wait_for_new_sandbox(page, before)
    record = daemon.get_sandbox(parent)
    assert record["status"] == "running" and record["name"] == "panel-made"
    assert record["memory_limit_mib"] == 512
    page.wait_for_selector(f"{PANEL} .jp-forkd-spawn-form", state="detached")
    assert "idle" in page.inner_text(row("sandbox", parent))
    screenshot(page, "panel-spawned")

    page.click(f'{row("sandbox", parent)} [data-action="branch"]')
    form = f'{PANEL} li[data-id="{parent}"] > .jp-forkd-branch-form'
    page.select_option(f"{form} .jp-forkd-branch-mode", "live")
    page.fill(f"{form} .jp-forkd-branch-count", "2")
    page.fill(f"{form} .jp-forkd-branch-tag", "ui-branch")
    screenshot(page, "panel-branch-form")
    page.click(f"{form} .jp-forkd-branch-submit")

    snapshot_li = f'{PANEL} li[data-id="{parent}"] > ul > li[data-kind="snapshot"]'
    page.wait_for_selector(snapshot_li, timeout=UI_TIMEOUT_MS)
    snapshot_id = page.get_attribute(snapshot_li, "data-id")
    children = f'{snapshot_li} > ul > li[data-kind="sandbox"]'
    page.wait_for_function(
        "sel => document.querySelectorAll(sel).length === 2", arg=children, timeout=UI_TIMEOUT_MS
    )
    page.wait_for_selector(form, state="detached")
    screenshot(page, "panel-branched")

    snapshot = daemon.get_snapshot(snapshot_id)
    assert snapshot["source_id"] == parent and snapshot["mode"] == "live"
    assert snapshot["tag"] == "ui-branch"
    details = page.inner_text(row("snapshot", snapshot_id))
    assert "ui-branch" in details and "live" in details and "pause" in details
    shown_children = set(
        page.eval_on_selector_all(children, "nodes => nodes.map(n => n.dataset.id)")
    )
    assert shown_children == {
        s["id"] for s in daemon.list_sandboxes() if s["parent_snapshot"] == snapshot_id
    }


def test_panel_follows_changes_made_elsewhere(page, jupyter_lab, daemon):
    open_panel(page, jupyter_lab)
    page.wait_for_selector(f"{PANEL} .jp-forkd-footer")
    (outside,) = daemon.spawn_sandboxes(n=1)
    page.wait_for_selector(row("sandbox", outside["id"]), timeout=UI_TIMEOUT_MS)
    daemon.kill_sandbox(outside["id"])
    page.wait_for_selector(
        f'{PANEL} li[data-id="{outside["id"]}"] > .jp-forkd-status-dead', timeout=UI_TIMEOUT_MS
    )


def test_panel_kills_copies_and_deletes(page, jupyter_lab, daemon):
    (source,) = daemon.spawn_sandboxes(n=1)
    branched = daemon.branch_sandbox(source["id"], count=1)
    snapshot_id = branched["snapshot"]["id"]
    (child,) = branched["children"]
    open_panel(page, jupyter_lab)
    page.wait_for_selector(row("sandbox", child["id"]))

    page.click(f'{row("sandbox", source["id"])} [data-action="copy"]')
    assert page.evaluate("navigator.clipboard.readText()") == source["name"]

    page.click(f'{row("sandbox", source["id"])} [data-action="kill"]')
    page.click('.jp-Dialog button:has-text("Kill")')
    page.wait_for_selector(
        f'{PANEL} li[data-id="{source["id"]}"] > .jp-forkd-status-dead', timeout=UI_TIMEOUT_MS
    )
    assert daemon.get_sandbox(source["id"])["exit_reason"] == "killed"

    page.click(f'{row("snapshot", snapshot_id)} [data-action="copy"]')
    assert page.evaluate("navigator.clipboard.readText()") == snapshot_id

    # Spawn on a snapshot's row: one more child of it (after its source died).
    page.click(f'{row("snapshot", snapshot_id)} [data-action="spawn"]')
    page.wait_for_function(
        "([url_id, n]) => document.querySelectorAll("
        "`li[data-id='${url_id}'] > ul > li[data-kind='sandbox']`).length === n",
        arg=[snapshot_id, 2],
        timeout=UI_TIMEOUT_MS,
    )
    kids = [s for s in daemon.list_sandboxes() if s["parent_snapshot"] == snapshot_id]
    assert len(kids) == 2 and all(k["status"] == "running" for k in kids)

    # The snapshot still has live children: deleting it asks before cascading.
    page.click(f'{row("snapshot", snapshot_id)} [data-action="delete"]')
    dialog = page.wait_for_selector(".jp-Dialog")
    assert child["id"] in dialog.inner_text()
    page.click('.jp-Dialog button:has-text("Delete all")')
    page.wait_for_selector(f'{PANEL} li[data-id="{snapshot_id}"]', state="detached")
    assert snapshot_id not in {s["id"] for s in daemon.list_snapshots()}
    assert all(daemon.get_sandbox(k["id"])["status"] == "dead" for k in kids)
    screenshot(page, "panel-after-delete")


def test_panel_reports_refused_actions(page, jupyter_lab, daemon):
    (plain,) = daemon.spawn_sandboxes(n=1, live_fork=False)
    open_panel(page, jupyter_lab)
    page.click(f'{row("sandbox", plain["id"])} [data-action="branch"]')
    form = f'{PANEL} li[data-id="{plain["id"]}"] > .jp-forkd-branch-form'
    # live needs a live_fork sandbox: the picker offers it disabled
    assert page.is_disabled(f'{form} option[value="live"]')
    # A tag already taken: the daemon refuses and the panel shows why.
    daemon.branch_sandbox(plain["id"], mode="full", tag="ui-taken")
    page.select_option(f"{form} .jp-forkd-branch-mode", "full")
    page.fill(f"{form} .jp-forkd-branch-tag", "ui-taken")
    page.click(f"{form} .jp-forkd-branch-submit")
    banner = f"{PANEL} .jp-forkd-action-error"
    page.wait_for_selector(banner, timeout=UI_TIMEOUT_MS)
    assert "ui-taken" in page.inner_text(banner)
    screenshot(page, "panel-refused")
    assert [s["tag"] for s in daemon.list_snapshots() if s["source_id"] == plain["id"]] == [
        "ui-taken"
    ]
    daemon.kill_sandbox(plain["id"])  # dies while its row is on screen
    page.wait_for_selector(f'{PANEL} li[data-id="{plain["id"]}"] > .jp-forkd-status-dead')
    assert page.query_selector(form) is None  # a dead sandbox offers no branch form


def test_active_notebook_sandbox_is_highlighted(page, jupyter_lab, jupyter_lab_root, daemon):
    (sandbox,) = daemon.spawn_sandboxes(n=1)
    notebook = {
        "cells": [],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jupyter_lab_root / "current.ipynb").write_text(json.dumps(notebook))
    open_lab(page, jupyter_lab, "current.ipynb")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
    page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
    page.wait_for_selector(row("sandbox", sandbox["id"]))

    sessions = []
    for _ in range(60):
        sessions = [
            s
            for s in lab_request(jupyter_lab, "GET", "api/sessions")
            if s["path"].endswith("current.ipynb") and s.get("kernel")
        ]
        if sessions:
            break
        page.wait_for_timeout(500)
    (session,) = sessions
    lab_request(
        jupyter_lab,
        "POST",
        "forkd/api/current",
        {"kernel_id": session["kernel"]["id"], "sandbox_id": sandbox["id"]},
    )
    highlighted = f"{row('sandbox', sandbox['id'])}.jp-forkd-mod-current"
    page.wait_for_selector(highlighted, timeout=UI_TIMEOUT_MS)
    assert page.eval_on_selector_all(f"{PANEL} .jp-forkd-mod-current", "n => n.length") == 1
    screenshot(page, "panel-current")


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_panel_explains_an_unavailable_daemon(page, daemon, tmp_path):
    nowhere = f"http://127.0.0.1:{_unused_port()}"
    (tmp_path / "root").mkdir()
    with running_jupyter_lab(tmp_path / "root", tmp_path, FORKD_JUPYTER_URL=nowhere) as lab:
        open_panel(page, lab)
        banner = page.wait_for_selector(f"{PANEL} .jp-forkd-no-daemon", timeout=UI_TIMEOUT_MS)
        text = banner.inner_text()
        assert "daemon is unavailable" in text and nowhere in text
        assert is_disabled(page, f"{PANEL} .jp-forkd-spawn")
        screenshot(page, "panel-no-daemon")


def test_panel_explains_a_missing_server_extension(page, tmp_path):
    (tmp_path / "root").mkdir()
    with running_jupyter_lab(tmp_path / "root", tmp_path, with_server_extension=False) as lab:
        open_panel(page, lab)
        banner = page.wait_for_selector(f"{PANEL} .jp-forkd-no-extension", timeout=UI_TIMEOUT_MS)
        assert "server extension is not enabled" in banner.inner_text()
        assert is_disabled(page, f"{PANEL} .jp-forkd-spawn")
        screenshot(page, "panel-no-extension")
