"""Where one user's daemon keeps its state and listens. Shared by the daemon
(which creates these) and the SDK (which looks for them), so both always
agree; see docs/rest-api.md."""

from __future__ import annotations

import os
from pathlib import Path

APP = "forkd-jupyter"


def state_dir() -> Path:
    """``FORKD_JUPYTER_STATE_DIR``, else ``$XDG_STATE_HOME/forkd-jupyter``
    (``~/.local/state/forkd-jupyter``)."""
    explicit = os.environ.get("FORKD_JUPYTER_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP


def runtime_dir() -> Path:
    """The socket's directory: ``$XDG_RUNTIME_DIR/forkd-jupyter`` (a
    per-user tmpfs), else the state directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / APP if runtime else state_dir()


def socket_path() -> Path:
    explicit = os.environ.get("FORKD_JUPYTER_SOCKET")
    return Path(explicit) if explicit else runtime_dir() / "daemon.sock"


def private_dir(path: Path) -> Path:
    """Creates ``path`` (and parents) if needed and makes it mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
