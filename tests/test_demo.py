"""`forkd-jupyter demo`, the README's main job, end to end against a real
daemon: three live children fit three models on the same loaded data."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.kvm


def demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["forkd-jupyter", "demo", "--rows", "200000", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_branches_three_ways_and_cleans_up(daemon):
    before = {s["id"] for s in daemon.list_sandboxes()}
    done = demo("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rmse = {r["degree"]: r["rmse"] for r in report["results"]}
    assert set(rmse) == {1, 3, 7} and rmse[7] < rmse[3] < rmse[1]  # the models really ran
    assert [t["mode"] for t in report["timings"]] == ["live", "diff", "full"]
    assert all(t["pause_ms"] > 0 for t in report["timings"])
    kinds = [n["kind"] for n in report["tree"]["nodes"]]
    assert kinds.count("snapshot") == 3 and kinds.count("sandbox") == 4
    new = [s for s in daemon.list_sandboxes() if s["id"] not in before]
    assert len(new) == 4 and all(s["status"] == "dead" for s in new)  # cleaned up
    assert not [s for s in daemon.list_snapshots() if s["source_id"] == report["source"]]


def test_demo_text_output_and_keep(daemon):
    done = demo("--keep")
    assert done.returncode == 0, done.stderr
    for line in ("branched live", "the tree:", "how long each branch paused"):
        assert line in done.stdout
    source = done.stdout.split()[1]  # "spawned sb-N in ..."
    assert daemon.get_sandbox(source)["status"] == "running"
    for snap in [s for s in daemon.list_snapshots() if s["source_id"] == source][::-1]:
        daemon.delete_snapshot(snap["id"], cascade=True)
    daemon.kill_sandbox(source)


def test_demo_bad_flag():
    done = demo("--rows", "5")
    assert done.returncode == 2 and "--rows must be at least 1000" in done.stderr
