"""The `forkd-jupyter` command (also `python -m forkd_jupyter`).

A subcommand is one ``add_command(name, help, configure, handler)`` call:
``configure`` adds its arguments to its parser, ``handler`` receives the
parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

Configure = Callable[[argparse.ArgumentParser], None]
Handler = Callable[[argparse.Namespace], int]

_COMMANDS: dict[str, tuple[str, Configure, Handler]] = {}


def add_command(name: str, help: str, configure: Configure, handler: Handler) -> None:
    if name in _COMMANDS:
        raise ValueError(f"subcommand {name!r} is already registered")
    _COMMANDS[name] = (help, configure, handler)


def _doctor_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as one JSON object")


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import all_required_ok, render_json, render_text, run_checks

    checks = run_checks()
    print(render_json(checks) if args.json else render_text(checks))
    return 0 if all_required_ok(checks) else 1


add_command(
    "doctor",
    "check, by probing the kernel, that this machine can run sandboxes",
    _doctor_args,
    _doctor,
)


# The other subcommands register themselves on import.
from . import commands  # noqa: E402, F401


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="forkd-jupyter", description="Forkable KVM sandboxes for notebooks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, handler) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # e.g. `forkd-jupyter doctor --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
