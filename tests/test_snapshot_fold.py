"""Folding the oldest link of a diff chain into the next one (what keeps a
notebook's per-cell checkpoints within their budget): every later link still
spawns its exact state, the folded link's memory is released, and a parent
something else still uses is never folded."""

from __future__ import annotations

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SnapshotBusy

pytestmark = pytest.mark.kvm


def state_of(snap, expr: str):
    """``expr`` in a fresh child of the snapshot."""
    (child,) = snap.spawn()
    try:
        return value(child, expr)
    finally:
        child.close()


def state(snap) -> tuple:
    return tuple(state_of(snap, "(x, int(big.sum()), len(log))"))


def test_folding_keeps_every_later_state():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "import numpy as np\nx, big, log = 1, np.ones(8 << 20, dtype=np.uint8), []")
        c1 = sb.snapshot(mode="diff")  # the first: a whole image
        run_ok(sb, "x = 2\nbig[: 4 << 20] = 2\nlog.append(x)")
        c2 = sb.snapshot(mode="diff")
        run_ok(sb, "x = 3\nbig[-(1 << 20):] = 3\nlog.append(x)")
        c3 = sb.snapshot(mode="diff")
        assert c2.parent is c1 and c3.parent is c2
        want2, want3 = state(c2), state(c3)
        assert want2 == (2, (4 << 20) * 2 + (4 << 20), 1)
        assert want3 == (3, (4 << 20) * 2 + (3 << 20) + (1 << 20) * 3, 2)

        c2.fold_parent()
        assert c1.closed and c2.parent is None and c3.parent is c2
        assert state(c2) == want2 and state(c3) == want3
        c3.fold_parent()
        assert c2.closed and c3.parent is None
        assert state(c3) == want3
        # The source goes on: its next diff builds on the folded chain.
        run_ok(sb, "x = 4\nlog.append(x)")
        c4 = sb.snapshot(mode="diff")
        assert c4.parent is c3 and state(c4)[0] == 4 and state(c4)[2] == 3
        c4.fold_parent()
        assert state(c4)[0] == 4
    finally:
        sb.close()


def test_a_parent_in_use_is_not_folded():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "x = 1")
        c1 = sb.snapshot(mode="diff")
        (child,) = c1.spawn()
        run_ok(sb, "x = 2")
        c2 = sb.snapshot(mode="diff")
        with pytest.raises(SnapshotBusy, match=child.id):
            c2.fold_parent()
        assert not c1.closed and c2.parent is c1 and value(child, "x") == 1
        child.close()
        c2.fold_parent()
        assert c1.closed and state_of(c2, "x") == 2
        with pytest.raises(Exception, match="no parent"):
            c2.fold_parent()
    finally:
        sb.close()


def test_the_daemon_folds_only_a_link_with_one_heir(daemon):
    from forkd_jupyter.client import ForkdError

    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256)
    try:
        daemon.run_cell(sb["id"], "x = 1")
        c1 = daemon.branch_sandbox(sb["id"], mode="diff")["snapshot"]
        with pytest.raises(ForkdError) as no_heir:
            daemon.fold_snapshot(c1["id"])
        assert no_heir.value.status == 409 and "no snapshot builds on it" in no_heir.value.detail
        daemon.run_cell(sb["id"], "x = 2")
        c2 = daemon.branch_sandbox(sb["id"], mode="diff")["snapshot"]
        assert c2["parent"] == c1["id"]
        folded = daemon.fold_snapshot(c1["id"])
        assert folded["id"] == c2["id"] and folded["parent"] == c1["parent"]
        assert c1["id"] not in {s["id"] for s in daemon.list_snapshots()}
        [child] = daemon.spawn_sandboxes(snapshot_id=c2["id"])
        assert daemon.run_cell(child["id"], "x").result["text/plain"] == "2"
        daemon.kill_sandbox(child["id"])
        with pytest.raises(ForkdError) as unknown:
            daemon.fold_snapshot("snap-999999")
        assert unknown.value.status == 404
    finally:
        daemon.kill_sandbox(sb["id"])


def test_long_runs_mapped_into_children_stay_exact_through_writes_frees_and_folds():
    """Runs of 4 MiB and more of a diff layer are mapped into a child, not
    copied (snapshot.c): the child reads them, writes over them privately,
    frees and reuses them, and is branched live; a fold of the chain under a
    running child changes nothing it reads."""
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(sb, "import numpy as np\nbig = np.zeros(256 << 20, dtype=np.uint8)")
        c1 = sb.snapshot(mode="diff")
        run_ok(sb, "big[:] = 1\nother = np.full(64 << 20, 7, dtype=np.uint8)")
        c2 = sb.snapshot(mode="diff")
        run_ok(sb, "big[: 128 << 20] = 2")
        c3 = sb.snapshot(mode="diff")
        assert c2.parent is c1 and c2.dirty_bytes >= 256 << 20
        (child,) = c3.spawn()
        want = "(int(big.sum()), int(other.sum()))"
        expect = ((128 << 20) * 2 + (128 << 20), (64 << 20) * 7)
        assert tuple(value(child, want)) == expect
        # Folding the chain under a running child of its last link.
        c2.fold_parent()
        c3.fold_parent()
        assert tuple(value(child, want)) == expect
        # Private writes, a free and a fresh allocation over mapped ranges.
        run_ok(child, "big[::4096] = 9\ndel other\nfresh = np.ones(64 << 20, dtype=np.uint8)")
        got = value(child, "(int(big[::4096].sum()), int(fresh.sum()))")
        assert tuple(got) == (9 * ((256 << 20) // 4096), 64 << 20)
        live = child.snapshot(mode="live")
        (grandchild,) = live.spawn()
        assert tuple(value(grandchild, "(int(big[1]), int(big[-1]), int(fresh.sum()))")) == (
            2,
            1,
            64 << 20,
        )
        # The source and a fresh child of the folded link are untouched.
        assert tuple(value(sb, want)) == expect
        assert tuple(state_of(c3, want)) == expect
        grandchild.close()
        child.close()
    finally:
        sb.close()
