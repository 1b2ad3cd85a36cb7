"""What one request to the guest agent produces, and how it is assembled
from the guest's stream (see docs/agent-protocol.md)."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from ..run_result import GuestError, OutputCallback, RunResult
from .wire import STREAM_NAMES

MessageCallback = Callable[[dict], None]


class _Stream:
    """Incremental UTF-8 text of one output channel. Invariant: ``parts``
    joined is every complete character received since the last clear."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.parts: list[str] = []

    def decode(self, data: bytes, final: bool = False) -> str:
        text = self.decoder.decode(data, final)
        if text:
            self.parts.append(text)
        return text


class RunAccumulator:
    """Collects everything belonging to one request until its ``done``.

    Feed it stream bytes (``feed_stream``) and decoded control messages
    (``feed_message``) in the order the guest produced them. ``on_output``
    gets ``("stdout" | "stderr", text)`` as text arrives; ``on_message`` gets
    display, result and clear_output messages as they arrive. A message
    whose ``id`` is neither this request's nor null is ignored.

    ``clear_output`` is applied as a notebook applies it: what was printed or
    displayed before it is dropped from the result (with ``wait`` the drop
    happens when the next output arrives)."""

    def __init__(
        self,
        request_id: int | None,
        on_output: OutputCallback | None = None,
        on_message: MessageCallback | None = None,
    ) -> None:
        self.request_id = request_id
        self.on_output = on_output
        self.on_message = on_message
        self._streams = {ch: _Stream() for ch in STREAM_NAMES}
        self._displays: list[dict] = []
        self._display_md: list[dict] = []
        self._result: dict | None = None
        self._result_md: dict = {}
        self._clear_pending = False
        self._done: dict | None = None

    @property
    def done(self) -> bool:
        return self._done is not None

    def feed_stream(self, channel: int, data: bytes) -> None:
        stream = self._streams.get(channel)
        if stream is None or self._done is not None:
            return
        self._apply_pending_clear()
        text = stream.decode(data)
        if text and self.on_output is not None:
            self.on_output(STREAM_NAMES[channel], text)

    def feed(self, channel: int, data: bytes) -> None:
        """Alias of :meth:`feed_stream` for ``(channel, bytes)`` pairs."""
        self.feed_stream(channel, data)

    def feed_message(self, msg: dict) -> bool:
        """Consumes one control message; True once this request is done."""
        if self._done is not None:
            return True
        if msg.get("id") not in (self.request_id, None):
            return False
        op = msg.get("op")
        if op == "display":
            self._apply_pending_clear()
            self._displays.append(_as_dict(msg.get("data")))
            self._display_md.append(_as_dict(msg.get("metadata")))
        elif op == "result":
            self._apply_pending_clear()
            self._result = _as_dict(msg.get("data"))
            self._result_md = _as_dict(msg.get("metadata"))
        elif op == "clear_output":
            if msg.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
        elif op == "done":
            self._finish(msg)
            return True
        else:
            return False
        if self.on_message is not None:
            self.on_message(msg)
        return False

    def result(self) -> RunResult:
        if self._done is None:
            raise RuntimeError("the request is not done yet")
        err = self._done.get("error")
        count = self._done.get("execution_count")
        return RunResult(
            stdout="".join(self._streams[1].parts),
            stderr="".join(self._streams[2].parts),
            result=self._result,
            displays=list(self._displays),
            error=GuestError.from_dict(err) if isinstance(err, dict) else None,
            execution_count=count if isinstance(count, int) else None,
            display_metadata=list(self._display_md),
            result_metadata=dict(self._result_md),
        )

    def _finish(self, msg: dict) -> None:
        # Characters split across the last chunk boundary are flushed (as
        # U+FFFD when the guest wrote an incomplete sequence).
        for channel, stream in self._streams.items():
            tail = stream.decode(b"", final=True)
            if tail and self.on_output is not None:
                self.on_output(STREAM_NAMES[channel], tail)
        self._done = msg

    def _apply_pending_clear(self) -> None:
        if self._clear_pending:
            self._clear_pending = False
            self._clear()

    def _clear(self) -> None:
        # The agent flushes whole writes before a frame, so no character
        # straddles a clear; a partial one left over is dropped with the rest.
        self._streams = {ch: _Stream() for ch in STREAM_NAMES}
        self._displays.clear()
        self._display_md.clear()


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
