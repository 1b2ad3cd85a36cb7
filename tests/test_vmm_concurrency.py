"""Eight sandboxes run cells concurrently in one host process; closing them
returns their memory and file descriptors."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import time

import pytest

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(quiet_s: float = 1.5, timeout_s: float = 15.0) -> int:
    """The descriptor count once nothing is left to close: sandboxes an
    earlier test dropped without closing (freed when the garbage collector
    gets to them) and what it left to finish in the background (a snapshot
    or a killed sandbox released off its caller's path, up to a second
    later) must not count as this test's."""
    gc.collect()
    last, since = open_fds(), time.monotonic()
    deadline = since + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = open_fds()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_eight_sandboxes_run_concurrently_and_release_everything():
    # Warm up: the first sandbox loads shared state (CPUID table, libraries).
    Sandbox.spawn(memory_mib=256).close()
    fds_before, rss_before = settled_fds(), rss_bytes()
    boxes = [Sandbox.spawn(memory_mib=512) for _ in range(8)]
    results: dict[int, object] = {}

    def work(i: int, sb: Sandbox) -> None:
        code = (
            f"import hashlib\nh = b'{i}'\n"
            "for _ in range(20000):\n    h = hashlib.sha256(h).digest()\nh.hex()"
        )
        results[i] = sb.run(code, timeout=120)

    threads = [threading.Thread(target=work, args=(i, sb)) for i, sb in enumerate(boxes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        h = str(i).encode()
        for _ in range(20000):
            h = hashlib.sha256(h).digest()
        assert results[i].error is None
        assert results[i].result["text/plain"] == repr(h.hex())
    assert rss_bytes() > rss_before + 8 * (8 << 20)  # guest memory is really in use
    for sb in boxes:
        sb.close()
    assert settled_fds() == fds_before
    assert rss_bytes() < rss_before + (64 << 20)
