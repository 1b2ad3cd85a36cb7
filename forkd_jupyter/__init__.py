"""forkd-jupyter: forkable KVM sandboxes for notebooks."""

from .modes import BranchMode

__version__ = "0.1.0"

__all__ = ["BranchMode", "__version__"]
