"""`mcp`: serve the MCP server (docs/mcp.md) on stdio, for an agent that
starts it as a subprocess, or on streamable HTTP."""

from __future__ import annotations

import argparse
import os

from .common import connect, fail, register


def _mcp_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default: the agent starts this command) or streamable HTTP",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (0: any free port)")
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token HTTP clients must send (or FORKD_JUPYTER_MCP_TOKEN); "
        "required for a non-loopback --host",
    )


def _mcp(args: argparse.Namespace) -> int:
    from ..mcp_server import build_server

    token = args.token or os.environ.get("FORKD_JUPYTER_MCP_TOKEN") or None
    if args.transport == "http":
        from ..mcp_server.http import refusal, serve_http

        reason = refusal(args.host, token)
        if reason:
            return fail(reason)
    from ..mcp_server.daemon_link import RestartingController

    connect().close()  # the address is valid and the daemon up (started when needed)
    server = build_server(RestartingController())
    if args.transport == "stdio":
        server.run("stdio")
    else:
        serve_http(server, args.host, args.port, token)
    return 0


register(
    "mcp",
    "serve an MCP server through which agents spawn, run, branch and compare sandboxes",
    _mcp_args,
    _mcp,
)
