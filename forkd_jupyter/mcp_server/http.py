"""Serving the MCP server over streamable HTTP, with the daemon's rules
(docs/rest-api.md): loopback by default; any other address needs a token;
with a token, every request needs ``Authorization: Bearer <token>``
(compared in constant time). Requests whose Host or Origin is not the
loopback's are refused by the SDK's DNS-rebinding protection."""

from __future__ import annotations

import hmac
import json
import socket
import sys

import anyio

from ..daemon.serve import is_loopback
from .quiet_uvicorn import quiet_server
from .server import ForkdMCPServer

MCP_PATH = "/mcp"


class TokenRequired:
    """ASGI middleware: 401 problem+json for an HTTP request without the
    bearer token (lifespan messages pass)."""

    def __init__(self, app, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            body = json.dumps(
                {
                    "type": "urn:forkd-jupyter:problem:unauthorized",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "a valid 'Authorization: Bearer <token>' header is required",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)

    def _authorized(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)


def refusal(host: str, token: str | None) -> str | None:
    """Why serving on ``host`` is refused, or None."""
    if not is_loopback(host) and not token:
        return (
            f"refusing to serve MCP on {host} without a token "
            "(give --token or set FORKD_JUPYTER_MCP_TOKEN)"
        )
    return None


def serve_http(server: ForkdMCPServer, host: str, port: int, token: str | None) -> None:
    """Serves until interrupted; prints the URL on stderr once listening."""
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token:
        app = TokenRequired(app, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(socket.SOMAXCONN)  # connections wait in the backlog from the moment the URL shows
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"forkd-jupyter mcp: serving on http://{shown}:{bound}{MCP_PATH}", file=sys.stderr)
    sys.stderr.flush()
    anyio.run(lambda: quiet_server(app).serve(sockets=[sock]))
