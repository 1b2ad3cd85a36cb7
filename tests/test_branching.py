"""Branching: snapshots (full, diff, live) and copy-on-write children."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SandboxError, SnapshotBusy

pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def source():
    sb = Sandbox.spawn(memory_mib=1024)
    run_ok(
        sb,
        "data = list(range(1000))\nopen('/sandbox/notes.txt', 'w').write('before')\n"
        "log = open('/tmp/log.txt', 'w')\nlog.write('line1\\n')\nlog.flush()",
    )
    run_ok(sb, "marker = 'from-parent'")
    yield sb
    sb.close()


@pytest.mark.parametrize("mode", ["full", "diff", "live"])
def test_child_equals_source_at_the_pause_and_then_diverges(source, mode):
    count_before = source.run("1").execution_count
    snap = source.snapshot(mode=mode)
    assert snap.status == "ready" and snap.mode == mode and snap.source_id == source.id
    # The pause is measured (never 0) and bounded: live arms copy-on-write
    # before it, so only registers and VMM state are taken inside; full and
    # diff copy this ~100 MiB source's memory inside it. Loose margins for a
    # loaded 2-core machine.
    assert 0 < snap.pause_ms < (100 if mode == "live" else 3000), snap.pause_ms
    assert snap.logical_bytes > 0
    # The source's stall is reported beside the pause: for full and diff the
    # pause is all of it; a live copy may also hold guest writes.
    if mode == "live":
        assert snap.stall_total_ms >= snap.stall_ms >= snap.pause_ms
    else:
        assert snap.stall_ms == snap.stall_total_ms == snap.pause_ms
    (child,) = snap.spawn()
    try:
        # History and execution count come from the pause instant: the child's
        # first cell follows the source's last one.
        r = run_ok(child, "In[-2]")
        assert r.execution_count == count_before + 1
        assert r.result["text/plain"] == repr("1")
        assert value(child, "marker") == "from-parent"
        assert value(child, "sum(data)") == sum(range(1000))
        assert value(child, "open('/sandbox/notes.txt').read()") == "before"
        run_ok(child, "log.write('child\\n'); log.flush()")
        # Divergence, both ways: memory and files.
        run_ok(child, "marker = 'child'; open('/sandbox/notes.txt', 'w').write('child')")
        run_ok(source, f"marker_{mode} = 'source'")
        assert value(source, "marker") == "from-parent"
        assert value(source, "open('/sandbox/notes.txt').read()") == "before"
        assert value(child, f"'marker_{mode}' in globals()") is False
        assert value(child, "open('/tmp/log.txt').read()") == "line1\nchild\n"
        assert value(source, "open('/tmp/log.txt').read()") == "line1\n"
    finally:
        child.close()
        snap.close()


BUSY_SETUP = """
import numpy as np
N = 8 << 20                      # 64 MiB of int64 data, then checksum and counter cells
arr = np.zeros(N + 2, dtype=np.int64)
cells = np.array([0, N, N + 1])
"""
# One numpy call writes a data cell, the checksum and the counter together:
# an interrupt (between bytecodes) never splits an update. Positions stride
# across every page, so a torn image breaks sum == checksum for good.
BUSY_LOOP = """
i = int(arr[N + 1])
while True:
    i += 1
    cells[0] = (i * 7919) % N
    arr[cells] = (i, arr[N] + i - arr[cells[0]], i)
