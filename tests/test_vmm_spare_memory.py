"""Memory a guest frees stays with the sandbox, zeroed, while a request
runs (docs/design.md, "Freed memory"): the next mapping there takes no
fault. It must read as zero wherever it lands, in a sandbox of its own RAM
and in a branch's child (a copy-on-write view of an image), stay under a
quarter of the sandbox's RAM, and go back to the host when the request
ends."""

from __future__ import annotations

import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm.spares import KEEP_IDLE_S

pytestmark = pytest.mark.kvm

MIB = 1 << 20

# Each check writes a pattern, frees or replaces the memory, maps again and
# counts the bytes that are not zero; `same` records that the new mapping
# landed where the old one was (the kept pages were really reused).
ZERO_CHECKS = r"""
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
for name, res in (("mmap", ctypes.c_void_p), ("mremap", ctypes.c_void_p),
                  ("malloc", ctypes.c_void_p), ("calloc", ctypes.c_void_p)):
    getattr(libc, name).restype = res
I = ctypes.c_int
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, I, I, I, ctypes.c_long]
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
RW, ANON = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
MAP_FIXED, MREMAP_MAYMOVE, MADV_DONTNEED = 0x10, 1, 4
SIZE = 24 << 20

def nonzero(addr, size):
    return size - ctypes.string_at(addr, size).count(0)

checks, same = {}, {}
# Unmapped, then mapped again: the same place, zeros.
a = libc.mmap(None, SIZE, RW, ANON, -1, 0)
ctypes.memset(a, 0x5A, SIZE)
libc.munmap(a, SIZE)
b = libc.mmap(None, SIZE, RW, ANON, -1, 0)
checks["munmap"], same["munmap"] = nonzero(b, SIZE), a == b
# Replaced in place (MAP_FIXED over written memory).
ctypes.memset(b, 0x5B, SIZE)
c = libc.mmap(b, SIZE, RW, ANON | MAP_FIXED, -1, 0)
checks["fixed"], same["fixed"] = nonzero(c, SIZE), c == b
# Moved by mremap: the old place is freed, a new mapping there reads zero.
ctypes.memset(c, 0x5C, SIZE)
d = libc.mremap(c, SIZE, 2 * SIZE, MREMAP_MAYMOVE)
e = libc.mmap(c, SIZE, RW, ANON | 0x100000, -1, 0)  # MAP_FIXED_NOREPLACE
checks["mremap"] = nonzero(e, SIZE) + nonzero(d + SIZE, SIZE)
checks["mremap_kept"] = ctypes.string_at(d, SIZE).count(0x5C) - SIZE
libc.munmap(d, 2 * SIZE)
libc.munmap(e, SIZE)
# madvise(MADV_DONTNEED) on memory that stays mapped.
ctypes.memset(e := libc.mmap(None, SIZE, RW, ANON, -1, 0), 0x5D, SIZE)
libc.madvise(e, SIZE, MADV_DONTNEED)
checks["dontneed"] = nonzero(e, SIZE)
libc.munmap(e, SIZE)
# calloc trusts that a fresh mapping is zero and clears nothing.
for i in range(3):
    p = libc.malloc(SIZE)
    ctypes.memset(p, 0x5E, SIZE)
    libc.free(ctypes.c_void_p(p))
    q = libc.calloc(1, SIZE)
    checks[f"calloc{i}"] = nonzero(q, SIZE)
    libc.free(ctypes.c_void_p(q))
"""


def check_zeros(sb) -> None:
    run_ok(sb, ZERO_CHECKS)
    checks, same = value(sb, "checks"), value(sb, "same")
    assert all(n == 0 for n in checks.values()), checks
    assert all(same.values()), same  # the freed pages were the ones mapped again


def test_freed_memory_reads_zero_when_mapped_again(sandbox):
    check_zeros(sandbox)


def test_a_childs_freed_memory_reads_zero_when_mapped_again(sandbox):
    """A branch's child: its pages are the image's until written, its own
    copies after; neither may show through a new mapping."""
    run_ok(sandbox, "import mmap\nold = mmap.mmap(-1, 24 << 20)\nold.write(b'\\x77' * (24 << 20))")
    snap = sandbox.snapshot("live")
    child = snap.spawn(1)[0]
    try:
        run_ok(child, "old.close()")  # the image's pages, never written by the child
        check_zeros(child)
        assert value(child, "nonzero(libc.mmap(None, 24 << 20, RW, ANON, -1, 0), 24 << 20)") == 0
        assert value(sandbox, "old[:4] + old[-4:]") == b"\x77" * 8  # the source keeps its data
    finally:
        child.close()
        snap.close()


HOLD_AND_FREE = """
import mmap, time
m = mmap.mmap(-1, 768 << 20)
for i in range(0, len(m), 4096):
    m[i] = 1
m.close()
time.sleep(2.5)
"""


def wait_for_no_spares(sb, timeout_s: float = 10.0) -> float:
    """Seconds until the sandbox holds no spares (it hands them back once
    idle for KEEP_IDLE_S)."""
    t0 = time.monotonic()
    while sb.stats()["spare_bytes"] and time.monotonic() - t0 < timeout_s:
        time.sleep(0.05)
    return time.monotonic() - t0


