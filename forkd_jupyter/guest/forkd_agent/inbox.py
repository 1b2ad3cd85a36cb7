"""Where frames from the host go.

Until :meth:`Inbox.go_threaded` the agent has one thread and reads fd 3
only when it waits for a request or a cell's ``input()`` reply. Once the
host starts managed processes (op ``proc_enable``), a reader thread owns fd
3 and routes each frame: ``input_reply`` to the running cell, ``proc_*``
to the process supervisor (served while a cell runs), the rest to the
request loop.

Invariants:

* only one thread ever reads fd 3: the main thread before the switch, the
  reader after; the switch happens inside a request, on the main thread,
  so no frame is read twice or lost (the channel's buffer goes with it);
* the main thread waits on queues after the switch, so a SIGINT reaches a
  waiting ``input()`` as before, and is dropped while idle.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from .channel import Channel, ChannelError

_CLOSED = None  # queued once the host closed the channel


class Inbox:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.threaded = False
        self._requests: queue.Queue = queue.Queue()
        self._inputs: queue.Queue = queue.Queue()
        self._to_supervisor: Callable[[dict | None], None] | None = None

    def next_request(self) -> dict | None:
        """The next request; None once the host closed the channel.
        ChannelError for a frame that is not a control frame."""
        if not self.threaded:
            return self.channel.recv()
        while True:
            try:
                item = self._requests.get()
            except KeyboardInterrupt:
                continue  # idle: nothing to interrupt
            if isinstance(item, ChannelError):
                raise item
            return item

    def next_input(self) -> dict | None:
        """The next ``input_reply`` for the running cell (None: channel
        closed); a SIGINT while waiting raises KeyboardInterrupt."""
        if not self.threaded:
            while True:
                msg = self.channel.recv_in_request()
                if msg is None or msg.get("op") == "input_reply":
                    return msg
        return self._inputs.get()

    def go_threaded(self, to_supervisor: Callable[[dict | None], None]) -> None:
        """From now on a reader thread routes frames (called on the main
        thread, inside a request)."""
        if self.threaded:
            return
        self._to_supervisor = to_supervisor
        self.threaded = True
        threading.Thread(target=self._read, name="forkd-inbox", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg = self.channel.recv()
            except ChannelError as e:
                self._requests.put(e)
                continue
            if msg is None:
                self._inputs.put(_CLOSED)
                self._to_supervisor(_CLOSED)
                self._requests.put(_CLOSED)
                return
            op = msg.get("op")
            if op == "input_reply":
                self._inputs.put(msg)
            elif isinstance(op, str) and op.startswith("proc_") and op != "proc_enable":
                self._to_supervisor(msg)
            else:
                self._requests.put(msg)
