"""The event bus behind ``GET /v1/events``: every change to a record is
published once, in order, with an increasing ``seq``.

Invariants: ``seq`` values are assigned under the lock, so subscribers see
events in ``seq`` order; the last ``HISTORY`` events are kept for replay
(``since``); a subscriber's callback must not block (the daemon's queues
hand events to the IO loop with ``call_soon_threadsafe``)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

Event = dict
Subscriber = Callable[[Event], None]
HISTORY = 2000


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: set[Subscriber] = set()
        # Tells this daemon's sequence numbers from a previous daemon's.
        self.boot = os.urandom(4).hex()

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, type_: str, action: str, key: str, record: dict) -> None:
        with self._lock:
            self._seq += 1
            event = {"type": type_, "action": action, "seq": self._seq, "time": time.time()}
            event[key] = record
            self._history.append(event)
            for deliver in list(self._subscribers):
                deliver(event)

    def can_replay(self, since: int) -> bool:
        """Whether every event after ``since`` is still kept."""
        with self._lock:
            if since > self._seq:
                return False  # a number this daemon never gave
            oldest = self._history[0]["seq"] if self._history else self._seq + 1
            return since >= oldest - 1

    def subscribe(self, deliver: Subscriber, since: int | None = None) -> Callable[[], None]:
        """Replays the kept events after ``since`` then delivers new ones;
        returns the function that unsubscribes."""
        with self._lock:
            if since is not None:
                for event in self._history:
                    if event["seq"] > since:
                        deliver(event)
            self._subscribers.add(deliver)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.discard(deliver)

        return unsubscribe
