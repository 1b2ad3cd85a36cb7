"""Advisory file locks between a sandbox's processes, as Linux keeps them:
fcntl's record locks (per process), OFD locks (per open description) and
flock, on files of the writable layer; SQLite from several processes."""

from __future__ import annotations

import errno

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

# Guest code: take(kind, f, start, length) tries a lock without waiting and
# says "ok" or the errno's name; holder(code) runs code in a child process
# that prints "held" once it holds its lock and then waits for a line.
HELPERS = r"""
import errno, fcntl, os, struct, subprocess, sys, time
FL = 'hhqqi4x'
def take(kind, f, start=0, length=0, shared=False):
    t = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
    try:
        if kind == 'record':
            fcntl.fcntl(f, fcntl.F_SETLK, struct.pack(FL, t, 0, start, length, 0))
        elif kind == 'ofd':
            fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack(FL, t, 0, start, length, 0))
        else:
            fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def holder(code):
    p = subprocess.Popen([sys.executable, '-c', 'import fcntl, struct, sys\n' + code +
                          '\nprint("held", flush=True)\nsys.stdin.readline()'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'held'
    return p
def done(p):
    p.communicate('\n', timeout=30)
    return p.returncode
open('/tmp/data', 'w').write('x' * 4096)
"""


def test_record_locks_exclude_other_processes_until_released(sandbox):
    run_ok(
        sandbox,
        HELPERS + "p = holder(\"f = open('/tmp/data', 'r+')\\n"
        "fcntl.fcntl(f, fcntl.F_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 100, 0))\")\n"
        "f = open('/tmp/data', 'r+')\n"
        "tries = [take('record', f, 50, 10), take('record', f, 100, 10),\n"
        "         take('record', f, 0, 1, shared=True), take('flock', f)]\n"
        "held = struct.unpack(FL, fcntl.fcntl(f, fcntl.F_GETLK,\n"
        "                     struct.pack(FL, fcntl.F_RDLCK, 0, 10, 1, 0)))\n"
        "holder_pid = p.pid\n"
        "t0 = time.monotonic()\n"
        "import threading\n"
        "threading.Timer(0.5, lambda: done(p)).start()\n"
        "fcntl.fcntl(f, fcntl.F_SETLKW, struct.pack(FL, fcntl.F_WRLCK, 0, 0, 0, 0))\n"
        "waited = time.monotonic() - t0\n"
        "after = take('record', f, 0, 0)\n"
        "f.close()",
    )
    # the holder's range [0, 100) excludes, its neighbour and flock (another family) do not
    assert value(sandbox, "tries") == ["EAGAIN", "ok", "EAGAIN", "ok"]
    lock_type, whence, start, length, pid = value(sandbox, "held")
    assert (lock_type, whence, start, length) == (1, 0, 0, 100)  # F_WRLCK, SEEK_SET
    assert pid == value(sandbox, "holder_pid")
    assert 0.4 < value(sandbox, "waited") < 5  # until the holder ended
    assert value(sandbox, "after") == "ok"


def test_ofd_and_flock_locks_belong_to_the_open_description(sandbox):
    run_ok(
        sandbox,
        HELPERS + "a, b = open('/tmp/data', 'r+'), open('/tmp/data', 'r+')\n"
        "ofd = [take('ofd', a, 0, 10), take('ofd', b, 5, 10), take('ofd', b, 10, 10)]\n"
        "record = [take('record', a, 0, 10), take('record', b, 0, 10)]\n"
        "fl = [take('flock', a), take('flock', b), take('flock', b, shared=True)]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if take('flock', a) == 'ok' and take('ofd', a, 0, 10) == 'ok' else 1)\n"
        "shared_with_child = os.waitpid(pid, 0)[1]\n"
        "a.close()\n"
        "# the child's descriptors close just after waitpid returns: wait for them\n"
        "fcntl.flock(b, fcntl.LOCK_EX)\n"
        "after_close = ['ok', take('ofd', b, 0, 10)]\n"
        "b.close()",
    )
    # two descriptions of one process: OFD locks conflict, record locks (one owner) do not
    assert value(sandbox, "ofd") == ["ok", "EAGAIN", "ok"]
    assert value(sandbox, "record") == ["EAGAIN", "EAGAIN"]  # b's OFD lock conflicts with both
    assert value(sandbox, "fl") == ["ok", "EAGAIN", "EAGAIN"]
    assert value(sandbox, "shared_with_child") == 0  # a forked child shares the description
    assert value(sandbox, "after_close") == ["ok", "ok"]  # the description's last close