"""
CHECK = "(int(arr[:N].sum()), int(arr[N]), int(arr[N + 1]), int(arr[(int(arr[N + 1]) * 7919) % N]))"


def test_live_branch_of_a_busy_source_is_consistent():
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(sb, BUSY_SETUP)
        result: dict = {}
        t = threading.Thread(target=lambda: result.setdefault("r", sb.run(BUSY_LOOP, timeout=120)))
        t.start()
        time.sleep(1.0)
        snaps = []
        for _ in range(3):
            snaps.append(sb.snapshot(mode="live", wait=False))
            time.sleep(0.2)
        assert all(s.status in ("writing", "ready") for s in snaps)
        sb.interrupt()
        t.join()
        assert result["r"].error.ename == "KeyboardInterrupt"
        total, checksum, counter, cell = value(sb, CHECK)
        assert total == checksum and cell == counter and counter > 1000
        counters = []
        for s in snaps:
            (child,) = s.spawn()
            try:
                time.sleep(0.2)  # the child resumes inside the busy loop
                child.interrupt()
                total, checksum, counter, cell = value(child, CHECK)
                assert total == checksum, "torn memory image"
                assert cell == counter
                # A busy source's writes were held by the copy: counted beside the pause.
                assert s.stall_total_ms > s.pause_ms and s.stall_ms >= s.pause_ms
                counters.append(counter)
            finally:
                child.close()
                s.close()
        assert len(set(counters)) == 3  # three different instants
    finally:
        sb.close()


def test_children_share_memory_copy_on_write():
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        run_ok(
            sb,
            "blob = bytearray(1536 << 20)\nfor i in range(0, len(blob), 4096):\n    blob[i] = 1",
            timeout=300,
        )
        snap = sb.snapshot(mode="live")
        # Its first cell teaches the lineage's working-set hint, so the ten
        # below start with those pages already copied: they count here too.
        (scout,) = snap.spawn()
        run_ok(scout, "blob[4096 * 7]")
        scout.close()
        before = _pss_kib()
        kids = snap.spawn(10)
        for k in kids:
            assert run_ok(k, "blob[4096 * 7]").result["text/plain"] == "1"
        added = _pss_kib() - before
        assert added <= 0.10 * (1536 << 10), f"10 idle children added {added} KiB"
        for k in kids:
            k.close()
        snap.close()
    finally:
        sb.close()


def _rollup_kib(field: str) -> int:
    with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} line")


def test_children_start_with_the_lineage_working_set_faulted_in():
    """A child's first cell teaches the hint; later children copy those
    pages at spawn (bounded), and still hold exactly the pause's state."""
    source = Sandbox.spawn(memory_mib=1024)  # a lineage no child has taught yet
    run_ok(source, "import hashlib\nhint_probe = bytes(range(256)) * 4096")
    digest = value(source, "hashlib.sha256(hint_probe).hexdigest()")
    snap = source.snapshot(mode="live")
    kids = []
    try:
        added = []
        for _ in range(2):
            before = _rollup_kib("Anonymous")
            (kid,) = snap.spawn()
            added.append(_rollup_kib("Anonymous") - before)
            kids.append(kid)
            assert value(kid, "hashlib.sha256(hint_probe).hexdigest()") == digest
        cold, warm = added
        assert warm > cold + 1024, f"the second child copied only {warm - cold} KiB more"
        assert warm - cold <= 8 * 1024 + 4096, f"the hint copied {warm - cold} KiB"
        run_ok(kids[1], "hint_probe = b'changed'")
        assert value(kids[0], "len(hint_probe)") == 256 * 4096
        assert value(source, "hashlib.sha256(hint_probe).hexdigest()") == digest
    finally:
        for kid in kids:
            kid.close()
        snap.close()
        source.close()


def _pss_kib() -> int:
    with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise AssertionError("no Pss line")


def test_snapshot_chains_and_dependents(source):
    snaps, boxes = [], []
    current = source
    try:
        for depth in range(6):
            mode = ("live", "diff", "full")[depth % 3]
            s = current.snapshot(mode=mode)
            snaps.append(s)
            (current,) = s.spawn()
            boxes.append(current)
            run_ok(current, f"depth = {depth}")
        assert value(current, "(marker, depth)") == ("from-parent", 5)
        with pytest.raises(SnapshotBusy) as info:
            snaps[-1].close()
        assert boxes[-1].id in info.value.dependents
    finally:
        for b in reversed(boxes):
            b.close()
        for s in reversed(snaps):
            s.close(force=True)


