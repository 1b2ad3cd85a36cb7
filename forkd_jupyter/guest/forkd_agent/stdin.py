"""``input()`` and ``getpass.getpass()`` in a cell: the prompt goes to the
host as an ``input_request`` frame of the running request, and the cell
waits for the host's ``input_reply`` (``{"op": "input_reply", "value":
str or null}``; null means end of input: EOFError).

Invariant: the reply is taken from the inbox (inbox.py): the running cell
is the only reader of replies, so no request is consumed by mistake; a
SIGINT while waiting raises KeyboardInterrupt in the cell.

Code that replaced ``sys.stdin`` (a file, a StringIO) reads it as in plain
Python: ``input()`` is the interpreter's own then."""

from __future__ import annotations

import builtins
import getpass
import sys

from .emitter import Emitter
from .inbox import Inbox


class StdinBridge:
    def __init__(self, inbox: Inbox, emitter: Emitter) -> None:
        self.inbox, self.emitter = inbox, emitter

    def install(self) -> None:
        self._own_input = builtins.input
        self._stdin = getattr(sys, "stdin", None)
        builtins.input = self.input
        getpass.getpass = self.getpass

    def getpass(self, prompt: str = "Password: ", stream: object = None) -> str:
        return self.ask(str(prompt), password=True)

    def input(self, *args: object) -> str:
        """builtins.input's signature and errors, the prompt sent to the host."""
        if len(args) > 1:
            raise TypeError(f"input expected at most 1 argument, got {len(args)}")
        if getattr(sys, "stdin", None) is not self._stdin:
            return self._own_input(*args)  # the code's own stdin, not the notebook's
        return self.ask(str(args[0]) if args else "", password=False)

    def ask(self, prompt: str, password: bool) -> str:
        self.emitter.emit("input_request", {"prompt": prompt, "password": password})
        msg = self.inbox.next_input()
        if msg is None:
            raise EOFError("the host closed the control channel")
        value = msg.get("value")
        if not isinstance(value, str):
            raise EOFError("no input (end of input)")
        return value
