"""Tools that make and end sandboxes: spawn, list_sandboxes,
spawn_from_snapshot, kill."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from ..client import Controller
from .calls import daemon_call, daemon_call_with_progress
from .models import Sandbox, Sandboxes

SandboxRef = Annotated[str, Field(description="a sandbox id (sb-N) or name")]
Count = Annotated[int, Field(ge=1, le=64, description="how many sandboxes")]


def register(server: MCPServer, controller: Controller) -> None:
    @server.tool(
        title="Spawn sandboxes",
        description=(
            "Start n new sandboxes running this server's Python environment (or the "
            "interpreter at `python`). `live_fork` lets them be branched without stopping "
            "their cells; `preload` names modules the environment's warm base imports."
        ),
    )
    async def spawn(
        ctx: Context,
        n: Count = 1,
        name: Annotated[str | None, Field(description="a name (only with n=1)")] = None,
        memory_mib: Annotated[int | None, Field(description="guest memory in MiB")] = None,
        live_fork: bool = True,
        preload: list[str] | None = None,
        python: Annotated[str | None, Field(description="a Python interpreter path")] = None,
    ) -> Sandboxes:
        records = await daemon_call_with_progress(
            ctx,
            f"spawning {n} sandbox{'es' if n > 1 else ''}",
            controller.spawn_sandboxes,
            n=n,
            live_fork=live_fork,
            memory_limit_mib=memory_mib,
            name=name,
            python=python,
            preload=preload,
        )
        return Sandboxes(sandboxes=records)

    @server.tool(
        title="Spawn from a snapshot",
        description="Start n children of a snapshot (id or tag): each begins in its state.",
    )
    async def spawn_from_snapshot(
        ctx: Context,
        snapshot: Annotated[str, Field(description="a snapshot id (snap-N) or tag")],
        n: Count = 1,
        name: Annotated[str | None, Field(description="a name (only with n=1)")] = None,
    ) -> Sandboxes:
        records = await daemon_call_with_progress(
            ctx,
            f"spawning {n} from {snapshot}",
            controller.spawn_sandboxes,
            n=n,
            snapshot_id=snapshot,
            name=name,
        )
        return Sandboxes(sandboxes=records)

    @server.tool(
        title="List sandboxes",
        description="The daemon's sandboxes; dead ones keep their record and exit_reason.",
    )
    async def list_sandboxes(include_dead: bool = True) -> Sandboxes:
        records = await daemon_call(controller.list_sandboxes)
        if not include_dead:
            records = [r for r in records if r.get("status") != "dead"]
        return Sandboxes(sandboxes=records)

    @server.tool(
        title="Interrupt a sandbox",
        description=(
            "Interrupt the cell a sandbox is running (as Ctrl-C in a notebook): the run_cell "
            "call waiting on it answers with a KeyboardInterrupt error; the sandbox and its "
            "state stay."
        ),
    )
    async def interrupt(sandbox: SandboxRef) -> Sandbox:
        await daemon_call(controller.interrupt, sandbox)
        return Sandbox(**await daemon_call(controller.get_sandbox, sandbox))

    @server.tool(
        title="Kill a sandbox",
        description=(
            "Stop a sandbox (a running cell is cut). Its record stays, dead, unless "
            "`remove` is true. Snapshots taken of it are kept."
        ),
    )
    async def kill(sandbox: SandboxRef, remove: bool = False) -> Sandbox:
        record = await daemon_call(controller.get_sandbox, sandbox)
        if record["status"] != "dead":  # killing a dead sandbox removes its record
            record = await daemon_call(controller.kill_sandbox, record["id"])
            if not remove:
                return Sandbox(**record)
        elif not remove:
            return Sandbox(**record)
        return Sandbox(**await daemon_call(controller.kill_sandbox, record["id"]))
