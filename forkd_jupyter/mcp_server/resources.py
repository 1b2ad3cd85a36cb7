"""The MCP resources: the branch tree (``forkd://tree``) and each sandbox's
record (``forkd://sandboxes/{id}``), as JSON, kept current by following the
daemon's event stream.

Invariants:
- Reads always ask the daemon: a resource is never older than the read.
- Every daemon event that changes a record publishes ``ResourceUpdated`` for
  the tree and for that sandbox to ``subscriptions/listen`` streams, and a
  sandbox created or removed also ``ResourcesListChanged``. Clients of the
  earlier protocol that called ``resources/subscribe`` get
  ``notifications/resources/updated`` for the URIs they subscribed to.
- When the event stream breaks (the daemon restarted), the follower
  reconnects and publishes a change of everything: what happened in between
  is unknown."""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp.types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
)

from ..client import Controller, DaemonUnavailable, ForkdError
from .calls import problem_message

log = logging.getLogger(__name__)

TREE_URI = "forkd://tree"
SANDBOX_URI = "forkd://sandboxes/{sandbox_id}"
RECONNECT_DELAY_S = 1.0


def sandbox_uri(sandbox_id: str) -> str:
    return f"forkd://sandboxes/{sandbox_id}"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)


async def _read(fn, *args) -> Any:
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    except ForkdError as e:
        raise ResourceError(problem_message(e)) from None


def register(server: MCPServer, controller: Controller) -> None:
    @server.resource(
        TREE_URI,
        name="branch-tree",
        title="Branch tree",
        description="Sandboxes and snapshots as nodes, branch/spawn/diff-parent edges",
        mime_type="application/json",
    )
    async def tree() -> str:
        return _json(await _read(controller.tree))

    @server.resource(
        SANDBOX_URI,
        name="sandbox",
        title="Sandbox record",
        description="One sandbox's record (status, parent snapshot, memory, python)",
        mime_type="application/json",
    )
    async def sandbox(sandbox_id: str) -> str:
        return _json(await _read(controller.get_sandbox, sandbox_id))


async def sandbox_resources(controller: Controller) -> list[types.Resource]:
    """One concrete resource per sandbox the daemon knows, for resources/list."""
    records = await _read(controller.list_sandboxes)
    return [
        types.Resource(
            uri=sandbox_uri(r["id"]),
            name=f"sandbox {r.get('name') or r['id']}",
            title=f"Sandbox {r.get('name') or r['id']} ({r.get('status')})",
            mime_type="application/json",
        )
        for r in records
    ]


def events_to_publish(event: dict) -> list[ServerEvent]:
    """What one daemon event changes, as MCP subscription events."""
    out: list[ServerEvent] = [ResourceUpdated(uri=TREE_URI)]
    if event.get("type") == "sandbox" or "sandbox" in event:
        record = event.get("sandbox") or {}
        if record.get("id"):
            out.append(ResourceUpdated(uri=sandbox_uri(record["id"])))
        if event.get("action") in ("created", "removed"):
            out.append(ResourcesListChanged())
    return out


class LegacySubscriptions:
    """``resources/subscribe`` for clients of the earlier protocol: the
    connections (weakly held: a closed one drops out) and the URIs each
    subscribed to. A request's ``ctx.session`` lives only as long as the
    request, so the connection behind it is what is kept."""

    def __init__(self) -> None:
        self._by_session: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def install(self, server: MCPServer) -> None:
        low = server._lowlevel_server  # the SDK has no MCPServer-level hook for these

        async def subscribe(ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
            self._by_session.setdefault(_connection(ctx), set()).add(str(params.uri))
            return types.EmptyResult()

        async def unsubscribe(ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
            self._by_session.get(_connection(ctx), set()).discard(str(params.uri))
            return types.EmptyResult()

        low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
        low.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe
        )

    async def deliver(self, event: ServerEvent) -> None:
        if not isinstance(event, ResourceUpdated):
            return
        for session, uris in list(self._by_session.items()):
            if event.uri in uris:
                try:
                    await session.send_resource_updated(event.uri)
                except Exception:  # a closed session: forget it
                    self._by_session.pop(session, None)


def _connection(ctx) -> Any:
    """The connection a request came on (it outlives the request's session
    proxy and sends notifications on the connection's own channel)."""
    return getattr(ctx.session, "_connection", ctx.session)


class EventFollower:
    """A thread that reads the daemon's events and publishes what they change
    on the server's event loop. Started once, by the first session; it lives
    as long as the server's process (it ends when the event loop is gone)."""

    def __init__(
        self, controller: Controller, bus: InMemorySubscriptionBus, legacy: LegacySubscriptions
    ) -> None:
        self._controller = controller
        self._bus = bus
        self._legacy = legacy
        self._started = False

    def start(self) -> None:
        """Called on the server's event loop."""
        if self._started:
            return
        self._started = True
        token = anyio.lowlevel.current_token()
        threading.Thread(
            target=self._run, args=(token,), name="forkd-mcp-events", daemon=True
        ).start()

    async def _publish(self, events: list[ServerEvent]) -> None:
        for event in events:
            await self._bus.publish(event)
            await self._legacy.deliver(event)

    def _run(self, token) -> None:
        first = True
        while True:
            try:
                stream = self._controller.events()
                if not first:  # back after a break: anything may have changed
                    anyio.from_thread.run(
                        self._publish,
                        [ResourceUpdated(uri=TREE_URI), ResourcesListChanged()],
                        token=token,
                    )
                first = False
                for event in stream:
                    anyio.from_thread.run(self._publish, events_to_publish(event), token=token)
            except (DaemonUnavailable, ForkdError) as e:
                log.info("daemon event stream broke (%s); reconnecting", e)
            except RuntimeError:  # the event loop is gone: the server stopped
                return
            time.sleep(RECONNECT_DELAY_S)
