"""Attach mode (docs/time-travel.md): while a notebook is attached to a
sandbox, every cell runs there as if it began with `%%forkd`, each one
after a diff checkpoint of the sandbox; `%forkd undo` and `%forkd checkout`
go back to any checkpoint, keeping the abandoned future as a snapshot.

Invariants: cells starting with a `%forkd` or `%%forkd` magic always run in
the kernel (so `%forkd detach` is always reachable); ``Attachment.sandbox``
is the sandbox the next cell runs in and the session's current sandbox; a
checkout kills the old sandbox only after its state is saved as a snapshot
(unless it still held a checkpoint's state), so nothing is lost."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..client import Controller, ForkdError
from . import timeline

KEEP_DEFAULT = 50
MAX_MIB_DEFAULT = 4096
LINE_MAX = 200  # characters of a cell's first line kept with its checkpoint


@dataclass
class Attachment:
    sandbox: str  # id
    name: str
    checkpoints: bool = True
    keep: int = KEEP_DEFAULT
    max_mib: int = MAX_MIB_DEFAULT
    last_cell: int | None = None  # the notebook's cell whose state the sandbox has
    at: str | None = None  # the checkpoint whose state it still has, if any
    # What the history holds, as last read plus the checkpoints taken since:
    # a trim asks the daemon only once this may exceed the budget.
    held: int = 0
    held_bytes: int = 0
    _trimming: threading.Lock = field(default_factory=threading.Lock, repr=False)


def first_line(code: str) -> str:
    """The first line with code in it (comments count: they name cells)."""
    for line in code.splitlines():
        if line.strip():
            return line.strip()[:LINE_MAX]
    return ""


def runs_in_kernel(code: str) -> bool:
    """Cells that stay in the kernel while attached: empty ones and those
    whose first line is a `%forkd` / `%%forkd` magic."""
    line = first_line(code)
    return not line or line.split()[0] in ("%forkd", "%%forkd")


class AttachTransformer:
    """An IPython cleanup transformer: while the session is attached, a cell
    becomes one call of `%%forkd --attached` with the cell as its body (the
    cell keeps its own In[] text, execution count and Out[]).

    Only the notebook's own cells are moved: code run silently or outside
    the history (the JupyterLab panel's requests, other tools') stays in the
    kernel, and so does a cell only checked for completeness. The kernel's
    request being handled says which (ipykernel transforms a cell before
    IPython's own pre_run_cell event, so that event comes too late)."""

    def __init__(self, session, shell) -> None:
        self.session = session
        self.shell = shell

    def _notebook_cell(self) -> bool:
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None or not hasattr(kernel, "get_parent"):
            return True  # a terminal IPython: every cell is the user's
        parent = kernel.get_parent("shell") or {}
        if parent.get("header", {}).get("msg_type") != "execute_request":
            return False
        content = parent.get("content", {})
        return bool(content.get("store_history", True)) and not content.get("silent", False)

    def __call__(self, lines: list[str]) -> list[str]:
        if self.session.attachment is None or not self._notebook_cell():
            return lines
        code = "".join(lines)
        if runs_in_kernel(code):
            return lines
        return [f"get_ipython().run_cell_magic('forkd', '--attached', {code!r})\n"]


def checkpoint_mark(att: Attachment, cell: int, code: str) -> dict:
    """The mark of the diff checkpoint of the state before cell ``cell``
    runs, asked for in the cell's own run request (Controller.run_cell):
    the daemon took it when the previous cell ended, or takes it then."""
    return {"cell": cell, "line": first_line(code), "after": att.last_cell}


def count_checkpoint(att: Attachment, snapshot: dict) -> None:
    """A checkpoint was taken: the history has moved on from ``at``."""
    att.at = None
    att.held += 1
    att.held_bytes += snapshot.get("physical_bytes") or 0


def over_budget(att: Attachment) -> bool:
    return att.held > att.keep or att.held_bytes > att.max_mib << 20


def count_held(att: Attachment, history: list[timeline.Checkpoint]) -> None:
    att.held = len(history)
    att.held_bytes = sum(c.bytes for c in history)


def past(controller: Controller, sandbox: str) -> list[timeline.Checkpoint]:
    return Listing.of(controller).history(sandbox)


@dataclass
class Listing:
    """The daemon's sandboxes and snapshots, as read at one moment."""

    sandboxes: list[dict]
    snapshots: list[dict]

    @classmethod
    def of(cls, controller: Controller) -> Listing:
        return cls(controller.list_sandboxes(), controller.list_snapshots())

    def history(self, sandbox: str) -> list[timeline.Checkpoint]:
        return timeline.history(sandbox, self.sandboxes, self.snapshots)


def trim(controller: Controller, att: Attachment) -> list[str]:
    """Folds the oldest checkpoints away until the history fits in ``keep``
    checkpoints and ``max_mib`` of memory; a checkpoint something else
    still uses (a running child, another branch) is skipped. Returns the
    folded ids. One trim at a time per attachment; a trim already running
    makes this one return at once."""
    if not over_budget(att) or not att._trimming.acquire(blocking=False):
        return []
    folded: list[str] = []
    try:
        while True:
            cps = past(controller, att.sandbox)
            count_held(att, cps)
            if not over_budget(att):
                return folded
            for c in cps[:-1]:
                try:
                    controller.fold_snapshot(c.snapshot)
                except ForkdError:
                    continue  # in use: the next one
                folded.append(c.snapshot)
                break
            else:
                return folded
    finally:
        att._trimming.release()


def trim_in_background(controller: Controller, att: Attachment) -> None:
    if over_budget(att):  # else nothing to ask the daemon
        threading.Thread(target=_trim_quietly, args=(controller, att), daemon=True).start()


def _trim_quietly(controller: Controller, att: Attachment) -> None:
    try:
        trim(controller, att)
    except ForkdError:
        pass  # the daemon went away: the next cell's trim catches up


@dataclass
class Moved:
    sandbox: dict
    future: str | None  # the snapshot keeping the state left behind
    ms: float
    undone: list[int]  # cells whose effects the sandbox no longer has
    kept: list[int]  # cells whose effects it has


def ran(history: list[timeline.Checkpoint], at: str | None) -> list[int]:
    """The cells that ran in a history: each checkpoint's, but the one the
    sandbox still sits at (its cell has not run there)."""
    return [c.cell for c in history if c.snapshot != at and c.cell is not None]


def checkout(
    controller: Controller,
    att: Attachment,
    target: timeline.Checkpoint,
    listing: Listing,
) -> Moved:
    """Makes the attached sandbox's state the checkpoint's: the state left
    behind is kept as a snapshot (tagged NAME-future-of-OLD) unless it was
    a checkpoint's already, the old sandbox stops and a child of the
    checkpoint takes its name. ``listing``: the sandboxes and snapshots as
    the caller just read them (the new sandbox's history is derived from
    it: a child's history is its checkpoint's, which the listing holds)."""
    history = listing.history(att.sandbox)
    old = att.sandbox
    before = ran(history, att.at) + ([att.last_cell] if att.at is None else [])
    started = time.perf_counter()  # what the user waits for: from here to the new sandbox
    future = None
    if att.at is None:
        tag = f"{att.name[:40]}-future-of-{old}"
        mark = {"cell": None, "line": "", "after": att.last_cell}
        out = controller.branch_sandbox(old, mode="diff", tag=tag, checkpoint=mark)
        future = out["snapshot"]["id"]
    controller.kill_sandbox(old)
    try:
        [record] = controller.spawn_sandboxes(snapshot_id=target.snapshot, name=att.name)
    except ForkdError:
        back = future or att.at  # where it was, under its name
        if back is not None:
            [record] = controller.spawn_sandboxes(snapshot_id=back, name=att.name)
            att.sandbox, att.at = record["id"], back
        raise
    att.sandbox, att.at, att.last_cell = record["id"], target.snapshot, target.after
    ms = (time.perf_counter() - started) * 1000
    now = timeline.history(record["id"], [*listing.sandboxes, record], listing.snapshots)
    count_held(att, now)
    kept = ran(now, att.at)
    undone = sorted({c for c in before if c is not None} - set(kept))
    return Moved(record, future, ms, undone, kept)
