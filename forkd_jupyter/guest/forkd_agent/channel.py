"""Control frames on fd 3: ``[u32 little-endian length][UTF-8 JSON object]``.

Invariants:

* a frame is written whole, by one loop of ``os.write`` calls under the
  send lock (and, on the main thread, under :meth:`InterruptGate.hold`),
  so frames of the request loop and of the process supervisor never
  interleave or tear;
* the read buffer always starts at a frame boundary; bytes are consumed
  only after a complete frame has been parsed, so an interrupted read loses
  nothing.

Every guest system call is a VM exit, so reads are large and buffered and a
frame goes out in as few writes as the channel accepts.
"""

from __future__ import annotations

import json
import os
import struct
import threading

from .interrupts import InterruptGate

CTL_FD = 3
_LEN = struct.Struct("<I")
_READ_SIZE = 1 << 16
_MAX_READ = 1 << 24  # os.read allocates its whole size up front


class ChannelError(Exception):
    """The host sent something that is not a control frame."""


def encode(msg: dict) -> bytes:
    # Lone surrogates (possible in str values) become JSON \\uXXXX escapes
    # through "backslashreplace", so the body is always valid UTF-8 JSON.
    text = json.dumps(msg, ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    body = text.encode("utf-8", "backslashreplace")
    return _LEN.pack(len(body)) + body


def _jsonable(obj: object) -> object:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


class Channel:
    def __init__(self, gate: InterruptGate, fd: int = CTL_FD) -> None:
        os.fstat(fd)  # fails early when the host gave no control channel
        self.fd = fd
        self.gate = gate
        self._buf = bytearray()
        self._send_lock = threading.Lock()

    def send(self, msg: dict) -> None:
        data = memoryview(encode(msg))
        if threading.current_thread() is not threading.main_thread():
            with self._send_lock:  # other threads never see KeyboardInterrupt
                self._write(data)
            return
        with self.gate.hold(), self._send_lock:
            self._write(data)

    def _write(self, data: memoryview) -> None:
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def recv(self) -> dict | None:
        """The next request, or None when the host closed the channel.
        Meant for idle time: a KeyboardInterrupt here is swallowed."""
        while True:
            msg = self._parse()
            if msg is not None:
                return msg
            try:
                chunk = os.read(self.fd, min(max(_READ_SIZE, self._missing()), _MAX_READ))
            except KeyboardInterrupt:
                continue  # only a foreign SIGINT handler raises while idle
            if not chunk:
                return None
            self._buf += chunk

    def recv_in_request(self) -> dict | None:
        """Like recv, for a running cell (input()): a KeyboardInterrupt
        while waiting reaches the cell."""
        while True:
            msg = self._parse()
            if msg is not None:
                return msg
            chunk = os.read(self.fd, min(max(_READ_SIZE, self._missing()), _MAX_READ))
            if not chunk:
                return None
            self._buf += chunk

    def _missing(self) -> int:
        if len(self._buf) < _LEN.size:
            return 0
        (length,) = _LEN.unpack_from(self._buf)
        return _LEN.size + length - len(self._buf)

    def _parse(self) -> dict | None:
        if len(self._buf) < _LEN.size:
            return None
        (length,) = _LEN.unpack_from(self._buf)
        end = _LEN.size + length
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[_LEN.size : end])
        del self._buf[:end]
        try:
            msg = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ChannelError(f"control frame is not UTF-8 JSON: {e}") from None
        if not isinstance(msg, dict):
            raise ChannelError("control frame is not a JSON object")
        return msg
