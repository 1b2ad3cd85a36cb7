"""The request loop.

Invariants:

* requests are served one at a time, in arrival order (managed
  processes, ``proc_*`` frames after ``proc_enable``, are served beside
  them by the supervisor thread: supervisor.py);
* every request except ``shutdown`` is answered by exactly one ``done``
  frame, its last frame (``value`` and ``pong`` come before it);
* code from a request (the cell, unpickling a pushed value, pickling a
  pulled one) runs only inside :meth:`InterruptGate.call`; everything else
  runs with the gate shut, so a SIGINT can only ever interrupt that code.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any, Protocol

from . import errors, processes
from .channel import Channel, ChannelError
from .emitter import Emitter
from .inbox import Inbox
from .interrupts import InterruptGate


class Runner(Protocol):
    ipython: bool

    @property
    def user_ns(self) -> dict: ...

    def last_count(self) -> int: ...

    def run(self, code: str, silent: bool, store_history: bool) -> tuple[int, dict | None]: ...

    def rehearse(self, code: str) -> dict | None: ...


class Server:
    def __init__(
        self, channel: Channel, inbox: Inbox, emitter: Emitter, gate: InterruptGate, runner: Runner
    ) -> None:
        self.channel = channel
        self.inbox = inbox
        self.supervisor = None
        self.emitter = emitter
        self.gate = gate
        self.runner = runner

    def serve(self) -> int:
        """Returns the exit status: 0 on shutdown or when the host is gone."""
        while True:
            self.gate.reinstall_if_default()
            try:
                request = self.inbox.next_request()
            except ChannelError as e:
                self._reply(None, {"execution_count": None, "error": errors.protocol_error(str(e))})
                continue
            if request is None or request.get("op") == "shutdown":
                return 0
            self.handle(request)

    def handle(self, request: dict) -> None:
        rid = request.get("id")
        if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool)):
            rid = None
        self.emitter.request_id = rid
        try:
            done = self._dispatch(request)
        except KeyboardInterrupt:  # not raised while the gate is shut; a done still follows
            done = {"execution_count": None, "error": errors.interrupted()}
        except Exception as e:  # a fault of the agent itself: report, keep serving
            done = {"execution_count": None, "error": errors.from_exception(e)}
        self._reply(rid, done)

    def _reply(self, rid: int | None, done: dict) -> None:
        self.emitter.request_id = rid
        self.emitter.emit("done", done)
        self.emitter.request_id = None

    def _dispatch(self, request: dict) -> dict:
        op = request.get("op")
        if op == "run":
            return self._run(request)
        if op == "push":
            return self._push(request)
        if op == "pull":
            return self._pull(request)
        if op == "ping":
            self.emitter.emit("pong", {})
            return {"execution_count": None, "error": None}
        if op == "fresh":
            fresh_start()
            return {"execution_count": None, "error": None}
        if op == "preload":
            return self._preload(request)
        if op == "rehearse":
            return self._rehearse(request)
        if op == "exec":
            return self._exec(request)
        if op == "proc_enable":
            return self._enable_processes()
        return _failed(errors.protocol_error(f"unknown op {op!r}"))

    def _run(self, request: dict) -> dict:
        code = request.get("code")
        if not isinstance(code, str):
            return _failed(errors.protocol_error("run needs a string 'code'"))
        silent = bool(request.get("silent", False))
        store_history = bool(request.get("store_history", True))
        outcome, interrupt = self.gate.call(self.runner.run, code, silent, store_history)
        if interrupt is not None:
            return {"execution_count": self.runner.last_count(), "error": errors.interrupted()}
        count, error = outcome
        return {"execution_count": count, "error": error}

    def _rehearse(self, request: dict) -> dict:
        """Runs a cell as stored cells run, then forgets it (rehearsal.py)."""
        code = request.get("code")
        if not isinstance(code, str):
            return _failed(errors.protocol_error("rehearse needs a string 'code'"))
        error, interrupt = self.gate.call(self.runner.rehearse, code)
        if interrupt is not None:
            return _failed(errors.interrupted())
        return _failed(error) if error else {"execution_count": None, "error": None}

    def _preload(self, request: dict) -> dict:
        """Imports modules outside the cell history (warm bases)."""
        modules = request.get("modules")
        if not isinstance(modules, list) or not all(
            isinstance(m, str) and all(part.isidentifier() for part in m.split("."))
            for m in modules
        ):
            return _failed(errors.protocol_error("preload needs a list of module names"))
        code = "".join(f"import {m}\n" for m in modules)
        outcome, interrupt = self.gate.call(self.runner.run, code, True, False)
        if interrupt is not None:
            return _failed(errors.interrupted())
        _count, error = outcome
        return _failed(error) if error else {"execution_count": None, "error": None}

    def _exec(self, request: dict) -> dict:
        """Runs a program once (processes.run_once); its result is the
        ``process`` frame before done."""
        try:
            result, interrupt = self.gate.call(processes.run_once, request)
        except processes.BadRequest as e:
            return _failed(errors.protocol_error(str(e)))
        except Exception as e:  # the program could not start (not found, not executable...)
            return _failed(errors.exception_only(e))
        if interrupt is not None:
            return _failed(errors.interrupted())
        self.emitter.emit("process", result)
        return {"execution_count": None, "error": None}

    def _enable_processes(self) -> dict:
        """Starts the supervisor and hands fd 3 to the inbox's reader
        thread (once; later calls change nothing)."""
        if self.supervisor is None:
            from .supervisor import Supervisor

            self.supervisor = Supervisor(self.channel)
            self.inbox.go_threaded(self.supervisor.submit)
        return {"execution_count": None, "error": None}

    def _push(self, request: dict) -> dict:
        name, data = request.get("name"), request.get("pickle")
        if not _is_name(name) or not isinstance(data, str):
            return _failed(
                errors.protocol_error("push needs an identifier 'name' and a base64 'pickle'")
            )
        value, error = self._guarded(_unpickle, data)
        if error is None:
            self.runner.user_ns[name] = value
        return _failed(error) if error else {"execution_count": None, "error": None}

    def _pull(self, request: dict) -> dict:
        name = request.get("name")
        if not _is_name(name):
            return _failed(errors.protocol_error("pull needs an identifier 'name'"))
        ns = self.runner.user_ns
        if name not in ns:
            return _failed(
                errors.error_dict(
                    "NameError",
                    f"name {name!r} is not defined",
                    [f"NameError: name {name!r} is not defined"],
                )
            )
        encoded, error = self._guarded(_pickle, ns[name])
        if error is not None:
            return _failed(error)
        self.emitter.emit("value", {"pickle": encoded})
        return {"execution_count": None, "error": None}

    def _guarded(self, fn: Any, arg: Any) -> tuple[Any, dict | None]:
        """fn(arg) with the gate open; failures become error objects."""
        try:
            value, interrupt = self.gate.call(fn, arg)
        except Exception as e:
            return None, errors.exception_only(e)
        if interrupt is not None:
            return None, errors.interrupted()
        return value, None


def fresh_start() -> None:
    """A sandbox spawned from a warm base starts as if booted itself: what
    the interpreter seeded once at start-up from the system's randomness is
    seeded again, so sandboxes of one base do not share random sequences."""
    import sys

    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile._name_sequence = None  # recreated (and seeded) on next use


def _failed(error: dict) -> dict:
    return {"execution_count": None, "error": error}


def _is_name(name: object) -> bool:
    return isinstance(name, str) and name.isidentifier()


def _unpickle(data: str) -> Any:
    return pickle.loads(base64.b64decode(data.encode("ascii"), validate=True))


def _pickle(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
