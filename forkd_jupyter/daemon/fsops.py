"""File operations of the files routes on one sandbox's writable layer,
built on ``LayerFiles`` (blocking: the routes run them on the executor).

Invariants:
- Only ``LayerFiles`` touches the layer, so nothing here can reach a host
  file or follow a symlink.
- The two top-level folders (/sandbox, /tmp) can be listed and stated like
  any directory, but never removed, moved or replaced (ROOT_MODES).
- Directories are walked with explicit stacks (no recursion), and every
  walk stops at its ``limit``."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ..vmm.layer import CHUNK, LayerEntry, guest_path
from .errors import ApiError
from .validate import bad, check_path

ROOT_MODES = {"/sandbox": 0o755, "/tmp": 0o1777}
LIST_LIMIT = 10_000


def resolve(field: str, raw: str) -> str:
    """The absolute guest path of a path argument, or a 400 naming it."""
    check_path(field, raw)
    try:
        return guest_path(raw)
    except (PermissionError, ValueError) as e:
        raise bad(field, str(e)) from None


def file_error(e: OSError, path: str) -> ApiError:
    if isinstance(e, FileNotFoundError):
        return ApiError(404, f"{path}: no such file or directory")
    if isinstance(e, IsADirectoryError | NotADirectoryError | FileExistsError):
        return ApiError(409, f"{path}: {e.strerror}", kind="path-conflict")
    return ApiError(400, f"{path}: {e.strerror or e}")


@dataclass
class Listed:
    path: str  # relative to the listed directory
    entry: LayerEntry


class Layer:
    def __init__(self, vm) -> None:  # noqa: ANN001 - a vmm.Sandbox
        self.vm = vm
        self.files = vm.files

    # ------------------------------------------------------------- reads
    def stat(self, path: str) -> LayerEntry:
        return self.files.stat(path)

    def listdir(self, path: str) -> list[LayerEntry]:
        return self.files.listdir(path)

    def walk(self, root: str, limit: int, recursive: bool) -> tuple[list[Listed], bool]:
        """Entries under root (depth first, names relative to root), at most
        ``limit``; the flag says whether some were left out."""
        out: list[Listed] = []
        stack = [(root, "")]
        while stack:
            directory, prefix = stack.pop()
            for entry in self.listdir(directory):
                if len(out) == limit:
                    return out, True
                out.append(Listed(prefix + entry.name, entry))
                if recursive and entry.kind == "dir":
                    stack.append((posixpath.join(directory, entry.name), prefix + entry.name + "/"))
        return out, False

    def read(self, path: str) -> bytes:
        return self.files.read(path)

    # ------------------------------------------------------------ writes
    def mkdir(self, path: str, parents: bool) -> None:
        if path in ROOT_MODES:
            if parents:
                return
            raise FileExistsError(17, "File exists")
        if not parents:
            self.files.mkdir(path)
            return
        self.mkdir_tracked(path, [])

    def mkdir_tracked(self, path: str, created: list[str]) -> None:
        """mkdir -p that appends each directory it made to ``created``."""
        missing = []
        current = path
        while current not in ROOT_MODES and not self.files.exists(current):
            missing.append(current)
            current = posixpath.dirname(current)
        if current not in ROOT_MODES and self.files.stat(current).kind != "dir":
            raise NotADirectoryError(20, f"{current} is not a directory")
        for directory in reversed(missing):
            self.files.mkdir(directory)
            created.append(directory)

    def ensure_parent(self, path: str) -> None:
        self.mkdir(posixpath.dirname(path), parents=True)

    def _exists(self, path: str) -> bool:
        return path in ROOT_MODES or self.files.exists(path)

    def remove(self, path: str, recursive: bool) -> list[str]:
        """Removes a file, an empty directory or (recursive) a whole tree;
        returns the paths removed, deepest first."""
        if path in ROOT_MODES:
            raise ApiError(400, f"path: {path} is a top-level folder and cannot be removed")
        entry = self.files.stat(path)
        if entry.kind != "dir":
            self.files.remove(path)
            return [path]
        listed, _ = self.walk(path, 1 << 62, recursive=True)
        if listed and not recursive:
            raise ApiError(409, f"{path}: directory not empty", kind="path-conflict")
        removed = []
        for item in sorted(listed, key=lambda x: x.path.count("/"), reverse=True):
            full = f"{path}/{item.path}"
            self.files.remove(full)
            removed.append(full)
        self.files.remove(path)
        return removed + [path]

    def move(self, source: str, target: str, overwrite: bool) -> None:
        """Copies source to target, then removes source. The layer has no
        rename, so a move that fails midway removes its partial copy and
        leaves the source as it was."""
        if source in ROOT_MODES or target in ROOT_MODES:
            raise ApiError(400, "source: the top-level folders cannot be moved or replaced")
        if target == source or target.startswith(source + "/"):
            raise bad("destination", "is the source or inside it")
        entry = self.files.stat(source)
        if self._exists(target):
            if not overwrite:
                raise ApiError(409, f"{target}: already exists", kind="path-conflict")
            self.remove(target, recursive=True)
        self.ensure_parent(target)
        made: list[str] = []
        try:
            self._copy(source, target, entry, made)
        except BaseException:
            for path in reversed(made):
                try:
                    self.files.remove(path)
                except OSError:
                    pass
            raise
        self.remove(source, recursive=True)

    def _copy(self, source: str, target: str, entry: LayerEntry, made: list[str]) -> None:
        stack = [(source, target, entry)]
        while stack:
            src, dst, ent = stack.pop()
            if ent.kind == "dir":
                self.files.mkdir(dst, mode=ent.mode & 0o7777 or 0o755)
                made.append(dst)
                for child in self.files.listdir(src):
                    stack.append((f"{src}/{child.name}", f"{dst}/{child.name}", child))
            elif ent.kind == "file":
                self.copy_file(src, dst, ent.mode, made)
            # symlinks are never followed nor recreated by the host side

    def copy_file(self, src: str, dst: str, mode: int, made: list[str]) -> None:
        self.files.write_at(dst, b"", 0, truncate=True, mode=mode & 0o7777 or 0o644)
        made.append(dst)
        offset = 0
        while chunk := self.files.read_at(src, offset, CHUNK):
            self.files.write_at(dst, chunk, offset)
            offset += len(chunk)


def entry_json(entry: LayerEntry, name: str | None = None) -> dict:
    return {
        "name": entry.name if name is None else name,
        "type": entry.kind,
        "size": entry.size,
        "mode": entry.mode,
    }


def stat_json(path: str, entry: LayerEntry) -> dict:
    return {
        "path": path,
        "name": posixpath.basename(path),
        "type": entry.kind,
        "size": entry.size,
        "mode": entry.mode,
        "mtime": entry.mtime_ns / 1e9,
    }
