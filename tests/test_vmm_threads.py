"""Real threads in the sandbox: each guest thread runs on a vCPU of its own,
in parallel with the others; futexes, thread-directed signals, thread exit;
branching (full, diff, live) and saving a sandbox whose threads are idle,
blocked in a wait or computing; the limit on threads; a thread that crashes."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, Snapshot
from forkd_jupyter.vmm.errors import SandboxCrashed

pytestmark = pytest.mark.kvm

# A source with three kinds of threads: idle pool workers, one blocked on an
# Event (a futex wait), one computing.
THREADED_STATE = """
import threading, time
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(3)
assert sorted(pool.map(abs, range(-5, 5))) == sorted(abs(i) for i in range(-5, 5))
ev = threading.Event()
woke = []
def waiter():
    ev.wait()
    woke.append(threading.get_native_id())
w = threading.Thread(target=waiter)
w.start()
counter = [0]
stop = False
def busy():
    while not stop:
        counter[0] += 1
b = threading.Thread(target=busy)
b.start()
time.sleep(0.05)
"""

# Every kind of thread carries on in a child: the computing one advances,
# the waiting one wakes, the pool still serves, all end cleanly.
RESUMED = """
c0 = counter[0]
time.sleep(0.1)
advanced = counter[0] > c0
ev.set()
w.join(10)
pool_sum = sum(pool.map(abs, range(100)))
stop = True
b.join(10)
pool.shutdown()
resumed = [advanced, bool(woke), w.is_alive(), b.is_alive(), pool_sum, threading.active_count()]
"""


def test_threads_run_in_parallel_on_several_cores(sandbox):
    """hashlib drops the GIL: two threads hashing take about half the time
    of one doing both (this machine has 2 cores). Best of three."""
    code = """
import hashlib, threading, time
data = b'x' * (48 << 20)
def h(): hashlib.sha256(data).digest()
best = 0
for _ in range(3):
    t = time.perf_counter(); h(); h(); serial = time.perf_counter() - t
    ths = [threading.Thread(target=h) for _ in range(2)]
    t = time.perf_counter(); [x.start() for x in ths]; [x.join() for x in ths]
    best = max(best, serial / (time.perf_counter() - t))
speedup = best
"""
    run_ok(sandbox, code)
    assert value(sandbox, "speedup") > 1.3


def test_everyday_thread_apis(sandbox):
    code = """
import threading, queue, sqlite3, os, asyncio
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(4) as ex:
    squares = sum(ex.map(lambda x: x * x, range(1000)))
ids = set()
local = threading.local()
def record(i):
    local.i = i
    ids.add(threading.get_native_id())
    return local.i
ths = [threading.Thread(target=record, args=(i,)) for i in range(8)]
[t.start() for t in ths]; [t.join() for t in ths]
q = queue.Queue()
def produce():
    for i in range(100): q.put(i)
    q.put(None)
threading.Thread(target=produce).start()
got = []
while (item := q.get()) is not None:
    got.append(item)
db = sqlite3.connect(':memory:', check_same_thread=False)
db.execute('create table t(x)')
def insert(k):
    with lock:
        db.execute('insert into t values (?)', (k,))
lock = threading.Lock()
ths = [threading.Thread(target=insert, args=(k,)) for k in range(10)]
[t.start() for t in ths]; [t.join() for t in ths]
cond = threading.Condition()
with cond:
    timed_out = not cond.wait(0.05)
async def main():
    return await asyncio.to_thread(sum, range(10))
apis = [squares, len(ids), os.getpid() in ids, got == list(range(100)),
        db.execute('select count(*), sum(x) from t').fetchone(), timed_out, asyncio.run(main()),
        threading.active_count()]
"""
    run_ok(sandbox, code)
    squares, n_ids, pid_reused, queue_ok, db_row, timed_out, to_thread, active = value(
        sandbox, "apis"
    )
    assert squares == sum(x * x for x in range(1000))
    assert n_ids == 8 and not pid_reused  # a tid of its own each, none the pid
    assert queue_ok and db_row == (10, 45) and timed_out and to_thread == 45
    assert active == 1  # every thread has exited


def test_a_process_signal_wakes_the_main_thread_from_its_wait(sandbox):
    """kill() from a worker goes to the main thread (blocked on a lock),
    whose wait ends so the handler runs at once, as CPython expects."""
    code = """
import os, signal, threading, time
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(threading.get_native_id()))
ev = threading.Event()
alive_checked = []
def worker():
    signal.pthread_kill(threading.main_thread().ident, 0)
    alive_checked.append(True)
    os.kill(os.getpid(), signal.SIGUSR1)
    for _ in range(300):
        if got:
            break
        time.sleep(0.01)
    ev.set()
