"""`%forkd` sub-commands on programs of a sandbox (docs/processes.md):
``exec`` runs one to its end; ``start``, ``ps``, ``logs`` and ``stop``
manage programs that run beside the cells (a server, a watcher)."""

from __future__ import annotations

import argparse
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..client.text import render_table
from .session import Session
from .subcommands import _sandbox_id, subcommand


def _argv(words: list[str]) -> list[str]:
    """The program's argv: IPython splits a magic's line keeping quotes
    (``'a b'`` stays one word, quotes included), so the words are split
    again as a shell would."""
    argv = shlex.split(" ".join(words))
    argv = argv[1:] if argv[:1] == ["--"] else argv
    if not argv:
        raise UsageError("give the program to run, e.g. %forkd exec -- ls -l")
    return argv


@subcommand
@magic_arguments()
@argument("--sandbox", metavar="NAME", help="default: the current sandbox")
@argument("--timeout", type=float, metavar="SECONDS", help="kill it after this long")
@argument("cmd", nargs=argparse.REMAINDER, help="-- then the program and its arguments")
def exec(session: Session, shell, args) -> int:  # noqa: A001 - the sub-command's name
    """Run a program once in the sandbox; print its output; return its exit code."""
    sid = _sandbox_id(session, args.sandbox)
    doc = session.controller.run_process(sid, _argv(args.cmd), timeout=args.timeout)
    sys.stdout.write(doc["stdout"])
    sys.stderr.write(doc["stderr"])
    if doc["timed_out"]:
        print(f"(killed after {args.timeout} s)", file=sys.stderr)
    return doc["exit_code"]


@subcommand
@magic_arguments()
@argument("--sandbox", metavar="NAME", help="default: the current sandbox")
@argument("cmd", nargs=argparse.REMAINDER, help="-- then the program and its arguments")
def start(session: Session, shell, args) -> str:
    """Start a program that runs beside the cells; returns its id (see %forkd ps)."""
    sid = _sandbox_id(session, args.sandbox)
    return session.controller.start_process(sid, _argv(args.cmd))["id"]


@subcommand
@magic_arguments()
@argument("--sandbox", metavar="NAME", help="default: the current sandbox")
def ps(session: Session, shell, args) -> None:
    """The sandbox's managed processes and terminals."""
    procs = session.controller.list_processes(_sandbox_id(session, args.sandbox))
    rows = [[p["id"], str(p["pid"] or "-"), p["state"],
             "-" if p["exit_code"] is None else str(p["exit_code"]),
             " ".join(p["argv"])[:60]] for p in procs]  # fmt: skip
    print(render_table(["ID", "PID", "STATE", "EXIT", "COMMAND"], rows) if rows else "none")


@subcommand
@magic_arguments()
@argument("id", help="the process's id")
@argument("--sandbox", metavar="NAME", help="default: the current sandbox")
@argument("-f", "--follow", action="store_true", help="stream its output until it ends")
def logs(session: Session, shell, args) -> None:
    """Print what a managed process wrote (-f: and what it writes, live)."""
    sid, c = _sandbox_id(session, args.sandbox), session.controller
    if not args.follow:
        for chunk in c.process_logs(sid, args.id)["chunks"]:
            (sys.stderr if chunk["stream"] == "stderr" else sys.stdout).write(chunk["data"])
        return
    for event, data in c.follow_process(sid, args.id):
        if event == "output":
            (sys.stderr if data["stream"] == "stderr" else sys.stdout).write(data["data"])
            sys.stdout.flush()


@subcommand
@magic_arguments()
@argument("id", help="the process's id")
@argument("--sandbox", metavar="NAME", help="default: the current sandbox")
@argument("--grace", type=int, default=5, metavar="SECONDS", help="then SIGKILL (default 5)")
def stop(session: Session, shell, args) -> None:
    """SIGTERM to a managed process's group, SIGKILL after the grace period."""
    session.controller.stop_process(_sandbox_id(session, args.sandbox), args.id, args.grace)
