"""The doctor's checks: each probes the kernel or the interpreter for real
and says how to fix what is missing. Required checks decide the exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

NATIVE_LOOP_PER_SECOND = 1e8  # a CPL3 loop this fast is not being emulated


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""
    required: bool = True
    data: dict = field(default_factory=dict)


def _kvm_checks() -> list[Check]:
    from ..vmm.probes import probe_kvm

    k = probe_kvm()
    checks = []
    if k["open_error"]:
        fix = (
            "load the KVM module (modprobe kvm_intel / kvm_amd) or enable virtualisation; "
            "give your user access to /dev/kvm (the kvm group)"
        )
        return [Check("kvm", "fail", f"cannot open /dev/kvm: {k['open_error']}", fix, data=k)]
    ok = k["api_version"] == 12 and not k["create_vm_error"] and not k["create_vcpu_error"]
    checks.append(
        Check(
            "kvm",
            "ok" if ok else "fail",
            f"API {k['api_version']}, VM {k['create_vm_error'] or 'created'}, "
            f"vCPU {k['create_vcpu_error'] or 'created'}, sync regs {k['sync_regs']}",
            ""
            if ok
            else "KVM refused to create a VM or vCPU: check `dmesg` and nested virtualisation",
            data=k,
        )
    )
    rate = k["user_loop_per_second"]
    if k["user_loop_error"]:
        checks.append(
            Check(
                "guest_user_mode",
                "fail",
                f"guest did not run: {k['user_loop_error']}",
                "run on an x86-64 host whose KVM can run 64-bit guests",
                data=k,
            )
        )
    else:
        native = rate >= NATIVE_LOOP_PER_SECOND
        checks.append(
            Check(
                "guest_user_mode",
                "ok" if native else "warn",
                f"{rate / 1e9:.2f} G loop iterations/s in guest user mode"
                + ("" if native else " (emulated: sandboxes will be very slow)"),
                "" if native else "this KVM emulates guest code; use hardware virtualisation",
                required=False,
                data=k,
            )
        )
    return checks


def _uffd_checks() -> list[Check]:
    from ..vmm.probes import probe_userfaultfd

    u = probe_userfaultfd()
    features = set(u["features"])
    reachable = not u["syscall_error"] or not u["devnode_error"]
    if not reachable:
        return [
            Check(
                "userfaultfd",
                "fail",
                f"syscall: {u['syscall_error']}; /dev/userfaultfd: {u['devnode_error']}",
                "set vm.unprivileged_userfaultfd=1 or grant /dev/userfaultfd",
                data=u,
            )
        ]
    wp_ok = (
        "WP_HUGETLBFS_SHMEM" in features
        and not u["wp_register_error"]
        and not u["wp_protect_error"]
    )
    via = "syscall" if not u["syscall_error"] else "/dev/userfaultfd"
    return [
        Check(
            "userfaultfd",
            "ok",
            f"available via {via}; features: {', '.join(sorted(features))}",
            data=u,
        ),
        Check(
            "uffd_wp_shmem",
            "ok" if wp_ok else "fail",
            "write-protect on memfd (shmem) mappings "
            + (
                "works"
                if wp_ok
                else f"unavailable (register: {u['wp_register_error']}, "
                f"protect: {u['wp_protect_error']})"
            ),
            "" if wp_ok else "needs Linux >= 5.19 with userfaultfd write-protect for shmem",
            data=u,
        ),
        Check(
            "uffd_wp_unpopulated",
            "ok" if "WP_UNPOPULATED" in features else "fail",
            "WP_UNPOPULATED " + ("offered" if "WP_UNPOPULATED" in features else "missing"),
            "" if "WP_UNPOPULATED" in features else "needs Linux >= 6.4",
            data=u,
        ),
        Check(
            "uffd_wp_async",
            "ok" if "WP_ASYNC" in features else "warn",
            "WP_ASYNC " + ("offered" if "WP_ASYNC" in features else "missing"),
            "" if "WP_ASYNC" in features else "Linux >= 6.7 offers it",
            required=False,
            data=u,
        ),
    ]


def _memory_checks() -> list[Check]:
    from ..vmm.probes import probe_memfd

    checks = []
    err = probe_memfd()
    checks.append(
        Check(
            "memfd",
            "ok" if not err else "fail",
            "memfd_create works" if not err else f"memfd_create failed: {err}",
            "" if not err else "needs Linux >= 3.17 with shmem",
        )
    )
    thp = _read("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
    selected = thp.split("[")[1].split("]")[0] if "[" in thp else thp or "unknown"
    checks.append(
        Check(
            "shmem_thp",
            "ok" if selected in ("always", "within_size", "advise") else "warn",
            f"shmem transparent huge pages: {selected}",
            ""
            if selected != "never"
            else "echo advise > /sys/kernel/mm/transparent_hugepage/"
            "shmem_enabled "
            "makes write-protect arming cheaper",
            required=False,
            data={"shmem_enabled": thp},
        )
    )
    huge = _read("/proc/sys/vm/nr_hugepages") or "0"
    herr = probe_memfd(hugetlb=True)
    checks.append(
        Check(
            "hugetlb",
            "ok" if not herr else "warn",
            f"nr_hugepages {huge}; MFD_HUGETLB memfd "
            + ("works" if not herr else f"unusable ({herr})"),
            ""
            if not herr
            else "reserve huge pages (sysctl vm.nr_hugepages=N) for faster live arming",
            required=False,
            data={"nr_hugepages": huge, "error": herr},
        )
    )
    return checks


def _python_check() -> list[Check]:
    from ..vmm.guest_env import python_elf

    exe = sys.executable
    try:
        elf = python_elf()
    except (OSError, FileNotFoundError) as e:
        return [
            Check(
                "python",
                "fail",
                f"{exe} is not an ELF executable: {e}",
                "run the notebook with a real CPython binary (not a wrapper script)",
            )
        ]
    interp = _pt_interp(elf)
    ok = interp is not None and os.path.exists(interp)
    return [
        Check(
            "python",
            "ok" if ok else "fail",
            f"{exe} -> {elf} (loader {interp}, Python {sys.version.split()[0]})",
            "" if ok else "the interpreter's dynamic loader is missing",
            data={"executable": exe, "elf": elf, "interpreter": interp},
        )
    ]


def _pt_interp(path: str) -> str | None:
    import struct

    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return None
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if ptype == 3:  # PT_INTERP
                f.seek(offset)
                return f.read(filesz).rstrip(b"\0").decode()
    return None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


GROUPS: list[Callable[[], list[Check]]] = [_kvm_checks, _uffd_checks, _memory_checks, _python_check]


def run_checks() -> list[Check]:
    checks: list[Check] = []
    for group in GROUPS:
        try:
            checks += group()
        except Exception as e:  # a probe that cannot even load is itself a finding
            checks.append(
                Check(
                    group.__name__.strip("_").removesuffix("_checks"),
                    "fail",
                    f"probe failed: {type(e).__name__}: {e}",
                    "reinstall: `bash scripts/install.sh` (the C core may be missing)",
                )
            )
    return checks
