"""`spawn`, `ls` and `kill`: creating, listing and stopping sandboxes."""

from __future__ import annotations

import argparse
import sys

from ..client import NotFound
from .common import (
    CommandError,
    add_json_flag,
    connect,
    print_json,
    progress,
    register,
    render_table,
    sandbox_status,
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# ----------------------------------------------------------------- spawn
def _spawn_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--count", type=positive_int, default=1, help="how many sandboxes (default 1)"
    )
    parser.add_argument(
        "--memory", type=positive_int, metavar="MIB", help="guest memory in MiB (daemon default)"
    )
    parser.add_argument(
        "--no-live-fork",
        dest="live_fork",
        action="store_false",
        help="spawn without live-fork support (branches are then full or diff)",
    )
    parser.add_argument(
        "--from",
        dest="snapshot",
        metavar="SNAPSHOT",
        help="spawn children of this snapshot (id or tag) instead of fresh sandboxes",
    )
    parser.add_argument("--name", help="a name for the sandbox (only with one sandbox)")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter whose environment the sandbox runs, e.g. a venv's bin/python "
        "(default: the one running this command)",
    )
    parser.add_argument(
        "--preload",
        metavar="MODULES",
        help="modules imported in the warm base new sandboxes start from, e.g. numpy,pandas",
    )
    add_json_flag(parser)


def _spawn(args: argparse.Namespace) -> int:
    if args.name is not None and args.count != 1:
        args.parser.error("--name needs exactly one sandbox (-n 1)")
    controller = connect()
    records: list[dict] = []
    # One request a sandbox, so the bar advances and a failure half-way
    # still reports the sandboxes that exist.
    try:
        with progress(args.count, "spawning") as bar:
            for _ in range(args.count):
                records += controller.spawn_sandboxes(
                    1,
                    live_fork=args.live_fork,
                    memory_limit_mib=args.memory,
                    snapshot_id=args.snapshot,
                    name=args.name,
                    python=args.python,
                    preload=[m.strip() for m in (args.preload or "").split(",") if m.strip()]
                    or None,
                )
                bar.update(1)
    except Exception as e:
        if records:
            made = ", ".join(r["id"] for r in records)
            raise CommandError(f"{_message(e)} (already spawned: {made})") from None
        raise
    if args.json:
        print_json(records)
    else:
        for record in records:
            print(record["id"])
    return 0


def _message(error: Exception) -> str:
    return getattr(error, "detail", "") or str(error)


# -------------------------------------------------------------------- ls
def _ls_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--running", action="store_true", help="only running sandboxes (dead ones are kept)"
    )
    parser.add_argument(
        "--clear-dead",
        action="store_true",
        help="first remove every dead sandbox's record (snapshots of them stay)",
    )
    add_json_flag(parser)


def _clear_dead(controller) -> int:
    """Removes dead sandboxes' records (a kill of a dead one removes it);
    one removed meanwhile by another client is not an error."""
    cleared = 0
    for record in controller.list_sandboxes():
        if record["status"] != "dead":
            continue
        try:
            controller.kill_sandbox(record["id"])
        except NotFound:
            pass
        cleared += 1
    return cleared


def _ls(args: argparse.Namespace) -> int:
    controller = connect()
    if args.clear_dead:
        cleared = _clear_dead(controller)
        print(f"cleared {cleared} dead sandbox{'' if cleared == 1 else 'es'}", file=sys.stderr)
    records = controller.list_sandboxes()
    if args.running:
        records = [r for r in records if r["status"] == "running"]
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("no sandboxes")
        return 0
    rows = [
        (
            r["id"],
            r["name"] if r["name"] != r["id"] else "",
            sandbox_status(r),
            "yes" if r["live_fork"] else "no",
            r["memory_limit_mib"],
            r["parent_snapshot"] or "",
            r["execution_count"] if r["execution_count"] is not None else "",
        )
        for r in records
    ]
    print(render_table(("ID", "NAME", "STATE", "LIVE", "MIB", "FROM", "CELLS"), rows))
    return 0


# ------------------------------------------------------------------ kill
def _kill_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandboxes", nargs="*", metavar="SANDBOX", help="ids or names")
    parser.add_argument("--all", action="store_true", help="kill every running sandbox")
    add_json_flag(parser)


def _kill(args: argparse.Namespace) -> int:
    if bool(args.sandboxes) == args.all:
        args.parser.error("give the sandboxes to kill, or --all")
    from ..client import DaemonUnavailable, ForkdError

    controller = connect()
    keys = args.sandboxes or [
        r["id"] for r in controller.list_sandboxes() if r["status"] == "running"
    ]
    killed, failures = [], []
    # Every sandbox asked for is tried; one unknown name does not spare the others.
    for key in keys:
        try:
            killed.append(controller.kill_sandbox(key))
        except DaemonUnavailable:
            raise
        except ForkdError as e:
            failures.append(e.detail or e.title)
    if args.json:
        print_json(killed)
    else:
        for record in killed:
            print(f"{record['id']}  {sandbox_status(record)}")
    if failures:
        raise CommandError("; ".join(failures))
    return 0


register("spawn", "start sandboxes (fresh, or children of a snapshot)", _spawn_args, _spawn)
register("ls", "list the daemon's sandboxes", _ls_args, _ls)
register("kill", "stop sandboxes (their records stay, marked dead)", _kill_args, _kill)
