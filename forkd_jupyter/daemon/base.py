"""What every route shares: authorization and size limits decided from the
headers alone, bodies read as a stream, blocking controller calls moved off
the IO loop, problem+json errors and the HTTP details (Allow, HEAD, OPTIONS,
WWW-Authenticate).

Invariants:
- A handler never calls the controller on the IO loop thread (VMM calls
  block for milliseconds to minutes); ``call`` runs them on the
  application's executor, so one slow cell never stalls other clients.
- No request body byte is read before the token is checked and the declared
  length is within the route's ``body_limit``; a body that turns out longer
  is cut at the limit (413). A refused request's connection is closed after
  the answer, so the rest of its body is never read.
- Requests arriving on the unix socket need no token: the socket's mode
  (0600 in a 0700 directory) already limits them to the daemon's user."""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
from collections.abc import Callable
from typing import Any

import tornado.web

from ..controller import ControllerError, SandboxTree
from . import problems
from .errors import ApiError
from .validate import Body, bad, check_path

KIB, MIB = 1 << 10, 1 << 20
JSON_LIMIT = 1 * MIB
MAX_URI = 16 * KIB
REALM = 'Bearer realm="forkd-jupyter"'
METHODS = ("GET", "POST", "PUT", "DELETE")


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    public = False  # True for routes served without the token (health)
    body_limit = JSON_LIMIT  # bytes a request body may have on this route
    streams_body = False  # True: the route consumes the body itself (body_chunk)
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS")

    @property
    def tree(self) -> SandboxTree:
        return self.application.settings["tree"]

    # ---------------------------------------------------------- admission
    async def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0
        self._refused = False
        if len(self.request.uri) > MAX_URI:
            raise ApiError(414, f"the request target is longer than {MAX_URI} bytes")
        self._check_token()
        if self.application.settings.get("stopping"):
            raise ApiError(
                503,
                "the daemon is stopping; a client on its unix socket starts it again",
                kind="daemon-stopping",
            )
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit():
            raise ApiError(
                413,
                f"the body ({declared} bytes) is over this route's limit of {self._limit()} bytes",
                limit=self._limit(),
            )
        if self.streams_body and self.request.method in ("PUT", "POST"):
            await self.body_start()

    def _limit(self) -> int:
        return self.body_limit if self.request.method in ("PUT", "POST") else JSON_LIMIT

    def _check_token(self) -> None:
        if not self.public and not authorized(self):
            raise ApiError(401, "a valid 'Authorization: Bearer <token>' header is required")

    async def data_received(self, chunk: bytes) -> None:
        if self._refused or self._finished:
            return
        self._received += len(chunk)
        if self._received > self._limit():
            self._refused = True
            await self.body_abort()
            self.send_problem(
                problems.problem(
                    "too-large",
                    413,
                    f"the body is over this route's limit of {self._limit()} bytes",
                    limit=self._limit(),
                )
            )
            return
        if self.streams_body and self.request.method in ("PUT", "POST"):
            await self.body_chunk(chunk)
        else:
            self._chunks.append(chunk)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self.streams_body and not self._finished:
            asyncio.ensure_future(self.body_abort())

    # Hooks of routes with streams_body: called on the IO loop, in order.
    async def body_start(self) -> None: ...
    async def body_chunk(self, chunk: bytes) -> None: ...
    async def body_abort(self) -> None: ...

    @property
    def raw_body(self) -> bytes:
        return b"".join(self._chunks)

    def json_body(self) -> Body:
        return Body(self.raw_body)

    # ------------------------------------------------------------ helpers
    async def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return await run_blocking(self.application, fn, *args, **kwargs)

    def query(self, name: str, default: str | None = None) -> str | None:
        """A query argument exactly as sent (tornado's own accessors strip
        whitespace and turn control characters into spaces)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return default
        if len(values) > 1:
            raise bad(name, "is given more than once")
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise bad(name, "is not valid UTF-8") from None

    def query_path(self, name: str = "path") -> str:
        return check_path(name, self.query(name) or "")

    def query_flag(self, name: str) -> bool:
        value = self.query(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise bad(name, "must be true or false")
        return value in ("true", "1")

    def query_int(self, name: str, lo: int, hi: int, default: int | None) -> int | None:
        value = self.query(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            raise bad(name, f"must be an integer from {lo} to {hi}")
        number = int(value)
        if not lo <= number <= hi:
            raise bad(name, f"must be an integer from {lo} to {hi}")
        return number

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    # ------------------------------------------------------- HTTP details
    @classmethod
    def allowed_methods(cls) -> list[str]:
        base = tornado.web.RequestHandler
        out = [m for m in METHODS if getattr(cls, m.lower()) is not getattr(base, m.lower())]
        if "GET" in out:
            out.insert(1, "HEAD")
        return out + ["OPTIONS"]

    async def head(self, *args: str) -> None:
        """GET without the body (tornado drops it); an event stream answers
        its headers only, instead of streaming forever."""
        if "HEAD" not in self.allowed_methods():
            raise tornado.web.HTTPError(405)
        if getattr(self, "event_stream", False):
            self.set_header("Content-Type", "text/event-stream")
            self.finish()
            return
        await self.get(*args)

    def options(self, *args: str) -> None:
        self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.set_status(204)
        self.finish()

    # ------------------------------------------------------------- errors
    def send_problem(self, doc: dict) -> None:
        self.clear()
        self.set_status(doc["status"])
        self.set_header("Content-Type", problems.CONTENT_TYPE)
        if doc["status"] == 401:
            self.set_header("WWW-Authenticate", REALM)
        if doc["status"] == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if doc["status"] in (413, 414) or self._refused_early():
            self.set_header("Connection", "close")
        self.finish(json.dumps(doc))

    def _refused_early(self) -> bool:
        future = getattr(self.request, "_body_future", None)
        return future is not None and not future.done()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.send_problem(problem_for(exc, status_code, self._reason))

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001
        if isinstance(value, ControllerError | ApiError):
            return  # expected: the client gets the problem document
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        super().log_exception(typ, value, tb)


async def run_blocking(
    application: tornado.web.Application, fn: Callable, *args: Any, **kwargs: Any
) -> Any:
    """fn(*args, **kwargs) on the application's executor, off the IO loop."""
    loop = asyncio.get_running_loop()
    executor = application.settings["executor"]
    return await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))


