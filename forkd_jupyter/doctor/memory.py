"""Guest RAM backing: memfd (required), shmem transparent huge pages and
hugetlb (both only make write-protect arming cheaper), and the image store
(2 MiB pages for the full images children read; vmm/image_store.py)."""

from __future__ import annotations

from .check import Check

THP_SHMEM = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def checks() -> list[Check]:
    from ..vmm.probes import probe_memfd

    err = probe_memfd()
    memfd = Check.of(
        "memfd",
        not err,
        "memfd_create, ftruncate, shared mmap and write " + (f"failed: {err}" if err else "work"),
        "guest RAM is a memfd: needs Linux >= 3.17 with shmem (CONFIG_MEMFD_CREATE)",
    )
    return [memfd, _shmem_thp(), _hugetlb(probe_memfd(hugetlb=True)), _image_store()]


def _image_store() -> Check:
    from ..vmm import image_store

    fd = image_store.ensure()
    return Check.of(
        "image_store",
        fd is not None,
        f"full snapshot images: {image_store.status()}",
        "children then read inherited memory in 4 KiB pages (a fault each): the store needs "
        "the new mount API (Linux >= 5.2) and root or unprivileged user namespaces",
        required=False,
        data={"huge_pages": fd is not None, "status": image_store.status()},
    )


def _shmem_thp() -> Check:
    raw = read_text(THP_SHMEM)
    mode = raw.split("[", 1)[1].split("]", 1)[0] if "[" in raw else raw or "unavailable"
    return Check.of(
        "shmem_thp",
        mode in ("always", "within_size", "advise"),
        f"shmem transparent huge pages: {mode}",
        f"echo advise > {THP_SHMEM} (as root) makes arming write-protect ~5x cheaper",
        required=False,
        data={"shmem_enabled": raw, "mode": mode},
    )


def _hugetlb(err: str | None) -> Check:
    info = meminfo()
    data = {
        "nr_hugepages": read_text(NR_HUGEPAGES) or "0",
        "free": info.get("HugePages_Free", 0),
        "total": info.get("HugePages_Total", 0),
        "page_kib": info.get("Hugepagesize", 0),
        "mfd_hugetlb_error": err,
    }
    return Check.of(
        "hugetlb",
        not err,
        f"{data['free']} of {data['total']} huge pages of {data['page_kib']} KiB free; "
        "MFD_HUGETLB memfd " + (f"unusable ({err})" if err else "works"),
        "reserve huge pages (sysctl vm.nr_hugepages=N, as root) for near-free live arming",
        required=False,
        data=data,
    )


def meminfo() -> dict[str, int]:
    """/proc/meminfo's numbers (kB values stay in kB)."""
    out = {}
    for line in read_text("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        fields = value.split()
        if fields and fields[0].isdigit():
            out[key] = int(fields[0])
    return out


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
