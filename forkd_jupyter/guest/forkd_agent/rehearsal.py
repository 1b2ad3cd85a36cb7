"""A rehearsal: code run as a stored cell runs (history, result, display
hook), then forgotten. What the cell path writes is then this process's own
memory: in a child of a warm base, its copy-on-write copies and KVM's
mappings of them are made before a user waits for a first cell
(controller/ready_children.py).

Invariant: after ``restore`` every container and attribute ``Kept`` was
given is as it was: keys and items added since are gone, values replaced
since are back (by identity). The rehearsed cell must only add to history
and namespaces, never mutate an object in place.
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Callable

_MISSING = object()


class Kept:
    def __init__(self) -> None:
        self._dicts: list[tuple[dict, dict]] = []
        self._lists: list[tuple[list, int]] = []
        self._attrs: list[tuple[object, dict]] = []

    def dicts(self, *dicts: dict) -> None:
        self._dicts += [(d, dict(d)) for d in dicts]

    def lists(self, *lists: list) -> None:
        """Lists the cell only appends to."""
        self._lists += [(items, len(items)) for items in lists]

    def attrs(self, obj: object, *names: str) -> None:
        """Attributes to put back (one absent now is removed again)."""
        self._attrs.append((obj, {n: getattr(obj, n, _MISSING) for n in names}))

    def restore(self) -> None:
        for d, before in self._dicts:
            for key in [k for k in d if k not in before]:
                del d[key]
            for key, value in before.items():
                if d.get(key, _MISSING) is not value:
                    d[key] = value
        for items, n in self._lists:
            del items[n:]
        for obj, values in self._attrs:
            for name, value in values.items():
                if value is not _MISSING:
                    setattr(obj, name, value)
                elif hasattr(obj, name):
                    delattr(obj, name)


RunCell = Callable[[str, bool, bool], tuple[int, "dict | None"]]


def rehearse(run: RunCell, kept: Kept, code: str) -> dict | None:
    """Runs code as a stored cell with ``run`` and puts back what ``kept``
    holds (and the source cache, and the last error sys keeps); the cell's
    error, if any."""
    kept.dicts(linecache.cache)
    kept.attrs(sys, "last_type", "last_value", "last_traceback", "last_exc")
    try:
        _count, error = run(code, False, True)
    finally:
        kept.restore()
    return error
