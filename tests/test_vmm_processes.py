"""Processes in the sandbox: fork (a VM of its own, memory copy-on-write),
vfork and exec (subprocess, a shell, the system's programs), pipes between
processes, wait and exit statuses, signals to processes and groups, the
process limit, the synthesized /etc, and what a sandbox with processes
does when it is branched, interrupted or closed."""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import subprocess
import threading
import time

import pytest
from guest_helpers import ERRNO_OF, run_ok, value

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm


def test_fork_copies_memory_and_reports_the_exit_status(sandbox):
    run_ok(
        sandbox,
        "import os\n"
        "data = bytearray(b'p' * (8 << 20))\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.close(r)\n"
        "    seen = bytes(data[:1]) + bytes(data[-1:])\n"
        "    data[:] = b'c' * len(data)  # the child's own copy\n"
        "    os.write(w, seen + str(os.getppid()).encode())\n"
        "    os._exit(7)\n"
        "os.close(w)\n"
        "got = b''\n"
        "while chunk := os.read(r, 100):\n"  # EOF once the child is gone
        "    got += chunk\n"
        "wpid, status = os.waitpid(pid, 0)\n"
        "forked = [pid != os.getpid(), wpid == pid, os.waitstatus_to_exitcode(status),\n"
        "          got[:2], int(got[2:]) == os.getpid(), bytes(data[:1]), bytes(data[-1:])]",
    )
    assert value(sandbox, "forked") == [True, True, 7, b"pp", True, b"p", b"p"]


def test_parent_writes_after_fork_stay_out_of_the_child(sandbox):
    run_ok(
        sandbox,
        "import os, time\n"
        "box = [1]\n"
        "r, w = os.pipe()\n"
        "go_r, go_w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.read(go_r, 1)  # after the parent changed box\n"
        "    os.write(w, str(box[0]).encode())\n"
        "    os._exit(0)\n"
        "box[0] = 2\n"
        "os.write(go_w, b'x')\n"
        "child_saw = int(os.read(r, 10))\n"
        "os.waitpid(pid, 0)",
    )
    assert value(sandbox, "[child_saw, box[0]]") == [1, 2]


def test_subprocess_runs_the_interpreter_and_the_shell(sandbox):
    run_ok(
        sandbox,
        "import subprocess, sys\n"
        "prog = 'import os, sys; print(os.getppid(), sys.stdin.read().upper())'\n"
        "py = subprocess.run([sys.executable, '-c', prog],\n"
        "                    input='abc', capture_output=True, text=True)\n"
        "sh = subprocess.run('echo $((6*7)) | tr 4 X; whoami; exit 3', shell=True,\n"
        "                    capture_output=True, text=True)\n"
        "code = os.system('exit 5')\n"
        "import os\n"
        "ran = [py.returncode, py.stdout.split()[1], int(py.stdout.split()[0]) == os.getpid(),\n"
        "       sh.returncode, sh.stdout, os.waitstatus_to_exitcode(os.system('exit 5'))]",
    )
    assert value(sandbox, "ran") == [0, "ABC", True, 3, "X2\nsandbox\n", 5]


def test_programs_reached_through_the_alternatives_system_run(sandbox):
    """Debian's awk, which, pager... are links through /etc/alternatives
    (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk): a shell
    script's awk is found and runs."""
    run_ok(
        sandbox,
        "import subprocess\n"
        "alt = subprocess.run(\"echo 6 7 | awk '{print $1 * $2}'; which sh\", shell=True,\n"
        "                     capture_output=True, text=True)",
    )
    assert value(sandbox, "[alt.returncode, alt.stdout, alt.stderr]") == [
        0,
        "42\n/usr/bin/sh\n",
        "",
    ]


def test_programs_see_the_sandbox_not_the_host(sandbox):
    run_ok(
        sandbox,
        "import subprocess\n"
        "def sh(cmd):\n"
        "    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)\n"
        "    return [p.returncode, p.stdout.strip()]\n"
        "views = [sh('id -un; id -u'), sh('cat /etc/shadow')[0] != 0,\n"
        "         sh('ls /work /root/.ssh')[0] != 0,\n"
        "         sh('grep -c localhost /etc/hosts'), sh('echo hi > /tmp/f && cat /tmp/f'),\n"
        "         sh('touch /usr/bin/x')[0] != 0]",
    )
    assert value(sandbox, "views") == [
        [0, "sandbox\n1000"],
        True,
        True,
        [0, "2"],
        [0, "hi"],
        True,
    ]
    # What the shell wrote in /tmp is the sandbox's own file.
    assert value(sandbox, "open('/tmp/f').read()") == "hi\n"


HAS_FONTCONFIG = os.path.isdir("/etc/fonts") and shutil.which("fc-list") is not None


