"""What SIGINT does inside the agent.

The host interrupts a cell by delivering SIGINT to the guest. CPython runs
the Python-level handler between bytecodes of the main thread (and after a
system call fails with EINTR), so the handler decides where the resulting
KeyboardInterrupt may appear.

Invariants:

* KeyboardInterrupt is raised only while the gate is *open* (a request's
  code is running, see :meth:`InterruptGate.call`) and no control frame is
  being written (:meth:`InterruptGate.hold`). A frame is therefore never
  cut short, and an interrupt while the agent is idle is dropped.
* A SIGINT that arrives while held is remembered and raised when the hold
  ends, if the gate is still open; ``pending`` is cleared when a request
  starts, so an interrupt meant for one request never hits the next one.
* While the gate is open and nothing is held, SIGINT's handler is Python's
  own ``signal.default_int_handler``, as in a plain interpreter or a
  notebook kernel: code that checks for it (``asyncio.run`` installs its
  own handler then, and an interrupt cancels its main task) sees it. The
  agent's handler is back whenever the gate is shut or a frame is written
  (from the main thread; other threads never receive the exception).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class InterruptGate:
    def __init__(self) -> None:
        self.open = False
        self.pending = False
        self._held = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)

    def reinstall_if_default(self) -> None:
        """Takes SIGINT back if code reset it to Python's default handler
        (which raises anywhere); a handler the user installed is kept."""
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.install()

    def _hand_to_python(self) -> None:
        if signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _take_back(self) -> bool:
        """Ours again if it was Python's; whether it was."""
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.install()
            return True
        return False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.open and not self._held:
            raise KeyboardInterrupt
        self.pending = True

    def call(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, KeyboardInterrupt | None]:
        """Runs fn with the gate open; returns (value, None) or, when it was
        interrupted, (None, the KeyboardInterrupt). Other exceptions pass.

        An interrupt landing just as fn returns is reported as an interrupt:
        the value is lost but nothing half-done escapes."""
        self.pending = False
        self.open = True
        try:
            try:
                self._hand_to_python()
                return fn(*args), None
            finally:
                self.open = False
                self._take_back()
        except KeyboardInterrupt as e:
            return None, e

    def hold(self) -> _Hold:
        """Context manager: no KeyboardInterrupt inside; one that arrived
        meanwhile is raised on exit if the gate is open."""
        return _Hold(self)


class _Hold:
    __slots__ = ("gate", "handed_back")

    def __init__(self, gate: InterruptGate) -> None:
        self.gate = gate
        self.handed_back = False

    def __enter__(self) -> None:
        gate = self.gate
        gate._held += 1
        if threading.current_thread() is threading.main_thread():
            self.handed_back = gate._take_back()  # a frame is never cut short

    def __exit__(self, *exc: object) -> None:
        gate = self.gate
        gate._held -= 1
        if self.handed_back:
            gate._hand_to_python()
        if gate._held == 0 and gate.open and gate.pending and exc[0] is None:
            gate.pending = False
            raise KeyboardInterrupt
