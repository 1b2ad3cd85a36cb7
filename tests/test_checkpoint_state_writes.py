"""A notebook checkpoint (a diff carrying a cell's mark, taken before every
attached cell) rewrites the daemon's state.json once, when it is ready, and
one taken ahead (controller/ahead.py) behind its cell, on a thread of its
own; any other branch also writes its record before the VMM is asked, so a
daemon killed in the call leaves a record a restart reports as failed
(test_daemon_crashes.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from forkd_jupyter.controller.store import Store
from forkd_jupyter.controller.tree import SandboxTree

pytestmark = pytest.mark.kvm


class CountingStore(Store):
    """The real store, counting its rewrites of state.json."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.saves = 0
        self.threads: list[str] = []  # the thread of each rewrite

    def save(self, *args, **kwargs) -> None:
        self.saves += 1
        self.threads.append(threading.current_thread().name)
        super().save(*args, **kwargs)


def test_a_checkpoint_is_written_once_and_ready(tmp_path):
    store = CountingStore(tmp_path)
    tree = SandboxTree(store)
    try:
        [sb] = tree.spawn(memory_limit_mib=256)
        tree.run(sb["id"], "x = 1")
        before = store.saves
        mark = {"cell": 2, "line": "x += 1", "after": 1}
        checkpoint = tree.branch(sb["id"], mode="diff", checkpoint=mark)["snapshot"]
        assert store.saves - before == 1
        saved = json.loads((tmp_path / "state.json").read_text())
        [record] = [s for s in saved["snapshots"] if s["id"] == checkpoint["id"]]
        assert record["status"] == "ready" and record["checkpoint"] == mark

        before = store.saves
        tree.branch(sb["id"], mode="diff")
        assert store.saves - before == 2  # the record first, then its status
    finally:
        tree.shutdown()


def test_a_checkpoint_taken_ahead_is_written_behind_its_cell(tmp_path):
    store = CountingStore(tmp_path)
    tree = SandboxTree(store)
    try:
        [sb] = tree.spawn(memory_limit_mib=256)
        marks = [{"cell": n, "line": f"x = {n}", "after": n - 1} for n in (1, 2)]
        first = tree.start_run(sb["id"], "x = 1", None, marks[0])
        while not first.finished:
            time.sleep(0.005)
        rec = tree.sandbox(sb["id"])
        deadline = time.monotonic() + 30
        while (rec.preparing or rec.prepared is None) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert rec.prepared is not None  # taken ahead once the first cell ended
        before = len(store.threads)
        second = tree.start_run(sb["id"], "x = 2", None, marks[1])
        assert second.checkpoint["checkpoint"] == marks[1]
        assert second.checkpoint["status"] == "ready"
        here = threading.current_thread().name
        while time.monotonic() < deadline:
            saved = json.loads((tmp_path / "state.json").read_text())
            ids = {s["id"]: s for s in saved["snapshots"]}
            if second.checkpoint["id"] in ids:
                break
            time.sleep(0.005)
        record = ids[second.checkpoint["id"]]
        assert record["status"] == "ready" and record["checkpoint"] == marks[1]
        assert here not in store.threads[before:] and "state-writes" in store.threads[before:]
    finally:
        tree.shutdown()
