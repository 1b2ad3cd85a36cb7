"""A background thread that follows the daemon's event stream and calls
back when anything changed. Widgets use it to refresh themselves.

Each connection starts with a resynchronisation: the daemon's current
sequence number is read, then the full state is refreshed, then events
after that number are followed. So a daemon that restarted (whose numbers
start again, whose sandboxes died with it) is never read through the old
numbers, and nothing that changed while the stream was down is missed.

Invariants: at most one refresh runs at a time and refreshes are coalesced
(a burst of events makes one call, never a backlog); the thread reconnects
after the stream breaks and exits promptly after ``stop``; a failing
callback never kills the thread; ``on_connection(None)`` is called once
connected, ``on_connection(reason)`` while the daemon cannot be reached.
The feed never starts a daemon: a stopped daemon stays stopped until
someone starts it (or ``reconnect`` is asked for after it was)."""

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
        on_connection: Callable[[str | None], None] | None = None,
    ) -> None:
        self._controller = controller
        self._on_change = on_change
        self._on_connection = on_connection or (lambda _reason: None)
        self._interval = interval
        self._stopped = threading.Event()
        self._dirty = threading.Event()
        self._wake = threading.Event()
        self._stream = None
        self._since = since
        self._reader = threading.Thread(target=self._read, name="forkd-events", daemon=True)
        self._refresher = threading.Thread(target=self._refresh, name="forkd-refresh", daemon=True)
        self._reader.start()
        self._refresher.start()

    def _read(self) -> None:
        since = self._since  # the first connection: the widget just refreshed
        while not self._stopped.is_set():
            try:
                if since is None:
                    since = self._controller.tree()["seq"]
                    self._dirty.set()  # the full state, from after `since`
                self._on_connection(None)
                self._stream = self._controller.events(since=since)
                for event in self._stream:
                    since = event["seq"]
                    self._dirty.set()
                    if self._stopped.is_set():
                        return
                reason = "the daemon's event stream ended"
            except (ForkdError, OSError, ValueError) as e:
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if self._stopped.is_set():
                return
            since = None  # resynchronise on the next connection
            self._on_connection(f"the daemon is unavailable ({reason}); reconnecting")
            self._wake.wait(RECONNECT_S)
            self._wake.clear()

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

    def reconnect(self) -> None:
        """Tries the daemon again now instead of at the next retry."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._dirty.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            stream.close()  # wakes the reader blocked on the connection

    @property
    def alive(self) -> bool:
        return self._reader.is_alive() or self._refresher.is_alive()
