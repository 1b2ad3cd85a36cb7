"""``/forkd/api/v1/sandboxes/<sid>/terminals/websocket/<tid>``: a terminal
of a sandbox as a WebSocket behind Jupyter's authentication, relayed
message for message to the daemon's terminal WebSocket
(``/v1/sandboxes/<sid>/terminals/<tid>/ws``). Both speak terminado's
messages, so JupyterLab's own terminal widget talks to it as to one of
Jupyter's terminals (its URL is ``<wsUrl>terminals/websocket/<name>``).

Invariants: each browser socket has exactly one daemon socket; when either
side closes, the other is closed too, so no daemon connection outlives its
tab. A refusal by the daemon (unknown sandbox or terminal) or a daemon that
cannot be reached is answered before the upgrade, as a problem document."""

from __future__ import annotations

import asyncio
import json

import tornado.web
import tornado.websocket
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado.httpclient import HTTPClientError

from ..client.terminal_socket import connect_terminal
from .link import DaemonLink
from .problem import daemon_unavailable, problem


class TerminalSocketProxy(WebSocketMixin, JupyterHandler, tornado.websocket.WebSocketHandler):
    upstream = None
    _pump: asyncio.Task | None = None

    async def get(self, sid: str, tid: str) -> None:
        if not self.current_user:
            raise tornado.web.HTTPError(403)
        link: DaemonLink = self.settings["forkd_daemon_link"]
        try:
            self.upstream = await connect_terminal(link.conn, sid, tid)
        except HTTPClientError as exc:
            body = exc.response.body if exc.response is not None else b""
            try:
                doc = json.loads(body)
            except ValueError:
                doc = problem(exc.code, "bad-gateway", "Bad gateway", str(exc))
            return self._refuse(doc)
        except (OSError, tornado.websocket.WebSocketError, asyncio.TimeoutError) as exc:
            return self._refuse(daemon_unavailable(f"{link.conn.describe()}: {exc}"))
        await super().get(sid, tid)

    def _refuse(self, doc: dict) -> None:
        self.set_status(int(doc.get("status", 502)))
        self.set_header("Content-Type", "application/problem+json")
        self.finish(json.dumps(doc))

    def open(self, sid: str, tid: str) -> None:
        super().open(sid, tid)
        self._pump = asyncio.ensure_future(self._relay_from_daemon())

    async def _relay_from_daemon(self) -> None:
        try:
            while True:
                message = await self.upstream.read_message()
                if message is None:
                    break
                await self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass
        finally:
            self.close()

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            try:
                await self.upstream.write_message(message, binary=isinstance(message, bytes))
            except tornado.websocket.WebSocketClosedError:
                self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        super().on_close()
