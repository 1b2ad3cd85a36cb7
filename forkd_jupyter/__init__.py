"""forkd-jupyter: forkable KVM sandboxes for notebooks."""

from .modes import BranchMode

__version__ = "0.1.0"

__all__ = ["BranchMode", "__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    """`%load_ext forkd_jupyter`: registers `%forkd` and `%%forkd`."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
