"""The system-call table is data, and docs/syscalls.md is generated from it."""

from __future__ import annotations

from pathlib import Path

from forkd_jupyter.vmm.syscalls import render_markdown, syscall_name, syscall_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "syscalls.md"


def test_table_covers_what_cpython_needs():
    names = {e.name for e in syscall_table()}
    needed = {
        "read",
        "write",
        "openat",
        "close",
        "newfstatat",
        "lseek",
        "mmap",
        "munmap",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "getdents64",
        "futex",
        "getrandom",
        "exit_group",
        "clock_gettime",
        "arch_prctl",
    }
    assert needed <= names
    for e in syscall_table():
        assert e.level in ("full", "partial", "stub", "refused")
        assert syscall_name(e.nr) == e.name or e.name in ("exit",)


def test_generated_document_is_current():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/syscalls.md is stale: run `python -m forkd_jupyter.vmm.syscalls > docs/syscalls.md`"
    )
