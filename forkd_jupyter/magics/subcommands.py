"""The sub-commands of the `%forkd` line magic. Each is a function taking
(session, shell, args) whose arguments are declared with IPython's
magic_arguments; ``SUBCOMMANDS`` maps names to them and their parsers
document themselves (``%forkd?`` is assembled from them)."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..client import DaemonUnavailable, ForkdError
from ..client.text import cluster_rows, fmt_ms, render_table, render_tree, sandbox_status
from .handles import SandboxHandle, SandboxList, SnapshotHandle, branch_result
from .housekeeping import clear_dead, delete_snapshot
from .progress import CellProgress
from .session import Session

SUBCOMMANDS: dict[str, Callable] = {}


def subcommand(fn: Callable) -> Callable:
    """Registers ``fn`` (already decorated with its arguments) under its name."""
    from IPython.core.magic_arguments import construct_parser

    construct_parser(fn)
    fn.parser.prog = f"forkd {fn.__name__}"  # the parser adds the %
    fn.__doc__ = fn.parser.format_help()
    SUBCOMMANDS[fn.__name__] = fn
    return fn


def _sandbox_id(session: Session, name: str | None) -> str:
    if name is None:
        return session.require_current()
    return session.controller.get_sandbox(name)["id"]


@subcommand
@magic_arguments()
@argument("-n", type=int, default=1, help="how many sandboxes (default 1)")
@argument("--name", help="name of the sandbox (NAME-1, NAME-2... with -n)")
@argument("--mem", type=int, metavar="MIB", help="guest memory in MiB (default 2048)")
@argument("--no-live-fork", action="store_true", help="never branched live (only full/diff)")
@argument(
    "--preload",
    metavar="MODULES",
    help="modules imported in the warm base new sandboxes start from, e.g. numpy,pandas",
)
def spawn(session: Session, shell, args) -> SandboxHandle | SandboxList:
    """Start sandboxes running this notebook's Python; the first becomes current."""
    if args.n < 1:
        raise UsageError("-n must be at least 1")
    c = session.controller
    options = {"live_fork": not args.no_live_fork, "memory_limit_mib": args.mem}
    if args.preload:
        options["preload"] = [m.strip() for m in args.preload.split(",") if m.strip()]
    if args.name and args.n > 1:
        names = [f"{args.name}-{i}" for i in range(1, args.n + 1)]
    else:
        names = [args.name] * args.n
    records = []
    # One request a sandbox, so the bar advances.
    with CellProgress("spawning", args.n) as bar:
        for name in names:
            records += c.spawn_sandboxes(name=name, **options)
            bar.step()
    handles = SandboxList(SandboxHandle(c, r) for r in records)
    session.set_current(handles[0].id)
    return handles[0] if args.n == 1 else handles


@subcommand
@magic_arguments()
@argument("name", help="sandbox id or name")
def use(session: Session, shell, args) -> SandboxHandle:
    """Make a sandbox the current one (where `%%forkd` cells run)."""
    record = session.controller.get_sandbox(args.name)
    if record["status"] != "running":
        raise UsageError(f"sandbox {args.name} is {sandbox_status(record)}")
    session.set_current(record["id"])
    return SandboxHandle(session.controller, record)


@subcommand
@magic_arguments()
@argument("--all", action="store_true", dest="show_dead", help="list dead sandboxes too")
@argument("--clear-dead", action="store_true", help="first remove every dead sandbox's record")
def ls(session: Session, shell, args) -> None:
    """List sandboxes and snapshots (* marks the current sandbox). Dead
    sandboxes are counted, not listed, unless --all."""
    c = session.controller
    if args.clear_dead:
        cleared = clear_dead(c)
        print(f"cleared {len(cleared)} dead sandbox{'es' if len(cleared) != 1 else ''}")
    sandboxes = c.list_sandboxes()
    shown = [s for s in sandboxes if args.show_dead or s["status"] != "dead"]
    rows = [
        (
            "*" if s["id"] == session.current else "",
            s["id"],
            s["name"],
            sandbox_status(s),
            s["parent_snapshot"] or "",
            s.get("node") or "",
        )
        for s in shown
    ]
    headers = ("", "SANDBOX", "NAME", "STATE", "FROM", "NODE")
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    print(render_table(headers, rows) if rows else "no sandboxes")
    hidden = len(sandboxes) - len(shown)
    if hidden:
        print(f"({hidden} dead not shown: `--all` lists them, `--clear-dead` removes them)")
    snaps = [
        (s["id"], s["tag"] or "", s["mode"], s["status"], s["source_id"], fmt_ms(s["pause_ms"]))
        for s in c.list_snapshots()
    ]
    if snaps:
        print()
        print(render_table(("SNAPSHOT", "TAG", "MODE", "STATUS", "OF", "PAUSE_MS"), snaps))


