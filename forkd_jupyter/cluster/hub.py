"""The daemon's side of a Ray cluster: it joins the cluster, puts one
``NodeAgent`` on every node (Ray's node affinity), keeps each node's probe
result, ships snapshots and spawns children there, and notices lost nodes.

Nodes are found when the daemon joins and again before each spread (a node
added later takes part in the next branch). The daemon's own node, when it
is part of the cluster, spawns its share in the daemon itself: nothing is
shipped to it.

Liveness: while remote sandboxes exist, a watcher asks each node holding
some for its ``info`` every WATCH_INTERVAL_S (nothing runs when there are
none, so an idle daemon stays idle); a Ray actor error means the node is
lost, and its sandboxes die with that reason. A cell running on a node
learns it at once from its own stream."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import vmm
from ..controller import errors as E
from ..doctor.memory import meminfo
from .manifest import ManifestError
from .node_agent import NodeAgent, own_pss_bytes
from .packing import Packed
from .placement import spread
from .remote_sandbox import RemoteSandbox

NAMESPACE = "forkd-jupyter"
PROBE_TIMEOUT_S = 120.0
WATCH_INTERVAL_S = 2.0
WINDOW = 4  # batches in Ray's object store at once, per shipment
MIN_CHILD_BYTES = 64 << 20  # the least a child is assumed to cost when placing


@dataclass(eq=False)
class NodeLink:
    node_id: str
    host: str
    local: bool  # the daemon's own node: children spawn in the daemon
    agent: Any = None  # the NodeAgent actor handle (None for the local node)
    ok: bool = True
    reason: str | None = None
    sandboxes: set = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.host}/{self.node_id[:8]}"

    def lost(self, error: Exception) -> str:
        """Marks the node lost; returns the reason its sandboxes die with."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = f"node {self.label} lost: {first}"
        if self.ok:
            self.ok, self.reason = False, reason
        return reason

    def forget_sandbox(self, sb: RemoteSandbox) -> None:
        self.sandboxes.discard(sb)


@dataclass
class Shipment:
    """What shipping one snapshot to one node cost."""

    node: str
    bytes_shipped: int  # raw bytes of the blocks sent (before compression)
    bytes_compressed: int
    ms: float
    key: str
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "node": self.node,
            "bytes": self.bytes_shipped,
            "compressed_bytes": self.bytes_compressed,
            "ms": round(self.ms, 1),
            "error": self.error,
        }


