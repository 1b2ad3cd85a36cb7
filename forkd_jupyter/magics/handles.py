"""Handle objects the magics return, so results can be assigned and used
from Python: ``kids = %forkd branch -n 3`` then ``kids[0].run("x")``.
They hold ids and speak only to the SDK."""

from __future__ import annotations

import time
from typing import Any

from ..client import Controller
from ..run_result import RunResult

WAIT_POLL_S = 0.05


class SandboxHandle:
    def __init__(self, controller: Controller, record: dict) -> None:
        self._c = controller
        self.id: str = record["id"]
        self.name: str = record.get("name") or record["id"]
        self.node: str | None = record.get("node")  # a cluster node; None: the daemon's host

    @property
    def record(self) -> dict:
        """The daemon's current record (status, busy, parent snapshot...)."""
        return self._c.get_sandbox(self.id)

    @property
    def status(self) -> str:
        return self.record["status"]

    def run(self, code: str, timeout: float | None = None) -> RunResult:
        return self._c.run_cell(self.id, code, timeout=timeout)

    def push(self, name: str, value: Any) -> None:
        self._c.push(self.id, name, value)

    def pull(self, name: str) -> Any:
        return self._c.pull(self.id, name)

    def branch(
        self, n: int = 0, mode: str | None = None, tag: str | None = None, wait: bool = True
    ) -> SandboxList:
        return branch_result(
            self._c, self._c.branch_sandbox(self.id, tag=tag, mode=mode, wait=wait, count=n)
        )

    def interrupt(self) -> None:
        self._c.interrupt(self.id)

    def kill(self) -> None:
        self._c.kill_sandbox(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SandboxHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name != self.id else ""
        node = f" on {self.node}" if self.node else ""
        return f"<sandbox {self.id}{name}{node}>"


class SnapshotHandle:
    def __init__(self, controller: Controller, record: dict) -> None:
        self._c = controller
        self.id: str = record["id"]
        self.tag: str | None = record.get("tag")
        self.mode: str = record["mode"]
        self.pause_ms: float | None = record.get("pause_ms")

    @property
    def record(self) -> dict:
        return self._c.get_snapshot(self.id)

    @property
    def status(self) -> str:
        return self.record["status"]

    def wait(self, timeout: float = 120.0) -> str:
        """Waits until a ``--no-wait`` snapshot is complete; returns its final
        status (``ready`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        while (status := self.status) == "writing":
            if time.monotonic() > deadline:
                raise TimeoutError(f"snapshot {self.id} still writing after {timeout} s")
            time.sleep(WAIT_POLL_S)
        return status

    def children(self) -> SandboxList:
        """The sandboxes spawned from this snapshot so far (with ``--no-wait``
        they appear once the image is complete)."""
        return SandboxList(
            SandboxHandle(self._c, self._c.get_sandbox(i)) for i in self.record["children"]
        )

    def spawn(self, n: int = 1) -> SandboxList:
        records = self._c.spawn_sandboxes(n=n, snapshot_id=self.id)
        return SandboxList(SandboxHandle(self._c, r) for r in records)

    def delete(self, cascade: bool = False) -> list[str]:
        return self._c.delete_snapshot(self.id, cascade=cascade)

    def __repr__(self) -> str:
        tag = f" {self.tag!r}" if self.tag else ""
        pause = "" if self.pause_ms is None else f", paused {self.pause_ms:.2f} ms"
        return f"<snapshot {self.id}{tag} ({self.mode}{pause})>"


class SandboxList(list):
    """Sandboxes (children of ``snapshot`` when made by a branch)."""

    snapshot: SnapshotHandle | None = None

    def __repr__(self) -> str:
        if self.snapshot is not None and not self:  # a branch without children
            return f"{self.snapshot!r}, no children (spawn some: .snapshot.spawn(n))"
        items = ", ".join(repr(s) for s in self)
        source = f" from {self.snapshot!r}" if self.snapshot is not None else ""
        return f"[{items}]{source}"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self]


def branch_result(controller: Controller, out: dict) -> SandboxList:
    kids = SandboxList(SandboxHandle(controller, r) for r in out["children"])
    kids.snapshot = SnapshotHandle(controller, out["snapshot"])
    return kids
