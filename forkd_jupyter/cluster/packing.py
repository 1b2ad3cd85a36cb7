"""The daemon's side of shipping: a snapshot written once to a private
scratch directory (tmpfs when the host has one), hashed into a manifest,
and read back block by block for the nodes that lack them.

Invariant: the scratch copy is removed on ``close``; nothing of it is
needed once every node has finished receiving."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator

import zstandard

from .. import vmm
from .manifest import BLOCK, SMALL_FILES, Manifest, digest

SCRATCH_ROOTS = ("/dev/shm",)
BATCH_BYTES = 16 << 20  # raw bytes per object put into Ray's store
ZSTD_LEVEL = 1  # fast: shipping time is dominated by reading and hashing
_ZERO = bytes(BLOCK)


class Packed:
    """One snapshot in shippable form: ``manifest``, the small files, and
    ``batches()`` of compressed blocks."""

    def __init__(self, snapshot: vmm.Snapshot) -> None:
        root = next((r for r in SCRATCH_ROOTS if os.access(r, os.W_OK)), None)
        self._dir = tempfile.mkdtemp(prefix="forkd-ship-", dir=root)
        self._image = -1
        try:
            snapshot.write_unsigned(self._dir)
            self.files = {name: _read(os.path.join(self._dir, name)) for name in SMALL_FILES}
            path = os.path.join(self._dir, "memory.img")
            self._image = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            os.unlink(path)  # the open fd keeps it; close() frees it
            size = os.fstat(self._image).st_size
            blocks = tuple(self._scan(size))
            hashes = {name: digest(data) for name, data in self.files.items()}
            self.manifest = Manifest(size, blocks, hashes)
        except BaseException:
            self.close()
            raise

    def _scan(self, size: int) -> Iterator[tuple[int, int, str]]:
        """(offset, length, hash) of every block that holds a non-zero byte."""
        at = 0
        while at < size:
            try:
                data = os.lseek(self._image, at, os.SEEK_DATA)
            except OSError:
                return  # ENXIO: only a hole is left
            end = min(os.lseek(self._image, data, os.SEEK_HOLE), size)
            for offset in range(max(data - data % BLOCK, at), end, BLOCK):
                block = os.pread(self._image, min(BLOCK, size - offset), offset)
                if block != _ZERO[: len(block)]:
                    yield offset, len(block), digest(block)
            at = max(at, -(-end // BLOCK) * BLOCK)

    def batches(self, wanted: Iterable[str]) -> Iterator[list[tuple[str, bytes]]]:
        """Lists of (hash, zstd-compressed block) covering ``wanted``, each
        hash once, about BATCH_BYTES of raw data per list."""
        wanted = set(wanted)
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        batch: list[tuple[str, bytes]] = []
        raw = 0
        for offset, length, h in self.manifest.blocks:
            if h not in wanted:
                continue
            wanted.discard(h)
            batch.append((h, compressor.compress(os.pread(self._image, length, offset))))
            raw += length
            if raw >= BATCH_BYTES:
                yield batch
                batch, raw = [], 0
        if batch:
            yield batch

    def close(self) -> None:
        if self._image >= 0:
            os.close(self._image)
            self._image = -1
        shutil.rmtree(self._dir, ignore_errors=True)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
