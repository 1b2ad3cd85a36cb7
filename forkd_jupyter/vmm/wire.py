"""Host-side codec for the guest stream (no I/O; see docs/agent-protocol.md).

Two framings are layered:

* outer frames, written by the VMM onto the host socket:
  ``[u8 channel][u32 LE length][payload]``; channel 1 = guest stdout bytes,
  2 = guest stderr bytes, 3 = bytes the guest wrote to fd 3, 4 = the exit
  record (JSON). Outer frames preserve the order of the guest's writes.
* control frames, carried on channel 3 in both directions:
  ``[u32 LE length][UTF-8 JSON object]``. Channel-3 payloads are arbitrary
  slices of the control stream: a control frame may span several outer
  frames and one outer frame may hold several control frames.

Everything the guest sends is untrusted: decoders bound their buffers and
raise :class:`WireError` on malformed input rather than guessing.
"""

from __future__ import annotations

import json
import struct

CHANNEL_STDOUT = 1
CHANNEL_STDERR = 2
CHANNEL_CTL = 3
CHANNEL_EXIT = 4
STREAM_NAMES = {CHANNEL_STDOUT: "stdout", CHANNEL_STDERR: "stderr"}

_OUTER = struct.Struct("<BI")
_LEN = struct.Struct("<I")

# A display of a large figure or a pull of a big value is one frame; the
# bound only stops a corrupt length prefix from buffering without end.
MAX_FRAME_BYTES = 512 << 20


class WireError(ValueError):
    """The byte stream violates the framing; the stream cannot be resynchronised."""


def encode_frame(obj: dict) -> bytes:
    """One control frame: a u32 little-endian length, then compact UTF-8 JSON."""
    if not isinstance(obj, dict):
        raise TypeError("a control frame carries a JSON object")
    # Lone surrogates in str values become JSON \uXXXX escapes through
    # "backslashreplace": the body is valid UTF-8 and decodes to the same str.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    body = text.encode("utf-8", "backslashreplace")
    if len(body) > 0xFFFFFFFF:
        raise ValueError("control frame too large")
    return _LEN.pack(len(body)) + body


def encode_outer(channel: int, payload: bytes) -> bytes:
    """One outer frame as the VMM writes it (used by tests and tools)."""
    return _OUTER.pack(channel, len(payload)) + payload


class Demux:
    """Splits the VMM's outer stream into ``(channel, payload)`` pairs.

    Invariant: ``_buf`` always starts at an outer-frame boundary. Unknown
    channels are passed through; the caller decides what they mean."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        buf, pos, end = self._buf, 0, len(self._buf)
        while end - pos >= _OUTER.size:
            channel, length = _OUTER.unpack_from(buf, pos)
            if length > self._max:
                raise WireError(f"outer frame of {length} bytes on channel {channel}")
            start = pos + _OUTER.size
            if end - start < length:
                break
            out.append((channel, bytes(buf[start : start + length])))
            pos = start + length
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered while waiting for the rest of a frame."""
        return len(self._buf)


class FrameDecoder:
    """Reassembles control frames from arbitrary slices of the control stream.

    Invariant: ``_buf`` always starts at a control-frame boundary. After a
    :class:`WireError` the decoder is unusable (the framing is lost)."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._broken: WireError | None = None

    def feed(self, data: bytes) -> list[dict]:
        if self._broken is not None:
            raise self._broken
        self._buf += data
        out: list[dict] = []
        buf, pos, end = self._buf, 0, len(self._buf)
        try:
            while end - pos >= _LEN.size:
                (length,) = _LEN.unpack_from(buf, pos)
                if length > self._max:
                    raise WireError(f"control frame of {length} bytes exceeds the limit")
                start = pos + _LEN.size
                if end - start < length:
                    break
                out.append(_decode_body(bytes(buf[start : start + length])))
                pos = start + length
        except WireError as e:
            self._broken = e
            raise
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def _decode_body(body: bytes) -> dict:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise WireError(f"control frame is not UTF-8 JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WireError(f"control frame holds a {type(obj).__name__}, not an object")
    return obj
