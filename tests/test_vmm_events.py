"""Event loops inside the sandbox: socket pairs, epoll, eventfd, timerfd,
signalfd and pipes live in the VMM, so asyncio, selectors and IPython's
top-level ``await`` work, and every branch mode carries them (buffered
bytes, interest lists, counters, timers) into children that then diverge
from their parent."""

from __future__ import annotations

import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm

SETUP = """
import asyncio, os, select, socket
r, w = os.pipe()
os.write(w, b'in-the-pipe')
a, b = socket.socketpair()
a.sendall(b'in-the-socket')
ep = select.epoll()
ep.register(b, select.EPOLLIN)
efd = os.eventfd(5, os.EFD_NONBLOCK)
loop = asyncio.new_event_loop()
"""

CHECK = """
got = [[(fd == b.fileno(), ev) for fd, ev in ep.poll(0)], os.read(r, 100), b.recv(100),
       os.eventfd_read(efd), loop.run_until_complete(asyncio.sleep(0.01, result='loop-ok'))]
os.write(w, b'after')
got.append(os.read(r, 100))
"""


def test_top_level_await_and_asyncio_run_in_cells(sandbox):
    r = run_ok(
        sandbox,
        "import asyncio\nawait asyncio.sleep(0.01)\n"
        "await asyncio.gather(*(asyncio.sleep(0, i) for i in range(3)))",
    )
    assert r.result["text/plain"] == "[0, 1, 2]"
    r = run_ok(sandbox, "async def f():\n    return 6 * 7\nasyncio.run(f())")
    assert r.result["text/plain"] == "42"
    # No event-loop debris reaches the next cell's output.
    r = run_ok(sandbox, "print('clean')")
    assert r.stdout == "clean\n" and not r.stderr


@pytest.mark.parametrize("mode", ["full", "diff", "live"])
def test_pipes_sockets_epoll_and_loops_are_carried_into_branches(mode):
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, SETUP)
        if mode == "diff":
            sb.snapshot(mode="full").close()  # a diff needs a snapshot to build on
        snap = sb.snapshot(mode=mode)
        [child] = snap.spawn(1)
        try:
            expected = [
                [(True, select_in())],
                b"in-the-pipe",
                b"in-the-socket",
                5,
                "loop-ok",
                b"after",
            ]
            run_ok(child, CHECK)
            assert value(child, "got") == expected
            # The parent kept its own copies: the child's reads took nothing from it.
            run_ok(sb, CHECK)
            assert value(sb, "got") == expected
        finally:
            child.close()
            snap.close()
    finally:
        sb.close()


TIMER_AND_SIGNALS = """
import ctypes, os, select, signal, struct, time
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
class ITS(ctypes.Structure):
    _fields_ = [('interval', TS), ('value', TS)]
tfd = libc.timerfd_create(time.CLOCK_MONOTONIC, 0)
period = ITS(TS(0, 200_000_000), TS(0, 200_000_000))
assert libc.timerfd_settime(tfd, 0, ctypes.byref(period), None) == 0
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
sfd = libc.signalfd(-1, ctypes.byref(ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))), os.O_NONBLOCK)
watch = select.epoll()
watch.register(tfd, select.EPOLLIN)
watch.register(sfd, select.EPOLLIN)
"""

TICK_AND_SIGNAL = """
first = [fd for fd, _ in watch.poll(5)]
ticks = struct.unpack('Q', os.read(tfd, 8))[0]
os.kill(os.getpid(), signal.SIGUSR1)
then = [fd for fd, _ in watch.poll(5)]
signo = struct.unpack_from('I', os.read(sfd, 128))[0]
got = [first == [tfd], ticks >= 1, sfd in then, signo]
"""


