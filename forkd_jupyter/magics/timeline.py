"""A sandbox's history of checkpoints, read from the daemon's records
(docs/time-travel.md): the checkpoints of the sandbox itself, then those of
the sandbox it was checked out from up to the checkpoint it started from,
and so on up its lineage. Kept in the daemon only, so a restarted kernel
finds the same history.

A checkpoint record's ``checkpoint`` is {"cell": N, "line": ..., "after":
K}: taken just before cell N ran, so it holds the state after cell K; with
"cell" None it is the state a checkout left behind (after cell K)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checkpoint:
    snapshot: str
    cell: int | None  # None: the state a checkout left behind
    line: str
    after: int | None
    created_at: float
    bytes: int

    @classmethod
    def of(cls, record: dict) -> Checkpoint:
        mark = record["checkpoint"]
        return cls(
            record["id"],
            mark["cell"],
            mark.get("line", ""),
            mark.get("after"),
            record["created_at"],
            record.get("physical_bytes") or 0,
        )


def _ready_checkpoint(snapshot: dict) -> bool:
    return bool(snapshot.get("checkpoint")) and snapshot["status"] == "ready"


def history(sandbox_id: str, sandboxes: list[dict], snapshots: list[dict]) -> list[Checkpoint]:
    """The checkpoints behind the sandbox's state, oldest first."""
    by_sandbox = {s["id"]: s for s in sandboxes}
    by_snapshot = {s["id"]: s for s in snapshots}
    out: list[Checkpoint] = []
    seen: set[str] = set()
    current, until = by_sandbox.get(sandbox_id), float("inf")
    while current is not None and current["id"] not in seen:
        seen.add(current["id"])
        out += [
            Checkpoint.of(s)
            for s in snapshots
            if s["source_id"] == current["id"] and _ready_checkpoint(s) and s["created_at"] <= until
        ]
        origin = by_snapshot.get(current.get("parent_snapshot") or "")
        if origin is None:
            break
        until = origin["created_at"]
        current = by_sandbox.get(origin["source_id"])
    return sorted(out, key=lambda c: c.created_at)


def position(sandbox: dict, past: list[Checkpoint]) -> tuple[str | None, int | None]:
    """(the checkpoint whose state the sandbox still has, or None; the cell
    whose state it has, or None). A sandbox checked out from the last
    checkpoint of its history, with no checkpoint of its own since, is still
    at it; otherwise it ran the last checkpoint's cell."""
    if not past:
        return None, None
    last = past[-1]
    at = last.snapshot if sandbox.get("parent_snapshot") == last.snapshot else None
    if at is not None or last.cell is None:
        return at, last.after
    return None, last.cell


def everywhere(name: str, sandboxes: list[dict], snapshots: list[dict]) -> list[Checkpoint]:
    """Every checkpoint of every sandbox that ever had this name (abandoned
    futures included), oldest first: where `checkout K` looks when the
    current history has no state after cell K."""
    named = {s["id"] for s in sandboxes if s.get("name") == name}
    return sorted(
        (Checkpoint.of(s) for s in snapshots if s["source_id"] in named and _ready_checkpoint(s)),
        key=lambda c: c.created_at,
    )