@pytest.mark.skipif(not HAS_FONTCONFIG, reason="the host has no fontconfig")
def test_fonts_and_the_distribution_are_the_hosts(sandbox):
    """fontconfig's configuration and the fonts are read-only roots: fc-list
    lists the host's fonts (matplotlib's font search runs it) and says
    nothing on stderr; platform.freedesktop_os_release reads the
    distribution's os-release."""
    run_ok(
        sandbox,
        "import platform, subprocess\n"
        "fc = subprocess.run(['fc-list', '--format', '%{file}\\n'],\n"
        "                    capture_output=True, text=True)\n"
        "release = platform.freedesktop_os_release()['ID']",
    )
    files, err = value(sandbox, "[sorted(fc.stdout.split()), fc.stderr]")
    host = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True)
    assert err == "" and files and files == sorted(host.stdout.split())
    assert value(sandbox, "release") == platform.freedesktop_os_release()["ID"]


def test_public_data_of_the_host(sandbox):
    """The CA certificates, OpenSSL's configuration, the MIME table and
    libmagic's database are the host's, read-only; the private keys' directory is
    not in the view, not even through /usr/lib/ssl's link to it."""
    probe = (
        "import ssl, mimetypes, os, subprocess, json\n"
        "ctx = ssl.create_default_context()\n"
        "ctx.load_verify_locations(ssl.get_default_verify_paths().cafile)\n"
        "mimetypes.init()\n"
        "seen = json.dumps([ctx.cert_store_stats()['x509_ca'],\n"
        "    mimetypes.guess_type('a.webm')[0], sorted(mimetypes.types_map)[:50],\n"
        "    subprocess.run(['file', '-b', '/bin/sh'], capture_output=True,\n"
        "                   text=True).stdout.split(',')[0],\n"
        "    os.path.exists('/etc/ssl/private'), os.path.exists('/usr/lib/ssl/private'),\n"
        "    os.path.islink('/usr/lib/ssl/private')])"
    )
    run_ok(sandbox, probe)
    guest = json.loads(value(sandbox, "seen"))
    host = {}
    exec(probe, host)
    host = json.loads(host["seen"])
    assert guest[0] > 0 and guest[:4] == host[:4], (guest, host)
    assert guest[4:] == [False, False, True]


def test_scripts_exec_errors_and_the_first_process(sandbox):
    run_ok(
        sandbox,
        "import os, subprocess, stat\n"
        "open('/tmp/s.sh', 'w').write('#!/bin/sh\\necho script \"$@\"\\n')\n"
        "os.chmod('/tmp/s.sh', 0o755)\n"
        "open('/tmp/plain', 'w').write('echo no')\n"
        "script = subprocess.run(['/tmp/s.sh', 'a', 'b'], capture_output=True, text=True).stdout\n"
        "def err(fn):\n"
        "    try:\n        fn()\n    except OSError as e:\n        return type(e).__name__\n"
        "errors = [err(lambda: subprocess.run(['/nonexistent/prog'])),\n"
        "          err(lambda: subprocess.run(['/tmp/plain'])),\n"
        "          err(lambda: os.execv('/bin/true', ['true']))]",
    )
    assert value(sandbox, "script") == "script a b\n"
    assert value(sandbox, "errors") == ["FileNotFoundError", "PermissionError", "PermissionError"]
    assert value(sandbox, "1 + 1") == 2  # the first process carries on


def test_an_open_file_is_executed_as_the_kernel_does(sandbox):
    """fexecve (execveat with AT_EMPTY_PATH), /proc/self/fd/N and /dev/fd/N
    run the open file; an open pipe is not a program (EACCES)."""
    run_ok(
        sandbox,
        "import os, sys, subprocess\n"
        "fd = os.open(sys.executable, os.O_RDONLY)\n"
        "child = subprocess.run([sys.executable, '-c', 'import os, sys; fd = int(sys.argv[1]);'\n"
        '    \'os.execve(fd, [sys.executable, "-c", "print(7 * 6)"], os.environ)\', str(fd)],\n'
        "    pass_fds=[fd], capture_output=True, text=True)\n"
        "os.close(fd)\n"
        "links = subprocess.run(\n"
        "    ['/bin/sh', '-c', 'exec 5</bin/echo; /proc/self/fd/5 a; /dev/fd/5 b'],\n"
        "    capture_output=True, text=True).stdout\n"
        "r, w = os.pipe()\n"
        "piped = subprocess.run([sys.executable, '-c', 'import os, sys\\n'\n"
        "    'try: os.execve(int(sys.argv[1]), [\"x\"], os.environ)\\n'\n"
        "    'except OSError as e: print(e.errno)', str(r)], pass_fds=[r],\n"
        "    capture_output=True, text=True).stdout",
    )
    assert value(sandbox, "[child.stdout, child.returncode]") == ["42\n", 0]
    assert value(sandbox, "links") == "a\nb\n"
    assert value(sandbox, "piped") == f"{errno.EACCES}\n"