@subcommand
@magic_arguments()
@argument("name", nargs="?", help="sandbox to branch (default: the current one)")
@argument("--mode", choices=("full", "diff", "live"), help="default: live when possible")
@argument(
    "--no-wait",
    action="store_true",
    help="live or diff: return as the source resumes, while the image is written",
)
@argument("-n", type=int, default=0, dest="children", metavar="N", help="children (default 0)")
@argument("--tag", help="a name for the snapshot")
@argument(
    "--cluster",
    metavar="ADDRESS",
    help="spread the children over a Ray cluster: auto, host:port or ray://host:port",
)
def branch(session: Session, shell, args) -> SandboxList:
    """Snapshot a sandbox and spawn children from it; returns the children
    (with ``.snapshot``). The current sandbox does not change."""
    if args.children < 0:
        raise UsageError("-n must not be negative")
    if args.cluster and args.children == 0:
        raise UsageError("--cluster spreads children: give their number with -n")
    if args.no_wait and args.mode == "full":
        raise UsageError("--no-wait only works with a live or diff branch, not --mode full")
    sid = _sandbox_id(session, args.name)
    slow = not args.no_wait and (args.mode == "full" or args.children > 0)
    what = f"branching {sid}" + (f" into {args.children}" if args.children else "")
    if args.cluster:
        session.controller.join_cluster(args.cluster)
        what += " over the cluster"
    with CellProgress(what) if slow else contextlib.nullcontext() as bar:
        out = session.controller.branch_sandbox(
            sid,
            tag=args.tag,
            mode=args.mode,
            wait=not args.no_wait,
            count=args.children,
            spread=bool(args.cluster) or None,
        )
        if bar is not None:
            bar.step()
    return branch_result(session.controller, out)


@subcommand
@magic_arguments()
@argument(
    "address", nargs="?", help="join this Ray cluster first: auto, host:port or ray://host:port"
)
def cluster(session: Session, shell, args) -> None:
    """The Ray cluster branches spread over (``branch --cluster``): its
    nodes, whether each takes sandboxes, free memory."""
    c = session.controller
    info = c.join_cluster(args.address) if args.address else c.cluster_info()
    if info["address"] is None:
        print("no cluster joined: `%forkd cluster auto` joins the one this machine is part of")
        return
    print(f"cluster {info['address']}")
    print(render_table(("NODE", "SANDBOXES", "FREE", "STATE"), cluster_rows(info)))


@subcommand
@magic_arguments()
@argument("names", nargs="+", help="sandbox ids or names")
def kill(session: Session, shell, args) -> None:
    """Stop sandboxes (their records stay, marked dead)."""
    for name in args.names:
        record = session.controller.kill_sandbox(name)
        if record["id"] == session.current:
            session.set_current(None)
        print(f"killed {record['id']}")


@subcommand
@magic_arguments()
@argument("snapshot", help="snapshot id or tag")
@argument("--cascade", action="store_true", help="also kill its children and dependent diffs")
def rm(session: Session, shell, args) -> None:
    """Delete a snapshot (refused while children or diffs depend on it)."""
    progress = CellProgress(f"deleting {args.snapshot}: killing its sandboxes")
    with progress if args.cascade else contextlib.nullcontext():
        deleted = delete_snapshot(
            session.controller, args.snapshot, args.cascade, progress.set_done
        )
    if session.current in deleted:
        session.set_current(None)
    print("deleted " + ", ".join(deleted))


@subcommand
@magic_arguments()
@argument("--text", action="store_true", help="plain text even when widgets are available")
def tree(session: Session, shell, args) -> Any:
    """Show the branch tree (a live widget when available, else text)."""
    if not args.text:
        widget = _widget("BranchTree", session)
        if widget is not None:
            return widget
    doc = session.controller.tree()
    print(render_tree(doc) if doc["nodes"] else "no sandboxes or snapshots")


