"""The daemon's routes over real HTTP on its unix socket, against real
sandboxes; every answer is validated against docs/openapi.yaml."""

from __future__ import annotations

import threading
import time

import pytest
from openapi_check import checked_client

from forkd_jupyter.client import BadRequest, Conflict, NotFound

pytestmark = pytest.mark.kvm

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def http(daemon):
    with checked_client(daemon) as client:
        yield client


@pytest.fixture(scope="module")
def source(daemon):
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=1024, name="api-source")
    daemon.run_cell(sb["id"], "import numpy as np\nbig = np.ones(40 << 20, dtype=np.uint8)\nx = 41")
    yield sb
    daemon.kill_sandbox(sb["id"])


def problem_of(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    doc = response.json()
    assert doc["type"] == f"urn:forkd-jupyter:problem:{kind}", doc
    assert doc["status"] == status and doc["title"] and doc["detail"]
    return doc


def test_health_version_doctor(http):
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["api"] == 1
    assert http.get("/version").json()["version"] == health["version"]
    doctor = http.get("/doctor").json()
    assert doctor["ok"] is True and len(doctor["checks"]) >= 5
    assert all(c["status"] in ("ok", "warn", "fail") for c in doctor["checks"].values())


def test_errors_are_problem_documents(http, source):
    assert "sb-999" in problem_of(http.get("/sandboxes/sb-999"), 404, "not-found")["detail"]
    problem_of(http.get("/snapshots/no-such-tag"), 404, "not-found")
    problem_of(http.post("/sandboxes", content=b"{not json"), 400, "bad-request")
    problem_of(http.post("/sandboxes", json={"n": "two"}), 400, "bad-request")
    problem_of(http.post("/sandboxes", json={"n": 0}), 400, "bad-request")
    problem_of(http.post(f"/sandboxes/{source['id']}/run", json={}), 400, "bad-request")
    problem_of(http.post("/sandboxes", json={"memory_limit_mib": 1}), 400, "bad-request")


def test_unknown_route_and_method(daemon):
    # outside the documented operations, so checked by hand
    import httpx

    conn = daemon.connection
    with httpx.Client(base_url=conn.base_url, transport=conn.transport()) as raw:
        r = raw.get("/v1/nope")
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        r = raw.delete("/v1/tree")
        assert r.status_code == 405 and r.json()["type"].endswith("method-not-allowed")


def test_spawn_get_list_run(http, source):
    assert http.get(f"/sandboxes/{source['id']}").json()["name"] == "api-source"
    assert http.get("/sandboxes/api-source").json()["id"] == source["id"]
    ids = [s["id"] for s in http.get("/sandboxes").json()["sandboxes"]]
    assert source["id"] in ids
    r = http.post(f"/sandboxes/{source['id']}/run", json={"code": "print('out')\nx + 1"}).json()
    assert r["stdout"] == "out\n" and r["result"]["text/plain"] == "42" and r["error"] is None
    bad = http.post(f"/sandboxes/{source['id']}/run", json={"code": "1/0"}).json()
    assert bad["error"]["ename"] == "ZeroDivisionError"


def test_a_name_is_free_again_once_its_sandbox_is_dead(daemon, http, source):
    problem_of(http.post("/sandboxes", json={"name": "api-source"}), 409, "name-taken")
    [first] = daemon.spawn_sandboxes(memory_limit_mib=1024, name="api-reused")
    daemon.kill_sandbox(first["id"])
    [second] = daemon.spawn_sandboxes(memory_limit_mib=1024, name="api-reused")
    try:
        assert second["id"] != first["id"]
        assert http.get("/sandboxes/api-reused").json()["id"] == second["id"]  # the running one
        assert http.get(f"/sandboxes/{first['id']}").json()["status"] == "dead"
    finally:
        daemon.kill_sandbox(second["id"])


def test_run_streams_output_as_produced(daemon, source):
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.0)\nprint('second')\n7"
    result = daemon.run_cell(
        source["id"], code, on_output=lambda n, t: seen.append((time.monotonic() - started, t))
    )
    done = time.monotonic() - started
    first = next(at for at, text in seen if "first" in text)
    assert done - first >= 0.8, (seen, done)  # first line arrived before the sleep ended
    assert result.result["text/plain"] == "7" and "second" in result.stdout


