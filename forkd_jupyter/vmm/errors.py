"""Exceptions of the VMM layer, and the one place C ``-errno`` values become
Python exceptions."""

from __future__ import annotations

import errno as _errno
import os


class SandboxError(Exception):
    """Base class of every sandbox failure."""


class SpawnError(SandboxError):
    """The sandbox could not be created or did not become ready."""


class SandboxClosed(SandboxError):
    """The sandbox was closed or has exited; it cannot run code any more."""


class SandboxCrashed(SandboxError):
    """The guest died: a fatal signal, an exit, or a VMM-detected fault."""

    def __init__(self, message: str, *, signal: int = 0, status: int | None = None) -> None:
        super().__init__(message)
        self.signal = signal
        self.status = status


class SandboxTimeout(SandboxError, TimeoutError):
    """A run did not finish in time; the sandbox was interrupted."""


class SnapshotBusy(SandboxError):
    """A snapshot cannot be released while others depend on it."""

    def __init__(self, message: str, *, dependents: list[str]) -> None:
        super().__init__(message)
        self.dependents = dependents


class KvmUnavailable(SpawnError):
    """/dev/kvm is missing or unusable on this machine."""


def check(ret: int, what: str) -> int:
    """Returns ret when it is not a negative errno, else raises."""
    if ret >= 0:
        return ret
    code = -ret
    message = f"{what}: {os.strerror(code)}"
    if what.startswith("create") and code in (
        _errno.ENOENT,
        _errno.EACCES,
        _errno.ENODEV,
        _errno.ENXIO,
    ):
        raise KvmUnavailable(message + "; run `forkd-jupyter doctor`")
    if what.startswith(("read ", "write ", "stat ", "mkdir ", "list ", "remove ")):
        # File operations raise the matching OSError subclass (FileNotFoundError...).
        raise OSError(code, message)
    if what.endswith("snapshot") and code == _errno.EXDEV:
        raise SandboxError(
            f"{what}: processes of the sandbox share memory (a multiprocessing pool, "
            "shared mmap or semaphores between running processes); a branch cannot carry "
            "memory shared between processes yet, so branch once they ended"
        )
    if what.endswith("snapshot") and code == _errno.EBUSY:
        raise SandboxError(
            f"{what}: a process of the sandbox stayed between vfork and exec; try again"
        )
    if what.startswith("save snapshot") and code == _errno.EMLINK:
        raise SandboxError(
            f"{what}: the snapshot holds several processes (a shell, subprocesses...), and "
            "a saved snapshot holds one; save a branch taken when only Python runs"
        )
    raise SandboxError(message)


class ProcessNotFound(SandboxError):
    """No managed process or terminal of that id in this sandbox."""


class ProcessNotRunning(SandboxError):
    """The process ended (or has no terminal) for what was asked of it."""


class ProcessLimit(SandboxError):
    """The sandbox already has as many managed processes as it may."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit
