"""A cell's checkpoint taken in its own run request (POST
/sandboxes/{id}/runs with ``checkpoint``), as attach mode takes one before
every cell: the run carries the snapshot's record, the snapshot holds the
state just before the cell, a busy sandbox gets neither, a bad mark is a
400 naming the field. Real daemon over HTTP, answers checked against the
OpenAPI document."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.kvm


def wait_finished(http, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = http.get(f"/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} still running")


def snapshot_ids(http) -> set[str]:
    return {s["id"] for s in http.get("/snapshots").json()["snapshots"]}


def test_the_checkpoint_comes_with_the_run_and_holds_the_state_before_it(http, daemon, sb):
    http.post(f"/sandboxes/{sb}/run", json={"code": "x = 1"})
    mark = {"cell": 7, "line": "x = 2", "after": 6}
    r = http.post(f"/sandboxes/{sb}/runs", json={"code": "x = 2\nx", "checkpoint": mark})
    assert r.status_code == 202, r.text
    run = r.json()
    snap = run["checkpoint"]
    assert snap["mode"] == "diff" and snap["status"] == "ready" and snap["checkpoint"] == mark
    assert snap["source_id"] == sb and snap["id"] in snapshot_ids(http)
    done = wait_finished(http, run["id"])
    assert done["result"]["result"]["text/plain"] == "2" and done["checkpoint"]["id"] == snap["id"]
    [child] = daemon.spawn_sandboxes(snapshot_id=snap["id"])
    try:
        assert daemon.run_cell(child["id"], "x").result["text/plain"] == "1"
    finally:
        daemon.kill_sandbox(child["id"])
    plain = http.post(f"/sandboxes/{sb}/runs", json={"code": "3"}).json()
    assert plain["checkpoint"] is None
    wait_finished(http, plain["id"])


def test_a_busy_sandbox_gets_no_checkpoint_and_a_bad_mark_is_a_400(http, sb):
    long = http.post(f"/sandboxes/{sb}/runs", json={"code": "import time\ntime.sleep(1.5)"})
    assert long.status_code == 202
    before = snapshot_ids(http)
    mark = {"cell": 8, "line": "1", "after": 7}
    busy = http.post(f"/sandboxes/{sb}/runs", json={"code": "1", "checkpoint": mark})
    assert busy.status_code == 409 and busy.json()["type"].endswith(":sandbox-busy")
    assert snapshot_ids(http) == before
    wait_finished(http, long.json()["id"])
    bad = http.post(f"/sandboxes/{sb}/runs", json={"code": "1", "checkpoint": {"cell": "x"}})
    assert bad.status_code == 400 and "checkpoint" in bad.text
    assert snapshot_ids(http) == before


def test_the_sdk_hands_the_checkpoint_over_before_any_output(daemon, sb):
    seen: list[tuple[str, object]] = []
    mark = {"cell": 9, "line": "print('hi')", "after": 8}
    result = daemon.run_cell(
        sb,
        "print('hi')",
        on_output=lambda name, text: seen.append(("output", text)),
        checkpoint=mark,
        on_checkpoint=lambda snap: seen.append(("checkpoint", snap["checkpoint"])),
    )
    assert result.stdout == "hi\n"
    assert seen[0] == ("checkpoint", mark)
    assert "".join(str(text) for kind, text in seen if kind == "output") == "hi\n"
