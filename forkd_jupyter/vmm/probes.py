"""Host capability probes: thin wrappers turning the C core's probe structs
into plain dicts (errors as strings, None on success). The only Python that
calls the core's probe functions; `forkd_jupyter.doctor` judges the results."""

from __future__ import annotations

import os

from ._ffi import ffi, lib

UFFD_FEATURES = {
    0: "PAGEFAULT_FLAG_WP", 1: "EVENT_FORK", 2: "EVENT_REMAP", 3: "EVENT_REMOVE",
    4: "MISSING_HUGETLBFS", 5: "MISSING_SHMEM", 6: "EVENT_UNMAP", 7: "SIGBUS", 8: "THREAD_ID",
    9: "MINOR_HUGETLBFS", 10: "MINOR_SHMEM", 11: "EXACT_ADDRESS", 12: "WP_HUGETLBFS_SHMEM",
    13: "WP_UNPOPULATED", 14: "POISON", 15: "WP_ASYNC", 16: "MOVE",
}  # fmt: skip

# The guest loop is timed twice: a short run tells the speed class (an
# emulating KVM runs ~1e6 iterations/s, a native one ~1e9), then a run sized
# to last about LOOP_TARGET_SECONDS measures it without stalling on emulation.
LOOP_CALIBRATION = 100_000
LOOP_MAX = 200_000_000
LOOP_TARGET_SECONDS = 0.1


def _err(code: int) -> str | None:
    """C probe convention: 0 success, >0 errno, -1 step not reached."""
    return None if code == 0 else os.strerror(code) if code > 0 else "not reached"


def feature_names(bits: int) -> list[str]:
    """Names of the set bits; a bit newer than this table shows as BIT<n>."""
    return sorted(UFFD_FEATURES.get(n, f"BIT{n}") for n in range(64) if bits >> n & 1)


def _kvm_once(iterations: int) -> dict:
    p = ffi.new("struct fj_kvm_probe *")
    lib.fj_probe_kvm(p, iterations)
    seconds = p.user_loop_ns / 1e9
    return {
        "open_error": _err(p.open_errno),
        "api_version": p.api_version,
        "create_vm_error": _err(p.create_vm_errno),
        "create_vcpu_error": _err(p.create_vcpu_errno),
        "sync_regs": p.sync_regs,
        "user_loop_error": _err(p.user_loop_errno),
        "user_loop_iterations": p.user_loop_iters,
        "user_loop_seconds": seconds,
        "user_loop_per_second": p.user_loop_iters / seconds if seconds > 0 else 0.0,
    }


def probe_kvm() -> dict:
    """/dev/kvm, VM and vCPU creation, and the guest user-mode loop rate."""
    first = _kvm_once(LOOP_CALIBRATION)
    if first["user_loop_error"] or first["user_loop_per_second"] <= 0:
        return first
    target = int(first["user_loop_per_second"] * LOOP_TARGET_SECONDS)
    if target <= LOOP_CALIBRATION:
        return first
    return _kvm_once(min(target, LOOP_MAX))


def probe_userfaultfd() -> dict:
    p = ffi.new("struct fj_uffd_probe *")
    lib.fj_probe_uffd(p)
    return {
        "syscall_error": _err(p.syscall_errno),
        "devnode_error": _err(p.devnode_errno),
        "api_error": _err(p.api_errno),
        "features": feature_names(p.features),
        "wp_api_error": _err(p.wp_api_errno),
        "wp_negotiated": feature_names(p.wp_features),
        "wp_memfd_error": _err(p.wp_memfd_errno),
        "wp_register_error": _err(p.wp_register_errno),
        "wp_protect_error": _err(p.wp_protect_errno),
        "fill_error": _err(p.fill_errno),
    }


def probe_memfd(hugetlb: bool = False) -> str | None:
    """None when a (hugetlb-backed) memfd can be created, mapped and written."""
    ret = lib.fj_probe_memfd(1 if hugetlb else 0)
    return None if ret == 0 else os.strerror(-ret)


def probe_elf(path: str) -> dict:
    """What the file at path is: an ELF (class, machine, type, PT_INTERP) or
    a "#!" script such as a pyenv shim."""
    p = ffi.new("struct fj_elf_probe *")
    lib.fj_probe_elf(os.fsencode(path), p)
    return {
        "open_error": _err(p.open_errno),
        "is_elf": bool(p.is_elf),
        "is_script": bool(p.is_script),
        "shebang": ffi.string(p.shebang).decode(errors="replace"),
        "elf_class": p.elf_class,
        "machine": p.machine,
        "type": p.type,
        "interp_error": _err(p.interp_errno),
        "interp": ffi.string(p.interp).decode(errors="replace") or None,
    }
