"""Pseudo-terminals in the sandbox: os.openpty and /dev/pts, the line
discipline (canonical lines, echo, CR/LF mapping, raw mode), an interactive
shell with job control on a terminal (its prompt, Ctrl-C reaching the
foreground job, the window size, a hang-up ending it), and what the
sandbox's file view says of them."""

from __future__ import annotations

import errno

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm


def test_openpty_line_discipline(sandbox):
    run_ok(
        sandbox,
        "import os, stat, termios, tty\n"
        "m, s = os.openpty()\n"
        "names = [os.ttyname(s), os.isatty(s), os.isatty(m), os.isatty(os.open('/dev/null', 0)),\n"
        "         stat.S_ISCHR(os.stat(os.ttyname(s)).st_mode),\n"
        "         os.path.basename(os.ttyname(s)) in os.listdir('/dev/pts')]\n"
        "os.write(m, b'hello\\rwor\\x7fld\\x04')\n"  # CR is a newline; DEL erases; ^D ends a line
        "canonical = [os.read(s, 100), os.read(s, 100), os.read(m, 100)]\n"
        "os.write(s, b'out1\\nout2\\n')\n"
        "output = os.read(m, 100)\n"
        "os.write(m, b'\\x04')\n"  # end of file on an empty line
        "eof = os.read(s, 100)\n"
        "attrs = termios.tcgetattr(s)\n"
        "tty.setraw(s)\n"
        "os.write(m, b'\\x03\\r')\n"
        "raw = os.read(s, 100)\n"
        "termios.tcsetattr(s, termios.TCSANOW, attrs)\n"
        "echo_on = bool(termios.tcgetattr(s)[3] & termios.ECHO)\n"
        "os.close(s)\n"
        "try:\n"
        "    os.read(m, 1)\n"
        "    gone = 'read'\n"
        "except OSError as e:\n"
        "    gone = e.errno\n"
        "os.close(m)\n"
        "left = os.listdir('/dev/pts')\n"
        "pty = [names, canonical, output, eof, raw, echo_on, gone, left]",
    )
    names, canonical, output, eof, raw, echo_on, gone, left = value(sandbox, "pty")
    assert names[0].startswith("/dev/pts/") and names[1:] == [True, True, False, True, True]
    assert canonical == [b"hello\n", b"wold", b"hello\r\nwor\x08 \x08ld"]
    assert output == b"out1\r\nout2\r\n"
    assert eof == b""
    assert raw == b"\x03\r"
    assert echo_on is True
    assert gone == errno.EIO
    assert left == []


def test_an_interactive_shell_on_a_terminal(sandbox):
    run_ok(
        sandbox,
        "import os, pty, select, time, fcntl, termios, struct\n"
        "def until(fd, token, timeout=20):\n"
        "    buf = b''\n"
        "    end = time.monotonic() + timeout\n"
        "    while token not in buf and time.monotonic() < end:\n"
        "        if select.select([fd], [], [], 0.2)[0]:\n"
        "            try:\n"
        "                buf += os.read(fd, 4096)\n"
        "            except OSError:\n"
        "                break\n"
        "    return buf\n"
        "pid, fd = pty.fork()\n"
        "if pid == 0:\n"
        "    os.environ['PS1'] = 'prompt$ '\n"
        "    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])\n"
        "first = until(fd, b'prompt$ ')\n"
        "os.write(fd, b'echo $((6*7))\\n')\n"
        "answer = until(fd, b'prompt$ ')\n"  # resized while the shell waits, as a user would
        "fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 132, 0, 0))\n"
        "os.write(fd, b'stty size; tty\\n')\n"
        "size = until(fd, b'/dev/pts/')\n"
        "os.write(fd, b'sleep 60\\n')\n"
        "time.sleep(1)\n"
        "os.write(fd, b'\\x03echo status-$?\\n')\n"
        "interrupted = until(fd, b'status-130')\n"
        "os.close(fd)\n"  # the terminal hangs up: the shell ends
        "_, status = os.waitpid(pid, 0)\n"
        "shell = [b'prompt$ ' in first, b'42\\r\\n' in answer, b'40 132' in size,\n"
        "         b'status-130' in interrupted, os.WIFSIGNALED(status) or os.WIFEXITED(status)]",
    )
    assert value(sandbox, "shell") == [True, True, True, True, True]
