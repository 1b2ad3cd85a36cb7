"""Frames that belong to the request being served.

Invariant: before any frame leaves, everything the cell wrote to
``sys.stdout`` / ``sys.stderr`` has reached fds 1 and 2, so the host sees
output and frames in the order the cell produced them."""

from __future__ import annotations

import sys

from .channel import Channel


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a stream the user replaced or closed
            pass


class Emitter:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.request_id: int | None = None

    def emit(self, op: str, fields: dict) -> None:
        flush_std_streams()
        self.channel.send({"op": op, "id": self.request_id, **fields})
