"""`process`: managed processes of a sandbox (docs/processes.md): programs
that run beside the cells, with a log.

    forkd-jupyter process start SANDBOX [-e N=V] [--cwd DIR] -- CMD...
    forkd-jupyter process ls SANDBOX
    forkd-jupyter process get SANDBOX ID
    forkd-jupyter process logs SANDBOX ID [--follow]
    forkd-jupyter process stdin SANDBOX ID [--eof]   (this command's stdin)
    forkd-jupyter process stop SANDBOX ID [--grace S]
    forkd-jupyter process kill SANDBOX ID [--signal N]
"""

from __future__ import annotations

import argparse
import sys
import time

from ..client.text import render_table
from .common import add_json_flag, connect, print_json, register
from .exec import _environment


def _process_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, text: str, with_id: bool = True, **kw) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text, **kw)
        p.add_argument("sandbox", metavar="SANDBOX", help="id or name")
        if with_id:
            p.add_argument("process", metavar="ID", help="the process's id (see `process ls`)")
        add_json_flag(p)
        return p

    start = action("start", "start a program that runs beside the cells", with_id=False)
    start.add_argument("argv", nargs="*", metavar="CMD", help="the program and its arguments")
    start.add_argument("--cwd", metavar="DIR", help="working directory in the sandbox")
    start.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE",
                       help="add to the program's environment (repeatable)")  # fmt: skip
    start.add_argument("--log-limit", type=int, metavar="BYTES",
                       help="keep the newest BYTES of its output (default 1 MiB)")  # fmt: skip
    action("ls", "list the sandbox's managed processes", with_id=False, aliases=["list"])
    action("get", "show one managed process")
    logs = action("logs", "print what a process wrote (its kept log)")
    logs.add_argument("-f", "--follow", action="store_true", help="and go on until it ends")
    stdin = action("stdin", "send this command's standard input to the process")
    stdin.add_argument("--eof", action="store_true", help="close its stdin afterwards")
    stop = action("stop", "SIGTERM, then SIGKILL after a grace period")
    stop.add_argument("--grace", type=int, default=5, metavar="SECONDS")
    kill = action("kill", "send a signal to the process's group (default SIGKILL)")
    kill.add_argument("--signal", type=int, default=9, metavar="N")


def _process(args: argparse.Namespace) -> int:
    controller = connect()
    sb = args.sandbox
    if args.action == "start":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else list(args.argv)
        if not argv:
            args.parser.error("give the program to run after --")
        doc = controller.start_process(sb, argv, env=_environment(args.env), cwd=args.cwd,
                                       log_limit_bytes=args.log_limit)  # fmt: skip
        print_json(doc) if args.json else print(doc["id"])
        return 0
    if args.action in ("ls", "list"):
        procs = controller.list_processes(sb)
        if args.json:
            print_json(procs)
        else:
            print(render_table(["ID", "PID", "STATE", "EXIT", "STARTED", "COMMAND"],
                               [_row(p) for p in procs]))  # fmt: skip
        return 0
    if args.action == "logs":
        return _logs(controller, args)
    if args.action == "get":
        doc = controller.get_process(sb, args.process)
    elif args.action == "stdin":
        data = sys.stdin.buffer.read()
        doc = controller.write_process_stdin(sb, args.process, data, eof=args.eof)
    elif args.action == "stop":
        doc = controller.stop_process(sb, args.process, grace=args.grace)
    else:
        doc = controller.kill_process(sb, args.process, signal=args.signal)
    if args.json:
        print_json(doc)
    else:
        print(render_table(["ID", "PID", "STATE", "EXIT", "STARTED", "COMMAND"], [_row(doc)]))
    return 0


def _logs(controller, args: argparse.Namespace) -> int:  # noqa: ANN001
    out = sys.stdout.buffer
    if not args.follow:
        doc = controller.process_logs(args.sandbox, args.process)
        chunks = doc["chunks"]
    else:
        chunks = _followed(controller, args)
    for chunk in chunks:
        if args.json:
            print_json(chunk)
        else:
            out.write(chunk["data"].encode("utf-8", "surrogateescape"))
            out.flush()
    return 0


def _followed(controller, args: argparse.Namespace):  # noqa: ANN001, ANN202
    for event, data in controller.follow_process(args.sandbox, args.process):
        if event == "output":
            yield data
        elif event == "gap":
            print("forkd-jupyter: some output was dropped from the log", file=sys.stderr)


def _row(p: dict) -> list[str]:
    ended = p["exit_code"] if p["exit_code"] is not None else (
        f"signal {p['signal']}" if p["signal"] else "-")  # fmt: skip
    started = time.strftime("%H:%M:%S", time.localtime(p["started_at"]))
    command = " ".join(p["argv"])
    return [p["id"], str(p["pid"] or "-"), p["state"], str(ended), started,
            command if len(command) <= 60 else command[:57] + "..."]  # fmt: skip


register("process", "managed processes: start, list, logs, stdin, stop, kill", _process_args,
         _process)  # fmt: skip
