"""A node's cache of shipped RAM blocks, by content hash: one zstd file per
block under ``<dir>/<2 hex>/<sha256>``. A block enters only when its
content hashes to its name, and is checked again when read, so neither a
corrupted file nor one placed by someone else can reach a loaded image.
Oldest-used blocks go first when the cache passes its byte limit."""

from __future__ import annotations

import os
from pathlib import Path

import zstandard

from ..locations import private_dir
from .manifest import BLOCK, ManifestError, digest

DEFAULT_LIMIT_BYTES = 8 << 30


def _decompress(compressed: bytes, max_output_size: int) -> bytes:
    # A decompressor per call: they are not thread-safe, and the agent
    # receives several batches at once.
    return zstandard.ZstdDecompressor().decompress(compressed, max_output_size=max_output_size)


class ChunkCache:
    def __init__(self, root: Path, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self.root = private_dir(root)
        self.limit_bytes = limit_bytes

    def _path(self, h: str) -> Path:
        if len(h) != 64 or not all(c in "0123456789abcdef" for c in h):
            raise ManifestError(f"{h[:80]!r} is not a block hash")
        return self.root / h[:2] / h

    def has(self, h: str) -> bool:
        return self._path(h).exists()

    def put(self, h: str, compressed: bytes) -> bytes:
        """Stores a shipped block; returns its content. ManifestError when
        the content is not what ``h`` names."""
        try:
            raw = _decompress(compressed, max_output_size=BLOCK)
        except zstandard.ZstdError as e:
            raise ManifestError(f"a shipped block does not decompress ({e})") from None
        if digest(raw) != h:
            raise ManifestError("a shipped block does not match its hash")
        path = self._path(h)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{h}.{os.getpid()}.tmp")
        tmp.write_bytes(compressed)
        os.replace(tmp, path)
        return raw

    def get(self, h: str) -> bytes | None:
        """The block's content, or None when it is missing or damaged (a
        damaged file is removed)."""
        path = self._path(h)
        try:
            compressed = path.read_bytes()
            raw = _decompress(compressed, max_output_size=BLOCK)
        except (OSError, zstandard.ZstdError):
            path.unlink(missing_ok=True)
            return None
        if digest(raw) != h:
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used: evicted last
        return raw

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("??/*"))

    def trim(self) -> int:
        """Removes the least recently used blocks until the cache fits its
        limit; returns the bytes removed."""
        entries = []
        for p in self.root.glob("??/*"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, p in sorted(entries):
            if total - removed <= self.limit_bytes:
                break
            p.unlink(missing_ok=True)
            removed += size
        return removed
