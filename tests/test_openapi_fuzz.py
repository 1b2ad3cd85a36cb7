"""Property-based checks of the running daemon against the OpenAPI document
it serves (GET /v1/openapi.json; schemathesis generates the requests):
every answer has a documented status and matches its schema, and no input
makes the daemon fail (5xx).

Generated requests address REAL resources: the ``{id}`` of each case is
drawn from a running sandbox's id and name, a snapshot's id and tag, and
an unknown id. Requests that would create or destroy resources in bulk
(spawning, branching, deleting, shutting down) are generated *invalid* for
real ids (negative cases, which must be refused with 400 before anything
happens) and as generated for unknown ids."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_check import validate
from schemathesis import DataGenerationMethod

pytestmark = pytest.mark.kvm

# Run with real ids, bodies and arguments as generated.
REAL_IDS = [
    ("/health", "GET"),
    ("/version", "GET"),
    ("/openapi.json", "GET"),
    ("/sandboxes", "GET"),
    ("/sandboxes/{id}", "GET"),
    ("/snapshots", "GET"),
    ("/snapshots/{id}", "GET"),
    ("/tree", "GET"),
    ("/timings", "GET"),
    ("/sandboxes/{id}/files", "GET"),
    ("/sandboxes/{id}/stat", "GET"),
    ("/sandboxes/{id}/tar", "GET"),
    ("/sandboxes/{id}/run", "POST"),
    ("/sandboxes/{id}/interrupt", "POST"),
    ("/sandboxes/{id}/push", "POST"),
    ("/sandboxes/{id}/pull", "POST"),
    ("/sandboxes/{id}/files", "PUT"),
    ("/sandboxes/{id}/files", "DELETE"),
    ("/sandboxes/{id}/mkdir", "POST"),
    ("/sandboxes/{id}/move", "POST"),
    ("/sandboxes/{id}/tar", "PUT"),
    ("/snapshots/{id}/save", "POST"),
    ("/snapshots/{id}/fold", "POST"),
    ("/sandboxes/{id}/runs", "GET"),
    ("/sandboxes/{id}/runs", "POST"),
    ("/runs/{id}", "GET"),
    ("/runs/{id}/events", "GET"),
    ("/runs/{id}/interrupt", "POST"),
    ("/runs/{id}/cancel", "POST"),
    ("/runs/{id}/stdin", "POST"),
    ("/cluster", "GET"),
]
# Real ids only with invalid input; valid input only with unknown ids.
GUARDED = [("/sandboxes/{id}/branch", "POST"), ("/snapshots/{id}", "DELETE")]
UNKNOWN_ONLY = [("/sandboxes/{id}", "DELETE")]  # nothing in it can be invalid but the id
NEGATIVE_ONLY = [("/sandboxes", "POST"), ("/cluster", "POST")]  # a valid join starts Ray
EXAMPLES = {("/snapshots/{id}/save", "POST"): 5}


@schemathesis.serializer("application/x-tar")
class RawBytes:
    """Generated binary bodies are sent as they are (not real archives:
    the daemon must refuse them with 400)."""

    def as_requests(self, context, value):
        return {"data": value if isinstance(value, bytes) else str(value).encode()}

    def as_werkzeug(self, context, value):
        return self.as_requests(context, value)


@pytest.fixture(scope="module")
def served(daemon):
    """The OpenAPI document as the daemon serves it."""
    conn = daemon.connection
    with httpx.Client(transport=conn.transport(), headers=conn.headers()) as c:
        doc = c.get(conn.base_url + "/v1/openapi.json").json()
    return schemathesis.from_dict(doc)


@pytest.fixture(scope="module")
def real(daemon):
    """A running sandbox and a ready snapshot of it, by id and by name."""
    [sb] = daemon.spawn_sandboxes(memory_limit_mib=256, name="fuzz-target")
    snap = daemon.branch_sandbox(sb["id"], mode="full", tag="fuzz-snap")["snapshot"]
    run = daemon.start_run(sb["id"], "'a finished run'")
    list(daemon.run_events(run["id"]))
    ids = {
        "sandbox": [sb["id"], sb["name"], "sb-999999"],
        "snapshot": [snap["id"], snap["tag"], "snap-999999"],
        "run": [run["id"], "run-999999"],
    }
    yield ids
    daemon.delete_snapshot(snap["id"], cascade=True)
    daemon.kill_sandbox(sb["id"])


def send(daemon, case) -> httpx.Response | None:
    conn = daemon.connection
    kwargs = case.as_transport_kwargs(base_url=conn.base_url + "/v1")
    kwargs.pop("cookies", None)
    # Only the body's type is kept from the generated headers: the target is
    # the API's parameters and bodies, not HTTP header parsing.
    generated = kwargs.pop("headers") or {}
    headers = {k: v for k, v in generated.items() if k.lower() == "content-type"}
    with httpx.Client(transport=conn.transport(), timeout=120) as client:
        if "data" in kwargs:
            kwargs["content"] = kwargs.pop("data")
        try:
            return client.request(headers=headers, **kwargs)
        except (httpx.InvalidURL, UnicodeEncodeError, httpx.LocalProtocolError):
            return None  # not expressible as an HTTP request


def _run(daemon, schema, ids, path, method, how, examples, real_ids) -> None:
    op = schema[path][method]
    kind = {"snapshots": "snapshot", "runs": "run"}.get(path.split("/")[1], "sandbox")
    choices = ids[kind] if real_ids else ids[kind][-1:]

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=op.as_strategy(data_generation_method=how), target=st.sampled_from(choices))
    def run(case, target):
        if "id" in (case.path_parameters or {}):
            case.path_parameters["id"] = target
        if how is DataGenerationMethod.negative and not isinstance(
            case.body, dict | list | str | int | float | bool
        ):
            return  # no body: the request may be valid (it would act)
        response = send(daemon, case)
        if response is None:
            return
        if response.status_code == 504:  # a generated timeout that expired: the documented answer
            assert response.json()["type"].endswith(":timeout")
            assert isinstance(case.body, dict) and case.body.get("timeout") is not None
        else:
            assert response.status_code < 500, (case.path, case.method, case.body, response.text)
        if how is DataGenerationMethod.negative:
            assert response.status_code in (400, 404, 413), (case.body, response.text)
        validate(response)

    run()


@pytest.mark.parametrize("path,method", REAL_IDS)
def test_generated_requests_on_real_ids_get_documented_answers(daemon, served, real, path, method):
    examples = EXAMPLES.get((path, method), 25)
    _run(daemon, served, real, path, method, DataGenerationMethod.positive, examples, True)


# One bad field added to an otherwise generated body: refused before anything happens.
BAD_FIELDS = {
    ("/sandboxes/{id}/branch", "POST"): [
        ("count", -1),
        ("count", 65),
        ("count", 1.5),
        ("mode", "fast"),
        ("tag", "sb-1"),
        ("tag", " padded"),
        ("tag", ""),
        ("tag", "x" * 65),
        ("wait", "yes"),
        ("measure_diff", 1),
        ("surprise", True),
    ],
}
BAD_QUERIES = {("/snapshots/{id}", "DELETE"): [{"cascade": "yes"}, {"cascade": ""}]}


@pytest.mark.parametrize("path,method", GUARDED)
def test_guarded_routes_refuse_invalid_input_on_real_ids(daemon, served, real, path, method):
    op = served[path][method]
    kind = "snapshot" if path.startswith("/snapshots") else "sandbox"
    before = daemon.list_snapshots()
    bad = BAD_FIELDS.get((path, method), [None])
    queries = BAD_QUERIES.get((path, method), [None])

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        case=op.as_strategy(data_generation_method=DataGenerationMethod.positive),
        target=st.sampled_from(real[kind][:2]),
        field=st.sampled_from(bad),
        query=st.sampled_from(queries),
    )
    def run(case, target, field, query):
        case.path_parameters["id"] = target
        if field is not None:
            case.body = {**(case.body if isinstance(case.body, dict) else {}), field[0]: field[1]}
        if query is not None:
            case.query = query
        response = send(daemon, case)
        assert response.status_code == 400, (case.body, case.query, response.text)
        validate(response)

    run()
    assert daemon.list_snapshots() == before  # nothing was made or removed
    _run(daemon, served, real, path, method, DataGenerationMethod.positive, 15, False)


@pytest.mark.parametrize("path,method", UNKNOWN_ONLY)
def test_generated_requests_on_unknown_ids(daemon, served, real, path, method):
    _run(daemon, served, real, path, method, DataGenerationMethod.positive, 15, False)


@pytest.mark.parametrize("path,method", NEGATIVE_ONLY)
def test_invalid_bodies_are_refused_with_400(daemon, served, path, method):
    _run(daemon, served, {"sandbox": ["-"]}, path, method, DataGenerationMethod.negative, 40, False)


def test_the_served_document_is_docs_openapi_yaml(daemon, served):
    import yaml
    from openapi_check import SPEC

    assert served.raw_schema == yaml.safe_load(SPEC.read_text())
