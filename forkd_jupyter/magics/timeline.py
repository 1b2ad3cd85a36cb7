"""A sandbox's history of checkpoints, read from the daemon's records
(docs/time-travel.md): the checkpoints of the sandbox itself, then those of
the sandbox it was checked out from up to the checkpoint it started from,
and so on up its lineage. Kept in the daemon only, so a restarted kernel
finds the same history.

A checkpoint record's ``checkpoint`` is {"cell": N, "line": ..., "after":
K}: taken just before cell N ran, so it holds the state after cell K."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checkpoint:
    snapshot: str
    cell: int
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
            if s["source_id"] == current["id"]
            and s.get("checkpoint")
            and s["status"] == "ready"
            and s["created_at"] <= until
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
    if sandbox.get("parent_snapshot") == last.snapshot:
        return last.snapshot, last.after
    return None, last.cell
