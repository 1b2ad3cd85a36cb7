"""System calls served without a VM exit (docs/design.md, "System calls
without an exit"): a host thread polls the guest's call boxes while it
makes calls. What must hold: the calls are served that way, their results
are those of the exit path, a branch or a signal caught in the middle of
a call neither loses nor repeats it, threads each get their own answers,
and a call that would wait is made the usual way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, Snapshot

pytestmark = pytest.mark.kvm

# A program whose threads make system calls without pause while an
# interval timer's handler makes one too (a C handler runs at once, inside
# whatever call it lands in). Every 50 ms it prints the calls made, the
# handler's runs and the wrong answers seen.
TORTURE = r"""
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pid_t parent;
static _Atomic long calls, handled, bad;

static void on_alarm(int s) {
    if (syscall(SYS_getppid) != parent)
        bad++;
    handled++;
}

static void one_round(void) {
    struct stat st;
    if (syscall(SYS_getppid) != parent)
        bad++;
    if (stat("/tmp", &st) != 0 || !S_ISDIR(st.st_mode))
        bad++;
    calls += 2;
}

static void *work(void *arg) {
    for (;;)
        one_round();
    return NULL;
}

int main(int argc, char **argv) {
    parent = getppid();
    double secs = atof(argv[1]);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 300}, {0, 300}};
    setitimer(ITIMER_REAL, &it, NULL);
    pthread_t t;
    for (int i = 0; i < 2; i++)
        pthread_create(&t, NULL, work, NULL);
    struct timespec start, now, last;
    clock_gettime(CLOCK_MONOTONIC, &start);
    last = start;
    for (;;) {
        one_round();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last.tv_sec) * 1e3 + (now.tv_nsec - last.tv_nsec) / 1e6 >= 50) {
            printf("%ld %ld %ld\n", (long)calls, (long)handled, (long)bad);
            fflush(stdout);
            last = now;
        }
        if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= secs)
            return 0;
    }
}
"""


def _build(sb: Sandbox, name: str, source: str) -> None:
    """Compiles source into /sandbox/<name> with the sandbox's gcc."""
    run_ok(
        sb,
        "import subprocess\n"
        f"open('/sandbox/{name}.c', 'w').write({source!r})\n"
        f"cc = subprocess.run(['gcc', '-O1', '-pthread', '-o', '/sandbox/{name}',"
        f" '/sandbox/{name}.c'], capture_output=True, text=True)\n",
    )
    assert value(sb, "[cc.returncode, cc.stderr]") == [0, ""]


BURST = (
    "import os, zlib\n"
    "os.makedirs('/tmp/fc', exist_ok=True)\n"
    "for i in range(20):\n"
    "    with open(f'/tmp/fc/{i}', 'wb') as f:\n"
    "        f.write(bytes([i]) * (1000 + i))\n"
    "def burst(rounds):\n"
    "    sums = []\n"
    "    for r in range(rounds):\n"
    "        i = r % 20\n"
    "        st = os.stat(f'/tmp/fc/{i}')\n"
    "        fd = os.open(f'/tmp/fc/{i}', os.O_RDONLY)\n"
    "        data = os.read(fd, 4096)\n"
    "        os.lseek(fd, 0, os.SEEK_SET)\n"
    "        again = os.read(fd, 10)\n"
    "        os.close(fd)\n"
    "        assert st.st_size == len(data) == 1000 + i, (st.st_size, len(data), i)\n"
    "        assert data == bytes([i]) * (1000 + i) and again == data[:10]\n"
    "        sums.append(zlib.crc32(data))\n"
    "    return sums\n"
)


def _stats_delta(sb: Sandbox, code: str) -> tuple[int, int]:
    before = sb.stats()
    run_ok(sb, code)
    after = sb.stats()
    return (
        after["syscalls"] - before["syscalls"],
        after["fast_syscalls"] - before["fast_syscalls"],
    )