def authorized(handler: tornado.web.RequestHandler, query_token: bool = False) -> bool:
    """The request may act: it came on the unix socket, the daemon has no
    token, or it brings the token (``Authorization: Bearer``, or with
    ``query_token`` a ``?token=`` argument, which browsers' WebSockets
    need)."""
    token = handler.application.settings.get("token")
    context = getattr(handler.request.connection, "context", None)
    if not token or getattr(context, "address_family", None) == socket.AF_UNIX:
        return True
    scheme, _, given = handler.request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" and query_token:
        given = handler.get_query_argument("token", "")
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def problem_for(exc: BaseException | None, status: int, reason: str) -> dict:
    if isinstance(exc, ControllerError):
        return problems.problem(exc.kind, exc.status, exc.detail, **exc.extra)
    if isinstance(exc, ApiError):
        return problems.problem(exc.kind, exc.status, exc.detail, **exc.extra)
    if isinstance(exc, tornado.web.HTTPError):
        kind = problems.KIND_BY_STATUS.get(exc.status_code, "internal")
        detail = exc.log_message % exc.args if exc.log_message else reason
        return problems.problem(kind, exc.status_code, detail)
    if exc is not None and status == 500:
        return problems.problem("internal", 500, f"{type(exc).__name__}: {exc}")
    return problems.problem(problems.KIND_BY_STATUS.get(status, "internal"), status, reason)


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        self._chunks, self._received, self._refused = [], 0, False
        raise ApiError(404, f"no route {self.request.method} {self.request.path}")