def test_interrupt_stops_a_busy_cell(daemon, source):
    outcome = {}

    def run():
        outcome["r"] = daemon.run_cell(source["id"], "print('go', flush=True)\nwhile True: pass")

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while not daemon.get_sandbox(source["id"])["busy"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    daemon.interrupt(source["id"])
    t.join(20)
    assert not t.is_alive()
    assert outcome["r"].error.ename == "KeyboardInterrupt"
    assert daemon.run_cell(source["id"], "x").result["text/plain"] == "41"


def test_push_pull(daemon, source):
    daemon.push(source["id"], "pushed", {"a": [1, 2, 3], "b": b"\x00"})
    assert daemon.run_cell(source["id"], "pushed['a'][2]").result["text/plain"] == "3"
    assert daemon.pull(source["id"], "pushed") == {"a": [1, 2, 3], "b": b"\x00"}
    with pytest.raises(BadRequest):
        daemon.pull(source["id"], "no_such_variable")
    with pytest.raises(BadRequest):
        daemon.push(source["id"], "not an identifier", 1)


def test_children_take_live_fork_and_refuse_another_memory_size(http, daemon, source):
    snap = daemon.branch_sandbox(source["id"], mode="full", tag="api-kids")["snapshot"]
    try:
        body = {"snapshot_id": snap["id"], "memory_limit_mib": 512}
        doc = problem_of(http.post("/sandboxes", json=body), 400, "bad-request")
        assert "1024 MiB" in doc["detail"]
        same = http.post("/sandboxes", json={**body, "memory_limit_mib": 1024, "live_fork": False})
        [plain] = same.json()["sandboxes"]
        assert plain["live_fork"] is False and plain["memory_limit_mib"] == 1024
        refused = http.post(f"/sandboxes/{plain['id']}/branch", json={"mode": "live"})
        problem_of(refused, 400, "bad-request")
        [live] = daemon.spawn_sandboxes(snapshot_id=snap["id"])
        assert live["live_fork"] is True
    finally:
        daemon.delete_snapshot(snap["id"], cascade=True)


def test_branch_argument_rules(http, daemon, source):
    url = f"/sandboxes/{source['id']}/branch"
    doc = problem_of(http.post(url, json={"mode": "full", "diff": True}), 400, "bad-request")
    assert "legacy" in doc["detail"]
    problem_of(http.post(url, json={"mode": "full", "wait": False}), 400, "bad-request")
    problem_of(http.post(url, json={"mode": "sideways"}), 400, "bad-request")
    problem_of(http.post(url, json={"count": -1}), 400, "bad-request")
    [plain] = daemon.spawn_sandboxes(live_fork=False, memory_limit_mib=256)
    try:
        r = http.post(f"/sandboxes/{plain['id']}/branch", json={"mode": "live"})
        assert "live_fork" in problem_of(r, 400, "bad-request")["detail"]
        full = http.post(f"/sandboxes/{plain['id']}/branch", json={}).json()
        assert full["snapshot"]["mode"] == "full"  # the default without live_fork
    finally:
        daemon.kill_sandbox(plain["id"])


def test_branch_modes_tags_children(http, daemon, source):
    url = f"/sandboxes/{source['id']}/branch"
    live = http.post(url, json={"tag": "api-live", "count": 2})
    assert live.status_code == 201
    snap, kids = live.json()["snapshot"], live.json()["children"]
    assert snap["mode"] == "live" and snap["status"] == "ready" and snap["tag"] == "api-live"
    assert snap["pause_ms"] > 0 and snap["round_trip_ms"] >= snap["pause_ms"]
    assert [k["parent_snapshot"] for k in kids] == [snap["id"]] * 2
    assert daemon.run_cell(kids[0]["id"], "x").result["text/plain"] == "41"
    legacy = http.post(url, json={"diff": True, "measure_diff": True}).json()["snapshot"]
    assert legacy["mode"] == "diff" and legacy["diff_bytes"] == legacy["physical_bytes"]
    # Any mode measures what a diff would hold: here, what the cell below wrote.
    daemon.run_cell(source["id"], "scratch = bytearray(8 << 20)\nscratch[::4096] = b'x' * 2048")
    full = http.post(url, json={"mode": "full", "measure_diff": True}).json()["snapshot"]
    assert full["diff_bytes"] >= 8 << 20 and full["diff_bytes"] < full["physical_bytes"]
    quiet = http.post(url, json={"mode": "full", "measure_diff": True}).json()["snapshot"]
    assert quiet["diff_bytes"] < 2 << 20  # nothing much written in between
    unmeasured = http.post(url, json={"mode": "full"}).json()["snapshot"]
    assert unmeasured["diff_bytes"] is None
    assert http.get("/snapshots/api-live").json()["id"] == snap["id"]
    problem_of(http.post(url, json={"tag": "api-live"}), 409, "name-taken")  # tags are unique
    for k in kids:
        daemon.kill_sandbox(k["id"])


def ready_with_children(http, snap_id: str) -> dict:
    """The snapshot's record once it is no longer writing and has children
    (a branch without waiting spawns them when its image is ready)."""
    deadline = time.monotonic() + 30
    while True:
        now = http.get(f"/snapshots/{snap_id}").json()
        if now["status"] != "writing" and now["children"]:
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.05)


