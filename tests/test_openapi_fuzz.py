"""Property-based checks of the running daemon against docs/openapi.yaml
(schemathesis generates the requests): every answer has a documented status
and matches its schema, and no input makes the daemon fail (500).

Generated requests that would create resources (spawning, branching,
shutting down) are only generated *invalid* (negative cases, which must be
refused with 400 before anything happens); the others run as generated."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_check import schema, validate
from schemathesis import DataGenerationMethod

pytestmark = pytest.mark.kvm

READ_ONLY = [
    ("/health", "GET"),
    ("/version", "GET"),
    ("/sandboxes", "GET"),
    ("/sandboxes/{id}", "GET"),
    ("/snapshots", "GET"),
    ("/snapshots/{id}", "GET"),
    ("/tree", "GET"),
    ("/timings", "GET"),
    ("/sandboxes/{id}/files", "GET"),
    ("/sandboxes/{id}/tar", "GET"),
]
# Random ids never name a real sandbox or snapshot: these end in 400/404.
UNKNOWN_TARGET = [
    ("/sandboxes/{id}", "DELETE"),
    ("/sandboxes/{id}/run", "POST"),
    ("/sandboxes/{id}/interrupt", "POST"),
    ("/sandboxes/{id}/push", "POST"),
    ("/sandboxes/{id}/pull", "POST"),
    ("/sandboxes/{id}/branch", "POST"),
    ("/sandboxes/{id}/files", "PUT"),
    ("/sandboxes/{id}/tar", "PUT"),
    ("/snapshots/{id}", "DELETE"),
    ("/snapshots/{id}/save", "POST"),
]
NEGATIVE_ONLY = [("/sandboxes", "POST")]
# With the id of a real sandbox (or snapshot), so generated requests reach
# the handlers: every one that leaves the sandbox alive and the tree intact.
REAL_TARGET = [
    ("/sandboxes/{id}", "GET"),
    ("/sandboxes/{id}/run", "POST"),
    ("/sandboxes/{id}/interrupt", "POST"),
    ("/sandboxes/{id}/push", "POST"),
    ("/sandboxes/{id}/pull", "POST"),
    ("/sandboxes/{id}/files", "GET"),
    ("/sandboxes/{id}/files", "PUT"),
    ("/sandboxes/{id}/tar", "GET"),
    ("/sandboxes/{id}/tar", "PUT"),
    ("/snapshots/{id}", "GET"),
]


@schemathesis.serializer("application/x-tar")
class RawBytes:
    """Generated binary bodies are sent as they are (not real archives:
    the daemon must refuse them with 400)."""

    def as_requests(self, context, value):
        return {"data": value if isinstance(value, bytes) else str(value).encode()}

    def as_werkzeug(self, context, value):
        return self.as_requests(context, value)


def send(daemon, case) -> httpx.Response | None:
    conn = daemon.connection
    kwargs = case.as_transport_kwargs(base_url=conn.base_url + "/v1")
    kwargs.pop("cookies", None)
    # Only the body's type is kept from the generated headers: the target is
    # the API's parameters and bodies, not HTTP header parsing (the token is
    # not set on the test daemon; the lifecycle tests cover authorization).
    generated = kwargs.pop("headers") or {}
    headers = {k: v for k, v in generated.items() if k.lower() == "content-type"}
    with httpx.Client(transport=conn.transport(), timeout=60) as client:
        if "data" in kwargs:
            kwargs["content"] = kwargs.pop("data")
        try:
            return client.request(headers=headers, **kwargs)
        except (httpx.InvalidURL, UnicodeEncodeError, httpx.LocalProtocolError):
            return None  # not expressible as an HTTP request


def _run(
    daemon,
    path: str,
    method: str,
    how: DataGenerationMethod,
    examples: int,
    real_id: str | None = None,
) -> list[int]:
    """Runs generated requests; returns the statuses answered."""
    op = schema()[path][method]
    statuses: list[int] = []

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=op.as_strategy(data_generation_method=how))
    def run(case):
        if how is DataGenerationMethod.negative:
            if not isinstance(case.body, dict | list | str | int | float | bool):
                return  # no body: a valid request (it would spawn)
            response = send(daemon, case)
            if response is None:
                return
            assert response.status_code in (400, 404), (case.body, response.text)
            validate(response)
        else:
            if real_id is not None:
                case.path_parameters = dict(case.path_parameters or {}, id=real_id)
            response = send(daemon, case)
            if response is None:
                return
            statuses.append(response.status_code)
            # A documented 504 (a generated run timeout of ~0 s) is an answer,
            # not a failure; validate() checks it is documented.
            assert response.status_code != 500 and (
                response.status_code < 500 or response.status_code == 504
            ), (case.path, case.method, response.text)
            validate(response)

    run()
    return statuses


@pytest.mark.parametrize("path,method", READ_ONLY + UNKNOWN_TARGET)
def test_generated_requests_get_documented_answers(daemon, path, method):
    _run(daemon, path, method, DataGenerationMethod.positive, 25)


@pytest.mark.parametrize("path,method", NEGATIVE_ONLY)
def test_invalid_bodies_are_refused_with_400(daemon, path, method):
    _run(daemon, path, method, DataGenerationMethod.negative, 40)


@pytest.fixture(scope="module")
def real_ids(daemon):
    (sb,) = daemon.spawn_sandboxes(n=1, memory_limit_mib=256)
    snap = daemon.branch_sandbox(sb["id"], mode="live")["snapshot"]
    yield {"/sandboxes": sb["id"], "/snapshots": snap["id"]}
    daemon.kill_sandbox(sb["id"])


@pytest.mark.parametrize("path,method", REAL_TARGET)
def test_generated_requests_on_real_ids_reach_the_handlers(daemon, real_ids, path, method):
    real = real_ids["/" + path.split("/")[1]]
    statuses = _run(daemon, path, method, DataGenerationMethod.positive, 25, real_id=real)
    # Not just 404s: the requests reached a real sandbox (or snapshot).
    assert any(code != 404 for code in statuses), statuses
    if path.startswith("/sandboxes"):
        assert daemon.get_sandbox(real)["status"] == "running", "the sandbox died"
        assert daemon.run_cell(real, "6 * 7").result["text/plain"] == "42"
    else:
        assert daemon.get_sandbox(real_ids["/sandboxes"])["id"]  # the tree is intact
