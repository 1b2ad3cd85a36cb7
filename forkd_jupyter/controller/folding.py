"""Folding a snapshot into the one diff built on it, as a method of the
SandboxTree (which provides ``_lock``, ``dependents``, ``snapshot``,
``_changed`` and the records): the way a chain of per-cell checkpoints
drops its oldest link within its budget (docs/time-travel.md).

Invariant: a snapshot is folded only when exactly one snapshot builds on it
and no child of it runs; the one built on it keeps its id, its tag and its
exact state, and afterwards builds on the folded snapshot's parent."""

from __future__ import annotations

import shutil

from .. import vmm
from . import errors as E


class Folding:
    def fold_snapshot(self, key: str) -> dict:
        """Folds snapshot ``key`` into the diff built on it; returns that
        diff's record."""
        snap = self.snapshot(key)
        kids, built_on = self.dependents(snap)
        if kids or len(built_on) != 1:
            deps = [r.id for r in kids] + [s.id for s in built_on]
            why = (
                f"it is used by {', '.join(deps)}"
                if kids or built_on
                else "no snapshot builds on it (delete it instead)"
            )
            raise E.SnapshotBusy(f"snapshot {snap.id} cannot be folded: {why}", dependents=deps)
        [heir] = built_on
        with self._lock:
            for rec in (snap, heir):
                rec.refresh_from_vm()
                if rec.status != "ready":
                    raise E.SnapshotBusy(f"snapshot {rec.id} is {rec.status}", dependents=[])
                if rec.vm is None or rec.vm.closed:
                    raise E.BadRequest(f"snapshot {rec.id} is not in this daemon's memory")
            heir_vm = heir.vm
        try:
            heir_vm.fold_parent()
        except vmm.SnapshotBusy as e:
            raise E.SnapshotBusy(str(e), dependents=e.dependents) from None
        except vmm.SandboxError as e:
            raise E.BadRequest(str(e)) from None
        with self._lock:
            heir.parent = snap.parent
            heir.refresh_from_vm()
            snap.vm = None
            self._snapshots.pop(snap.id, None)
        self._forget_shipped(snap.id)
        self._changed(snap, "deleted")  # state.json rewritten: with the heir as it is now
        self._changed(heir, "updated")
        if snap.saved_path:
            shutil.rmtree(self.store.snapshot_path(snap.id), ignore_errors=True)
        return self.snapshot_dict(heir.id)