def test_calls_are_served_without_exits_and_answer_as_the_exit_path(sandbox):
    run_ok(sandbox, BURST)
    # The first call of a burst wakes the poller by exit; most of the rest
    # go fast on a quiet machine (> 90 % here), fewer when the poller's core
    # is busy (a caller that waits too long makes its call by exit, and a
    # poller that keeps being descheduled backs off for a while).
    for _ in range(3):
        calls, fast = _stats_delta(sandbox, "expected = burst(2000)")
        assert calls >= 10_000
        if fast >= 1000:
            break
    assert fast >= 1000, (calls, fast)
    assert value(sandbox, "expected == burst(200)[:200] + expected[200:]") is True
    # Identity and metadata calls agree with what the exit path gave before.
    assert value(sandbox, "[os.getpid(), os.getppid(), os.getuid()] * 3") == (
        value(sandbox, "[os.getpid(), os.getppid(), os.getuid()]") * 3
    )


def test_the_path_can_be_turned_off():
    code = (
        "from forkd_jupyter.vmm import Sandbox\n"
        "with Sandbox.spawn(memory_mib=512) as sb:\n"
        "    sb.run('import os\\nfor i in range(3000): os.stat(\"/tmp\")')\n"
        "    s = sb.stats()\n"
        "    print(s['syscalls'], s['fast_syscalls'])\n"
    )
    env = dict(os.environ, FORKD_JUPYTER_FAST_CALLS="0")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    calls, fast = map(int, out.stdout.split())
    assert calls > 3000 and fast == 0


def test_threads_each_get_their_own_answers(sandbox):
    run_ok(sandbox, BURST)
    run_ok(
        sandbox,
        "import ctypes, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "ref = burst(40)\n"
        "res, errs = {}, []\n"
        "def work(k):\n"
        "    try:\n"
        "        mine = burst(400)\n"
        "        res[k] = (threading.get_native_id(), libc.syscall(186), mine)\n"
        "    except Exception as e:\n"
        "        errs.append(repr(e))\n"
        "ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]\n"
        "[t.start() for t in ts]\n"
        "[t.join(60) for t in ts]\n"
        "tids = sorted(v[1] for v in res.values())\n",
    )
    assert value(sandbox, "errs") == []
    assert value(sandbox, "len(res)") == 4
    assert value(sandbox, "all(v[0] == v[1] for v in res.values())") is True
    assert len(set(value(sandbox, "tids"))) == 4
    assert value(sandbox, "all(v[2][:40] == ref for v in res.values())") is True


def test_signals_during_fast_calls_are_delivered_and_lose_no_call(sandbox):
    run_ok(sandbox, BURST)
    run_ok(
        sandbox,
        "import signal\n"
        "hits = []\n"
        "def on_alarm(signo, frame):\n"
        "    hits.append(os.stat('/tmp/fc/3').st_size)  # a call inside the handler\n"
        "signal.signal(signal.SIGALRM, on_alarm)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)\n"
        "ref = burst(20)\n"
        "got = burst(3000)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0, 0)\n"
        "ok = got == (ref * 150)\n",
    )
    assert value(sandbox, "ok") is True
    hits = value(sandbox, "hits")
    assert len(hits) >= 5 and set(hits) == {1003}


