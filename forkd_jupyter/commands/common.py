"""What every daemon subcommand shares: reaching the daemon through the SDK,
turning expected failures into one-line messages (never a traceback),
``--json`` output, plain-text tables and progress bars.

Exit statuses: 0 success, 1 a failure the command reports (an SDK error, a
guest exception in ``run``), 2 a usage error (argparse's own), 130 when
interrupted."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..client.text import fmt_bytes, fmt_ms, render_table, sandbox_status

__all__ = ["fmt_bytes", "fmt_ms", "render_table", "sandbox_status"]  # re-exported

PROG = "forkd-jupyter"
FALLBACK_SIZE = (80, 24)  # columns, lines
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
DAEMON_HINT = (
    "hint: `forkd-jupyter daemon status` tells whether it runs; FORKD_JUPYTER_URL and "
    "FORKD_JUPYTER_TOKEN choose which daemon to talk to"
)


class CommandError(Exception):
    """A failure the command explains itself (a missing file, a failed
    snapshot): printed as ``forkd-jupyter: <message>``, exit status 1."""


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def register(
    name: str,
    help: str,
    configure: Callable[[argparse.ArgumentParser], None],
    handler: Callable[[argparse.Namespace], int],
) -> None:
    """``cli.add_command`` for a daemon subcommand: the handler runs under
    ``handles_errors`` and finds its own parser as ``args.parser`` (for
    usage errors that argparse alone cannot detect: ``args.parser.error``)."""
    from ..cli import add_command

    def configure_and_keep(parser: argparse.ArgumentParser) -> None:
        configure(parser)
        parser.set_defaults(parser=parser)
        _intermix(parser)

    add_command(name, help, configure_and_keep, handles_errors(handler))


def _intermix(parser: argparse.ArgumentParser) -> None:
    """Lets options and positionals come in any order (``run sb-1 --json
    CODE``, ``kill sb-1 --json sb-2``). The top-level parser hands a
    subcommand's words to its ``parse_known_args``, which stops filling
    positionals at the first option; the intermixed parse does not, and it
    calls the class's ``parse_known_args`` itself, so the instance override
    steps aside while it runs. A parser with sub-actions (``process start``)
    cannot parse intermixed itself: each sub-action's parser does."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if actions:
        for sub in {id(p): p for a in actions for p in a.choices.values()}.values():
            _intermix(sub)
        return

    def parse_known_args(args=None, namespace=None):
        del parser.parse_known_args
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args

    parser.parse_known_args = parse_known_args


def fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_FAILURE


def handles_errors(handler: Callable[[argparse.Namespace], int]):
    """Wraps a handler so that SDK errors, CommandError and Ctrl-C end the
    command with a message on stderr and a status, not a traceback."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        from ..client import DaemonUnavailable, ForkdError

        try:
            return handler(args)
        except DaemonUnavailable as e:
            return fail(f"{e.detail}\n{DAEMON_HINT}")
        except ForkdError as e:
            return fail(e.detail or e.title or f"the daemon answered HTTP {e.status}")
        except CommandError as e:
            return fail(str(e))
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return EXIT_INTERRUPTED

    return wrapper


def connect(autostart: bool = True):
    """The SDK Controller for the user's daemon (FORKD_JUPYTER_URL /
    FORKD_JUPYTER_TOKEN, else the default socket, started when needed)."""
    from ..client import Controller

    try:
        return Controller(autostart=autostart)
    except ValueError as e:  # a malformed FORKD_JUPYTER_URL
        raise CommandError(str(e)) from None


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


# -------------------------------------------------------------- progress
class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


@contextmanager
def progress(total: int, description: str) -> Iterator[Any]:
    """A tqdm bar on stderr when stderr is a terminal, else an object with
    the same ``update`` / ``set_postfix_str`` that prints nothing (so piped
    or captured output never holds bar redraws)."""
    if not sys.stderr.isatty():
        yield _NoBar()
        return
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    # tqdm draws nothing on a terminal that reports no size (a bare pty).
    if size.columns > 0 and size.lines > 0:
        sizing = {"dynamic_ncols": True}
    else:
        sizing = {"ncols": FALLBACK_SIZE[0], "nrows": FALLBACK_SIZE[1]}
    bar = tqdm(total=total, desc=description, file=sys.stderr, leave=False, **sizing)
    try:
        yield bar
        bar.refresh()  # the last step is drawn even when it came within tqdm's redraw interval
    finally:
        bar.close()