@pytest.mark.parametrize("mode", ["full", "diff", "live"])
def test_timerfds_and_signalfds_are_carried_into_branches(mode):
    """A periodic timerfd and a signalfd in an epoll set: a branch's child
    has the timer still ticking and the signalfd's mask, and so does the
    source afterwards."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, TIMER_AND_SIGNALS)
        if mode == "diff":
            sb.snapshot(mode="full").close()
        snap = sb.snapshot(mode=mode)
        [child] = snap.spawn(1)
        try:
            for each in (child, sb):
                run_ok(each, TICK_AND_SIGNAL)
                assert value(each, "got") == [True, True, True, 10]
        finally:
            child.close()
            snap.close()
    finally:
        sb.close()


def select_in() -> int:
    import select

    return select.EPOLLIN


def test_a_branch_taken_while_an_event_loop_runs_finishes_it_in_the_child():
    sb = Sandbox.spawn(memory_mib=512)
    try:
        cell = (
            "import asyncio, time\n"
            "async def ticker():\n"
            "    ticks = []\n"
            "    for _ in range(40):\n"
            "        await asyncio.sleep(0.02)\n"
            "        ticks.append(time.monotonic())\n"
            "    return ticks\n"
            "print('started', flush=True)\n"
            "ticks = asyncio.run(ticker())\n"
        )
        started = threading.Event()
        results = {}
        runner = threading.Thread(
            target=lambda: results.setdefault(
                "parent", sb.run(cell, on_output=lambda n, t: started.set())
            )
        )
        runner.start()
        assert started.wait(30)
        time.sleep(0.2)  # the loop is mid-way
        snap = sb.snapshot(mode="live")
        [child] = snap.spawn(1)
        runner.join(60)
        try:
            assert results["parent"].error is None
            ticks = value(child, "ticks")
            assert len(ticks) == 40 and ticks == sorted(ticks)
            assert value(sb, "len(ticks)") == 40
        finally:
            child.close()
            snap.close()
    finally:
        sb.close()


def test_bad_socket_and_epoll_calls_fail_as_on_linux(sandbox):
    code = (
        "import errno, os, select, socket\n"
        "out = []\n"
        "def err(f):\n"
        "    try:\n"
        "        f()\n"
        "        return None\n"
        "    except OSError as e:\n"
        "        return errno.errorcode[e.errno]\n"
        "a, b = socket.socketpair()\n"
        "out.append(err(lambda: socket.socketpair(socket.AF_INET)))\n"
        "out.append(err(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)))\n"
        "out.append(err(lambda: a.connect('/x')))\n"
        "out.append(err(lambda: a.shutdown(7)))\n"
        "ep = select.epoll()\n"
        "f = open('/sandbox/plain', 'w')\n"
        "out.append(err(lambda: ep.register(f.fileno(), select.EPOLLIN)))\n"
        "out.append(err(lambda: ep.unregister(a.fileno())))\n"
        "ep.register(a.fileno(), select.EPOLLIN)\n"
        "out.append(err(lambda: ep.register(a.fileno(), select.EPOLLIN)))\n"
        "out.append(err(lambda: ep.register(ep.fileno(), select.EPOLLIN)))\n"
        "out.append(err(lambda: os.eventfd(0, 0x40000000)))\n"
        "out.append(err(lambda: socket.socket(socket.AF_UNIX)))\n"
    )
    run_ok(sandbox, code)
    assert value(sandbox, "out") == [
        "ENOTSUP",  # EOPNOTSUPP: no inet pairs, as on Linux
        None,  # datagram pairs work
        "ENOENT",  # Linux looks the name up first
        "EINVAL",
        "EPERM",
        "ENOENT",
        "EEXIST",
        "EINVAL",
        "EINVAL",
        None,  # sockets live in the sandbox
    ]


def test_edge_triggered_epoll_reports_new_data_in_one_thread(sandbox):
    """An EPOLLET entry is reported again when more data arrives even
    though what came before was not read, as on Linux, in a process of one
    thread as in a threaded one; and not while nothing arrives."""
    run_ok(
        sandbox,
        "import os, select, threading\n"
        "def edges():\n"
        "    r, w = os.pipe()\n"
        "    ep = select.epoll()\n"
        "    ep.register(r, select.EPOLLIN | select.EPOLLET)\n"
        "    os.write(w, b'ab')\n"
        "    seen = [len(ep.poll(0.05)), len(ep.poll(0.05))]\n"
        "    os.write(w, b'c')\n"
        "    seen.append(len(ep.poll(0.05)))\n"
        "    seen.append(len(ep.poll(0.05)))\n"
        "    for fd in (r, w, ep.fileno()):\n"
        "        os.close(fd)\n"
        "    return seen\n"
        "alone = edges()\n"
        "helper = threading.Thread(target=lambda: threading.Event().wait(1), daemon=True)\n"
        "helper.start()\n"
        "threaded = edges()",
    )
    assert value(sandbox, "[alone, threaded]") == [[1, 0, 1, 0], [1, 0, 1, 0]]
