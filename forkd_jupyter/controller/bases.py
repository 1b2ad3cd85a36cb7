"""Warm bases: for each Python environment (and memory size and preloaded
modules), one full snapshot of a sandbox that has just started (CPython,
IPython and the agent ready), kept loaded and saved under
``<state>/bases/<fingerprint>/``. A fresh spawn is a copy-on-write child of
it: milliseconds instead of a second, and only the pages it writes are its
own. The first spawn for an environment builds its base.

Invariants:
- a base is used only while its fingerprint still matches: the interpreter
  (path, ELF identity), every package directory's entries, the PYTHONPATH,
  the agent's code and the compiled core. Installing, removing or upgrading
  a package changes a package directory's entries, so it makes a new base,
  never reuses a stale one;
- one build per fingerprint at a time (concurrent first spawns wait for it);
- a child of a base is re-seeded (Sandbox.refresh) before it is handed out,
  so sandboxes of one base do not share random sequences;
- a spawn takes the base's ready child when there is one (ready_children.py)
  and starts the next; a forgotten base's ready child is closed with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import vmm
from ..python_env import PythonEnv
from ..vmm import guest_env, identity
from . import errors as E
from .ready_children import ReadyChildren

META = "base.json"

# Run silently in a base before its snapshot, so that what a notebook's first
# cell and first error set up once (IPython's compile and run path, the
# traceback formatters and what they import) is done in the base, shared by
# every child, instead of in each child: a child's first error then takes
# ~30 ms instead of ~400 ms and writes ~10 MiB less. A silent cell shows no
# result, so the formatters a first expression's result goes through are
# run once by hand (a child's first `1 + 1` then writes 3.7 MiB, not 4.4).
# Silent cells leave no trace in In, Out or the execution count; the names
# and the sys.last_* they set are removed.
WARM_UP_CELLS = (
    "_fj_warm = sum(n * 2 for n in range(3))\nprint(_fj_warm, end='')\ndel _fj_warm",
    "get_ipython().display_formatter.format(2)",
    "1 / 0",
    "import sys as _fj_sys\n"
    "for _fj_name in ('last_type', 'last_value', 'last_traceback', 'last_exc'):\n"
    "    if hasattr(_fj_sys, _fj_name):\n"
    "        delattr(_fj_sys, _fj_name)\n"
    "del _fj_sys, _fj_name",
)

# Caches packages build on their first import, built once in a base (in a
# program of their own, so the base's memory keeps none of it) and kept in
# its writable layer, where every child finds them: matplotlib's font list
# (its MPLCONFIGDIR, /tmp/forkd-matplotlib) is otherwise rebuilt by each fresh
# sandbox's first `import matplotlib.pyplot`, ~0.4 s. A package the
# environment does not have is skipped; a builder that fails leaves the
# cache to be built by the first child that needs it, as before.
# FORKD_JUPYTER_BASE_CACHES=0 builds none (a base built faster, each child
# building what it uses).
CACHE_BUILDERS = {"matplotlib": "import matplotlib.font_manager"}


def _has_package(env: PythonEnv, name: str) -> bool:
    dirs = (*env.package_dirs, *env.pythonpath, env.user_site)
    return any(d and os.path.isdir(os.path.join(d, name)) for d in dirs)


def build_caches(source: vmm.Sandbox, env: PythonEnv) -> list[str]:
    """Runs CACHE_BUILDERS' programs in source; the packages whose cache
    was built."""
    built = []
    if os.environ.get("FORKD_JUPYTER_BASE_CACHES", "1") == "0":
        return built
    for package, code in CACHE_BUILDERS.items():
        if not _has_package(env, package):
            continue
        try:
            result = source.exec([env.executable, "-c", code], timeout=300)
        except vmm.SandboxError:
            continue
        if result["exit_code"] == 0:
            built.append(package)
    return built


@dataclass
class Base:
    id: str  # the fingerprint
    python: str
    memory_mib: int
    preload: tuple[str, ...]
    created_at: float
    build_ms: float | None = None
    snapshot: vmm.Snapshot | None = None

    def to_dict(self, root: Path) -> dict:
        path = root / self.id
        return {
            "id": self.id,
            "python": self.python,
            "memory_mib": self.memory_mib,
            "preload": list(self.preload),
            "created_at": self.created_at,
            "build_ms": self.build_ms,
            "loaded": self.snapshot is not None and not self.snapshot.closed,
            "disk_bytes": _disk_bytes(path),
        }


def _disk_bytes(path: Path) -> int:
    total = 0
    for f in path.glob("*"):
        try:
            total += f.stat().st_blocks * 512
        except OSError:
            pass
    return total


def _entries(directory: str) -> list:
    try:
        with os.scandir(directory) as it:
            return sorted((e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in it)
    except OSError:
        return []


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:
        return []
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def fingerprint(env: PythonEnv, memory_mib: int, preload: tuple[str, ...]) -> str:
    doc = {
        "env": env.to_json(),
        "elf": _stat(env.elf),
        "dirs": {d: _entries(d) for d in (*env.package_dirs, *env.pythonpath, env.user_site) if d},
        # What the view shows: a program installed since (its tree) makes a new base.
        "roots": guest_env.read_only_roots(env),
        "memory_mib": memory_mib,
        "preload": list(preload),
        "code": identity.code_identity(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def module_names(preload: object) -> tuple[str, ...]:
    """A spawn's ``preload``: module names, each once, in order."""
    if preload is None:
        return ()

    def is_module(m: object) -> bool:
        return isinstance(m, str) and all(part.isidentifier() for part in m.split("."))

    if not isinstance(preload, list) or len(preload) > 64 or not all(map(is_module, preload)):
        raise E.BadRequest("preload must be a list of module names", field="preload")
    return tuple(dict.fromkeys(preload))


