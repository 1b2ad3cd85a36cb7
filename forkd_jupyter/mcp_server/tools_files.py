"""Tools for the sandbox's files: read_file and write_file. They go through
the daemon's file routes, so the same path rules hold (the sandbox's own
writable layer and the read-only view of its environment; the host's other
files are not visible)."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from ..client import Controller
from .calls import daemon_call
from .models import FileContent, Written
from .tools_sandboxes import SandboxRef

GuestPath = Annotated[str, Field(description="an absolute path in the sandbox, e.g. /sandbox/a.py")]
MAX_READ_BYTES = 16 * 1024 * 1024


def register(server: MCPServer, controller: Controller) -> None:
    @server.tool(
        title="Read a file",
        description=(
            "Read a file in the sandbox (text as utf-8, anything else as base64), or list "
            "a directory's entries."
        ),
    )
    async def read_file(sandbox: SandboxRef, path: GuestPath) -> FileContent:
        info = await daemon_call(controller.stat, sandbox, path)
        if info["type"] == "dir":
            entries = await daemon_call(controller.list_dir, sandbox, path)
            return FileContent(path=info["path"], kind="directory", entries=entries)
        if info["size"] > MAX_READ_BYTES:
            raise ToolError(
                f"{path} is {info['size']} bytes; read_file returns at most {MAX_READ_BYTES}"
            )
        data = await daemon_call(controller.read_file, sandbox, path)
        try:
            content, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            content, encoding = base64.b64encode(data).decode(), "base64"
        return FileContent(
            path=info["path"], kind="file", size=len(data), encoding=encoding, content=content
        )

    @server.tool(
        title="Write a file",
        description=(
            "Write a file in the sandbox's writable layer (parent directories are created, "
            "an existing file is replaced). `content` is text, or base64 with "
            "encoding=base64."
        ),
    )
    async def write_file(
        sandbox: SandboxRef,
        path: GuestPath,
        content: str,
        encoding: Literal["utf-8", "base64"] = "utf-8",
    ) -> Written:
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except ValueError:
                raise ToolError("content is not valid base64") from None
        else:
            data = content.encode("utf-8")
        written = await daemon_call(controller.write_file, sandbox, path, data)
        return Written(path=written["path"], size=written["size"])
