"""The files of /proc a sandbox makes when they are opened, as tools read
them (free, df, uptime, ps, top, psutil): the system's meminfo (the
sandbox's RAM), stat, cpuinfo, uptime, loadavg and mounts, the process's
own stat, statm, cmdline, environ, mounts and mountinfo beside maps and
status, smaps, smaps_rollup and io, and a task directory per live thread."""

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
        "          for d in ('/proc', '/proc/self', '/proc/net')}\n"
        "sizes = {f'{d}/{n}': len(open(f'{d}/{n}').read()) for d, names in listed.items()\n"
        "         for n in names if n not in ('self', 'exe', 'cwd', 'fd', 'task', 'net')}",
    )
    listed = value(sandbox, "listed")
    assert {"meminfo", "stat", "uptime", "loadavg", "mounts", "self", "cpuinfo", "version"} <= set(
        listed["/proc"]
    )
    own = {"maps", "status", "stat", "statm", "mounts", "mountinfo", "cmdline", "environ", "comm"}
    own |= {"smaps", "smaps_rollup", "io"}
    assert own | {"task"} <= set(listed["/proc/self"])
    assert set(listed["/proc/net"]) == {"dev", "tcp", "tcp6", "udp", "udp6", "unix"}
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


def test_ps_and_top_read_what_they_need(sandbox):
    """procps needs /proc/cpuinfo beside /proc/stat for the boot time (ps's
    START and lstart, top's summary): without it ps stopped mid-line with
    "Unable to get system boot time"."""
    run_ok(
        sandbox,
        "import os, subprocess\n"
        "def sh(cmd):\n"
        "    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)\n"
        "    return [p.returncode, p.stderr, p.stdout]\n"
        "ps = sh('ps -o pid=,lstart=,args=')\n"
        "aux = sh('ps aux')\n"
        "top = sh('top -bn1')",
    )
    rc, err, out = value(sandbox, "ps")
    assert (rc, err) == (0, "")
    assert out.split()[-2:] == ["ps", "-o"] or "ps -o pid=,lstart=,args=" in out  # its cmdline
    rc, err, out = value(sandbox, "aux")
    assert (rc, err) == (0, "") and out.splitlines()[-1].endswith("ps aux")
    rc, err, out = value(sandbox, "top")
    assert (rc, err) == (0, "") and "%Cpu(s)" in out


def test_cpuinfo_has_the_sandbox_cores_and_the_guest_cpu_features(sandbox):
    """One processor block per core the sandbox has; a feature is listed
    exactly when the guest's CPUID offers it (as numpy's own CPUID probe in
    the guest sees it), whatever the host has."""
    run_ok(
        sandbox,
        "import os, numpy\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as has\n"
        "blocks = open('/proc/cpuinfo').read().strip().split('\\n\\n')\n"
        "flags = [set(next(ln for ln in b.splitlines() if ln.startswith('flags'))\n"
        "             .split(':')[1].split()) for b in blocks]\n"
        "pairs = {'AVX512F': 'avx512f', 'AVX512BW': 'avx512bw', 'AVX2': 'avx2', 'FMA3': 'fma',\n"
        "         'AVX': 'avx', 'SSE42': 'sse4_2', 'POPCNT': 'popcnt', 'F16C': 'f16c'}\n"
        "agree = {f: has[k] == (f in flags[0]) for k, f in pairs.items()}\n"
        "n = [len(blocks), os.cpu_count(), len({frozenset(f) for f in flags})]",
    )
    assert value(sandbox, "n") in ([os.cpu_count(), os.cpu_count(), 1],)
    assert all(value(sandbox, "agree").values()), value(sandbox, "agree")
    assert value(sandbox, "has['SSE42'] and 'sse4_2' in flags[0]")


