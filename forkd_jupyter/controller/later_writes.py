"""Rewrites of state.json that no request waits for (a notebook
checkpoint's record, made ready as its cell starts: ahead.py): asked for
at any rate, written by one thread, as many asks as come in meanwhile in
one write of the newest state.

Invariants: after ``ask`` returns, a write that starts after the ask is
coming (the thread is woken and writes whatever the records hold then);
the thread exists only once asked and waits on a condition in between, so
an idle daemon spends no CPU on it; ``stop`` writes what is pending
before it returns."""

from __future__ import annotations

import threading
from collections.abc import Callable


class LaterWrites:
    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def ask(self) -> None:
        with self._cond:
            if self._stopping:
                return  # the daemon's last write covers it
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="state-writes", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if not self._pending:
                    return
                self._pending = False
            try:
                self._write()
            except OSError:
                pass  # the next write (every record change makes one) tries again

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
