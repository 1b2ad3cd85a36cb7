"""Clients of `forkd-jupyter mcp` for the tests: the official MCP SDK's own
ClientSession, over stdio (the server as a subprocess) and over streamable
HTTP (the server started with --transport http)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx2
from daemon_fixture import stop_process
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

MCP_COMMAND = [sys.executable, "-m", "forkd_jupyter", "mcp"]


@asynccontextmanager
async def stdio_session(**session_kw) -> AsyncIterator[ClientSession]:
    """An initialized session with a server started over stdio; the server
    inherits this process's environment, so it reaches the test daemon."""
    params = StdioServerParameters(
        command=MCP_COMMAND[0], args=MCP_COMMAND[1:], env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, **session_kw) as session:
            await session.initialize()
            yield session


@contextmanager
def http_server(log: Path, *args: str):
    """``forkd-jupyter mcp --transport http --port 0 ARGS``; yields (process,
    url) once it prints where it listens."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*MCP_COMMAND, "--transport", "http", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"serving on (http://\S+)", log.read_text())
            if found:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the MCP server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield proc, found.group(1)
    finally:
        stop_process(proc, 20)


@asynccontextmanager
async def http_session(
    url: str, token: str | None = None, modern: bool = False, **session_kw
) -> AsyncIterator[ClientSession]:
    """A session over streamable HTTP: ``modern`` negotiates with
    server/discover (subscriptions/listen), else with initialize."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, **session_kw) as session:
                if modern:
                    await session.discover()
                else:
                    await session.initialize()
                yield session


def structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, result.structured_content
    return " ".join(c.text for c in result.content if c.type == "text")


def resource_json(read_result) -> dict:
    return json.loads(read_result.contents[0].text)
