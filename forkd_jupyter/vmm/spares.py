"""When a sandbox's spare memory goes back to the host.

Memory the guest unmaps is kept by the VMM as *spares*, zeroed, for the
guest's next mapping there (docs/design.md, "Freed memory"): a page the
host handed back costs the guest ~13 us to fault in again. Spares go back
to the host once the sandbox has had no request for ``KEEP_IDLE_S``, so
cells sent back to back (Run All, a loop of runs, a notebook's cells with
their checkpoints) reuse the memory the cell before freed, and an idle
sandbox holds none a moment later; and at once before a snapshot that
would copy them (``Sandbox.snapshot``).

Invariant: at most one timer per sandbox is pending; a trim never runs
while a request is active (the request's end schedules the next one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

KEEP_IDLE_S = 1.0


class SpareTrimmer:
    def __init__(self, trim: Callable[[], None], busy: Callable[[], bool]) -> None:
        self._trim = trim
        self._busy = busy
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def after_request(self) -> None:
        """A request ended: trim once KEEP_IDLE_S pass without another."""
        timer = threading.Timer(KEEP_IDLE_S, self._when_idle)
        timer.daemon = True
        with self._lock:
            old, self._timer = self._timer, timer
            timer.start()
        if old is not None:
            old.cancel()

    def now(self) -> None:
        """Trims at once (before a snapshot that would copy the spares)."""
        self.cancel()
        self._trim()

    def cancel(self) -> None:
        with self._lock:
            old, self._timer = self._timer, None
        if old is not None:
            old.cancel()

    def _when_idle(self) -> None:
        with self._lock:
            if self._timer is None or threading.current_thread() is not self._timer:
                return  # replaced or cancelled meanwhile
            self._timer = None
        if not self._busy():
            self._trim()
