"""Host capability probes (for `forkd-jupyter doctor`): the only Python
outside the sandbox code that calls the C core, and only its probe functions."""

from __future__ import annotations

import os

from ._ffi import ffi, lib

UFFD_FEATURES = {
    0: "PAGEFAULT_FLAG_WP", 1: "EVENT_FORK", 2: "EVENT_REMAP", 3: "EVENT_REMOVE",
    4: "MISSING_HUGETLBFS", 5: "MISSING_SHMEM", 6: "EVENT_UNMAP", 7: "SIGBUS", 8: "THREAD_ID",
    9: "MINOR_HUGETLBFS", 10: "MINOR_SHMEM", 11: "EXACT_ADDRESS", 12: "WP_HUGETLBFS_SHMEM",
    13: "WP_UNPOPULATED", 14: "POISON", 15: "WP_ASYNC", 16: "MOVE",
}  # fmt: skip


def _err(code: int) -> str | None:
    return None if code == 0 else os.strerror(code) if code > 0 else "not reached"


def probe_kvm(loop_iterations: int = 200_000_000) -> dict:
    p = ffi.new("struct fj_kvm_probe *")
    lib.fj_probe_kvm(p, loop_iterations)
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


def probe_userfaultfd() -> dict:
    p = ffi.new("struct fj_uffd_probe *")
    lib.fj_probe_uffd(p)
    features = sorted(name for bit, name in UFFD_FEATURES.items() if p.features >> bit & 1)
    return {
        "syscall_error": _err(p.syscall_errno),
        "devnode_error": _err(p.devnode_errno),
        "api_error": _err(p.api_errno),
        "features": features,
        "wp_register_error": _err(p.wp_register_errno),
        "wp_protect_error": _err(p.wp_protect_errno),
    }


def probe_memfd(hugetlb: bool = False) -> str | None:
    """None when memfd_create (optionally MFD_HUGETLB) works, else the error."""
    ret = lib.fj_probe_memfd(1 if hugetlb else 0)
    return None if ret == 0 else os.strerror(-ret)