def test_wait_false_only_for_live_and_live_fork_required(source):
    with pytest.raises(ValueError):
        source.snapshot(mode="full", wait=False)
    with pytest.raises(ValueError):
        source.snapshot(mode="sideways")
    plain = Sandbox.spawn(memory_mib=256, live_fork=False)
    try:
        with pytest.raises(SandboxError, match="live_fork=False"):
            plain.snapshot(mode="live")
        s = plain.snapshot(mode="full")
        (c,) = s.spawn()
        assert run_ok(c, "1 + 1").result["text/plain"] == "2"
        c.close()
        s.close()
    finally:
        plain.close()


def test_source_keeps_running_while_live_copy_is_in_flight():
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(
            sb,
            "big = bytearray(512 << 20)\nfor i in range(0, len(big), 4096):\n    big[i] = 2",
            timeout=300,
        )
        snap = sb.snapshot(mode="live", wait=False)
        r = run_ok(sb, "big[0] = 9\nsum(big[:4096 * 4:4096])")
        assert r.result["text/plain"] == "15"
        snap.wait(timeout=120)
        (c,) = snap.spawn()
        assert run_ok(c, "sum(big[:4096 * 4:4096])").result["text/plain"] == "8"
        c.close()
        snap.close()
    finally:
        sb.close()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_200_branch_cycles_leak_nothing():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "state = list(range(100_000))")

        def cycle(i: int) -> None:
            snap = sb.snapshot(mode=("live", "full", "diff")[i % 3])
            (child,) = snap.spawn()
            assert run_ok(child, f"len(state) + {i}").result["text/plain"] == str(100_000 + i)
            child.close()
            snap.close()

        for i in range(20):  # warm-up: allocator pools, thread stacks, caches
            cycle(i)
        fds, rss = len(os.listdir("/proc/self/fd")), _rss_bytes()
        for i in range(200):
            cycle(i)
        assert len(os.listdir("/proc/self/fd")) <= fds * 1.05
        assert _rss_bytes() <= rss * 1.05, (rss, _rss_bytes())
    finally:
        sb.close()


def test_diff_holds_only_the_pages_dirtied_since_the_previous_snapshot():
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(sb, "big = bytearray(256 << 20)\nfor i in range(0, len(big), 4096):\n    big[i] = 1")
        first = sb.snapshot(mode="full")
        run_ok(sb, "big[:4096 * 16] = b'\\x07' * (4096 * 16)\nsmall = 'changed'")
        diff = sb.snapshot(mode="diff")
        assert diff.parent is first
        assert first.physical_bytes > 200 << 20
        assert diff.physical_bytes < 16 << 20, diff.physical_bytes
        (child,) = diff.spawn()
        try:
            assert value(child, "(small, big[0], big[4096 * 15], big[4096 * 16], len(big))") == (
                "changed",
                7,
                7,
                1,
                256 << 20,
            )
            # A diff of a child builds on the snapshot it came from.
            run_ok(child, "small = 'grandchild'")
            d2 = child.snapshot(mode="diff")
            assert d2.parent is diff
            (g,) = d2.spawn()
            assert value(g, "(small, big[0], big[4096 * 16])") == ("grandchild", 7, 1)
            with pytest.raises(SnapshotBusy):
                first.close()
            g.close()
            d2.close()
        finally:
            child.close()
        diff.close()
        first.close()
    finally:
        sb.close()