def test_the_sandbox_user_is_unprivileged_as_on_linux(sandbox):
    """Ids, ownership and scheduling answer as they do for uid 1000 on
    Linux: its own ids are accepted, anything else is EPERM; a normal
    scheduling policy with priority 0 is accepted, real-time is EPERM."""
    run_ok(
        sandbox,
        ERRNO_OF + "import os, errno\n"
        "open('/tmp/owned', 'w').close()\n"
        "ids = [code(os.setresuid, 1000, 1000, -1), code(os.setresuid, 0, 0, 0),\n"
        "       code(os.setreuid, -1, 1000), code(os.setgroups, [1000]),\n"
        "       code(os.chown, '/tmp/owned', 1000, -1), code(os.chown, '/tmp/owned', 0, 0),\n"
        "       code(os.chown, '/tmp/owned', -1, 0)]\n"
        "sched = [os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,\n"
        "         os.sched_get_priority_max(os.SCHED_FIFO),\n"
        "         os.sched_get_priority_min(os.SCHED_RR),\n"
        "         os.sched_get_priority_max(os.SCHED_OTHER),\n"
        "         code(os.sched_setscheduler, 0, os.SCHED_OTHER, os.sched_param(0)),\n"
        "         code(os.sched_setscheduler, 0, os.SCHED_FIFO, os.sched_param(10)),\n"
        "         code(os.sched_getscheduler, -1), code(os.sched_getaffinity, -1),\n"
        "         code(os.pidfd_open, -1), 0 < os.sched_rr_get_interval(0) < 1]",
    )
    eperm, esrch, einval = errno.EPERM, errno.ESRCH, errno.EINVAL
    assert value(sandbox, "ids") == [0, eperm, 0, eperm, 0, eperm, eperm]
    assert value(sandbox, "sched") == [0, 0, 99, 1, 0, 0, eperm, einval, esrch, einval, True]


def test_permission_bits_of_the_layers_files_hold_for_the_sandbox_user(sandbox):
    """The writable layer's files are the sandbox user's, and their mode
    applies to it as to a user who is not root on Linux: a file without
    read (write) permission does not open for reading (writing, truncating),
    a directory without write permission takes no new or removed entries,
    one without read permission is not listed, one without search
    permission is no working directory; access() says the same."""
    run_ok(
        sandbox,
        ERRNO_OF + "import os\n"
        "os.makedirs('/tmp/perm', exist_ok=True)\n"
        "os.chdir('/tmp/perm')\n"
        "for name, mode in (('f0', 0), ('f4', 0o444), ('f2', 0o200)):\n"
        "    with open(name, 'w') as f:\n"
        "        f.write('x')\n"
        "    os.chmod(name, mode)\n"
        "os.mkdir('ro'); open('ro/in', 'w').close(); os.chmod('ro', 0o555)\n"
        "os.mkdir('hidden'); os.chmod('hidden', 0o300)\n"
        "os.mkdir('closed'); os.chmod('closed', 0o600)\n"
        "fd = os.open('new', os.O_CREAT | os.O_WRONLY, 0)\n"
        "created = [os.write(fd, b'ok'), code(open, 'new')]\n"
        "os.close(fd)\n"
        "refused = [code(open, 'f0'), code(open, 'f4', 'w'), code(open, 'f4', 'a'),\n"
        "           code(os.truncate, 'f4', 0), code(open, 'f2'),\n"
        "           code(open, 'ro/new', 'w'), code(os.unlink, 'ro/in'), code(os.mkdir, 'ro/d'),\n"
        "           code(os.rename, 'ro/in', 'moved'), code(os.symlink, 'x', 'ro/l'),\n"
        "           code(os.listdir, 'hidden'), code(os.chdir, 'closed')]\n"
        "allowed = [code(open, 'f4'), code(open, 'f2', 'w'), code(os.listdir, 'ro'),\n"
        "           code(os.chmod, 'f0', 0o644), code(open, 'f0'), code(os.unlink, 'f4')]\n"
        "asked = [os.access('f2', os.R_OK), os.access('f2', os.W_OK), os.access('ro', os.W_OK),\n"
        "         os.access('ro', os.X_OK)]\n"
        "for d in ('ro', 'hidden', 'closed'):\n"
        "    os.chmod(d, 0o755)\n"
        "os.chdir('/tmp')",
    )
    eacces = errno.EACCES
    assert value(sandbox, "created") == [2, eacces]
    assert value(sandbox, "refused") == [eacces] * 12
    assert value(sandbox, "allowed") == [0] * 6
    assert value(sandbox, "asked") == [False, True, False, True]


def test_a_path_through_a_directory_without_search_permission_is_refused(sandbox):
    """As for a user who is not root on Linux: nothing below a layer
    directory without its search bit resolves (EACCES), whatever the call,
    and all of it does again once the bit is back."""
    run_ok(
        sandbox,
        ERRNO_OF + "import os\n"
        "os.makedirs('/tmp/nox/sub', exist_ok=True)\n"
        "open('/tmp/nox/in', 'w').close()\n"
        "os.chmod('/tmp/nox', 0o600)\n"
        "below = [code(os.stat, '/tmp/nox/in'), code(open, '/tmp/nox/in'),\n"
        "         code(os.listdir, '/tmp/nox/sub'), code(os.chdir, '/tmp/nox/sub'),\n"
        "         code(open, '/tmp/nox/new', 'w'), code(os.stat, '/tmp/nox/sub/..'),\n"
        "         code(os.stat, '/tmp/nox/missing')]\n"
        "itself = [code(os.stat, '/tmp/nox'), code(os.listdir, '/tmp/nox')]\n"
        "os.chmod('/tmp/nox', 0o700)\n"
        "again = [code(os.stat, '/tmp/nox/in'), code(os.listdir, '/tmp/nox/sub')]",
    )
    assert value(sandbox, "below") == [errno.EACCES] * 7
    assert value(sandbox, "itself") == [0, 0]
    assert value(sandbox, "again") == [0, 0]