def test_branch_without_waiting_answers_202_writing(http, daemon, source):
    daemon.run_cell(source["id"], "big2 = np.ones(300 << 20, dtype=np.uint8)")
    r = http.post(f"/sandboxes/{source['id']}/branch", json={"wait": False, "count": 1})
    assert r.status_code == 202
    snap = r.json()["snapshot"]
    assert snap["mode"] == "live" and snap["status"] == "writing" and r.json()["children"] == []
    now = ready_with_children(http, snap["id"])
    assert now["status"] == "ready" and now["ready_ms"] >= now["pause_ms"]
    [kid] = now["children"]
    assert daemon.run_cell(kid, "int(big2[::4096].sum())").result["text/plain"] == str(
        (300 << 20) // 4096
    )
    daemon.delete_snapshot(snap["id"], cascade=True)
    daemon.run_cell(source["id"], "del big2")


def test_snapshot_delete_rules(http, daemon, source):
    out = daemon.branch_sandbox(source["id"], mode="full", count=1)
    snap, [kid] = out["snapshot"], out["children"]
    diff = daemon.branch_sandbox(kid["id"], mode="diff")["snapshot"]
    assert diff["parent"] == snap["id"]
    doc = problem_of(http.delete(f"/snapshots/{snap['id']}"), 409, "snapshot-busy")
    assert sorted(doc["dependents"]) == sorted([kid["id"], diff["id"]])
    with pytest.raises(Conflict) as e:
        daemon.delete_snapshot(snap["id"])
    assert kid["id"] in e.value.dependents
    deleted = http.delete(f"/snapshots/{snap['id']}", params={"cascade": "true"}).json()
    assert set(deleted["deleted"]) == {snap["id"], kid["id"], diff["id"]}
    assert daemon.get_sandbox(kid["id"])["status"] == "dead"
    with pytest.raises(NotFound):
        daemon.get_snapshot(snap["id"])
    problem_of(http.post(f"/sandboxes/{kid['id']}/run", json={"code": "1"}), 409, "sandbox-dead")


