"""File mappings placed over memory that held other data (MAP_FIXED, as
the dynamic loader maps a library's segments over its reservation): the
file's bytes, then zeros to the end of the page, never what was there."""

from __future__ import annotations

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

CODE = r"""
import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
I = ctypes.c_int
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, I, I, I, ctypes.c_long]
PAGE = 4096
MAP_FIXED = 0x10
with open("/tmp/small.bin", "wb") as f:
    f.write(b"\xab" * 100)
with open("/tmp/big.bin", "wb") as f:
    f.write(bytes(range(256)) * 64)  # 4 pages
fd_small = os.open("/tmp/small.bin", os.O_RDONLY)
fd_big = os.open("/tmp/big.bin", os.O_RDONLY)
RW, PRIV_ANON = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
base = libc.mmap(None, 4 * PAGE, RW, PRIV_ANON, -1, 0)
ctypes.memset(base, 0xFF, 4 * PAGE)
# The small file over the first page: its 100 bytes, then zeros.
at = libc.mmap(base, PAGE, RW, mmap.MAP_PRIVATE | MAP_FIXED, fd_small, 0)
first = ctypes.string_at(at, PAGE)
# The big file over pages 1-3 at file offset 1 page: exactly its bytes.
at2 = libc.mmap(base + PAGE, 3 * PAGE, RW, mmap.MAP_PRIVATE | MAP_FIXED, fd_big, PAGE)
rest = ctypes.string_at(at2, 3 * PAGE)
with open("/tmp/big.bin", "rb") as f:
    f.seek(PAGE)
    expected = f.read(3 * PAGE)
(at == base, first[:100] == b"\xab" * 100, first[100:] == bytes(PAGE - 100), at2 == base + PAGE,
 rest == expected)
"""


def test_a_file_mapping_over_old_data_shows_the_file_then_zeros(sandbox):
    result = sandbox.run(CODE)
    assert result.error is None, result.error
    assert result.result["text/plain"] == "(True, True, True, True, True)"


REMAP = r"""
import ctypes, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = libc.mremap.restype = ctypes.c_void_p
I, P, N = ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t
libc.mmap.argtypes = [P, N, I, I, I, ctypes.c_long]
libc.mremap.argtypes = [P, N, N, I, P]
PAGE = 4096
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
with open("/tmp/one.bin", "wb") as f:
    f.write(b"\xcd" * PAGE)
fd = os.open("/tmp/one.bin", os.O_RDONLY)
RW = mmap.PROT_READ | mmap.PROT_WRITE
old = libc.mmap(None, PAGE, RW, mmap.MAP_PRIVATE, fd, 0)
target = libc.mmap(None, 3 * PAGE, RW, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
ctypes.memset(target, 0xFF, 3 * PAGE)
moved = libc.mremap(old, PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target)
data = ctypes.string_at(moved, 3 * PAGE)
(moved == target, data[:PAGE] == b"\xcd" * PAGE, data[PAGE:] == bytes(2 * PAGE))
"""


def test_a_file_mapping_moved_over_old_data_grows_with_zeros(sandbox):
    """mremap of a file mapping onto memory that held other data: its pages
    moved, and the rest reads as zero, never what was there."""
    result = sandbox.run(REMAP)
    assert result.error is None, result.error
    assert result.result["text/plain"] == "(True, True, True)"


def test_msync_checks_what_linux_checks(sandbox):
    """msync of a mapping succeeds; an unaligned start or clashing flags are
    EINVAL and a range with a hole is ENOMEM, as on Linux."""
    run_ok(
        sandbox,
        "import ctypes, errno, mmap, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,\n"
        "                      ctypes.c_int, ctypes.c_long]\n"
        "libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n"
        "def msync(addr, length, flags):\n"
        "    r = libc.msync(addr, length, flags)\n"
        "    return r if r == 0 else ctypes.get_errno()\n"
        "RW, ANON = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS\n"
        "base = libc.mmap(None, 3 * 4096, RW, ANON, -1, 0)\n"
        "libc.munmap(ctypes.c_void_p(base + 4096), 4096)  # a hole in the middle\n"
        "with open('/tmp/m.bin', 'wb') as f:\n"
        "    f.write(b'x' * 8192)\n"
        "with open('/tmp/m.bin', 'r+b') as f:\n"
        "    m = mmap.mmap(f.fileno(), 0)\n"
        "    flushed = [m.flush(), m.flush(0, 4096)]\n"
        "    try:\n"
        "        m.flush(1, 6)\n"
        "    except OSError as e:\n"
        "        flushed.append(e.errno)\n"
        "    m.close()\n"
        "MS_ASYNC, MS_SYNC = 1, 4\n"
        "synced = [msync(base, 4096, MS_SYNC), msync(base + 1, 4096, MS_SYNC),\n"
        "          msync(base, 4096, MS_SYNC | MS_ASYNC), msync(base, 4096, 0x40),\n"
        "          msync(base, 3 * 4096, MS_ASYNC)]",
    )
    assert value(sandbox, "flushed") == [None, None, 22]
    assert value(sandbox, "synced") == [0, 22, 22, 22, 12]


