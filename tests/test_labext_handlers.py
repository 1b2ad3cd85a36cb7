"""The jupyter-server extension (forkd_jupyter.labext) in a real Jupyter
server (pytest-jupyter) in front of the real test daemon: proxying, problem
passthrough, the event stream, authentication, the handshake and the
current-sandbox map."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - the jp_* fixtures, for this module only

import forkd_jupyter
from forkd_jupyter.labext.report import report_current_sandbox

PROBLEM = "application/problem+json"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"forkd_jupyter.labext": True}}}


@pytest.fixture
def call(jp_fetch, jp_asyncio_loop, daemon):
    """jp_fetch, run to completion; answers with any status (no raise)."""

    def run(*parts, **kwargs):
        kwargs.setdefault("raise_error", False)
        return jp_asyncio_loop.run_until_complete(jp_fetch(*parts, **kwargs))

    return run


@pytest.fixture
def server_url(jp_serverapp, http_server_client, jp_http_port, jp_base_url):
    """The server's address, for clients other than jp_fetch (which, like
    this fixture, is what makes pytest-jupyter serve the port)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}".rstrip("/")


def body(response) -> dict:
    return json.loads(response.body)


def post(call, *parts, doc: dict):
    return call(*parts, method="POST", body=json.dumps(doc))


def test_get_is_proxied(call, daemon):
    response = call("forkd", "api", "v1", "health")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert body(response)["version"] == daemon.health()["version"]
    listed = body(call("forkd", "api", "v1", "sandboxes"))
    assert [s["id"] for s in listed["sandboxes"]] == [s["id"] for s in daemon.list_sandboxes()]


@pytest.mark.kvm
def test_post_and_delete_are_proxied(call, daemon):
    response = post(call, "forkd", "api", "v1", "sandboxes", doc={"n": 1, "live_fork": True})
    assert response.code == 201
    (sandbox,) = body(response)["sandboxes"]
    assert sandbox["status"] == "running"
    assert daemon.get_sandbox(sandbox["id"])["status"] == "running"

    branch = post(
        call, "forkd", "api", "v1", "sandboxes", sandbox["id"], "branch", doc={"count": 1}
    )
    assert branch.code == 201
    snapshot = body(branch)["snapshot"]
    assert snapshot["mode"] == "live" and snapshot["source_id"] == sandbox["id"]
    (child,) = body(branch)["children"]
    assert child["parent_snapshot"] == snapshot["id"]

    killed = call("forkd", "api", "v1", "sandboxes", child["id"], method="DELETE")
    assert killed.code == 200
    assert body(killed)["status"] == "dead"
    assert daemon.get_sandbox(child["id"])["status"] == "dead"
    daemon.kill_sandbox(sandbox["id"])


def test_query_string_is_proxied(call, daemon):
    response = call(
        "forkd",
        "api",
        "v1",
        "snapshots",
        "no-such-snap",
        params={"cascade": "true"},
        method="DELETE",
    )
    assert response.code == 404
    assert response.headers["Content-Type"] == PROBLEM


def test_problem_json_passes_through(call):
    missing = call("forkd", "api", "v1", "sandboxes", "no-such-sandbox")
    assert missing.code == 404
    assert missing.headers["Content-Type"] == PROBLEM
    problem = body(missing)
    assert problem["type"] == "urn:forkd-jupyter:problem:not-found"
    assert problem["status"] == 404 and "no-such-sandbox" in problem["detail"]

    bad = post(call, "forkd", "api", "v1", "sandboxes", doc={"n": "three"})
    assert bad.code == 400
    assert bad.headers["Content-Type"] == PROBLEM
    assert body(bad)["type"] == "urn:forkd-jupyter:problem:bad-request"

    not_json = call("forkd", "api", "v1", "sandboxes", method="POST", body="{nope")
    assert not_json.code == 400
    assert body(not_json)["type"] == "urn:forkd-jupyter:problem:bad-request"


