"""A diff checkpoint holds only the pages whose bytes changed (a page the
guest wrote back unchanged stays out: the chain already holds it), and the
pages written at every cell stay writable between diffs, compared again at
each one (snap_unchanged.h). What a child of any diff reads is still exactly
the source's memory at that pause: through pages that are hot, go cold,
come back, are freed, and links that are folded away."""

from __future__ import annotations

import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm

MIB = 1 << 20
FINGERPRINT = "(x, hashlib.sha1(buf.tobytes()).hexdigest(), len(log), sorted(temp))"


def start_state(sb: Sandbox, buf_mib: int) -> None:
    """The variables FINGERPRINT reads, buf of buf_mib MiB of zeros."""
    run_ok(
        sb,
        "import hashlib, numpy as np\n"
        f"x, log, temp = 0, [], {{}}\nbuf = np.zeros({buf_mib} << 20, dtype=np.uint8)",
    )


def fingerprint_of(snap) -> tuple:
    return fingerprint_of_with(snap, FINGERPRINT)


def fingerprint_of_with(snap, expr: str) -> tuple:
    (child,) = snap.spawn()
    try:
        return tuple(value(child, expr))
    finally:
        child.close()


def test_a_diff_leaves_out_pages_written_back_unchanged():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "import numpy as np\nbuf = np.zeros(8 * (1 << 20), dtype=np.uint8)")
        sb.snapshot(mode="diff")  # the first: a whole image
        run_ok(sb, "buf[:] = 7")
        changed = sb.snapshot(mode="diff")
        run_ok(sb, "buf[:] = 7")  # every page written, none changed
        same = sb.snapshot(mode="diff")
        run_ok(sb, "buf[: 4 * (1 << 20)] = 9")
        half = sb.snapshot(mode="diff")
        assert changed.dirty_bytes >= 8 * MIB
        # The interpreter's own writes remain (a few hundred KiB), not the 8 MiB.
        assert same.dirty_bytes < 2 * MIB, same.dirty_bytes
        assert 4 * MIB <= half.dirty_bytes < 6 * MIB, half.dirty_bytes
        sums = {"changed": 7 * 8 * MIB, "same": 7 * 8 * MIB, "half": (9 + 7) * 4 * MIB}
        for name, snap in (("changed", changed), ("same", same), ("half", half)):
            (child,) = snap.spawn()
            try:
                assert value(child, "int(buf.sum())") == sums[name], name
            finally:
                child.close()
    finally:
        sb.close()


def test_every_diff_spawns_the_exact_state_through_hot_cold_freed_and_folded_pages():
    """Twenty cells (more than two rounds of the writable-page window) with a
    region written at every cell, one rewritten unchanged, one written every
    third cell, one freed and reallocated, a list that grows; the oldest
    links folded away as a checkpoint budget does; each diff's child
    compared with the source's fingerprint taken at the pause."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        start_state(sb, 16)
        snaps = [sb.snapshot(mode="diff")]
        want = [tuple(value(sb, FINGERPRINT))]
        cell = (
            "x += 1\n"
            "buf[: 1 << 20] = x % 251\n"  # hot: changes at every cell
            "buf[1 << 20 : 2 << 20] = 5\n"  # written at every cell, never changes
            "if x % 3 == 0:\n"
            "    buf[4 << 20 : 6 << 20] = x\n"  # warm: every third cell
            "buf[8 << 20 :: 4096] = (x * 7) % 256\n"  # one byte per page, changing
            "temp[x] = np.full(3 << 20, x % 200, dtype=np.uint8)\n"
            "temp.pop(x - 2, None)\n"  # freed two cells later, its memory reused
            "log.append(x)"
        )
        for i in range(20):
            run_ok(sb, cell)
            want.append(tuple(value(sb, FINGERPRINT)))
            snaps.append(sb.snapshot(mode="diff"))
            if i in (6, 13):  # the budget's fold: the oldest link into the next
                snaps[1].fold_parent()
                del snaps[0], want[0]
        for snap, expected in zip(snaps, want, strict=True):
            assert fingerprint_of(snap) == expected
        assert want[-1][0] == 20 and want[-1][2] == 20
    finally:
        sb.close()


def test_a_child_and_its_source_diff_on_the_same_origin_independently():
    """A child's first diff builds on the snapshot it was spawned from, as
    does its source's next one: each compares with that origin and keeps its
    own writable pages, and each chain spawns its own exact state."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        start_state(sb, 8)
        sb.snapshot(mode="diff")
        run_ok(sb, "buf[: 2 << 20] = 1")
        origin = sb.snapshot(mode="diff")
        (child,) = origin.spawn()
        try:
            chains = {"source": (sb, []), "child": (child, [])}
            for _ in range(10):
                for name, (box, taken) in chains.items():
                    k = 3 if name == "source" else 5
                    run_ok(box, f"x += 1\nbuf[: 2 << 20] = (x * {k}) % 256\nlog.append(x)")
                    taken.append((tuple(value(box, FINGERPRINT)), box.snapshot(mode="diff")))
            for name, (_, taken) in chains.items():
                for expected, snap in taken:
                    assert fingerprint_of(snap) == expected, name
            assert chains["source"][1][-1][0] != chains["child"][1][-1][0]
        finally:
            child.close()
    finally:
        sb.close()