def test_a_shared_file_mapping_and_the_files_reads_and_writes_agree(sandbox):
    """Reads of a layer file see what its shared mappings wrote and the
    mappings see what writes to the file wrote, as through Linux's page
    cache; truncation cuts both; numpy.memmap round-trips."""
    run_ok(
        sandbox,
        "import mmap, os\n"
        "import numpy as np\n"
        "with open('/tmp/shared.bin', 'wb') as f:\n"
        "    f.write(b'a' * 8192)\n"
        "fd = os.open('/tmp/shared.bin', os.O_RDWR)\n"
        "m = mmap.mmap(fd, 8192)\n"
        "m[100:103] = b'ccc'  # through the mapping, no msync\n"
        "read_back = os.pread(fd, 5, 99)\n"
        "os.pwrite(fd, b'WW', 5000)  # through the file\n"
        "mapped = m[4999:5003]\n"
        "os.ftruncate(fd, 4096)\n"
        "os.ftruncate(fd, 8192)\n"
        "regrown = os.pread(fd, 4, 5000)\n"
        "m.close()\n"
        "os.close(fd)\n"
        "arr = np.memmap('/sandbox/arr.dat', dtype='float64', mode='w+', shape=(1000,))\n"
        "arr[:] = np.arange(1000.0)\n"
        "arr.flush()\n"
        "del arr\n"
        "from_file = np.fromfile('/sandbox/arr.dat', dtype='float64')\n"
        "memmap_ok = [len(from_file), float(from_file.sum())]",
    )
    assert value(sandbox, "[read_back, mapped, regrown]") == [b"accca", b"aWWa", b"\0\0\0\0"]
    assert value(sandbox, "memmap_ok") == [1000, 499500.0]


def test_msync_gives_a_snapshot_what_the_mapping_wrote(sandbox):
    run_ok(
        sandbox,
        "import mmap, os\n"
        "with open('/sandbox/kept.bin', 'wb') as f:\n"
        "    f.write(b'old!' * 1024)\n"
        "kept_fd = os.open('/sandbox/kept.bin', os.O_RDWR)\n"
        "kept = mmap.mmap(kept_fd, 4096)\n"
        "kept[:4] = b'new!'\n"
        "kept.flush()",
    )
    (child,) = sandbox.snapshot(mode="full").spawn()
    try:
        assert value(child, "open('/sandbox/kept.bin', 'rb').read(8)") == b"new!old!"
    finally:
        child.close()


def test_a_shared_file_mapping_agrees_with_the_file_after_a_branch(sandbox):
    """A branch makes a mapped object the process's own memory for a while
    (design.md, shared memory): reads, writes and msync of the file still
    meet what the mapping holds."""
    run_ok(
        sandbox,
        "import mmap, os\n"
        "with open('/tmp/branched.bin', 'wb') as f:\n"
        "    f.write(b'-' * 4096)\n"
        "b_fd = os.open('/tmp/branched.bin', os.O_RDWR)\n"
        "b_map = mmap.mmap(b_fd, 4096)\n"
        "b_map[:2] = b'ab'",
    )
    sandbox.snapshot(mode="full").spawn()[0].close()
    run_ok(sandbox, "b_map[2:4] = b'cd'\nos.pwrite(b_fd, b'EF', 4)\nb_map.flush()")
    assert value(sandbox, "[os.pread(b_fd, 8, 0), b_map[:8]]") == [b"abcdEF--"] * 2
    (child,) = sandbox.snapshot(mode="full").spawn()
    try:  # what msync wrote back is the file a branch gets
        assert value(child, "open('/tmp/branched.bin', 'rb').read(8)") == b"abcdEF--"
    finally:
        child.close()
