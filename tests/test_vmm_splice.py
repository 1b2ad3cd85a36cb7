"""splice between a pipe and a file, a socket or another pipe, as Linux
moves the bytes (offsets, EOF, SPLICE_F_NONBLOCK and the errors)."""

from __future__ import annotations

import errno

import pytest
from guest_helpers import ERRNO_OF, run_ok, value

pytestmark = pytest.mark.kvm


def test_splice_moves_bytes_between_a_pipe_and_anything(sandbox):
    run_ok(
        sandbox,
        ERRNO_OF + "import os, socket\n"
        "fd = os.open('/tmp/spliced', os.O_RDWR | os.O_CREAT | os.O_TRUNC)\n"
        "os.write(fd, b'0123456789')\n"
        "r, w = os.pipe()\n"
        "os.write(w, b'hello world')\n"
        "to_file = [os.splice(r, fd, 5, offset_dst=3), os.lseek(fd, 0, os.SEEK_CUR),\n"
        "           os.pread(fd, 20, 0)]\n"
        "os.lseek(fd, 0, os.SEEK_SET)\n"
        "from_file = [os.splice(fd, w, 4, offset_src=1), os.lseek(fd, 0, os.SEEK_CUR),\n"
        "             os.splice(fd, w, 2), os.lseek(fd, 0, os.SEEK_CUR), os.read(r, 100)]\n"
        "r2, w2 = os.pipe()\n"
        "os.write(w, b'through')\n"
        "pipe_to_pipe = [os.splice(r, w2, 100), os.read(r2, 100)]\n"
        "a, b = socket.socketpair()\n"
        "a.sendall(b'from a socket')\n"
        "from_socket = [os.splice(b.fileno(), w2, 64), os.read(r2, 100)]\n"
        "empty = code(lambda: os.splice(r, fd, 10, flags=os.SPLICE_F_NONBLOCK))\n"
        "os.close(w)\n"
        "at_eof = os.splice(r, fd, 10)\n"
        "errors = [code(os.splice, fd, fd, 1), code(lambda: os.splice(r2, fd, 1, offset_src=0)),\n"
        "          code(lambda: os.splice(r2, fd, 1, flags=0x100)), code(os.splice, 999, w2, 1)]\n"
        "for x in (fd, r, r2, w2):\n    os.close(x)\n"
        "a.close(); b.close()",
    )
    assert value(sandbox, "to_file") == [5, 10, b"012hello89"]  # fd's own offset unchanged
    # from offset 1 without moving fd's offset, then from (and moving) fd's offset
    assert value(sandbox, "from_file") == [4, 0, 2, 2, b" world12he01"]
    assert value(sandbox, "pipe_to_pipe") == [7, b"through"]
    assert value(sandbox, "from_socket") == [13, b"from a socket"]
    assert value(sandbox, "empty") == errno.EAGAIN
    assert value(sandbox, "at_eof") == 0
    assert value(sandbox, "errors") == [errno.EINVAL, errno.ESPIPE, errno.EINVAL, errno.EBADF]
