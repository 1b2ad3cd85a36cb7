"""Files of a sandbox's writable layer: one file (GET/PUT/DELETE), stat,
mkdir, move, directory listings (optionally recursive, with a limit), and
tar archives in and out.

Invariants: every path goes through ``fsops.resolve`` (inside /sandbox or
/tmp, no NUL, bounded) and then ``fsops.Layer``, which never follows a
symlink and never opens a host file. Request bodies are streamed to a host
temporary file and reach the layer only once complete, so a cut or oversized
upload leaves the layer untouched; responses are streamed a chunk at a time."""

from __future__ import annotations

import errno
import tempfile

from ..vmm.layer import CHUNK
from . import fsops, tarball
from .base import MIB, BaseHandler
from .errors import ApiError
from .fsops import ROOT_MODES, Layer, entry_json, file_error, resolve, stat_json

UPLOAD_LIMIT = 1024 * MIB
SPOOL_IN_MEMORY = 1 * MIB


class _LayerHandler(BaseHandler):
    def layer(self, key: str) -> Layer:
        return Layer(self.tree.running(key)[1])

    async def fs(self, path: str, fn, *args):  # noqa: ANN001
        try:
            return await self.call(fn, *args)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise ApiError(413, f"{path}: the sandbox's writable layer is full") from None
            raise file_error(e, path) from None


class _UploadHandler(_LayerHandler):
    """PUT bodies are spooled to a host temporary file as they arrive."""

    streams_body = True
    body_limit = UPLOAD_LIMIT

    async def body_start(self) -> None:
        self.spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115

    async def body_chunk(self, chunk: bytes) -> None:
        self.spool.write(chunk)

    async def body_abort(self) -> None:
        spool = getattr(self, "spool", None)
        if spool is not None:
            spool.close()

    def on_finish(self) -> None:
        spool = getattr(self, "spool", None)
        if spool is not None:
            spool.close()


class FilesHandler(_UploadHandler):
    async def get(self, key: str) -> None:
        path = resolve("path", self.query_path())
        recursive = self.query_flag("recursive")
        limit = self.query_int("limit", 1, fsops.LIST_LIMIT, fsops.LIST_LIMIT)
        layer = self.layer(key)
        entry = await self.fs(path, layer.stat, path)
        if entry.kind == "symlink":
            raise ApiError(400, f"{path} is a symbolic link; links are never followed")
        if entry.kind == "dir":
            listed, truncated = await self.fs(path, layer.walk, path, limit, recursive)
            entries = [entry_json(i.entry, i.path) for i in listed]
            self.send_json({"path": path, "entries": entries, "truncated": truncated})
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(entry.size))
        offset = 0
        while offset < entry.size:
            chunk = await self.fs(path, layer.files.read_at, path, offset, CHUNK)
            if not chunk:
                break
            offset += len(chunk)
            self.write(chunk)
            await self.flush()
        self.finish()

    async def put(self, key: str) -> None:
        path = resolve("path", self.query_path())
        if path in ROOT_MODES:
            raise ApiError(409, f"{path} is a top-level folder", kind="path-conflict")
        layer = self.layer(key)
        size = self.spool.tell()
        await self.fs(path, _store, layer, path, self.spool)
        self.send_json({"path": path, "size": size}, 201)

    async def delete(self, key: str) -> None:
        path = resolve("path", self.query_path())
        recursive = self.query_flag("recursive")
        removed = await self.fs(path, self.layer(key).remove, path, recursive)
        self.send_json({"deleted": removed})


def _store(layer: Layer, path: str, spool) -> None:  # noqa: ANN001
    """Writes the spooled body to path; a write that fails midway (the
    layer is full) leaves no file, or an empty one where one was."""
    layer.ensure_parent(path)
    spool.seek(0)
    offset = 0
    existed = layer.files.exists(path)
    layer.files.write_at(path, b"", 0, truncate=True)
    try:
        while chunk := spool.read(CHUNK):
            layer.files.write_at(path, chunk, offset)
            offset += len(chunk)
    except OSError:
        try:
            if existed:
                layer.files.write_at(path, b"", 0, truncate=True)
            else:
                layer.files.remove(path)
        except OSError:
            pass
        raise


class StatHandler(_LayerHandler):
    async def get(self, key: str) -> None:
        path = resolve("path", self.query_path())
        entry = await self.fs(path, self.layer(key).stat, path)
        self.send_json(stat_json(path, entry))


class MkdirHandler(_LayerHandler):
    async def post(self, key: str) -> None:
        body = self.json_body()
        path = resolve("path", body.text("path", required=True))
        parents = body.boolean("parents", False)
        body.done()
        await self.fs(path, self.layer(key).mkdir, path, parents)
        self.send_json({"path": path}, 201)


class MoveHandler(_LayerHandler):
    async def post(self, key: str) -> None:
        body = self.json_body()
        source = resolve("source", body.text("source", required=True))
        target = resolve("destination", body.text("destination", required=True))
        overwrite = body.boolean("overwrite", False)
        body.done()
        await self.fs(source, self.layer(key).move, source, target, overwrite)
        self.send_json({"source": source, "destination": target})


class TarHandler(_UploadHandler):
    async def get(self, key: str) -> None:
        root = resolve("path", self.query_path())
        layer = self.layer(key)
        if (await self.fs(root, layer.stat, root)).kind != "dir":
            raise ApiError(400, f"path: {root} is not a directory", field="path")
        with tempfile.TemporaryFile() as out:
            await self.fs(root, tarball.pack, layer, root, out)
            self.set_header("Content-Type", "application/x-tar")
            self.set_header("Content-Length", str(out.tell()))
            out.seek(0)
            while chunk := out.read(CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()

    async def put(self, key: str) -> None:
        root = resolve("path", self.query_path())
        layer = self.layer(key)
        room = await self.call(_room, layer)
        await self.call(tarball.check, self.spool, root, room)
        written = await self.fs(root, tarball.unpack, layer, self.spool, root)
        self.send_json({"path": root, "files": written}, 201)


def _room(layer: Layer) -> int | None:
    limit = layer.vm.layer_limit_bytes
    if limit is None:
        return None
    return max(0, limit - layer.vm.layer_bytes)
