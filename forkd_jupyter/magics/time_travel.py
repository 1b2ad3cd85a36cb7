"""The `%forkd` sub-commands of attach mode and its checkpoints: attach,
detach, checkpoints, history, undo, checkout (attach.py does the work;
docs/time-travel.md)."""

from __future__ import annotations

import datetime
import html

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import publish_display_data

from ..client import ForkdError
from ..client.text import render_table
from . import attach as mode
from . import timeline
from .handles import SandboxHandle
from .session import Session
from .subcommands import subcommand


@subcommand
@magic_arguments()
@argument("name", nargs="?", help="sandbox to attach to; spawned under this name if none runs")
@argument("--mem", type=int, metavar="MIB", help="guest memory of a new sandbox in MiB")
@argument("--no-checkpoints", action="store_true", help="no checkpoint before each cell")
@argument("--keep", type=int, metavar="N", help=f"checkpoints kept (default {mode.KEEP_DEFAULT})")
@argument(
    "--max-mib",
    type=int,
    metavar="M",
    help=f"memory the checkpoints may hold (default {mode.MAX_MIB_DEFAULT})",
)
def attach(session: Session, shell, args) -> SandboxHandle:
    """Run every following cell of this notebook in a sandbox (no `%%forkd`
    needed) until `%forkd detach`, with a checkpoint before each cell (see
    undo, checkout, history). Cells starting with `%forkd` stay in the
    kernel. Reattaching to a running NAME (after a kernel restart) keeps its
    history."""
    c = session.controller
    record = _running(session, args.name)
    if record is None:
        options = {"memory_limit_mib": args.mem} if args.mem else {}
        [record] = c.spawn_sandboxes(name=args.name, **options)
    att = mode.Attachment(record["id"], record["name"] or record["id"])
    att.checkpoints = not args.no_checkpoints
    _set_budget(att, args.keep, args.max_mib)
    past = mode.past(c, att.sandbox)
    att.at, att.last_cell = timeline.position(record, past)
    mode.count_held(att, past)
    session.set_attachment(att)
    session.set_current(att.sandbox)
    _banner(att, len(past))
    return SandboxHandle(c, record)


def _running(session: Session, name: str | None) -> dict | None:
    if name is None:
        if session.current is None:
            return None
        name = session.current
    try:
        record = session.controller.get_sandbox(name)
    except ForkdError as e:
        if e.status == 404:
            return None
        raise
    return record if record["status"] == "running" else None


def _set_budget(att: mode.Attachment, keep: int | None, max_mib: int | None) -> None:
    if keep is not None:
        if keep < 1:
            raise UsageError("--keep must be at least 1")
        att.keep = keep
    if max_mib is not None:
        if max_mib < 1:
            raise UsageError("--max-mib must be at least 1")
        att.max_mib = max_mib


def _banner(att: mode.Attachment, kept: int) -> None:
    marks = "checkpoints on" if att.checkpoints else "checkpoints off"
    text = (
        f"cells of this notebook now run in sandbox {att.name} ({att.sandbox}); {marks}, "
        f"{kept} kept; `%forkd detach` runs them here again"
    )
    publish_display_data(
        {
            "text/plain": text,
            "text/html": "<div class='forkd-attached' style='border-left:4px solid #4a90d9;"
            f"padding:2px 8px'>&#9654; {html.escape(text)}</div>",
        },
        metadata={"forkd": {"attached": att.sandbox, "name": att.name}},
    )


@subcommand
@magic_arguments()
def detach(session: Session, shell, args) -> None:
    """Cells run in the kernel again (the sandbox and its checkpoints stay)."""
    att = _attached(session)
    session.set_attachment(None)
    print(f"detached from {att.name}; its sandbox keeps running (`%forkd attach {att.name}`)")


def _attached(session: Session) -> mode.Attachment:
    if session.attachment is None:
        raise UsageError("this notebook is not attached: `%forkd attach [NAME]` first")
    return session.attachment


@subcommand
@magic_arguments()
@argument("state", choices=("on", "off"), nargs="?", help="take checkpoints or not")
@argument("--keep", type=int, metavar="N", help="checkpoints kept; older ones are folded away")
@argument("--max-mib", type=int, metavar="M", help="memory the checkpoints may hold")
def checkpoints(session: Session, shell, args) -> None:
    """A diff checkpoint before each attached cell, within a budget (the
    oldest are folded away first)."""
    att = _attached(session)
    if args.state is not None:
        att.checkpoints = args.state == "on"
    _set_budget(att, args.keep, args.max_mib)
    state = "on" if att.checkpoints else "off"
    print(f"checkpoints {state}: at most {att.keep}, {att.max_mib} MiB")
    mode.trim_in_background(session.controller, att)


