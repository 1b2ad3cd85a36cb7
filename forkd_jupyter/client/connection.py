"""Finding (and, when needed, starting) the user's daemon.

``FORKD_JUPYTER_URL`` (``unix:///path.sock`` or ``http://host:port``) and
``FORKD_JUPYTER_TOKEN`` override the defaults; without them the daemon is
the one on the user's default socket (forkd_jupyter.locations). Only a daemon
on a unix socket is started on demand: a TCP address may be another host."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from .. import locations
from .errors import DaemonUnavailable

START_TIMEOUT_S = 30.0
UNIX_BASE_URL = "http://forkd"  # the host part is ignored on a unix socket


@dataclass(frozen=True)
class Connection:
    base_url: str
    socket: str | None  # unix socket path, or None for TCP
    token: str | None

    def transport(self) -> httpx.HTTPTransport:
        return httpx.HTTPTransport(uds=self.socket) if self.socket else httpx.HTTPTransport()

    def async_transport(self) -> httpx.AsyncHTTPTransport:
        if self.socket:
            return httpx.AsyncHTTPTransport(uds=self.socket)
        return httpx.AsyncHTTPTransport()

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def describe(self) -> str:
        return f"unix://{self.socket}" if self.socket else self.base_url


def resolve(url: str | None = None, token: str | None = None) -> Connection:
    url = url or os.environ.get("FORKD_JUPYTER_URL") or f"unix://{locations.socket_path()}"
    token = token or os.environ.get("FORKD_JUPYTER_TOKEN") or None
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return Connection(UNIX_BASE_URL, parsed.path, token)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return Connection(url.rstrip("/"), None, token)
    raise ValueError(f"FORKD_JUPYTER_URL must be unix:///path or http://host:port, not {url!r}")


def is_up(conn: Connection, timeout: float = 2.0) -> bool:
    try:
        with httpx.Client(transport=conn.transport(), timeout=timeout) as client:
            return client.get(conn.base_url + "/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


def ensure_daemon(conn: Connection) -> None:
    """Returns once the daemon answers; starts it first when ``conn`` is a
    unix socket nobody serves. Raises DaemonUnavailable with the daemon's
    own last words when it cannot start."""
    if is_up(conn):
        return
    if conn.socket is None:
        raise DaemonUnavailable(f"no forkd-jupyter daemon answers at {conn.base_url}")
    state = locations.private_dir(locations.state_dir())
    log_path = state / "daemon.log"
    start_offset = log_path.stat().st_size if log_path.exists() else 0
    env = {**os.environ, "FORKD_JUPYTER_SOCKET": conn.socket}
    _spawn_detached([sys.executable, "-m", "forkd_jupyter", "daemon"], env, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if is_up(conn, timeout=1.0):
            return
        if _log_says_stopped(log_path, start_offset):
            break
        time.sleep(0.05)
    raise DaemonUnavailable(
        f"the forkd-jupyter daemon did not start on {conn.socket}; its log "
        f"({log_path}) ends with:\n{_tail(log_path)}"
    )


# A launcher process starts the daemon in a new session and exits at once, so
# the daemon is re-parented to init: it never becomes a zombie child of the
# (long-lived) kernel or script that asked for it.
_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log,"
    " cwd='/', start_new_session=True)\n"
)


def _spawn_detached(argv: list[str], env: dict, log_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(log_path), *argv], env=env, check=True, timeout=30
    )


def _log_says_stopped(log_path: Path, offset: int) -> bool:
    """The daemon started here wrote its exit message (other than losing the
    race to another daemon, which then serves)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return False
    return "Traceback" in text or ("daemon:" in text and "already running" not in text)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
