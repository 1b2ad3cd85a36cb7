"""A node's cache of shipped RAM blocks, by content hash: one file per block
under ``<dir>/<2 hex>/<sha256>`` (a codec byte, then the block as shipped:
zstd or raw). A block enters only when its
content hashes to its name, and is checked again when read, so neither a
corrupted file nor one placed by someone else can reach a loaded image.
Oldest-used blocks go first when the cache passes its byte limit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import zstandard

from ..locations import private_dir
from .manifest import BLOCK, ManifestError, digest

DEFAULT_LIMIT_BYTES = 8 << 30


_CODEC_BYTE = {"zstd": b"z", "raw": b"r"}  # a cache file: this byte, then the block as shipped
_CODECS = {v: k for k, v in _CODEC_BYTE.items()}


def _content(codec: str, data) -> bytes:
    """A shipped block's content. A decompressor per call: they are not
    thread-safe, and the agent receives several batches at once."""
    if codec == "raw":
        if len(data) > BLOCK:
            raise ManifestError("a shipped block is larger than a block")
        return bytes(data)
    if codec != "zstd":
        raise ManifestError(f"a shipped block has an unknown encoding {codec!r}")
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=BLOCK)
    except zstandard.ZstdError as e:
        raise ManifestError(f"a shipped block does not decompress ({e})") from None


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

    def put(self, h: str, codec: str, data) -> bytes:
        """Stores a shipped block (``codec`` "zstd" or "raw"); returns its
        content. ManifestError when the content is not what ``h`` names."""
        raw = _content(codec, data)
        if digest(raw) != h:
            raise ManifestError("a shipped block does not match its hash")
        path = self._path(h)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{h}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(_CODEC_BYTE[codec])
            f.write(data)
        os.replace(tmp, path)
        return raw

    def get(self, h: str) -> bytes | None:
        """The block's content, or None when it is missing or damaged (a
        damaged file is removed)."""
        path = self._path(h)
        try:
            stored = path.read_bytes()
            raw = _content(_CODECS.get(stored[:1], "?"), memoryview(stored)[1:])
        except (OSError, ManifestError):
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
