"""Live branches of a sandbox whose memory churns: every image is of the
pause instant, whatever the guest allocates, writes and frees during the
arming and the background copy.

The guest keeps four large arrays, each a separate anonymous mapping, and
in a loop either frees one and maps a fresh one (which must read as zero)
or refills one in place with the next generation number. A fill is one
numpy call, so at the pause an array holds generation g on a prefix and
g - 1 after it, with meta[j] = g or g - 1; before refilling an array the
loop checks exactly that. A page of the image that the guest wrote after
the pause (a later generation), or post-pause data where the pause had
nothing (non-zero fresh memory), is caught the first time the loop looks
at it in a grandchild. Problems are collected in ``bad``, never raised,
so the loop keeps going until it is interrupted.
"""

from __future__ import annotations

import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm

SETUP = """
import mmap
import numpy as np

SIZE = 4 << 20
K = 5
bad = []
maps = [mmap.mmap(-1, SIZE) for _ in range(K)]
arrs = [np.frombuffer(m, dtype=np.int64) for m in maps]
meta = np.zeros(K, dtype=np.int64)   # generation each array was last filled with
gen = 0
it = 0


def check(j):
    a, g = arrs[j], int(meta[j])
    if g == 0:
        ok = not a.any()
    else:
        # generation g + 1 on a prefix (a fill interrupted by the pause),
        # generation g on the rest
        is_new = a == g + 1
        k = len(a) if is_new.all() else int(np.argmin(is_new))
        ok = bool((a[k:] == g).all())
    if not ok and len(bad) < 20:
        vals = np.unique(a)
        bad.append(f"array {j}: meta {g}, values {vals[:6].tolist()} ({len(vals)} distinct)")
"""

LOOP = """
while True:
    it += 1
    j = it % K
    check(j)
    if it % 2 == 0:
        fresh = mmap.mmap(-1, SIZE)      # mapped before the old one goes: addresses wander
        arrs[j] = np.frombuffer(fresh, dtype=np.int64)
        maps[j].close()                  # munmap: the range is discarded
        maps[j] = fresh
        meta[j] = 0
        check(j)
    gen += 1
    arrs[j].fill(gen)
    meta[j] = gen
"""


def _fresh_memory_is_zero(sb: Sandbox) -> bool:
    return value(
        sb,
        "all(not np.frombuffer(mmap.mmap(-1, 64 << 20), dtype=np.int64).any() for _ in range(4))",
    )


def test_grandchildren_of_a_churning_child_see_the_pause_instant():
    source = Sandbox.spawn(memory_mib=1024)
    snaps, boxes = [], []
    try:
        run_ok(source, SETUP)
        first = source.snapshot(mode="live")
        snaps.append(first)
        (child,) = first.spawn()  # copy-on-write RAM: the harder case
        boxes.append(child)
        result: dict = {}
        t = threading.Thread(target=lambda: result.setdefault("r", child.run(LOOP, timeout=300)))
        t.start()
        time.sleep(0.5)
        problems = []
        for round_ in range(8):
            snap = child.snapshot(mode="live", wait=True)
            snaps.append(snap)
            (grand,) = snap.spawn()
            boxes.append(grand)
            time.sleep(0.3)  # the grandchild resumes inside the loop and checks as it goes
            grand.interrupt()
            found = value(grand, "bad")
            progressed = value(grand, "it")
            if found:
                problems.append((round_, found))
            assert progressed > 0
            if not _fresh_memory_is_zero(grand):
                problems.append((round_, "fresh memory is not zero"))
            grand.close()
            boxes.remove(grand)
            snap.close()
            snaps.remove(snap)
        child.interrupt()
        t.join(60)
        assert result["r"].error.ename == "KeyboardInterrupt"
        assert value(child, "bad") == []  # the churning sandbox itself stayed consistent
        assert value(child, "gen") > 100
        assert problems == []
    finally:
        for b in reversed(boxes):
            b.close()
        for s in reversed(snaps):
            s.close(force=True)
        source.close()
