"""Tools for branching and snapshots: branch, snapshots, delete_snapshot,
tree."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from ..client import Controller
from .calls import daemon_call, daemon_call_with_progress
from .models import Branch, Deleted, Snapshots, Tree
from .tools_sandboxes import SandboxRef

SnapshotRef = Annotated[str, Field(description="a snapshot id (snap-N) or tag")]


def register(server: MCPServer, controller: Controller) -> None:
    @server.tool(
        title="Branch a sandbox",
        description=(
            "Snapshot a running sandbox and start n children from it; each child continues "
            "from the source's exact state, and the source goes on. mode: live (default for "
            "live_fork sandboxes; sub-millisecond pause, image copied while the source "
            "runs), diff (only pages written since its previous snapshot) or full. "
            "wait=false (live or diff) returns before the image is complete. The result "
            "carries the pause and the stall the running cell felt, in ms."
        ),
    )
    async def branch(
        ctx: Context,
        sandbox: SandboxRef,
        n: Annotated[int, Field(ge=0, le=64, description="children to start")] = 1,
        mode: Literal["live", "diff", "full"] | None = None,
        wait: bool = True,
        tag: Annotated[str | None, Field(description="a tag naming the snapshot")] = None,
    ) -> Branch:
        done = await daemon_call_with_progress(
            ctx,
            f"branching {sandbox} ({mode or 'default mode'})",
            controller.branch_sandbox,
            sandbox,
            tag=tag,
            mode=mode,
            wait=wait,
            count=n,
        )
        return Branch(**done)

    @server.tool(
        title="Snapshots",
        description=(
            "All snapshots, or the one named: status, mode, source, children, and the "
            "timings (pause_ms, stall_ms, stall_total_ms, round_trip_ms, ready_ms)."
        ),
    )
    async def snapshots(snapshot: SnapshotRef | None = None) -> Snapshots:
        if snapshot is None:
            return Snapshots(snapshots=await daemon_call(controller.list_snapshots))
        return Snapshots(snapshots=[await daemon_call(controller.get_snapshot, snapshot)])

    @server.tool(
        title="Delete a snapshot",
        description=(
            "Delete a snapshot. One with live children or snapshots built on it is refused "
            "(the error names them) unless cascade=true, which kills and deletes those too."
        ),
    )
    async def delete_snapshot(snapshot: SnapshotRef, cascade: bool = False) -> Deleted:
        return Deleted(deleted=await daemon_call(controller.delete_snapshot, snapshot, cascade))

    @server.tool(
        title="Branch tree",
        description=(
            "Sandboxes and snapshots as nodes; edges source->snapshot (branch), "
            "snapshot->child (spawn), snapshot->snapshot (diff-parent)."
        ),
    )
    async def tree() -> Tree:
        return Tree(**await daemon_call(controller.tree))
