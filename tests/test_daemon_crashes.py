"""The daemon killed (SIGKILL) in the middle of an operation, then started
again on the same state directory: a re-save leaves the old copy or the new
one (never neither, never a partial one listed as saved), a branch in
flight is reported failed with the reason, and a streamed run whose
sandbox dies ends with an error event."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from daemon_private import PrivateDaemon

from forkd_jupyter.client.sse import iter_events

pytestmark = pytest.mark.kvm


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            out[path] = (st.st_size, st.st_mtime_ns)
    return out


def in_background(fn) -> threading.Thread:
    def guarded():
        try:
            fn()
        except httpx.TransportError:
            pass  # the daemon was killed under the request

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread


def test_a_resave_cut_by_sigkill_keeps_a_loadable_copy(tmp_path):
    daemon = PrivateDaemon(tmp_path).start()
    try:
        with daemon.unix_client() as c:
            [sb] = c.post("/sandboxes", json={"memory_limit_mib": 512}).json()["sandboxes"]
            c.post(f"/sandboxes/{sb['id']}/run", json={"code": "x = 41\nb = bytearray(300 << 20)"})
            snap = c.post(f"/sandboxes/{sb['id']}/branch", json={"mode": "full"}).json()["snapshot"]
            assert c.post(f"/snapshots/{snap['id']}/save").json()["saved_path"]
            snapshots = tmp_path / "snapshots"
            before = files_under(snapshots)
            request = in_background(lambda: c.post(f"/snapshots/{snap['id']}/save"))
            deadline = time.monotonic() + 30
            while files_under(snapshots) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            daemon.kill9()  # the save is under way
            request.join(30)
        daemon.start()
        with daemon.unix_client() as c:
            record = c.get(f"/snapshots/{snap['id']}").json()
            assert record["status"] == "ready" and record["saved_path"], record
            r = c.post("/sandboxes", json={"snapshot_id": snap["id"]})
            assert r.status_code == 201, r.text
            child = r.json()["sandboxes"][0]["id"]
            out = c.post(f"/sandboxes/{child}/run", json={"code": "x + 1"}).json()
            assert out["result"]["text/plain"] == "42"
        # One complete copy is left: the other (and any partial one) is gone.
        copies = [p for p in (tmp_path / "snapshots" / snap["id"]).iterdir()]
        assert [str(p) for p in copies] == [record["saved_path"]], copies
    finally:
        daemon.stop()


def test_a_branch_in_flight_at_sigkill_is_reported_failed(tmp_path):
    daemon = PrivateDaemon(tmp_path).start()
    state = tmp_path / "state.json"
    try:
        with daemon.unix_client() as c:
            [sb] = c.post("/sandboxes", json={"memory_limit_mib": 1024}).json()["sandboxes"]
            c.post(f"/sandboxes/{sb['id']}/run", json={"code": "b = bytearray(700 << 20)"})
            body = {"mode": "full", "tag": "cut-short"}
            request = in_background(lambda: c.post(f"/sandboxes/{sb['id']}/branch", json=body))
            deadline = time.monotonic() + 20
            while request.is_alive() and time.monotonic() < deadline:
                snaps = json.loads(state.read_text()).get("snapshots", [])
                if any(s["status"] == "writing" for s in snaps):
                    break
                time.sleep(0.002)
            daemon.kill9()
            request.join(30)
        daemon.start()
        with daemon.unix_client() as c:
            snaps = c.get("/snapshots").json()["snapshots"]
        [snap] = [s for s in snaps if s["tag"] == "cut-short"]
        assert snap["status"] == "failed"
        assert "stopped while this snapshot was being written" in snap["error"]
    finally:
        daemon.stop()


def test_a_streamed_run_whose_sandbox_is_killed_ends_with_an_error_event(tmp_path):
    daemon = PrivateDaemon(tmp_path).start()
    with daemon.unix_client() as c:  # ids go on after a restart; the VMM's start again
        [old] = c.post("/sandboxes", json={"memory_limit_mib": 256}).json()["sandboxes"]
    daemon.stop()
    daemon.start()
    try:
        with daemon.unix_client() as c, daemon.unix_client() as killer:
            [sb] = c.post("/sandboxes", json={"memory_limit_mib": 256}).json()["sandboxes"]
            assert sb["id"] != old["id"]
            code = "print('started', flush=True)\nwhile True: pass"
            events = []
            headers = {"Accept": "text/event-stream"}
            url = f"/sandboxes/{sb['id']}/run"
            with c.stream("POST", url, json={"code": code}, headers=headers) as response:
                for event, data in iter_events(response):
                    events.append((event, data))
                    if event == "stream":
                        t0 = time.monotonic()
                        assert killer.delete(f"/sandboxes/{sb['id']}").status_code == 200
                        killed_in = time.monotonic() - t0
            assert events[-1][0] == "error", events
            problem = events[-1][1]
            assert problem["type"].endswith(":sandbox-dead")
            assert sb["id"] in problem["detail"]  # the daemon's id, not an internal one
            assert killed_in < 2.0, f"killing a busy sandbox took {killed_in:.1f} s"
    finally:
        daemon.stop()
