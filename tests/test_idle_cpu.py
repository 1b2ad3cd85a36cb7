"""Idle means idle: a sandbox waiting for its next cell costs no host CPU,
before a branch, after one (the source and its children), whatever the mode."""

from __future__ import annotations

import os
import time

import pytest
from guest_helpers import run_ok

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm

WINDOW_S = 3.0
MAX_SHARE = 0.03  # of one core, over the window
TICK = os.sysconf("SC_CLK_TCK")


def _threads_cpu_s() -> float:
    """CPU time (user + system) of this process's live threads, which
    include every sandbox's vCPU thread."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def _share_of_a_core_while_idle() -> float:
    time.sleep(0.3)  # let start-up and a background copy settle
    cpu0, t0 = _threads_cpu_s(), time.monotonic()
    time.sleep(WINDOW_S)
    return (_threads_cpu_s() - cpu0) / (time.monotonic() - t0)


def _a_live_branch_and_its_source_stay_idle(source: Sandbox, what: str, cleanup: str) -> None:
    """Branches source live; both stay under MAX_SHARE; then cleanup runs in each."""
    snap = source.snapshot(mode="live", wait=True)
    (child,) = snap.spawn()
    try:
        share = _share_of_a_core_while_idle()
        assert share < MAX_SHARE, f"a source ({what}) and its child use {share:.0%} of a core"
        for sb in (child, source):
            run_ok(sb, cleanup)
    finally:
        child.close()
        snap.close()


@pytest.fixture
def idle_sandbox():
    sb = Sandbox.spawn(memory_mib=256)
    run_ok(sb, "x = 1")
    yield sb
    sb.close()


def test_an_idle_sandbox_uses_no_cpu(idle_sandbox):
    assert _share_of_a_core_while_idle() < MAX_SHARE


@pytest.mark.parametrize("mode", ["live", "full", "diff"])
def test_the_source_stays_idle_after_a_branch(idle_sandbox, mode):
    snap = idle_sandbox.snapshot(mode=mode, wait=True)
    try:
        share = _share_of_a_core_while_idle()
        assert share < MAX_SHARE, f"idle source after a {mode} branch uses {share:.0%} of a core"
        run_ok(idle_sandbox, "assert x == 1")  # and it still answers
    finally:
        snap.close()


def test_a_fresh_child_and_its_source_stay_idle(idle_sandbox):
    snap = idle_sandbox.snapshot(mode="live", wait=True)
    (child,) = snap.spawn()
    try:
        share = _share_of_a_core_while_idle()
        assert share < MAX_SHARE, f"an idle child and its source use {share:.0%} of a core"
        run_ok(child, "assert x == 1")
    finally:
        child.close()
        snap.close()


def test_repeated_branches_leave_nothing_spinning(idle_sandbox):
    for _ in range(3):
        idle_sandbox.snapshot(mode="live", wait=True).close()
    share = _share_of_a_core_while_idle()
    assert share < MAX_SHARE, f"idle source after 3 live branches uses {share:.0%} of a core"


def test_idle_threads_use_no_cpu_before_and_after_a_branch(idle_sandbox):
    """Pool workers and a thread blocked on an Event sleep in futex waits;
    so do their copies in a child."""
    run_ok(
        idle_sandbox,
        "import threading\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "pool = ThreadPoolExecutor(4)\nlist(pool.map(abs, range(50)))\n"
        "ev = threading.Event()\nwaiter = threading.Thread(target=ev.wait)\nwaiter.start()",
    )
    share = _share_of_a_core_while_idle()
    assert share < MAX_SHARE, f"an idle sandbox with 5 threads uses {share:.0%} of a core"
    _a_live_branch_and_its_source_stay_idle(
        idle_sandbox, "threaded", "ev.set(); waiter.join(); pool.shutdown()"
    )


def test_idle_processes_use_no_cpu(idle_sandbox):
    """Child processes blocked on a pipe, in sleep, or waiting in a pool's
    queue (a futex in shared memory) cost nothing."""
    run_ok(
        idle_sandbox,
        "import multiprocessing as mp, subprocess\n"
        "sleeper = subprocess.Popen(['sleep', '60'])\n"
        "reader = subprocess.Popen(['cat'], stdin=subprocess.PIPE)\n"
        "pool = mp.get_context('fork').Pool(2)\n"
        "assert pool.map(abs, range(-3, 0)) == [3, 2, 1]",
    )
    share = _share_of_a_core_while_idle()
    assert share < MAX_SHARE, f"a sandbox with 5 idle processes uses {share:.0%} of a core"
    run_ok(
        idle_sandbox,
        "pool.terminate(); sleeper.kill(); reader.kill(); sleeper.wait(); reader.wait()",
    )


def test_a_branch_of_idle_processes_stays_idle(idle_sandbox):
    """The processes a branch carries (a sleeper, a reader blocked on its
    pipe, a shell at its prompt on a terminal) wait in the child as they did
    in the source."""
    run_ok(
        idle_sandbox,
        "import os, pty, subprocess\n"
        "sleeper = subprocess.Popen(['sleep', '60'])\n"
        "reader = subprocess.Popen(['cat'], stdin=subprocess.PIPE)\n"
        "master, slave = pty.openpty()\n"
        "shell = subprocess.Popen(['bash', '--norc', '-i'], stdin=slave, stdout=slave,\n"
        "                         stderr=slave, start_new_session=True)\n"
        "os.close(slave)",
    )
    _a_live_branch_and_its_source_stay_idle(
        idle_sandbox, "with processes", "for p in (sleeper, reader, shell): p.kill(); p.wait()"
    )
