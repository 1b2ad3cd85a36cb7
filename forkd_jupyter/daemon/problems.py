"""Problem documents (RFC 9457), the body of every error the daemon sends."""

from __future__ import annotations

from http import HTTPStatus

TYPE_PREFIX = "urn:forkd-jupyter:problem:"
CONTENT_TYPE = "application/problem+json"


def problem(kind: str, status: int, detail: str, title: str | None = None, **extra) -> dict:
    return {
        "type": TYPE_PREFIX + kind,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


KIND_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    503: "unavailable",
    504: "timeout",
}
