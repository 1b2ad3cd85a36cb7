"""Connecting to a terminal's WebSocket on the daemon
(``/v1/sandboxes/<sid>/terminals/<tid>/ws``, terminado's messages:
docs/processes.md), over its unix socket or TCP, with tornado's client.
Used by the JupyterLab server extension's relay and `forkd-jupyter
terminal`."""

from __future__ import annotations

import socket
from urllib.parse import quote

import tornado.websocket
from tornado.httpclient import HTTPRequest
from tornado.netutil import Resolver

from .connection import Connection

CONNECT_TIMEOUT = 10.0


class _UnixSocketResolver(Resolver):
    """Every host name resolves to the daemon's unix socket."""

    def initialize(self, path: str) -> None:  # type: ignore[override]
        self.path = path

    async def resolve(self, host: str, port: int, family: int = socket.AF_UNSPEC):  # noqa: ANN201
        return [(socket.AF_UNIX, self.path)]


async def connect_terminal(
    conn: Connection, sandbox_id: str, terminal_id: str
) -> tornado.websocket.WebSocketClientConnection:
    """The terminal's WebSocket (HTTPClientError for the daemon's refusal,
    with its problem document as the body; OSError when the daemon cannot
    be reached)."""
    path = f"/v1/sandboxes/{quote(sandbox_id, safe='')}/terminals/{quote(terminal_id, safe='')}/ws"
    if conn.socket:
        url, resolver = f"ws://forkd{path}", _UnixSocketResolver(path=conn.socket)
    else:
        url, resolver = conn.base_url.replace("http", "ws", 1) + path, None
    request = HTTPRequest(url, headers=conn.headers(), connect_timeout=CONNECT_TIMEOUT)
    return await tornado.websocket.websocket_connect(request, resolver=resolver)
