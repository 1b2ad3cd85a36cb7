"""The daemon's limits: past --max-sandboxes, or when a spawn or a branch
would eat into the memory it keeps free (--min-free-mib), the request is a
503 problem+json naming the limit; nothing running is touched, and the
daemon goes on serving."""

from __future__ import annotations

import pytest
from daemon_private import PrivateDaemon

from forkd_jupyter.controller.limits import mem_info

pytestmark = pytest.mark.kvm

SMALL = {"memory_limit_mib": 256}


def test_past_max_sandboxes_spawns_and_branch_children_get_503(tmp_path):
    daemon = PrivateDaemon(tmp_path, args=("--max-sandboxes", "2")).start()
    try:
        with daemon.unix_client() as c:
            first = c.post("/sandboxes", json={**SMALL, "n": 2})
            assert first.status_code == 201, first.text
            a, b = (s["id"] for s in first.json()["sandboxes"])
            refused = c.post("/sandboxes", json=SMALL)
            assert refused.status_code == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
            problem = refused.json()
            assert problem["type"].endswith(":sandbox-limit")
            assert problem["title"] == "Sandbox limit reached"
            assert problem["max_sandboxes"] == 2 and "--max-sandboxes" in problem["detail"]
            branch = c.post(f"/sandboxes/{a}/branch", json={"mode": "diff", "count": 1})
            assert branch.status_code == 503 and branch.json()["type"].endswith(":sandbox-limit")
            # A branch without children is still fine, and so are the running ones.
            assert c.post(f"/sandboxes/{a}/branch", json={"mode": "diff"}).status_code == 201
            run = c.post(f"/sandboxes/{b}/run", json={"code": "6 * 7"}).json()
            assert run["result"]["text/plain"] == "42"
            # A dead sandbox frees its slot.
            assert c.delete(f"/sandboxes/{b}").status_code == 200
            again = c.post("/sandboxes", json=SMALL)
            assert again.status_code == 201, again.text
            assert c.get("/health").status_code == 200
    finally:
        daemon.stop()


def test_spawns_and_branches_that_would_eat_the_free_memory_get_503(tmp_path):
    available_mib = mem_info()["MemAvailable"] >> 20
    # Keep free all but 1000 MiB of what is available now: one sandbox fits
    # the check; once it holds 1 GiB, twenty more (64 MiB each, estimated)
    # or a full copy of its memory do not.
    reserve = max(0, available_mib - 1000)
    daemon = PrivateDaemon(tmp_path, args=("--min-free-mib", str(reserve))).start()
    try:
        with daemon.unix_client() as c:
            ok = c.post("/sandboxes", json={"memory_limit_mib": 2048})
            assert ok.status_code == 201, ok.text
            sid = ok.json()["sandboxes"][0]["id"]
            fill = c.post(f"/sandboxes/{sid}/run", json={"code": "b = bytearray(1 << 30)"})
            assert fill.json()["error"] is None
            many = c.post("/sandboxes", json={**SMALL, "n": 20})
            assert many.status_code == 503
            problem = many.json()
            assert problem["type"].endswith(":insufficient-memory")
            assert problem["min_free_mib"] == reserve and problem["needed_mib"] >= 20 * 64
            assert "--min-free-mib" in problem["detail"]
            full = c.post(f"/sandboxes/{sid}/branch", json={"mode": "full"})
            assert full.status_code == 503, full.text
            assert full.json()["type"].endswith(":insufficient-memory")
            assert full.json()["needed_mib"] >= 1024
            # Nothing was lost: the source still runs and holds its data.
            run = c.post(f"/sandboxes/{sid}/run", json={"code": "len(b)"}).json()
            assert run["result"]["text/plain"] == str(1 << 30)
            assert c.get("/snapshots").json()["snapshots"] == []
    finally:
        daemon.stop()
