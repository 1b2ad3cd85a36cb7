"""Many clients at once: no deadlock, no corrupted tree, and the branch cap
answers 503 problem+json instead of queueing without bound."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from forkd_jupyter.client import Conflict, Controller, Unavailable

pytestmark = pytest.mark.kvm

CLIENTS = 20


@pytest.fixture(scope="module")
def sources(daemon):
    recs = daemon.spawn_sandboxes(n=4, memory_limit_mib=512)
    for i, r in enumerate(recs):
        daemon.run_cell(
            r["id"], f"me = {i}\nimport numpy as np\nblob = np.ones(64 << 20, np.uint8)"
        )
    yield recs
    for r in recs:
        daemon.kill_sandbox(r["id"])


def run_when_idle(c: Controller, sandbox_id: str, code: str):
    """A sandbox runs one cell at a time and refuses others (409
    sandbox-busy): clients sharing one wait their turn."""
    while True:
        try:
            return c.run_cell(sandbox_id, code)
        except Conflict as e:
            assert e.problem["type"].endswith(":sandbox-busy"), e.problem
            time.sleep(0.01)


def test_twenty_clients_run_and_branch_without_deadlock(daemon, sources):
    barrier = threading.Barrier(CLIENTS)
    outcomes: list[tuple[str, object]] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        src = sources[i % len(sources)]
        with Controller(autostart=False) as c:
            barrier.wait()
            for round_ in range(3):
                r = run_when_idle(c, src["id"], f"me * 1000 + {i * 10 + round_}")
                with lock:
                    outcomes.append(("run", (src, i, round_, r)))
                try:
                    out = c.branch_sandbox(src["id"], mode=("live", "diff", "full")[i % 3])
                    with lock:
                        outcomes.append(("branch", out["snapshot"]))
                except Unavailable as e:
                    assert e.problem["type"].endswith("too-many-branches")
                    with lock:
                        outcomes.append(("capped", e.problem))

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, i) for i in range(CLIENTS)]
        for f in futures:
            f.result(timeout=300)  # a deadlock fails here
    runs = [v for k, v in outcomes if k == "run"]
    assert len(runs) == CLIENTS * 3
    for src, i, round_, r in runs:  # every answer went to the client that asked
        me = sources.index(src)
        assert r.result["text/plain"] == str(me * 1000 + i * 10 + round_)
    branches = [v for k, v in outcomes if k == "branch"]
    assert branches and all(b["status"] == "ready" for b in branches)
    tree = daemon.tree()
    ids = [n["id"] for n in tree["nodes"]]
    assert len(ids) == len(set(ids))
    node_ids = set(ids)
    for e in tree["edges"]:
        assert e["source"] in node_ids and e["target"] in node_ids
    snaps = {n["id"]: n for n in tree["nodes"] if n["kind"] == "snapshot"}
    for b in branches:
        assert snaps[b["id"]]["source_id"] == b["source_id"]
    gone: set[str] = set()
    for b in branches:  # a cascade also removes the diffs built on a snapshot
        if b["id"] not in gone:
            gone.update(daemon.delete_snapshot(b["id"], cascade=True))


def test_the_branch_cap_answers_503(daemon, sources):
    src = sources[0]
    daemon.run_cell(src["id"], "more = np.ones(512 << 20, np.uint8)")  # full copies take a while
    barrier = threading.Barrier(12)
    results: list = []

    def branch() -> None:
        with Controller(autostart=False) as c:
            barrier.wait()
            try:
                results.append(c.branch_sandbox(src["id"], mode="full")["snapshot"])
            except Unavailable as e:
                results.append(e)

    threads = [threading.Thread(target=branch) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    capped = [r for r in results if isinstance(r, Unavailable)]
    done = [r for r in results if isinstance(r, dict)]
    assert len(results) == 12 and capped and done, results
    for e in capped:
        assert e.status == 503 and e.problem["type"].endswith("too-many-branches")
    for snap in done:
        daemon.delete_snapshot(snap["id"])
    daemon.run_cell(src["id"], "del more")
