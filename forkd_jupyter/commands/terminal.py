"""`terminal`: an interactive shell inside a sandbox on this terminal, as
`docker exec -it` gives one (docs/processes.md, "Terminals").

    forkd-jupyter terminal SANDBOX [-- CMD...]

This terminal is put in raw mode, so every key (Ctrl-C, Ctrl-D, arrows)
goes to the program in the sandbox; its size follows this terminal's
(SIGWINCH). The command ends when the program does, with its exit status
(128 + N when signal N ended it); ``--detach-key`` (default Ctrl-]) leaves
it running and returns at once, as `telnet` does."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import termios
import tty

from ..client.terminal_socket import connect_terminal
from .common import connect, register

DETACH_KEY = b"\x1d"  # Ctrl-]


def _terminal_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandbox", metavar="SANDBOX", help="id or name")
    parser.add_argument("argv", nargs="*", metavar="CMD",
                        help="the program (default: bash -i), after --")  # fmt: skip


def _terminal(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else list(args.argv)
    cols, rows = _size()
    controller = connect()
    term = controller.open_terminal(args.sandbox, argv=argv or None, cols=cols, rows=rows,
                                    term=os.environ.get("TERM") or None)  # fmt: skip
    sandbox_id = controller.get_sandbox(args.sandbox)["id"]
    detached = asyncio.run(_attach(controller.connection, sandbox_id, term["id"]))
    if detached:
        print(f"\r\nforkd-jupyter: detached; {term['id']} goes on in {sandbox_id}", file=sys.stderr)
        return 0
    doc = controller.get_process(sandbox_id, term["id"])
    if doc["signal"]:
        return 128 + doc["signal"]
    return doc["exit_code"] if doc["exit_code"] is not None else 1


async def _attach(conn, sandbox_id: str, terminal_id: str) -> bool:  # noqa: ANN001
    """Relays until the program ends (False) or the detach key (True)."""
    ws = await connect_terminal(conn, sandbox_id, terminal_id)
    loop = asyncio.get_running_loop()
    detach = loop.create_future()
    stdin = sys.stdin.fileno()

    def on_key() -> None:
        data = os.read(stdin, 4096)
        if not data:  # end of a piped stdin: the program goes on to its end
            loop.remove_reader(stdin)
            return
        if DETACH_KEY in data:
            data = data.split(DETACH_KEY, 1)[0]
            if not detach.done():
                detach.set_result(True)
        if data:
            ws.write_message(json.dumps(["stdin", data.decode("utf-8", "surrogateescape")]))

    def on_resize() -> None:
        cols, rows = _size()
        ws.write_message(json.dumps(["set_size", rows, cols, 0, 0]))

    async def relay_output() -> None:
        out = sys.stdout.buffer
        while True:
            message = await ws.read_message()
            if message is None:
                return
            kind, *rest = json.loads(message)
            if kind == "stdout":
                out.write(rest[0].encode("utf-8", "surrogateescape"))
                out.flush()
            elif kind == "disconnect":
                return

    with _raw(stdin):
        loop.add_reader(stdin, on_key)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGWINCH, on_resize)
        output = asyncio.ensure_future(relay_output())
        try:
            await asyncio.wait([output, detach], return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(stdin)
            output.cancel()
            ws.close()
    return detach.done() and not output.done()


def _size() -> tuple[int, int]:
    """This terminal's columns and rows (its own, not $COLUMNS/$LINES)."""
    for stream in (sys.stdin, sys.stdout):
        try:
            return tuple(os.get_terminal_size(stream.fileno()))
        except (OSError, ValueError, AttributeError):
            continue
    return tuple(shutil.get_terminal_size())


@contextlib.contextmanager
def _raw(fd: int):
    """Raw mode while attached (when stdin is a terminal); restored after."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


register("terminal", "an interactive shell inside a sandbox, on this terminal", _terminal_args,
         _terminal)  # fmt: skip
