"""Idle means idle for the whole daemon: with sandboxes that have run cells,
a live branch whose copy is done, its child, a warm base and its ready
child (made ahead for the next spawn), a finished
background run, an open terminal with its shell waiting at the prompt and a
managed process waiting on its stdin, the daemon process uses (almost) no
CPU."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from daemon_fixture import wait_for_ready_child

pytestmark = pytest.mark.kvm

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def test_an_idle_daemon_with_idle_sandboxes_uses_no_cpu(daemon):
    pid = daemon.health()["pid"]
    [a] = daemon.spawn_sandboxes(memory_limit_mib=512)
    [b] = daemon.spawn_sandboxes(memory_limit_mib=512)
    try:
        daemon.run_cell(
            a["id"], "import asyncio\nawait asyncio.sleep(0.01)\nx = list(range(10**5))"
        )
        daemon.run_cell(b["id"], "y = 1")
        daemon.open_terminal(b["id"])
        daemon.start_process(b["id"], ["cat"])
        branch = daemon.branch_sandbox(a["id"], mode="live", count=1)
        [child] = branch["children"]
        daemon.run_cell(child["id"], "z = len(x)")
        wait_for_ready_child(daemon, 512)
        time.sleep(1.0)  # let every copy and write-behind settle
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(3.0)
        used = (cpu_seconds(pid) - before) / (time.monotonic() - started)
        assert used < 0.03, f"the idle daemon used {used:.1%} of a core"
    finally:
        for rec in (a, b, child):
            daemon.kill_sandbox(rec["id"])
