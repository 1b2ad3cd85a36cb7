"""Errors of the server extension's own routes, in the daemon's format
(application/problem+json, RFC 9457), so the panel reads one kind of error."""

from __future__ import annotations

import json

from tornado.web import RequestHandler

PROBLEM_PREFIX = "urn:forkd-jupyter:problem:"
PROBLEM_TYPE = "application/problem+json"


def problem(status: int, kind: str, title: str, detail: str, **extra) -> dict:
    return {
        "type": PROBLEM_PREFIX + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


def send_problem(handler: RequestHandler, doc: dict) -> None:
    """Finishes the response with ``doc``; the handler must not have sent
    its headers yet."""
    handler.set_status(doc["status"])
    handler.finish(json.dumps(doc), set_content_type=PROBLEM_TYPE)


def daemon_unavailable(detail: str) -> dict:
    return problem(503, "daemon-unavailable", "Daemon unavailable", detail)
