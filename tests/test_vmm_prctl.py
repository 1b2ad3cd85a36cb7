"""A process's prctl settings and its threads' names are its state: a
branch's child has them as the source had them at the pause, while the
source goes on with its own."""

from __future__ import annotations

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox

pytestmark = pytest.mark.kvm

SETUP = r"""
import ctypes, threading
libc = ctypes.CDLL(None, use_errno=True)
def prctl(op, a=0):
    zero = ctypes.c_ulong(0)
    return libc.prctl(op, ctypes.c_ulong(a), zero, zero, zero)
def setname(n):
    return libc.prctl(15, ctypes.c_char_p(n.encode()), 0, 0, 0)
def subreaper():
    v = ctypes.c_int(-1)
    prctl(37, ctypes.addressof(v))
    return v.value
named, release = threading.Event(), threading.Event()
tids = []
def worker():
    setname('loader')
    tids.append(threading.get_native_id())
    named.set()
    release.wait()
held = threading.Thread(target=worker)
held.start()
named.wait()
setname('experiment')
prctl(38, 1)      # PR_SET_NO_NEW_PRIVS
prctl(29, 2000)   # PR_SET_TIMERSLACK
prctl(36, 1)      # PR_SET_CHILD_SUBREAPER
"""

NOW = (
    "[open('/proc/self/comm').read().strip(), "
    "open(f'/proc/self/task/{tids[0]}/comm').read().strip(), "
    "prctl(39), prctl(30), subreaper()]"
)


@pytest.mark.parametrize("mode", ["diff", "live"])
def test_a_branch_keeps_thread_names_and_prctl_settings(mode):
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "1")
        base = sb.snapshot(mode="full")  # a diff needs one below it
        run_ok(sb, SETUP)
        assert value(sb, NOW) == ["experiment", "loader", 1, 2000, 1]
        snap = sb.snapshot(mode=mode)
        run_ok(sb, "setname('moved-on'); prctl(29, 0); prctl(36, 0)")
        [child] = snap.spawn()
        try:
            assert value(child, NOW) == ["experiment", "loader", 1, 2000, 1]
            run_ok(child, "release.set(); held.join()")
        finally:
            child.close()
        assert value(sb, NOW) == ["moved-on", "loader", 1, 50000, 0]
        run_ok(sb, "release.set(); held.join()")
        snap.close(force=True)
        base.close(force=True)
    finally:
        sb.close()
