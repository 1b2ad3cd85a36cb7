"""Calling the (blocking) SDK from the server's event loop.

Invariant: every daemon call made by a tool goes through ``daemon_call``, so
it runs in a worker thread (the event loop keeps serving other requests and
notifications) and a daemon error becomes an MCP tool error carrying the
daemon's problem title and detail, never a crashed server."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from ..client import ForkdError

T = TypeVar("T")

# How often a long call reports that it is still going.
PROGRESS_INTERVAL_S = 0.5


def problem_message(error: ForkdError) -> str:
    """``title: detail``, as the daemon's problem document gives them."""
    title = error.title or type(error).__name__
    return f"{title}: {error.detail}" if error.detail and error.detail != title else title


async def daemon_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    except ForkdError as e:
        raise ToolError(problem_message(e)) from None


async def daemon_call_with_progress(
    ctx: Context | None, label: str, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``daemon_call`` that reports MCP progress while it waits: at the
    start, every PROGRESS_INTERVAL_S and at the end. ``progress`` is the
    seconds elapsed (so it only grows, as the protocol requires); the last
    report has ``total == progress``. A no-op for a caller that asked for no
    progress."""
    if ctx is None:
        return await daemon_call(fn, *args, **kwargs)
    start = time.monotonic()

    def elapsed() -> float:
        return round(time.monotonic() - start, 3)

    await ctx.report_progress(0.0, None, f"{label}: started")
    result: list[T] = []
    failure: list[ToolError] = []
    async with anyio.create_task_group() as tg:

        async def tick() -> None:
            while True:
                await anyio.sleep(PROGRESS_INTERVAL_S)
                now = elapsed()
                await ctx.report_progress(now, None, f"{label}: {now:.1f} s")

        tg.start_soon(tick)
        try:
            result.append(await daemon_call(fn, *args, **kwargs))
        except ToolError as e:  # raised outside the group, so it is not wrapped in one
            failure.append(e)
        finally:
            tg.cancel_scope.cancel()
    if failure:
        raise failure[0]
    done = max(elapsed(), 0.001)
    await ctx.report_progress(done, done, f"{label}: done in {done:.1f} s")
    return result[0]
