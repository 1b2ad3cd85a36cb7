"""Host-side file access to a sandbox's writable layer (/tmp, /sandbox).

Never touches a host path: the C side refuses anything outside the layer and
does not follow symlinks."""

from __future__ import annotations

import posixpath
import stat as stat_mod
from dataclasses import dataclass
from typing import Any

from ._ffi import ffi, lib
from .errors import check

LAYER_ROOTS = ("/tmp", "/sandbox")
CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerEntry:
    name: str
    kind: str  # "file", "dir" or "symlink"
    size: int
    mtime_ns: int
    mode: int


def guest_path(path: str, cwd: str = "/sandbox") -> str:
    """Absolute, normalized guest path; relative paths are under cwd.
    Raises PermissionError for paths outside the writable layer."""
    if not isinstance(path, str) or "\x00" in path:
        raise ValueError("path must be a string without NUL bytes")
    full = posixpath.normpath(posixpath.join(cwd, path))
    if not any(full == r or full.startswith(r + "/") for r in LAYER_ROOTS):
        raise PermissionError(f"{path!r} is outside the sandbox's writable layer (/tmp, /sandbox)")
    return full


def _entry(d: Any) -> LayerEntry:
    mode = d.mode
    kind = "dir" if stat_mod.S_ISDIR(mode) else "symlink" if stat_mod.S_ISLNK(mode) else "file"
    return LayerEntry(
        ffi.string(d.name).decode(errors="surrogateescape"), kind, d.size, d.mtime_ns, mode & 0o7777
    )


class LayerFiles:
    """File operations on one sandbox's layer; ``handle`` is its C handle."""

    def __init__(self, handle: Any) -> None:
        self._h = handle

    def read(self, path: str) -> bytes:
        p = guest_path(path).encode()
        out = bytearray()
        buf = ffi.new("char[]", CHUNK)
        while True:
            n = check(lib.fj_layer_read(self._h, p, buf, CHUNK, len(out)), f"read {path}")
            if n == 0:
                return bytes(out)
            out += ffi.buffer(buf, n)

    def write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        p = guest_path(path).encode()
        view = memoryview(bytes(data))
        check(
            lib.fj_layer_write(self._h, p, ffi.from_buffer(view[:0]), 0, 0, 1, mode),
            f"write {path}",
        )
        off = 0
        while off < len(view):
            chunk = view[off : off + CHUNK]
            n = check(
                lib.fj_layer_write(self._h, p, ffi.from_buffer(chunk), len(chunk), off, 0, mode),
                f"write {path}",
            )
            off += n

    def read_at(self, path: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (b"" at the end of the file)."""
        buf = ffi.new("char[]", max(1, size))
        n = check(lib.fj_layer_read(self._h, guest_path(path).encode(), buf, size, offset), path)
        return bytes(ffi.buffer(buf, n))

    def write_at(
        self, path: str, data: bytes, offset: int, truncate: bool = False, mode: int = 0o644
    ) -> None:
        """Writes ``data`` at ``offset``, creating the file; ``truncate``
        first cuts it to ``offset`` bytes."""
        p = guest_path(path).encode()
        view = memoryview(bytes(data))
        if truncate or not view:
            check(
                lib.fj_layer_write(
                    self._h, p, ffi.from_buffer(view[:0]), 0, offset, int(truncate), mode
                ),
                f"write {path}",
            )
        done = 0
        while done < len(view):
            chunk = view[done : done + CHUNK]
            done += check(
                lib.fj_layer_write(
                    self._h, p, ffi.from_buffer(chunk), len(chunk), offset + done, 0, mode
                ),
                f"write {path}",
            )

    def stat(self, path: str) -> LayerEntry:
        d = ffi.new("struct fj_dirent *")
        check(lib.fj_layer_stat(self._h, guest_path(path).encode(), d), f"stat {path}")
        return _entry(d)

    def mkdir(self, path: str, parents: bool = False, mode: int = 0o755) -> None:
        full = guest_path(path)
        if parents:
            parent = posixpath.dirname(full)
            if parent not in ("/",) + LAYER_ROOTS and not self.exists(parent):
                self.mkdir(parent, parents=True, mode=mode)
        ret = lib.fj_layer_mkdir(self._h, full.encode(), mode)
        if parents and ret == -17 and self.stat(full).kind == "dir":  # EEXIST
            return
        check(ret, f"mkdir {path}")

    def exists(self, path: str) -> bool:
        d = ffi.new("struct fj_dirent *")
        return lib.fj_layer_stat(self._h, guest_path(path).encode(), d) == 0

    def listdir(self, path: str) -> list[LayerEntry]:
        p = guest_path(path).encode()
        out: list[LayerEntry] = []
        batch = ffi.new("struct fj_dirent[]", 256)
        while True:
            n = check(lib.fj_layer_list(self._h, p, len(out), batch, 256), f"list {path}")
            out += [_entry(batch[i]) for i in range(n)]
            if n < 256:
                return out

    def remove(self, path: str) -> None:
        check(lib.fj_layer_remove(self._h, guest_path(path).encode()), f"remove {path}")
