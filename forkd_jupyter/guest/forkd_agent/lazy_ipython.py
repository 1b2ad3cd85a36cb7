"""Registers the ``IPython`` package without running its ``__init__`` yet.

``IPython/__init__.py`` imports the terminal front end (prompt_toolkit,
jedi, the embedding API): more than half of IPython's import time and ~300
modules the agent never uses. The agent needs only ``IPython.core``.

The package module is created from its real spec (``__path__``, ``__file__``
and ``__spec__`` are genuine, so every submodule imports normally) and gets
a module ``__getattr__``: ``get_ipython`` is served directly; the first
access to any other attribute the package itself defines runs the real
``__init__`` in the same module object, after which the module is exactly
what ``import IPython`` would have produced.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def register() -> None:
    """Idempotent; raises ModuleNotFoundError when IPython is not installed."""
    if "IPython" in sys.modules:
        return
    spec = importlib.util.find_spec("IPython")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError("No module named 'IPython'", name="IPython")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__getattr__"] = _lazy_getattr(module)
    sys.modules["IPython"] = module


def unregister() -> None:
    """Forgets IPython modules after a failed start so a later import is clean."""
    for name in [n for n in sys.modules if n == "IPython" or n.startswith("IPython.")]:
        del sys.modules[name]


def _lazy_getattr(module: ModuleType):
    def __getattr__(name: str):
        if name == "get_ipython":
            from IPython.core.getipython import get_ipython

            return get_ipython
        # The hook removes itself first: while the real __init__ runs, the
        # module behaves like any partially initialised module.
        module.__dict__.pop("__getattr__", None)
        module.__spec__.loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'IPython' has no attribute {name!r}") from None

    return __getattr__
