"""A real daemon for the tests: its own state directory and socket, so the
tests never touch (or depend on) the user's daemon. Subprocesses the tests
start (kernels, JupyterLab) inherit the environment and reach this one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DAEMON_ENV = ("FORKD_JUPYTER_STATE_DIR", "FORKD_JUPYTER_SOCKET", "FORKD_JUPYTER_URL")


def start_daemon(state: Path, *extra_args: str) -> subprocess.Popen:
    """Starts ``forkd-jupyter daemon`` with the current environment and
    waits until its socket answers."""
    from forkd_jupyter.client import connection

    log = open(state / "daemon-test.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "forkd_jupyter", "daemon", *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    conn = connection.resolve()
    deadline = time.monotonic() + 30
    while not connection.is_up(conn, timeout=1.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(
                "the daemon did not start: " + (state / "daemon-test.log").read_text()[-2000:]
            )
        time.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def stop_daemon(proc: subprocess.Popen) -> int:
    return stop_process(proc)


def own_base(c, memory_mib: int) -> dict:
    """The base of the spawns of this interpreter of memory_mib, no preloads."""
    [base] = [b for b in c.list_bases() if b["memory_mib"] == memory_mib and b["preload"] == []
              and b["python"] == sys.executable]  # fmt: skip
    return base


def wait_for_ready_child(c, memory_mib: int, timeout: float = 60) -> dict:
    """Polls the bases until own_base(c, memory_mib) holds its ready child;
    returns that base. A ready child that failed fails the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        base = own_base(c, memory_mib)
        assert base["ready_error"] is None, base["ready_error"]
        if base["ready_children"] >= 1:
            return base
        assert time.monotonic() < deadline, f"no ready child: {base}"
        time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def daemon_env(tmp_path_factory):
    """Points this process and its children at a private daemon location,
    for every test: a test that forgets the ``daemon`` fixture still never
    reaches (or auto-starts) the user's own daemon."""
    state = tmp_path_factory.mktemp("daemon")
    saved = {k: os.environ.get(k) for k in DAEMON_ENV}
    os.environ["FORKD_JUPYTER_STATE_DIR"] = str(state)
    os.environ["FORKD_JUPYTER_SOCKET"] = str(state / "daemon.sock")
    os.environ["FORKD_JUPYTER_URL"] = f"unix://{state / 'daemon.sock'}"
    yield state
    _stop_any_daemon_left()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def daemon(daemon_env):
    """A running daemon and a Controller connected to it."""
    from forkd_jupyter.client import Controller

    proc = start_daemon(daemon_env)
    controller = Controller(autostart=False)
    yield controller
    controller.close()
    stop_daemon(proc)


def _stop_any_daemon_left() -> None:
    """A daemon that the SDK started on demand for a test (not through the
    ``daemon`` fixture) is stopped with the session."""
    from forkd_jupyter.client import Controller, connection

    if connection.is_up(connection.resolve(), timeout=1.0):
        with Controller(autostart=False) as controller:
            controller.shutdown_daemon()


@pytest.fixture(scope="module")
def sb(daemon):
    """The id of one small sandbox of the test daemon, for a module."""
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=256)
    yield rec["id"]
    daemon.kill_sandbox(rec["id"])


@pytest.fixture(scope="module")
def http(daemon):
    """An HTTP client of the test daemon whose every answer is checked
    against the OpenAPI document."""
    from openapi_check import checked_client

    with checked_client(daemon) as client:
        yield client


@pytest.fixture(scope="module")
def own_state_dir(tmp_path_factory):
    """A state directory of the module's own (snapshot keys live there)."""
    old = os.environ.get("FORKD_JUPYTER_STATE_DIR")
    os.environ["FORKD_JUPYTER_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("FORKD_JUPYTER_STATE_DIR")
    else:
        os.environ["FORKD_JUPYTER_STATE_DIR"] = old
