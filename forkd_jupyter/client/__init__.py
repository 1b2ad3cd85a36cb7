"""The SDK: ``Controller`` talks to the user's daemon (starting it when
needed). Magics, widgets, the server extension and the CLI use only this."""

from .connection import Connection, ensure_daemon, resolve
from .controller import BranchMode, Controller
from .errors import (
    BadRequest,
    Conflict,
    DaemonUnavailable,
    ForkdError,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "BadRequest",
    "BranchMode",
    "Conflict",
    "Connection",
    "Controller",
    "DaemonUnavailable",
    "ForkdError",
    "NotFound",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "ensure_daemon",
    "resolve",
]