def test_freed_memory_is_kept_under_a_cap_and_returned_once_the_sandbox_idles():
    """A 768 MiB buffer touched and freed in a 2 GiB sandbox: while the cell
    still runs, the sandbox keeps what fits in a quarter of its RAM
    (512 MiB) as spares and hands the rest back at once; it keeps them for
    the next request and hands them all back once idle for a moment."""
    from forkd_jupyter.vmm import Sandbox

    sb = Sandbox.spawn(memory_mib=2048)
    try:
        seen: list[tuple[int, int]] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                st = sb.stats()
                seen.append((st["spare_bytes"], st["memory_bytes"]))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            run_ok(sb, HOLD_AND_FREE)
        finally:
            done.set()
            watcher.join()
        peak_spare = max(s for s, _ in seen)
        peak_memory = max(m for _, m in seen)
        assert 448 * MIB <= peak_spare <= 512 * MIB, peak_spare
        assert sb.stats()["spare_bytes"] >= 448 * MIB  # kept for the next request
        assert wait_for_no_spares(sb) < KEEP_IDLE_S + 3
        after = sb.stats()
        assert after["spare_bytes"] == 0
        assert after["memory_bytes"] <= peak_memory - peak_spare + 16 * MIB, (after, peak_memory)
        # The memory works as before: a new cell maps and touches it again.
        run_ok(sb, "import mmap\nm = mmap.mmap(-1, 64 << 20)\nm[-1:] = b'x'\nok = m[:1] == b'\\0'")
        assert value(sb, "ok") is True
    finally:
        sb.close()


def test_the_next_cell_maps_what_the_cell_before_freed():
    """Cells sent back to back: the second maps the memory the first freed
    (the spares it left shrink) without the host handing it over again;
    a request in between keeps them, idleness hands them back."""
    from forkd_jupyter.vmm import Sandbox

    churn = "m = mmap.mmap(-1, 128 << 20)\nfor _ in range(128):\n    m.write(b'x' * (1 << 20))\n"
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(sb, "import mmap\n" + churn + "m.close()")
        left = sb.stats()["spare_bytes"]
        assert left >= 120 * MIB, left
        run_ok(sb, churn)  # mapped again, kept mapped
        assert sb.stats()["spare_bytes"] <= left - 120 * MIB
        run_ok(sb, "m.close()")
        assert value(sb, "1 + 1") == 2  # another request: the spares stay
        assert sb.stats()["spare_bytes"] >= 120 * MIB
        wait_for_no_spares(sb)
        assert sb.stats()["spare_bytes"] == 0
        check_zeros(sb)
    finally:
        sb.close()


def test_spare_memory_off_hands_freed_memory_back_at_once(monkeypatch):
    """FORKD_JUPYTER_SPARE_MEMORY=0 (for comparisons): nothing is kept."""
    from forkd_jupyter.vmm import Sandbox

    monkeypatch.setenv("FORKD_JUPYTER_SPARE_MEMORY", "0")
    sb = Sandbox.spawn(memory_mib=512)
    try:
        churn = "m = mmap.mmap(-1, 64 << 20)\nm.write(b'x' * (64 << 20))\nm.close()\n"
        run_ok(sb, "import mmap, time\n" + churn)
        spare = []

        def look() -> None:
            time.sleep(0.5)
            spare.append(sb.stats()["spare_bytes"])

        t = threading.Thread(target=look)
        t.start()
        run_ok(sb, churn + "time.sleep(1)")
        t.join()
        assert spare == [0]
        check_zeros(sb)
    finally:
        sb.close()


def test_a_branch_taken_while_a_cell_runs_hands_spare_memory_back_first():
    """Spare pages are handed back before a snapshot, so the image holds
    no zeros for them; the cell and the branch's child go on unharmed."""
    from forkd_jupyter.vmm import Sandbox

    sb = Sandbox.spawn(memory_mib=1024)
    try:
        kept, after = [], []

        def branch() -> None:
            deadline = time.monotonic() + 20
            while sb.stats()["spare_bytes"] < 100 * MIB and time.monotonic() < deadline:
                time.sleep(0.02)
            kept.append(sb.stats()["spare_bytes"])
            after.append(sb.snapshot("live"))
            after.append(sb.stats()["spare_bytes"])

        brancher = threading.Thread(target=branch)
        brancher.start()
        # Written 1 MiB at a time: no temporary as large as the buffer is
        # freed before it, so the spares the brancher waits for are its.
        run_ok(
            sb,
            "import mmap, time\nm = mmap.mmap(-1, 128 << 20)\n"
            "for _ in range(128):\n    m.write(b'z' * (1 << 20))\n"
            "m.close()\ntime.sleep(3)\nfresh = mmap.mmap(-1, 128 << 20)\n"
            "zeros = fresh[:] == bytes(128 << 20)",
        )
        brancher.join()
        snap, spare_after = after
        assert kept[0] >= 100 * MIB and spare_after == 0, (kept, spare_after)
        assert value(sb, "zeros") is True
        (child,) = snap.spawn()
        with child:
            assert value(child, "zeros") is True
        snap.close()
    finally:
        sb.close()
