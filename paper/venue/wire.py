"""Framing of the venue connection: length-prefixed JSON batches over TCP.

A frame is a 4-byte big-endian payload length followed by UTF-8 JSON: a list of *items*, each
``[kind, rid, message]`` with ``kind`` one of ``"q"`` (request), ``"r"`` (reply to request
``rid``) or ``"e"`` (event, ``rid`` 0), and ``message`` as :mod:`paper.venue.codec` encodes it.
Both sides put everything produced in one event-loop turn into one frame, so a burst of depth
changes costs one write and one parse.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from paper.venue.codec import CodecError

REQUEST = "q"
REPLY = "r"
EVENT = "e"

MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_loads = json.loads


def encode_frame(items: list[list[Any]]) -> bytes:
    payload = _dumps(items).encode("ascii")
    return _HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Reassembles frames from arbitrary TCP chunks."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[Any]]:
        """Items of every frame completed by ``data``, in order; :class:`CodecError` on garbage."""
        buf = self._buf
        buf += data
        items: list[list[Any]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = _HEADER.unpack_from(buf, pos)
            if length > MAX_FRAME:
                raise CodecError(f"frame of {length} bytes exceeds {MAX_FRAME}")
            if end - pos - 4 < length:
                break
            try:
                batch = _loads(bytes(buf[pos + 4 : pos + 4 + length]))
            except (ValueError, UnicodeDecodeError) as exc:
                raise CodecError(f"frame is not JSON: {exc}") from exc
            if not isinstance(batch, list):
                raise CodecError("frame is not a list of items")
            for item in batch:
                if not isinstance(item, list) or len(item) != 3:
                    raise CodecError(f"bad item {item!r}")
                items.append(item)
            pos += 4 + length
        if pos:
            del buf[:pos]
        return items
