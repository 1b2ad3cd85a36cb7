"""`run`: one cell in a sandbox, its output streamed as the guest writes it.

The guest's stdout and stderr go to ours as they arrive; then the text of
each display and of the cell's result is printed. A guest exception prints
the guest's traceback on stderr and exits 1. The first Ctrl-C interrupts the
cell in the guest (KeyboardInterrupt there); a second one leaves it running
and exits 130."""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from pathlib import Path

from .common import CommandError, add_json_flag, connect, print_json, register

GUEST_EXCEPTION = 1


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandbox", metavar="SANDBOX", help="id or name")
    parser.add_argument(
        "code",
        nargs="?",
        metavar="CODE",
        help="the cell's source; - reads it from stdin (put -- before code starting with -)",
    )
    parser.add_argument(
        "-f", "--file", type=Path, metavar="PATH", help="read the cell's source from this file"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up on the cell after this long"
    )
    add_json_flag(parser)


def _read_code(args: argparse.Namespace) -> str:
    if (args.code is None) == (args.file is None):
        args.parser.error("give the code, - to read it from stdin, or --file PATH (exactly one)")
    if args.file is not None:
        try:
            return args.file.read_text()
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise CommandError(f"cannot read {args.file}: {reason}") from None
    return sys.stdin.read() if args.code == "-" else args.code


def _echo(name: str, text: str) -> None:
    stream = sys.stderr if name == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()


def _run_interruptibly(controller, sandbox: str, code: str, on_output, timeout):
    """Runs the cell on a worker thread so the main thread can catch Ctrl-C
    and forward it to the guest while the result is still awaited. (The
    outcome comes through a queue: an interrupted ``Thread.join`` may report
    a running thread as finished.)"""
    from ..client import ForkdError

    outcomes: queue.SimpleQueue = queue.SimpleQueue()

    def work() -> None:
        try:
            outcomes.put((True, controller.run_cell(sandbox, code, on_output, timeout)))
        except BaseException as e:  # re-raised on the main thread
            outcomes.put((False, e))

    threading.Thread(target=work, name="forkd-run", daemon=True).start()
    interrupted = False
    while True:
        try:
            ok, value = outcomes.get(timeout=0.2)
            break
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            print(
                "\nforkd-jupyter: interrupting the cell (Ctrl-C again leaves it running)",
                file=sys.stderr,
            )
            try:
                controller.interrupt(sandbox)
            except ForkdError:
                pass  # the cell ended meanwhile
    if not ok:
        raise value
    return value


def _text_of(bundle: dict) -> str:
    text = bundle.get("text/plain")
    if text is not None:
        return str(text)
    return "<display: " + ", ".join(sorted(bundle)) + ">"


def _run(args: argparse.Namespace) -> int:
    code = _read_code(args)
    controller = connect()
    on_output = None if args.json else _echo
    result = _run_interruptibly(controller, args.sandbox, code, on_output, args.timeout)
    if args.json:
        print_json(result.to_dict())
        return 0 if result.ok else GUEST_EXCEPTION
    for bundle in result.displays:
        print(_text_of(bundle))
    if result.result:
        print(_text_of(result.result))
    sys.stdout.flush()
    if result.error is not None:
        error = result.error
        if error.traceback:
            colour = sys.stderr.isatty()
            print("\n".join(error.traceback) if colour else error.plain_traceback, file=sys.stderr)
        else:
            print(str(error), file=sys.stderr)
        return GUEST_EXCEPTION
    return 0


register("run", "run a cell in a sandbox and stream its output", _run_args, _run)
