"""Running the daemon: one per user, on a unix socket (mode 0600 in a 0700
directory) and optionally on TCP with a bearer token.

Invariants: the state directory's ``daemon.lock`` is held (flock) for the
daemon's whole life, so a second daemon of the same user exits at once
instead of fighting over the socket; ``daemon.json`` exists exactly while a
daemon serves (written after the sockets listen, removed on shutdown)."""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import os
import signal
import sys
import time
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from .. import __version__, locations
from ..controller import SandboxTree, Store
from ..controller.limits import Limits
from .app import MAX_BODY_BYTES, MAX_HEADER_BYTES, make_app

EXIT_ALREADY_RUNNING = 3
EXIT_BAD_CONFIG = 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _take_lock(state: Path):
    lock = open(state / "daemon.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def serve(
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    max_branches: int = 4,
    limits: Limits | None = None,
) -> int:
    token = token or os.environ.get("FORKD_JUPYTER_TOKEN") or None
    if port is not None and not is_loopback(host or "127.0.0.1") and not token:
        print(
            f"forkd-jupyter daemon: refusing to listen on {host} without a token "
            "(give --token or set FORKD_JUPYTER_TOKEN)",
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    state = locations.private_dir(locations.state_dir())
    sock_path = locations.socket_path()
    locations.private_dir(sock_path.parent)
    lock = _take_lock(state)
    if lock is None:
        print(f"forkd-jupyter daemon: already running for {state}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        return asyncio.run(_main(state, sock_path, host, port, token, max_branches, limits))
    finally:
        lock.close()


async def _main(
    state: Path,
    sock_path: Path,
    host: str | None,
    port: int | None,
    token: str | None,
    cap: int,
    limits: Limits | None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signo, stop.set)
    tree = SandboxTree(Store(state), max_branches=cap, limits=limits)
    app = make_app(tree, token, lambda: loop.call_soon_threadsafe(stop.set))
    server = tornado.httpserver.HTTPServer(
        app, max_body_size=MAX_BODY_BYTES, max_header_size=MAX_HEADER_BYTES
    )
    server.add_socket(tornado.netutil.bind_unix_socket(str(sock_path), mode=0o600))
    info = {
        "pid": os.getpid(),
        "version": __version__,
        "socket": str(sock_path),
        "url": f"unix://{sock_path}",
        "started": time.time(),
        "tcp": None,
    }
    if port is not None:
        sockets = tornado.netutil.bind_sockets(port, host or "127.0.0.1")
        server.add_sockets(sockets)
        bound_host, bound_port = sockets[0].getsockname()[:2]
        info["tcp"] = f"http://{bound_host}:{bound_port}"
    info_path = state / "daemon.json"
    tmp = info_path.with_suffix(".tmp")  # replaced whole: a reader never sees half of it
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, info_path)
    print(f"forkd-jupyter daemon {__version__} serving {info['url']}", flush=True)
    if info["tcp"]:
        print(f"forkd-jupyter daemon also serving {info['tcp']}", flush=True)
    try:
        await stop.wait()
    finally:
        # Requests still arriving on open connections while the sandboxes
        # stop are refused (503 daemon-stopping), never served half-way.
        app.settings["stopping"] = True
        server.stop()
        info_path.unlink(missing_ok=True)
        sock_path.unlink(missing_ok=True)
        await loop.run_in_executor(None, tree.shutdown)
        await server.close_all_connections()
    print("forkd-jupyter daemon stopped", flush=True)
    return 0
