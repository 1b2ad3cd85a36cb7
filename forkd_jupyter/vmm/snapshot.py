"""Snapshot: a sandbox frozen at one instant, and the children spawned
from it (copy-on-write views of its memory image).

Layering: this module sits below ``sandbox.py`` and never imports it. A child
handle made by ``fj_snapshot_spawn`` becomes a running sandbox object through
the factory that ``sandbox.py`` registers when it is imported (importing
``forkd_jupyter.vmm`` always does)."""

from __future__ import annotations

import errno
import itertools
import json
import os
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from .. import python_env
from ..python_env import PythonEnv
from . import chain_lock, guest_env, saved
from ._ffi import c_strings, ffi, lib
from .errors import SandboxError, SnapshotBusy, check


def _environment_of(meta: dict, path: str) -> PythonEnv:
    """The environment a loaded snapshot's children run: the interpreter
    its metadata names, described by that interpreter now (so what the guest
    may read is this host's, whatever the file says)."""
    named = meta.get("python")
    try:
        if isinstance(named, str) and named:
            return python_env.describe(named)
        return python_env.current()
    except python_env.PythonEnvError as e:
        raise SandboxError(f"load snapshot from {path}: {e}") from None


class SnapshotSource(Protocol):
    """What a snapshot reads of the sandbox it was taken from."""

    id: str
    memory_mib: int
    live_fork: bool
    guest_pid: int
    python: str | None
    layer_limit_bytes: int | None


class Child(Protocol):
    """What a snapshot needs of a child sandbox it spawned."""

    id: str

    @property
    def alive(self) -> bool: ...

    def close(self) -> None: ...


# (child handle, host socket, memory_mib, live_fork, parent snapshot) -> child
ChildFactory = Callable[[Any, socket.socket, int, bool, "Snapshot"], Child]
_child_factory: ChildFactory | None = None


def register_child_factory(factory: ChildFactory) -> None:
    """Called once by sandbox.py: how a spawned child handle is wrapped."""
    global _child_factory
    _child_factory = factory


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
SAVED_FORMAT = 2  # meta.json beside the C core's files and auth; see docs/snapshots.md