def test_command_line_and_environment_as_exec_gave_them(sandbox):
    """/proc/<pid>/cmdline and environ hold the strings exec put in the
    process's memory, NUL-separated and in order (psutil's cmdline(),
    ps's COMMAND), argv[0] as the caller gave it."""
    run_ok(
        sandbox,
        "import os, subprocess, sys\n"
        "mine = open('/proc/self/cmdline', 'rb').read()\n"
        "same = mine == b''.join(a.encode() + b'\\0' for a in sys.orig_argv)\n"
        'code = (\'import sys; r = lambda f: open(f"/proc/self/{f}", "rb").read(); \'\n'
        '        \'sys.stdout.buffer.write(r("cmdline") + b"|" + r("environ"))\')\n'
        "env = {'FJ_MARK': 'a b', 'LANG': 'C.UTF-8'}\n"
        "out = subprocess.run([sys.executable, '-c', code, 'two words', ''],\n"
        "                     env=env, capture_output=True).stdout\n"
        "child_args, child_env = out.rsplit(b'|', 1)\n"
        "show = 'print(open(\"/proc/self/cmdline\").read())'\n"
        "title = subprocess.run(['renamed-python', '-c', show], executable=sys.executable,\n"
        "                       capture_output=True).stdout",
    )
    assert value(sandbox, "same") is True
    args = value(sandbox, "child_args").split(b"\0")
    assert args[-3:] == [b"two words", b"", b""] and args[1:3] == [b"-c", args[2]]
    assert sorted(value(sandbox, "child_env").split(b"\0")) == [
        b"",
        b"FJ_MARK=a b",
        b"LANG=C.UTF-8",
    ]
    assert value(sandbox, "title").split(b"\0")[0] == b"renamed-python"  # argv[0], not the file


def threading_ids_are_new(before: list[int], ids: list[int]) -> bool:
    return len(ids) == 2 and not set(before) & set(ids)


def test_each_live_thread_has_its_task_directory(sandbox):
    """Listed by thread id while the thread runs (Python's threads and any
    other, such as a BLAS pool), each with its stat and status; gone once
    it ended."""
    run_ok(
        sandbox,
        "import os, threading\n"
        "before = sorted(int(n) for n in os.listdir('/proc/self/task'))\n"
        "go, ids = threading.Event(), []\n"
        "def work():\n"
        "    ids.append(threading.get_native_id()); go.wait()\n"
        "ts = [threading.Thread(target=work) for _ in range(2)]\n"
        "[t.start() for t in ts]\n"
        "while len(ids) < 2: pass\n"
        "listed = sorted(int(n) for n in os.listdir('/proc/self/task'))\n"
        "expected = sorted(before + ids)\n"
        "firsts = [int(open(f'/proc/self/task/{t}/stat').read().split()[0]) for t in expected]\n"
        "status = [open(f'/proc/self/task/{t}/status').read() for t in ids]\n"
        "pids = {s.split('Pid:')[1].split()[0] for s in status}\n"
        "go.set(); [t.join() for t in ts]\n"
        "import time\n"
        "for _ in range(500):  # join() returns as the thread ends, before its exit is done\n"
        "    after = sorted(int(n) for n in os.listdir('/proc/self/task'))\n"
        "    if after == before: break\n"
        "    time.sleep(0.01)\n"
        "gone = [os.path.exists(f'/proc/self/task/{t}') for t in ids]",
    )
    assert value(sandbox, "listed") == value(sandbox, "expected")
    assert value(sandbox, "firsts") == value(sandbox, "expected")
    assert value(sandbox, "sorted(pids)") == sorted(str(t) for t in value(sandbox, "ids"))
    assert threading_ids_are_new(value(sandbox, "before"), value(sandbox, "ids"))
    assert value(sandbox, "after") == value(sandbox, "before")
    assert value(sandbox, "gone") == [False, False]


