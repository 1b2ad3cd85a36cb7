"""``forkd-jupyter mcp``: an MCP server (the official ``mcp`` SDK) through
which agents spawn, run, branch and compare sandboxes. It is a client of the
user's daemon like every other: it talks to it only through the SDK
(``forkd_jupyter.client``). docs/mcp.md has the tools and resources."""

from .server import build_server

__all__ = ["build_server"]
