"""The controller's on-disk state: ``state.json`` (records and id counters)
and ``snapshots/<id>/`` (snapshots saved to disk) in the state directory.

Invariant: ``state.json`` is replaced atomically (write a temporary file,
rename), so a daemon killed at any moment leaves the previous or the new
state, never a torn one. A ``durable`` state (one that points at a newly
saved copy, or the daemon's first and last) is fsynced before the rename,
so it also outlives a crash of the machine; the others hold only what a
restarted daemon reports as lost anyway, and skip the fsync (it was most of
a branch's time outside the pause)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import saving
from .records import SandboxRecord, SnapshotRecord

FORMAT = 1
DEAD_WITH_DAEMON = "daemon restarted"
LOST_WITH_DAEMON = "lost when the daemon stopped (it was not saved to disk)"
CUT_BY_DAEMON = "the daemon stopped while this snapshot was being written"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.snapshots_dir = root / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self._path = root / "state.json"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.snapshots_dir / snapshot_id

    def save(
        self,
        counters: dict,
        sandboxes: list[SandboxRecord],
        snapshots: list[SnapshotRecord],
        durable: bool = True,
    ) -> None:
        doc = {
            "format": FORMAT,
            "counters": counters,
            "sandboxes": [s.to_dict() for s in sandboxes],
            "snapshots": [s.to_dict() for s in snapshots],
        }
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            # Rewritten on every change: compact, and through json.dumps,
            # whose C encoder is ~10x json.dump's pure-Python one.
            f.write(json.dumps(doc, separators=(",", ":")))
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, self._path)

    def load(self) -> tuple[dict, list[SandboxRecord], list[SnapshotRecord]]:
        """The previous daemon's state, as this daemon must report it: its
        running sandboxes are dead, those already dead are forgotten, its
        snapshots are ready only if they were saved to disk."""
        try:
            doc = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}, [], []
        except (OSError, ValueError) as e:
            broken = self._path.with_suffix(".broken")
            os.replace(self._path, broken)
            raise RuntimeError(f"{self._path} was unreadable ({e}); kept as {broken}") from None
        if doc.get("format") != FORMAT:
            return {}, [], []
        sandboxes = []
        for d in doc.get("sandboxes", []):
            rec = SandboxRecord.from_dict(d)
            if rec.status == "dead":
                continue
            rec.status, rec.busy, rec.exit_reason = "dead", False, DEAD_WITH_DAEMON
            sandboxes.append(rec)
        snapshots = []
        for d in doc.get("snapshots", []):
            rec = SnapshotRecord.from_dict(d)
            saved = rec.saved_path and Path(rec.saved_path).exists()
            if not saved:
                if rec.status == "failed":
                    continue  # reported once, after the restart that lost it
                reason = CUT_BY_DAEMON if rec.status == "writing" else LOST_WITH_DAEMON
                rec.status, rec.error, rec.saved_path = "failed", reason, None
            snapshots.append(rec)
        # Copies no record points at: a save cut by the previous daemon's end.
        saving.sweep(self.snapshots_dir, {s.saved_path for s in snapshots if s.saved_path})
        return dict(doc.get("counters", {})), sandboxes, snapshots