def test_every_process_of_the_sandbox_is_in_proc(sandbox):
    """/proc lists the sandbox's live processes, each with its stat, status,
    cmdline and task directory, so ps, pgrep and pkill find them (each
    process is a VM of its own); an ended one is gone."""
    run_ok(
        sandbox,
        "import os, subprocess, time\n"
        "kid = subprocess.Popen(['sleep', '30'])\n"
        "py = subprocess.Popen(['python3', '-c', 'import time; time.sleep(30)', 'marker'])\n"
        "time.sleep(0.5)\n"
        "pids = sorted(int(n) for n in os.listdir('/proc') if n.isdigit())\n"
        "cmd = open(f'/proc/{kid.pid}/cmdline', 'rb').read()\n"
        "stat = open(f'/proc/{py.pid}/stat').read().split()\n"
        "tasks = os.listdir(f'/proc/{py.pid}/task')\n"
        "listing = sorted(os.listdir(f'/proc/{kid.pid}'))\n"
        "def sh(c):\n"
        "    p = subprocess.run(c, shell=isinstance(c, str), capture_output=True, text=True)\n"
        "    return [p.returncode, p.stdout.split(), p.stderr]\n"
        "ps = sh('ps -e -o pid=,args=')\n"
        "pgrep = sh(['pgrep', '-f', 'marker'])\n"
        "pkill = sh(['pkill', '-f', 'sleep 30'])\n"
        "killed = kid.wait(timeout=10)\n"
        "gone = os.path.exists(f'/proc/{kid.pid}')\n"
        "py.kill(); py.wait()",
    )
    me, kid, py = (value(sandbox, x) for x in ("os.getpid()", "kid.pid", "py.pid"))
    assert {me, kid, py} <= set(value(sandbox, "pids"))
    assert value(sandbox, "cmd") == b"sleep\x0030\x00"
    stat = value(sandbox, "stat")
    assert (int(stat[0]), int(stat[3])) == (py, me)  # its pid, its parent
    assert value(sandbox, "tasks") == [str(py)]
    assert {"cmdline", "stat", "status", "task"} <= set(value(sandbox, "listing"))
    rc, out, err = value(sandbox, "ps")
    assert (rc, err) == (0, "") and {str(me), str(kid), str(py)} <= set(out)
    assert value(sandbox, "pgrep") == [0, [str(py)], ""]
    assert value(sandbox, "pkill")[0] == 0 and value(sandbox, "killed") == -15
    assert value(sandbox, "gone") is False


def test_the_working_directory_link_follows_chdir(sandbox):
    run_ok(
        sandbox,
        "import os\n"
        "start = os.getcwd()\n"
        "os.makedirs('/tmp/wd/inner', exist_ok=True); os.chdir('/tmp/wd')\n"
        "seen = [os.readlink('/proc/self/cwd'), os.listdir('/proc/self/cwd'),\n"
        "        os.path.samefile('/proc/self/cwd', '/tmp/wd')]\n"
        "os.chdir(start)",
    )
    assert value(sandbox, "seen") == ["/tmp/wd", ["inner"], True]
    assert value(sandbox, "os.readlink('/proc/self/cwd')") == value(sandbox, "start")


def test_context_switches_count_what_the_threads_waited_for(sandbox):
    """status has voluntary_ctxt_switches and nonvoluntary_ctxt_switches
    (psutil's num_ctx_switches needs both): the host's counts of the
    process's threads, or of one thread under task/<tid>; every sleep of
    the guest is a wait of its thread on the host."""
    run_ok(
        sandbox,
        "import threading, time\n"
        "def switches(path):\n"
        "    got = dict(line.split(':') for line in open(path) if 'ctxt_switches' in line)\n"
        "    return int(got['voluntary_ctxt_switches']), int(got['nonvoluntary_ctxt_switches'])\n"
        "me = f'/proc/self/task/{threading.get_native_id()}/status'\n"
        "first, first_mine = switches('/proc/self/status'), switches(me)\n"
        "for _ in range(20):\n"
        "    time.sleep(0.002)\n"
        "then, then_mine = switches('/proc/self/status'), switches(me)",
    )
    first, then = value(sandbox, "first"), value(sandbox, "then")
    first_mine, then_mine = value(sandbox, "first_mine"), value(sandbox, "then_mine")
    assert then[0] - first[0] >= 20, (first, then)
    assert then_mine[0] - first_mine[0] >= 20, (first_mine, then_mine)
    assert then[0] >= then_mine[0] and then[1] >= then_mine[1]


def test_load_and_uptime_agree_between_proc_and_sysinfo(sandbox):
    """getloadavg and sysinfo (glibc reads the load there) say what
    /proc/loadavg and /proc/uptime say: the host's load and boot time."""
    run_ok(
        sandbox,
        "import ctypes, os\n"
        "class SysInfo(ctypes.Structure):\n"
        "    _fields_ = [('uptime', ctypes.c_long), ('loads', ctypes.c_ulong * 3)]\n"
        "si = (ctypes.c_char * 256)()\n"
        "ctypes.CDLL(None).sysinfo(si)\n"
        "info = SysInfo.from_buffer(si)\n"
        "seen = [os.getloadavg(), [float(x) for x in open('/proc/loadavg').read().split()[:3]],\n"
        "        info.uptime, float(open('/proc/uptime').read().split()[0])]",
    )
    by_call, by_file, sysinfo_up, proc_up = value(sandbox, "seen")
    host_load = os.getloadavg()
    assert all(abs(a - b) < 1.0 for a, b in zip(by_call, by_file, strict=True)), (by_call, by_file)
    assert any(x > 0 for x in by_call) == any(x > 0 for x in host_load)
    assert abs(sysinfo_up - proc_up) <= 2 and proc_up > 60, (sysinfo_up, proc_up)


