"""What the host spends for the sandboxes of a daemon, summed from its
parts, for the benchmarks under bench/*/ (imported by path):

- the daemon's anonymous memory (smaps_rollup): children's copied guest
  pages and the VMM's own heap;
- the kernel's memory KVM allocates per VM (/proc/vmallocinfo, by the
  allocating function: a memslot's reverse map and write tracking, dirty
  logs), which no process's PSS shows;
- page tables (/proc/meminfo PageTables + SecPageTables, KVM's shadow ones);
- shared memory (/proc/meminfo Shmem): snapshot images and guest RAM are
  memfds, counted there whether mapped or not (machine-wide: run on an
  otherwise quiet machine).

MemAvailable is read beside them as a cross-check only (it moves with the
page cache). Reading /proc/vmallocinfo needs root."""

from __future__ import annotations

from pathlib import Path

from forkd_jupyter.controller.limits import mem_info


def rollup_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/smaps_rollup (``Pss``, ``Anonymous``), KiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} line")


def kvm_vmalloc_kib() -> int:
    """The kernel's vmalloc'd memory whose allocating function is KVM's:
    the pages behind each area (its size column also counts a guard page)."""
    total = 0
    for line in Path("/proc/vmallocinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and ("kvm" in fields[2] or "memslot" in fields[2]):
            pages = next((f for f in fields if f.startswith("pages=")), "pages=0")
            total += int(pages.split("=")[1]) * 4
    return total


def host_kib(pid: int) -> dict[str, int]:
    """The parts (KiB) that the sandboxes of daemon `pid` make grow;
    ``spent`` is their sum."""
    mem = {key: value // 1024 for key, value in mem_info().items()}
    parts = {
        "anonymous": rollup_kib(pid, "Anonymous"),
        "kvm_tables": kvm_vmalloc_kib(),
        "page_tables": mem["PageTables"] + mem.get("SecPageTables", 0),
        "shmem": mem["Shmem"],
    }
    return parts | {"spent": sum(parts.values()), "available": mem["MemAvailable"]}