def test_capabilities_are_none_and_can_only_be_cleared(sandbox):
    """capget reports empty sets (sized by the header's version, an unknown
    version gets v3 back and EINVAL), capset accepts only the empty sets;
    prctl answers for the bounding and ambient sets as for an unprivileged
    user. `ip` (which clears its capabilities with libcap at start) runs."""
    run_ok(
        sandbox,
        "import ctypes, errno, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def call(fn, *args):\n"
        "    r = fn(*args)\n"
        "    return r if r >= 0 else -ctypes.get_errno()\n"
        "V1, V3 = 0x19980330, 0x20080522\n"
        "head = (ctypes.c_uint32 * 2)(V1, 0)\n"
        "data = (ctypes.c_uint32 * 8)(*([0xAAAAAAAA] * 8))\n"
        "got_v1 = [call(libc.capget, head, data), list(data)]\n"
        "head[0] = 0x1234\n"
        "probe = [call(libc.capget, head, None), hex(head[0])]\n"
        "head[0] = 0x1234\n"
        "bad = [call(libc.capget, head, data), hex(head[0])]\n"
        "zero = (ctypes.c_uint32 * 6)()\n"
        "head[0], head[1] = V3, 0\n"
        "cleared = call(libc.capset, head, zero)\n"
        "zero[0] = 1 << 12  # CAP_NET_ADMIN effective\n"
        "raised = call(libc.capset, head, zero)\n"
        "prctl = libc.prctl\n"
        "bounding = [call(prctl, 23, 12, 0, 0, 0), call(prctl, 23, 99, 0, 0, 0),\n"
        "            call(prctl, 24, 12, 0, 0, 0), call(prctl, 47, 1, 12, 0, 0),\n"
        "            call(prctl, 47, 2, 12, 0, 0), call(prctl, 47, 4, 0, 0, 0)]\n"
        "ip = subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True)",
    )
    assert value(sandbox, "got_v1") == [0, [0, 0, 0] + [0xAAAAAAAA] * 5]  # v1: one word each
    assert value(sandbox, "probe") == [0, "0x20080522"]
    assert value(sandbox, "bad") == [-errno.EINVAL, "0x20080522"]
    assert value(sandbox, "[cleared, raised]") == [0, -errno.EPERM]
    eperm, einval = -errno.EPERM, -errno.EINVAL
    assert value(sandbox, "bounding") == [1, einval, eperm, 0, eperm, 0]
    ip = value(sandbox, "[ip.returncode, ip.stdout.split(), ip.stderr]")
    assert ip[0] == 0 and ip[2] == "", ip
    assert "127.0.0.1/8" in ip[1] and "::1/128" in ip[1] and set(ip[1]) & {"eth0"} == set()


def test_signals_to_processes_and_groups(sandbox):
    run_ok(
        sandbox,
        "import os, signal, subprocess, time\n"
        "got = []\n"
        "signal.signal(signal.SIGCHLD, lambda s, f: got.append(s))\n"
        "p = subprocess.Popen(['sleep', '30'])\n"
        "time.sleep(0.1)\n"
        "running = os.waitpid(p.pid, os.WNOHANG)\n"
        "p.terminate()\n"
        "term = p.wait()\n"
        "g = subprocess.Popen(['sh', '-c', 'sleep 30 & sleep 30; echo never'],\n"
        "                     start_new_session=True)\n"
        "time.sleep(0.2)\n"
        "os.killpg(g.pid, signal.SIGKILL)\n"
        "killed = g.wait()\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n"
        "sigs = [list(running), term, killed, bool(got), os.getpgid(0) != g.pid]",
    )
    assert value(sandbox, "sigs") == [[0, 0], -15, -9, True, True]


def test_a_shell_waiting_for_its_jobs_takes_signals(sandbox):
    """dash's `wait` blocks every signal and waits in sigsuspend: a signal
    that arrived meanwhile is delivered with the suspend mask in force (its
    default action ends the shell, a trap runs), not left pending."""
    run_ok(
        sandbox,
        "import os, signal, subprocess, time\n"
        "plain = subprocess.Popen(['sh', '-c', 'sleep 30 & wait'], start_new_session=True)\n"
        "trapped = subprocess.Popen(['sh', '-c', 'trap \"exit 3\" TERM; sleep 30 & wait'],\n"
        "                           start_new_session=True)\n"
        "time.sleep(0.5)\n"
        "os.kill(plain.pid, signal.SIGTERM); os.kill(trapped.pid, signal.SIGTERM)\n"
        "ends = [plain.wait(timeout=10), trapped.wait(timeout=10)]\n"
        "os.killpg(plain.pid, signal.SIGKILL); os.killpg(trapped.pid, signal.SIGKILL)",
    )
    assert value(sandbox, "ends") == [-15, 3]


