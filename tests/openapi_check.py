"""Checks real daemon responses against docs/openapi.yaml: an httpx
response hook that validates every JSON or problem answer a test receives,
and fails on a status the document does not list for that operation."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import httpx
import schemathesis

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@cache
def schema():
    return schemathesis.from_path(str(SPEC))


@cache
def _templates() -> list[tuple[re.Pattern, str]]:
    out = []
    for path in schema().raw_schema["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", path)
        out.append((re.compile(f"^/v1{pattern}$"), path))
    return out


def operation_for(method: str, url_path: str):
    for pattern, template in _templates():
        if pattern.match(url_path):
            return schema()[template][method]
    raise AssertionError(f"{method} {url_path} is not in docs/openapi.yaml")


def validate(response: httpx.Response) -> None:
    request = response.request
    op = operation_for(request.method, request.url.path)
    documented = op.definition.raw["responses"]
    assert str(response.status_code) in documented, (
        f"{request.method} {request.url.path} answered {response.status_code}, "
        f"not documented (documented: {sorted(documented)})"
    )
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    response.read()
    op.validate_response(response)


def checked_client(controller) -> httpx.Client:
    """An httpx client on the controller's daemon whose every answer is
    validated against the OpenAPI document."""
    conn = controller.connection
    return httpx.Client(
        base_url=conn.base_url + "/v1",
        transport=conn.transport(),
        headers=conn.headers(),
        timeout=120,
        event_hooks={"response": [validate]},
    )