def test_requests_without_the_token_are_refused(jp_asyncio_loop, server_url, daemon):
    async def attempts():
        async with httpx.AsyncClient() as client:
            get = await client.get(f"{server_url}/forkd/api/v1/sandboxes")
            spawn = await client.post(f"{server_url}/forkd/api/v1/sandboxes", json={"n": 1})
            shake = await client.get(f"{server_url}/forkd/api/handshake")
            wrong = await client.get(
                f"{server_url}/forkd/api/v1/sandboxes",
                headers={"Authorization": "token not-the-token"},
            )
            return get, spawn, shake, wrong

    before = len(daemon.list_sandboxes())
    for response in jp_asyncio_loop.run_until_complete(attempts()):
        assert response.status_code == 403
        assert "sandboxes" not in response.text
    assert len(daemon.list_sandboxes()) == before


def test_handshake_with_the_daemon_up(call, daemon):
    response = call("forkd", "api", "handshake")
    assert response.code == 200
    doc = body(response)
    assert doc["extension_version"] == forkd_jupyter.__version__
    assert doc["daemon_error"] is None
    assert doc["daemon"]["version"] == daemon.version()["version"]
    assert doc["daemon"]["api"] == daemon.version()["api"]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_handshake_and_proxy_with_the_daemon_unreachable(call, monkeypatch):
    address = f"http://127.0.0.1:{_unused_port()}"
    monkeypatch.setenv("FORKD_JUPYTER_URL", address)  # read at the extension's first request

    doc = body(call("forkd", "api", "handshake"))
    assert doc["daemon"] is None
    assert address in doc["daemon_error"]
    assert doc["extension_version"] == forkd_jupyter.__version__

    proxied = call("forkd", "api", "v1", "sandboxes")
    assert proxied.code == 503
    assert proxied.headers["Content-Type"] == PROBLEM
    problem = body(proxied)
    assert problem["type"] == "urn:forkd-jupyter:problem:daemon-unavailable"
    assert address.removeprefix("http://") in problem["detail"]


def test_bad_daemon_url_is_reported(call, monkeypatch):
    monkeypatch.setenv("FORKD_JUPYTER_URL", "ftp://somewhere")
    doc = body(call("forkd", "api", "handshake"))
    assert doc["daemon"] is None
    assert "FORKD_JUPYTER_URL" in doc["daemon_error"]


@pytest.mark.kvm
def test_event_stream_is_relayed_as_it_happens(
    jp_asyncio_loop, server_url, jp_auth_header, call, daemon
):
    since = daemon.tree()["seq"]

    async def scenario():
        seen = []
        async with httpx.AsyncClient(headers=jp_auth_header, timeout=30) as client:
            url = f"{server_url}/forkd/api/v1/events?since={since}"
            async with client.stream("GET", url) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                # The stream never ends by itself: the spawn's event can only
                # arrive if the proxy relays chunks as they come.
                spawn = asyncio.ensure_future(
                    client.post(f"{server_url}/forkd/api/v1/sandboxes", json={"n": 1})
                )
                event = None
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "sandbox":
                        data = json.loads(line.split(":", 1)[1])
                        seen.append(data)
                        if data["action"] == "created":
                            break
                created = await spawn
        return seen, created

    seen, created = jp_asyncio_loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    assert created.status_code == 201
    (sandbox,) = created.json()["sandboxes"]
    assert seen[-1]["sandbox"]["id"] == sandbox["id"]
    assert seen[-1]["seq"] > since
    daemon.kill_sandbox(sandbox["id"])


def _start_kernel(call) -> str:
    response = post(call, "api", "kernels", doc={"name": "python3"})
    assert response.code == 201, response.body
    return body(response)["id"]


def test_current_sandbox_is_kept_per_kernel(call):
    kernel_id = _start_kernel(call)
    try:
        assert body(call("forkd", "api", "current", params={"kernel_id": kernel_id})) == {
            "kernel_id": kernel_id,
            "sandbox_id": None,
        }
        set_it = post(
            call, "forkd", "api", "current", doc={"kernel_id": kernel_id, "sandbox_id": "sb-7"}
        )
        assert set_it.code == 200
        got = body(call("forkd", "api", "current", params={"kernel_id": kernel_id}))
        assert got["sandbox_id"] == "sb-7"
        assert body(call("forkd", "api", "current"))["current"] == {kernel_id: "sb-7"}

        cleared = post(
            call, "forkd", "api", "current", doc={"kernel_id": kernel_id, "sandbox_id": None}
        )
        assert cleared.code == 200
        assert body(call("forkd", "api", "current"))["current"] == {}
    finally:
        call("api", "kernels", kernel_id, method="DELETE")


