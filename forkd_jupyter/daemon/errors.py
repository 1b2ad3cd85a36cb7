"""The daemon's own failures (bad JSON, a missing field, a body too large),
as opposed to the controller's."""

from __future__ import annotations

from typing import Any

from . import problems


class ApiError(Exception):
    """A problem found by a handler itself; ``extra`` members are added to
    the problem document (``field`` names the bad input)."""

    def __init__(self, status: int, detail: str, kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra
        self.kind = kind or problems.KIND_BY_STATUS.get(status, "internal")
