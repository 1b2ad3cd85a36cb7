"""A daemon of the benchmark's own (its own state directory and socket),
so a benchmark never touches the user's daemon or its sandboxes. The
benchmarks under bench/*/ import this file by path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def start_daemon(state: Path) -> subprocess.Popen:
    """Starts ``python -m forkd_jupyter daemon`` on ``state`` and waits until
    it answers; points this process (and the kernels it starts) at it."""
    from forkd_jupyter.client import connection

    os.environ["FORKD_JUPYTER_STATE_DIR"] = str(state)
    os.environ["FORKD_JUPYTER_SOCKET"] = str(state / "daemon.sock")
    os.environ["FORKD_JUPYTER_URL"] = f"unix://{state / 'daemon.sock'}"
    proc = subprocess.Popen([sys.executable, "-m", "forkd_jupyter", "daemon"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while not connection.is_up(connection.resolve(), timeout=1.0):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the daemon did not start")
        time.sleep(0.05)
    return proc


def stop_daemons(procs) -> None:
    """Stops the daemons start_daemon started."""
    for proc in procs:
        proc.terminate()
        proc.wait(30)
