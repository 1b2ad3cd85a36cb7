"""uvicorn without its polls: an idle MCP server sleeps until a request or a
signal comes.

uvicorn's ``Server.main_loop`` wakes every 100 ms to refresh the Date header
and to look at ``should_exit``; sse-starlette, which serves the SDK's event
streams, starts a watcher per event loop that wakes every 500 ms to look at
the same flag. Here the main loop waits on an event that the exit signal
sets, then ends the event streams as the watcher would; the Date header is
written per response instead."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import uvicorn
from sse_starlette import sse


class QuietServer(uvicorn.Server):
    """Invariant: ``should_exit`` turning true always sets ``_exit_requested``
    (the only place uvicorn sets it on a running server is ``handle_exit``)."""

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._exit_requested = asyncio.Event()
        self._loop = loop
        await self.on_tick(0)  # the default headers, once
        streams = _event_stream_shutdown()
        if streams is not None:
            streams.watcher_started = True  # this loop is the watcher
        if not self.should_exit:
            await self._exit_requested.wait()
        if streams is not None:
            for ended in list(streams.events):
                ended.set()

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        loop = getattr(self, "_loop", None)
        if loop is not None:  # a signal handler: only the thread-safe call is safe here
            loop.call_soon_threadsafe(self._exit_requested.set)


def _event_stream_shutdown():
    """sse-starlette's per-thread shutdown state (its open streams' events
    and whether a watcher runs), or None where that library has no such
    state: then its own watcher runs and polls."""
    state = getattr(sse, "_get_shutdown_state", lambda: None)()
    if hasattr(state, "events") and hasattr(state, "watcher_started"):
        return state
    return None


class DateHeader:
    """ASGI middleware: the Date header on every HTTP response (uvicorn's own
    is switched off, as it is refreshed by the tick)."""

    def __init__(self, app) -> None:
        self._app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def dated(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"date", formatdate(usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, dated)


def quiet_server(app) -> QuietServer:
    config = uvicorn.Config(DateHeader(app), log_level="warning", lifespan="on", date_header=False)
    return QuietServer(config)
