"""Server-sent events on a tornado response.

Every event carries an ``id:`` line (its sequence number on its stream), so
a client that reconnects can send ``Last-Event-ID`` and get what it missed."""

from __future__ import annotations

import json

import tornado.web


def start(handler: tornado.web.RequestHandler) -> None:
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")


async def send(
    handler: tornado.web.RequestHandler, event: str, data: dict, event_id: int | str | None = None
) -> None:
    """Writes one event and flushes it; raises StreamClosedError when the
    client went away."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    handler.write(f"{head}event: {event}\ndata: {json.dumps(data)}\n\n")
    await handler.flush()
