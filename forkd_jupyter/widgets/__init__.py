"""Notebook widgets (anywidget: JupyterLab, Notebook 7, VS Code) that follow
the daemon live: ``BranchTree`` and ``PauseTimings``. Their front ends are
plain ES modules in ``static/``, shipped as they are (no build step)."""

from .branch_tree import BranchTree
from .pause_timings import PauseTimings

__all__ = ["BranchTree", "PauseTimings"]
