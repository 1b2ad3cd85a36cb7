"""A live copy that cannot save a page ends ``failed`` with the reason,
never ``ready`` with pages missing.

The failures are injected by the C core's test hook FORKD_TEST_LIVE_COPY_FAIL
(read when a live snapshot starts; see snap_copy.c): each site named there
fails as a full disk or an exhausted allocator would.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SandboxError

pytestmark = pytest.mark.kvm

# Rewrites 64 MiB over and over: the guest writes pages while the snapshot is
# armed and while it is copied.
REWRITE = """
import numpy as np
churn = np.zeros(64 << 20, dtype=np.uint8)
"""
REWRITE_LOOP = """
print("rewriting", flush=True)
while True:
    churn += 1
"""


@pytest.fixture(scope="module")
def busy():
    """A sandbox whose guest rewrites its memory from the first test on (it
    said so before the fixture returns: a snapshot armed before the loop ran
    would find no page written while arming)."""
    sb = Sandbox.spawn(memory_mib=1024)
    run_ok(sb, REWRITE)
    result: dict = {}
    running = threading.Event()

    def on_output(stream: str, text: str) -> None:
        if "rewriting" in text:
            running.set()

    t = threading.Thread(
        target=lambda: result.setdefault("r", sb.run(REWRITE_LOOP, on_output, timeout=600))
    )
    t.start()
    assert running.wait(60), "the guest's rewrite loop did not start"
    time.sleep(0.2)
    yield sb
    sb.interrupt()
    t.join(60)
    sb.close()


@pytest.fixture
def inject(monkeypatch):
    def set_sites(sites: str) -> None:
        monkeypatch.setenv("FORKD_TEST_LIVE_COPY_FAIL", sites)

    return set_sites


@pytest.mark.parametrize(
    "site, reason",
    [
        ("log", "out of memory logging pages written while arming"),
        ("fault", "writing the image failed"),
        ("chunk", "writing the image failed"),
    ],
)
def test_a_copy_error_fails_the_snapshot_with_its_reason(busy, inject, site, reason):
    inject(site)
    snap = busy.snapshot(mode="live", wait=False)
    os.environ.pop("FORKD_TEST_LIVE_COPY_FAIL")
    try:
        with pytest.raises(SandboxError, match=reason):
            snap.wait(timeout=120)
        assert snap.status == "failed"
        assert reason in snap.error
        with pytest.raises(SandboxError, match="failed"):
            snap.spawn()
    finally:
        snap.close()
    # The source is unharmed and the next snapshot is whole.
    good = busy.snapshot(mode="live", wait=True)
    try:
        assert good.status == "ready" and good.error is None
        (child,) = good.spawn()
        child.interrupt()
        assert value(child, "int(churn.min()) == int(churn.max()) or 'mid-pass'") in (
            True,
            "mid-pass",
        )
        child.close()
    finally:
        good.close()


# 16 mappings of 8 MiB written once; the loop frees the oldest and maps a
# new one (touching one page of it), so it frees pages that still hold what
# they held at the pause.
RING = """
import mmap
ring, i = [mmap.mmap(-1, 8 << 20) for _ in range(16)], 0
for m in ring:
    m.write(b'x' * (8 << 20))
"""
FREE_OLDEST = """
while True:
    i += 1
    ring[i % 16].close()
    ring[i % 16] = mmap.mmap(-1, 8 << 20)
    ring[i % 16][0] = 1
"""


def test_a_discard_copy_error_fails_the_snapshot(inject):
    sb = Sandbox.spawn(memory_mib=512)
    result: dict = {}
    loop = FREE_OLDEST
    t = threading.Thread(target=lambda: result.setdefault("r", sb.run(loop, timeout=300)))
    try:
        run_ok(sb, RING)
        t.start()
        time.sleep(0.5)
        # At the pause the loop holds mappings it does not write again and
        # frees one by one; "slow" holds the background copy back, so the
        # loop frees pages the copy has not saved yet and their discard copy
        # is the one that fails. A few attempts, in case the guest's loop was
        # between frees for the whole copy.
        errors = []
        for _ in range(3):
            inject("discard,slow")
            snap = sb.snapshot(mode="live", wait=False)
            os.environ.pop("FORKD_TEST_LIVE_COPY_FAIL")
            try:
                snap.wait(timeout=120)
            except SandboxError:
                errors.append(snap.error)
            snap.close()
            if errors:
                break
        assert errors and "writing the image failed" in errors[0]
    finally:
        sb.interrupt()
        t.join(60)
        sb.close()
