"""`base ls` and `base rm`: the daemon's warm bases (one per Python
environment, memory size and preloaded modules; docs/cli.md)."""

from __future__ import annotations

import argparse
import time

from ..client.text import fmt_bytes, fmt_ms, render_table
from .common import add_json_flag, connect, print_json, register


def _base_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("ls", help="list the warm bases", description="list the warm bases")
    add_json_flag(ls)
    rm = sub.add_parser(
        "rm",
        help="remove warm bases (the next spawn builds one again)",
        description="remove warm bases (the next spawn builds one again)",
    )
    rm.add_argument("bases", nargs="*", metavar="BASE", help="base ids (see `base ls`)")
    rm.add_argument("--all", action="store_true", help="remove every base")
    add_json_flag(rm)


def _base(args: argparse.Namespace) -> int:
    controller = connect()
    if args.action == "ls":
        bases = controller.list_bases()
        if args.json:
            print_json(bases)
        elif not bases:
            print("no warm bases (the first spawn of an environment builds one)")
        else:
            rows = [
                [
                    b["id"],
                    b["python"],
                    f"{b['memory_mib']} MiB",
                    ",".join(b["preload"]) or "-",
                    fmt_ms(b["build_ms"]),
                    fmt_bytes(b["disk_bytes"]),
                    f"{b.get('ready_children', 0)} ({b.get('ready_served', 0)} served)",
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(b["created_at"])),
                ]
                for b in bases
            ]
            print(
                render_table(
                    ["BASE", "PYTHON", "MEMORY", "PRELOAD", "BUILT IN", "DISK", "READY", "CREATED"],
                    rows,
                )
            )
        return 0
    if not args.bases and not args.all:
        args.parser.error("name bases to remove, or --all")
    targets = [b["id"] for b in controller.list_bases()] if args.all else args.bases
    removed = [controller.delete_base(b) for b in targets]
    if args.json:
        print_json(removed)
    else:
        for record in removed:
            print(record["id"])
    return 0


register("base", "list or remove the warm bases new sandboxes start from", _base_args, _base)