def test_threads_start_programs_at_the_same_time(sandbox):
    """Each thread's vfork waits for its own child: several threads of one
    process run subprocess at once (a thread pool of shell commands)."""
    run_ok(
        sandbox,
        "import subprocess\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def echo(i):\n"
        "    return subprocess.run(['echo', str(i)], capture_output=True).stdout\n"
        "with ThreadPoolExecutor(3) as pool:\n"
        "    echoed = list(pool.map(echo, range(150)))\n"
        "wrong = [(i, out) for i, out in enumerate(echoed) if out != b'%d\\n' % i]",
    )
    assert value(sandbox, "wrong") == []


CHILD_USAGE = """
import os, resource, time

def burn(seconds, mib):
    data = b"x" * (mib << 20)  # written: resident
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return len(data)

def child_that_waits_for_its_own():
    pid = os.fork()
    if pid == 0:
        burn(0.2, 96)
        os._exit(0)
    os.waitpid(pid, 0)
    burn(0.1, 8)
    os._exit(0)

before = resource.getrusage(resource.RUSAGE_CHILDREN)
self_before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
times_before = os.times().children_user + os.times().children_system
pid = os.fork()
if pid == 0:
    burn(0.3, 64)
    os._exit(0)
_, status, ru = os.wait4(pid, 0)
one = resource.getrusage(resource.RUSAGE_CHILDREN)
pid = os.fork()
if pid == 0:
    child_that_waits_for_its_own()
_, _, ru2 = os.wait4(pid, 0)
two = resource.getrusage(resource.RUSAGE_CHILDREN)
usage = {
    "wait4": [ru.ru_utime + ru.ru_stime, ru.ru_maxrss],
    "first": [one.ru_utime + one.ru_stime - before.ru_utime - before.ru_stime, one.ru_maxrss],
    "second_wait4": [ru2.ru_utime + ru2.ru_stime, ru2.ru_maxrss],
    "both": [two.ru_utime + two.ru_stime - before.ru_utime - before.ru_stime, two.ru_maxrss],
    "times": os.times().children_user + os.times().children_system - times_before,
    "self": resource.getrusage(resource.RUSAGE_SELF).ru_utime - self_before,
}
"""


def test_a_childs_usage_reaches_its_parent_when_waited_for(sandbox):
    """wait4's rusage is the child's use (CPU time, peak resident size,
    with its own children's it waited for); getrusage(RUSAGE_CHILDREN) and
    os.times() add up the children waited for, as on Linux (where the CPU
    time is split into user and system; the sandbox counts it all as user
    time, so the test adds the two)."""
    run_ok(sandbox, CHILD_USAGE)
    u = value(sandbox, "usage")
    cpu, maxrss = u["wait4"]
    assert 0.3 <= cpu < 3 and 64 << 10 <= maxrss < 256 << 10, u
    assert u["first"] == pytest.approx(u["wait4"], abs=0.02), u
    cpu2, maxrss2 = u["second_wait4"]
    assert 0.3 <= cpu2 < 3 and 96 << 10 <= maxrss2 < 288 << 10, u  # the grandchild's too
    assert u["both"][0] == pytest.approx(cpu + cpu2, abs=0.02), u
    assert u["both"][1] == max(maxrss, maxrss2), u
    assert u["times"] == pytest.approx(cpu + cpu2, abs=0.05), u  # 10 ms ticks
    assert u["self"] < 0.25, u  # the parent only waited


def test_a_child_has_closed_its_files_when_its_parent_sees_it_end(sandbox):
    """As on Linux, a process's files are closed before its parent can
    wait for it: right after waitpid, a lock the child held is free and a
    pipe it wrote reads to EOF without blocking."""
    run_ok(
        sandbox,
        "import fcntl, os\n"
        "busy = eagain = 0\n"
        "for _ in range(30):\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        fd = os.open('/tmp/child.lock', os.O_CREAT | os.O_RDWR)\n"
        "        fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "        os.write(w, b'x')\n"
        "        os._exit(0)\n"
        "    os.close(w)\n"
        "    os.waitpid(pid, 0)\n"
        "    fd = os.open('/tmp/child.lock', os.O_CREAT | os.O_RDWR)\n"
        "    try:\n"
        "        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "    except BlockingIOError:\n"
        "        busy += 1\n"
        "    os.close(fd)\n"
        "    os.set_blocking(r, False)\n"
        "    try:\n"
        "        assert os.read(r, 8) == b'x' and os.read(r, 8) == b''\n"
        "    except BlockingIOError:\n"
        "        eagain += 1\n"
        "    os.close(r)",
    )
    assert value(sandbox, "[busy, eagain]") == [0, 0]