t0 = time.monotonic()
threading.Thread(target=worker).start()
ev.wait()
signals = [got == [threading.get_native_id()], alive_checked, time.monotonic() - t0 < 2]
"""
    run_ok(sandbox, code)
    assert value(sandbox, "signals") == [True, [True], True]


def test_interrupt_reaches_the_main_thread_while_it_joins(sandbox):
    threading.Timer(0.5, sandbox.interrupt).start()
    t0 = time.monotonic()
    r = sandbox.run(
        "import threading, time\n"
        "t = threading.Thread(target=time.sleep, args=(3,))\nt.start()\nt.join()"
    )
    assert r.error is not None and r.error.ename == "KeyboardInterrupt"
    assert time.monotonic() - t0 < 2.5  # not after the thread's 3 s
    # CPython marks a thread whose join() was interrupted as stopped
    # (bpo-45274) while it still sleeps: let it really end before the next
    # test counts threads.
    run_ok(sandbox, "import threading\nwhile threading._active.get(t.ident):\n    time.sleep(0.05)")


def test_a_descriptor_closed_under_a_blocked_read_stays_open_for_it(sandbox):
    """As on Linux, a read in progress holds its open file: another thread
    closing the descriptor leaves the pipe's read end open for that read,
    so a write after the close is not EPIPE and the read gets its bytes."""
    run_ok(
        sandbox,
        "import os, threading, time\n"
        "got = []\n"
        "for _ in range(5):\n"
        "    r, w = os.pipe()\n"
        "    t = threading.Thread(target=lambda: got.append(os.read(r, 16)))\n"
        "    t.start()\n"
        "    time.sleep(0.1)  # blocked in read\n"
        "    os.close(r)\n"
        "    junk = [os.pipe() for _ in range(4)]  # reuses what a freed file held\n"
        "    os.write(w, b'late')\n"
        "    t.join(10)\n"
        "    got.append(t.is_alive())\n"
        "    os.close(w)\n"
        "    for a, b in junk:\n"
        "        os.close(a); os.close(b)",
    )
    assert value(sandbox, "got") == [b"late", False] * 5


def test_thread_limit_gives_eagain_and_leaves_the_sandbox_working(sandbox):
    code = """
import threading
threading.stack_size(256 * 1024)
started, error, ths, ev = 0, None, [], threading.Event()
try:
    for _ in range(1000):
        t = threading.Thread(target=ev.wait); t.start(); ths.append(t); started += 1
except RuntimeError as e:
    error = str(e)
ev.set(); [t.join() for t in ths]
threading.stack_size(0)
after = []
t = threading.Thread(target=after.append, args=(1,)); t.start(); t.join()
limit = [started, error, after]
"""
    run_ok(sandbox, code)
    started, error, after = value(sandbox, "limit")
    assert started == 127 and "can't start new thread" in error and after == [1]


def test_threads_come_and_go_beyond_the_limit(sandbox):
    """Exited threads give their vCPU to new ones."""
    run_ok(
        sandbox,
        "import threading\nfor i in range(400):\n"
        "    t = threading.Thread(target=int); t.start(); t.join()",
    )
    assert value(sandbox, "threading.active_count()") == 1


def test_exit_from_a_thread_ends_the_sandbox_with_its_status():
    sb = Sandbox.spawn(memory_mib=256)
    try:
        with pytest.raises(SandboxCrashed) as crashed:
            sb.run(
                "import os, threading, time\n"
                "threading.Thread(target=os._exit, args=(7,)).start()\ntime.sleep(5)"
            )
        assert crashed.value.status == 7 and not sb.alive
    finally:
        sb.close()


def test_a_crashing_thread_kills_only_its_sandbox(sandbox):
    victim = Sandbox.spawn(memory_mib=256)
    try:
        with pytest.raises(SandboxCrashed, match="SIGSEGV"):
            victim.run(
                "import ctypes, threading\n"
                "t = threading.Thread(target=ctypes.string_at, args=(0,))\nt.start(); t.join()"
            )
    finally:
        victim.close()
    assert value(sandbox, "6 * 7") == 42


@pytest.mark.parametrize("mode", ["full", "diff", "live"])
def test_branching_a_threaded_sandbox_resumes_every_thread(mode):
    src = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(src, THREADED_STATE)
        snap = src.snapshot(mode=mode, wait=True)
        (child,) = snap.spawn(1)
        try:
            run_ok(child, RESUMED)
            assert value(child, "resumed") == [True, True, False, False, 4950, 1]
        finally:
            child.close()
        run_ok(src, RESUMED)  # the source carries on as well
        assert value(src, "resumed") == [True, True, False, False, 4950, 1]
    finally:
        src.close()


def test_a_saved_threaded_snapshot_resumes_its_threads(tmp_path):
    src = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(src, THREADED_STATE)
        src.snapshot(mode="full", wait=True).save(tmp_path / "snap")
    finally:
        src.close()
    (child,) = Snapshot.load(tmp_path / "snap").spawn(1)
    try:
        run_ok(child, RESUMED)
        assert value(child, "resumed") == [True, True, False, False, 4950, 1]
    finally:
        child.close()


def test_native_thread_pools_see_every_core(sandbox):
    """OpenBLAS starts its pool with one thread per host core (no
    *_NUM_THREADS=1 in the guest), and threadpoolctl finds and resizes it
    through /proc/self/maps."""
    code = """
