"""Children read inherited memory in 2 MiB pages: full images live in the
image store (a tmpfs of the process's own, mounted nowhere, with 2 MiB
pages), and a child's memory slots it has not written stay out of KVM's
dirty log, so the host and KVM map the image 2 MiB at a time. What the
child writes there still reaches its diffs, and only that."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, image_store

pytestmark = pytest.mark.kvm

MIB = 1 << 20
ARRAY_MIB = 256
# A stride of 32 KiB touches every eighth page of the array.
STRIDED_READ = "_s = sum(A[::32768])"


def pmd_mapped_kib(address: int) -> int:
    """ShmemPmdMapped of this process's mapping that starts at address."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    inside = False
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            inside = int(head[0].split("-")[0], 16) == address
        elif inside and head[0] == "ShmemPmdMapped:":
            return int(head[1])
    raise AssertionError(f"no mapping at {address:#x}")


def huge_in(store_fd: int) -> int:
    """KiB of 2 MiB pages a 4 MiB file written in the store is mapped with."""
    fd = os.open("probe", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=store_fd)
    try:
        os.unlink("probe", dir_fd=store_fd)
        os.pwrite(fd, b"\1" * (4 * MIB), 0)
        with mmap.mmap(fd, 4 * MIB, mmap.MAP_SHARED) as m:
            sum(m[i] for i in range(0, 4 * MIB, 4096))  # fault it in
            address = ctypes.addressof(ctypes.c_char.from_buffer(m))  # (the export ends here)
            return pmd_mapped_kib(address)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def source():
    sb = Sandbox.spawn(memory_mib=1024)
    run_ok(sb, f"A = bytearray(b'\\x01') * ({ARRAY_MIB} << 20)")
    yield sb
    sb.close()


def test_the_store_is_a_private_tmpfs_of_2mib_pages():
    fd = image_store.ensure()
    assert fd is not None, image_store.status()
    assert "2 MiB pages" in image_store.status()
    assert huge_in(fd) == 4096
    # Mounted nowhere: no mount of this or any namespace shows it.
    assert "huge=within_size" not in Path("/proc/self/mountinfo").read_text()
    # A user without CAP_SYS_ADMIN gets one from a helper in namespaces of its own.
    helper = image_store.mount_in_namespace()
    try:
        assert huge_in(helper) == 4096
    finally:
        os.close(helper)


def test_a_child_reads_its_inherited_array_in_2mib_pages(source):
    snap = source.snapshot(mode="full")
    (child,) = snap.spawn()
    try:
        run_ok(child, "1")
        before = child.stats()["kvm_pages"]
        run_ok(child, STRIDED_READ)
        after = child.stats()["kvm_pages"]
        # 8,192 pages read in 128 runs of 2 MiB: KVM maps most runs whole,
        # where 4 KiB mappings would take a fault (a VM exit) per page.
        assert after["2m"] - before["2m"] >= ARRAY_MIB // 2 // 2, (before, after)
        assert after["4k"] - before["4k"] < 2048, (before, after)
        assert value(child, "_s") == ARRAY_MIB * MIB // 32768
    finally:
        child.close()
        snap.close()


def test_writes_where_the_child_only_read_reach_its_diffs(source):
    """A slot starts out of KVM's dirty log; the child's writes there are
    found as its own (copy-on-write) pages, the slot is logged from then on,
    and neither the reads before nor pages never written make a diff grow."""
    snap = source.snapshot(mode="full")
    (child,) = snap.spawn()
    try:
        run_ok(child, STRIDED_READ)
        first, second = 3 * MIB + 5, 200 * MIB + 7  # slots 32 MiB apart and more
        run_ok(child, f"A[{first}] = 7")
        diff1 = child.snapshot(mode="diff")
        assert diff1.dirty_bytes < 16 * MIB, diff1.dirty_bytes  # not the 256 MiB read
        # The first slot is logged now, the second still unlogged.
        run_ok(child, f"A[{first} + 4096 * 3] = 8; A[{second}] = 9")
        diff2 = child.snapshot(mode="diff")
        assert diff2.dirty_bytes < 16 * MIB, diff2.dirty_bytes
        (at1,) = diff1.spawn()
        (at2,) = diff2.spawn()
        try:
            probe = f"(A[{first}], A[{first} + 4096 * 3], A[{second}], A[{second} + 4096])"
            assert value(at1, probe) == (7, 1, 1, 1)
            assert value(at2, probe) == (7, 8, 9, 1)
            assert value(source, probe) == (1, 1, 1, 1)
        finally:
            at1.close()
            at2.close()
        diff2.close()
        diff1.close()
    finally:
        child.close()
        snap.close(force=True)
