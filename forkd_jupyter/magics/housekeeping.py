"""Housekeeping the magics and the tree widget share.

- Clearing dead sandboxes: a dead sandbox's record goes when it is killed
  again (``DELETE /v1/sandboxes/ID`` on a dead one); snapshots taken of it
  stay. Only records dead when listed are touched; a record another client
  removed meanwhile is not an error.
- A cascade delete kills the snapshot's running dependents first, one
  request each, all at once (so the caller can count them as they go and
  the daemon may overlap them), then the daemon deletes the rest. What a
  kill costs is the daemon's: about 0.16 s for an idle child on a 2-core
  machine, barely less in parallel there."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..client import Conflict, Controller, ForkdError

MAX_PARALLEL_KILLS = 16


def dead_sandboxes(controller: Controller) -> list[dict]:
    return [s for s in controller.list_sandboxes() if s["status"] == "dead"]


def clear_dead(controller: Controller) -> list[str]:
    """Removes every dead sandbox's record; returns the ids removed."""
    cleared = []
    for record in dead_sandboxes(controller):
        try:
            controller.kill_sandbox(record["id"])
        except ForkdError as e:
            if e.status != 404:
                raise
        cleared.append(record["id"])
    return cleared


def delete_snapshot(
    controller: Controller,
    snapshot: str,
    cascade: bool,
    on_killed: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Deletes a snapshot (with ``cascade``, its dependents too); returns
    the ids deleted or killed with it, as the daemon's cascade would.
    ``on_killed(done, total)`` follows the parallel kills."""
    try:
        return controller.delete_snapshot(snapshot, cascade=False)
    except Conflict as e:
        if not cascade:
            raise
        dependents = e.dependents
    running = {s["id"] for s in controller.list_sandboxes() if s["status"] == "running"}
    doomed = [d for d in dependents if d in running]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_KILLS, len(doomed)))) as pool:
        for _ in pool.map(controller.kill_sandbox, doomed):
            done += 1
            if on_killed is not None:
                on_killed(done, len(doomed))
    deleted = controller.delete_snapshot(snapshot, cascade=True)
    return deleted + [d for d in doomed if d not in deleted]
