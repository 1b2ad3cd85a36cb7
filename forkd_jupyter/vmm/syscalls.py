"""The system-call table of the C core, as data, and the compatibility
document generated from it (``python -m forkd_jupyter.vmm.syscalls``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ._ffi import ffi, lib

LEVELS = ("full", "partial", "stub", "refused")
LEVEL_TEXT = {
    "full": "Linux semantics within the sandbox",
    "partial": "works for what CPython and common libraries use; see the note",
    "stub": "accepted and does nothing (returns success)",
    "refused": "fails with a specific errno by design; see the note",
}


@dataclass(frozen=True)
class SyscallEntry:
    nr: int
    name: str
    level: str
    family: str
    note: str
    fast: str  # when served without a VM exit (docs/design.md), "" never


def syscall_table() -> list[SyscallEntry]:
    entries = []
    info = ffi.new("struct fj_syscall_info *")
    i = 0
    while lib.fj_syscall_table_entry(i, info) == 0:
        entries.append(
            SyscallEntry(
                nr=info.nr,
                name=ffi.string(info.name).decode(),
                level=LEVELS[info.level],
                family=ffi.string(info.family).decode(),
                note=ffi.string(info.note).decode(),
                fast=ffi.string(info.fast).decode(),
            )
        )
        i += 1
    return entries


def syscall_name(nr: int) -> str | None:
    name = lib.fj_syscall_name(nr)
    return None if name == ffi.NULL else ffi.string(name).decode()


def render_markdown() -> str:
    table = syscall_table()
    lines = [
        "# System-call compatibility",
        "",
        "Generated from the VMM's system-call table by "
        "`python -m forkd_jupyter.vmm.syscalls > docs/syscalls.md`; a test keeps it current.",
        "Every x86-64 system call not listed returns `ENOSYS` and is counted in "
        "`Sandbox.stats()['unsupported']`. *Without an exit*: when a host thread that "
        'polls serves the call without a VM exit (design.md, "System calls without an '
        'exit"); the others always exit.',
        "",
        "| level | meaning | calls |",
        "|---|---|---:|",
    ]
    for level in LEVELS:
        count = sum(1 for e in table if e.level == level)
        lines.append(f"| {level} | {LEVEL_TEXT[level]} | {count} |")
    for family in sorted({e.family for e in table}):
        lines += [
            "",
            f"## {family}",
            "",
            "| nr | name | level | without an exit | note |",
            "|---:|---|---|---|---|",
        ]
        for e in sorted((e for e in table if e.family == family), key=lambda e: e.nr):
            lines.append(f"| {e.nr} | `{e.name}` | {e.level} | {e.fast} | {e.note} |")
    return "\n".join(lines + CPYTHON_SUITES) + "\n"


# What tests/test_cpython_suites.py allows to differ from a native run.
CPYTHON_SUITES = [
    "",
    "## CPython's own regression tests",
    "",
    "`tests/test_cpython_suites.py` runs CPython's test modules for threads (`test_threading`, "
    "`test_thread`, `test_threading_local`), `test_queue`, `test_select`, `test_selectors`, "
    "`test_signal`, `test_weakref`, `test_gc`, `test_socketserver`, `test_epoll`, `test_pty`, "
    "`test_tty` and asyncio (`test_tasks`, "
    "`test_locks`, `test_queues`, `test_events`, `test_unix_events`, `test_streams`, "
    "`test_sock_lowlevel`, `test_sendfile`, `test_subprocess`, `test_runners`) in a sandbox "
    "and natively, with "
    "the same interpreter; every test that passes natively must pass in the sandbox, except for "
    "these reasons (`tests/cpython/suites.py`):",
    "",
    "| reason | why |",
    "|---|---|",
    "| needs processes | a test that gets `ENOSYS` from `fork`, `exec` or `posix_spawn`; none "
    "does now: processes are real (`fork`, `vfork`, `execve`, pidfds), and the many tests "
    "that start a child interpreter (`assert_python_ok`) or fork run as natively. |",
    "| no network outside the sandbox, by design | sockets reach only the sandbox's own "
    "loopback and `AF_UNIX` names; any other address is `ENETUNREACH`; netlink tells of "
    "the loopback interface only; packet sockets are `EAFNOSUPPORT`. |",
    "",
    "`test_concurrent_futures` is not installed with this machine's CPython, "
    "so it is not in the list.",
]


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
