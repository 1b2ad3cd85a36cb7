"""What every route shares: the bearer-token check, JSON bodies in and out,
blocking controller calls moved off the IO loop, and problem+json errors.

Invariant: a handler never calls the controller on the IO loop thread (VMM
calls block for milliseconds to minutes); ``call`` runs them on the
application's executor, so one slow cell never stalls other clients."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import Any

import tornado.web

from ..controller import ControllerError, SandboxTree
from . import problems


class ApiError(Exception):
    """A problem found by a handler itself (bad JSON, a missing field)."""

    def __init__(self, status: int, detail: str, kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra
        self.kind = kind or problems.KIND_BY_STATUS.get(status, "internal")


class BaseHandler(tornado.web.RequestHandler):
    public = False  # True for routes served without the token (health)

    @property
    def tree(self) -> SandboxTree:
        return self.application.settings["tree"]

    def prepare(self) -> None:
        token = self.application.settings.get("token")
        if token and not self.public:
            given = self.request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise ApiError(401, "a valid 'Authorization: Bearer <token>' header is required")

    async def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        executor = self.application.settings["executor"]
        return await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))

    # ---------------------------------------------------------------- bodies
    def body_json(self) -> dict:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError as e:
            raise ApiError(400, f"the body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def field(self, body: dict, name: str, kind: type | tuple, default: Any = None) -> Any:
        value = body.get(name, default)
        if value is None or value is default:
            return value
        if isinstance(value, bool) and kind in (int, float):
            raise ApiError(400, f"{name} must be a {kind.__name__}, not a boolean")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ApiError(400, f"{name} must be a {names}")
        return value

    def query_flag(self, name: str) -> bool:
        value = self.get_query_argument(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise ApiError(400, f"{name} must be true or false")
        return value in ("true", "1")

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    # ---------------------------------------------------------------- errors
    def send_problem(self, doc: dict) -> None:
        self.clear()
        self.set_status(doc["status"])
        self.set_header("Content-Type", problems.CONTENT_TYPE)
        self.finish(json.dumps(doc))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.send_problem(problem_for(exc, status_code, self._reason))

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001
        if isinstance(value, ControllerError | ApiError):
            return  # expected: the client gets the problem document
        super().log_exception(typ, value, tb)


def problem_for(exc: BaseException | None, status: int, reason: str) -> dict:
    if isinstance(exc, ControllerError):
        return problems.problem(exc.kind, exc.status, exc.detail, exc.title, **exc.extra)
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
    def prepare(self) -> None:
        raise ApiError(404, f"no route {self.request.method} {self.request.path}")
