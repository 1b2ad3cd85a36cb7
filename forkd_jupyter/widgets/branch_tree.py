"""``BranchTree``: sandboxes and snapshots of the daemon as a live tree.

Traits synced with the front end: ``tree`` (the daemon's /v1/tree
document), ``current`` (the notebook's current sandbox, highlighted),
``selected`` (the node the user clicked). A double click (or the front end's
"make current" message) makes a running sandbox the notebook's current one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import traitlets

from .base import LiveWidget

STATIC = Path(__file__).parent / "static"


class BranchTree(LiveWidget):
    _esm = STATIC / "branch_tree.js"
    _css = STATIC / "widgets.css"

    tree = traitlets.Dict().tag(sync=True)
    current = traitlets.Unicode(allow_none=True, default_value=None).tag(sync=True)
    selected = traitlets.Unicode(allow_none=True, default_value=None).tag(sync=True)

    def __init__(self, controller=None, session=None, live: bool = True, **kw: Any) -> None:
        self._session = session
        self._select_callbacks: list[Callable[[str], None]] = []
        super().__init__(controller=controller, live=live, **kw)
        if session is not None:
            self.current = session.current
            session.on_current_change(self._follow_session)
        self.on_msg(self._on_front_end_message)

    def refresh(self) -> None:
        self.tree = self._controller.tree()

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
        if self._session is not None:
            self._session.set_current(sandbox_id)  # calls back _follow_session
        else:
            self.current = sandbox_id

    def _follow_session(self, sandbox_id: str | None) -> None:
        self.current = sandbox_id

    def _on_front_end_message(self, widget: Any, content: dict, buffers: list) -> None:
        if isinstance(content, dict) and content.get("type") == "make_current":
            self.make_current(str(content.get("id")))
