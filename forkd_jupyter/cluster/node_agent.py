"""The actor on each Ray node: it owns the node's sandboxes through
``forkd_jupyter.vmm`` (in its own process), receives shipped snapshots
into its chunk cache and spawns their children. The daemon's hub makes
one per node with Ray's node affinity; this module does not import Ray at
import time, so the daemon can load it without joining a cluster.

Concurrency: the actor is threaded (several cells on different sandboxes
at once, an interrupt while a cell runs). ``_lock`` guards the maps; VMM
calls run outside it."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator

from .. import vmm
from ..doctor import FAIL, kvm, uffd
from ..doctor.memory import meminfo
from ..locations import state_dir
from ..vmm import image_store, saved
from .chunk_cache import ChunkCache
from .manifest import Manifest, ManifestError

# For tests: a node started with this variable reports KVM as missing, as a
# machine without /dev/kvm would (tests/test_cluster.py).
HIDE_KVM_ENV = "FORKD_TEST_HIDE_KVM"


def own_pss_bytes() -> int | None:
    """This process's proportional set size: its share of the memory it
    maps, images and children's RAM included (None without smaps_rollup)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Receiving:
    """One snapshot arriving: its manifest, the image being filled, and the
    blocks still to write."""

    def __init__(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        self.manifest = manifest
        self.files = files
        self.image = image_store.new_file("forkd-shipped-image", manifest.image_size)
        self.pending: dict[str, list[tuple[int, int]]] = {}
        for offset, length, h in manifest.blocks:
            self.pending.setdefault(h, []).append((offset, length))
        self.received_bytes = 0
        self.started = time.monotonic()

    def write(self, h: str, raw: bytes) -> None:
        for offset, length in self.pending.pop(h, ()):
            if length != len(raw):
                raise ManifestError("a shipped block has the wrong length")
            os.pwrite(self.image, raw, offset)

    def close(self) -> None:
        if self.image >= 0:
            os.close(self.image)
            self.image = -1


class NodeAgent:
    def __init__(self, cluster_key: bytes) -> None:
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.host = socket.gethostname()
        self._key = cluster_key
        self.cache = ChunkCache(state_dir() / "cluster-cache" / self.node_id[:16])
        self._lock = threading.Lock()
        self._images: dict[str, vmm.Snapshot] = {}
        self._sandboxes: dict[str, vmm.Sandbox] = {}
        self._receiving: dict[int, Receiving] = {}
        self._ids = itertools.count(1)

    # ----------------------------------------------------------- the node
    def probe(self) -> dict:
        """Whether sandboxes can run here, by the doctor's KVM and
        userfaultfd probes; ``reason`` names the first failed check."""
        if os.environ.get(HIDE_KVM_ENV):
            reason = f"kvm: /dev/kvm hidden on this node ({HIDE_KVM_ENV})"
        else:
            failed = [c for c in kvm.checks() + uffd.checks() if c.status == FAIL]
            reason = f"{failed[0].name}: {failed[0].detail}" if failed else None
        return {"node_id": self.node_id, "host": self.host, "ok": reason is None, "reason": reason}

    def info(self) -> dict:
        """Free memory and what the node holds; ``dead`` maps sandboxes that
        stopped by themselves (a crashed guest) to the reason."""
        with self._lock:
            dead = {
                i: sb.exit_reason or "stopped" for i, sb in self._sandboxes.items() if not sb.alive
            }
            for i in dead:
                del self._sandboxes[i]
            running, images = len(self._sandboxes), list(self._images)
        return {
            "node_id": self.node_id,
            "free_bytes": meminfo().get("MemAvailable", 0) * 1024,
            "pss_bytes": own_pss_bytes(),
            "sandboxes": running,
            "images": images,
            "dead": dead,
        }

    # ------------------------------------------------------ receiving images
    def begin(self, canonical: bytes, mac: str, files: dict[str, bytes]) -> dict:
        """Starts receiving a signed manifest: ``{"loaded": key}`` when the
        image is already loaded here, else ``{"session", "wanted"}`` with the
        hashes of the blocks the node's cache lacks."""
        manifest = Manifest.parse(canonical, mac, self._key)
        for name, data in files.items():
            manifest.check_file(name, data)
        with self._lock:
            if manifest.key in self._images:
                return {"loaded": manifest.key}
        session = Receiving(manifest, files)
        with self._lock:
            number = next(self._ids)
            self._receiving[number] = session
        wanted = sorted(h for h in manifest.hashes if not self.cache.has(h))
        return {"session": number, "wanted": wanted}

    def receive(self, number: int, batch: tuple) -> int:
        """Stores a batch (packing.Batch: an index of (hash, codec, start,
        length) and one byte buffer); returns the raw bytes it held."""
        session = self._session(number)
        index, buffer = batch
        view = memoryview(buffer)
        raw_bytes = 0
        for h, codec, start, length in index:
            if h not in session.pending:
                continue  # a block another node asked for
            if start < 0 or length < 0 or start + length > len(view):
                raise ManifestError("a shipped batch's index points outside it")
            raw = self.cache.put(h, codec, view[start : start + length])
            session.write(h, raw)
            raw_bytes += len(raw)
        session.received_bytes += raw_bytes
        return raw_bytes

    def finish(self, number: int) -> dict:
        """Fills the image's remaining blocks from the cache and loads it;
        returns the image's key and what the transfer cost."""
        session = self._session(number)
        with self._lock:
            self._receiving.pop(number, None)
        try:
            for h in list(session.pending):
                raw = self.cache.get(h)
                if raw is None:
                    raise ManifestError(f"block {h[:12]} was neither shipped nor cached")
                session.write(h, raw)
            files = session.files
            staged = saved.Staged.adopt(
                files["meta.json"], files["state"], files["layer.memfs"], session.image
            )
            session.image = -1  # owned by staged now
            image = vmm.Snapshot.load_staged(staged, f"a snapshot shipped to {self.host}")
        finally:
            session.close()
        key = session.manifest.key
        with self._lock:
            old = self._images.pop(key, None)
            self._images[key] = image
        if old is not None:
            old.close(force=True)
        self.cache.trim()
        return {
            "key": key,
            "received_bytes": session.received_bytes,
            "ms": (time.monotonic() - session.started) * 1000,
        }

    def abort(self, number: int) -> None:
        with self._lock:
            session = self._receiving.pop(number, None)
        if session is not None:
            session.close()

    def _session(self, number: int) -> Receiving:
        with self._lock:
            session = self._receiving.get(number)
        if session is None:
            raise ManifestError(f"no snapshot is being received as session {number}")
        return session

    def forget(self, key: str) -> bool:
        """Releases a loaded image (its children keep their own reference)."""
        with self._lock:
            image = self._images.pop(key, None)
        if image is not None:
            image.close(force=True)
        return image is not None

    # ------------------------------------------------------------ sandboxes
    def spawn(self, key: str, n: int, live_fork: bool) -> list[dict]:
        with self._lock:
            image = self._images.get(key)
        if image is None:
            raise ManifestError(f"no image {key[:12]} on node {self.node_id[:8]}")
        out = []
        for sb in image.spawn(n):
            sb.live_fork = sb.live_fork and live_fork
            with self._lock:
                sid = f"n{next(self._ids)}"
                self._sandboxes[sid] = sb
            out.append(
                {
                    "id": sid,
                    "memory_mib": sb.memory_mib,
                    "live_fork": sb.live_fork,
                    "python": sb.python,
                }
            )
        return out

    def _sandbox(self, sid: str) -> vmm.Sandbox:
        with self._lock:
            sb = self._sandboxes.get(sid)
        if sb is None:
            raise vmm.SandboxClosed(f"no sandbox {sid} on node {self.node_id[:8]}")
        return sb

    def run(self, sid: str, code: str, timeout: float | None) -> Iterator[tuple[str, dict]]:
        """The cell's events as they happen: ("stream", {name, text}),
        ("display" | "clear_output", fields), then ("result", record) or
        ("raise", {kind, message}) for a VMM failure."""
        import queue

        events: queue.Queue = queue.Queue()
        done = object()

        def work() -> None:
            try:
                sb = self._sandbox(sid)
                result = sb.run(
                    code,
                    on_output=lambda name, text: events.put(
                        ("stream", {"name": name, "text": text})
                    ),
                    timeout=timeout,
                    on_display=lambda kind, fields: events.put((kind, fields)),
                )
                events.put(("result", result.to_dict()))
            except vmm.SandboxTimeout as e:
                events.put(("raise", {"kind": "timeout", "message": str(e)}))
            except vmm.SandboxCrashed as e:
                events.put(("raise", {"kind": "crashed", "message": str(e)}))
            except vmm.SandboxError as e:
                events.put(("raise", {"kind": "closed", "message": str(e)}))
            finally:
                events.put(done)

        threading.Thread(target=work, name=f"run-{sid}", daemon=True).start()
        while (event := events.get()) is not done:
            yield event

    def interrupt(self, sid: str) -> None:
        self._sandbox(sid).interrupt()

    def kill(self, sid: str, graceful: bool = True) -> None:
        with self._lock:
            sb = self._sandboxes.pop(sid, None)
        if sb is not None:
            sb.close(graceful=graceful)

    def push_pickled(self, sid: str, name: str, data: bytes) -> None:
        self._sandbox(sid).push_pickled(name, data)

    def pull_pickled(self, sid: str, name: str) -> bytes:
        return self._sandbox(sid).pull_pickled(name)
