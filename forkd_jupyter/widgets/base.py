"""What both widgets share: the SDK connection, the event feed that keeps
them current, and closing both with the widget."""

from __future__ import annotations

from typing import Any

import anywidget

from ..client import Controller
from .feed import EventFeed


class LiveWidget(anywidget.AnyWidget):
    """A widget refreshed from the daemon whenever anything changes there.
    Subclasses implement ``refresh`` (called on the feed's thread)."""

    def __init__(self, controller: Controller | None = None, live: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self._controller = controller or Controller()
        # Events after `since` trigger a refresh; the first refresh comes
        # after it is read, so no change can fall between the two.
        since = self._controller.tree()["seq"] if live else None
        self.refresh()
        self._feed = EventFeed(self._controller, self.refresh, since) if live else None

    def refresh(self) -> None:
        raise NotImplementedError

    @property
    def following(self) -> bool:
        """Whether the background feed still runs."""
        return self._feed is not None and self._feed.alive

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()
        super().close()
