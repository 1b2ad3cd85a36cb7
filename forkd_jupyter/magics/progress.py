"""A progress bar in the cell's output while a magic waits on a slow call
(spawning sandboxes, a full snapshot, children of a branch): the steps done
of the steps asked, and the seconds spent, updated twice a second.

Invariants: the bar is displayed and closed on the kernel's main thread
(so it belongs to the running cell); only its value and label change from
the ticker thread; outside a kernel (a terminal IPython) nothing is shown.
Closing removes the bar, in the live notebook and in the saved one (its
output is replaced by an empty one): what was made is the magic's own
output."""

from __future__ import annotations

import threading
import time
from types import TracebackType

TICK_S = 0.5


class CellProgress:
    def __init__(self, what: str, total: int = 1) -> None:
        self._what, self._total, self._done = what, total, 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._bar = self._label = self._box = self._handle = None

    def __enter__(self) -> CellProgress:
        if not _in_kernel():
            return self
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.IntProgress(value=0, min=0, max=self._total, bar_style="info")
        self._label = ipywidgets.Label(self._text())
        self._box = ipywidgets.HBox([self._bar, self._label])
        self._box.add_class("forkd-progress")
        self._handle = display(self._box, display_id=True)
        threading.Thread(target=self._tick, name="forkd-progress", daemon=True).start()
        return self

    def step(self, n: int = 1) -> None:
        self.set_done(self._done + n, self._total)

    def set_done(self, done: int, total: int) -> None:
        """``done`` steps of ``total`` (a total learnt on the way)."""
        self._done, self._total = done, total
        if self._bar is not None:
            self._bar.max = total
            self._bar.value = done
            self._label.value = self._text()

    def _text(self) -> str:
        seconds = time.monotonic() - self._started
        count = f" {self._done} of {self._total}," if self._total > 1 else ""
        return f"{self._what}…{count} {seconds:.1f} s"

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            if self._label is not None:
                self._label.value = self._text()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._box is not None:
            self._box.close()
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
