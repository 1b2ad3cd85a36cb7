"""Start-up: control channel, interrupt gate, the runner, then ``ready``.

Invariant: ``ready`` is sent once the runner can take a cell at once; no
frame precedes it."""

from __future__ import annotations

import os
import sys
import time

from .channel import Channel
from .emitter import Emitter
from .inbox import Inbox
from .interrupts import InterruptGate
from .server import Server
from .stdin import StdinBridge

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
DEFAULT_MPLCONFIGDIR = "/tmp/forkd-matplotlib"


def main(started: float | None = None, agent_dir: str | None = None) -> int:
    started = time.perf_counter() if started is None else started
    # The agent's own modules are imported through its package from here
    # on; every import of IPython's would otherwise search this dir first.
    if agent_dir:
        sys.path[:] = [p for p in sys.path if p != agent_dir]
    gate = InterruptGate()
    gate.install()
    try:
        channel = Channel(gate)
    except OSError as e:
        print(f"forkd agent: no control channel on fd 3 ({e})", file=sys.stderr)
        return 2
    emitter = Emitter(channel)
    inbox = Inbox(channel)
    runner = _make_runner(emitter)
    StdinBridge(inbox, emitter).install()
    # User code imports from the working directory, as in a notebook kernel.
    if "" not in sys.path:
        sys.path.insert(0, "")
    ready = {
        "op": "ready",
        "python": sys.version.split()[0],
        "pid": os.getpid(),
        "ipython": runner.ipython,
        "cwd": os.getcwd(),
        "startup_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    try:
        channel.send(ready)
        return Server(channel, inbox, emitter, gate, runner).serve()
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the host is gone: nobody is left to serve


def _make_runner(emitter: Emitter):
    """IPython when it imports and starts; otherwise the plain runner."""
    os.environ.setdefault("MPLCONFIGDIR", DEFAULT_MPLCONFIGDIR)
    try:
        from .ipython_runner import IPythonRunner

        runner = IPythonRunner(emitter)
    except Exception as e:
        if not (isinstance(e, ModuleNotFoundError) and e.name == "IPython"):
            print(
                f"forkd agent: IPython failed to start ({type(e).__name__}: {e}); "
                "running cells without it",
                file=sys.stderr,
            )
        runner = None
    if runner is not None:
        _inline_figures()
        return runner
    from . import lazy_ipython
    from .plain_runner import PlainRunner

    lazy_ipython.unregister()
    if "matplotlib_inline" in os.environ.get("MPLBACKEND", ""):
        os.environ["MPLBACKEND"] = "agg"  # the inline backend needs IPython
    return PlainRunner(emitter)


def _inline_figures() -> None:
    """Figures become image/png display frames after each cell."""
    if "MPLBACKEND" in os.environ:
        return
    import importlib.util

    if importlib.util.find_spec("matplotlib_inline") is not None:
        os.environ["MPLBACKEND"] = INLINE_BACKEND
