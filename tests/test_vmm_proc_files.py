"""The files of /proc a sandbox makes when they are opened, as tools read
them (free, df, uptime, psutil-style readers): the system's meminfo (the
sandbox's RAM), stat, uptime, loadavg and mounts, and the process's own
stat, statm, mounts and mountinfo beside maps and status."""

from __future__ import annotations

import os

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm


def host_btime() -> int:
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("btime"))


def test_every_listed_proc_file_reads(sandbox):
    run_ok(
        sandbox,
        "import os\n"
        "listed = {d: sorted(n for n in os.listdir(d) if not n.isdigit())\n"
        "          for d in ('/proc', '/proc/self')}\n"
        "sizes = {f'{d}/{n}': len(open(f'{d}/{n}').read()) for d, names in listed.items()\n"
        "         for n in names if n not in ('self', 'exe', 'fd')}",
    )
    listed = value(sandbox, "listed")
    assert {"meminfo", "stat", "uptime", "loadavg", "mounts", "self"} <= set(listed["/proc"])
    assert {"maps", "status", "stat", "statm", "mounts", "mountinfo"} <= set(listed["/proc/self"])
    assert all(size > 0 for size in value(sandbox, "sizes").values())


def test_memory_and_time_as_the_sandbox_has_them(sandbox):
    run_ok(
        sandbox,
        "import os, subprocess\n"
        "def fields(path, key):\n"
        "    return next(ln.split()[1:] for ln in open(path) if ln.startswith(key))\n"
        "mem = {k: int(v.split()[0])\n"
        "       for k, v in (ln.split(':') for ln in open('/proc/meminfo'))}\n"
        "stat = open('/proc/self/stat').read().split()\n"
        "statm = open('/proc/self/statm').read().split()\n"
        "vm_size = int(fields('/proc/self/status', 'VmSize')[0])\n"
        "threads = int(fields('/proc/self/status', 'Threads')[0])\n"
        "uptime = float(open('/proc/uptime').read().split()[0])\n"
        "btime = int(fields('/proc/stat', 'btime')[0])\n"
        "free = subprocess.run(['free', '-m'], capture_output=True, text=True).stdout\n"
        "df = subprocess.run(['df', '/tmp'], capture_output=True, text=True)\n"
        "ids = [int(stat[0]) == os.getpid(), int(stat[3]) == os.getppid(),\n"
        "       int(stat[19]) == threads, 0 < int(stat[21]) <= uptime * 100 + 1]",
    )
    mem = value(sandbox, "mem")
    assert mem["MemTotal"] == 1024 * 1024  # the sandbox's 1024 MiB
    assert 0 < mem["MemAvailable"] == mem["MemFree"] < mem["MemTotal"]
    assert value(sandbox, "ids") == [True, True, True, True]
    assert int(value(sandbox, "statm[0]")) * 4 == value(sandbox, "vm_size")
    assert abs(value(sandbox, "btime") - host_btime()) <= 1
    assert value(sandbox, "free.split('\\n')[1].split()[1]") == "1024"
    df = value(sandbox, "[df.returncode, df.stderr, df.stdout.split('\\n')[1].split()[0]]")
    assert df == [0, "", "sandbox"]
    cores = value(sandbox, "[ln.split()[0] for ln in open('/proc/stat') if ln.startswith('cpu')]")
    assert cores == ["cpu"] + [f"cpu{i}" for i in range(os.cpu_count())]
