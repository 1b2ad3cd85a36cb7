"""The guest's vDSO: clock_gettime, gettimeofday and time answered in the
guest without a VM exit, agreeing with the host's clocks, monotonic, in
children and in loaded saved snapshots; other clocks still go to the VMM;
the entry points never move (saved snapshots of one build run on another)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from forkd_jupyter.vmm import Sandbox, Snapshot

pytestmark = pytest.mark.kvm

VDSO = Path(__file__).resolve().parents[1] / "build" / "vdso" / "vdso.so"
ENTRIES = {  # vdso/vdso.c: the fixed entry table
    "__vdso_clock_gettime": 0x800,
    "__vdso_gettimeofday": 0x810,
    "__vdso_time": 0x820,
    "__vdso_clock_getres": 0x830,
    "__vdso_getcpu": 0x840,
}
CLOCKS = (
    "import time\n(time.monotonic_ns(), time.time_ns(), time.clock_gettime_ns(time.CLOCK_BOOTTIME))"
)


def clock_calls(sb: Sandbox) -> int:
    calls = sb.stats()["calls"]
    return sum(calls.get(n, {}).get("count", 0) for n in ("clock_gettime", "gettimeofday", "time"))


def assert_clocks_agree_with_the_host(sb: Sandbox) -> None:
    """The guest's clocks, read between two host readings, lie between them."""
    for _ in range(3):
        h0, r0 = time.monotonic_ns(), time.time_ns()
        mono, real, boot = eval(sb.run(CLOCKS).result["text/plain"])
        h1, r1 = time.monotonic_ns(), time.time_ns()
        assert h0 <= mono <= h1, (h0, mono, h1)
        assert r0 - 1_000_000 <= real <= r1 + 1_000_000, (r0, real, r1)
        host_boot_gap = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - time.monotonic_ns()
        assert abs((boot - mono) - host_boot_gap) < 1_000_000


def test_clock_reads_make_no_system_call_and_cost_little(sandbox):
    before = clock_calls(sandbox)
    per_call_us = float(
        sandbox.run(
            "import time\nN = 20000\nt = time.perf_counter_ns()\n"
            "for _ in range(N): time.time(); time.monotonic()\n"
            "(time.perf_counter_ns() - t) / N / 2 / 1000"
        ).result["text/plain"]
    )
    assert clock_calls(sandbox) - before < 10  # 40,000 reads, no exits
    assert per_call_us < 3.0, f"{per_call_us} us per clock read"
    # A system call, for scale, still costs an exit.
    getppid_us = float(
        sandbox.run(
            "import os, time\nt = time.perf_counter_ns()\n"
            "for _ in range(2000): os.getppid()\n(time.perf_counter_ns() - t) / 2000 / 1000"
        ).result["text/plain"]
    )
    assert getppid_us > 3 * per_call_us


def test_guest_clocks_agree_with_the_host_and_never_go_back(sandbox):
    assert_clocks_agree_with_the_host(sandbox)
    # Monotonic across 200,000 reads, with exits (refreshes) in between.
    backwards = sandbox.run(
        "import os, time\nprev = bad = 0\n"
        "for i in range(200000):\n"
        "    t = time.monotonic_ns(); bad += t < prev; prev = t\n"
        "    if i % 500 == 0: os.getppid()\n"
        "bad"
    ).result["text/plain"]
    assert backwards == "0"
    # Three seconds of computing without an exit: the guest's clock has not
    # drifted from the host's by more than a millisecond.
    h0 = time.monotonic_ns()
    guest_end, guest_elapsed = eval(
        sandbox.run(
            "import time\nt = time.monotonic_ns()\nx = 0\n"
            "while time.monotonic_ns() - t < 3_000_000_000: x += 1\n"
            "(time.monotonic_ns(), time.monotonic_ns() - t)"
        ).result["text/plain"]
    )
    h1 = time.monotonic_ns()
    assert h0 <= guest_end <= h1
    assert guest_elapsed >= 3_000_000_000


def test_other_clocks_still_go_to_the_vmm(sandbox):
    before = sandbox.stats()["calls"].get("clock_gettime", {}).get("count", 0)
    cpu, raw, res = eval(
        sandbox.run(
            "import time\nx = sum(range(10**6))\n"
            "(time.process_time(), time.clock_gettime(time.CLOCK_MONOTONIC_RAW), "
            "time.clock_getres(time.CLOCK_MONOTONIC))"
        ).result["text/plain"]
    )
    assert sandbox.stats()["calls"]["clock_gettime"]["count"] > before
    assert 0 < cpu < 600 and raw > 0 and res == 1e-09


def test_children_and_loaded_snapshots_keep_correct_clocks(sandbox, tmp_path, own_state_dir):
    sandbox.run("import time; t0 = time.monotonic()")
    snap = sandbox.snapshot(mode="live")
    [child] = snap.spawn(1)
    try:
        assert_clocks_agree_with_the_host(child)
        assert child.run("time.monotonic() >= t0").result["text/plain"] == "True"
    finally:
        child.close()
    path = tmp_path / "clock.fjsnap"
    snap.save(path)
    loaded = Snapshot.load(path)
    [revived] = loaded.spawn(1)
    try:
        assert_clocks_agree_with_the_host(revived)
        before = clock_calls(revived)
        revived.run("for _ in range(5000): time.time()")
        assert clock_calls(revived) - before < 10
    finally:
        revived.close()
        loaded.close(force=True)
    snap.close(force=True)


def test_the_vdso_entry_points_sit_at_fixed_offsets():
    assert VDSO.is_file(), "the build writes build/vdso/vdso.so"
    listing = subprocess.run(
        ["readelf", "--dyn-syms", "-W", str(VDSO)], check=True, capture_output=True, text=True
    ).stdout
    found = {}
    for line in listing.splitlines():
        m = re.search(r"([0-9a-f]{16})\s+\d+\s+FUNC\s+\w+\s+\w+\s+\S+\s+(\S+?)@", line)
        if m:
            found[m.group(2)] = int(m.group(1), 16)
    for name, offset in ENTRIES.items():
        assert found.get(name) == offset, (name, found)
    relocs = subprocess.run(["readelf", "-r", str(VDSO)], capture_output=True, text=True).stdout
    assert "There are no relocations" in relocs