def wait_until_blocked(sb: Sandbox, quiet_s: float = 0.1, timeout_s: float = 10.0) -> None:
    """Until the guest makes no system call for quiet_s: its agent has
    finished what it does after a cell's reply (a few pages of its own
    bookkeeping, which a loaded machine can delay past the next snapshot)
    and waits for the next request."""
    deadline = time.monotonic() + timeout_s
    calls = sb.stats()["syscalls"]
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = sb.stats()["syscalls"]
        if now == calls:
            return
        calls = now
    raise AssertionError("the guest never went quiet")


def test_a_short_cells_hot_pages_stay_writable_until_the_sandbox_idles():
    """The few hundred pages a short cell writes stay writable from diff to
    diff for good (re-arming them costs the next cell more than comparing
    them costs the pause); one idle diff keeps them, the second re-arms them
    all, so the idle diffs after it compare nothing."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        start_state(sb, 1)
        sb.snapshot(mode="diff")
        kept = []
        for _ in range(12):  # more than KEEP_EPOCHS diffs in a row
            run_ok(sb, "x += 1\nlog.append(x)")
            kept.append(sb.snapshot(mode="diff").kept_bytes)
        assert all(0 < k < 8 * MIB for k in kept[1:]), kept
        wait_until_blocked(sb)
        first = sb.snapshot(mode="diff")
        for _ in range(5):
            # A guest descheduled on a loaded machine looks quiet too: a late
            # write of its agent's then lands in a diff of its own, and the
            # idle run starts after it.
            if first.dirty_bytes == 0:
                break
            wait_until_blocked(sb)
            first = sb.snapshot(mode="diff")
        idle = [first] + [sb.snapshot(mode="diff") for _ in range(2)]
        assert [s.dirty_bytes for s in idle] == [0, 0, 0]
        assert idle[0].kept_bytes > 0 and idle[1].kept_bytes == idle[2].kept_bytes == 0
        run_ok(sb, "x += 1")
        assert fingerprint_of(sb.snapshot(mode="diff"))[0] == 13
    finally:
        sb.close()


def test_a_large_kept_set_is_rearmed_once_it_goes_cold():
    """Pages kept writable beyond the settled size (12 MiB rewritten with
    new values by every cell) stay writable while they keep changing; once
    the cells stop writing them, they are re-armed within KEEP_EPOCHS
    diffs, so a set that goes cold stops being compared."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        start_state(sb, 16)
        sb.snapshot(mode="diff")
        hot, cold = [], []
        for _ in range(12):  # more than KEEP_EPOCHS diffs in a row
            run_ok(sb, "x += 1\nbuf[: 12 << 20] = x % 251")
            hot.append(sb.snapshot(mode="diff").kept_bytes)
        for _ in range(10):
            run_ok(sb, "x += 1")
            cold.append(sb.snapshot(mode="diff").kept_bytes)
        assert all(k >= 12 * MIB for k in hot[1:]), hot
        assert cold[0] >= 12 * MIB and min(cold[1:9]) < 2 * MIB, cold
        assert fingerprint_of(sb.snapshot(mode="diff"))[0] == 22
    finally:
        sb.close()


ADDRESS = "ctypes.addressof(ctypes.c_char.from_buffer(m))"


def test_a_buffer_unmapped_since_the_last_diff_is_held_as_zero_without_a_copy():
    """A buffer a cell maps, fills and unmaps reads zero at the pause: the
    diff holds its pages as zero without copying them (its image stays
    small), the next diff leaves them out when they are zero again, and a
    child reads zero there although the full image below holds the data
    the source had mapped there before."""
    size = 48 * MIB
    fill = (
        f"m = mmap.mmap(-1, {size})\n"
        f"for _ in range({size // MIB}):\n    m.write(b'x' * {MIB})\n"
        f"at = {ADDRESS}"
    )
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, f"import ctypes, mmap\n{fill}")
        full = sb.snapshot(mode="full")  # holds the x's where m is mapped
        (child,) = full.spawn()
        try:
            run_ok(child, "first = at\nm.close()")
            first = child.snapshot(mode="diff")
            run_ok(child, f"{fill}\nassert at == first, (at, first)\nm.close()")
            second = child.snapshot(mode="diff")
            assert first.dirty_bytes >= size, first.dirty_bytes
            assert first.physical_bytes < 8 * MIB, first.physical_bytes
            assert second.dirty_bytes < 8 * MIB, second.dirty_bytes
            for snap in (first, second):
                (grandchild,) = snap.spawn()
                try:
                    run_ok(grandchild, f"m = mmap.mmap(-1, {size})\nassert {ADDRESS} == first")
                    assert value(grandchild, "m[:].count(0)") == size
                finally:
                    grandchild.close()
        finally:
            child.close()
    finally:
        sb.close()