@subcommand
@magic_arguments()
def history(session: Session, shell, args) -> None:
    """The attached sandbox's checkpoints: the cell each one precedes, its
    first line, when, and the memory it holds (> marks where the sandbox is)."""
    att = _attached(session)
    past = mode.past(session.controller, att.sandbox)
    if not past:
        print("no checkpoints yet")
        return
    rows = [
        (
            ">" if c.snapshot == att.at else "",
            f"before [{c.cell}]" if c.cell is not None else f"kept, after [{c.after}]",
            c.line,
            datetime.datetime.fromtimestamp(c.created_at).strftime("%H:%M:%S"),
            f"{c.bytes / (1 << 20):.1f} MiB",
            c.snapshot,
        )
        for c in past
    ]
    print(render_table(("", "CHECKPOINT", "FIRST LINE", "TIME", "SIZE", "SNAPSHOT"), rows))
    if att.at is None and att.last_cell is not None:
        print(f"> now: after [{att.last_cell}]")


@subcommand
@magic_arguments()
@argument("n", type=int, nargs="?", default=1, help="cells to undo (default 1)")
def undo(session: Session, shell, args) -> None:
    """Return the attached sandbox to its state before its last N cells."""
    att = _attached(session)
    if args.n < 1:
        raise UsageError("N must be at least 1")
    listing = mode.Listing.of(session.controller)
    # One step per cell run: the checkpoints taken before cells, but the
    # one the sandbox sits at (its cell has not run here).
    past = listing.history(att.sandbox)
    behind = [c for c in past if c.cell is not None and c.snapshot != att.at]
    if len(behind) < args.n:
        raise UsageError(f"only {len(behind)} cells can be undone (see `%forkd history`)")
    _go(session, att, behind[-args.n], listing)


@subcommand
@magic_arguments()
@argument("cell", help="execution count of an earlier cell, or a checkpoint's snapshot id")
def checkout(session: Session, shell, args) -> None:
    """Return the attached sandbox to its state after an earlier cell (the
    state left behind is kept as a snapshot: nothing is lost)."""
    att = _attached(session)
    if args.cell.startswith("snap-"):
        checkout_to(session, args.cell)
        return
    try:
        count = int(args.cell.strip("[]:"))
    except ValueError:
        raise UsageError(f"{args.cell!r} is neither a cell's number nor a snapshot") from None
    if count == att.last_cell:
        print(f"the sandbox already has the state after [{count}]")
        return
    listing = mode.Listing.of(session.controller)
    past = listing.history(att.sandbox)
    target = next((c for c in reversed(past) if c.after == count), None)
    if target is None:  # an undone cell: in a future left behind
        others = timeline.everywhere(att.name, listing.sandboxes, listing.snapshots)
        target = next((o for o in reversed(others) if o.after == count), None)
    if target is None:
        cells = sorted({c.after for c in past if c.after is not None})
        raise UsageError(
            f"no checkpoint holds the state after [{count}]; known: "
            + (", ".join(f"[{n}]" for n in cells) or "none")
        )
    _go(session, att, target, listing)


def checkout_to(session: Session, snapshot: str) -> None:
    """Checks the attached sandbox out to a checkpoint given by id (the
    widget's and the panel's way)."""
    att = _attached(session)
    listing = mode.Listing.of(session.controller)
    target = next((c for c in listing.history(att.sandbox) if c.snapshot == snapshot), None)
    _go(session, att, target or _any_checkpoint(session, snapshot), listing)


def _any_checkpoint(session: Session, snapshot: str) -> timeline.Checkpoint:
    record = session.controller.get_snapshot(snapshot)
    if not record.get("checkpoint"):
        raise UsageError(f"{snapshot} is not a checkpoint (`%forkd history` lists them)")
    return timeline.Checkpoint.of(record)


def _go(
    session: Session,
    att: mode.Attachment,
    target: timeline.Checkpoint,
    listing: mode.Listing,
) -> None:
    """Checks out ``target``; ``listing``: the daemon's sandboxes and
    snapshots as just read."""
    moved = mode.checkout(session.controller, att, target, listing)
    session.set_current(att.sandbox)
    where = f"after [{target.after}]" if target.after is not None else "before any cell"
    kept = f"; the state left behind is snapshot {moved.future}" if moved.future else ""
    text = f"{att.name} is back to its state {where} ({moved.ms:.0f} ms){kept}"
    # The metadata tells the JupyterLab panel which cells to mark undone.
    publish_display_data(
        {"text/plain": text},
        metadata={"forkd": {"undone": moved.undone, "kept": moved.kept}},
    )
