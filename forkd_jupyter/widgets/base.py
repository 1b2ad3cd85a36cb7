"""What both widgets share: the SDK connection (the notebook's own, from
its magics session, when there is one), the event feed that keeps them
current, the connection state they show, and closing both with the widget."""

from __future__ import annotations

import threading
from typing import Any

import anywidget
import traitlets

from ..client import Controller, DaemonUnavailable, ForkdError
from ..client import connection as connections
from .feed import EventFeed


def notebook_session():
    """The kernel's magics session (made on first use, as `%forkd` does),
    so a widget built directly shares the notebook's current sandbox."""
    from ..magics import current_session

    return current_session(create=True)


class LiveWidget(anywidget.AnyWidget):
    """A widget refreshed from the daemon whenever anything changes there.
    Subclasses implement ``refresh`` (called on the feed's thread).

    ``connection`` is empty while the daemon answers, else why it does not
    (the front end shows it with a way to reconnect)."""

    connection = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, controller: Controller | None = None, session=None, live: bool = True, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._session = session if session is not None else notebook_session()
        self._controller = controller or self._session.controller
        self._feed: EventFeed | None = None
        # Events after `since` trigger a refresh; the first refresh comes
        # after it is read, so no change can fall between the two.
        since = self._controller.tree()["seq"] if live else None
        self.refresh()
        if live:
            self._feed = EventFeed(
                self._controller, self.refresh, since, on_connection=self._set_connection
            )
        self.on_msg(self._on_front_end_message)

    def refresh(self) -> None:
        raise NotImplementedError

    def _set_connection(self, reason: str | None) -> None:
        self.connection = reason or ""

    def reconnect(self) -> None:
        """Starts the daemon if it is stopped (as the SDK does on first use)
        and follows it again at once: what the "Reconnect" button asks."""

        def run() -> None:
            try:
                connections.ensure_daemon(self._controller.connection)
            except (DaemonUnavailable, ForkdError, OSError) as e:
                self.connection = f"the daemon could not be started: {e}"
                return
            if self._feed is not None:
                self._feed.reconnect()

        threading.Thread(target=run, name="forkd-reconnect", daemon=True).start()

    def _on_front_end_message(self, widget: Any, content: dict, buffers: list) -> None:
        if isinstance(content, dict) and content.get("type") == "reconnect":
            self.reconnect()

    @property
    def following(self) -> bool:
        """Whether the background feed still runs."""
        return self._feed is not None and self._feed.alive

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()
        super().close()
