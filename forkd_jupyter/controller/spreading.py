"""Children spread over a Ray cluster (forkd_jupyter/cluster), as methods
of the SandboxTree (which provides ``_lock``, ``_snapshot_vm``,
``_spawn_children``, ``_mark_dead`` and the records).

A spread branch places its children by free memory over the cluster's
usable nodes; the daemon's own node spawns its share here, every other
node gets the snapshot shipped first (only the blocks it lacks). A node
that fails while receiving loses its share to the nodes that succeeded,
so a spread answers with all its children or an error."""

from __future__ import annotations

import threading
from typing import Any

from . import errors as E
from .records import SnapshotRecord


class ClusterSpreading:
    cluster: Any = None  # cluster.hub.ClusterHub once joined
    _cluster_lock = threading.Lock()

    def join_cluster(self, address: str) -> dict:
        """Joins the Ray cluster at ``address`` ("auto", "ray://host:port",
        "host:port"); joining the one already joined is a no-op."""
        if not isinstance(address, str) or not address:
            raise E.BadRequest("address must be a non-empty string", field="address")
        with self._cluster_lock:
            if self.cluster is not None:
                if self.cluster.address != address:
                    raise E.NameTaken(
                        f"this daemon has joined the cluster at {self.cluster.address!r}; "
                        "restart it to join another",
                        field="address",
                    )
                return self.cluster.describe()
            try:
                from ..cluster.hub import ClusterHub
            except ImportError as e:
                raise E.NotSupported(
                    f"clusters need Ray and zstandard: pip install 'forkd-jupyter[cluster]' ({e})"
                ) from None
            hub = ClusterHub(address)
            hub.on_dead = self._remote_died
            self.cluster = hub
        return hub.describe()

    def cluster_info(self) -> dict:
        hub = self.cluster
        if hub is None:
            return {"address": None, "nodes": []}
        return hub.describe()

    def _spread_children(
        self, snap: SnapshotRecord, count: int, live_fork: bool = True
    ) -> list[tuple[Any, str]]:
        """``count`` children of a ready snapshot over the cluster, as
        (VM or RemoteSandbox proxy, node label) in node order."""
        hub = self.cluster
        if hub is None:
            raise E.BadRequest(
                "spread needs a cluster: join one first (POST /v1/cluster)", field="spread"
            )
        image = self._snapshot_vm(snap)
        plan = hub.place(count, image.logical_bytes // 8)
        remote = [link for link, _ in plan if not link.local]
        shipments = hub.ship(snap.id, image, remote) if remote else []
        with self._lock:
            snap.shipped = (snap.shipped or []) + [s.to_dict() for s in shipments]
        self._changed(snap, "updated")
        failed = {s.node for s in shipments if s.error}
        if failed:
            survivors = [(link, k) for link, k in plan if link.label not in failed]
            if not survivors:
                errors = "; ".join(f"{s.node}: {s.error}" for s in shipments if s.error)
                raise E.ClusterUnavailable(f"no node could receive snapshot {snap.id}: {errors}")
            lost = sum(k for link, k in plan if link.label in failed)
            plan = _redistribute(survivors, lost)
        children: list[tuple[Any, str]] = []
        for link, k in plan:
            if link.local:
                children += [(vm, link.label) for vm in self._spawn_children(snap, k)]
            else:
                key = next(s.key for s in shipments if s.node == link.label)
                children += [(vm, link.label) for vm in hub.spawn_on(link, key, k, live_fork)]
        return children

    def _remote_died(self, vm: Any) -> None:
        with self._lock:
            rec = next(
                (r for r in self._sandboxes.values() if r.vm is vm and r.status == "running"), None
            )
        if rec is not None:
            self._mark_dead(rec, vm.exit_reason or "node lost")

    def _forget_shipped(self, snapshot_id: str) -> None:
        if self.cluster is not None:
            self.cluster.forget(snapshot_id)

    def _leave_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.shutdown()


def death_reason(vm: Any) -> str:
    """Why a sandbox that stopped by itself died, as its record says it."""
    if getattr(vm, "remote", False):
        return vm.exit_reason or "node lost"
    return f"crashed: {vm.exit_reason}"


def _redistribute(plan: list, extra: int) -> list:
    counts = [k for _, k in plan]
    for i in range(extra):
        counts[i % len(counts)] += 1
    return [(link, k) for (link, _), k in zip(plan, counts, strict=True)]
