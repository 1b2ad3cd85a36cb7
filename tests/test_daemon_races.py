"""Uniqueness decided atomically under concurrent clients, ids and names
told apart, and the lifecycle of records: a second DELETE removes a dead
sandbox's record (with a ``removed`` event), a second cell on a busy
sandbox is refused with 409 sandbox-busy."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.kvm


def client(daemon) -> httpx.Client:
    conn = daemon.connection
    return httpx.Client(
        transport=conn.transport(),
        base_url=conn.base_url + "/v1",
        headers=conn.headers(),
        timeout=120,
    )


def all_at_once(daemon, n: int, fn) -> list[httpx.Response]:
    barrier = threading.Barrier(n)

    def one(_):
        with client(daemon) as c:
            barrier.wait()
            return fn(c)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_parallel_spawns_with_one_name_make_one_sandbox(daemon):
    answers = all_at_once(
        daemon, 3, lambda c: c.post("/sandboxes", json={"name": "dup", "memory_limit_mib": 256})
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409], [r.text for r in answers]
    assert all(r.json()["type"].endswith(":name-taken") for r in answers if r.status_code == 409)
    running = [
        s for s in daemon.list_sandboxes() if s["name"] == "dup" and s["status"] == "running"
    ]
    assert len(running) == 1
    daemon.kill_sandbox(running[0]["id"])


def test_parallel_branches_with_one_tag_make_one_snapshot(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    url = f"/sandboxes/{sb['id']}/branch"
    answers = all_at_once(daemon, 3, lambda c: c.post(url, json={"mode": "full", "tag": "same"}))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409], [r.text for r in answers]
    tagged = [s for s in daemon.list_snapshots() if s["tag"] == "same"]
    assert len(tagged) == 1
    daemon.delete_snapshot(tagged[0]["id"], cascade=True)
    daemon.kill_sandbox(sb["id"])


def test_a_tag_or_name_shaped_like_an_id_is_refused(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    with client(daemon) as c:
        snap = c.post(f"/sandboxes/{sb['id']}/branch", json={"mode": "full"}).json()["snapshot"]
        r = c.post(f"/sandboxes/{sb['id']}/branch", json={"mode": "full", "tag": snap["id"]})
        assert r.status_code == 400 and r.json()["field"] == "tag", r.text
        r = c.post("/sandboxes", json={"name": sb["id"]})
        assert r.status_code == 400 and r.json()["field"] == "name", r.text
        assert len([s for s in daemon.list_snapshots() if s["source_id"] == sb["id"]]) == 1
    daemon.delete_snapshot(snap["id"], cascade=True)
    daemon.kill_sandbox(sb["id"])


def test_a_second_delete_removes_a_dead_record_with_an_event(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    seen: list[dict] = []
    with daemon.events(since=daemon.tree()["seq"]) as events:
        daemon.kill_sandbox(sb["id"])
        with client(daemon) as c:
            assert c.get(f"/sandboxes/{sb['id']}").json()["status"] == "dead"
            assert c.delete(f"/sandboxes/{sb['id']}").status_code == 200
            assert c.get(f"/sandboxes/{sb['id']}").status_code == 404
        for event in events:
            seen.append(event)
            if event.get("action") == "removed":
                break
    removed = seen[-1]
    assert removed["type"] == "sandbox" and removed["sandbox"]["id"] == sb["id"]
    state = json.loads((daemon_state() / "state.json").read_text())
    assert sb["id"] not in {s["id"] for s in state["sandboxes"]}


def daemon_state():
    import os
    from pathlib import Path

    return Path(os.environ["FORKD_JUPYTER_STATE_DIR"])


def test_a_second_cell_on_a_busy_sandbox_is_409_sandbox_busy(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    first = threading.Thread(target=lambda: daemon.run_cell(sb["id"], "import time; time.sleep(3)"))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not daemon.get_sandbox(sb["id"])["busy"] and time.monotonic() < deadline:
            time.sleep(0.02)
        with client(daemon) as c:
            t0 = time.monotonic()
            r = c.post(f"/sandboxes/{sb['id']}/run", json={"code": "1"})
            assert time.monotonic() - t0 < 1.5  # refused at once, not queued
        assert r.status_code == 409 and r.json()["type"].endswith(":sandbox-busy"), r.text
        assert r.json()["id"] == sb["id"]
    finally:
        first.join()
    daemon.kill_sandbox(sb["id"])
