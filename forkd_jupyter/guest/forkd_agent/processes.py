"""A program run once in the sandbox for the process API (op ``exec``,
docs/agent-protocol.md): argv, environment additions, working directory,
standard input and a timeout in; exit code, each output stream (its first
``max_output_bytes``; the rest is read and dropped, so a runaway program
never fills memory), whether either was cut, whether the timeout killed
it, and how long it ran, out.

The program runs in a session of its own; at the timeout its whole process
group is killed."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time

DEFAULT_MAX_OUTPUT = 1 << 20
MAX_OUTPUT = 64 << 20
CHUNK = 1 << 16


class BadRequest(ValueError):
    pass


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise BadRequest(f"{what} must be a non-empty list of strings")
    return value


def _environment(extra: object) -> dict[str, str]:
    if extra is None:
        return dict(os.environ)
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k for k, v in extra.items()
    ):
        raise BadRequest("env must map variable names to strings")
    return {**os.environ, **extra}


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError):
        pass  # the program stopped reading
    finally:
        try:
            stream.close()
        except OSError:
            pass


def run_once(request: dict) -> dict:
    """The result of running request's program (BadRequest, or OSError
    from starting it, propagate)."""
    argv = _strings(request.get("argv"), "argv")
    env = _environment(request.get("env"))
    cwd = request.get("cwd") or os.getcwd()
    stdin = request.get("stdin")
    timeout = request.get("timeout")
    cap = request.get("max_output_bytes", DEFAULT_MAX_OUTPUT)
    if not isinstance(cwd, str):
        raise BadRequest("cwd must be a string")
    if stdin is not None and not isinstance(stdin, str):
        raise BadRequest("stdin must be a string")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise BadRequest("timeout must be a positive number of seconds")
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= MAX_OUTPUT:
        raise BadRequest(f"max_output_bytes must be an integer from 0 to {MAX_OUTPUT}")
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    if stdin is not None:
        threading.Thread(target=_feed, args=(proc.stdin, stdin.encode()), daemon=True).start()
    kept = {"stdout": bytearray(), "stderr": bytearray()}
    cut = {"stdout": False, "stderr": False}
    deadline = None if timeout is None else start + float(timeout)
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0 and not timed_out:
                timed_out = True
                _kill_group(proc.pid)
                deadline = None  # drain what is left after the kill
            for key, _ in sel.select(None if left is None else max(left, 0)):
                data = os.read(key.fileobj.fileno(), CHUNK)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.data]
                room = cap - len(buf)
                buf += data[: max(room, 0)]
                cut[key.data] |= len(data) > room
    code = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return {
        "exit_code": code,
        "stdout": kept["stdout"].decode("utf-8", "replace"),
        "stderr": kept["stderr"].decode("utf-8", "replace"),
        "stdout_truncated": cut["stdout"],
        "stderr_truncated": cut["stderr"],
        "timed_out": timed_out,
        "duration_ms": round((time.monotonic() - start) * 1000, 3),
    }


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
