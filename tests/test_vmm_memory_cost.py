"""What a sandbox costs the host: KVM's tables follow the memory the guest
maps, not its limit; memory first reached after a snapshot is in the next
diff; an access to RAM no mapping reaches is a SIGSEGV; a child's
working-set hint holds what the previous child wrote, not what every earlier
child wrote; a child's fresh memory takes no room in the image it shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forkd_jupyter.vmm import Sandbox, SandboxCrashed

pytestmark = pytest.mark.kvm

# KVM's per-memslot arrays under the shadow MMU (reverse map, write tracking).
SLOT_TABLES = ("memslot_rmap_alloc", "kvm_page_track_create_memslot")


def kvm_slot_table_bytes() -> int:
    total = 0
    for line in Path("/proc/vmallocinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2].startswith(SLOT_TABLES):
            pages = next((f for f in fields if f.startswith("pages=")), "pages=0")
            total += int(pages.split("=")[1]) * 4096  # (the size column adds a guard page)
    return total


def child_copied_kib() -> int:
    """This process's anonymous memory: every child's copy-on-write copies
    of its image (and of the image's holes it wrote, anonymous memory of
    their own), besides the VMM's heap."""
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    raise AssertionError("no Anonymous line in smaps_rollup")


@pytest.fixture(scope="module")
def base_snapshot():
    source = Sandbox.spawn(memory_mib=2048)
    source.run("x = 1")
    snap = source.snapshot(mode="full")
    yield snap
    snap.close(force=True)
    source.close()


def test_kvm_tables_follow_mapped_memory_not_the_limit(base_snapshot):
    """Four children of a 2 GiB base: KVM's tables for all of RAM as one
    memslot were 5.2 MiB a child; registered as mappings reach it, a small
    Python needs a fraction."""
    assert Path("/proc/vmallocinfo").read_text(), "/proc/vmallocinfo is unreadable"
    before = kvm_slot_table_bytes()
    children = base_snapshot.spawn(4)
    try:
        for child in children:
            assert child.run("y = 2").error is None
        per_child = (kvm_slot_table_bytes() - before) / 4
        assert per_child < 1.5 * 2**20, f"{per_child / 2**20:.2f} MiB of KVM tables a child"
        # Reaching far into RAM registers more, and the memory works.
        grow = children[0].run(
            "import mmap\nbuf = mmap.mmap(-1, 768 << 20)\n"
            "for off in range(0, 768 << 20, 32 << 20): buf[off] = 7\n"
            "sum(buf[off] for off in range(0, 768 << 20, 32 << 20))"
        )
        assert grow.error is None, grow.error
        assert grow.result["text/plain"] == str(7 * 24)
        assert (kvm_slot_table_bytes() - before) / 4 > per_child
    finally:
        for child in children:
            child.close()


REACH = """
import mmap
buf = mmap.mmap(-1, 512 << 20)
for off in range(0, 512 << 20, 16 << 20):
    buf[off:off + 8] = off.to_bytes(8, "little")
"""
CHECK = "all(int.from_bytes(buf[o:o + 8], 'little') == o for o in range(0, 512 << 20, 16 << 20))"


@pytest.mark.parametrize("owner", ["source", "child"])
def test_memory_first_reached_after_a_snapshot_is_in_the_next_diff(base_snapshot, owner):
    """A diff built on a snapshot taken before the guest reached new RAM
    (so before its memslots existed) holds the pages written there."""
    sb = Sandbox.spawn(memory_mib=2048) if owner == "source" else base_snapshot.spawn(1)[0]
    try:
        first = sb.snapshot(mode="diff")
        assert sb.run(REACH).error is None
        second = sb.snapshot(mode="diff")
        [grandchild] = second.spawn(1)
        try:
            seen = grandchild.run(CHECK)
            assert seen.error is None, seen.error
            assert seen.result["text/plain"] == "True"
        finally:
            grandchild.close()
        [earlier] = first.spawn(1)
        try:
            assert earlier.run("'buf' in globals()").result["text/plain"] == "False"
        finally:
            earlier.close()
        second.close()
        first.close()
    finally:
        sb.close()