def test_process_limit_is_eagain_and_the_sandbox_recovers():
    with Sandbox.spawn(memory_mib=512) as sb:
        run_ok(
            sb,
            "import os, signal\n"
            "kids, err = [], None\n"
            "try:\n"
            "    for _ in range(300):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            signal.pause()\n"
            "            os._exit(0)\n"
            "        kids.append(pid)\n"
            "except OSError as e:\n"
            "    err = type(e).__name__\n"
            "for k in kids:\n"
            "    os.kill(k, signal.SIGKILL)\n"
            "reaped = sorted(os.waitpid(k, 0)[0] for k in kids) == sorted(kids)\n"
            "bomb = [len(kids), err, reaped]",
        )
        assert value(sb, "bomb") == [127, "BlockingIOError", True]
        assert value(sb, "__import__('subprocess').run(['true']).returncode") == 0


def test_a_branch_carries_the_processes_that_run(sandbox):
    """(tests/test_vmm_branch_processes.py has the rest.)"""
    run_ok(sandbox, "import subprocess\nbg = subprocess.Popen(['sleep', '30'])\nafter = 41")
    (child,) = sandbox.snapshot(mode="diff").spawn()
    try:
        assert value(child, "[after + 1, bg.poll()]") == [42, None]
        run_ok(child, "bg.kill(); code = bg.wait()")
        assert value(child, "code") == -9
        assert (
            value(child, "__import__('subprocess').run(['echo', 'x'], capture_output=True).stdout")
            == b"x\n"
        )
    finally:
        child.close()
    assert value(sandbox, "bg.poll()") is None
    run_ok(sandbox, "bg.kill(); bg.wait()")


def test_interrupt_and_close_end_child_processes():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "import subprocess")
        t0 = time.monotonic()
        threading.Timer(0.5, sb.interrupt).start()
        res = sb.run("subprocess.run(['sleep', '30'])")
        assert res.error is not None and res.error.ename == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 10
        run_ok(sb, "bg = subprocess.Popen(['sleep', '60'])")
    finally:
        t1 = time.monotonic()
        sb.close()
    assert time.monotonic() - t1 < 10  # the sleeping child ended with the sandbox


def test_shell_escapes_and_cell_magics_run_in_the_sandbox(sandbox):
    out = sandbox.run("!echo bang $((6*7)); id -un")
    assert out.error is None and out.stdout == "bang 42\nsandbox\n"
    out = sandbox.run("%%bash\necho from bash; ls /etc | grep -c passwd\n")
    assert out.error is None and out.stdout == "from bash\n1\n"
    out = sandbox.run("lines = !printf 'a\\nb\\n'\nprint(lines)")
    assert out.stdout == "['a', 'b']\n"


