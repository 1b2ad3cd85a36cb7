"""Authentication of saved snapshots.

A saved snapshot directory is a trust boundary: whoever can edit its files
could otherwise decide what the children of a load run and read. Every
saved snapshot carries ``auth``, an HMAC-SHA256 under a per-user key, over
a canonical digest of all its files (meta.json, state, layer.memfs and the
memory image). Loading stages each file into a private memfd, computes the
HMAC over exactly the staged bytes and hands the C core those memfds only
when it matches, so nothing read after the check can differ from what was
checked.

The key is 32 random bytes in ``<state dir>/snapshot.key`` (mode 0600,
created on the first save). A key that another user owns, or that others
may read or write, is refused rather than used.

Canonical form (version 1): the tag ``forkd-snapshot-auth-1``, then for
each file in the order above its name and byte length, then its content.
The memory image is fed as its non-zero 64 KiB blocks, each preceded by its
offset: holes and zero blocks read the same, so copying a snapshot with or
without sparseness keeps it valid.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import struct

from ..locations import private_dir, state_dir
from . import image_store
from .errors import SandboxError

AUTH_TAG = b"forkd-snapshot-auth-1"
KEY_NAME = "snapshot.key"
BLOCK = 64 << 10
ZERO_BLOCK = bytes(BLOCK)
SMALL_FILES = ("meta.json", "state", "layer.memfs")
MEMORY_FILE = "memory.img"
AUTH_FILE = "auth"
MAX_SMALL = 1 << 30  # the writable layer is bounded by its limit; state is far smaller


def _key_path() -> str:
    return os.path.join(state_dir(), KEY_NAME)


def user_key(create: bool) -> bytes:
    """The user's snapshot key; created (0600) when create and missing."""
    path = _key_path()
    if create and not os.path.exists(path):
        private_dir(state_dir())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another process: use that one
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SandboxError(
            f"no snapshot key at {path}: snapshots saved elsewhere cannot be authenticated"
        ) from None
    except OSError as e:
        raise SandboxError(f"cannot read the snapshot key {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise SandboxError(
                f"refusing the snapshot key {path}: it must be a regular file of this user "
                "with mode 0600"
            )
        key = f.read(4096)
    if len(key) < 32:
        raise SandboxError(f"refusing the snapshot key {path}: it is too short")
    return key


def _read_small(fd: int, name: str) -> bytes:
    size = os.fstat(fd).st_size
    if size > MAX_SMALL:
        raise SandboxError(f"{name} is too large for a saved snapshot")
    chunks, at = [], 0
    while at < size:
        chunk = os.pread(fd, min(8 << 20, size - at), at)
        if not chunk:
            break
        chunks.append(chunk)
        at += len(chunk)
    return b"".join(chunks)


def _feed_file(mac, name: str, data: bytes) -> None:
    mac.update(name.encode() + b"\0" + struct.pack("<Q", len(data)))
    mac.update(data)


def _feed_memory(mac, src: int, size: int, dst: int | None) -> None:
    """Feeds the image's non-zero blocks; copies them to dst when given."""
    mac.update(MEMORY_FILE.encode() + b"\0" + struct.pack("<Q", size))
    at = 0
    while at < size:
        try:
            data = os.lseek(src, at, os.SEEK_DATA)
        except OSError:
            break  # ENXIO: only a hole is left
        end = min(os.lseek(src, data, os.SEEK_HOLE), size)
        data = max(data - data % BLOCK, at)  # at: the first block not fed yet
        for off in range(data, end, BLOCK):
            block = os.pread(src, min(BLOCK, size - off), off)
            if block and block != ZERO_BLOCK[: len(block)]:
                mac.update(struct.pack("<Q", off))
                mac.update(block)
                if dst is not None:
                    os.pwrite(dst, block, off)
        at = max(at, -(-end // BLOCK) * BLOCK)


def _open(directory: str, name: str) -> int:
    try:
        return os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SandboxError(f"{directory} is not a saved snapshot ({name}: {e.strerror})") from None


def sign(directory: str) -> None:
    """Writes ``auth`` for the files save just wrote."""
    mac = hmac.new(user_key(create=True), AUTH_TAG, hashlib.sha256)
    for name in SMALL_FILES:
        fd = _open(directory, name)
        try:
            _feed_file(mac, name, _read_small(fd, name))
        finally:
            os.close(fd)
    fd = _open(directory, MEMORY_FILE)
    try:
        _feed_memory(mac, fd, os.fstat(fd).st_size, None)
    finally:
        os.close(fd)
    path = os.path.join(directory, AUTH_FILE)
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(out, "w") as f:
        f.write(mac.hexdigest() + "\n")


class Staged:
    """A saved snapshot's files, copied into private memfds (the memory
    image into the image store, image_store.py) and authenticated.
    ``meta`` holds meta.json's bytes; close() releases."""

    def __init__(self, directory: str) -> None:
        self.fds: dict[str, int] = {}
        try:
            self._stage(directory)
        except BaseException:
            self.close()
            raise

    @classmethod
    def adopt(cls, meta: bytes, state: bytes, layer: bytes, image_fd: int) -> Staged:
        """Files another check has already authenticated (a snapshot shipped
        between cluster nodes, forkd_jupyter/cluster): the small files are
        copied into memfds; ``image_fd`` (the RAM image,
        image_store.new_file) is owned from now on."""
        staged = cls.__new__(cls)
        staged.fds = {MEMORY_FILE: image_fd}
        try:
            staged.meta = meta
            staged.fds["state"] = cls._memfd("state", state)
            staged.fds["layer.memfs"] = cls._memfd("layer.memfs", layer)
        except BaseException:
            staged.close()
            raise
        return staged

    def _stage(self, directory: str) -> None:
        if not os.path.exists(os.path.join(directory, AUTH_FILE)):
            raise SandboxError(
                f"{directory}: the saved snapshot failed authentication (it has no "
                f"{AUTH_FILE} file: saved by an older version, or not by save())"
            )
        fd = _open(directory, AUTH_FILE)
        try:
            expected = os.pread(fd, 200, 0).decode(errors="replace").strip()
        finally:
            os.close(fd)
        mac = hmac.new(user_key(create=False), AUTH_TAG, hashlib.sha256)
        for name in SMALL_FILES:
            fd = _open(directory, name)
            try:
                data = _read_small(fd, name)
            finally:
                os.close(fd)
            _feed_file(mac, name, data)
            if name == "meta.json":
                self.meta = data
            else:
                self.fds[name] = self._memfd(name, data)
        fd = _open(directory, MEMORY_FILE)
        try:
            size = os.fstat(fd).st_size
            image = self.fds[MEMORY_FILE] = image_store.new_file("forkd-saved-image", size)
            _feed_memory(mac, fd, size, image)
        finally:
            os.close(fd)
        if not hmac.compare_digest(mac.hexdigest(), expected):
            raise SandboxError(
                f"{directory}: the saved snapshot failed authentication (it was changed "
                "after it was saved, or saved by another user or with another key)"
            )

    @staticmethod
    def _memfd(name: str, data: bytes) -> int:
        fd = os.memfd_create(f"forkd-saved-{name}", os.MFD_CLOEXEC)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return fd

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