import os, numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
a = np.random.default_rng(0).random((300, 300))
before = [i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas']
with threadpool_limits(1):
    inside = [i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas']
    ok = bool(np.allclose(a @ a, (a @ a)))
maps = open('/proc/self/maps').read()
status = open('/proc/self/status').read()
pools = [before, inside, ok, 'libpython' in maps or 'python3' in maps, '[stack]' in maps,
         'Threads:' in status]
"""
    run_ok(sandbox, code)
    before, inside, ok, named, stack, threads_line = value(sandbox, "pools")
    assert before == [os.cpu_count()] and inside == [1] and ok
    assert named and stack and threads_line


def test_affinity_is_kept_per_thread_and_inherited(sandbox):
    run_ok(
        sandbox,
        "import os, threading\n"
        "every = os.sched_getaffinity(0)\n"
        "one = {min(every)}\n"
        "seen = {}\n"
        "def child():\n"
        "    seen['inherited'] = os.sched_getaffinity(0)\n"
        "    os.sched_setaffinity(0, every)\n"
        "    seen['own'] = os.sched_getaffinity(0)\n"
        "os.sched_setaffinity(0, one)\n"
        "t = threading.Thread(target=child)\n"
        "t.start()\n"
        "t.join()\n"
        "mine = os.sched_getaffinity(0)\n"
        "os.sched_setaffinity(0, every)\n"
        "try:\n"
        "    os.sched_setaffinity(0, {4000})  # no such core\n"
        "except OSError as e:\n"
        "    bad = e.errno",
    )
    got = "[seen['inherited'] == one, seen['own'] == every, mine == one, bad, len(every)]"
    inherited, own, mine, bad, cores = value(sandbox, got)
    assert [inherited, own, mine, bad] == [True, True, True, errno.EINVAL]
    assert cores == os.cpu_count()


def test_cpu_clocks_of_threads_and_setting_the_time(sandbox):
    run_ok(
        sandbox,
        "import threading, time\n"
        "def spin(out):\n"
        "    clk = time.pthread_getcpuclockid(threading.get_ident())\n"
        "    t0 = time.clock_gettime(clk)\n"
        "    x = 0\n"
        "    for i in range(2_000_000):\n"
        "        x += i\n"
        "    out.append(time.clock_gettime(clk) - t0)\n"
        "spun = []\n"
        "t = threading.Thread(target=spin, args=(spun,))\n"
        "t.start()\n"
        "t.join()\n"
        "own = time.clock_gettime(time.pthread_getcpuclockid(threading.get_ident()))\n"
        "def errno_of(fn):\n"
        "    try:\n"
        "        fn()\n"
        "    except OSError as e:\n"
        "        return e.errno\n"
        "refused = [errno_of(lambda: time.clock_settime(time.CLOCK_REALTIME, time.time())),\n"
        "           errno_of(lambda: time.clock_settime(time.CLOCK_MONOTONIC, 1.0)),\n"
        "           errno_of(lambda: time.clock_gettime(~99999 << 3 | 6))]  # no such thread",
    )
    spun, own = value(sandbox, "[spun[0], own]")
    assert 0.01 < spun < 30 and own > 0
    assert value(sandbox, "refused") == [errno.EPERM, errno.EINVAL, errno.EINVAL]


def test_scheduling_calls_take_a_thread_id(sandbox):
    """sched_getscheduler/getparam/setscheduler/setparam name a thread by
    its id, as on Linux: glibc's pthread_getschedparam passes the thread's,
    and libzmq's I/O threads abort the process when it fails (a zmq
    context, so pyzmq, jupyter_client and a kernel run in a sandbox)."""
    run_ok(
        sandbox,
        "import os, threading, subprocess, sys\n"
        "sched = {}\n"
        "def probe():\n"
        "    tid = threading.get_native_id()\n"
        "    sched['ids'] = tid != os.getpid()\n"
        "    sched['policy'] = os.sched_getscheduler(tid)\n"
        "    sched['priority'] = os.sched_getparam(tid).sched_priority\n"
        "    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))\n"
        "    os.sched_setparam(tid, os.sched_param(0))\n"
        "    try:\n        os.sched_getparam(2 ** 22)\n"
        "    except ProcessLookupError:\n        sched['unknown'] = 'ESRCH'\n"
        "t = threading.Thread(target=probe)\nt.start()\nt.join()\n"
        "zmq_child = subprocess.run([sys.executable, '-c',\n"
        "    'import zmq; c = zmq.Context(); s = c.socket(zmq.PAIR); '\n"
        '    \'s.bind("tcp://127.0.0.1:*"); s.close(); c.term(); print("zmq ok")\'],\n'
        "    capture_output=True, text=True)\n"
        "zmq_seen = [zmq_child.returncode, zmq_child.stdout, zmq_child.stderr[-300:]]",
    )
    assert value(sandbox, "sched") == {"ids": True, "policy": 0, "priority": 0, "unknown": "ESRCH"}
    assert value(sandbox, "zmq_seen") == [0, "zmq ok\n", ""]
