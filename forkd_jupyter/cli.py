"""The `forkd-jupyter` command. Each subcommand registers itself through
``add_command``; ``main`` dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = []


def add_command(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None], handler: Handler
) -> None:
    _COMMANDS.append((name, help, configure, handler))


def _doctor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import render_json, render_text, run_checks
    from .doctor.report import all_required_ok

    checks = run_checks()
    print(render_json(checks) if args.json else render_text(checks))
    return 0 if all_required_ok(checks) else 1


add_command("doctor", "check that this machine can run sandboxes", _doctor_args, _doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forkd-jupyter", description="Forkable KVM sandboxes for notebooks."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, configure, handler in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
