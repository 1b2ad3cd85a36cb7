"""``PauseTimings``: how long each branch paused its source, by mode, as a
live chart with p50/p90 marks (the daemon's /v1/timings).

Timings are history: a branch whose snapshot was deleted since the widget
saw it keeps its row, marked ``deleted`` (drawn faded, still counted)."""

from __future__ import annotations

from pathlib import Path

import traitlets

from .base import LiveWidget

STATIC = Path(__file__).parent / "static"


class PauseTimings(LiveWidget):
    _esm = STATIC / "pause_timings.js"
    _css = STATIC / "widgets.css"

    timings = traitlets.List().tag(sync=True)

    def __init__(self, controller=None, session=None, live: bool = True, **kw) -> None:
        self._seen: dict[str, dict] = {}  # snapshot id -> its row, in first-seen order
        super().__init__(controller=controller, session=session, live=live, **kw)

    def refresh(self) -> None:
        rows = {t["snapshot_id"]: t for t in self._controller.timings()}
        for snapshot_id, row in self._seen.items():
            if snapshot_id not in rows:
                self._seen[snapshot_id] = {**row, "deleted": True}
        for snapshot_id, row in rows.items():
            self._seen[snapshot_id] = {**row, "deleted": False}
        self.timings = list(self._seen.values())

    def summary(self) -> dict[str, dict[str, float]]:
        """p50/p90 of pause_ms per mode, as the chart marks them, and of
        stall_ms (the longest freeze of the source) beside them."""
        out: dict[str, dict[str, float]] = {}
        for mode in ("live", "diff", "full"):
            rows = [t for t in self.timings if t["mode"] == mode]
            values = sorted(t["pause_ms"] for t in rows)
            if values:
                out[mode] = {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}
            stalls = sorted(t["stall_ms"] for t in rows if t.get("stall_ms") is not None)
            if stalls:
                out[mode]["stall_p50"] = percentile(stalls, 0.5)
                out[mode]["stall_p90"] = percentile(stalls, 0.9)
        return out


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (the same rule as the JS)."""
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
