"""The three ways to branch a sandbox (see docs/snapshots.md)."""

from typing import Literal

BranchMode = Literal["full", "diff", "live"]
BRANCH_MODES: tuple[str, ...] = ("full", "diff", "live")
