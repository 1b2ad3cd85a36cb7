"""Ready children: for each warm base a spawn used, one more child spawned,
re-seeded and rehearsed in the background, handed to the next spawn of that
base. A child's first cell pays for every page the cell path touches for
the first time in that child (a copy-on-write copy and a KVM mapping each,
~600 of them for ``1 + 1``); a ready child paid for them in a rehearsed
cell (run as a stored cell, then forgotten), while nobody was waiting.

A base keeps one ready child; spawns that come back to back (a spawn
finding none ready, or waiting for one under way) raise that to
``BURST_DEPTH`` for ``BURST_WINDOW_S``, so the next spawns of the burst
find theirs made meanwhile. Extra children past the depth are closed when
the window ends (at the next fill of that base).

Invariants:
- at most ``depth(key)`` ready children and fills together per base (an
  extra made before the window ended stays until it is taken or the next
  fill closes it);
- a ready child is a child of the base its key names, re-seeded, with a
  rehearsed cell run (no trace in In, Out, the _ names or the execution
  count);
- a base that is forgotten (closed) never gets a ready child stored after
  its ``drop``: a fill stores only while the base's snapshot is open, and
  ``drop`` runs after the snapshot is closed;
- a failed fill is only a cold spawn later: its child is closed, the error
  kept for ``status``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from .. import vmm

# What the rehearsal runs (Sandbox.rehearse: as a stored cell, then
# forgotten): a statement, printed output and a result.
WARM_CELL = "_fj_ready = 1 + 1\nprint(end='')\n_fj_ready"
# How long a spawn waits for a fill already under way before spawning a
# child itself (a fill takes ~0.1 s; this only bounds a stuck one).
FILL_WAIT_S = 5.0
# Ready children per base while spawns come back to back
# (FORKD_JUPYTER_READY_BURST_DEPTH, at least 1), and for how long after the
# last spawn that found none ready.
BURST_DEPTH = max(1, int(os.environ.get("FORKD_JUPYTER_READY_BURST_DEPTH", "2") or 2))
BURST_WINDOW_S = 60.0


def ready_children_enabled() -> bool:
    """FORKD_JUPYTER_READY_CHILDREN=0 turns ready children off."""
    return os.environ.get("FORKD_JUPYTER_READY_CHILDREN", "1") != "0"


class ReadyChildren:
    def __init__(self, enabled: bool = True, room: Callable[[], bool] = lambda: True) -> None:
        self.enabled = enabled
        self._room = room  # False: the host is short of memory, fill nothing
        self._cond = threading.Condition()  # guards everything below
        self._ready: dict[str, list[vmm.Sandbox]] = {}
        self._filling: dict[str, int] = {}
        self._missed: dict[str, float] = {}  # last spawn that found none ready, per base
        self._last_error: dict[str, str] = {}
        self._served: dict[str, int] = {}  # spawns a ready child served, per base
        self._closed = False

    def depth(self, key: str) -> int:
        """Ready children the base keeps now. Under the lock."""
        missed = self._missed.get(key)
        burst = missed is not None and time.monotonic() - missed < BURST_WINDOW_S
        return BURST_DEPTH if burst else 1

    def take(self, key: str, wait: bool = True) -> vmm.Sandbox | None:
        """One of the base's ready children (waiting for a fill under way,
        if wait), or None."""
        deadline = time.monotonic() + FILL_WAIT_S
        with self._cond:
            if not self._ready.get(key) and key in self._filling:
                # None ready though one was made or is being made: spawns
                # come back to back, keep more (the base's first spawn is
                # no burst).
                self._missed[key] = time.monotonic()
            while wait and self._filling.get(key) and not self._ready.get(key):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready = self._ready.get(key)
            vm = ready.pop(0) if ready else None
            if vm is not None:
                self._served[key] = self._served.get(key, 0) + 1
            return vm

    def fill(self, key: str, snapshot: vmm.Snapshot) -> None:
        """Starts making the base's next ready children, up to its depth
        with those there or under way; closes extras past it."""
        extra: list[vmm.Sandbox] = []
        with self._cond:
            if not self.enabled or self._closed:
                return
            ready = self._ready.setdefault(key, [])
            depth = self.depth(key)
            while len(ready) > depth:
                extra.append(ready.pop())
            start = depth - len(ready) - self._filling.get(key, 0)
            if start > 0 and not self._room():
                start = 0
            self._filling[key] = self._filling.get(key, 0) + max(start, 0)
        for vm in extra:
            _close(vm)
        for _ in range(max(start, 0)):
            threading.Thread(
                target=self._fill, args=(key, snapshot), name="ready-child", daemon=True
            ).start()

    def _fill(self, key: str, snapshot: vmm.Snapshot) -> None:
        vm = None
        error = None
        try:
            [vm] = snapshot.spawn(1)
            vm.refresh()
            vm.rehearse(WARM_CELL)
        except Exception as e:  # noqa: BLE001 - the next spawn is cold, nothing more
            error = f"{type(e).__name__}: {e}"
        with self._cond:
            self._filling[key] -= 1
            if error is None and not self._closed and not snapshot.closed:
                self._ready.setdefault(key, []).append(vm)
                vm = None
                self._last_error.pop(key, None)
            elif error is not None and not snapshot.closed:  # (a gone base keeps no record)
                self._last_error[key] = error
            self._cond.notify_all()
        if vm is not None:
            _close(vm)

    def drop(self, key: str) -> None:
        """Closes the base's ready child (its base is gone)."""
        with self._cond:
            ready = self._ready.pop(key, [])
            self._last_error.pop(key, None)
            self._served.pop(key, None)
            self._missed.pop(key, None)
        for vm in ready:
            _close(vm)

    def status(self, key: str) -> dict:
        with self._cond:
            return {
                "ready_children": len(self._ready.get(key, ())),
                "ready_served": self._served.get(key, 0),
                "ready_error": self._last_error.get(key),
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            ready = [vm for vms in self._ready.values() for vm in vms]
            self._ready = {}
            self._cond.notify_all()
        for vm in ready:
            _close(vm)


def _close(vm: vmm.Sandbox) -> None:
    try:
        vm.close()
    except vmm.SandboxError:
        pass  # a child that died idle: nothing of it is anyone's
