"""A daemon of a test's own (its state directory, socket and optionally a
TCP port with a token), for tests that attack it, measure it, kill it or
restart it, without disturbing the session's shared daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from daemon_fixture import stop_process

from forkd_jupyter.client import connection


class PrivateDaemon:
    def __init__(
        self, state: Path, token: str | None = None, tcp: bool = False, args: tuple = ()
    ) -> None:
        self.state, self.token, self.tcp, self.args = state, token, tcp, tuple(args)
        self.socket = state / "daemon.sock"
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> PrivateDaemon:
        env = {
            **os.environ,
            "FORKD_JUPYTER_STATE_DIR": str(self.state),
            "FORKD_JUPYTER_SOCKET": str(self.socket),
            "FORKD_JUPYTER_URL": f"unix://{self.socket}",
        }
        env.pop("FORKD_JUPYTER_TOKEN", None)
        args = [sys.executable, "-m", "forkd_jupyter", "daemon"]
        if self.tcp:
            args += ["--port", "0"]
        if self.token:
            args += ["--token", self.token]
        args += list(self.args)
        log = open(self.state / "daemon-test.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        conn = connection.Connection(connection.UNIX_BASE_URL, str(self.socket), None)
        deadline = time.monotonic() + 30
        while not connection.is_up(conn, timeout=1.0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError((self.state / "daemon-test.log").read_text()[-2000:])
            time.sleep(0.05)
        info = json.loads((self.state / "daemon.json").read_text())
        self.url = info["tcp"]
        return self

    def unix_client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)),
            base_url=connection.UNIX_BASE_URL + "/v1",
            timeout=timeout,
        )

    def tcp_client(self, token: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url + "/v1", headers=headers, timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.socket.unlink(missing_ok=True)
        (self.state / "daemon.json").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_process(self.proc, 60)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


class RssWatch:
    """Samples a daemon's resident memory every few milliseconds while
    active; ``peak`` is the highest seen (MiB)."""

    def __init__(self, daemon: PrivateDaemon, every_s: float = 0.01) -> None:
        self.daemon, self.every_s, self.peak = daemon, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.daemon.rss_mib())
            except OSError:
                return
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssWatch:
        self.peak = self.daemon.rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
