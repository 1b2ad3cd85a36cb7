"""``BranchTree``: sandboxes and snapshots of the daemon as a live tree.

Traits synced with the front end: ``tree`` (the daemon's /v1/tree
document), ``timeline`` (in attach mode, the attached sandbox's
checkpoints, docs/time-travel.md), ``current`` (the notebook's current
sandbox, outlined),
``selected`` (the node the user clicked), ``show_dead`` (draw dead
sandboxes too; by default only the live lineage is drawn) and
``connection`` (why the daemon cannot be reached, if so).

Invariant: ``current`` mirrors the notebook's session (the same one
`%forkd` uses, whether the widget came from `%forkd tree` or was built
directly); every change of it goes through ``Session.set_current``, so the
tree, the magics and the JupyterLab panel never disagree."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import traitlets

from ..client import ForkdError
from ..magics.timeline import history
from .base import LiveWidget

STATIC = Path(__file__).parent / "static"


class BranchTree(LiveWidget):
    # timeline.js only defines functions branch_tree.js calls.
    _esm = "\n".join((STATIC / f).read_text() for f in ("timeline.js", "branch_tree.js"))
    _css = STATIC / "widgets.css"

    tree = traitlets.Dict().tag(sync=True)
    timeline = traitlets.Dict().tag(sync=True)
    current = traitlets.Unicode(allow_none=True, default_value=None).tag(sync=True)
    selected = traitlets.Unicode(allow_none=True, default_value=None).tag(sync=True)
    show_dead = traitlets.Bool(False).tag(sync=True)

    def __init__(self, controller=None, session=None, live: bool = True, **kw: Any) -> None:
        self._select_callbacks: list[Callable[[str], None]] = []
        super().__init__(controller=controller, session=session, live=live, **kw)
        self.current = self._session.current
        self._session.on_current_change(self._follow_session)

    def refresh(self) -> None:
        self.tree = self._controller.tree()
        self.timeline = self._timeline()

    def _timeline(self) -> dict:
        """The attached sandbox's checkpoints, from the tree document."""
        att = self._session.attachment
        if att is None:
            return {}
        nodes = self.tree.get("nodes", [])
        past = history(
            att.sandbox,
            [n for n in nodes if n["kind"] == "sandbox"],
            [n for n in nodes if n["kind"] == "snapshot"],
        )
        return {
            "sandbox": att.sandbox,
            "name": att.name,
            "at": att.at,
            "last_cell": att.last_cell,
            "checkpoints": [
                {"snapshot": c.snapshot, "cell": c.cell, "line": c.line, "after": c.after}
                for c in past
            ],
        }

    def checkout(self, snapshot_id: str) -> None:
        """What a click on a checkpoint, confirmed, asks: the attached
        sandbox goes back to it (as `%forkd checkout snap-N`)."""
        from IPython.core.error import UsageError

        from ..magics.time_travel import checkout_to

        try:
            checkout_to(self._session, snapshot_id)
        except UsageError:
            pass  # detached meanwhile: the timeline is gone with the next refresh

    def branch_from(self, snapshot_id: str) -> str:
        """A new sandbox from a checkpoint (the attached one stays)."""
        [record] = self._controller.spawn_sandboxes(snapshot_id=snapshot_id)
        return record["id"]

    def on_select(self, callback: Callable[[str], None]) -> None:
        """``callback(node_id)`` whenever the user clicks a node."""
        self._select_callbacks.append(callback)

    @traitlets.observe("selected")
    def _notify_select(self, change: dict) -> None:
        if change["new"]:
            for callback in list(self._select_callbacks):
                callback(change["new"])

    def make_current(self, sandbox_id: str) -> None:
        """Makes a running sandbox the notebook's current one."""
        node = next((n for n in self.tree.get("nodes", []) if n["id"] == sandbox_id), None)
        if node is None or node["kind"] != "sandbox" or node["status"] != "running":
            return
        self._session.set_current(sandbox_id)  # calls back _follow_session

    def spawn_current(self) -> str:
        """Spawns a fresh sandbox and makes it the current one (the way on
        from a dead current sandbox)."""
        [record] = self._controller.spawn_sandboxes(n=1)
        self._session.set_current(record["id"])
        return record["id"]

    def clear_dead(self) -> list[str]:
        """Removes the records of every dead sandbox; returns their ids."""
        from ..magics.housekeeping import clear_dead

        return clear_dead(self._controller)

    def close(self) -> None:
        self._session.remove_current_listener(self._follow_session)
        super().close()

    def _follow_session(self, sandbox_id: str | None) -> None:
        self.current = sandbox_id
        self.timeline = self._timeline()  # attached, detached or checked out

    def _on_front_end_message(self, widget: Any, content: dict, buffers: list) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "make_current":
            self.make_current(str(content.get("id")))
        elif kind in ("checkout", "branch_from") and isinstance(content.get("snapshot"), str):
            action = getattr(self, kind)
            snapshot = content["snapshot"]
            threading.Thread(target=_quietly(lambda: action(snapshot)), daemon=True).start()
        elif kind in ("spawn_current", "clear_dead"):
            # Slow calls leave the kernel's message loop free.
            action = self.spawn_current if kind == "spawn_current" else self.clear_dead
            threading.Thread(target=_quietly(action), daemon=True).start()
        else:
            super()._on_front_end_message(widget, content, buffers)


def _quietly(action: Callable[[], object]) -> Callable[[], None]:
    """Runs ``action`` from a button: a refusal leaves the tree as it is
    (the next refresh shows what happened)."""

    def run() -> None:
        try:
            action()
        except (ForkdError, OSError):
            pass

    return run
