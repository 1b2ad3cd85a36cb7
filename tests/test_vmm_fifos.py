"""Named pipes (mkfifo) and mknod in the writable layer, as Linux has them:
a FIFO is a name whose opens meet in one pipe (a blocking open waits for
the other end, from another process or thread), with its mode, listing and
unlink; a saved snapshot and a branch keep the name. Devices need a
privilege the sandbox user does not have."""

from __future__ import annotations

import errno

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Snapshot

pytestmark = pytest.mark.kvm


def test_a_fifo_is_a_name_whose_opens_meet(sandbox):
    run_ok(
        sandbox,
        "import os, stat, subprocess, threading\n"
        "os.mkfifo('/tmp/ff', 0o640)\n"
        "st = os.stat('/tmp/ff')\n"
        "ls = subprocess.run(['ls', '-l', '/tmp/ff'], capture_output=True, text=True).stdout\n"
        "kind = [stat.S_ISFIFO(st.st_mode), stat.S_IMODE(st.st_mode),\n"
        "        'ff' in os.listdir('/tmp'), ls[0]]\n"
        "def errno_of(fn):\n"
        "    try:\n"
        "        fn()\n"
        "    except OSError as e:\n"
        "        return e.errno\n"
        "no_reader = errno_of(lambda: os.open('/tmp/ff', os.O_WRONLY | os.O_NONBLOCK))\n"
        "r = os.open('/tmp/ff', os.O_RDONLY | os.O_NONBLOCK)\n"
        "w = os.open('/tmp/ff', os.O_WRONLY | os.O_NONBLOCK)\n"
        "os.write(w, b'through')\n"
        "got = [os.read(r, 100)]\n"
        "os.close(w)\n"
        "got.append(os.read(r, 100))  # end of file once the writer is gone\n"
        "os.close(r)\n"
        "shell = subprocess.Popen(['/bin/sh', '-c', 'echo from the shell > /tmp/ff'])\n"
        "with open('/tmp/ff') as f:  # waits for the shell's open\n"
        "    got.append(f.read())\n"
        "shell.wait()\n"
        "heard = []\n"
        "reader = threading.Thread(target=lambda: heard.append(open('/tmp/ff').read()))\n"
        "reader.start()\n"
        "with open('/tmp/ff', 'w') as f:  # waits for the thread's open\n"
        "    f.write('from a thread')\n"
        "reader.join(10)\n"
        "# A writer that opens, writes and closes before the waiting reader runs\n"
        "# again still counts as its partner (the reader then reads, then EOF).\n"
        "def read_all(into):\n"
        "    with open('/tmp/ff', 'rb') as f:\n"
        "        into.append(f.read())\n"
        "rounds = []\n"
        "for i in range(30):\n"
        "    got_i = []\n"
        "    t = threading.Thread(target=read_all, args=(got_i,))\n"
        "    t.start()\n"
        "    with open('/tmp/ff', 'wb') as f:\n"
        "        f.write(b'%d' % i)\n"
        "    t.join(10)\n"
        "    rounds.append(got_i == [b'%d' % i])",
    )
    assert value(sandbox, "kind") == [True, 0o640 & ~0o022, True, "p"]
    assert value(sandbox, "no_reader") == errno.ENXIO
    assert value(sandbox, "got") == [b"through", b"", "from the shell\n"]
    assert value(sandbox, "heard") == ["from a thread"]
    assert value(sandbox, "rounds.count(True)") == 30
    run_ok(sandbox, "os.unlink('/tmp/ff')")
    assert value(sandbox, "os.path.exists('/tmp/ff')") is False


def test_mknod_makes_files_and_fifos_not_devices(sandbox):
    run_ok(
        sandbox,
        "import os, stat\n"
        "os.mknod('/tmp/plain')\n"
        "os.mknod('/tmp/pipe', 0o600 | stat.S_IFIFO)\n"
        "def errno_of(fn):\n"
        "    try:\n"
        "        fn()\n"
        "    except OSError as e:\n"
        "        return e.errno\n"
        "made = [stat.S_ISREG(os.stat('/tmp/plain').st_mode),\n"
        "        stat.S_ISFIFO(os.stat('/tmp/pipe').st_mode),\n"
        "        errno_of(lambda: os.mknod('/tmp/null', 0o600 | stat.S_IFCHR, os.makedev(1, 3))),\n"
        "        errno_of(lambda: os.mknod('/tmp/plain')),\n"
        "        errno_of(lambda: os.mkfifo('/usr/lib/ff'))]",
    )
    assert value(sandbox, "made") == [True, True, errno.EPERM, errno.EEXIST, errno.EROFS]


def test_a_saved_snapshot_and_a_branch_keep_the_fifo(sandbox, tmp_path):
    run_ok(sandbox, "import os\nos.mkfifo('/sandbox/kept')")
    sandbox.snapshot(mode="full").save(tmp_path / "saved")
    (child,) = Snapshot.load(tmp_path / "saved").spawn()
    try:
        run_ok(
            child,
            "import os, stat\n"
            "r = os.open('/sandbox/kept', os.O_RDONLY | os.O_NONBLOCK)\n"
            "w = os.open('/sandbox/kept', os.O_WRONLY)\n"
            "os.write(w, b'in the child')\n"
            "seen = [stat.S_ISFIFO(os.stat('/sandbox/kept').st_mode), os.read(r, 100)]",
        )
        assert value(child, "seen") == [True, b"in the child"]
    finally:
        child.close()
    # The source's own pipe of that name is another: nothing came through.
    run_ok(sandbox, "r = os.open('/sandbox/kept', os.O_RDONLY | os.O_NONBLOCK)")
    assert value(sandbox, "[os.read(r, 100), os.close(r)]") == [b"", None]


def test_a_partner_that_came_and_went_is_not_lost_to_a_signal(sandbox):
    """A reader blocked in open whose writer opens, writes and closes, and
    then a signal with a handler, all before the reader runs again: the open
    succeeds (its partner came first), it is not interrupted and made again
    to wait for a writer that is gone."""
    run_ok(
        sandbox,
        "import os, signal, threading, time\n"
        "os.mkfifo('/tmp/sig_ff')\n"
        "handled = []\n"
        "signal.signal(signal.SIGUSR1, lambda *_: handled.append(1))\n"
        "def reader(into):\n"
        "    with open('/tmp/sig_ff', 'rb') as f:\n"
        "        into.append(f.read())\n"
        "results, stuck = [], 0\n"
        "for i in range(40):\n"
        "    got = []\n"
        "    t = threading.Thread(target=reader, args=(got,))\n"
        "    t.start()\n"
        "    time.sleep(0.002)  # the reader waits in its open\n"
        "    w = os.open('/tmp/sig_ff', os.O_WRONLY)\n"
        "    os.write(w, b'%d' % i)\n"
        "    os.close(w)\n"
        "    signal.pthread_kill(t.ident, signal.SIGUSR1)\n"
        "    t.join(5)\n"
        "    if t.is_alive():  # lost its partner: let it go\n"
        "        stuck += 1\n"
        "        os.close(os.open('/tmp/sig_ff', os.O_WRONLY | os.O_NONBLOCK))\n"
        "        t.join(5)\n"
        "    results.append(got == [b'%d' % i])\n"
        "signal.signal(signal.SIGUSR1, signal.SIG_DFL)\n"
        "os.unlink('/tmp/sig_ff')",
        timeout=300,
    )
    assert value(sandbox, "stuck") == 0
    assert value(sandbox, "results.count(True)") == 40
    # A reader that already ended drops the signal sent to it, as on Linux.
    assert value(sandbox, "len(handled)") > 0
