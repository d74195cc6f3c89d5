"""The socket under ib_async: bound to a source address, timestamping every write.

ib_async's ``Connection`` opens its socket with ``loop.create_connection(host, port)`` and has no
option for a local address; :class:`BoundConnection` replaces it (one per ``IB`` instance, see
:func:`install`) so every broker socket leaves from the configured source address, the way IB
Gateway's "Trusted IPs" expect. It also records, for the order path, the
``time.perf_counter_ns()`` right after each socket write of a placeOrder / cancelOrder
message, and feeds the heartbeat (:mod:`brokers.ib_liveness`): every placeOrder, cancelOrder
and reqCurrentTime written is a probe, every byte received an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ib_async import IB
from ib_async.connection import Connection

from brokers.ib_internals import move_socket_handlers
from brokers.ib_liveness import Liveness, LivenessRules

_PLACE = b"3\x00"
_CANCEL = b"4\x00"
_CURRENT_TIME = b"49\x00"

OrderWriteHook = Callable[[int, int], None]
"""Called with (order_id, write_ns) after a placeOrder or cancelOrder frame hit the socket."""


class BoundConnection(Connection):
    def __init__(self, source_address: str | None, rules: LivenessRules | None = None) -> None:
        super().__init__()
        self.source_address = source_address
        self.last_write_ns = 0
        self.last_recv = time.monotonic()
        self.last_recv_ns = 0
        self.on_order_write: OrderWriteHook | None = None
        self.liveness = Liveness(rules or LivenessRules(), self.last_recv)
        self.probed = asyncio.Event()
        """Set on every probe written, so the heartbeat's watch times its answer."""

    async def connectAsync(self, host: str, port: int) -> None:  # noqa: N802 - ib_async's name
        if self.transport:
            self.disconnect()
            await self.disconnected
        self.reset()
        loop = asyncio.get_running_loop()
        local = (self.source_address, 0) if self.source_address else None
        self.transport, _ = await loop.create_connection(lambda: self, host, port, local_addr=local)
        self.last_recv = time.monotonic()
        self.liveness.received(self.last_recv)

    def sendMsg(self, msg: bytes) -> None:  # noqa: N802 - ib_async's name
        transport = self.transport
        if transport is None:
            return
        transport.write(msg)
        now = time.perf_counter_ns()
        self.last_write_ns = now
        self.numBytesSent += len(msg)
        self.numMsgSent += 1
        # msg = 4-byte length + "3\0<orderId>\0..." or "4\0<version>\0<orderId>\0..."
        head = msg[4:6]
        if head == _PLACE or head == _CANCEL or msg[4:7] == _CURRENT_TIME:
            self.liveness.probed(time.monotonic())
            self.probed.set()
        hook = self.on_order_write
        if hook is not None:
            if head == _PLACE:
                hook(int(msg[6 : msg.index(b"\x00", 6)]), now)
            elif head == _CANCEL:
                start = msg.index(b"\x00", 6) + 1
                hook(int(msg[start : msg.index(b"\x00", start)]), now)

    def data_received(self, data: bytes) -> None:
        self.last_recv_ns = time.perf_counter_ns()
        self.last_recv = time.monotonic()
        self.liveness.received(self.last_recv)
        super().data_received(data)


def install(ib: IB, source_address: str | None, rules: LivenessRules | None = None) -> BoundConnection:
    """Swap ``ib``'s connection for a :class:`BoundConnection` (before connecting)."""
    client = ib.client
    old: Connection = client.conn
    conn = BoundConnection(source_address, rules)
    move_socket_handlers(client, old, conn)
    client.conn = conn
    return conn
