"""The server object: tools and resources over one SDK ``Controller``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import mcp.types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from .. import __version__
from ..client import Controller
from . import daemon_link, resources, tools_cells, tools_files, tools_sandboxes, tools_snapshots

INSTRUCTIONS = """\
Forkable Python sandboxes (real CPython in KVM micro-VMs). Spawn a sandbox,
run cells in it (state persists between cells, like a notebook kernel), then
`branch` it: each child starts from the exact in-memory state of the source
(loaded data, trained models, open files), in milliseconds. Try different
fixes or parameters in the children, `compare` one expression across them,
keep the best and `kill` the rest. Files live in the sandbox's own layer
(/sandbox, /tmp); the host's files are never touched."""


class ForkdMCPServer(MCPServer):
    """MCPServer whose resource list also names every sandbox the daemon
    knows (``forkd://sandboxes/{id}``), not only the static tree."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.bus = InMemorySubscriptionBus()
        self.legacy_subscriptions = resources.LegacySubscriptions()
        self.follower = resources.EventFollower(controller, self.bus, self.legacy_subscriptions)
        super().__init__(
            name="forkd-jupyter",
            title="forkd-jupyter sandboxes",
            instructions=INSTRUCTIONS,
            version=__version__,
            subscriptions=self.bus,
            lifespan=_follow_events,
            log_level="WARNING",
        )
        self.legacy_subscriptions.install(self)

    async def list_resources(self) -> list[types.Resource]:
        return [
            *await super().list_resources(),
            *await resources.sandbox_resources(self.controller),
        ]


@asynccontextmanager
async def _follow_events(server: ForkdMCPServer) -> AsyncIterator[None]:
    server.follower.start()
    yield None


def build_server(controller: Controller | None = None) -> ForkdMCPServer:
    """The MCP server for the user's daemon (``controller``: the default
    one, started when needed, and again after it stopped)."""
    server = ForkdMCPServer(controller or daemon_link.RestartingController())
    for module in (tools_sandboxes, tools_cells, tools_snapshots, tools_files):
        module.register(server, server.controller)
    resources.register(server, server.controller)
    return server
