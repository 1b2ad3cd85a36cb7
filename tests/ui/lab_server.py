"""Running a real ``jupyter lab`` for the UI tests (a subprocess with its
own runtime, settings and workspace directories)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from daemon_fixture import stop_process

LAB_START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            proc.kill()
            raise RuntimeError(f"{url.split('?')[0]} answered {error.code}") from error
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"jupyter lab did not start: {log.read_text()[-3000:]}")
        time.sleep(0.25)


@contextlib.contextmanager
def running_jupyter_lab(
    root: Path, home: Path, with_server_extension: bool = True, **env_overrides: str
):
    """Runs ``jupyter lab`` serving ``root`` until the block ends; yields
    (base_url, token). ``env_overrides`` change its environment (e.g. a
    FORKD_JUPYTER_URL where no daemon listens). The server extension must be
    enabled by the install itself, unless ``with_server_extension`` is
    False, which disables it in this server's user configuration."""
    token = uuid.uuid4().hex
    port = _free_port()
    # No "get notified about news?" toast over the page.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = home / "jupyter-lab.log"
    if not with_server_extension:
        disabled = {"ServerApp": {"jpserver_extensions": {"forkd_jupyter.labext": False}}}
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "jupyter_server_config.json").write_text(json.dumps(disabled))
        env_overrides["JUPYTER_CONFIG_DIR"] = str(home / "config")
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        **env_overrides,
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--IdentityProvider.token={token}",
                "--ServerApp.ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=root,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(proc, f"{base_url}/api/status?token={token}", log)
        if with_server_extension:
            _wait_until_serving(proc, f"{base_url}/forkd/api/handshake?token={token}", log)
        yield base_url, token
    finally:
        stop_process(proc)