RESIDENT = """
import mmap
def kb(path, key):
    return sum(int(ln.split()[1]) for ln in open(path) if ln.startswith(key + ':'))
def resident():
    statm = int(open('/proc/self/statm').read().split()[1]) * 4
    stat = int(open('/proc/self/stat').read().split()[23]) * 4
    return [statm, stat, kb('/proc/self/status', 'VmRSS'), kb('/proc/self/smaps_rollup', 'Rss'),
            kb('/proc/self/smaps', 'Rss'), kb('/proc/self/status', 'VmSize')]
before = resident()
m = mmap.mmap(-1, 256 << 20)
mapped = resident()
for i in range(0, 128 << 20, 4096):
    m[i] = 1
touched = resident()
uss = sum(kb('/proc/self/smaps_rollup', k) for k in ('Private_Dirty', 'Private_Clean'))
"""


def test_resident_memory_is_what_the_process_touched(sandbox):
    """statm, stat, status, smaps and smaps_rollup count the pages the
    process touched, not what it mapped (ps's RSS, psutil's rss and USS):
    256 MiB mapped add nothing until 128 MiB of them are written."""
    run_ok(sandbox, RESIDENT)
    before, mapped, touched = value(sandbox, "[before, mapped, touched]")
    for figures in (before, mapped, touched):
        rss = figures[0]
        assert all(abs(f - rss) <= 1024 for f in figures[1:5]), figures  # read a moment apart
        assert rss < figures[5]  # never all that is mapped
    assert mapped[5] - before[5] >= 256 << 10
    assert mapped[0] - before[0] < 16 << 10
    assert 128 << 10 <= touched[0] - mapped[0] < 144 << 10
    assert abs(value(sandbox, "uss") - touched[3]) <= 1024


def test_io_counts_the_read_and_write_calls(sandbox):
    """/proc/self/io as psutil's io_counters reads it: bytes and calls of
    the read and write families, nothing counted as reaching a disk."""
    run_ok(
        sandbox,
        "import os\n"
        "def io():\n"
        "    return {k: int(v) for k, v in (ln.split(':') for ln in open('/proc/self/io'))}\n"
        "a = io()\n"
        "fd = os.open('/tmp/io-probe', os.O_CREAT | os.O_RDWR)\n"
        "for _ in range(10):\n"
        "    os.write(fd, b'x' * 100_000)\n"
        "os.pread(fd, 300_000, 0)\n"
        "os.close(fd)\n"
        "b = io()",
    )
    a, b = value(sandbox, "[a, b]")
    assert set(a) == {"rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
                      "cancelled_write_bytes"}  # fmt: skip
    assert 1_000_000 <= b["wchar"] - a["wchar"] < 1_010_000
    assert 10 <= b["syscw"] - a["syscw"] < 20
    # The reads of /proc/self/io itself count as well (as on Linux).
    assert 300_000 <= b["rchar"] - a["rchar"] < 310_000
    assert 1 <= b["syscr"] - a["syscr"] < 10
    assert b["read_bytes"] == b["write_bytes"] == 0


def test_peak_resident_memory_outlives_the_buffer_that_made_it(sandbox):
    """getrusage's ru_maxrss and status's VmHWM give the largest resident
    size the process reached (KiB), not what it maps or holds now: a
    200 MiB buffer touched and freed leaves the peak above it."""
    run_ok(
        sandbox,
        "import mmap, resource\n"
        "def kb(key):\n"
        "    return sum(int(ln.split()[1]) for ln in open('/proc/self/status')"
        " if ln.startswith(key + ':'))\n"
        "rss_before = kb('VmRSS')\n"
        "big = mmap.mmap(-1, 200 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
        "for _ in range(200):\n"
        "    big.write(b'p' * (1 << 20))\n"
        "big.close()\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "hwm, rss_after, size = kb('VmHWM'), kb('VmRSS'), kb('VmSize')",
    )
    before, peak, hwm, after, size = value(sandbox, "[rss_before, peak, hwm, rss_after, size]")
    assert peak >= before + (200 << 10), (before, peak)
    assert hwm == peak and after < peak - (150 << 10), (hwm, peak, after)
    assert peak <= before + (232 << 10), (before, peak, size)  # resident, not mapped
