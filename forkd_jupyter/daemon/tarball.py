"""Tar archives in and out of a sandbox's writable layer, streamed.

Invariants:
- An archive is read twice from a host temporary file, never held in
  memory: the first pass decompresses it as a stream and checks every
  member (name, type, size, count) and the total against the caps and the
  layer's free space as it goes, discarding the data; the second pass
  writes. So nothing is written unless the whole archive is valid and fits,
  and a compression bomb costs at most the caps in CPU, never memory.
- If a write still fails (the guest filled the layer meanwhile), everything
  this upload created is removed again.
- Both passes run on the executor, never on the IO loop."""

from __future__ import annotations

import bz2
import errno
import lzma
import posixpath
import tarfile
import zlib
from typing import IO

from ..vmm.layer import CHUNK
from .errors import ApiError
from .fsops import Layer

MAX_MEMBERS = 100_000
MAX_TOTAL = 1 << 30  # bytes unpacked, whatever the layer's room
CORRUPT = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError)
READ = 1 << 20  # compressed bytes read, and decompressed bytes made, at a time


def _members(tar: tarfile.TarFile, root: str):
    """(guest path, info) of each member, checked as it is read."""
    for info in tar:
        name = info.name
        if name.startswith("/") or ".." in name.split("/"):
            raise ApiError(400, f"archive member {name[:200]!r} leaves the target directory")
        if "\x00" in name or len(name) > 4096:
            raise ApiError(400, f"archive member {name[:200]!r} has an invalid name")
        if not (info.isfile() or info.isdir()):
            raise ApiError(400, f"archive member {name[:200]!r} is not a regular file or directory")
        full = posixpath.normpath(posixpath.join(root, name))
        if full != root and not full.startswith(root.rstrip("/") + "/"):
            raise ApiError(400, f"archive member {name[:200]!r} leaves the target directory")
        yield full, info


class _Decompressed:
    """The archive's bytes, decompressed (gzip, bzip2, xz or none, told by
    the magic number) a bounded piece at a time: at most ``n`` bytes of
    output exist per ``read(n)``, however well the input compresses."""

    def __init__(self, raw: IO[bytes]) -> None:
        raw.seek(0)
        magic = raw.read(6)
        raw.seek(0)
        self.raw, self.pending, self.done = raw, b"", False
        self.is_zlib = magic.startswith(b"\x1f\x8b")
        if self.is_zlib:
            self.codec = zlib.decompressobj(wbits=31)
        elif magic.startswith(b"BZh"):
            self.codec = bz2.BZ2Decompressor()
        elif magic.startswith(b"\xfd7zXZ\x00"):
            self.codec = lzma.LZMADecompressor()
        else:
            self.codec = None

    def _input(self) -> bytes:
        data = self.raw.read(READ)
        if not data:
            self.done = True
        return data

    def _more(self, n: int) -> bytes:
        codec = self.codec
        if codec is None:
            data = self.raw.read(n)
            self.done = not data
            return data
        if codec.eof:
            self.done = True
            return b""
        if self.is_zlib:
            src = codec.unconsumed_tail or self._input()
            return codec.decompress(src, n) if src else b""
        if codec.needs_input:
            src = self._input()
            return codec.decompress(src, n) if src else b""
        return codec.decompress(b"", n)

    def read(self, n: int = -1) -> bytes:
        n = READ if n is None or n < 0 else n
        out, have = [self.pending], len(self.pending)
        while have < n and not self.done:
            data = self._more(n - have)
            out.append(data)
            have += len(data)
        joined = b"".join(out)
        self.pending = joined[n:]
        return joined[:n]


def _open(fileobj: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=_Decompressed(fileobj), mode="r|", bufsize=READ)
    except CORRUPT as e:
        raise ApiError(400, f"the body is not a tar archive: {e}") from None


def check(fileobj: IO[bytes], root: str, room: int | None) -> tuple[int, int]:
    """Pass one: (members, bytes) of a valid archive that fits, else 400/413."""
    cap = MAX_TOTAL if room is None else min(MAX_TOTAL, room)
    count = total = 0
    try:
        with _open(fileobj) as tar:
            for _full, info in _members(tar, root):
                count += 1
                total += info.size if info.isfile() else 0
                if count > MAX_MEMBERS:
                    raise ApiError(413, f"the archive has more than {MAX_MEMBERS} members")
                if total > cap:
                    raise ApiError(
                        413,
                        f"the archive unpacks to more than {cap} bytes "
                        f"(member {info.name[:200]!r} is {info.size} bytes); "
                        f"the layer has room for {cap}",
                    )
    except CORRUPT as e:
        raise ApiError(400, f"the body is not a valid tar archive: {e}") from None
    return count, total


def unpack(layer: Layer, fileobj: IO[bytes], root: str) -> list[str]:
    """Pass two: writes the members; on failure removes what it created."""
    created: list[str] = []
    written: list[str] = []
    try:
        layer.mkdir_tracked(root, created)
        with _open(fileobj) as tar:
            for full, info in _members(tar, root):
                if info.isdir():
                    layer.mkdir_tracked(full, created)
                    continue
                layer.mkdir_tracked(posixpath.dirname(full), created)
                existed = layer.files.exists(full)
                layer.files.write_at(full, b"", 0, truncate=True, mode=info.mode & 0o777 or 0o644)
                if not existed:
                    created.append(full)
                data = tar.extractfile(info)
                offset = 0
                while chunk := data.read(CHUNK):
                    layer.files.write_at(full, chunk, offset)
                    offset += len(chunk)
                written.append(full)
    except BaseException as e:
        for path in reversed(created):
            try:
                layer.files.remove(path)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            detail = "the layer ran out of room while unpacking; nothing was kept"
            raise ApiError(413, detail) from None
        raise
    return written


def pack(layer: Layer, root: str, out: IO[bytes]) -> None:
    """The directory's files and subdirectories (names relative to it) as
    an uncompressed tar, written to ``out``."""
    listed, _ = layer.walk(root, 1 << 62, recursive=True)
    with tarfile.open(fileobj=out, mode="w") as tar:
        for item in listed:
            info = tarfile.TarInfo(item.path)
            info.mode = item.entry.mode
            info.mtime = item.entry.mtime_ns // 1_000_000_000
            full = posixpath.join(root, item.path)
            if item.entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif item.entry.kind == "file":
                info.size = item.entry.size
                tar.addfile(info, _LayerReader(layer, full, item.entry.size))


class _LayerReader:
    """A file object over one layer file, read a chunk at a time."""

    def __init__(self, layer: Layer, path: str, size: int) -> None:
        self.layer, self.path, self.offset, self.size = layer, path, 0, size

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n < 0 else min(n, CHUNK)
        data = self.layer.files.read_at(self.path, self.offset, n)
        self.offset += len(data)
        return data