class ClusterHub:
    def __init__(self, address: str) -> None:
        import ray

        self.address = address
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        except Exception as e:  # ConnectionError, ValueError... all mean "cannot join"
            raise E.ClusterUnavailable(f"cannot join the Ray cluster at {address!r}: {e}") from None
        self._key = secrets.token_bytes(32)
        self._local_id = ray.get_runtime_context().get_node_id()
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeLink] = {}
        self._keys: dict[str, str] = {}  # snapshot id -> image key shipped for it
        self._stopping = threading.Event()
        self._has_remote = threading.Event()
        self.on_dead: Callable[[RemoteSandbox], None] = lambda sb: None
        self.discover()
        self._watcher = threading.Thread(target=self._watch, name="cluster-watch", daemon=True)
        self._watcher.start()

    # --------------------------------------------------------------- nodes
    def discover(self) -> None:
        """Creates an agent on every alive node not seen yet and probes it."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor_class = ray.remote(NodeAgent)
        fresh = []
        for node in ray.nodes():
            node_id = node["NodeID"]
            if not node["Alive"] or node_id in self._nodes:
                continue
            host = node.get("NodeManagerHostname") or node.get("NodeManagerAddress", "?")
            link = NodeLink(node_id, host, local=node_id == self._local_id)
            if not link.local:
                link.agent = actor_class.options(
                    num_cpus=0,
                    max_concurrency=256,
                    max_restarts=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(self._key)
                fresh.append(link)
            with self._lock:
                self._nodes[node_id] = link
        probes = {link.node_id: link.agent.probe.remote() for link in fresh}
        for link in fresh:
            try:
                found = ray.get(probes[link.node_id], timeout=PROBE_TIMEOUT_S)
            except Exception as e:
                link.ok, link.reason = False, f"probe failed: {str(e).splitlines()[0]}"
                continue
            link.ok, link.reason = found["ok"], found["reason"]
            if not link.ok:  # skipped: its agent has nothing to do
                ray.kill(link.agent)
                link.agent = None

    def usable(self) -> list[NodeLink]:
        with self._lock:
            links = [n for n in self._nodes.values() if n.ok]
        return sorted(links, key=lambda n: (not n.local, n.node_id))

    def nodes(self) -> list[dict]:
        """Every node seen: its label, whether it takes sandboxes (or why
        not), free memory and the sandboxes it runs."""
        import ray

        with self._lock:
            links = list(self._nodes.values())
        infos = {n.node_id: n.agent.info.remote() for n in links if n.ok and n.agent is not None}
        out = []
        for n in links:
            free = pss = None
            if n.local:
                free, pss = meminfo().get("MemAvailable", 0) * 1024, own_pss_bytes()
            elif n.node_id in infos:
                try:
                    info = ray.get(infos[n.node_id], timeout=30)
                    free, pss = info["free_bytes"], info["pss_bytes"]
                except Exception as e:
                    n.lost(e)
            out.append(
                {
                    "node_id": n.node_id,
                    "label": n.label,
                    "host": n.host,
                    "local": n.local,
                    "usable": n.ok,
                    "reason": n.reason,
                    "free_bytes": free,
                    "pss_bytes": pss,
                    "remote_sandboxes": len(n.sandboxes),
                }
            )
        return out

    def describe(self) -> dict:
        return {"address": self.address, "nodes": self.nodes()}

    # ----------------------------------------------------------- placement
    def place(self, n: int, child_bytes: int) -> list[tuple[NodeLink, int]]:
        """Spreads n children over the usable nodes by free memory."""
        self.discover()
        links = self.usable()
        if not links:
            raise E.ClusterUnavailable(
                "no node of the cluster can run sandboxes (see GET /v1/cluster)"
            )
        free = {d["node_id"]: d["free_bytes"] or 0 for d in self.nodes()}
        counts = spread(
            n, [free.get(n.node_id, 0) for n in links], max(child_bytes, MIN_CHILD_BYTES)
        )
        return [(link, k) for link, k in zip(links, counts, strict=True) if k]

    # ------------------------------------------------------------ shipping
    def ship(self, snapshot_id: str, image: vmm.Snapshot, links: list[NodeLink]) -> list[Shipment]:
        """Sends the snapshot to each node (only the blocks its cache
        lacks); one Shipment per node, ``error`` set for a node that
        failed."""
        import ray

        started = time.monotonic()
        packed = Packed(image)
        try:
            manifest = packed.manifest
            canonical, mac = manifest.canonical(), manifest.sign(self._key)
            begun = {n.node_id: n.agent.begin.remote(canonical, mac, packed.files) for n in links}
            sessions, shipments = {}, {}
            for link in links:
                try:
                    sessions[link.node_id] = ray.get(begun[link.node_id])
                except Exception as e:
                    shipments[link.node_id] = self._failed(link, manifest.key, e)
            wanted: dict[str, set[str]] = {
                nid: set(s.get("wanted", ())) for nid, s in sessions.items() if "session" in s
            }
            shipped = {nid: [0, 0] for nid in wanted}
            pending: list[list] = []
            for batch in packed.batches(set().union(*wanted.values()) if wanted else set()):
                ref = ray.put(batch)
                sizes = {h: length for h, _, _, length in batch[0]}
                calls = []
                for nid, hashes in wanted.items():
                    if nid in shipments or not hashes.intersection(sizes):
                        continue
                    mine = hashes.intersection(sizes)
                    shipped[nid][1] += sum(sizes[h] for h in mine)
                    link = self._nodes[nid]
                    calls.append((nid, link.agent.receive.remote(sessions[nid]["session"], ref)))
                pending.append(calls)
                if len(pending) >= WINDOW:
                    self._settle(pending.pop(0), shipped, shipments, manifest.key)
            for calls in pending:
                self._settle(calls, shipped, shipments, manifest.key)
            finishing = {
                nid: self._nodes[nid].agent.finish.remote(s["session"])
                for nid, s in sessions.items()
                if "session" in s and nid not in shipments
            }
            for link in links:
                nid = link.node_id
                if nid in shipments:
                    continue
                try:
                    if nid in finishing:
                        ray.get(finishing[nid])
                except Exception as e:
                    shipments[nid] = self._failed(link, manifest.key, e)
                    continue
                raw, compressed = shipped.get(nid, (0, 0))
                shipments[nid] = Shipment(
                    link.label, raw, compressed, (time.monotonic() - started) * 1000, manifest.key
                )
            for nid, s in sessions.items():  # a node that failed mid-way drops its partial image
                if "session" in s and shipments[nid].error and self._nodes[nid].ok:
                    self._nodes[nid].agent.abort.remote(s["session"])
            with self._lock:
                self._keys[snapshot_id] = manifest.key
            return [shipments[link.node_id] for link in links]
        finally:
            packed.close()

    def _settle(self, calls: list, shipped: dict, shipments: dict, key: str) -> None:
        import ray

        for nid, ref in calls:
            try:
                shipped[nid][0] += ray.get(ref)
            except Exception as e:
                if nid not in shipments:
                    shipments[nid] = self._failed(self._nodes[nid], key, e)

    def _failed(self, link: NodeLink, key: str, error: Exception) -> Shipment:
        import ray

        if isinstance(error, ray.exceptions.RayActorError):
            reason = link.lost(error)
        else:
            cause = getattr(error, "cause", None) or error
            reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
        return Shipment(link.label, 0, 0, 0.0, key, error=reason)

    def spawn_on(self, link: NodeLink, key: str, n: int, live_fork: bool) -> list[RemoteSandbox]:
        import ray

        try:
            records = ray.get(link.agent.spawn.remote(key, n, live_fork))
        except ray.exceptions.RayActorError as e:
            raise E.ClusterUnavailable(link.lost(e)) from None
        except (ManifestError, vmm.SandboxError) as e:
            raise E.SpawnFailed(f"node {link.label}: {e}") from None
        children = [RemoteSandbox(link, r["id"], r) for r in records]
        with self._lock:
            link.sandboxes.update(children)
        self._has_remote.set()
        return children

    def forget(self, snapshot_id: str) -> None:
        """Releases the nodes' copies of a deleted snapshot."""
        with self._lock:
            key = self._keys.pop(snapshot_id, None)
            agents = [n.agent for n in self._nodes.values() if n.ok and n.agent is not None]
        if key is not None:
            for agent in agents:
                agent.forget.remote(key)

    # ------------------------------------------------------------ liveness
    def _watch(self) -> None:
        import ray

        while not self._stopping.is_set():
            self._has_remote.wait()
            if self._stopping.wait(WATCH_INTERVAL_S):
                return
            with self._lock:
                busy = [n for n in self._nodes.values() if n.sandboxes]
                if not busy:
                    self._has_remote.clear()
            asks = {n.node_id: n.agent.info.remote() for n in busy if n.ok}
            for link in busy:
                try:
                    if not link.ok:
                        raise RuntimeError(link.reason or "lost")
                    dead = ray.get(asks[link.node_id], timeout=30)["dead"]
                except Exception as e:
                    reason = link.lost(e) if link.ok else link.reason
                    for sb in list(link.sandboxes):
                        self._died(sb, reason)
                    continue
                for sb in list(link.sandboxes):
                    if sb.remote_id in dead:
                        self._died(sb, f"crashed: {dead[sb.remote_id]}")

    def _died(self, sb: RemoteSandbox, reason: str) -> None:
        sb.mark_dead(reason)
        sb.link.forget_sandbox(sb)
        self.on_dead(sb)

    def shutdown(self) -> None:
        import ray

        self._stopping.set()
        self._has_remote.set()
        try:
            ray.shutdown()
        except Exception:
            pass
