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
from typing import Any

import zstandard

from .. import vmm
from .manifest import BLOCK, SMALL_FILES, Manifest, digest

SCRATCH_ROOTS = ("/dev/shm",)
BATCH_BYTES = 16 << 20  # raw bytes per object put into Ray's store
ZSTD_LEVEL = 1  # fast: shipping time is dominated by reading and hashing
KEEP_RATIO = 0.9  # a block that compresses worse than this travels raw (random data)
SAMPLE_BYTES = 16 << 10  # compressed first, to tell whether the block is worth it

# One batch: (index, buffer). The index lists (hash, codec, start, length)
# of each block in the buffer, codec "zstd" or "raw"; the buffer is a numpy
# byte array, which Ray's object store holds without copying it again on
# either side.
Batch = tuple[list[tuple[str, str, int, int]], Any]
_ZERO = bytes(BLOCK)


class Packed:
    """One snapshot in shippable form: ``manifest``, the small files, and
    ``batches()`` of its blocks, compressed where that pays."""

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

    def batches(self, wanted: Iterable[str]) -> Iterator[Batch]:
        """Batches covering the blocks in ``wanted`` (each hash once), about
        BATCH_BYTES of raw data each."""
        wanted = set(wanted)
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        index: list[tuple[str, str, int, int]] = []
        parts: list[bytes] = []
        raw = at = 0
        for offset, length, h in self.manifest.blocks:
            if h not in wanted:
                continue
            wanted.discard(h)
            block = os.pread(self._image, length, offset)
            codec, data = "raw", block
            # A sample that does not compress (random data, already compressed
            # data) spares compressing the whole block.
            sample = block[:SAMPLE_BYTES]
            if len(compressor.compress(sample)) < len(sample) * KEEP_RATIO:
                packed = compressor.compress(block)
                if len(packed) < len(block) * KEEP_RATIO:
                    codec, data = "zstd", packed
            index.append((h, codec, at, len(data)))
            parts.append(data)
            at += len(data)
            raw += length
            if raw >= BATCH_BYTES:
                yield _batch(index, parts)
                index, parts, raw, at = [], [], 0, 0
        if index:
            yield _batch(index, parts)

    def close(self) -> None:
        if self._image >= 0:
            os.close(self._image)
            self._image = -1
        shutil.rmtree(self._dir, ignore_errors=True)


def _batch(index: list, parts: list[bytes]) -> Batch:
    import numpy

    return index, numpy.frombuffer(b"".join(parts), dtype=numpy.uint8)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