def test_branches_taken_during_a_burst_see_every_call_once():
    # A guest thread makes calls without pause; branches are taken while it
    # runs, so pauses land inside calls in flight. Every child resumes the
    # burst where its source was and finishes it with the right answers.
    with Sandbox.spawn(memory_mib=1024) as src:
        run_ok(src, BURST)
        run_ok(
            src,
            "import threading\n"
            "state = {'n': 0, 'bad': 0}\n"
            "ref = burst(20)\n"
            "def spin():\n"
            "    while state['n'] < 10**9:\n"
            "        if burst(20) != ref:\n"
            "            state['bad'] += 1\n"
            "        state['n'] += 1\n"
            "threading.Thread(target=spin, daemon=True).start()\n",
        )
        children = []
        try:
            for mode in ("live", "diff", "full", "live", "diff"):
                snap = src.snapshot(mode=mode)
                assert isinstance(snap, Snapshot) and snap.status == "ready"
                children.extend(snap.spawn())
            for child in children:
                run_ok(
                    child,
                    "import time\n"
                    "n0 = state['n']\n"
                    "t = time.monotonic()\n"
                    "while state['n'] < n0 + 20 and time.monotonic() - t < 60:\n"
                    "    time.sleep(0.01)\n",
                )
                assert value(child, "state['n'] >= n0 + 20") is True
                assert value(child, "state['bad']") == 0
                assert value(child, "burst(40) == ref * 2") is True
            assert value(src, "state['bad']") == 0
        finally:
            for child in children:
                child.close()


def test_a_call_that_must_wait_is_made_by_exit(sandbox):
    # With the poller awake (a burst just ran), a blocking FIFO open is
    # refused by the poller and waits the usual way for its partner.
    run_ok(sandbox, BURST)
    run_ok(
        sandbox,
        "import threading, time\n"
        "os.mkfifo('/tmp/fc/pipe')\n"
        "heard = []\n"
        "def reader():\n"
        "    burst(50)\n"
        "    with open('/tmp/fc/pipe') as f:\n"
        "        heard.append(f.read())\n"
        "t = threading.Thread(target=reader)\n"
        "t.start()\n"
        "burst(200)\n"
        "time.sleep(0.05)\n"
        "with open('/tmp/fc/pipe', 'w') as f:\n"
        "    f.write('met')\n"
        "t.join(20)\n",
    )
    assert value(sandbox, "heard") == ["met"]


def _progress_ok(lines: list[str]) -> tuple[int, int, int]:
    rows = [tuple(map(int, line.split())) for line in lines if line.strip()]
    assert rows, "no progress printed"
    assert all(b[0] > a[0] for a, b in zip(rows, rows[1:], strict=False)), rows  # never stuck
    return rows[-1]


def test_a_signal_handler_that_makes_a_call_inside_a_call(sandbox):
    # The timer's handler interrupts calls in flight, each time in a new
    # place; a call caught in the middle must be neither lost nor mixed
    # with the handler's own (the program would stop, or see wrong answers).
    _build(sandbox, "torture", TORTURE)
    run_ok(
        sandbox,
        "import subprocess\n"
        "out = subprocess.run(['/sandbox/torture', '3'], capture_output=True, text=True,"
        " timeout=120)\n",
    )
    assert value(sandbox, "out.returncode") == 0
    calls, handled, bad = _progress_ok(value(sandbox, "out.stdout").splitlines())
    assert bad == 0
    assert handled >= 100 and calls >= 10_000, (calls, handled)
    # It printed all along (every 50 ms while it ran; fewer on a busy machine).
    assert value(sandbox, "len(out.stdout.splitlines())") >= 5


def test_children_of_pauses_inside_calls_go_on(sandbox):
    # Pauses land inside calls in flight (three threads calling without
    # pause); each child resumes its copy of the program, which must go on
    # making calls and answering them right.
    _build(sandbox, "torture", TORTURE)
    run_ok(
        sandbox,
        "import os, select, subprocess\n"
        "prog = subprocess.Popen(['/sandbox/torture', '600'], stdout=subprocess.PIPE,"
        " text=True, bufsize=1)\n"
        "def progress(n, limit=30.0):\n"
        "    lines, buf = [], ''\n"
        "    import time\n"
        "    end = time.monotonic() + limit\n"
        "    while len(lines) < n and time.monotonic() < end:\n"
        "        if select.select([prog.stdout], [], [], 1.0)[0]:\n"
        "            lines.append(prog.stdout.readline())\n"
        "    return lines\n"
        "first = progress(3)\n",
    )
    _progress_ok(value(sandbox, "first"))
    children = []
    try:
        for i in range(16):
            snap = sandbox.snapshot(mode="live" if i % 4 == 3 else "diff")
            (child,) = snap.spawn()
            children.append(child)
            calls, _, bad = _progress_ok(value(child, "progress(4)"))
            assert bad == 0 and calls > 0
            child.close()
        calls, _, bad = _progress_ok(value(sandbox, "progress(3)"))
        assert bad == 0
    finally:
        for child in children:
            child.close()
        run_ok(sandbox, "prog.kill(); prog.wait()")


