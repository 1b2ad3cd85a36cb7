"""``/forkd/api/v1/<path>`` -> the daemon's ``/v1/<path>``: method, query,
body, status and content type pass through unchanged (problem+json errors
included); event streams are relayed chunk by chunk as they arrive."""

from __future__ import annotations

import asyncio

import httpx
import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.iostream import StreamClosedError

from .link import DaemonLink
from .problem import daemon_unavailable, send_problem

REQUEST_HEADERS = ("Content-Type", "Accept", "Last-Event-ID")
RESPONSE_HEADERS = ("Content-Type", "Content-Disposition", "Cache-Control")
METHODS_WITH_BODY = ("POST", "PUT", "PATCH", "DELETE")


class DaemonProxyHandler(APIHandler):
    _relay: asyncio.Task | None = None
    _flushed = False  # once True, the status line is sent and cannot become an error

    @property
    def link(self) -> DaemonLink:
        return self.settings["forkd_daemon_link"]

    @tornado.web.authenticated
    async def get(self, path: str) -> None:
        await self._proxy(path)

    @tornado.web.authenticated
    async def post(self, path: str) -> None:
        await self._proxy(path)

    @tornado.web.authenticated
    async def put(self, path: str) -> None:
        await self._proxy(path)

    @tornado.web.authenticated
    async def patch(self, path: str) -> None:
        await self._proxy(path)

    @tornado.web.authenticated
    async def delete(self, path: str) -> None:
        await self._proxy(path)

    def on_connection_close(self) -> None:
        # The browser left (a closed panel, a reload): stop reading the
        # daemon's stream so its connection is released at once.
        if self._relay is not None:
            self._relay.cancel()

    async def _proxy(self, path: str) -> None:
        self._relay = asyncio.current_task()
        method = self.request.method
        target = "/v1/" + path + (f"?{self.request.query}" if self.request.query else "")
        headers = {h: self.request.headers[h] for h in REQUEST_HEADERS if h in self.request.headers}
        body = self.request.body if method in METHODS_WITH_BODY and self.request.body else None
        try:
            async with self.link.client.stream(
                method, target, headers=headers, content=body
            ) as upstream:
                await self._relay_response(upstream)
        except httpx.TransportError as exc:
            if self._flushed:
                self.finish()  # ends the relayed stream; the client reconnects
            else:
                self.clear()
                reason = str(exc) or type(exc).__name__
                send_problem(self, daemon_unavailable(f"{self.link.conn.describe()}: {reason}"))
        except (asyncio.CancelledError, StreamClosedError):
            pass  # the client went away; nothing is left to answer

    async def _relay_response(self, upstream: httpx.Response) -> None:
        self.set_status(upstream.status_code, upstream.reason_phrase or None)
        for name in RESPONSE_HEADERS:
            if name in upstream.headers:
                self.set_header(name, upstream.headers[name])
        content_type = upstream.headers.get("Content-Type", "application/octet-stream")
        streaming = content_type.startswith("text/event-stream")
        if streaming:
            self.set_header("X-Accel-Buffering", "no")
            self._flushed = True
            await self.flush()  # the headers now, before the first event
        async for chunk in upstream.aiter_raw():
            self.write(chunk)
            if streaming:
                await self.flush()
        await self.finish(set_content_type=content_type)