def test_a_folded_link_is_compared_against_its_merged_image():
    """A diff compares written pages with the chain's copies in each layer's
    image, mapped once (snap_unchanged.c). After a fold the link holds its
    parent's pages too, in the parent's image: a buffer set to 7 in the
    folded-away link and back to zeros afterwards must be copied, not taken
    for unchanged against the link's old image (a hole there, zeros)."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(
            sb,
            "import numpy as np\n"
            "buf = np.zeros(4 << 20, dtype=np.uint8)\nother = np.zeros(2 << 20, dtype=np.uint8)",
        )
        full = sb.snapshot(mode="diff")  # the first: a whole image
        run_ok(sb, "buf[:] = 7")
        sevens = sb.snapshot(mode="diff")
        run_ok(sb, "other[:] = 3")
        threes = sb.snapshot(mode="diff")
        run_ok(sb, "other[:] = 3")  # compared with threes' image: maps it
        same = sb.snapshot(mode="diff")
        assert same.dirty_bytes < 2 * MIB, same.dirty_bytes
        assert threes.parent is sevens
        threes.fold_parent()  # threes now holds buf's sevens, in sevens' image
        assert threes.parent is full
        run_ok(sb, "buf[:] = 0")
        zeros = sb.snapshot(mode="diff")
        assert zeros.dirty_bytes >= 4 * MIB, zeros.dirty_bytes
        for snap, want in ((threes, 7 * (4 << 20)), (same, 7 * (4 << 20)), (zeros, 0)):
            (child,) = snap.spawn()
            try:
                got = tuple(value(child, "int(buf.sum()), int(other.sum())"))
                assert got == (want, 3 * (2 << 20))
            finally:
                child.close()
    finally:
        sb.close()


def test_a_staged_diff_holds_the_pause_instant_while_the_guest_writes_on():
    """Diffs taken without waiting are staged once the sandbox's stage has
    grown (their pages copied aside in the pause, compared and written after
    it: snap_stage.h). Each holds exactly the state at its pause, though the
    guest rewrites those pages at once, while it finishes; pages written
    back unchanged stay out as in a diff made in the pause; a diff waited
    for is never staged."""
    fingerprint = "(x, [hashlib.sha1(a).hexdigest() for a in arrs])"  # (no copies of arrs)
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "import hashlib, numpy as np\nx, arrs = 0, []")
        sb.snapshot(mode="diff")  # the first: a whole image
        taken = []
        for i in range(1, 9):
            if i % 2:  # 2 MiB of new memory
                run_ok(sb, f"arrs.append(np.full(2 << 20, {i}, dtype=np.uint8))\nx += 1")
            else:  # the same 2 MiB written again with the bytes they held
                run_ok(sb, "arrs[-1][:] = arrs[-1][0]\nx += 1")
            want = tuple(value(sb, fingerprint))
            snap = sb.snapshot(mode="diff", wait=False)
            run_ok(sb, "held = arrs[-1][0]\narrs[-1][:] = 255\nx = -1")  # at once
            run_ok(sb, f"arrs[-1][:] = held\nx = {want[0]}")
            taken.append((i, snap, want))
            time.sleep(0.3)  # a stage that grew (in the background) is in place for the next
        staged = [i for i, snap, _ in taken if snap.wait().staged]
        run_ok(sb, "arrs.append(np.full(2 << 20, 9, dtype=np.uint8))")
        assert not sb.snapshot(mode="diff").staged
        assert len(staged) >= 3, staged
        for i, snap, want in taken:
            assert snap.status == "ready"
            assert fingerprint_of_with(snap, fingerprint) == want, i
            if i % 2 == 0 and i in staged:  # the 2 MiB rewritten left out
                assert snap.dirty_bytes < 2 * MIB, (i, snap.dirty_bytes)
            elif i % 2:
                assert snap.dirty_bytes >= 2 * MIB, (i, snap.dirty_bytes)
    finally:
        sb.close()