def test_tree_and_timings(http, daemon, source):
    out = daemon.branch_sandbox(source["id"], mode="diff", count=1, tag="tree-tag")
    snap, [kid] = out["snapshot"], out["children"]
    tree = http.get("/tree").json()
    nodes = {n["id"]: n for n in tree["nodes"]}
    assert nodes[snap["id"]]["kind"] == "snapshot" and nodes[snap["id"]]["label"] == "tree-tag"
    assert nodes[kid["id"]]["kind"] == "sandbox" and nodes[kid["id"]]["status"] == "running"
    edges = {(e["source"], e["target"], e["kind"]) for e in tree["edges"]}
    assert (source["id"], snap["id"], "branch") in edges
    assert (snap["id"], kid["id"], "spawn") in edges
    timings = {t["snapshot_id"]: t for t in http.get("/timings").json()["branches"]}
    assert timings[snap["id"]]["mode"] == "diff" and timings[snap["id"]]["pause_ms"] > 0
    daemon.delete_snapshot(snap["id"], cascade=True)


def test_events_stream_reports_changes_in_order(daemon, source):
    events: list[dict] = []
    stream = daemon.events()
    ready = threading.Event()

    def consume():
        ready.set()
        for ev in stream:
            events.append(ev)
            if ev["type"] == "snapshot" and ev["snapshot"]["tag"] == "ev-tag":
                if ev["snapshot"]["children"]:
                    return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    ready.wait()
    time.sleep(0.3)  # the stream is connected
    started = time.monotonic()
    out = daemon.branch_sandbox(source["id"], tag="ev-tag", count=1)
    t.join(10)
    assert not t.is_alive(), events
    assert time.monotonic() - started < 5
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = {(e["type"], e["action"]) for e in events}
    assert ("snapshot", "created") in kinds and ("sandbox", "created") in kinds
    daemon.delete_snapshot(out["snapshot"]["id"], cascade=True)


def test_a_crashing_guest_is_reported_dead_and_others_live_on(daemon, source):
    [victim] = daemon.spawn_sandboxes(memory_limit_mib=256)
    with pytest.raises(Conflict) as e:
        daemon.run_cell(victim["id"], "import ctypes\nctypes.string_at(0)")
    assert e.value.problem["type"].endswith("sandbox-dead") and "SIGSEGV" in e.value.detail
    dead = daemon.get_sandbox(victim["id"])
    assert dead["status"] == "dead" and dead["exit_reason"].startswith("crashed")
    assert daemon.run_cell(source["id"], "x").result["text/plain"] == "41"


def test_a_diff_branch_without_waiting_answers_202_and_holds_the_pause(http, daemon, source):
    """wait=false with mode diff: the call answers as the source resumes (the
    diff's pages staged once the sandbox's stage has grown:
    docs/snapshots.md), the source overwrites the same memory at once, and
    the child made when the diff is ready reads the state at the pause."""
    url = f"/sandboxes/{source['id']}/branch"
    daemon.run_cell(source["id"], "stage_me = np.full(24 << 20, 7, dtype=np.uint8)")
    http.post(url, json={"mode": "diff"})  # what the diffs below build on
    # A first diff of 24 MiB written, not waited for, has the stage grow
    # (in the background) for the next.
    daemon.run_cell(source["id"], "stage_me[:] = 6")
    assert http.post(url, json={"mode": "diff", "wait": False}).status_code == 202
    time.sleep(0.5)
    daemon.run_cell(source["id"], "stage_me[:] = 8\nfresh = np.full(8 << 20, 9, dtype=np.uint8)")
    r = http.post(url, json={"mode": "diff", "wait": False, "count": 1})
    assert r.status_code == 202 and r.json()["snapshot"]["mode"] == "diff"
    daemon.run_cell(source["id"], "stage_me[:] = 1\nfresh[:] = 1")
    snap = r.json()["snapshot"]
    now = ready_with_children(http, snap["id"])
    assert now["status"] == "ready"
    [kid] = now["children"]
    got = daemon.run_cell(kid, "int(stage_me.sum()) + int(fresh.sum())").result["text/plain"]
    assert got == str(8 * (24 << 20) + 9 * (8 << 20))
    daemon.kill_sandbox(kid)
    daemon.run_cell(source["id"], "del stage_me, fresh")
