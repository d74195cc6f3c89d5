"""One API client's connection: handshake state machine, pacing, batched writes.

States: ``HELLO`` (waiting for ``API\\0`` and the version range) -> ``START`` (waiting for
startApi with the client id) -> ``READY`` -> ``CLOSED``. Everything a client sends after the
handshake is decoded here and handed to the hub; everything the hub sends is queued and
written once per event-loop turn, so a burst (a depth batch, an order's openOrder +
orderStatus) costs one write.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from paper.tws import outgoing
from paper.tws.codec import FieldError, FrameDecoder, ProtocolError
from paper.tws.incoming import ClientMessage, StartApi, UnknownMessage, decode
from paper.tws.ports import SessionHost

log = logging.getLogger(__name__)

PACING_LIMIT = 50
"""Messages per second a client may send, as TWS enforces it (error 100 beyond)."""

MAX_UNREAD = 64 * 1024 * 1024
"""A client that leaves this much unread (say, depth it never consumes) is cut off rather
than let the gateway's memory grow for everyone."""

ERR_MAX_RATE = 100
ERR_READING_REQUEST = 320
ERR_PROCESSING = 322
ERR_UNKNOWN_MESSAGE = 505
ERR_CLIENT_ID_IN_USE = 326

_HELLO = re.compile(r"v(\d+)\.\.(\d+)(?: .*)?")


class State(enum.Enum):
    HELLO = "hello"
    START = "start"
    READY = "ready"
    CLOSED = "closed"


class Pacer:
    """Token bucket: ``limit`` messages per second with a burst of ``limit``."""

    __slots__ = ("clock", "limit", "stamp", "tokens")

    def __init__(self, limit: int = PACING_LIMIT, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.tokens = float(limit)
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.limit, self.tokens + (now - self.stamp) * self.limit)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def negotiate(hello: list[str], server_max: int = outgoing.SERVER_VERSION) -> int | None:
    """The server version for a client's ``v<min>..<max>`` hello, or None if none fits."""
    if len(hello) != 1:
        return None
    match = _HELLO.fullmatch(hello[0])
    if match is None:
        return None
    low, high = int(match.group(1)), int(match.group(2))
    version = min(high, server_max)
    if version < max(low, outgoing.MIN_CLIENT_VERSION):
        return None
    return version