def test_current_sandbox_refuses_bad_input(call):
    unknown = post(
        call, "forkd", "api", "current", doc={"kernel_id": "no-such-kernel", "sandbox_id": "sb-1"}
    )
    assert unknown.code == 404
    assert unknown.headers["Content-Type"] == PROBLEM
    for doc in (
        {"sandbox_id": "sb-1"},
        {"kernel_id": 3},
        [1, 2],
        {"kernel_id": "k", "sandbox_id": 5},
    ):
        refused = post(call, "forkd", "api", "current", doc=doc)
        assert refused.code == 400, doc
        assert body(refused)["type"] == "urn:forkd-jupyter:problem:bad-request"
    not_json = call("forkd", "api", "current", method="POST", body="{")
    assert not_json.code == 400
    assert body(call("forkd", "api", "current"))["current"] == {}


def test_current_sandbox_of_a_stopped_kernel_is_forgotten(call):
    kernel_id = _start_kernel(call)
    post(call, "forkd", "api", "current", doc={"kernel_id": kernel_id, "sandbox_id": "sb-2"})
    assert body(call("forkd", "api", "current"))["current"] == {kernel_id: "sb-2"}
    assert call("api", "kernels", kernel_id, method="DELETE").code == 204
    assert body(call("forkd", "api", "current"))["current"] == {}


def test_report_helper_posts_with_the_server_token(call, jp_asyncio_loop, jp_serverapp):
    kernel_id = _start_kernel(call)
    info = {"url": jp_serverapp.connection_url, "token": jp_serverapp.identity_provider.token}
    try:
        accepted = jp_asyncio_loop.run_until_complete(
            asyncio.to_thread(report_current_sandbox, "sb-9", kernel_id, info)
        )
        assert accepted is True
        got = body(call("forkd", "api", "current", params={"kernel_id": kernel_id}))
        assert got["sandbox_id"] == "sb-9"
        refused = jp_asyncio_loop.run_until_complete(
            asyncio.to_thread(report_current_sandbox, "sb-9", kernel_id, {**info, "token": "x"})
        )
        assert refused is False
    finally:
        call("api", "kernels", kernel_id, method="DELETE")


@pytest.mark.kvm
def test_a_terminal_is_relayed_over_a_jupyter_websocket(call, jp_ws_fetch, jp_asyncio_loop, daemon):
    """terminado's messages pass both ways through the server extension's
    WebSocket to the daemon's; an unknown terminal is refused before the
    upgrade with the daemon's problem."""
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=256)
    term = daemon.open_terminal(rec["id"], cols=70, rows=20)

    async def session() -> str:
        ws = await jp_ws_fetch(
            "forkd", "api", "v1", "sandboxes", rec["id"], "terminals", "websocket", term["id"]
        )
        text = ""
        assert json.loads(await ws.read_message()) == ["setup", {}]
        await ws.write_message(json.dumps(["stdin", "echo $((6*7)); stty size\r"]))
        while "20 70" not in text or "42\r\n" not in text:
            kind, *rest = json.loads(await asyncio.wait_for(ws.read_message(), 30))
            text += rest[0] if kind == "stdout" else ""
        await ws.write_message(json.dumps(["stdin", "exit\r"]))
        while True:
            message = await asyncio.wait_for(ws.read_message(), 30)
            if message is None or json.loads(message)[0] == "disconnect":
                break
        ws.close()
        return text

    try:
        assert "42" in jp_asyncio_loop.run_until_complete(session())
        with pytest.raises(Exception) as refused:
            jp_asyncio_loop.run_until_complete(
                jp_ws_fetch(
                    "forkd", "api", "v1", "sandboxes", rec["id"], "terminals", "websocket", "p-0"
                )  # fmt: skip
            )
        assert "404" in str(refused.value), refused.value
    finally:
        daemon.kill_sandbox(rec["id"])
