"""Tools that run code: run_cell and compare."""

from __future__ import annotations

from typing import Annotated

import anyio
import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import Field

from ..client import Controller
from ..run_result import RunResult
from .calls import daemon_call
from .models import Answer, Cell, Comparison, GuestError
from .tools_sandboxes import SandboxRef

Timeout = Annotated[
    float | None, Field(gt=0, le=86400, description="seconds before the cell is cut")
]
PNG = "image/png"


def _text(bundle: dict | None) -> str | None:
    if not bundle:
        return None
    return str(bundle.get("text/plain", "")) or None


def _error(run: RunResult) -> GuestError | None:
    if run.error is None:
        return None
    return GuestError(
        ename=run.error.ename, evalue=run.error.evalue, traceback=run.error.plain_traceback
    )


def cell_record(sandbox: str, run: RunResult) -> Cell:
    return Cell(
        sandbox=sandbox,
        ok=run.ok,
        stdout=run.stdout,
        stderr=run.stderr,
        result=_text(run.result),
        error=_error(run),
        execution_count=run.execution_count,
        displays=[t for t in (_text(d) for d in run.displays) if t],
        images=sum(1 for d in run.displays if PNG in d),
    )


def cell_summary(cell: Cell) -> str:
    """The cell as an agent reads it: output, then the value or the error."""
    parts = []
    if cell.stdout:
        parts.append(cell.stdout.rstrip("\n"))
    if cell.stderr:
        parts.append("[stderr]\n" + cell.stderr.rstrip("\n"))
    parts.extend(cell.displays)
    if cell.error is not None:
        parts.append(cell.error.traceback or f"{cell.error.ename}: {cell.error.evalue}")
    elif cell.result is not None:
        parts.append(f"Out[{cell.execution_count}]: {cell.result}")
    return "\n".join(parts) or "(no output)"


def register(server: MCPServer, controller: Controller) -> None:
    @server.tool(
        title="Run a cell",
        description=(
            "Run Python code in a sandbox, as a notebook cell: variables persist between "
            "cells, the last expression's value is the result. Returns stdout, stderr, the "
            "result as text, the error with its traceback when the cell raised (ok=false), "
            "and PNG displays (matplotlib figures) as images. Output is streamed as progress "
            "messages while the cell runs."
        ),
    )
    async def run_cell(
        ctx: Context, code: str, sandbox: SandboxRef, timeout: Timeout = None
    ) -> Annotated[CallToolResult, Cell]:
        lines = 0
        partial = {"stdout": "", "stderr": ""}

        def on_output(name: str, text: str) -> None:  # in the worker thread
            # One progress message per complete line the cell printed.
            nonlocal lines
            done, _, partial[name] = (partial.get(name, "") + text).rpartition("\n")
            for line in done.split("\n") if done or text.startswith("\n") else ():
                lines += 1
                anyio.from_thread.run(ctx.report_progress, lines, None, f"[{name}] {line[:2000]}")

        run = await daemon_call(controller.run_cell, sandbox, code, on_output, timeout)
        cell = cell_record(sandbox, run)
        content: list = [TextContent(type="text", text=cell_summary(cell))]
        content += [
            ImageContent(type="image", data=str(d[PNG]).strip(), mime_type=PNG)
            for d in run.displays
            if PNG in d
        ]
        return CallToolResult(content=content, structured_content=cell.model_dump(mode="json"))

    @server.tool(
        title="Compare sandboxes",
        description=(
            "Run one expression (or cell) in several sandboxes at once and return the "
            "answers side by side, in the order given: which branch won."
        ),
    )
    async def compare(
        expression: str,
        sandboxes: Annotated[list[str], Field(min_length=1, max_length=64)],
        timeout: Timeout = None,
    ) -> Comparison:
        answers: list[Answer | None] = [None] * len(sandboxes)
        failures: list[ToolError] = []

        async def one(i: int, sandbox: str) -> None:
            try:
                run = await daemon_call(controller.run_cell, sandbox, expression, None, timeout)
            except ToolError as e:  # kept, so the group's other runs finish
                failures.append(ToolError(f"{sandbox}: {e}"))
                return
            answers[i] = Answer(
                sandbox=sandbox,
                ok=run.ok,
                result=_text(run.result),
                stdout=run.stdout,
                error=_error(run),
            )

        async with anyio.create_task_group() as tg:
            for i, sandbox in enumerate(sandboxes):
                tg.start_soon(one, i, sandbox)
        if failures:
            raise failures[0]
        done = [a for a in answers if a is not None]
        outcomes = {a.result if a.ok else f"{a.error.ename}: {a.error.evalue}" for a in done}
        return Comparison(expression=expression, answers=done, distinct=len(outcomes))
