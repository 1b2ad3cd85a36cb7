"""IPython magics (`%forkd`, `%%forkd`): the notebook user's way in.

They speak only to the client SDK (forkd_jupyter.client)."""

from __future__ import annotations

from .attach import AttachTransformer
from .cell import GuestCellError
from .handles import SandboxHandle, SandboxList, SnapshotHandle
from .magics import ForkdMagics
from .session import Session

__all__ = [
    "ForkdMagics",
    "GuestCellError",
    "SandboxHandle",
    "SandboxList",
    "SnapshotHandle",
    "current_session",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_loaded: ForkdMagics | None = None
# The kernel's one session: the magics' and the widgets' (a widget built
# before `%load_ext` makes it; the magics then take the same one).
_session: Session | None = None


def load_ipython_extension(ipython) -> None:
    global _loaded
    if _loaded is None:
        _loaded = ForkdMagics(ipython, current_session(create=True))
    ipython.register_magics(_loaded)
    cleanup = ipython.input_transformers_cleanup
    if not any(isinstance(t, AttachTransformer) for t in cleanup):
        cleanup.insert(0, AttachTransformer(_loaded.session, ipython))  # sees the cell as typed


def unload_ipython_extension(ipython) -> None:
    """`%unload_ext forkd_jupyter`: removes both magics and closes the
    connection (the daemon and its sandboxes keep running)."""
    global _loaded
    if _loaded is None:
        return
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        if manager.magics[kind].get("forkd") == getattr(_loaded, _METHODS[kind]):
            del manager.magics[kind]["forkd"]
    manager.registry.pop(type(_loaded).__name__, None)
    ipython.input_transformers_cleanup[:] = [
        t for t in ipython.input_transformers_cleanup if not isinstance(t, AttachTransformer)
    ]
    _loaded.session.close()
    _loaded = None


_METHODS = {"line": "forkd", "cell": "forkd_cell"}


def current_session(create: bool = False) -> Session | None:
    """The kernel's session (its controller and current sandbox), shared by
    the magics and the widgets; None before either made it, unless
    ``create``."""
    global _session
    if _session is None and create:
        _session = Session()
    return _session
