"""A notebook checkpoint (a diff carrying a cell's mark, taken before every
attached cell) rewrites the daemon's state.json once, when it is ready; any
other branch also writes its record before the VMM is asked, so a daemon
killed in the call leaves a record a restart reports as failed
(test_daemon_crashes.py)."""

from __future__ import annotations

import json

import pytest

from forkd_jupyter.controller.store import Store
from forkd_jupyter.controller.tree import SandboxTree

pytestmark = pytest.mark.kvm


class CountingStore(Store):
    """The real store, counting its rewrites of state.json."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.saves = 0

    def save(self, *args, **kwargs) -> None:
        self.saves += 1
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
