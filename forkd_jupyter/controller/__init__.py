"""The controller: the daemon's domain logic (sandboxes, snapshots, the
branch tree, timings, the on-disk store), free of any transport."""

from .errors import ControllerError
from .store import Store
from .tree import MAX_CHILDREN, SandboxTree

__all__ = ["MAX_CHILDREN", "ControllerError", "SandboxTree", "Store"]
