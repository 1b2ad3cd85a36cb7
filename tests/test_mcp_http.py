"""`forkd-jupyter mcp --transport http`: the official MCP client over
streamable HTTP against a real daemon; the daemon's token rules; resource
change events on `subscriptions/listen`."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.client.subscriptions import listen
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_helpers import MCP_COMMAND, http_server, http_session, resource_json, structured

pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("daemon"), pytest.mark.timeout(300)]

TOKEN = "t0ken-for-the-test"


def test_http_needs_the_token_and_serves_tools_and_resource_events(tmp_path):
    async def go(url):
        async with http_session(url, TOKEN, modern=True) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            [sb] = structured(await mcp.call_tool("spawn", {"memory_mib": 256}))["sandboxes"]
            uri = f"forkd://sandboxes/{sb['id']}"
            seen = []
            async with listen(
                mcp, resources_list_changed=True, resource_subscriptions=["forkd://tree", uri]
            ) as events:
                cell = structured(
                    await mcp.call_tool("run_cell", {"sandbox": sb["id"], "code": "2**10"})
                )
                await mcp.call_tool("branch", {"sandbox": sb["id"], "n": 1})
                with anyio.fail_after(20):
                    async for event in events:
                        seen.append(event)
                        kinds = {type(e) for e in seen}
                        if ResourcesListChanged in kinds and any(
                            isinstance(e, ResourceUpdated) and e.uri == "forkd://tree" for e in seen
                        ):
                            break
            record = resource_json(await mcp.read_resource(uri))
            for child in structured(await mcp.call_tool("list_sandboxes", {}))["sandboxes"]:
                await mcp.call_tool("kill", {"sandbox": child["id"]})
            return names, cell, seen, record

    async def legacy(url):
        async with http_session(url, TOKEN, modern=False) as mcp:
            return structured(await mcp.call_tool("list_sandboxes", {"include_dead": False}))

    with http_server(tmp_path / "mcp.log", "--token", TOKEN) as (_, url):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = httpx.post(url, headers=headers, json={}, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["title"] == "Unauthorized"
        names, cell, seen, record = asyncio.run(go(url))
        still = asyncio.run(legacy(url))  # a client of the earlier protocol, same server
    assert {"spawn", "run_cell", "branch", "compare"} <= names
    assert cell["result"] == "1024"
    assert any(isinstance(e, ResourcesListChanged) for e in seen)  # the child appeared
    assert record["id"] and record["status"] == "running"
    assert still["sandboxes"] == []


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_http_on_loopback_needs_no_token_but_checks_the_host_header(tmp_path):
    with http_server(tmp_path / "mcp.log") as (proc, url):

        async def go():
            async with http_session(url) as mcp:
                return {t.name for t in (await mcp.list_tools()).tools}

        assert "tree" in asyncio.run(go())
        # Idle means idle: the server (its event follower included) sleeps.
        before = _cpu_ticks(proc.pid)
        time.sleep(3)
        assert _cpu_ticks(proc.pid) - before <= 6, "the idle MCP server used CPU"
        # DNS rebinding: a page on another origin cannot drive the server.
        hostile = httpx.post(
            url,
            headers={"Host": "evil.example", "Origin": "http://evil.example"},
            json={},
            timeout=10,
        )
        assert hostile.status_code in (403, 421)


def test_http_refuses_a_non_loopback_address_without_a_token():
    done = subprocess.run(
        [*MCP_COMMAND, "--transport", "http", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "without a token" in done.stderr and "0.0.0.0" in done.stderr


def _open_event_stream(url: str, opened: threading.Event, ended: list) -> None:
    """A client of the earlier protocol holding the server's event stream
    (GET) open until the server ends it."""
    accept = {"Accept": "application/json, text/event-stream"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}}
    hello["clientInfo"] = {"name": "test", "version": "1"}
    first = httpx.post(
        url,
        headers=accept,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
    )
    session = {
        "mcp-session-id": first.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    httpx.post(
        url,
        headers={**accept, **session},
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    get = {"Accept": "text/event-stream", **session}
    with httpx.stream("GET", url, headers=get, timeout=None) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        opened.set()
        for _ in events.iter_bytes():
            pass
    ended.append(first.headers["date"])


def test_an_event_stream_leaves_the_server_idle_and_a_sigterm_ends_both(tmp_path):
    with http_server(tmp_path / "mcp.log") as (proc, url):
        opened, ended = threading.Event(), []
        client = threading.Thread(target=_open_event_stream, args=(url, opened, ended), daemon=True)
        client.start()
        assert opened.wait(20), "the event stream did not open"
        # No poll wakes the server while the stream waits for events (a wakeup
        # after an idle spell costs milliseconds of CPU on these machines).
        before = _cpu_ticks(proc.pid)
        time.sleep(3)
        assert _cpu_ticks(proc.pid) - before <= 3, "the idle MCP server used CPU"
        started = time.monotonic()
        proc.terminate()
        proc.wait(15)
        client.join(10)
    assert time.monotonic() - started < 10
    assert ended and "GMT" in ended[0], "the stream did not end, or a response had no Date"
