"""Which of CPython's own test modules the conformance suite runs in a
sandbox and natively, and which differences are allowed (each with its
reason; docs/syscalls.md lists them)."""

from __future__ import annotations

import re

MODULES = [
    "test_threading",
    "test_thread",
    "test_threading_local",
    "test_queue",
    "test_select",
    "test_selectors",
    "test_signal",
    "test_weakref",
    "test_gc",
    "test_asyncio.test_tasks",
    "test_asyncio.test_locks",
    "test_asyncio.test_queues",
    "test_asyncio.test_events",
    "test_asyncio.test_unix_events",
    "test_asyncio.test_streams",
    "test_asyncio.test_sock_lowlevel",
    "test_asyncio.test_sendfile",
    "test_asyncio.test_subprocess",
    "test_asyncio.test_runners",
    "test_socketserver",
    "test_epoll",
    "test_pty",
    "test_tty",
]

# Not run on either side (none: the fork tests that once waited forever for
# a child run now).
EXCLUDED: list[str] = []

NEEDS_PROCESSES = "needs a process call that is not offered (ENOSYS from fork, exec or spawn)"
NO_NETWORK = "no network outside the sandbox, by design: only its own loopback is reachable"


def allowed_reason(outcome: str) -> str | None:
    """Why a test that passes natively may end with outcome in a sandbox
    (None: it may not)."""
    if "Errno 38" in outcome and re.search(r"subprocess\.py|os\.fork|fork\(|posix_spawn", outcome):
        return NEEDS_PROCESSES
    unreachable = r"\[Errno (101|97)\] (Network is unreachable|Address family not supported)"
    if re.search(unreachable, outcome):
        return NO_NETWORK
    return None
