"""Which Python environment a spawn asks for. A request names an
interpreter (and the PYTHONPATH it runs with); the interpreter describes
itself (python_env.describe), so what a guest may read comes from the
interpreter, never from the request. Descriptions are cached until the
interpreter or its pyvenv.cfg changes."""

from __future__ import annotations

import os
import threading

from .. import python_env
from . import errors as E

_cache: dict[tuple, python_env.PythonEnv] = {}
_cache_lock = threading.Lock()
MAX_PYTHONPATH = 64


def _stamp(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (None,)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def resolve(request: object) -> python_env.PythonEnv:
    """The environment for a spawn body's ``python`` member (None: the
    daemon's own interpreter). Raises BadRequest naming the field."""
    if request is None:
        return python_env.current()
    if not isinstance(request, dict) or set(request) - {"executable", "pythonpath"}:
        raise E.BadRequest(
            "python must be an object with executable and, optionally, pythonpath", field="python"
        )
    executable = request.get("executable")
    pythonpath = request.get("pythonpath") or []
    if not isinstance(executable, str) or not executable:
        raise E.BadRequest("python.executable must be an interpreter's path", field="python")
    if (
        not isinstance(pythonpath, list)
        or len(pythonpath) > MAX_PYTHONPATH
        or not all(isinstance(p, str) and p and "\0" not in p for p in pythonpath)
    ):
        raise E.BadRequest(
            f"python.pythonpath must be a list of at most {MAX_PYTHONPATH} paths", field="python"
        )
    if "\0" in executable:
        raise E.BadRequest("python.executable must not contain NUL", field="python")
    real = os.path.realpath(executable)
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(executable)))
    key = (
        executable,
        tuple(pythonpath),
        _stamp(real),
        _stamp(os.path.join(prefix, "pyvenv.cfg")),
    )
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        env = python_env.describe(executable, pythonpath)
    except python_env.PythonEnvError as e:
        raise E.BadRequest(f"python: {e}", field="python") from None
    with _cache_lock:
        _cache[key] = env
    return env
