"""Guest faults end cleanly: interrupts, memory exhaustion, crashes,
threads and fork, unsupported system calls."""

from __future__ import annotations

import threading
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SandboxClosed, SandboxCrashed

pytestmark = pytest.mark.kvm


def interrupt_after(sb, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, sb.interrupt)
    timer.start()
    return timer


@pytest.mark.parametrize(
    "code",
    [
        "while True: pass",
        "import time; time.sleep(1000)",
        "import time\nwhile True: time.sleep(0.01)",
        "import os\nos.mkfifo('/tmp/lonely')\nopen('/tmp/lonely', 'w')  # no reader ever comes",
    ],
)
def test_interrupt_raises_keyboardinterrupt_and_sandbox_stays_usable(sandbox, code):
    interrupt_after(sandbox, 0.5)
    start = time.monotonic()
    r = sandbox.run(code, timeout=30)
    assert r.error is not None and r.error.ename == "KeyboardInterrupt"
    assert time.monotonic() - start < 10
    assert run_ok(sandbox, "21 * 2").result["text/plain"] == "42"


def test_interrupt_cancels_the_main_task_of_asyncio_run(sandbox):
    """As in a plain interpreter: asyncio.run takes SIGINT over while it
    runs, an interrupt cancels its main task (whose cleanup runs) and the
    cell ends with KeyboardInterrupt."""
    code = (
        "import asyncio, signal\n"
        "seen = []\n"
        "async def main():\n"
        "    seen.append(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)\n"
        "    try:\n"
        "        await asyncio.sleep(1000)\n"
        "    except asyncio.CancelledError:\n"
        "        seen.append('cancelled')\n"
        "        raise\n"
        "asyncio.run(main())"
    )
    interrupt_after(sandbox, 1.0)
    r = sandbox.run(code, timeout=30)
    assert r.error is not None and r.error.ename == "KeyboardInterrupt"
    assert value(sandbox, "seen") == [True, "cancelled"]
    assert run_ok(sandbox, "21 * 2").result["text/plain"] == "42"


def test_interrupt_while_idle_is_harmless(sandbox):
    sandbox.interrupt()
    time.sleep(0.2)
    assert run_ok(sandbox, "'still here'").result["text/plain"] == "'still here'"


def test_unsupported_system_call_returns_enosys_and_is_counted(sandbox):
    before = sandbox.stats()["unsupported_syscalls"]
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "rc = libc.syscall(400)\nerr = ctypes.get_errno()"
    )
    run_ok(sandbox, code)
    assert value(sandbox, "(rc, err)") == (-1, 38)
    st = sandbox.stats()
    assert st["unsupported_syscalls"] == before + 1
    assert st["unsupported"].get("syscall_400") or any("400" in k for k in st["unsupported"])


def test_memory_exhaustion_gives_memoryerror_and_others_are_unaffected():
    """Running out of guest memory is the guest's MemoryError (the VMM's
    mmap/brk fail with ENOMEM), never a crash: the sandbox recovers."""
    small = Sandbox.spawn(memory_mib=256)
    other = Sandbox.spawn(memory_mib=256)
    try:
        run_ok(other, "keep = list(range(1000))")
        r = small.run(
            "blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))", timeout=120
        )
        assert small.alive, small.exit_reason
        assert r.error is not None and r.error.ename == "MemoryError"
        run_ok(small, "del blocks\nimport gc; gc.collect()")
        assert run_ok(small, "len(bytearray(1 << 20))").result["text/plain"] == str(1 << 20)
        assert run_ok(other, "sum(keep)").result["text/plain"] == str(sum(range(1000)))
    finally:
        small.close()
        other.close()


def test_segfault_raises_sandbox_crashed():
    sb = Sandbox.spawn(memory_mib=256)
    try:
        with pytest.raises(SandboxCrashed) as info:
            sb.run("import ctypes\nctypes.string_at(0)")
        assert info.value.signal == 11
        assert "SIGSEGV" in str(info.value)
        assert not sb.alive
        with pytest.raises(SandboxCrashed):
            sb.run("1")
    finally:
        sb.close()
    with pytest.raises(SandboxClosed):
        sb.run("1")


def test_guest_exit_is_reported():
    sb = Sandbox.spawn(memory_mib=256)
    try:
        with pytest.raises(SandboxCrashed) as info:
            sb.run("import os\nos._exit(3)")
        assert info.value.status == 3
    finally:
        sb.close()