def test_an_access_to_ram_no_mapping_reaches_is_a_segv(base_snapshot):
    [victim, neighbour] = base_snapshot.spawn(2)
    try:
        with pytest.raises(SandboxCrashed, match="SIGSEGV.*unmapped memory at address 0x40000000"):
            victim.run("import ctypes\nctypes.string_at(0x40000000, 8)")
        assert neighbour.run("6 * 7").result["text/plain"] == "42"
    finally:
        victim.close()
        neighbour.close()


def test_a_hint_holds_what_the_last_child_wrote_not_every_earlier_child(base_snapshot):
    """Child A's first cell writes 6 MiB; B, spawned with A's hint, copies
    it up front but writes little; C, with B's hint, must not copy A's
    pages again."""

    def spawn_copied(cell: str) -> tuple[Sandbox, int]:
        before = child_copied_kib()
        [child] = base_snapshot.spawn(1)
        at_spawn = child_copied_kib() - before
        assert child.run(cell).error is None
        return child, at_spawn

    a, _ = spawn_copied("import os\nheld = bytearray(os.urandom(6 << 20))")
    b, b_spawn = spawn_copied("z = 3")
    c, c_spawn = spawn_copied("z = 4")
    try:
        assert b_spawn > 6 * 1024, f"B copied {b_spawn} KiB up front: A's hint did not apply"
        assert c_spawn < b_spawn - 4 * 1024, (
            f"C copied {c_spawn} KiB up front, B {b_spawn} KiB: the hint kept A's pages"
        )
    finally:
        for child in (a, b, c):
            child.close()


def image_fds() -> set[str]:
    """This process's descriptors of snapshot images (unlinked store files)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "forkd-snapshot" in os.readlink(f"/proc/self/fd/{fd}"):
                found.add(fd)
        except OSError:
            continue  # closed while listing
    return found


FRESH = """
import mmap
fresh = mmap.mmap(-1, 64 << 20)
fresh[:] = b"\\x07" * (64 << 20)
untouched = mmap.mmap(-1, 8 << 20)
untouched[::4096].count(0)
"""


def test_a_childs_fresh_memory_takes_no_room_in_the_image():
    """A child writing 64 MiB of fresh memory and reading 8 MiB more: the
    image every child shares keeps its size (those pages were the image's
    holes, and the child's own memory now), the fresh memory reads as zero,
    and the child's snapshots (diff, full, live) carry what it wrote to a
    grandchild."""
    source = Sandbox.spawn(memory_mib=1024)
    try:
        assert source.run("x = 1").error is None
        before = image_fds()
        snap = source.snapshot(mode="full")
        [image_fd] = image_fds() - before

        def image_mib() -> float:
            return os.stat(f"/proc/self/fd/{image_fd}").st_blocks * 512 / 2**20

        size = image_mib()
        [child] = snap.spawn(1)
        try:
            wrote = child.run(FRESH)
            assert wrote.error is None, wrote.error
            assert wrote.result["text/plain"] == str(2048), "fresh memory did not read as zero"
            assert image_mib() - size < 4, f"the image grew {size:.0f} -> {image_mib():.0f} MiB"
            for mode in ("diff", "full", "live"):
                taken = child.snapshot(mode=mode)
                [grandchild] = taken.spawn(1)
                try:
                    seen = grandchild.run("fresh[::1 << 20] == b'\\x07' * 64")
                    assert seen.error is None, seen.error
                    assert seen.result["text/plain"] == "True", f"a {mode} snapshot lost them"
                finally:
                    grandchild.close()
                taken.close()
        finally:
            child.close()
        snap.close(force=True)
    finally:
        source.close()
