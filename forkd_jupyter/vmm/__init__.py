"""The VMM layer: sandboxes (KVM VMs running the notebook's CPython) and,
later, their snapshots. Only this package touches the compiled core."""

from .errors import (
    KvmUnavailable,
    SandboxClosed,
    SandboxCrashed,
    SandboxError,
    SandboxTimeout,
    SpawnError,
)
from .results import GuestError, RunResult
from .sandbox import Sandbox

__all__ = [
    "GuestError",
    "KvmUnavailable",
    "RunResult",
    "Sandbox",
    "SandboxClosed",
    "SandboxCrashed",
    "SandboxError",
    "SandboxTimeout",
    "SpawnError",
]