def test_a_child_maps_its_chains_shorter_runs_instead_of_copying_them():
    """A diff's runs of 256 KiB and more (up to a cap) are mapped into a
    child copy-on-write from the layer's image, not copied (snap_map.c): 24
    separate 1 MiB slices written after a full snapshot add far less than
    24 MiB of the host's anonymous memory at a child's spawn, every slice
    reads what the source wrote, and a child's writes there stay its own."""
    mib = 1 << 20
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(sb, "big = bytearray(64 << 20)\nfor i in range(0, len(big), 4096):\n    big[i] = 1")
        full = sb.snapshot(mode="full")
        run_ok(
            sb,
            "for k in range(24):\n"
            "    big[k * (2 << 20) : k * (2 << 20) + (1 << 20)] = bytes([k + 2]) * (1 << 20)",
        )
        diff = sb.snapshot(mode="diff")
        assert diff.parent is full and diff.dirty_bytes >= 24 * mib
        check = (
            "sum(big[k * (2 << 20) + 4096 * 7] == k + 2 for k in range(24)), big[(1 << 20) + 4096]"
        )
        before = _rollup_kib("Anonymous")
        (child,) = diff.spawn()
        added = _rollup_kib("Anonymous") - before
        try:
            assert added < 12 * 1024, f"the spawn copied {added} KiB"
            assert tuple(value(child, check)) == (24, 1)
            run_ok(child, "big[: 1 << 20] = b'\\x63' * (1 << 20)")
            (other,) = diff.spawn()
            try:
                assert tuple(value(other, check)) == (24, 1)
                assert value(other, "big[100]") == 2
                assert value(child, "big[100]") == 0x63
            finally:
                other.close()
        finally:
            child.close()
        diff.close()
        full.close()
    finally:
        sb.close()


def _image_kib(size: int) -> int:
    """Memory held by this process's files of ``size`` bytes (snapshot
    images: the VMM runs in this process), each counted once (a child holds
    its own descriptor of its chain's full image), in KiB."""
    files = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            st = os.fstat(int(fd))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == size:
            files[st.st_dev, st.st_ino] = st.st_blocks // 2
    return sum(files.values())


def test_a_childs_copied_pages_leave_its_chains_images_as_they_were():
    """A child's pages copied from diff layers are filled into its RAM
    (snap_map.c: by userfaultfd, from each layer's mapped image) without
    changing any image of the chain: the pages a layer holds as zero (holes
    of its image, here 40 buffers of 128 KiB unmapped since the full
    snapshot) are filled with zeros, never read through the mapping, which
    would give the image a page of its own at every spawn. Every copied page
    reads right, and the child's RAM is left as any other's (its cells
    write fresh memory, which would wait for ever on a page left
    registered)."""
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        run_ok(
            sb,
            "import mmap\nsmall, between = [], []\nfor k in range(40):\n"
            "    small.append(mmap.mmap(-1, 128 << 10))\n    small[-1].write(b'x' * (128 << 10))\n"
            "    between.append(mmap.mmap(-1, 4096))\n    between[-1].write(b'y' * 4096)",
        )
        full = sb.snapshot(mode="full")
        run_ok(
            sb,
            "for m in small:\n    m.close()\n"
            "kept = bytearray(16 << 20)\nfor i in range(0, len(kept), 8 * 4096):\n    kept[i] = 7",
        )
        first = sb.snapshot(mode="diff")
        run_ok(sb, "kept[4096 * 3] = 9")
        diff = sb.snapshot(mode="diff")
        assert diff.parent is first and first.parent is full
        diff.wait()  # its image and its chain's written
        before = _image_kib(1024 << 20)
        (child,) = diff.spawn()
        try:
            added = _image_kib(1024 << 20) - before
            assert added < 256, f"the spawn gave the images {added} KiB"
            check = "sum(kept[i] == 7 for i in range(0, len(kept), 8 * 4096)), sum(kept)"
            assert tuple(value(child, check)) == (512, 512 * 7 + 9)
            assert value(child, "sum(m[:] == b'y' * 4096 for m in between)") == 40
            run_ok(child, "again = bytearray(64 << 20)\nagain[::4096] = b'\\x01' * (16 << 10)")
            assert tuple(value(child, "sum(again), sum(kept)")) == (16 << 10, 512 * 7 + 9)
        finally:
            child.close()
        for s in (diff, first, full):
            s.close()
    finally:
        sb.close()
