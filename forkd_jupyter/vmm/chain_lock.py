"""The lock between reading snapshot chains and folding them.

Spawning from a snapshot and saving one walk its chain of diffs down to the
full image; folding a parent into a diff (``Snapshot.fold_parent``) rewires
a link of some chain. Readers share the lock, a fold holds it alone, so no
walk ever sees a link half rewired and walks never wait for each other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_cond = threading.Condition()
_readers = 0
_folding = False


@contextmanager
def reading() -> Iterator[None]:
    global _readers
    with _cond:
        _cond.wait_for(lambda: not _folding)
        _readers += 1
    try:
        yield
    finally:
        with _cond:
            _readers -= 1
            _cond.notify_all()


@contextmanager
def folding() -> Iterator[None]:
    global _folding
    with _cond:
        _cond.wait_for(lambda: not _folding and _readers == 0)
        _folding = True
    try:
        yield
    finally:
        with _cond:
            _folding = False
            _cond.notify_all()
