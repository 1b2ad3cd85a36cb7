"""Clearing dead sandboxes: the one rule the magics, the tree widget and
the CLI share. A dead sandbox's record goes when it is killed again
(``DELETE /v1/sandboxes/ID`` on a dead one); snapshots taken of it stay.

Invariant: only records that are dead when listed are touched; a record
another client removed meanwhile is not an error."""

from __future__ import annotations

from ..client import Controller, ForkdError


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
