"""Snapshot: a sandbox frozen at one instant, and the children spawned
from it (copy-on-write views of its memory image)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import weakref
from typing import TYPE_CHECKING

from ._ffi import ffi, lib
from .errors import SandboxError, SnapshotBusy, check

if TYPE_CHECKING:
    from .sandbox import Sandbox

MODES: dict[str, int] = {
    "full": lib.FJ_SNAP_FULL,
    "diff": lib.FJ_SNAP_DIFF,
    "live": lib.FJ_SNAP_LIVE,
}
STATUSES = {
    lib.FJ_SNAP_WRITING: "writing",
    lib.FJ_SNAP_READY: "ready",
    lib.FJ_SNAP_FAILED: "failed",
}
_ids = itertools.count(1)
SAVED_FORMAT = 1  # meta.json beside the C core's files; see docs/snapshots.md


class Snapshot:
    """Immutable once ``status == "ready"``. Create with ``Sandbox.snapshot``."""

    def __init__(self, handle, mode: str, source: Sandbox, parent: Snapshot | None) -> None:
        self._setup(handle, mode, source.id, parent, source.memory_mib, source.live_fork)
        self._guest_pid = source.guest_pid
        self.layer_limit_bytes = source.layer_limit_bytes

    def _setup(self, handle, mode, source_id, parent, memory_mib, live_fork) -> None:
        self.id = f"snap-{next(_ids)}"
        self.mode = mode
        self.source_id = source_id
        self.parent = parent
        self._memory_mib = memory_mib
        self._live_fork = live_fork
        self._handle = handle
        self._lock = threading.Lock()
        self._children: weakref.WeakSet[Sandbox] = weakref.WeakSet()
        self._dependents: weakref.WeakSet[Snapshot] = weakref.WeakSet()
        if parent is not None:
            parent._dependents.add(self)
        self._finalizer = weakref.finalize(self, lib.fj_snapshot_release, handle)

    def _info(self):
        if not self._finalizer.alive:
            raise SandboxError(f"snapshot {self.id} is closed")
        info = ffi.new("struct fj_snapshot_info *")
        lib.fj_snapshot_get_info(self._handle, info)
        return info

    @property
    def status(self) -> str:
        return STATUSES[self._info().status]

    @property
    def pause_ms(self) -> float:
        return self._info().pause_ms

    @property
    def copy_ms(self) -> float:
        return self._info().copy_ms

    @property
    def logical_bytes(self) -> int:
        return self._info().logical_bytes

    @property
    def memory_mib(self) -> int:
        """Guest memory of the sandboxes it spawns (its source's size)."""
        return self._memory_mib

    @property
    def physical_bytes(self) -> int:
        return self._info().physical_bytes

    @property
    def dirty_bytes(self) -> int:
        """Guest memory written since the source's previous snapshot: what a
        diff snapshot at this instant holds, whatever this one's mode."""
        return self._info().dirty_bytes

    @property
    def error(self) -> str | None:
        text = ffi.string(self._info().error).decode(errors="replace")
        return text or None

    def wait(self, timeout: float | None = None) -> Snapshot:
        """Blocks until the snapshot is ready; raises if it failed."""
        self._info()
        ns = -1 if timeout is None else int(timeout * 1e9)
        ret = lib.fj_snapshot_wait(self._handle, ns)
        if ret == -110:  # ETIMEDOUT
            raise TimeoutError(f"snapshot {self.id} still writing after {timeout} s")
        if ret < 0:
            raise SandboxError(f"snapshot {self.id} failed: {self.error or 'unknown error'}")
        return self

    def spawn(self, n: int = 1, *, timeout: float = 60.0) -> list[Sandbox]:
        """n children, each starting from this snapshot's state. A snapshot
        still writing is waited for (a child never sees a half-written image)."""
        from .sandbox import Sandbox

        if not isinstance(n, int) or n < 1:
            raise ValueError("n must be a positive integer")
        self.wait()
        children = []
        for _ in range(n):
            host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out = ffi.new("fj_sandbox **")
            try:
                check(
                    lib.fj_snapshot_spawn(self._handle, guest.fileno(), out), "spawn from snapshot"
                )
            except BaseException:
                host.close()
                for c in children:
                    c.close()
                raise
            finally:
                guest.close()
            child = Sandbox._adopt(out[0], host, self._memory_mib, self._live_fork, parent=self)
            self._children.add(child)
            children.append(child)
        return children

    def save(self, path: str | os.PathLike) -> None:
        """Writes this snapshot to the directory ``path`` (created if
        needed), waiting until it is ready. The saved snapshot stands alone:
        a diff chain is folded into one memory image (docs/snapshots.md)."""
        self.wait()
        path = os.fspath(path)
        os.makedirs(path, mode=0o700, exist_ok=True)
        check(lib.fj_snapshot_save(self._handle, path.encode()), f"save snapshot to {path}")
        meta = {
            "format": SAVED_FORMAT,
            "mode": self.mode,
            "source_id": self.source_id,
            "memory_mib": self._memory_mib,
            "live_fork": self._live_fork,
            "guest_pid": self._guest_pid,
            "layer_limit_bytes": self.layer_limit_bytes,
        }
        with open(os.path.join(path, "meta.json"), "w") as f:
            json.dump(meta, f)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Snapshot:
        """A snapshot saved by :meth:`save`, ready to spawn children."""
        path = os.fspath(path)
        try:
            with open(os.path.join(path, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise SandboxError(f"{path} is not a saved snapshot ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != SAVED_FORMAT:
            raise SandboxError(f"{path} holds a snapshot of another format")
        out = ffi.new("fj_snapshot **")
        check(lib.fj_snapshot_load(path.encode(), out), f"load snapshot from {path}")
        snap = cls.__new__(cls)
        snap._setup(
            out[0],
            str(meta.get("mode", "full")),
            str(meta.get("source_id", "")),
            None,
            int(meta.get("memory_mib", 0)),
            bool(meta.get("live_fork", True)),
        )
        snap._guest_pid = int(meta.get("guest_pid", 0))
        limit = meta.get("layer_limit_bytes")
        snap.layer_limit_bytes = limit if isinstance(limit, int) else None
        return snap

    def dependents(self) -> list[str]:
        """Ids of live children and snapshots that build on this one."""
        return [c.id for c in self._children if c.alive] + [
            s.id for s in self._dependents if s._finalizer.alive
        ]

    def close(self, force: bool = False) -> None:
        """Releases the image. Refused while children or snapshots built on it
        are alive, unless force (they keep their own reference to the memory
        and stay correct either way)."""
        deps = self.dependents()
        if deps and not force:
            raise SnapshotBusy(
                f"snapshot {self.id} is in use by {', '.join(deps)}", dependents=deps
            )
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.status
        return f"<Snapshot {self.id} {self.mode} of {self.source_id} {state}>"