class Bases:
    def __init__(self, root: Path, ready: ReadyChildren | None = None) -> None:
        self.root = root
        self.ready = ready or ReadyChildren(enabled=False)
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards _bases and _building
        self._bases: dict[str, Base] = {}
        self._building: dict[str, threading.Lock] = {}
        for meta in sorted(root.glob(f"*/{META}")):
            try:
                d = json.loads(meta.read_text())
                base = Base(
                    d["id"], d["python"], int(d["memory_mib"]), tuple(d["preload"]),
                    float(d["created_at"]), d.get("build_ms"),
                )  # fmt: skip
            except (OSError, ValueError, KeyError, TypeError):
                shutil.rmtree(meta.parent, ignore_errors=True)  # a torn or foreign entry
                continue
            self._bases[base.id] = base

    def child(
        self,
        env: PythonEnv,
        memory_mib: int,
        live_fork: bool,
        preload: tuple[str, ...] = (),
        one_of: int = 1,
        last: bool = True,
    ) -> vmm.Sandbox:
        """A fresh-looking sandbox of env: a child of its base, built first
        when there is none; the base's ready child when it has one. A spawn
        of several (``one_of`` > 1) does not wait for a ready child being
        made, and only its ``last`` starts the next one."""
        key, snap = self._snapshot(env, memory_mib, preload)
        vm = self.ready.take(key, wait=one_of == 1)
        if vm is None:
            [vm] = snap.spawn(1)
            try:
                vm.refresh()
            except Exception:
                vm.close()
                raise
        vm.live_fork = live_fork
        if last:
            self.ready.fill(key, snap)
        return vm

    def _snapshot(
        self, env: PythonEnv, memory_mib: int, preload: tuple[str, ...]
    ) -> tuple[str, vmm.Snapshot]:
        key = fingerprint(env, memory_mib, preload)
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                base = self._bases.get(key)
            if base is not None and base.snapshot is not None and not base.snapshot.closed:
                return key, base.snapshot
            if base is not None:  # on disk from an earlier daemon
                try:
                    base.snapshot = vmm.Snapshot.load(self.root / key, python=env)
                    return key, base.snapshot
                except vmm.SandboxError:
                    self._forget(key)
            return key, self._build(key, env, memory_mib, preload).snapshot

    def _build(self, key: str, env: PythonEnv, memory_mib: int, preload: tuple[str, ...]) -> Base:
        started = time.monotonic()
        source = vmm.Sandbox.spawn(memory_mib=memory_mib, python=env)
        try:
            if preload:
                try:
                    source.preload(list(preload))
                except vmm.SandboxError as e:
                    raise E.BadRequest(f"preload: {e}") from None
            build_caches(source, env)
            for cell in WARM_UP_CELLS:
                source.run(cell, silent=True)
            snap = source.snapshot(mode="full")
        finally:
            source.close()
        base = Base(key, env.executable, memory_mib, preload, time.time(), snapshot=snap)
        base.build_ms = round((time.monotonic() - started) * 1000, 1)
        path = self.root / key
        staging = self.root / f".{key}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            snap.save(staging)
            (staging / META).write_text(json.dumps(base.to_dict(self.root) | {"loaded": False}))
            shutil.rmtree(path, ignore_errors=True)
            os.replace(staging, path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # still usable from memory
        with self._lock:
            stale = [
                b.id
                for b in self._bases.values()
                if (b.python, b.memory_mib, b.preload) == (env.executable, memory_mib, preload)
            ]
            self._bases[key] = base
        for old in stale:  # the same environment before a change: never used again
            self._forget(old)
        return base

    def _forget(self, key: str) -> None:
        with self._lock:
            base = self._bases.pop(key, None)
        if base is not None and base.snapshot is not None:
            base.snapshot.close(force=True)  # children keep their own reference
        self.ready.drop(key)  # after the close: no fill stores a child of it now
        shutil.rmtree(self.root / key, ignore_errors=True)

    def list(self) -> list[dict]:
        with self._lock:
            bases = list(self._bases.values())
        ordered = sorted(bases, key=lambda b: b.created_at)
        return [b.to_dict(self.root) | self.ready.status(b.id) for b in ordered]

    def close(self) -> None:
        """The daemon stops: ready children go (bases stay on disk)."""
        self.ready.close()

    def remove(self, key: str) -> dict:
        with self._lock:
            base = self._bases.get(key)
        if base is None:
            raise E.NotFound(f"no base {key!r}")
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            record = base.to_dict(self.root) | self.ready.status(key)
            self._forget(key)
        return record
