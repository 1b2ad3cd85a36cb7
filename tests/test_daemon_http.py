"""HTTP conformance of the daemon: Allow on 405, HEAD and OPTIONS, the
bearer scheme (WWW-Authenticate, case-insensitive), the unix socket as the
credential, one title per problem type and every type documented, the
served OpenAPI document, and event ids that survive a reconnect and show a
restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from daemon_private import PrivateDaemon

pytestmark = pytest.mark.kvm

TOKEN = "http-test-token"
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    daemon = PrivateDaemon(tmp_path_factory.mktemp("http"), token=TOKEN, tcp=True).start()
    yield daemon
    daemon.stop()


def test_405_lists_the_allowed_methods(private):
    with private.unix_client() as c:
        r = c.request("PATCH", "/health")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"
        assert r.headers["content-type"] == "application/problem+json"
        r = c.post("/snapshots")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_and_options(private):
    with private.unix_client() as c:
        head = c.head("/sandboxes")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "application/json"
        options = c.options("/sandboxes")
        assert options.status_code == 204
        assert options.headers["allow"] == "GET, HEAD, POST, OPTIONS"


def test_bearer_scheme(private):
    with private.tcp_client() as c:
        r = c.get("/sandboxes")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="forkd-jupyter"'
        for scheme in ("Bearer", "bearer", "BEARER"):
            headers = {"Authorization": f"{scheme} {TOKEN}"}
            assert c.get("/sandboxes", headers=headers).status_code == 200, scheme
        assert c.get("/sandboxes", headers={"Authorization": "Basic x"}).status_code == 401
        assert c.get("/health").status_code == 200  # the one public route


def test_the_unix_socket_needs_no_token(private):
    with private.unix_client() as c:
        assert c.get("/sandboxes").status_code == 200
    env = {
        **os.environ,
        "FORKD_JUPYTER_URL": f"unix://{private.socket}",
        "FORKD_JUPYTER_STATE_DIR": str(private.state),
    }
    env.pop("FORKD_JUPYTER_TOKEN", None)
    cmd = [sys.executable, "-m", "forkd_jupyter", "daemon", "status"]
    status = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"pid {private.pid}" in status.stdout


def test_one_title_per_problem_type_and_every_type_documented(private):
    from forkd_jupyter.daemon.problems import KINDS

    with private.unix_client() as c:
        route_404 = c.get("/nowhere").json()
        record_404 = c.get("/sandboxes/sb-999999").json()
        daemon_400 = c.post("/sandboxes", json={"n": 0}).json()
        controller_400 = c.post("/sandboxes", json={"snapshot_id": "snap-999999"}).json()
    assert route_404["title"] == record_404["title"] == KINDS["not-found"][1]
    assert daemon_400["title"] == KINDS["bad-request"][1]
    assert controller_400["status"] == 404 and controller_400["title"] == KINDS["not-found"][1]
    text = (DOCS / "rest-api.md").read_text()
    for kind, (status, _title) in KINDS.items():
        assert re.search(rf"`{kind}` \({status}", text), f"{kind} is not in docs/rest-api.md"


def test_security_is_required_everywhere_but_health(private):
    spec = yaml.safe_load((DOCS / "openapi.yaml").read_text())
    assert spec["security"] == [{"bearer": []}]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            expected = [] if path == "/health" else None
            assert op.get("security") == expected, (path, method)
    with private.unix_client() as c:
        assert c.get("/openapi.json").json() == spec


class Events:
    """The events of an SSE response as (id, event, data), read on demand."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def read(self, count: int) -> list[tuple[str | None, str, str]]:
        out, ident, name, data = [], None, "message", []
        for line in self.lines:
            if not line:
                if data:
                    out.append((ident, name, "\n".join(data)))
                    if len(out) == count:
                        return out
                ident, name, data = None, "message", []
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                ident = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
        return out


def read_events(response: httpx.Response, count: int) -> list[tuple[str | None, str, str]]:
    return Events(response).read(count)


def test_event_ids_resume_and_a_restart_shows(tmp_path):
    daemon = PrivateDaemon(tmp_path).start()
    try:
        with daemon.unix_client(timeout=60) as c:
            with c.stream("GET", "/events") as stream:
                events = Events(stream)
                [(_, hello, _)] = events.read(1)
                [sb] = c.post("/sandboxes", json={"memory_limit_mib": 256}).json()["sandboxes"]
                [(first_id, kind, data)] = events.read(1)
            assert hello == "hello" and kind == "sandbox" and re.match(r"^[0-9a-f]+:\d+$", first_id)
            c.post(f"/sandboxes/{sb['id']}/run", json={"code": "1"})
            # Resuming after the first event replays the ones that followed.
            headers = {"Last-Event-ID": first_id}
            with c.stream("GET", "/events", headers=headers) as stream:
                replay = read_events(stream, 2)
            boot, seq = first_id.split(":")
            assert replay[0][1] == "hello"
            assert replay[1][0] == f"{boot}:{int(seq) + 1}"
        daemon.stop()
        daemon.start()
        with daemon.unix_client(timeout=60) as c:
            with c.stream("GET", "/events", headers={"Last-Event-ID": first_id}) as stream:
                [(_, hello, _), (_, reset, data)] = read_events(stream, 2)
            assert reset == "reset" and "restarted" in data
            with c.stream("GET", "/events", params={"since": 10_000}) as stream:
                [_, (_, reset, _)] = read_events(stream, 2)
            assert reset == "reset"
    finally:
        daemon.stop()
