"""The tools' structured outputs. Records mirror the daemon's JSON records
(docs/rest-api.md): the fields an agent needs are typed, the rest pass
through (``extra="allow"``), so a newer daemon's fields are not lost."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Sandbox(Record):
    id: str
    name: str | None = None
    status: str = Field(description="running or dead")
    busy: bool = False
    live_fork: bool | None = None
    memory_limit_mib: int | None = None
    parent_snapshot: str | None = None
    exit_reason: str | None = None
    execution_count: int | None = None
    python: str | None = None
    created_at: float | None = None


class Snapshot(Record):
    id: str
    tag: str | None = None
    mode: str | None = Field(None, description="full, diff or live")
    status: str = Field(description="writing, ready or failed")
    source_id: str | None = None
    parent: str | None = None
    children: list[str] = []
    pause_ms: float | None = Field(None, description="how long the source's vCPU was stopped")
    stall_ms: float | None = Field(
        None, description="the longest single freeze the running cell felt"
    )
    stall_total_ms: float | None = Field(None, description="the pause plus every held write")
    round_trip_ms: float | None = None
    ready_ms: float | None = None
    saved_path: str | None = None
    error: str | None = None
    created_at: float | None = None


class Sandboxes(BaseModel):
    sandboxes: list[Sandbox]


class Snapshots(BaseModel):
    snapshots: list[Snapshot]


class Branch(BaseModel):
    snapshot: Snapshot
    children: list[Sandbox]


class Deleted(BaseModel):
    deleted: list[str] = Field(description="ids of what was deleted (dependents included)")


class GuestError(BaseModel):
    ename: str
    evalue: str
    traceback: str = Field(description="the guest's traceback, without colour codes")


class Cell(BaseModel):
    sandbox: str
    ok: bool = Field(description="false when the cell raised (see error)")
    stdout: str
    stderr: str
    result: str | None = Field(description="the value of the last expression, as text")
    error: GuestError | None
    execution_count: int | None
    displays: list[str] = Field(description="text of each display() the cell made")
    images: int = Field(description="PNG displays, returned as image content")


class Answer(BaseModel):
    sandbox: str
    ok: bool
    result: str | None
    stdout: str
    error: GuestError | None


class Comparison(BaseModel):
    expression: str
    answers: list[Answer] = Field(description="one per sandbox, in the order asked")
    distinct: int = Field(description="how many different results there are")


class Tree(BaseModel):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    seq: int | None = None


class FileContent(BaseModel):
    path: str
    kind: Literal["file", "directory"]
    size: int | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    content: str | None = Field(None, description="the file's bytes, in `encoding`")
    entries: list[dict[str, Any]] | None = Field(None, description="a directory's entries")


class Written(BaseModel):
    path: str
    size: int
