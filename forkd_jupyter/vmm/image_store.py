"""The image store: a tmpfs of this process's own whose files are held in
2 MiB pages, for full snapshot images (docs/snapshots.md, "Where images
live").

A child maps its chain's full image copy-on-write; held in 2 MiB pages, the
host maps it (and KVM, for a slot the child has not written, kvm_vm.h:
logged) 2 MiB at a time, so a first read of inherited memory costs a fault
per 2 MiB instead of one per 4 KiB page. Writing such an image is also
cheaper (fewer, larger pages).

The tmpfs is mounted nowhere: the new mount API (fsopen, fsconfig,
fsmount) gives a descriptor of its root and nothing else sees it; it lasts
as long as that descriptor, and its files (unlinked at once) as long as
the snapshots holding them. Machine-wide settings stay as they are: the
tmpfs asks for huge pages itself (``huge=within_size``), which the kernel
honours unless shmem_enabled is ``deny``. Mounting needs CAP_SYS_ADMIN over
a mount namespace: root has it; another user gets it in a user and mount
namespace of a short-lived helper process, which hands the descriptor
back. Where neither works, images are memfds as before and
:func:`status` says why."""

from __future__ import annotations

import ctypes
import itertools
import os
import socket
import subprocess
import sys
import threading

SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432  # x86_64
FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC = 1, 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
# nr_blocks=0: no size limit beyond memory, like the memfds it replaces.
OPTIONS = (("huge", "within_size"), ("mode", "0700"), ("nr_blocks", "0"))

_lock = threading.Lock()
_state: dict = {}  # "fd": the store's root descriptor, or "error"
_made = itertools.count()


def mount_here() -> int:
    """The root descriptor of a new store, mounted by this process (needs
    CAP_SYS_ADMIN over its mount namespace); OSError otherwise."""
    libc = ctypes.CDLL(None, use_errno=True)

    def call(what: str, *args) -> int:
        ret = libc.syscall(*args)
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return ret

    fs = call("fsopen tmpfs", SYS_FSOPEN, b"tmpfs", FSOPEN_CLOEXEC)
    try:
        for key, value in OPTIONS:
            call(
                f"tmpfs {key}={value}",
                SYS_FSCONFIG,
                fs,
                FSCONFIG_SET_STRING,
                key.encode(),
                value.encode(),
                0,
            )
        call("tmpfs create", SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0)
        return call("fsmount", SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0)
    finally:
        os.close(fs)


# The helper: a user and mount namespace of its own (the caller's uid as
# root inside), the store mounted there, its descriptor sent back over the
# socket whose number is argv[1].
HELPER = """
import ctypes, os, socket, sys
from forkd_jupyter.vmm.image_store import mount_here
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000 | 0x20000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
    sys.exit(f"unshare: {os.strerror(ctypes.get_errno())}")
for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
try:
    fd = mount_here()
except OSError as e:
    sys.exit(str(e))
socket.send_fds(socket.socket(fileno=int(sys.argv[1])), [b"x"], [fd])
"""


def mount_in_namespace() -> int:
    """The root descriptor of a new store, mounted by a helper process in
    namespaces of its own; OSError with the helper's reason otherwise."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours:
        try:
            done = subprocess.run(
                [sys.executable, "-c", HELPER, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                capture_output=True,
                text=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": _package_root()},
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise OSError(f"namespace helper: {e}") from None
        finally:
            theirs.close()
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise OSError(f"namespace helper: {lines[-1] if lines else 'failed'}")
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    if not fds:
        raise OSError("namespace helper sent no descriptor")
    return fds[0]


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _open() -> int:
    try:
        return mount_here()
    except OSError as here:
        try:
            return mount_in_namespace()
        except OSError as there:
            raise OSError(f"{here}; {there}") from None


def ensure() -> int | None:
    """The store's root descriptor, made on first use and handed to the
    VMM (full images are made there from then on); None when this machine
    gives none (:func:`status`). ``FORKD_JUPYTER_IMAGE_STORE=memfd`` keeps
    images in memfds."""
    with _lock:
        if "fd" in _state or "error" in _state:
            return _state.get("fd")
        if os.environ.get("FORKD_JUPYTER_IMAGE_STORE") == "memfd":
            _state["error"] = "off (FORKD_JUPYTER_IMAGE_STORE=memfd)"
            return None
        try:
            fd = _open()
        except OSError as e:
            _state["error"] = str(e)
            return None
        from ._ffi import lib

        ret = lib.fj_snapshot_image_store(fd)
        if ret < 0:
            os.close(fd)
            _state["error"] = f"the VMM refused it: {os.strerror(-ret)}"
            return None
        _state["fd"] = fd
        return fd


def status() -> str:
    """What :func:`ensure` made of this machine, in a sentence."""
    fd = ensure()
    if fd is None:
        return f"memfds (no image store: {_state.get('error')})"
    return "a private tmpfs with 2 MiB pages (huge=within_size)"


def new_file(name: str, size: int) -> int:
    """An unlinked file of ``size`` bytes in the store, or a memfd when
    there is none (or it refuses one); ``name`` names its mappings."""
    fd = ensure()
    if fd is not None:
        name = f"{name}.{next(_made)}"
        try:
            flags = os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC
            image = os.open(name, flags, 0o600, dir_fd=fd)
        except OSError:
            image = None
        if image is not None:
            os.unlink(name, dir_fd=fd)  # (its name stays in /proc/PID/maps, as a memfd's)
            os.ftruncate(image, size)
            return image
    image = os.memfd_create(name, os.MFD_CLOEXEC)
    os.ftruncate(image, size)
    return image