# A system-call site of the kind glibc is made of (`mov eax, NR; syscall`),
# and a second way into the same SYSCALL instruction with another number.
SITES = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

long getpid_site(void);
long enter_at_syscall(long nr);
long getpid_site2(void);
long getpid_site3(void);
asm(".text\n"
    ".globl getpid_site\n"
    "getpid_site:\n"
    "  mov $39, %eax\n"
    ".globl getpid_site_syscall\n"
    "getpid_site_syscall:\n"
    "  syscall\n"
    "  ret\n"
    ".globl enter_at_syscall\n"
    "enter_at_syscall:\n"
    "  mov %rdi, %rax\n"
    "  jmp getpid_site_syscall\n"
    ".globl getpid_site2\n"
    "getpid_site2:\n"
    "  mov $39, %eax\n"
    "  syscall\n"
    "  ret\n"
    ".globl getpid_site3\n"
    "getpid_site3:\n"
    "  mov $39, %eax\n"
    "  syscall\n"
    "  ret\n");

static volatile int spin = 1;

static void *busy(void *arg) {
    while (spin)
        ;
    return NULL;
}

static void *idle(void *arg) {
    sleep(30);
    return NULL;
}

int main(int argc, char **argv) {
    long pid = getpid(), ppid = getppid(), bad = 0;
    for (int i = 0; i < 2000; i++) {
        if (getpid_site() != pid)
            bad++;
        if (enter_at_syscall(SYS_getppid) != ppid)
            bad++;
    }
    unsigned char first = *(volatile unsigned char *)getpid_site;
    /* While another thread runs guest code, no site is rewritten (its vCPU
     * could be running the bytes)... */
    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
    for (int i = 0; i < 200; i++)
        if (getpid_site2() != pid)
            bad++;
    unsigned char second = *(volatile unsigned char *)getpid_site2;
    spin = 0;
    pthread_join(t, NULL);
    /* ...while the others are blocked in a call, sites are. */
    pthread_create(&t, NULL, idle, NULL);
    usleep(100000);
    for (int i = 0; i < 200; i++)
        if (getpid_site3() != pid)
            bad++;
    unsigned char third = *(volatile unsigned char *)getpid_site3;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int tramps = 0;
    while (maps && fgets(line, sizeof(line), maps))
        tramps += strstr(line, "[forkd-calls]") != NULL;
    printf("%ld %02x %02x %02x %d\n", bad, first, second, third, tramps);
    return 0;
}
"""


def test_call_sites_skip_the_syscall_instruction(sandbox):
    # The first call from a `mov eax, NR; syscall` site rewrites it to jump
    # to a trampoline (a mapping of its own); the site's SYSCALL instruction
    # stays, so code that jumps straight to it still makes its own call.
    _build(sandbox, "sites", SITES)
    run_ok(
        sandbox,
        "out = subprocess.run(['/sandbox/sites'], capture_output=True, text=True, timeout=60)",
    )
    assert value(sandbox, "out.returncode") == 0, value(sandbox, "out.stderr")
    bad, first, second, third, tramps = value(sandbox, "out.stdout").split()
    assert bad == "0"
    assert first == "e9"  # jmp rel32: rewritten
    assert second == "b8"  # mov eax: left alone while another thread ran
    assert third == "e9"  # rewritten while the other thread slept in a call
    assert int(tramps) == 1
