"""The branch tree: every sandbox and snapshot of one daemon, their VMM
objects, and the on-disk store. The daemon's routes call these methods from
worker threads; nothing here knows about HTTP.

Locking: ``_lock`` guards the two record maps, the id counters and record
fields. It is never held across a VMM call that can take long (spawn, run,
snapshot, close): those run unlocked on the record's VMM object, and their
results are written back under the lock. Every record change publishes one
event after the change is made."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import vmm
from ..python_env import PythonEnv
from ..vmm.snapshot import MODES
from . import environments, saving
from . import errors as E
from .ahead import CheckpointsAhead
from .background import BackgroundRuns
from .bases import Bases, module_names
from .events import EventBus
from .folding import Folding
from .later_writes import LaterWrites
from .limits import SANDBOX_ESTIMATE_BYTES, Limits
from .ready_children import ReadyChildren, ready_children_enabled
from .records import SandboxRecord, SnapshotRecord, timing_row
from .runs import RunBook
from .spreading import ClusterSpreading, death_reason
from .store import Store

DEFAULT_MEMORY_MIB = 2048
MAX_CHILDREN = 64
MAX_DEAD_KEPT = 256  # dead sandbox records kept; the oldest go first (event "removed")
WATCH_INTERVAL_S = 0.5


class SandboxTree(BackgroundRuns, CheckpointsAhead, ClusterSpreading, Folding):
    def __init__(self, store: Store, max_branches: int = 4, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.events = EventBus()
        self.bases = Bases(
            store.root / "bases", ReadyChildren(ready_children_enabled(), self._room_for_ready)
        )
        self._lock = threading.RLock()
        self._settled = threading.Condition(self._lock)  # a checkpoint ahead is done (ahead.py)
        self._branch_slots = threading.BoundedSemaphore(max_branches)
        counters, sandboxes, snapshots = store.load()
        self._counters = {"sandbox": 0, "snapshot": 0, "run": 0, **counters}
        self.runs = RunBook()
        self._sandboxes = {r.id: r for r in sandboxes}
        self._snapshots = {r.id: r for r in snapshots}
        # Names and tags being given right now (spawn/branch in flight):
        # uniqueness is decided under _lock against these and the records.
        self._reserved_names: set[str] = set()
        self._reserved_tags: set[str] = set()
        self._stopping = threading.Event()
        self._save_lock = threading.Lock()
        self._persist()
        self._later_writes = LaterWrites(lambda: self._persist(False))
        self._watcher = threading.Thread(target=self._watch, name="sandbox-watch", daemon=True)
        self._watcher.start()

    def _room_for_ready(self) -> bool:
        """A ready child is made only while a sandbox would be admitted."""
        try:
            self.limits.check_memory(SANDBOX_ESTIMATE_BYTES, "a ready child")
        except E.InsufficientMemory:
            return False
        return True

    # ------------------------------------------------------------ lookups
    def _new_id(self, kind: str, prefix: str) -> str:
        self._counters[kind] += 1
        return f"{prefix}-{self._counters[kind]}"

    def sandbox(self, key: str) -> SandboxRecord:
        with self._lock:
            rec = self._sandboxes.get(key)
            if rec is None:
                # A name belongs to at most one running sandbox; dead ones
                # keep theirs for the record, so the running one wins.
                named = [r for r in self._sandboxes.values() if r.name == key]
                rec = next((r for r in named if r.status == "running"), None)
                rec = rec or (named[-1] if named else None)
            if rec is None:
                raise E.NotFound(f"no sandbox named {key!r}")
            return rec

    def snapshot(self, key: str) -> SnapshotRecord:
        with self._lock:
            rec = self._snapshots.get(key)
            if rec is None:
                rec = next((r for r in self._snapshots.values() if r.tag == key), None)
            if rec is None:
                raise E.NotFound(f"no snapshot with id or tag {key!r}")
            return rec

    def running(self, key: str, keep_prepared: bool = False) -> tuple[SandboxRecord, vmm.Sandbox]:
        """The running sandbox, for a use that may change its state: a
        checkpoint taken ahead no longer holds it (ahead.py), unless
        ``keep_prepared`` (the checkpointed cell that will use it)."""
        rec = self.sandbox(key)
        with self._lock:
            vm = rec.vm
            if rec.status != "running" or vm is None:
                raise E.SandboxDead(
                    f"sandbox {rec.id} is not running ({rec.exit_reason or 'dead'})", id=rec.id
                )
            if not keep_prepared:
                rec.touched += 1
        return rec, vm

    def _running_count(self) -> int:
        with self._lock:
            return sum(1 for r in self._sandboxes.values() if r.status == "running")

    def list_sandboxes(self) -> list[dict]:
        with self._lock:
            return [r.to_dict() for r in self._sandboxes.values()]

    def list_snapshots(self) -> list[dict]:
        with self._lock:
            for r in self._snapshots.values():
                r.refresh_from_vm()
            return [r.to_dict() for r in self._snapshots.values()]

    def snapshot_dict(self, key: str) -> dict:
        rec = self.snapshot(key)
        with self._lock:
            rec.refresh_from_vm()
            return rec.to_dict()

    def timings(self) -> list[dict]:
        with self._lock:
            return [timing_row(r) for r in self._snapshots.values() if r.pause_ms is not None]

    # -------------------------------------------------------------- events
    def _changed(
        self,
        rec: SandboxRecord | SnapshotRecord,
        action: str,
        persist: bool | None = None,
        durable: bool = False,
    ) -> None:
        """Publishes the change; state.json is rewritten only for changes a
        restarted daemon must know (records appearing, dying, going; a
        snapshot's status or saved copy: ``persist`` None), or as ``persist``
        says, and fsynced only when ``durable`` (store.py)."""
        kind = "sandbox" if isinstance(rec, SandboxRecord) else "snapshot"
        self.events.publish(kind, action, kind, rec.to_dict())
        if persist is None:
            persist = action in ("created", "dead", "removed", "deleted")
        if durable or persist:
            self._persist(durable)

    def _persist(self, durable: bool = True) -> None:
        with self._lock:
            for s in self._snapshots.values():
                s.persisted_status = s.status
            self.store.save(
                dict(self._counters),
                list(self._sandboxes.values()),
                list(self._snapshots.values()),
                durable,
            )

    # --------------------------------------------------------------- spawn
    def spawn(
        self,
        n: int = 1,
        live_fork: bool = True,
        memory_limit_mib: int | None = None,
        snapshot: str | None = None,
        name: str | None = None,
        python: dict | None = None,
        preload: list[str] | None = None,
        spread: bool = False,
    ) -> list[dict]:
        """``spread`` places children of a snapshot over the cluster the
        daemon joined (controller/spreading.py). ``python`` names the
        interpreter (and PYTHONPATH) of the client's environment
        (controller.environments); children of a snapshot run their
        source's, whatever ``python`` says. A fresh sandbox is a child of
        its environment's warm base (controller.bases; built on first use,
        with ``preload`` imported)."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHILDREN:
            raise E.BadRequest(f"n must be an integer from 1 to {MAX_CHILDREN}")
        if name is not None and n != 1:
            raise E.BadRequest("a name can only be given when spawning one sandbox")
        if spread and snapshot is None:
            raise E.BadRequest("spread applies to children of a snapshot", field="spread")
        env = environments.resolve(python)
        modules = module_names(preload)
        self._reserve_name(name)
        try:
            with self.limits.sandboxes(self._running_count(), n, f"spawning {n} sandbox(es)"):
                if spread:
                    snap = self.snapshot(snapshot)
                    placed = self._spread_children(snap, n, bool(live_fork))
                    return [self._register_child(snap, vm, name, node) for vm, node in placed]
                return self._spawn(n, live_fork, memory_limit_mib, snapshot, name, env, modules)
        finally:
            with self._lock:
                self._reserved_names.discard(name)

    def _reserve_name(self, name: str | None) -> None:
        if name is None:
            return
        with self._lock:
            taken = name in self._reserved_names or any(
                r.name == name and r.status == "running" for r in self._sandboxes.values()
            )
            if taken:
                raise E.NameTaken(f"the name {name!r} is already used by a running sandbox")
            self._reserved_names.add(name)

    def _spawn(
        self,
        n: int,
        live_fork: bool,
        memory_limit_mib: int | None,
        snapshot: str | None,
        name: str | None,
        env: PythonEnv,
        modules: tuple[str, ...],
    ) -> list[dict]:
        if snapshot is not None:
            snap = self.snapshot(snapshot)
            image = self._snapshot_vm(snap)
            if memory_limit_mib is not None and memory_limit_mib != image.memory_mib:
                raise E.BadRequest(
                    f"memory_limit_mib: children of {snap.id} have its memory size "
                    f"({image.memory_mib} MiB); {memory_limit_mib} cannot apply",
                    field="memory_limit_mib",
                )
            vms = _vmm_call(image.spawn, n)
            for vm in vms:  # live_fork=false makes children that refuse live branches
                vm.live_fork = vm.live_fork and bool(live_fork)
            return [self._register_child(snap, vm, name) for vm in vms]
        memory = DEFAULT_MEMORY_MIB if memory_limit_mib is None else memory_limit_mib
        out = []
        for i in range(n):
            vm = _vmm_call(self.bases.child, env, memory, bool(live_fork), modules, n, i == n - 1)
            with self._lock:
                rec = SandboxRecord(self._new_id("sandbox", "sb"), "", bool(live_fork), memory)
                rec.name, rec.vm, rec.python = name or rec.id, vm, vm.python
                self._sandboxes[rec.id] = rec
            self._changed(rec, "created")
            out.append(rec.to_dict())
        return out

    def _snapshot_vm(self, snap: SnapshotRecord) -> vmm.Snapshot:
        with self._lock:
            if snap.vm is not None and not snap.vm.closed:
                return snap.vm
            if snap.status == "failed" or not snap.saved_path:
                raise E.SandboxDead(f"snapshot {snap.id} cannot be spawned: {snap.error}")
            path = snap.saved_path
        loaded = _vmm_call(vmm.Snapshot.load, path)
        with self._lock:
            if snap.vm is None or snap.vm.closed:
                snap.vm = loaded
            return snap.vm

    def _spawn_children(self, snap: SnapshotRecord, n: int) -> list[vmm.Sandbox]:
        return _vmm_call(self._snapshot_vm(snap).spawn, n)

    def _register_child(
        self, snap: SnapshotRecord, vm: vmm.Sandbox, name: str | None, node: str | None = None
    ) -> dict:
        with self._lock:
            # The vm carries its snapshot's memory size and live_fork (the
            # source's when it was snapshotted, and what the spawn asked).
            rec = SandboxRecord(
                self._new_id("sandbox", "sb"), "", vm.live_fork, vm.memory_mib, snap.id
            )
            rec.name, rec.vm, rec.python = name or rec.id, vm, vm.python
            rec.node = node
            self._sandboxes[rec.id] = rec
            snap.children.append(rec.id)
        self._changed(rec, "created")
        self._changed(snap, "updated")
        return rec.to_dict()

    # ---------------------------------------------------------------- kill
    def kill(self, key: str) -> dict:
        """Kills a running sandbox at once (a busy one's cell is cut); the
        record stays, dead. Killing a dead sandbox removes its record.

        The record is dead (its name free) before this returns; the guest is
        stopped without asking it to exit (nothing of it is kept, so its
        interpreter's own shutdown would only cost time) and its memory is
        returned to the host in the background."""
        rec = self.sandbox(key)
        dropped = None
        with self._lock:
            if rec.status == "dead" and rec.vm is None:
                if self._sandboxes.pop(rec.id, None) is None:
                    return rec.to_dict()  # another DELETE removed it first
                removed = True
            else:
                removed = False
                dropped = self.drop_prepared(rec)
                vm, rec.vm = rec.vm, None
                was_running = rec.status == "running"
                rec.status, rec.busy = "dead", False
                if was_running:
                    rec.exit_reason = "killed"
        if removed:
            self._changed(rec, "removed")
            return rec.to_dict()
        self.close_dropped(dropped)
        if vm is not None:
            if getattr(vm, "remote", False):  # its node stops counting it now, as the record
                vm.link.forget_sandbox(vm)
            threading.Thread(target=_close_quietly, args=(vm,), daemon=True).start()
        if was_running:
            self._changed(rec, "dead")
            self._forget_oldest_dead()
        return rec.to_dict()

    def _forget_oldest_dead(self) -> None:
        with self._lock:
            dead = [r for r in self._sandboxes.values() if r.status == "dead"]
            gone = dead[: max(0, len(dead) - MAX_DEAD_KEPT)]
            for r in gone:
                del self._sandboxes[r.id]
        for r in gone:
            self._changed(r, "removed")

    def _mark_dead(self, rec: SandboxRecord, reason: str) -> None:
        if self._stopping.is_set():
            # The daemon is stopping and closes every sandbox itself; a
            # request cut by that is no death of its own. The record keeps
            # its status (reported lost by the next daemon).
            return
        with self._lock:
            if rec.status == "dead":
                return
            dropped = self.drop_prepared(rec)
            vm, rec.vm = rec.vm, None
            rec.status, rec.busy, rec.exit_reason = "dead", False, reason
        self.close_dropped(dropped)
        if vm is not None:
            vm.close()
        self._changed(rec, "dead")
        self._forget_oldest_dead()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL_S):
            with self._lock:
                gone = [
                    (r, r.vm)
                    for r in self._sandboxes.values()
                    if r.status == "running" and r.vm is not None and not r.vm.alive
                ]
            for rec, vm in gone:
                self._mark_dead(rec, death_reason(vm))

    # ----------------------------------------------------------------- run
    def run(
        self,
        key: str,
        code: str,
        on_output: Callable[[str, str], None] | None = None,
        timeout: float | None = None,
        on_display: Callable[[str, dict], None] | None = None,
    ) -> vmm.RunResult:
        rec, vm = self.claim_for_run(key, code)
        return self.execute(rec, vm, code, on_output, timeout, on_display=on_display)

    def claim_for_run(
        self, key: str, code: str, keep_prepared: bool = False
    ) -> tuple[SandboxRecord, vmm.Sandbox]:
        """Marks the sandbox busy for one cell, or 409 when it is dead or
        already busy (one cell at a time: a second one is refused, not
        queued), once the checkpoint taken ahead after the previous cell is
        made. ``execute`` must follow."""
        if not isinstance(code, str):
            raise E.BadRequest("code must be a string", field="code")
        with self._lock:
            self.wait_settled(self.sandbox(key))
            rec, vm = self.claim_idle(key, keep_prepared)
            rec.busy = True
        self._changed(rec, "updated")
        return rec, vm

    def execute(
        self,
        rec: SandboxRecord,
        vm: vmm.Sandbox,
        code: str,
        on_output: Callable[[str, str], None] | None,
        timeout: float | None,
        on_input: Callable[[str, bool], None] | None = None,
        on_display: Callable[[str, dict], None] | None = None,
        prepare: bool = False,
    ) -> vmm.RunResult:
        """Runs the claimed cell. With ``prepare`` a checkpoint is to be
        taken ahead when it ends (ahead.py): ``prepare_checkpoint`` must
        follow."""
        try:
            result = vm.run(
                code, on_output=on_output, timeout=timeout, on_input=on_input, on_display=on_display
            )
        except vmm.SandboxTimeout as e:
            raise E.Timeout(f"sandbox {rec.id}: {e}", id=rec.id) from None
        except vmm.SandboxCrashed as e:
            if getattr(vm, "remote", False):  # its reason names the node
                reason = death_reason(vm)
                self._mark_dead(rec, reason)
            else:
                reason = str(e).split(": ", 1)[-1]
                self._mark_dead(rec, f"crashed: {reason}")
            raise E.SandboxDead(f"sandbox {rec.id} died: {reason}", id=rec.id) from None
        except vmm.SandboxClosed:
            why = rec.exit_reason or "closed"
            detail = f"sandbox {rec.id} stopped during the run ({why})"
            raise E.SandboxDead(detail, id=rec.id) from None
        finally:
            with self._lock:
                rec.busy = False
                if prepare and rec.status == "running" and rec.vm is vm:
                    rec.preparing, rec.ended_touched = True, rec.touched
        with self._lock:
            if result.execution_count is not None:
                rec.execution_count = result.execution_count
        self._changed(rec, "updated")
        return result

    def claim_idle(
        self, key: str, keep_prepared: bool = False
    ) -> tuple[SandboxRecord, vmm.Sandbox]:
        """The running sandbox, or 409 when it is dead or runs a cell."""
        with self._lock:
            rec, vm = self.running(key, keep_prepared)
            if rec.busy:
                raise E.SandboxBusy(
                    f"sandbox {rec.id} is running another cell; wait for it or interrupt it",
                    id=rec.id,
                )
            return rec, vm

    def interrupt(self, key: str) -> None:
        _, vm = self.running(key)
        vm.interrupt()

    def push(self, key: str, name: str, pickled: bytes) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise E.BadRequest(f"{name!r} is not a Python identifier")
        _, vm = self.running(key)
        _vmm_call(vm.push_pickled, name, pickled)

    def pull(self, key: str, name: str) -> bytes:
        if not isinstance(name, str) or not name.isidentifier():
            raise E.BadRequest(f"{name!r} is not a Python identifier")
        _, vm = self.running(key)
        return _vmm_call(vm.pull_pickled, name)

    def exec(self, key: str, argv: list[str], **options: Any) -> dict:
        """Runs a program once in the sandbox (vmm.Sandbox.exec): 409 while
        a cell runs there, as for a second cell."""
        with self._lock:
            self.wait_settled(self.sandbox(key))
            rec, vm = self.claim_idle(key)
            if not hasattr(vm, "exec"):
                raise E.BadRequest(
                    f"sandbox {rec.id} runs on a cluster node: run programs in a cell"
                )
            rec.busy = True
        try:
            return _vmm_call(vm.exec, argv, **options)
        finally:
            with self._lock:
                rec.busy = False

    def processes(self, key: str) -> vmm.managed.ProcessTable:
        """The managed processes and terminals of a running sandbox
        (docs/processes.md); they run beside cells, so a busy sandbox is
        no obstacle."""
        rec, vm = self.running(key)
        if not hasattr(vm, "processes"):
            raise E.BadRequest(f"sandbox {rec.id} runs on a cluster node: run programs in a cell")
        return vm.processes

    def process_call(self, key: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``processes(key).method(*args)``, its failures as controller errors."""
        return _vmm_call(getattr(self.processes(key), method), *args, **kwargs)

    def files(self, key: str):
        return self.running(key)[1].files

    # -------------------------------------------------------------- branch
    def branch(
        self,
        key: str,
        mode: str | None = None,
        wait: bool = True,
        tag: str | None = None,
        diff: bool = False,
        measure_diff: bool = False,
        count: int = 0,
        spread: bool = False,
        checkpoint: dict | None = None,
    ) -> dict:
        """Snapshots the sandbox and spawns ``count`` children of it (over
        the cluster when ``spread``). ``checkpoint``: the notebook cell it
        precedes (records.py), kept on the record."""
        with self._lock:
            self.wait_settled(self.sandbox(key))
            rec, vm = self.running(key)
        if spread and self.cluster is None:
            raise E.BadRequest(
                "spread needs a cluster: join one first (POST /v1/cluster)", field="spread"
            )
        mode = _resolve_mode(mode, diff, wait, rec.live_fork)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_CHILDREN:
            raise E.BadRequest(f"count must be an integer from 0 to {MAX_CHILDREN}")
        if tag is not None and (not isinstance(tag, str) or not tag):
            raise E.BadRequest("tag must be a non-empty string", field="tag")
        # full and live copy the source's resident memory into a new image.
        image = _vmm_call(lambda: vm.resident_bytes) if mode in ("full", "live") else 0
        self.limits.check_branch(
            self._running_count(), count, image, f"a {mode} branch of {rec.id}"
        )
        if not self._branch_slots.acquire(blocking=False):
            raise E.TooManyBranches("the daemon is already taking its maximum of branches")
        try:
            # The record exists (writing, persisted) before the VMM is asked,
            # so a daemon that dies in the call leaves a record a restart
            # reports as failed, with the reason. Not a checkpoint's diff: its
            # pause takes milliseconds before every attached cell, and a
            # restart loses it either way (it is not on disk), so its record
            # is written once, when it is ready.
            early = not (checkpoint is not None and mode == "diff")
            snap = self._new_snapshot_record(rec, mode, tag, persist=early)
            snap.checkpoint = checkpoint
            started = time.monotonic()
            try:
                snap_vm = _vmm_call(vm.snapshot, mode, wait)
            except BaseException:
                self._drop_snapshot_record(snap)
                raise
            self.fold_unused(rec, snap_vm)
            round_trip = (time.monotonic() - started) * 1000
            self._attach_snapshot(snap, snap_vm, round_trip)
        except BaseException:
            self._branch_slots.release()
            raise
        if measure_diff:
            snap.diff_bytes = snap_vm.dirty_bytes
        if wait:
            try:
                return self._finish_branch(snap, started, count, spread)
            finally:
                self._branch_slots.release()
        threading.Thread(
            target=self._finish_async, args=(snap, started, count, spread), daemon=True
        ).start()
        return {"snapshot": snap.to_dict(), "children": []}

    def _new_snapshot_record(
        self, source: SandboxRecord, mode: str, tag: str | None, persist: bool = True
    ) -> SnapshotRecord:
        """A ``writing`` record, its tag claimed atomically."""
        with self._lock:
            if tag is not None and any(s.tag == tag for s in self._snapshots.values()):
                raise E.NameTaken(f"the tag {tag!r} already names a snapshot", field="tag")
            snap = SnapshotRecord(self._new_id("snapshot", "snap"), mode, source.id, tag)
            self._snapshots[snap.id] = snap
        self._changed(snap, "created", persist=persist)
        return snap

    def _drop_snapshot_record(self, snap: SnapshotRecord) -> None:
        with self._lock:
            self._snapshots.pop(snap.id, None)
        self._changed(snap, "deleted")

    def _attach_snapshot(
        self, snap: SnapshotRecord, snap_vm: vmm.Snapshot, rt: float, persist: bool | None = None
    ) -> None:
        with self._lock:
            if snap_vm.parent is not None:
                snap.parent = next(
                    (s.id for s in self._snapshots.values() if s.vm is snap_vm.parent), None
                )
            snap.vm, snap.round_trip_ms = snap_vm, rt
            snap.refresh_from_vm()
        # state.json is rewritten (on the branch path) only when the status
        # it holds is no longer the record's, or as ``persist`` says.
        self._changed(
            snap, "updated", persist=snap.status_unpersisted if persist is None else persist
        )

    def _finish_branch(
        self, snap: SnapshotRecord, started: float, count: int, spread: bool = False
    ) -> dict:
        try:
            snap.vm.wait()
        except vmm.SandboxError:
            pass  # the record shows the failure
        with self._lock:
            snap.refresh_from_vm()
            snap.ready_ms = (time.monotonic() - started) * 1000
        self._changed(snap, "updated", persist=snap.status_unpersisted)
        if snap.status != "ready":
            return {"snapshot": snap.to_dict(), "children": []}
        if not count:
            placed = []
        elif spread:
            placed = self._spread_children(snap, count)
        else:
            placed = [(vm, None) for vm in self._spawn_children(snap, count)]
        children = [self._register_child(snap, c, None, node) for c, node in placed]
        return {"snapshot": self.snapshot_dict(snap.id), "children": children}

    def _finish_async(self, snap: SnapshotRecord, started: float, count: int, spread: bool) -> None:
        try:
            self._finish_branch(snap, started, count, spread)
        except E.ControllerError:
            pass  # the records and events say what happened
        finally:
            self._branch_slots.release()

    # ----------------------------------------------------------- snapshots
    def dependents(self, snap: SnapshotRecord) -> tuple[list[SandboxRecord], list[SnapshotRecord]]:
        with self._lock:
            kids = [
                r
                for r in self._sandboxes.values()
                if r.parent_snapshot == snap.id and r.status == "running"
            ]
            built_on = [s for s in self._snapshots.values() if s.parent == snap.id]
            return kids, built_on

    def delete_snapshot(self, key: str, cascade: bool = False) -> list[str]:
        snap = self.snapshot(key)
        kids, built_on = self.dependents(snap)
        deps = [r.id for r in kids] + [s.id for s in built_on]
        if deps and not cascade:
            raise E.SnapshotBusy(
                f"snapshot {snap.id} is used by {', '.join(deps)}; delete with cascade to "
                "remove them too",
                dependents=deps,
            )
        with self._lock:
            snap.refresh_from_vm()
            if snap.status == "writing":
                raise E.SnapshotBusy(f"snapshot {snap.id} is still writing", dependents=[])
        deleted = []
        for kid in kids:
            self.kill(kid.id)
            deleted.append(kid.id)
        for dep in built_on:
            deleted += self.delete_snapshot(dep.id, cascade=True)
        with self._lock:
            vm, snap.vm = snap.vm, None
            self._snapshots.pop(snap.id, None)
        if vm is not None:
            vm.close(force=True)  # dependents are gone; dead children hold their own reference
        self._forget_shipped(snap.id)
        self._changed(snap, "deleted")  # state.json forgets it before its files go
        if snap.saved_path:
            shutil.rmtree(self.store.snapshot_path(snap.id), ignore_errors=True)
        return deleted + [snap.id]

    def save_snapshot(self, key: str) -> dict:
        """Writes a new copy beside the previous one and switches the record
        to it only once it is complete and on disk (controller/saving.py)."""
        snap = self.snapshot(key)
        vm = self._snapshot_vm(snap)
        snap_dir = self.store.snapshot_path(snap.id)
        with self._save_lock:  # one save at a time picks a generation
            snap_dir.mkdir(parents=True, exist_ok=True)
            partial = saving.partial_dir(snap_dir, saving.next_generation(snap_dir))
            partial.mkdir()
        try:
            _vmm_call(vm.save, partial)
            final = saving.commit(partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        with self._lock:
            old, snap.saved_path = snap.saved_path, str(final)
            still_listed = snap.id in self._snapshots
        self._changed(snap, "updated", durable=True)  # before the old copy goes
        if old and old != str(final):
            shutil.rmtree(old, ignore_errors=True)
        if not still_listed:  # deleted while saving
            shutil.rmtree(final, ignore_errors=True)
        return self.snapshot_dict(snap.id)

    # ---------------------------------------------------------------- tree
    def tree(self) -> dict:
        with self._lock:
            nodes, edges = [], []
            for r in self._sandboxes.values():
                nodes.append({**r.to_dict(), "kind": "sandbox", "label": r.name})
                if r.parent_snapshot in self._snapshots:
                    edges.append({"source": r.parent_snapshot, "target": r.id, "kind": "spawn"})
            for s in self._snapshots.values():
                s.refresh_from_vm()
                nodes.append({**s.to_dict(), "kind": "snapshot", "label": s.tag or s.id})
                if s.source_id in self._sandboxes:
                    edges.append({"source": s.source_id, "target": s.id, "kind": "branch"})
                if s.parent in self._snapshots:
                    edges.append({"source": s.parent, "target": s.id, "kind": "diff-parent"})
            return {"nodes": nodes, "edges": edges, "seq": self.events.seq}

    # ------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stops every sandbox; snapshots saved to disk stay for the next
        daemon, the others are lost with this process."""
        self._stopping.set()
        self._later_writes.stop()
        self.bases.close()
        with self._lock:
            running = [r for r in self._sandboxes.values() if r.vm is not None]
        for rec in running:
            try:
                rec.vm.close()
            except vmm.SandboxError:
                pass
        self._leave_cluster()
        self._persist()


def _resolve_mode(mode: str | None, diff: bool, wait: bool, live_fork: bool) -> str:
    if mode is not None and diff:
        raise E.BadRequest("give either mode or the legacy diff flag, not both")
    if mode is None:
        mode = "diff" if diff else "live" if live_fork else "full"
    if mode not in MODES:
        raise E.BadRequest(f"mode must be one of full, diff, live, not {mode!r}")
    if mode == "live" and not live_fork:
        raise E.BadRequest(
            "this sandbox was spawned without live_fork and cannot be branched live; "
            "use mode full or diff"
        )
    if not wait and mode == "full":
        raise E.BadRequest("wait=false is only valid with mode live or diff")
    return mode


# A killed sandbox's memory goes back this long after its guest stopped: a
# spawn right after the kill (a checkout in attach mode) then never waits
# behind the unmapping (measured: a 35 ms spawn took 90-150 ms right after
# the kill of a 1.5 GiB child).
RELEASE_DELAY_S = 1.0


def _close_quietly(vm: vmm.Sandbox) -> None:
    try:
        if getattr(vm, "remote", False):
            vm.close(graceful=False)  # on its node: nothing to contend with here
        else:
            vm.close(graceful=False, release_delay=RELEASE_DELAY_S)
    except vmm.SandboxError:
        pass  # a vCPU that did not stop: its memory goes with the daemon


def _vmm_call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Calls into the VMM, turning its failures into controller errors."""
    try:
        return fn(*args, **kwargs)
    except vmm.KvmUnavailable as e:
        raise E.KvmUnavailable(f"{e} (run `forkd-jupyter doctor`)") from None
    except vmm.SpawnError as e:
        raise E.SpawnFailed(str(e)) from None
    except vmm.SandboxCrashed as e:
        raise E.SandboxDead(str(e)) from None
    except vmm.ProcessNotFound as e:
        raise E.NotFound(str(e)) from None
    except vmm.ProcessNotRunning as e:
        raise E.ProcessNotRunning(str(e)) from None
    except vmm.ProcessLimit as e:
        raise E.ProcessLimit(str(e), limit=e.limit) from None
    except vmm.SandboxClosed as e:
        raise E.SandboxDead(str(e)) from None
    except vmm.SandboxTimeout as e:
        raise E.Timeout(str(e)) from None
    except vmm.SandboxError as e:
        raise E.BadRequest(str(e)) from None
    except ValueError as e:
        raise E.BadRequest(str(e)) from None
