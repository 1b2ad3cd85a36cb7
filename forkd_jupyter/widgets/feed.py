"""A background thread that follows the daemon's event stream and calls
back, at most once per ``interval``, when anything changed. Widgets use it
to refresh themselves.

Invariants: at most one refresh runs at a time and refreshes are coalesced
(a burst of events makes one call, never a backlog); the thread reconnects
after the stream breaks (a daemon restart) and exits promptly after
``stop``; a failing callback never kills the thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..client import Controller, ForkdError

RECONNECT_S = 1.0


class EventFeed:
    def __init__(
        self,
        controller: Controller,
        on_change: Callable[[], None],
        since: int | None = None,
        interval: float = 0.2,
    ) -> None:
        self._controller = controller
        self._on_change = on_change
        self._interval = interval
        self._stopped = threading.Event()
        self._dirty = threading.Event()
        self._stream = None
        self._since = since
        self._reader = threading.Thread(target=self._read, name="forkd-events", daemon=True)
        self._refresher = threading.Thread(target=self._refresh, name="forkd-refresh", daemon=True)
        self._reader.start()
        self._refresher.start()

    def _read(self) -> None:
        since = self._since
        while not self._stopped.is_set():
            try:
                self._stream = self._controller.events(since=since)
                for event in self._stream:
                    since = event["seq"]
                    self._dirty.set()
                    if self._stopped.is_set():
                        return
            except (ForkdError, OSError, ValueError):
                pass
            self._dirty.set()  # whatever happened while disconnected
            self._stopped.wait(RECONNECT_S)

    def _refresh(self) -> None:
        while not self._stopped.is_set():
            if not self._dirty.wait(0.5):
                continue
            self._dirty.clear()
            try:
                self._on_change()
            except Exception:  # noqa: BLE001 - the next change retries
                pass
            self._stopped.wait(self._interval)

    def stop(self) -> None:
        self._stopped.set()
        self._dirty.set()
        stream = self._stream
        if stream is not None:
            stream.close()  # wakes the reader blocked on the connection

    @property
    def alive(self) -> bool:
        return self._reader.is_alive() or self._refresher.is_alive()
