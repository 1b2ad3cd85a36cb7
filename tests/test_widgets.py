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