class Snapshot:
    """Immutable once ``status == "ready"``. Create with ``Sandbox.snapshot``."""

    def __init__(self, handle, mode: str, source: SnapshotSource, parent: Snapshot | None) -> None:
        self._setup(handle, mode, source.id, parent, source.memory_mib, source.live_fork)
        self._guest_pid = source.guest_pid
        self.python = source.python  # the source's interpreter, which children run
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
        self._children: weakref.WeakSet[Child] = weakref.WeakSet()
        # The source's managed processes as of the branch (ProcessTable.branch),
        # which children inherit; None: the source had none to pass on.
        self._processes: tuple | None = None
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
    def stall_ms(self) -> float:
        """The longest single freeze this snapshot imposed on its source:
        the pause, or (live) one guest write held by the copy-on-write while
        arming or copying. Counted by the VMM; KVM's own re-faults after
        write-protect are not in it (docs/snapshots.md)."""
        return self._info().stall_ms

    @property
    def stall_total_ms(self) -> float:
        """The pause plus (live) every guest write held, arming and copy."""
        return self._info().stall_total_ms

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
    def staged(self) -> bool:
        """A diff's: its pages were copied aside in the pause, then compared
        with the chain and written into its image after the guest resumed
        (docs/snapshots.md, "Staged diffs")."""
        return bool(self._info().staged)

    @property
    def kept_bytes(self) -> int:
        """A diff's: guest memory it left writable, written at every cell
        lately, which the next diff compares instead of trapping its writes
        (docs/snapshots.md, "diff")."""
        return self._info().kept_bytes

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

    def spawn(self, n: int = 1, *, timeout: float = 60.0) -> list[Child]:
        """n children (``Sandbox`` objects), each starting from this
        snapshot's state. A snapshot still writing is waited for (a child
        never sees a half-written image)."""
        if _child_factory is None:
            raise SandboxError("no sandbox layer registered to adopt children")
        if not isinstance(n, int) or n < 1:
            raise ValueError("n must be a positive integer")
        self.wait()
        children = []
        for _ in range(n):
            host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out = ffi.new("fj_sandbox **")
            try:
                # The child is one of ours before the lock goes: a fold
                # (which holds it alone) then sees it among the dependents.
                with chain_lock.reading():
                    ret = lib.fj_snapshot_spawn(self._handle, guest.fileno(), out)
                    check(ret, "spawn from snapshot")
                    child = _child_factory(out[0], host, self._memory_mib, self._live_fork, self)
                    self._children.add(child)
            except BaseException:
                host.close()
                for c in children:
                    c.close()
                raise
            finally:
                guest.close()
            children.append(child)
        return children

    def save(self, path: str | os.PathLike) -> None:
        """Writes this snapshot to the directory ``path`` (created if
        needed), waiting until it is ready. The saved snapshot stands alone:
        a diff chain is folded into one memory image (docs/snapshots.md)."""
        self.write_unsigned(path)
        saved.sign(os.fspath(path))

    def write_unsigned(self, path: str | os.PathLike) -> None:
        """:meth:`save` without ``auth``: a copy that is authenticated some
        other way before anything loads it (a snapshot shipped to another
        node carries the cluster's signature instead, forkd_jupyter/cluster)."""
        self.wait()
        path = os.fspath(path)
        os.makedirs(path, mode=0o700, exist_ok=True)
        with chain_lock.reading():
            ret = lib.fj_snapshot_save(self._handle, path.encode())
        check(ret, f"save snapshot to {path}")
        meta = {
            "format": SAVED_FORMAT,
            "mode": self.mode,
            "source_id": self.source_id,
            "memory_mib": self._memory_mib,
            "live_fork": self._live_fork,
            "guest_pid": self._guest_pid,
            "python": self.python,
            "layer_limit_bytes": self.layer_limit_bytes,
        }
        with open(os.path.join(path, "meta.json"), "w") as f:
            json.dump(meta, f)

    @classmethod
    def load(cls, path: str | os.PathLike, python: PythonEnv | None = None) -> Snapshot:
        """A snapshot saved by :meth:`save` (by this user), ready to spawn
        children. Refused unless its files are exactly as saved (see
        saved.py); the view of its children is this host's, never the file's:
        the roots of ``python`` (by default the interpreter the snapshot
        names, as it describes itself now; docs/snapshots.md)."""
        path = os.fspath(path)
        if not os.path.isfile(os.path.join(path, "meta.json")):
            raise SandboxError(f"{path} is not a saved snapshot (no meta.json)")
        return cls.load_staged(saved.Staged(path), path, python)

    @classmethod
    def load_staged(
        cls, staged: saved.Staged, path: str, python: PythonEnv | None = None
    ) -> Snapshot:
        """:meth:`load` of files already staged and authenticated (``path``
        names them in errors); closes ``staged``."""
        try:
            try:
                meta = json.loads(staged.meta)
            except ValueError as e:
                raise SandboxError(f"{path} is not a saved snapshot ({e})") from None
            if not isinstance(meta, dict) or meta.get("format") != SAVED_FORMAT:
                raise SandboxError(f"{path} holds a snapshot of another format")
            env = python or _environment_of(meta, path)
            keep: list = []
            cfg = ffi.new("struct fj_load_config *")
            roots = guest_env.read_only_roots(env)
            cfg.ro_roots = c_strings(roots, keep)
            cfg.n_ro_roots = len(roots)
            agent_dir = ffi.new("char[]", str(guest_env.AGENT_HOST_DIR).encode())
            exe = ffi.new("char[]", env.elf.encode())
            cfg.agent_host_dir, cfg.exe_path = agent_dir, exe
            out = ffi.new("fj_snapshot **")
            fds = staged.fds
            ret = lib.fj_snapshot_load(
                fds["state"], fds["layer.memfs"], fds[saved.MEMORY_FILE], cfg, out
            )
        finally:
            staged.close()
        if ret == -errno.EXDEV:
            raise SandboxError(
                f"load snapshot from {path}: it was taken of another Python interpreter "
                f"than {env.elf}"
            )
        check(ret, f"load snapshot from {path}")
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
        snap.python = meta.get("python") if isinstance(meta.get("python"), str) else None
        limit = meta.get("layer_limit_bytes")
        snap.layer_limit_bytes = limit if isinstance(limit, int) else None
        return snap

    def fold_parent(self) -> None:
        """Absorbs this diff's parent, which then closes: the image becomes
        the parent's with this snapshot's pages over it, and this snapshot
        builds on the parent's parent (standalone when that was full). So
        the oldest link of a chain is dropped without losing the state of
        the links after it. Refused unless this snapshot is the parent's
        only dependent (docs/snapshots.md)."""
        parent = self.parent
        if parent is None:
            raise SandboxError(f"snapshot {self.id} has no parent to fold in")
        self.wait()
        parent.wait()
        with chain_lock.folding():  # no spawn from the parent can start or be half-made
            others = [d for d in parent.dependents() if d != self.id]
            if others:
                raise SnapshotBusy(
                    f"snapshot {parent.id} is in use by {', '.join(others)}", dependents=others
                )
            err = lib.fj_snapshot_fold_parent(self._handle)
        if err < 0:
            parent._finalizer()  # its image may hold some of ours now
            check(err, f"fold {parent.id} into {self.id}")
        self.parent = parent.parent
        if self.parent is not None:
            self.parent._dependents.add(self)
        parent._dependents.discard(self)
        parent._finalizer()

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
