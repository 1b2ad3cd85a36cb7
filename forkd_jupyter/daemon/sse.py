"""Server-sent events on a tornado response."""

from __future__ import annotations

import json

import tornado.web


def start(handler: tornado.web.RequestHandler) -> None:
    handler.set_header("Content-Type", "text/event-stream")
    handler.set_header("Cache-Control", "no-cache")
    handler.set_header("X-Accel-Buffering", "no")


async def send(handler: tornado.web.RequestHandler, event: str, data: dict) -> None:
    """Writes one event and flushes it; raises StreamClosedError when the
    client went away."""
    handler.write(f"event: {event}\ndata: {json.dumps(data)}\n\n")
    await handler.flush()
