"""Background runs: a cell started on a sandbox whose output and result are
kept by the daemon, so a client can disconnect, reconnect and read on.

Invariants:
- A run's events get increasing ``seq`` numbers from 1, in the order the
  guest produced them. They are kept in a buffer capped at ``BUFFER_BYTES``:
  when it is over, the oldest output events go first (``dropped`` counts
  them); the last event (``result`` or ``error``) is never dropped.
- ``listeners`` are called (on the thread that added the event, without the
  lock) after each change; they must not block.
- At most ``MAX_FINISHED`` finished runs are kept; the oldest go first."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

BUFFER_BYTES = 4 << 20
MAX_FINISHED = 200
FINAL = ("result", "error")


@dataclass
class Run:
    id: str
    sandbox_id: str
    status: str = "running"  # running | done | failed | cancelled
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict | None = None
    error: dict | None = None
    dropped: int = 0
    cancel_requested: bool = False
    waiting_input: bool = False  # the cell waits in input() for POST .../stdin
    checkpoint: dict | None = None  # the snapshot record taken just before, when asked
    _events: deque = field(default_factory=deque)  # (seq, event, data, size)
    _next: int = 1
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: set[Callable[[], None]] = field(default_factory=set)

    def to_dict(self) -> dict:
        with self._lock:
            return {
                "id": self.id,
                "sandbox_id": self.sandbox_id,
                "status": self.status,
                "created_at": self.created_at,
                "finished_at": self.finished_at,
                "result": self.result,
                "error": self.error,
                "events": self._next - 1,
                "dropped": self.dropped,
                "waiting_input": self.waiting_input,
                "checkpoint": self.checkpoint,
            }

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def add(self, event: str, data: dict) -> None:
        size = len(json.dumps(data)) + 32
        with self._lock:
            self._events.append((self._next, event, data, size))
            self._next += 1
            self._bytes += size
            while self._bytes > BUFFER_BYTES and len(self._events) > 1:
                _, _, _, gone = self._events.popleft()
                self._bytes -= gone
                self.dropped += 1
        self._notify()

    def finish(self, status: str, result: dict | None, error: dict | None) -> None:
        with self._lock:
            self.waiting_input = False
            self.status, self.result, self.error = status, result, error
            self.finished_at = time.time()
        self.add("error" if error is not None else "result", error or result or {})

    def after(self, seq: int) -> tuple[list[tuple[int, str, dict]], bool]:
        """The kept events after ``seq``, and whether some after it were
        dropped (a gap the reader cannot fill)."""
        with self._lock:
            events = [(s, e, d) for s, e, d, _ in self._events if s > seq]
            first_kept = self._events[0][0] if self._events else self._next
            return events, seq + 1 < first_kept

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


class RunBook:
    """Every run of one daemon, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs[run.id] = run
            finished = [r for r in self._runs.values() if r.finished]
            for r in finished[: max(0, len(finished) - MAX_FINISHED)]:
                del self._runs[r.id]

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def of_sandbox(self, sandbox_id: str) -> list[Run]:
        with self._lock:
            return [r for r in self._runs.values() if r.sandbox_id == sandbox_id]
