"""`forkd-jupyter terminal SANDBOX`: an interactive shell in the sandbox on
a real pseudo-terminal of the host: keys go through in raw mode, the
sandbox's terminal has this one's size, the command ends with the shell's
exit status; the detach key leaves the shell running."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.kvm


def _spawn_cli(*args: str) -> tuple[subprocess.Popen, int]:
    """The command on a new 100x30 pseudo-terminal of the host (sized
    before the command starts); returns it and the terminal's master."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "forkd_jupyter", *args], stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    return proc, master


def _read_until(fd: int, needle: bytes, timeout: float = 60) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"{needle!r} never came: {seen[-2000:]!r}")
        try:
            seen += os.read(fd, 4096)
        except OSError:
            raise AssertionError(f"the command ended before {needle!r}: {seen[-2000:]!r}") from None
    return seen


def _status(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the command did not end") from None


def test_an_interactive_shell_with_this_terminals_size_and_exit_status(daemon, sb):
    pid, fd = _spawn_cli("terminal", sb)
    try:
        _read_until(fd, b"$ ")
        os.write(fd, b"echo $((6*7)); stty size\r")
        out = _read_until(fd, b"30 100")
        assert b"42\r\n" in out
        os.write(fd, b"sleep 30\r")
        time.sleep(0.5)
        os.write(fd, b"\x03")  # raw mode: Ctrl-C reaches the sandbox's shell, not this command
        _read_until(fd, b"$ ")
        os.write(fd, b"exit 3\r")
        assert _status(pid) == 3
    finally:
        os.close(fd)


def test_the_detach_key_leaves_the_shell_running(daemon, sb):
    pid, fd = _spawn_cli("terminal", sb, "--", "sh")
    try:
        _read_until(fd, b"$ ")
        os.write(fd, b"\x1d")
        _read_until(fd, b"detached")
        assert _status(pid) == 0
    finally:
        os.close(fd)
    running = [t for t in daemon.list_terminals(sb) if t["argv"] == ["sh"]]
    assert running and running[-1]["state"] == "running"
    daemon.close_terminal(sb, running[-1]["id"])