@subcommand
@magic_arguments()
@argument("--text", action="store_true", help="plain text even when widgets are available")
def timings(session: Session, shell, args) -> Any:
    """Pause timings of every branch, by mode (a live chart when available)."""
    if not args.text:
        widget = _widget("PauseTimings", session)
        if widget is not None:
            return widget
    rows = [
        (
            t["snapshot_id"],
            t["mode"],
            fmt_ms(t["pause_ms"]),
            fmt_ms(t["round_trip_ms"]),
            fmt_ms(t["copy_ms"]),
        )
        for t in session.controller.timings()
    ]
    headers = ("SNAPSHOT", "MODE", "PAUSE_MS", "ROUND_TRIP_MS", "COPY_MS")
    print(render_table(headers, rows) if rows else "no branches yet")


@subcommand
@magic_arguments()
@argument("var", help="variable in the current sandbox")
@argument("--as", dest="as_name", metavar="NAME", help="name in the notebook (default: same)")
def pull(session: Session, shell, args) -> None:
    """Copy a picklable variable from the current sandbox into the notebook."""
    try:
        value = session.controller.pull(session.require_current(), args.var)
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError) as e:
        raise UsageError(
            f"cannot pull {args.var!r}: this notebook cannot unpickle it ({e}); "
            "pull plain data, or define its class here too"
        ) from None
    shell.user_ns[args.as_name or args.var] = value


@subcommand
@magic_arguments()
@argument("var", help="variable of the notebook")
def push(session: Session, shell, args) -> None:
    """Copy a picklable notebook variable into the current sandbox."""
    if args.var not in shell.user_ns:
        raise UsageError(f"no variable {args.var!r} in the notebook")
    sandbox = session.require_current()
    try:
        session.controller.push(sandbox, args.var, shell.user_ns[args.var])
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise UsageError(f"cannot push {args.var!r}: it does not pickle ({e})") from None


@subcommand
@magic_arguments()
def status(session: Session, shell, args) -> None:
    """The daemon, the current sandbox and how many sandboxes run."""
    c = session.controller
    health = c.health()
    sandboxes = c.list_sandboxes()
    running = sum(1 for s in sandboxes if s["status"] == "running")
    print(f"daemon: {c.connection.describe()} (pid {health['pid']}, {health['version']})")
    print(f"current sandbox: {session.current or 'none'}")
    print(f"sandboxes: {running} running of {len(sandboxes)}; snapshots: {len(c.list_snapshots())}")


@subcommand
@magic_arguments()
def doctor(session: Session, shell, args) -> None:
    """Check that this machine can run sandboxes (KVM, userfaultfd, ...)."""
    try:
        report = session.controller.doctor()
    except (UsageError, DaemonUnavailable) as e:  # no daemon: check from the kernel itself
        from ..doctor import render_text, run_checks

        print(f"the daemon is unreachable ({e}); checking from this kernel instead")
        print(render_text(run_checks()))
        return
    for name, check in report["checks"].items():
        print(f"{check['status'].upper():4}  {name}: {check['detail']}")
        if check["status"] != "ok" and check.get("fix"):
            print(f"      fix: {check['fix']}")
    print("this machine is " + ("ready" if report["ok"] else "NOT ready"))


def _widget(name: str, session: Session) -> Any:
    try:
        from .. import widgets
    except ImportError:
        return None
    cls = getattr(widgets, name, None)
    return None if cls is None else cls(session=session)  # what `BranchTree()` does too


def run_subcommand(session: Session, shell, line: str) -> Any:
    words = line.strip().split(None, 1)
    if not words:
        raise UsageError("give a sub-command: " + ", ".join(SUBCOMMANDS) + " (see %forkd?)")
    name, rest = words[0], words[1] if len(words) > 1 else ""
    fn = SUBCOMMANDS.get(name)
    if fn is None:
        raise UsageError(f"unknown sub-command {name!r}; one of: {', '.join(SUBCOMMANDS)}")
    args = fn.parser.parse_argstring(rest)
    try:
        return fn(session, shell, args)
    except ForkdError as e:
        from .session import usage_error

        raise usage_error(e) from None


__all__ = ["SUBCOMMANDS", "SnapshotHandle", "run_subcommand"]
