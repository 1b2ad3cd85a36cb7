"""What the daemon knows of each sandbox and snapshot: plain records, the
JSON of docs/rest-api.md. The live VMM object, when there is one, hangs off
the record (``vm``) and is never serialised."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

SANDBOX_FIELDS = (
    "id name status busy live_fork memory_limit_mib parent_snapshot created_at exit_reason "
    "execution_count python node"
).split()
SNAPSHOT_FIELDS = (
    "id tag mode status source_id parent children pause_ms stall_ms stall_total_ms "
    "round_trip_ms copy_ms ready_ms "
    "logical_bytes physical_bytes diff_bytes created_at saved_path error shipped checkpoint"
).split()


@dataclass
class SandboxRecord:
    id: str
    name: str
    live_fork: bool
    memory_limit_mib: int
    parent_snapshot: str | None = None
    status: str = "running"  # running | dead
    busy: bool = False
    created_at: float = field(default_factory=time.time)
    exit_reason: str | None = None
    execution_count: int | None = None
    python: str | None = None  # the interpreter it runs, as the client named it
    node: str | None = None  # the cluster node it runs on ("host/node-id"); None: this host
    vm: Any = field(default=None, repr=False, compare=False)
    # The checkpoint taken ahead (controller/ahead.py): being made, made
    # (an ahead.Prepared), and how often the daemon used the sandbox
    # otherwise (``touched``; its value when the last checkpointed cell ended).
    preparing: bool = field(default=False, repr=False, compare=False)
    prepared: Any = field(default=None, repr=False, compare=False)
    touched: int = field(default=0, repr=False, compare=False)
    ended_touched: int = field(default=0, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in SANDBOX_FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> SandboxRecord:
        return cls(**{k: d[k] for k in SANDBOX_FIELDS if k in d})


@dataclass
class SnapshotRecord:
    id: str
    mode: str
    source_id: str
    tag: str | None = None
    status: str = "writing"  # writing | ready | failed
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    pause_ms: float | None = None
    stall_ms: float | None = None  # longest freeze of the source (docs/snapshots.md)
    stall_total_ms: float | None = None  # the pause plus every write held by a live copy
    round_trip_ms: float | None = None
    copy_ms: float | None = None
    ready_ms: float | None = None
    logical_bytes: int | None = None
    physical_bytes: int | None = None
    diff_bytes: int | None = None
    created_at: float = field(default_factory=time.time)
    saved_path: str | None = None
    error: str | None = None
    shipped: list[dict] | None = None  # per node it was shipped to: bytes, ms (cluster)
    # A notebook's checkpoint: the cell about to run ("cell", "line": its first
    # line; None: the state a checkout left behind) and the one that ran last
    # ("after", None at the first); see docs/time-travel.md
    checkpoint: dict | None = None
    vm: Any = field(default=None, repr=False, compare=False)
    # The status state.json holds (set when it is written): a branch rewrites
    # state.json only when the status moved on from it.
    persisted_status: str | None = field(default=None, repr=False, compare=False)

    @property
    def status_unpersisted(self) -> bool:
        return self.status != self.persisted_status

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in SNAPSHOT_FIELDS}
        d["children"] = list(self.children)
        d["shipped"] = [dict(s) for s in self.shipped] if self.shipped is not None else None
        d["checkpoint"] = dict(self.checkpoint) if self.checkpoint is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SnapshotRecord:
        return cls(**{k: d[k] for k in SNAPSHOT_FIELDS if k in d})

    def refresh_from_vm(self) -> None:
        """Copies the image's status and timings (the VMM updates them while
        a live copy runs)."""
        snap = self.vm
        if snap is None or snap.closed:
            return
        self.status = snap.status
        self.pause_ms = snap.pause_ms
        self.stall_ms = snap.stall_ms
        self.stall_total_ms = snap.stall_total_ms
        self.copy_ms = snap.copy_ms
        self.logical_bytes = snap.logical_bytes
        self.physical_bytes = snap.physical_bytes
        self.error = snap.error


def timing_row(snap: SnapshotRecord) -> dict:
    return {
        "snapshot_id": snap.id,
        "source_id": snap.source_id,
        "mode": snap.mode,
        "pause_ms": snap.pause_ms,
        "stall_ms": snap.stall_ms,
        "stall_total_ms": snap.stall_total_ms,
        "round_trip_ms": snap.round_trip_ms,
        "copy_ms": snap.copy_ms,
        "ready_ms": snap.ready_ms,
        "created_at": snap.created_at,
    }
