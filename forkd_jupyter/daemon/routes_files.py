"""Files of a sandbox's writable layer: one file (GET/PUT), a directory
listing, and tar archives in and out.

Invariant: every path goes through the sandbox's ``LayerFiles``, which
resolves guest paths inside the layer only (/sandbox, /tmp), never follows
a symlink, and never opens a host file; an archive is checked whole before
its first member is written."""

from __future__ import annotations

import io
import posixpath
import tarfile

from ..vmm.layer import guest_path
from .base import ApiError, BaseHandler


def _path_argument(handler: BaseHandler) -> str:
    path = handler.get_query_argument("path", None)
    if not path:
        raise ApiError(400, "the path query argument is required")
    try:
        return guest_path(path)
    except (PermissionError, ValueError) as e:
        raise ApiError(400, str(e)) from None


def _file_error(e: OSError, path: str) -> ApiError:
    if isinstance(e, FileNotFoundError):
        return ApiError(404, f"{path}: no such file or directory")
    return ApiError(400, f"{path}: {e.strerror or e}")


class FilesHandler(BaseHandler):
    async def get(self, key: str) -> None:
        path = _path_argument(self)
        files = self.tree.files(key)
        try:
            entry = await self.call(files.stat, path)
            if entry.kind == "symlink":
                raise ApiError(400, f"{path} is a symbolic link; links are never followed")
            if entry.kind == "dir":
                listing = await self.call(files.listdir, path)
                self.send_json(
                    {
                        "path": path,
                        "entries": [
                            {"name": e.name, "type": e.kind, "size": e.size, "mode": e.mode}
                            for e in listing
                        ],
                    }
                )
                return
            data = await self.call(files.read, path)
        except OSError as e:
            raise _file_error(e, path) from None
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(data)

    async def put(self, key: str) -> None:
        path = _path_argument(self)
        files = self.tree.files(key)
        data = self.request.body
        try:
            await self.call(files.mkdir, posixpath.dirname(path), parents=True)
            await self.call(files.write, path, data)
        except OSError as e:
            raise _file_error(e, path) from None
        self.send_json({"path": path, "size": len(data)}, 201)


class TarHandler(BaseHandler):
    async def get(self, key: str) -> None:
        path = _path_argument(self)
        files = self.tree.files(key)
        try:
            archive = await self.call(_pack, files, path)
        except OSError as e:
            raise _file_error(e, path) from None
        self.set_header("Content-Type", "application/x-tar")
        self.finish(archive)

    async def put(self, key: str) -> None:
        root = _path_argument(self)
        files = self.tree.files(key)
        members = _checked_members(self.request.body, root)
        try:
            written = await self.call(_unpack, files, root, members)
        except OSError as e:
            raise _file_error(e, root) from None
        self.send_json({"path": root, "files": written}, 201)


def _pack(files, root: str) -> bytes:
    """The directory's files and subdirectories, names relative to it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        stack = [(root, "")]
        while stack:
            directory, prefix = stack.pop()
            for entry in files.listdir(directory):
                full, name = posixpath.join(directory, entry.name), prefix + entry.name
                info = tarfile.TarInfo(name)
                info.mode = entry.mode
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                    stack.append((full, name + "/"))
                elif entry.kind == "file":
                    data = files.read(full)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _checked_members(body: bytes, root: str) -> list[tuple[str, tarfile.TarInfo, bytes | None]]:
    """Every member as (guest path, info, data), or a 400 naming the first
    member that is not a plain file or directory inside ``root``."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        infos = tar.getmembers()
    except (tarfile.TarError, EOFError) as e:
        raise ApiError(400, f"the body is not a tar archive: {e}") from None
    out = []
    for info in infos:
        name = info.name
        if name.startswith("/") or ".." in name.split("/"):
            raise ApiError(400, f"archive member {name!r} leaves the target directory")
        if not (info.isfile() or info.isdir()):
            raise ApiError(400, f"archive member {name!r} is not a regular file or directory")
        full = posixpath.normpath(posixpath.join(root, name))
        if full != root and not full.startswith(root.rstrip("/") + "/"):
            raise ApiError(400, f"archive member {name!r} leaves the target directory")
        data = tar.extractfile(info).read() if info.isfile() else None
        out.append((full, info, data))
    return out


def _unpack(files, root: str, members: list) -> list[str]:
    files.mkdir(root, parents=True)
    written = []
    for full, info, data in members:
        if info.isdir():
            files.mkdir(full, parents=True)
            continue
        files.mkdir(posixpath.dirname(full), parents=True)
        files.write(full, data, mode=info.mode & 0o777 or 0o644)
        written.append(full)
    return written