def test_multiprocessing_pools_and_shared_memory(sandbox):
    run_ok(
        sandbox,
        "import multiprocessing as mp, mmap, os\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "with mp.get_context('fork').Pool(2) as pool:\n"
        "    pooled = pool.map(abs, range(-20, 0))\n"
        "with ProcessPoolExecutor(2) as ex:\n"
        "    executed = list(ex.map(pow, [2, 3, 4], [5, 5, 5]))\n"
        "counter = mp.Value('i', 0)\n"
        "def bump(v):\n"
        "    for _ in range(500):\n"
        "        with v.get_lock():\n"
        "            v.value += 1\n"
        "procs = [mp.Process(target=bump, args=(counter,)) for _ in range(3)]\n"
        "[p.start() for p in procs]; [p.join() for p in procs]\n"
        "anon = mmap.mmap(-1, 4096)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    anon[:5] = b'child'\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "shared = [pooled == list(range(20, 0, -1)), executed, counter.value, anon[:5],\n"
        "          [p.exitcode for p in procs]]",
    )
    assert value(sandbox, "shared") == [True, [32, 243, 1024], 1500, b"child", [0, 0, 0]]


def test_sleep_is_not_cut_short_by_other_processes(sandbox):
    # Pipes between processes wake waiting threads; a sleeping one sleeps on.
    run_ok(
        sandbox,
        "import subprocess, time, threading\n"
        "loop = 'for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.02; done'\n"
        "noisy = subprocess.Popen(['sh', '-c', loop],\n"
        "                         stdout=subprocess.PIPE)\n"
        "reader = threading.Thread(target=noisy.stdout.read); reader.start()\n"
        "t0 = time.monotonic(); time.sleep(0.3); slept = time.monotonic() - t0\n"
        "reader.join(); noisy.wait()",
    )
    assert value(sandbox, "slept") >= 0.3


def test_a_sandbox_that_shared_memory_with_ended_processes_branches(sandbox):
    run_ok(
        sandbox,
        "import multiprocessing as mp\n"
        "box = mp.Value('i', 5)\n"
        "lock = mp.Lock()\n"
        "def add(v):\n"
        "    with v.get_lock():\n"
        "        v.value += 10\n"
        "p = mp.get_context('fork').Process(target=add, args=(box,)); p.start(); p.join()",
    )
    snap = sandbox.snapshot(mode="live")
    (child,) = snap.spawn()
    try:
        # The child has its own copy, with what the ended process wrote.
        assert value(child, "box.value") == 15
        run_ok(child, "box.value = 1\nwith lock:\n    pass")
        assert value(sandbox, "box.value") == 15
        # Forking again shares memory again.
        run_ok(
            child,
            "p = mp.get_context('fork').Process(target=add, args=(box,)); p.start(); p.join()",
        )
        assert value(child, "box.value") == 11
    finally:
        child.close()
        snap.close()


def test_a_blocked_signal_waits_for_sigwait_in_a_single_threaded_process(sandbox):
    """A process-directed signal a process's only thread blocks stays
    pending (sigpending shows it) until sigwait takes it."""
    run_ok(
        sandbox,
        "import subprocess, sys\n"
        "prog = '''\n"
        "import os, signal\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM, signal.SIGUSR1])\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "signal.alarm(1)\n"
        "print(sorted(signal.sigpending()), signal.sigwait([signal.SIGALRM]),\n"
        "      signal.sigtimedwait([signal.SIGUSR1], 1).si_signo)\n"
        "'''\n"
        "waited = subprocess.run([sys.executable, '-c', prog], capture_output=True, text=True,\n"
        "                        timeout=30)",
    )
    assert value(sandbox, "(waited.returncode, waited.stdout)") == (
        0,
        "[<Signals.SIGUSR1: 10>] 14 10\n",  # (print shows sigwait's Signals as its number)
    )


def test_joblib_and_the_spawn_context(sandbox):
    """joblib's process backends (loky, multiprocessing) and the spawn
    context: semaphores shared by name between a process and the programs
    it starts."""
    run_ok(
        sandbox,
        "import joblib, multiprocessing as mp, operator\n"
        "loky = joblib.Parallel(n_jobs=2)(joblib.delayed(pow)(i, 2) for i in range(6))\n"
        "mproc = joblib.Parallel(n_jobs=2, backend='multiprocessing')(\n"
        "    joblib.delayed(abs)(-i) for i in range(4))\n"
        "with mp.get_context('spawn').Pool(2) as pool:\n"
        "    spawned = pool.map(operator.neg, range(4))\n"
        "q = mp.get_context('spawn').Queue()\n"
        "q.put('through a spawn queue')\n"
        "jobs = [loky, mproc, spawned, q.get(timeout=30)]",
    )
    assert value(sandbox, "jobs") == [
        [0, 1, 4, 9, 16, 25],
        [0, 1, 2, 3],
        [0, -1, -2, -3],
        "through a spawn queue",
    ]


def test_pipes_carry_big_writes_whole_and_break_when_the_reader_goes(sandbox):
    """A blocking write returns once every byte is in the pipe (4 MiB through
    a child interpreter and back); a writer blocked on a full pipe gets
    EPIPE when its reader exits."""
    run_ok(
        sandbox,
        "import subprocess, sys, time\n"
        "data = bytes(range(256)) * (4 << 12)\n"
        "echo = 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())'\n"
        "p = subprocess.Popen([sys.executable, '-c', echo], stdin=subprocess.PIPE,\n"
        "                     stdout=subprocess.PIPE)\n"
        "back, _ = p.communicate(data)\n"
        "q = subprocess.Popen(['sh', '-c', 'sleep 0.3'], stdin=subprocess.PIPE)\n"
        "t0 = time.monotonic()\n"
        "try:\n"
        "    q.stdin.write(b'x' * (1 << 20)); q.stdin.flush(); broke = None\n"
        "except BrokenPipeError as e:\n"
        "    broke = type(e).__name__\n"
        "q.wait()\n"
        "piped = [back == data, broke, time.monotonic() - t0 < 10]",
    )
    assert value(sandbox, "piped") == [True, "BrokenPipeError", True]


def test_descriptors_by_name(sandbox):
    """/proc/self/fd/N and /dev/fd, /dev/stdin... name the open descriptors as
    on Linux: listed, read as links, stat'ed as the file, opened anew (a pipe
    end, the same layer file even unlinked), which the shell's process
    substitution and `open('/dev/stdin')` rely on."""
    run_ok(
        sandbox,
        "import os, socket, subprocess, sys, stat\n"
        "r, w = os.pipe()\n"
        "listed = set(os.listdir('/proc/self/fd')) >= {'0', '1', '2', str(r), str(w)}\n"
        "link = os.readlink(f'/proc/self/fd/{r}')\n"
        "is_fifo = stat.S_ISFIFO(os.stat(f'/dev/fd/{r}').st_mode)\n"
        "is_link = stat.S_ISLNK(os.lstat('/dev/stdin').st_mode)\n"
        "w2 = os.open(f'/proc/self/fd/{w}', os.O_WRONLY)\n"
        "os.write(w2, b'through the name')\n"
        "piped = os.read(r, 100)\n"
        "m = os.memfd_create('scratch')\n"
        "os.write(m, b'memfd data')\n"
        "again = os.open(f'/proc/self/fd/{m}', os.O_RDONLY)\n"
        "memfd = [os.read(again, 100), os.lseek(m, 0, os.SEEK_CUR)]\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    os.open(f'/proc/self/fd/{s.fileno()}', os.O_RDWR)\n"
        "    sock = 'opened'\n"
        "except OSError as e:\n"
        "    sock = e.errno\n"
        "code = 'print(len(open(\"/dev/stdin\").read()))'\n"
        "child = subprocess.run([sys.executable, '-c', code], input=b'abc', capture_output=True)\n"
        "script = 'cat <(echo substituted) /dev/stdin; readlink /dev/fd'\n"
        "shell = subprocess.run(['bash', '-c', script], input=b'from stdin\\n', stdout=-1)\n"
        "named = [listed, link.startswith('pipe:['), is_fifo, is_link, piped, memfd, sock,\n"
        "         child.stdout, shell.stdout, os.readlink('/dev/stdout'), os.listdir('/dev')]",
    )
    got = value(sandbox, "named")
    assert got[:10] == [
        True,
        True,
        True,
        True,
        b"through the name",
        [b"memfd data", 10],
        errno.ENXIO,
        b"3\n",
        b"substituted\nfrom stdin\n/proc/self/fd\n",
        "/proc/self/fd/1",
    ]
    assert {"fd", "stdin", "stdout", "stderr", "null"} <= set(got[10])


def test_pidfds_and_the_own_proc_directory(sandbox):
    """A pidfd becomes readable when its process ends, signals it while it
    lives and waits for it with waitid(P_PIDFD); /proc/<own pid> is
    /proc/self."""
    run_ok(
        sandbox,
        "import os, select, signal, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "fd = os.pidfd_open(pid)\n"
        "before = select.select([fd], [], [], 0.2)[0]\n"
        "signal.pidfd_send_signal(fd, signal.SIGTERM)\n"
        "after = select.select([fd], [], [], 20)[0]\n"
        "info = os.waitid(os.P_PIDFD, fd, os.WEXITED)\n"
        "try:\n"
        "    signal.pidfd_send_signal(0, signal.SIGTERM)\n"
        "    not_pidfd = 'sent'\n"
        "except OSError as e:\n"
        "    not_pidfd = e.errno\n"
        "own = str(os.getpid())\n"
        "pidfds = [before, after == [fd], info.si_pid == pid, info.si_status, not_pidfd,\n"
        "          own in os.listdir('/proc'), os.path.isdir(f'/proc/{own}/fd'),\n"
        "          os.readlink(f'/proc/{own}/exe') == os.readlink('/proc/self/exe')]",
    )
    assert value(sandbox, "pidfds") == [[], True, True, 15, errno.EBADF, True, True, True]


def test_nice_and_io_priority_as_for_an_unprivileged_user(sandbox):
    """The process's own nice value and I/O priority are kept (and forked
    children inherit them); it may only become nicer, and the real-time
    I/O class needs a privilege."""
    script = (
        "import os\n"
        "first = os.nice(0)\n"
        "after = os.nice(3)\n"
        "try:\n"
        "    os.setpriority(os.PRIO_PROCESS, 0, 1)\n"
        "    lower = 'allowed'\n"
        "except PermissionError:\n"
        "    lower = 'EACCES'\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.write(w, str(os.nice(0)).encode())\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(first, after, lower, os.read(r, 10).decode(), os.getpriority(os.PRIO_PROCESS, 0))\n"
    )
    run_ok(
        sandbox,
        "import subprocess, sys\n"
        f"niced = subprocess.run([sys.executable, '-c', {script!r}], capture_output=True,"
        " text=True)\n"
        "io = subprocess.run(['ionice', '-c3', 'sh', '-c', 'ionice -p $$'], capture_output=True,"
        " text=True)\n"
        "rt = subprocess.run(['ionice', '-c1', 'true'], capture_output=True, text=True)",
    )
    assert value(sandbox, "[niced.stdout, niced.stderr]") == ["0 3 EACCES 3 3\n", ""]
    assert value(sandbox, "[io.returncode, io.stdout]") == [0, "idle\n"]
    assert value(sandbox, "rt.returncode") != 0


def test_a_notebook_executes_inside_the_sandbox(sandbox):
    """jupyter nbconvert --execute in the guest: a kernel of its own over
    zmq on loopback, started, run and shut down by nbclient in the
    sandbox (libzmq's threads aborted it while the scheduling calls refused
    a thread's id)."""
    run_ok(
        sandbox,
        "import nbformat, subprocess, sys\n"
        "nb = nbformat.v4.new_notebook(cells=[\n"
        "    nbformat.v4.new_code_cell('import os\\nprint(os.getcwd())'),\n"
        "    nbformat.v4.new_code_cell('6 * 7')])\n"
        "nbformat.write(nb, '/tmp/inner.ipynb')\n"
        "conv = subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook',\n"
        "    '--execute', '--output', '/tmp/inner-out.ipynb', '/tmp/inner.ipynb'],\n"
        "    capture_output=True, text=True, timeout=240)\n"
        "cells = [] if conv.returncode else [c.outputs for c in\n"
        "    nbformat.read('/tmp/inner-out.ipynb', 4).cells]\n"
        "inner = [conv.returncode, conv.stderr[-500:], cells]",
        timeout=300,
    )
    rc, err, cells = value(sandbox, "inner")
    assert rc == 0, err
    assert cells[0][0]["text"] == "/tmp\n"
    assert cells[1][0]["data"]["text/plain"] == "42"
