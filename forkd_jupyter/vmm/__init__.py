"""The VMM layer: sandboxes (KVM VMs running the notebook's CPython) and,
later, their snapshots. Only this package touches the compiled core."""

from ..modes import BranchMode
from .errors import (
    KvmUnavailable,
    SandboxClosed,
    SandboxCrashed,
    SandboxError,
    SandboxTimeout,
    SnapshotBusy,
    SpawnError,
)
from .results import GuestError, RunResult
from .sandbox import Sandbox
from .snapshot import Snapshot

__all__ = [
    "BranchMode",
    "GuestError",
    "KvmUnavailable",
    "RunResult",
    "Sandbox",
    "SandboxClosed",
    "SandboxCrashed",
    "SandboxError",
    "SandboxTimeout",
    "Snapshot",
    "SnapshotBusy",
    "SpawnError",
]
