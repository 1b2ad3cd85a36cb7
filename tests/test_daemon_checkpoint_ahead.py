"""A notebook's checkpoints taken ahead (controller/ahead.py), over real
HTTP: once a checkpointed cell's result is out, the next checkpoint is
taken, and the next checkpointed cell uses it, unless the sandbox was used
otherwise in between (then it takes its own, and the unused one is folded
into it: nothing lost, no record left without a parent)."""

from __future__ import annotations

import time

import pytest
from test_daemon_runs import wait_finished

pytestmark = pytest.mark.kvm


@pytest.fixture
def sb(daemon):
    """A sandbox of its own per test (one is killed, one holds 96 MiB)."""
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=512)
    yield rec["id"]
    daemon.kill_sandbox(rec["id"])


def run_checkpointed(http, sb: str, code: str, cell: int) -> dict:
    mark = {"cell": cell, "line": code.splitlines()[0], "after": cell - 1}
    r = http.post(f"/sandboxes/{sb}/runs", json={"code": code, "checkpoint": mark})
    assert r.status_code == 202, r.text
    run = wait_finished(http, r.json()["id"])
    assert run["status"] == "done", run
    assert run["checkpoint"]["checkpoint"] == mark and run["checkpoint"]["status"] == "ready"
    return run


def value_in_child(daemon, snapshot_id: str, code: str) -> str:
    [child] = daemon.spawn_sandboxes(snapshot_id=snapshot_id)
    try:
        return daemon.run_cell(child["id"], code).result["text/plain"]
    finally:
        daemon.kill_sandbox(child["id"])


def test_the_next_checkpoint_is_taken_when_a_cell_ends(http, daemon, sb):
    first = run_checkpointed(http, sb, "x = 1", 1)
    time.sleep(0.3)  # the notebook reads the result; the checkpoint is taken meanwhile
    sent = time.time()
    second = run_checkpointed(http, sb, "x = 2", 2)
    snap = second["checkpoint"]
    # Made before the cell was asked for, from the state the first cell left,
    # on the first cell's checkpoint.
    assert snap["created_at"] < sent
    assert snap["parent"] == first["checkpoint"]["id"]
    assert value_in_child(daemon, snap["id"], "x") == "1"
    third = run_checkpointed(http, sb, "x", 3)
    assert third["result"]["result"]["text/plain"] == "2"
    assert value_in_child(daemon, third["checkpoint"]["id"], "x") == "2"


def test_a_sandbox_used_in_between_gets_a_checkpoint_of_its_own(http, daemon, sb):
    first = run_checkpointed(http, sb, "x = 1", 1)
    time.sleep(0.2)
    before = {s["id"] for s in http.get("/snapshots").json()["snapshots"]}
    # Used otherwise after the checkpoint was taken ahead: a plain cell and a file.
    assert http.post(f"/sandboxes/{sb}/run", json={"code": "x = 5"}).status_code == 200
    put = http.put(f"/sandboxes/{sb}/files", params={"path": "/sandbox/f.txt"}, content=b"kept")
    assert put.status_code in (200, 201, 204), put.text
    sent = time.time()
    second = run_checkpointed(http, sb, "x = 6", 2)
    snap = second["checkpoint"]
    assert snap["created_at"] >= sent  # taken for this cell: the one ahead was out of date
    code = "x, open('/sandbox/f.txt').read()"
    assert value_in_child(daemon, snap["id"], code) == "(5, 'kept')"
    # The unused one was folded into it: one record more, built on the first.
    after = {s["id"] for s in http.get("/snapshots").json()["snapshots"]}
    assert after - before == {snap["id"]} and snap["parent"] == first["checkpoint"]["id"]


def test_a_cell_sent_while_the_checkpoint_is_taken_waits_for_it(http, daemon, sb):
    # A cell that writes 96 MiB: its checkpoint ahead takes a while, and the
    # next cell, sent at once, must neither be refused nor be in it.
    n = 12 << 20
    run_checkpointed(http, sb, f"import numpy as np\na = np.ones({n})\na[::512] = 3", 1)
    second = run_checkpointed(http, sb, "y = 1\nfloat(a.sum())", 2)
    assert second["result"]["result"]["text/plain"] == str(float(n + 2 * (n // 512)))
    snap = second["checkpoint"]
    assert value_in_child(daemon, snap["id"], "'y' in globals(), float(a[512])") == "(False, 3.0)"


def test_a_sandbox_killed_with_a_checkpoint_ahead_leaves_the_daemon_sound(http, daemon, sb):
    run_checkpointed(http, sb, "z = [1] * 1000", 1)
    time.sleep(0.2)
    assert http.delete(f"/sandboxes/{sb}").status_code == 200
    snaps = http.get("/snapshots").json()["snapshots"]
    assert all(s["status"] == "ready" for s in snaps if s["source_id"] == sb)
    [other] = daemon.spawn_sandboxes()
    try:
        assert daemon.run_cell(other["id"], "1 + 1").result["text/plain"] == "2"
    finally:
        daemon.kill_sandbox(other["id"])
