"""TWS API framing and field encoding, both directions.

A frame is a 4-byte big-endian payload length followed by the payload; the payload is text
fields, each terminated by NUL. The client opens with the raw bytes ``API\\0`` before its
first frame. Nothing here does I/O: the decoder is fed bytes and returns field lists, so the
same code serves the asyncio transport, the tests and the fuzzer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from decimal import Decimal

API_PREFIX = b"API\0"
MAX_PAYLOAD = 0xFFFFFF
"""TWS refuses frames above 16 MiB; a length above this is garbage, not a big message."""

_LEN = struct.Struct(">I")

Field = str | int | float | Decimal | bool | None


class ProtocolError(ValueError):
    """Bytes from a client that cannot be a TWS API message; the connection cannot continue."""


class BadPrefix(ProtocolError):
    """The connection did not open with ``API\\0``."""


class FrameTooLarge(ProtocolError):
    """A length prefix beyond MAX_PAYLOAD."""


class MalformedFrame(ProtocolError):
    """A frame whose payload is empty or does not end with the NUL field terminator."""


class FieldError(ValueError):
    """One field of an otherwise well-framed message is missing or has the wrong type.

    The frame boundary is intact, so the session can answer with an error and carry on.
    """

    def __init__(self, msg_id: int, index: int, name: str, value: str | None) -> None:
        self.msg_id = msg_id
        self.index = index
        self.name = name
        self.value = value
        shown = "missing" if value is None else repr(value[:40])
        super().__init__(f"message {msg_id}: field {index} ({name}) {shown}")


def encode_field(value: Field) -> str:
    """Text form of one outgoing field.

    Decimals are written without exponent (``str(Decimal('1E+2'))`` would be ``1E+2``, which
    ib_async parses as a float but the official client's ``int()`` would not). Floats are
    only used for values that are not money (percentages); NaN and infinities become empty.
    """
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return ""
        return format(value, "f")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        return repr(value)
    if "\0" in value:
        raise ValueError("a field may not contain NUL")
    return value


def encode_payload(fields: Iterable[Field]) -> bytes:
    return "".join(encode_field(f) + "\0" for f in fields).encode()


def frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


def encode_frame(fields: Iterable[Field]) -> bytes:
    """One complete outgoing message: length prefix plus NUL-terminated fields."""
    return frame(encode_payload(fields))


def encode_hello(min_version: int, max_version: int, options: str = "") -> bytes:
    """What a client sends first; used by tests that speak the protocol by hand."""
    text = f"v{min_version}..{max_version}" + (f" {options}" if options else "")
    return API_PREFIX + frame(text.encode())


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes, get back every complete frame's fields.

    A partial frame stays buffered until the rest arrives. Raises a ProtocolError subclass
    when the stream cannot be a TWS stream; after that the decoder must not be fed again.
    """

    __slots__ = ("_buf", "_expect_hello", "_expect_prefix", "max_payload")

    def __init__(self, *, expect_prefix: bool = False, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._expect_prefix = expect_prefix
        # The version-range frame after the prefix is bare text: clients send no NUL after it.
        self._expect_hello = expect_prefix
        self.max_payload = max_payload

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[list[str]]:
        buf = self._buf
        buf += data
        if self._expect_prefix:
            if len(buf) < len(API_PREFIX):
                if not API_PREFIX.startswith(bytes(buf)):
                    raise BadPrefix(f"connection opened with {bytes(buf)!r}")
                return []
            if buf[: len(API_PREFIX)] != API_PREFIX:
                raise BadPrefix(f"connection opened with {bytes(buf[:4])!r}")
            del buf[: len(API_PREFIX)]
            self._expect_prefix = False
        out: list[list[str]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self.max_payload:
                raise FrameTooLarge(f"frame length {size} exceeds {self.max_payload}")
            if end - pos - 4 < size:
                break
            payload = bytes(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
            if self._expect_hello:
                self._expect_hello = False
                out.append([payload.rstrip(b"\0").decode("utf-8", "backslashreplace")])
            else:
                out.append(split_payload(payload))
        if pos:
            del buf[:pos]
        return out


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload; it must be non-empty and end with NUL."""
    if not payload or payload[-1] != 0:
        raise MalformedFrame("payload does not end with a NUL field terminator")
    return payload[:-1].decode("utf-8", "backslashreplace").split("\0")


class Fields:
    """Cursor over one incoming message's fields with typed, named reads.

    Every read names the field it expects, so a bad message produces a FieldError that says
    exactly what was wrong. Client floats arrive as Python ``str(float)``; prices are read as
    Decimal straight from that text, so ``150.05`` stays exactly 150.05.
    """

    __slots__ = ("fields", "msg_id", "pos")

    def __init__(self, fields: Sequence[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start
        try:
            self.msg_id = int(fields[0])
        except (ValueError, IndexError):
            raise FieldError(-1, 0, "message id", fields[0] if fields else None) from None

    def _next(self, name: str) -> str:
        if self.pos >= len(self.fields):
            raise FieldError(self.msg_id, self.pos, name, None)
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def remaining(self) -> int:
        return len(self.fields) - self.pos

    def text(self, name: str) -> str:
        return self._next(name)

    def skip(self, count: int, name: str = "ignored") -> None:
        for _ in range(count):
            self._next(name)

    def int(self, name: str, default: int | None = None) -> int:
        raw = self._next(name)
        if raw == "" and default is not None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise FieldError(self.msg_id, self.pos - 1, name, raw) from None

    def bool(self, name: str) -> bool:
        raw = self._next(name)
        if raw in ("", "0"):
            return False
        if raw == "1":
            return True
        raise FieldError(self.msg_id, self.pos - 1, name, raw)

    def decimal(self, name: str) -> Decimal | None:
        """A number, or None when empty or one of the 'unset' sentinels."""
        raw = self._next(name)
        if raw == "" or raw in _INFINITE:
            return None
        try:
            value = Decimal(raw)
        except ArithmeticError:
            raise FieldError(self.msg_id, self.pos - 1, name, raw) from None
        if not value.is_finite() or abs(value) >= UNSET_THRESHOLD:
            return None
        return value


_INFINITE = frozenset({"Infinite", "Infinity", "inf"})
UNSET_THRESHOLD = Decimal("1e300")
"""ib_async's UNSET_DOUBLE is float max; anything this large means 'not set'."""
