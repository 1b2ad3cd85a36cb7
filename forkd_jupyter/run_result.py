"""The outcome of running a cell: plain records shared by every layer (the
VMM produces them, the daemon sends them as JSON, the SDK rebuilds them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

OutputCallback = Callable[[str, str], None]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(eq=False)
class GuestError(Exception):
    """An exception raised by code in the guest. A plain record (``to_dict``
    / ``from_dict``, picklable) that can also be raised on the host."""

    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.ename, self.evalue)

    def __str__(self) -> str:
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    def __reduce__(self) -> tuple:
        return (type(self), (self.ename, self.evalue, list(self.traceback)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GuestError):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = Exception.__hash__

    @property
    def plain_traceback(self) -> str:
        """The traceback as one string without terminal colour codes."""
        return _ANSI.sub("", "\n".join(self.traceback))

    def to_dict(self) -> dict:
        return {"ename": self.ename, "evalue": self.evalue, "traceback": list(self.traceback)}

    @classmethod
    def from_dict(cls, d: dict) -> GuestError:
        tb = d.get("traceback") or []
        return cls(str(d.get("ename", "Error")), str(d.get("evalue", "")), [str(x) for x in tb])


@dataclass
class RunResult:
    """The outcome of one request. ``displays`` holds the mime bundles of
    display frames in arrival order; ``display_metadata`` is parallel to it."""

    stdout: str
    stderr: str
    result: dict | None
    displays: list[dict]
    error: GuestError | None
    execution_count: int | None
    display_metadata: list[dict] = field(default_factory=list)
    result_metadata: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "result": self.result,
            "result_metadata": self.result_metadata,
            "displays": [
                {"data": d, "metadata": m}
                for d, m in zip(self.displays, self._metadata_list(), strict=True)
            ],
            "error": None if self.error is None else self.error.to_dict(),
            "execution_count": self.execution_count,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunResult:
        displays = d.get("displays") or []
        err = d.get("error")
        return cls(
            stdout=d.get("stdout", ""),
            stderr=d.get("stderr", ""),
            result=d.get("result"),
            displays=[x.get("data", {}) for x in displays],
            error=None if err is None else GuestError.from_dict(err),
            execution_count=d.get("execution_count"),
            display_metadata=[x.get("metadata", {}) for x in displays],
            result_metadata=d.get("result_metadata") or {},
        )

    def _metadata_list(self) -> list[dict]:
        md = list(self.display_metadata)
        return md + [{}] * (len(self.displays) - len(md))