def test_access_mode_ranges_and_files_outside_the_layer(sandbox):
    run_ok(
        sandbox,
        HELPERS + "import shutil\n"
        "ro = open('/tmp/data', 'r')\n"
        "host = open(shutil.which('sh'), 'rb')\n"
        "modes = [take('record', ro), take('record', ro, shared=True),\n"
        "         take('record', host, shared=True), take('flock', host)]\n"
        "def code(fn):\n"
        "    try:\n        fn()\n        return 0\n"
        "    except OSError as e:\n        return e.errno\n"
        "w = open('/tmp/data', 'r+')\n"
        "bad = [code(lambda: fcntl.fcntl(w, fcntl.F_SETLK, struct.pack(FL, 7, 0, 0, 0, 0))),\n"
        "       code(lambda: fcntl.fcntl(w, fcntl.F_SETLK, struct.pack(FL, 1, 0, -5, 2, 0))),\n"
        "       code(lambda: fcntl.fcntl(w, fcntl.F_OFD_SETLK, struct.pack(FL, 1, 0, 0, 0, 9)))]\n"
        "fcntl.lockf(w, fcntl.LOCK_EX, 100, 0)\n"
        "fcntl.lockf(w, fcntl.LOCK_UN, 10, 40)  # split: [0, 40) and [50, 100) stay\n"
        "p = holder(\"f = open('/tmp/data', 'r+')\\n"
        "r = [fcntl.fcntl(f, fcntl.F_SETLK, struct.pack('hhqqi4x', 1, 0, s, 5, 0)) and 'ok'\\n"
        '     for s in (42,)]")\n'
        "in_hole = done(p)\n"
        f"HELPERS = {HELPERS!r}\n"
        "probe = subprocess.run([sys.executable, '-c', HELPERS +\n"
        "    \"print(take('record', open('/tmp/data', 'r+'), 45, 10))\"],\n"
        "    capture_output=True, text=True).stdout.split()\n"
        "w.close(); ro.close(); host.close()",
    )
    assert value(sandbox, "modes") == ["EBADF", "ok", "ok", "ok"]
    assert value(sandbox, "bad") == [errno.EINVAL, errno.EINVAL, errno.EINVAL]
    assert value(sandbox, "in_hole") == 0  # the unlocked middle was free for another process
    assert value(sandbox, "probe") == ["EAGAIN"]  # [45, 55) meets the [50, 100) part kept


def test_sqlite_from_several_processes(sandbox):
    """SQLite's own locking (fcntl record locks) keeps concurrent writers of
    one database apart: a writer holding the database makes another see
    "database is locked", and four writing processes lose nothing."""
    run_ok(
        sandbox,
        HELPERS + "import sqlite3, multiprocessing as mp\n"
        "db = '/tmp/shared.sqlite'\n"
        "c = sqlite3.connect(db); c.execute('create table t(x)'); c.commit(); c.close()\n"
        'p = holder(f"import sqlite3\\nc = sqlite3.connect({db!r}, isolation_level=None)\\n'
        "c.execute('begin exclusive')\\nc.execute('insert into t values (-1)')\")\n"
        "c = sqlite3.connect(db, timeout=0.2)\n"
        "try:\n"
        "    with c:\n        c.execute('insert into t values (0)')\n"
        "    blocked = 'no error'\n"
        "except sqlite3.OperationalError as e:\n"
        "    blocked = str(e)\n"
        "c.close()\n"
        "done(p)\n"
        "def work(i):\n"
        "    c = sqlite3.connect(db, timeout=60, isolation_level=None)\n"
        "    for k in range(100):\n"
        "        c.execute('begin immediate')\n"
        "        n = c.execute('select count(*) from t').fetchone()[0]\n"
        "        c.execute('insert into t values (?)', (n,))\n"
        "        c.execute('commit')\n"
        "    c.close()\n"
        "ps = [mp.get_context('fork').Process(target=work, args=(i,)) for i in range(4)]\n"
        "[w.start() for w in ps]; [w.join() for w in ps]\n"
        "c = sqlite3.connect(db)\n"
        "rows = c.execute('select count(*), count(distinct x) from t').fetchone()\n"
        "check = c.execute('pragma integrity_check').fetchone()[0]\n"
        "codes = [w.exitcode for w in ps]",
        timeout=300,
    )
    assert value(sandbox, "blocked") == "database is locked"
    # each insert counted the rows under the write lock: 400 distinct counts, none lost
    assert list(value(sandbox, "rows")) == [400, 400]
    assert value(sandbox, "check") == "ok"
    assert value(sandbox, "codes") == [0, 0, 0, 0]
