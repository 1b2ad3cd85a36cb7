"""The VMM layer: sandboxes (KVM VMs running the notebook's CPython) and,
later, their snapshots. Only this package touches the compiled core."""

from ..modes import BranchMode
from .errors import (
    KvmUnavailable,
    ProcessLimit,
    ProcessNotFound,
    ProcessNotRunning,
    SandboxClosed,
    SandboxCrashed,
    SandboxError,
    SandboxTimeout,
    SnapshotBusy,
    SpawnError,
)
from .managed import ManagedProcess
from .results import GuestError, RunResult
from .sandbox import Sandbox
from .snapshot import Snapshot

__all__ = [
    "BranchMode",
    "GuestError",
    "KvmUnavailable",
    "ManagedProcess",
    "ProcessLimit",
    "ProcessNotFound",
    "ProcessNotRunning",
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
