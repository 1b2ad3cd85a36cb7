"""The widgets' Python side against the real daemon: their synced traits
follow changes made anywhere within a second, clicks reach Python, and the
background feed stops with the widget."""

from __future__ import annotations

import time

import pytest

from forkd_jupyter.magics.session import Session
from forkd_jupyter.widgets import BranchTree, PauseTimings

pytestmark = pytest.mark.kvm


def wait_until(predicate, timeout: float = 1.0) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "the widget did not update in time"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def source(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    yield sb
    for snap in daemon.list_snapshots()[::-1]:
        if snap["source_id"] == sb["id"]:
            daemon.delete_snapshot(snap["id"], cascade=True)
    daemon.kill_sandbox(sb["id"])


def node_ids(widget: BranchTree) -> set[str]:
    return {n["id"] for n in widget.tree.get("nodes", [])}


def test_branch_tree_follows_the_daemon_within_a_second(daemon, source):
    tree = BranchTree(controller=daemon)
    try:
        assert source["id"] in node_ids(tree)
        out = daemon.branch_sandbox(source["id"], count=1, tag="widget-tag")
        snap, [kid] = out["snapshot"], out["children"]
        wait_until(lambda: {snap["id"], kid["id"]} <= node_ids(tree))
        edges = {(e["source"], e["target"]) for e in tree.tree["edges"]}
        assert (source["id"], snap["id"]) in edges and (snap["id"], kid["id"]) in edges
        daemon.kill_sandbox(kid["id"])
        wait_until(
            lambda: any(n["id"] == kid["id"] and n["status"] == "dead" for n in tree.tree["nodes"])
        )
    finally:
        tree.close()
    wait_until(lambda: not tree.following, timeout=3)


def test_pause_timings_follow_branches(daemon, source):
    chart = PauseTimings(controller=daemon)
    try:
        before = {t["snapshot_id"] for t in chart.timings}
        modes = ("diff", "full", "diff", "live", "diff")
        snaps = [daemon.branch_sandbox(source["id"], mode=m)["snapshot"] for m in modes]
        wait_until(lambda: {s["id"] for s in snaps} <= {t["snapshot_id"] for t in chart.timings})
        mine = {t["snapshot_id"]: t for t in chart.timings}
        for s in snaps:
            assert mine[s["id"]]["mode"] == s["mode"] and mine[s["id"]]["pause_ms"] > 0
            # The source's longest freeze is shown beside the pause: never below it.
            assert mine[s["id"]]["stall_ms"] >= mine[s["id"]]["pause_ms"]
            assert mine[s["id"]]["stall_total_ms"] >= mine[s["id"]]["stall_ms"]
        summary = chart.summary()
        assert set(summary) == {"live", "diff", "full"}
        if not before:  # the chart holds just these branches: its marks are theirs
            diffs = sorted(mine[s["id"]]["pause_ms"] for s in snaps if s["mode"] == "diff")
            assert summary["diff"]["p50"] == diffs[1]
            assert diffs[1] <= summary["diff"]["p90"] <= diffs[2]
        assert summary["diff"]["p90"] >= summary["diff"]["p50"] > 0
        assert summary["live"]["stall_p50"] >= summary["live"]["p50"] > 0
    finally:
        chart.close()


def test_clicks_select_and_double_clicks_make_current(daemon, source):
    session = Session()
    tree = BranchTree(controller=daemon, session=session, live=False)
    selected: list[str] = []
    tree.on_select(selected.append)
    tree.set_state({"selected": source["id"]})  # what a click sends from the front end
    assert tree.selected == source["id"] and selected == [source["id"]]
    tree._handle_custom_msg({"type": "make_current", "id": source["id"]}, [])
    assert session.current == source["id"] and tree.current == source["id"]
    session.set_current(None)  # e.g. `%forkd kill` of the current one
    assert tree.current is None
    tree._handle_custom_msg({"type": "make_current", "id": "no-such-node"}, [])
    assert session.current is None
    tree.close()


def test_a_tree_built_directly_follows_the_notebook_session(daemon, source):
    """`BranchTree()` without arguments is `%forkd tree`: it outlines the
    session's current sandbox, and a double click changes the session's."""
    from forkd_jupyter.magics import current_session

    session = current_session(create=True)
    session.set_current(source["id"])
    [other] = daemon.spawn_sandboxes(memory_limit_mib=256)
    tree = BranchTree(live=False)
    try:
        assert tree.current == source["id"]
        tree.refresh()
        tree._handle_custom_msg({"type": "make_current", "id": other["id"]}, [])
        assert session.current == other["id"] == tree.current
        session.set_current(source["id"])  # e.g. `%forkd use`
        assert tree.current == source["id"]
    finally:
        tree.close()
        session.set_current(None)
        daemon.kill_sandbox(other["id"])


def test_clear_dead_removes_dead_records_only(daemon, source):
    [doomed] = daemon.spawn_sandboxes(memory_limit_mib=256)
    daemon.kill_sandbox(doomed["id"])
    tree = BranchTree(controller=daemon, session=Session(daemon))
    try:
        wait_until(lambda: doomed["id"] in node_ids(tree))
        cleared = tree.clear_dead()
        assert doomed["id"] in cleared and source["id"] not in cleared
        ids = {s["id"] for s in daemon.list_sandboxes()}
        assert doomed["id"] not in ids and source["id"] in ids
        wait_until(lambda: doomed["id"] not in node_ids(tree))
    finally:
        tree.close()


def test_timings_are_history(daemon, source):
    chart = PauseTimings(controller=daemon)
    try:
        snap = daemon.branch_sandbox(source["id"], mode="full")["snapshot"]
        wait_until(lambda: snap["id"] in {t["snapshot_id"] for t in chart.timings})
        daemon.delete_snapshot(snap["id"])
        wait_until(
            lambda: any(t["snapshot_id"] == snap["id"] and t["deleted"] for t in chart.timings)
        )
    finally:
        chart.close()


def test_widgets_resynchronise_after_a_daemon_restart(tmp_path, monkeypatch):
    """The daemon stops: the widget says so and does not start it again;
    "Reconnect" (asked by the user) starts it and the widget reloads the
    whole state at once (the sandbox died with the old daemon), with no
    further event needed, and a dead current sandbox has its way on."""
    from daemon_private import PrivateDaemon

    from forkd_jupyter.client import Controller, connection

    private = PrivateDaemon(tmp_path).start()
    controller = Controller(url=f"unix://{private.socket}", autostart=False)
    session = Session(controller)
    tree = None
    try:
        [sb] = controller.spawn_sandboxes(memory_limit_mib=256)
        session.set_current(sb["id"])
        tree = BranchTree(session=session)
        assert sb["id"] in node_ids(tree) and tree.current == sb["id"]
        private.stop()
        wait_until(lambda: "unavailable" in tree.connection, timeout=5)
        time.sleep(2.5)  # several reconnection attempts
        assert not connection.is_up(controller.connection, timeout=1.0)  # not restarted
        # The button: the daemon is started (in the private state directory).
        monkeypatch.setenv("FORKD_JUPYTER_STATE_DIR", str(tmp_path))
        tree._handle_custom_msg({"type": "reconnect"}, [])
        wait_until(lambda: tree.connection == "", timeout=30)
        wait_until(
            lambda: any(n["id"] == sb["id"] and n["status"] == "dead" for n in tree.tree["nodes"]),
            timeout=3,
        )
        fresh = tree.spawn_current()
        assert session.current == fresh == tree.current
        assert controller.get_sandbox(fresh)["status"] == "running"
        controller.kill_sandbox(fresh)
    finally:
        if tree is not None:
            tree.close()
        if connection.is_up(controller.connection, timeout=1.0):
            controller.shutdown_daemon()
        controller.close()
        private.stop()