class ClientSession(asyncio.Protocol):
    """One client's connection; a :class:`~paper.tws.ports.Client` to the hub it belongs to."""

    def __init__(self, hub: SessionHost) -> None:
        self.hub = hub
        self.state = State.HELLO
        self.decoder = FrameDecoder(expect_prefix=True)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.client_id = -1
        self.server_version = outgoing.SERVER_VERSION
        self.pacer: Pacer | None = Pacer() if hub.pacing else None
        self.frozen = False
        self.pace_api = False
        """The client asked TWS to pace its requests (connect option ``+PACEAPI``): excess
        messages wait their turn instead of being refused with error 100."""
        self._backlog: deque[ClientMessage] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()

    def __repr__(self) -> str:
        return f"<client {self.client_id} from {self.peer}>"

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # ------------------------------------------------------------------ transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but offer the same methods.
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        if not self.hub.admits(self.peer):
            log.warning("refused API client from %s: not a trusted IP", self.peer)
            self.state = State.CLOSED
            self.transport.abort()  # type: ignore[union-attr]
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hub.attach(self)
        frozen_for = self.hub.frozen_for()
        if frozen_for > 0:
            self.freeze(frozen_for)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is not State.CLOSED:
            log.info("%r disconnected%s", self, f": {exc}" if exc else "")
        self.state = State.CLOSED
        self.hub.detach(self)

    def data_received(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            log.warning("%r sent bytes that are not a TWS stream (%s); closing it", self, exc)
            self.close()
            return
        for fields in frames:
            if self.state is State.READY:
                self._on_message(fields)
            elif self.state is State.HELLO:
                self._on_hello(fields)
            elif self.state is State.START:
                self._on_start(fields)
            else:
                return

    # ------------------------------------------------------------------ handshake

    def _on_hello(self, fields: list[str]) -> None:
        version = negotiate(fields)
        if version is None:
            log.warning("%r sent an unusable version range %r; closing it", self, fields[:1])
            self.close()
            return
        self.server_version = version
        self.pace_api = "+PACEAPI" in fields[0].split(" ", 1)[-1]
        stamp = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self.send(outgoing.handshake_reply(version, stamp))
        self.state = State.START

    def _on_start(self, fields: list[str]) -> None:
        try:
            message = decode(fields)
        except (FieldError, UnknownMessage) as exc:
            log.warning("%r: bad startApi (%s); closing it", self, exc)
            self.close()
            return
        if not isinstance(message, StartApi):
            log.warning("%r sent %s before startApi; closing it", self, type(message).__name__)
            self.close()
            return
        self.client_id = message.client_id
        if not self.hub.claim_client_id(self):
            log.warning("%r: client id %d already in use; refusing it", self, message.client_id)
            self.send(
                outgoing.error(
                    -1,
                    ERR_CLIENT_ID_IN_USE,
                    "Unable to connect as the client id is already in use. "
                    "Retry with a unique client id.",
                )
            )
            self.close(flush=True)
            return
        self.state = State.READY
        self.hub.start_api(self)

    # ------------------------------------------------------------------ requests

    def _on_message(self, fields: list[str]) -> None:
        try:
            message: ClientMessage = decode(fields)
        except UnknownMessage as exc:
            log.warning("%r: %s; closing it", self, exc)
            self.send(outgoing.error(-1, ERR_UNKNOWN_MESSAGE, "Fatal Error: Unknown message id."))
            self.close(flush=True)
            return
        except FieldError as exc:
            log.warning("%r: %s", self, exc)
            self.send(
                outgoing.error(
                    _leading_id(fields),
                    ERR_READING_REQUEST,
                    f"Error reading request: {exc}",
                )
            )
            return
        if self._backlog:
            self._backlog.append(message)  # keep order behind messages already waiting
            return
        if self.pacer is not None and not self.pacer.allow():
            if self.pace_api:
                self._backlog.append(message)
                self._loop.call_later(1.0 / self.pacer.limit, self._drain)
                return
            self.send(
                outgoing.error(
                    _message_id(message),
                    ERR_MAX_RATE,
                    "Max rate of messages per second has been exceeded:max=50 rec=51 (1)",
                )
            )
            return
        self._dispatch(message)

    def _dispatch(self, message: ClientMessage) -> None:
        try:
            self.hub.handle(self, message)
        except Exception:  # a bug in one request must not take the connection down
            log.exception("%r: %s failed", self, type(message).__name__)
            self.send(outgoing.error(_message_id(message), ERR_PROCESSING, "Error processing request"))

    def _drain(self) -> None:
        assert self.pacer is not None
        while self._backlog and self.state is State.READY and self.pacer.allow():
            self._dispatch(self._backlog.popleft())
        if self._backlog and self.state is State.READY:
            self._loop.call_later(1.0 / self.pacer.limit, self._drain)

    # ------------------------------------------------------------------ output

    def send(self, frame: bytes) -> None:
        if self.state is State.CLOSED:
            return
        self._out.append(frame)
        if not self._flush_scheduled and not self.frozen:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def send_many(self, frames: Iterable[bytes]) -> None:
        if self.state is State.CLOSED:
            return
        self._out.extend(frames)
        if not self._flush_scheduled and not self.frozen:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.frozen or not self._out or self.transport is None or self.transport.is_closing():
            return
        data = b"".join(self._out)
        self._out.clear()
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > MAX_UNREAD:
            log.warning("%r stopped reading (%d bytes unsent); closing it", self, MAX_UNREAD)
            self.close()

    def close(self, *, flush: bool = False) -> None:
        if flush:
            self.flush()
        self.state = State.CLOSED
        if self.transport is not None:
            self.transport.close()

    def freeze(self, seconds: float) -> None:
        """Keep the socket open but read and write nothing for ``seconds``."""
        if self.transport is None or self.state is State.CLOSED:
            return
        self.frozen = True
        self.transport.pause_reading()
        self._loop.call_later(seconds, self.thaw)

    def thaw(self) -> None:
        if not self.frozen:
            return
        self.frozen = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self.flush()


def _message_id(message: ClientMessage) -> int:
    for attr in ("order_id", "req_id"):
        value = getattr(message, attr, None)
        if isinstance(value, int):
            return value
    return -1


def _leading_id(fields: list[str]) -> int:
    """Best guess at the request/order id of a message that failed to decode."""
    try:
        msg_id = int(fields[0])
        index = 1 if msg_id in (3, 99) or msg_id >= 78 else 2
        return int(fields[index])
    except (ValueError, IndexError):
        return -1
