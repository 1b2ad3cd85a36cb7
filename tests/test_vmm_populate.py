"""Fresh private memory the guest writes at once (an object arena, a small
buffer, a heap extension) is populated by the host when it is mapped
(kvm/kvm_populate.c), so the guest's first touches do not each pay a host
allocation inside KVM's fault. What the memory reads never changes: zeros
where it is fresh, whatever reused or branched memory held before. Large
mappings, MAP_NORESERVE ones and stacks stay lazy, as on Linux; MAP_POPULATE
populates at any size, as on Linux."""

from __future__ import annotations

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

MIB = 1 << 20

SETUP = r"""
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
I = ctypes.c_int
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, I, I, I, ctypes.c_long]
RW, ANON = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
MAP_FIXED, MAP_NORESERVE, MAP_POPULATE = 0x10, 0x4000, 0x8000

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def mapped_rss(size, flags=0):
    # The least growth of three mappings: the interpreter's own allocations
    # between the two reads may take a new (populated) object arena once.
    tries = []
    for _ in range(3):
        before = rss()
        addr = libc.mmap(None, size, RW, ANON | flags, -1, 0)
        tries.append((rss() - before, addr))
    grew, addr = min(tries)
    return addr, grew

def zeros(addr, size):
    return ctypes.string_at(addr, size).count(0) == size
"""


def test_small_mappings_are_resident_at_once_and_large_ones_stay_lazy(sandbox):
    run_ok(sandbox, SETUP)
    got = value(
        sandbox,
        "{name: (grew, zeros(addr, size)) for name, size, flags in ("
        "('1 MiB', 1 << 20, 0), ('noreserve', 1 << 20, MAP_NORESERVE), "
        "('64 MiB', 64 << 20, 0), ('populate', 8 << 20, MAP_POPULATE)) "
        "for addr, grew in [mapped_rss(size, flags)]}",
    )
    assert got["1 MiB"][0] >= MIB - 64 * 1024, got
    assert got["populate"][0] >= 8 * MIB - 64 * 1024, got
    assert got["noreserve"][0] < MIB // 2 and got["64 MiB"][0] < MIB // 2, got
    assert all(z for _, z in got.values()), got


def test_populated_memory_reads_zero_over_old_data_and_branches_see_the_writes(sandbox):
    run_ok(sandbox, SETUP)
    run_ok(
        sandbox,
        "old = libc.mmap(None, 1 << 20, RW, ANON, -1, 0)\n"
        "ctypes.memset(old, 0xAB, 1 << 20)\n"
        "again = libc.mmap(old, 1 << 20, RW, ANON | MAP_FIXED, -1, 0)\n"
        "over_old = (again == old, zeros(again, 1 << 20))\n"
        "half = libc.mmap(None, 1 << 20, RW, ANON, -1, 0)\n"
        "ctypes.memset(half, 0x5A, 1 << 19)\n",
    )
    assert value(sandbox, "over_old") == (True, True)
    # A diff snapshot after the populated mapping: the child sees what the
    # source wrote and zeros in the half it never touched.
    sandbox.snapshot(mode="full")
    run_ok(sandbox, "ctypes.memset(half + (1 << 19) - 4096, 0x33, 4096)")
    snap = sandbox.snapshot(mode="diff")
    [child] = snap.spawn()
    with child:
        check = (
            "(ctypes.string_at(half, (1 << 19) - 4096) == b'\\x5a' * ((1 << 19) - 4096), "
            "ctypes.string_at(half + (1 << 19) - 4096, 4096) == b'\\x33' * 4096, "
            "zeros(half + (1 << 19), 1 << 19))"
        )
        assert value(child, check) == (True, True, True)
        # The child's own small mappings are populated and fresh too.
        got = value(child, "(lambda a, g: (g, zeros(a, 1 << 20)))(*mapped_rss(1 << 20))")
        assert got[0] >= MIB - 64 * 1024 and got[1], got
