"""Checkpoints taken ahead, as methods of the SandboxTree (which provides
``_lock``, ``_settled``, ``limits``, ``_branch_slots`` and the branch
records): when a cell that carried a notebook checkpoint ends, the diff
of the sandbox's state is taken at once, after the cell's result is out,
while the notebook reads that result and sends its next cell. The next
cell's checkpoint is then that diff, already made: its record is written
with the next cell's mark (``adopt_prepared``), and the cell starts without
a pause in front of it (docs/time-travel.md, "when the checkpoint is
taken").

Invariants:
- ``rec.preparing`` is set, under ``_lock``, in the same step that ends the
  cell (``busy`` cleared, ``ended_touched`` noted), and cleared when the
  diff is made or given up; a cell, program or branch claimed meanwhile
  waits for it (``wait_settled``), so the diff never holds any of the next
  cell's effects.
- A prepared diff is used only while ``rec.touched`` is what it was when
  its cell ended: every other use of the sandbox through the daemon
  (``running``: a program, a pushed value, a file, a branch) moves it on.
  A prepared diff not used is a link of the sandbox's chain with no record;
  the next snapshot of the sandbox folds it in (``fold_unused``: the new
  diff's pages are copied into it, outside the pause), so no state is lost
  and no memory stays behind it; a sandbox that dies takes it along."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import vmm
from .records import SandboxRecord

SETTLE_WAIT_S = 60.0  # longest wait for a diff being prepared (a 1.5 GiB cell's: ~0.7 s)


@dataclass(frozen=True)
class Prepared:
    snap: vmm.Snapshot
    touched: int  # the sandbox's ``touched`` when its cell ended
    round_trip_ms: float
    taken_at: float  # time.time() once it holds the state


class CheckpointsAhead:
    def wait_settled(self, rec: SandboxRecord) -> None:
        """Returns once no diff is being prepared for the sandbox (or after
        SETTLE_WAIT_S, when the caller goes on and finds the state itself).
        ``_lock`` held."""
        self._settled.wait_for(lambda: not rec.preparing, timeout=SETTLE_WAIT_S)

    def prepare_checkpoint(self, rec: SandboxRecord, vm: vmm.Sandbox) -> None:
        """Takes the diff the next checkpointed cell will use. Anything that
        stands in the way (the daemon's limits, its branch slots, a sandbox
        that died) only leaves it untaken: that cell then takes its own."""
        prepared = None
        try:
            with self._lock:
                ok = rec.preparing and rec.status == "running" and rec.vm is vm
                touched = rec.ended_touched
            if ok and self._branch_slots.acquire(blocking=False):
                try:
                    self.limits.check_branch(self._running_count(), 0, 0, "a checkpoint")
                    started = time.monotonic()
                    snap = vm.snapshot("diff", True)
                    rt = (time.monotonic() - started) * 1000
                    prepared = Prepared(snap, touched, rt, time.time())
                finally:
                    self._branch_slots.release()
        except Exception:
            prepared = None  # refused or failed: the next cell's checkpoint says why
        finally:
            with self._lock:
                rec.preparing = False
                # (rec.prepared is None here: one cell ends at a time)
                kept = prepared is not None and rec.status == "running" and rec.vm is vm
                if kept:
                    rec.prepared = prepared
                self._settled.notify_all()
            if prepared is not None and not kept:
                self.close_dropped(prepared)  # the sandbox was killed meanwhile

    def adopt_prepared(self, rec: SandboxRecord, checkpoint: dict) -> dict | None:
        """The record of the checkpoint ``checkpoint`` (the cell about to
        run), made of the prepared diff if it still holds the sandbox's
        present state; None when there is none to use. The daemon's limits
        are asked as for the diff the cell would take otherwise."""
        with self._lock:
            prepared = rec.prepared
            if prepared is None or prepared.touched != rec.touched or prepared.snap.closed:
                return None
        self.limits.check_branch(self._running_count(), 0, 0, f"a diff branch of {rec.id}")
        with self._lock:
            if rec.prepared is not prepared:
                return None
            rec.prepared = None
        snap = self._new_snapshot_record(rec, "diff", None, persist=False)
        with self._lock:
            snap.checkpoint, snap.created_at = checkpoint, prepared.taken_at  # when the state was
            snap.ready_ms = prepared.round_trip_ms  # it was ready when its call returned
        # Ready already: its record reaches state.json behind the cell, which
        # does not wait for that write (a restart loses the checkpoint either
        # way: it is not on disk).
        self._attach_snapshot(snap, prepared.snap, prepared.round_trip_ms, persist=False)
        self._later_writes.ask()
        return self.snapshot_dict(snap.id)

    def fold_unused(self, rec: SandboxRecord, snap_vm: vmm.Snapshot) -> None:
        """After a new snapshot of the sandbox: a prepared diff left unused
        goes, folded into the new one when that builds on it."""
        with self._lock:
            prepared, rec.prepared = rec.prepared, None
        if prepared is None or prepared.snap is snap_vm:
            return
        if snap_vm.parent is not prepared.snap:
            self.close_dropped(prepared)
            return
        try:
            snap_vm.fold_parent()
        except vmm.SandboxError:
            pass  # it stays a link of the chain, under the new snapshot

    def drop_prepared(self, rec: SandboxRecord) -> Prepared | None:
        """The sandbox is gone: its prepared diff too, to be closed by the
        caller once ``_lock`` is released (``close_dropped``). ``_lock`` held."""
        prepared, rec.prepared = rec.prepared, None
        return prepared

    @staticmethod
    def close_dropped(prepared: Prepared | None) -> None:
        if prepared is not None and not prepared.snap.dependents():
            prepared.snap.close()
