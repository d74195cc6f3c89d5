"""The asyncio client a gateway uses to talk to the venue process.

Usage::

    venue = await VenueClient.connect("127.0.0.1", 4100, "primary")
    venue.add_listener(on_event)            # called synchronously, in venue order
    ack = await venue.place_order(PlaceOrder(client_id=1, order_id=7, symbol="AAPL",
                                             order=OrderSpec("BUY", 100, "LMT", Decimal("230.10"))))

One TCP connection per gateway (``127.0.0.1`` only); requests may be issued concurrently and
are answered in the order sent. Events arrive in venue order: listeners registered with
:meth:`VenueClient.add_listener` run synchronously inside the read loop (cheapest path, keep
them short and non-blocking), :meth:`VenueClient.events` yields the same events through a queue.

Ordering guarantees:

- order events, executions and commission reports for one account reach every connected
  gateway in the order the venue produced them; an :class:`ExecutionEvent` is directly followed
  by its :class:`CommissionEvent` and then the :class:`OrderEvent` carrying the new totals;
- the events caused by a request (e.g. the ``Submitted`` :class:`OrderEvent` and any immediate
  fills of a new order) travel in the same frame as its reply, *after* it; listeners therefore
  see them before the awaiting coroutine resumes with the reply;
- depth changes of a symbol carry consecutive ``seq`` numbers starting after the snapshot that
  :meth:`VenueClient.subscribe_depth` returned.

Failures: a refused order is an :class:`OrderReject` reply (not an exception); an unknown
symbol raises :class:`UnknownSymbol` (IB code 200); a malformed request raises
:class:`VenueError` (code 321); a lost connection fails every pending request with
:class:`VenueDisconnected` and ends :meth:`events`. The client does not reconnect by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from paper.venue import codec, wire
from paper.venue.events import VenueEvent
from paper.venue.messages import (
    ERR_NO_SECURITY_DEFINITION,
    AccountSnapshot,
    AccountValuesRequest,
    CancelOrder,
    CancelResult,
    CompletedOrdersRequest,
    ContractInfo,
    ContractList,
    ContractRequest,
    ContractsRequest,
    DepthRequest,
    DepthSnapshot,
    ExecutionFilter,
    ExecutionList,
    ExecutionReport,
    ExecutionsRequest,
    GlobalCancel,
    GlobalCancelResult,
    Hello,
    MarketDataRequest,
    NextId,
    NextIdRequest,
    OpenOrdersRequest,
    OrderAck,
    OrderList,
    OrderReject,
    OrderUpdate,
    PlaceOrder,
    Position,
    PositionList,
    PositionsRequest,
    RequestFailed,
    Tick,
    TimeRequest,
    VenueTime,
    Welcome,
)

log = logging.getLogger(__name__)

Listener = Callable[[VenueEvent], None]
T = TypeVar("T")


class VenueError(Exception):
    """The venue refused a request (IB-style ``code`` and ``message``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class UnknownSymbol(VenueError):
    """No contract with that symbol / conId (IB error 200)."""


class VenueDisconnected(ConnectionError):
    """The venue connection is closed; pending and later requests fail with this."""


class _Protocol(asyncio.Protocol):
    def __init__(self, client: VenueClient) -> None:
        self._client = client
        self._decoder = wire.FrameDecoder()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            items = self._decoder.feed(data)
        except codec.CodecError as exc:
            log.error("venue sent a bad frame: %s", exc)
            self._client._lost(VenueDisconnected(f"bad frame from venue: {exc}"))
            return
        self._client._dispatch(items)

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._lost(VenueDisconnected(f"venue connection lost: {exc or 'closed'}"))


class VenueClient:
    """A gateway's connection to the venue. Create with :meth:`connect`."""

    def __init__(self, gateway_name: str) -> None:
        self.gateway_name = gateway_name
        self.welcome: Welcome | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_rid = 1
        self._outbox: list[list[Any]] = []
        self._flush_scheduled = False
        self._listeners: list[Listener] = []
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ connection

    @classmethod
    async def connect(
        cls, host: str, port: int, gateway_name: str, *, connect_timeout: float = 5.0
    ) -> VenueClient:
        """Connect and introduce this gateway by name (the name control commands address).

        Raises ``OSError`` if nothing listens, ``TimeoutError`` after ``connect_timeout`` seconds.
        """
        client = cls(gateway_name)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            transport, _ = await loop.create_connection(lambda: _Protocol(client), host, port)
            client._transport = transport
            client.welcome = await client._request(Hello(gateway_name), Welcome)
        return client

    @property
    def connected(self) -> bool:
        return not self._closed.done()

    async def close(self) -> None:
        """Close the connection (idempotent); pending requests fail with VenueDisconnected."""
        if self._transport is not None:
            self._flush()
            self._transport.close()
        self._lost(VenueDisconnected("closed by the gateway"))
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the connection is gone (either side closed it)."""
        await asyncio.shield(self._closed)

    # ------------------------------------------------------------------ events

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event, in order; returns a function removing it.

        Exceptions raised by a listener are logged and do not stop delivery.
        """
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def events(self) -> AsyncIterator[VenueEvent]:
        """Every event from now on, until the connection closes (unbounded queue)."""
        queue: asyncio.Queue[VenueEvent | None] = asyncio.Queue()
        remove = self.add_listener(queue.put_nowait)
        closed = self._closed
        closed.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            remove()

    # ------------------------------------------------------------------ requests

    async def contract(self, symbol: str) -> ContractInfo:
        """Contract details by symbol; :class:`UnknownSymbol` if the venue does not list it."""
        return await self._request(ContractRequest(symbol=symbol), ContractInfo)

    async def contract_by_con_id(self, con_id: int) -> ContractInfo:
        """Contract details by IB conId; :class:`UnknownSymbol` if unknown."""
        return await self._request(ContractRequest(con_id=con_id), ContractInfo)

    async def contracts(self) -> tuple[ContractInfo, ...]:
        """Every symbol the venue lists."""
        return (await self._request(ContractsRequest(), ContractList)).contracts

    async def place_order(self, request: PlaceOrder) -> OrderAck | OrderReject:
        """New order, or modify of the open order with the same (client_id, order_id).

        Rejects: 103 reused order id, 104 modify of a filled order, 105 modify changing more
        than price/quantity, 110 price off the tick grid, 200 unknown contract, 201 other
        (reason in the text). Order ids must increase per client id for new orders.
        """
        reply: OrderAck | OrderReject = await self._request(request, (OrderAck, OrderReject))
        return reply

    async def cancel_order(self, client_id: int, order_id: int) -> CancelResult:
        """Cancel; ``result.code`` 202 done, 10147 not found, 10148 not cancellable."""
        return await self._request(CancelOrder(client_id, order_id), CancelResult)

    async def global_cancel(self, account: str = "") -> int:
        """Cancel every open order of the account (all client ids); returns how many."""
        return (await self._request(GlobalCancel(account), GlobalCancelResult)).cancelled

    async def open_orders(self, client_id: int | None = None) -> tuple[OrderUpdate, ...]:
        """Open orders placed by ``client_id``, or all of them for ``None`` (master client)."""
        return (await self._request(OpenOrdersRequest(client_id), OrderList)).orders

    async def completed_orders(self, client_id: int | None = None) -> tuple[OrderUpdate, ...]:
        """Orders that ended since the last reset (Filled/Cancelled/Inactive), oldest first."""
        return (await self._request(CompletedOrdersRequest(client_id), OrderList)).orders

    async def executions(self, filter: ExecutionFilter | None = None) -> tuple[ExecutionReport, ...]:
        """Executions (with their commission reports) matching ``filter``, oldest first."""
        request = ExecutionsRequest(filter or ExecutionFilter())
        return (await self._request(request, ExecutionList)).reports

    async def positions(self, account: str = "") -> tuple[Position, ...]:
        """Every non-flat position (and flat ones that traded this session)."""
        return (await self._request(PositionsRequest(account), PositionList)).positions

    async def account_values(self, account: str = "") -> AccountSnapshot:
        """Account values now (NetLiquidation, TotalCashValue, BuyingPower, ...), marked to mid."""
        return await self._request(AccountValuesRequest(account), AccountSnapshot)

    async def subscribe_ticks(self, symbol: str) -> Tick:
        """Start L1 :class:`TickEvent` s for ``symbol``; returns the current tick."""
        return await self._request(MarketDataRequest(symbol, True), Tick)

    async def unsubscribe_ticks(self, symbol: str) -> None:
        await self._request(MarketDataRequest(symbol, False), Tick)

    async def subscribe_depth(self, symbol: str) -> DepthSnapshot:
        """Start L2 :class:`DepthEvent` s for ``symbol``; returns the full book they follow."""
        return await self._request(DepthRequest(symbol, True), DepthSnapshot)

    async def unsubscribe_depth(self, symbol: str) -> None:
        await self._request(DepthRequest(symbol, False), DepthSnapshot)

    async def next_valid_id(self, client_id: int) -> int:
        """One above the highest order id ``client_id`` has used (never goes backwards)."""
        return (await self._request(NextIdRequest(client_id), NextId)).next_id

    async def current_time_ns(self) -> int:
        """The venue's market clock, ns since the epoch."""
        return (await self._request(TimeRequest(), VenueTime)).time_ns

    async def current_time(self) -> int:
        """The venue's market clock in whole seconds (what TWS ``reqCurrentTime`` returns)."""
        return await self.current_time_ns() // 1_000_000_000

    # ------------------------------------------------------------------ plumbing

    async def _request(self, message: Any, expected: type[T] | tuple[type, ...]) -> T:
        if self._closed.done() or self._transport is None:
            raise VenueDisconnected("not connected to the venue")
        rid = self._next_rid
        self._next_rid += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        item = [wire.REQUEST, rid, codec.encode_message(message)]
        if self._flush_scheduled:
            self._outbox.append(item)
        else:
            # The first request of a loop turn goes out at once (latency); any others issued in
            # the same turn share one frame at the end of it (throughput).
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
            self._transport.write(wire.encode_frame([item]))
        reply = await future
        if isinstance(reply, RequestFailed):
            if reply.code == ERR_NO_SECURITY_DEFINITION:
                raise UnknownSymbol(reply.code, reply.message)
            raise VenueError(reply.code, reply.message)
        if not isinstance(reply, expected):
            raise VenueError(0, f"unexpected reply {type(reply).__name__} to {type(message).__name__}")
        return reply  # type: ignore[return-value]

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox or self._transport is None or self._transport.is_closing():
            return
        items, self._outbox = self._outbox, []
        self._transport.write(wire.encode_frame(items))

    def _dispatch(self, items: list[list[Any]]) -> None:
        for kind, rid, body in items:
            try:
                message = codec.decode_message(body)
            except codec.CodecError as exc:
                log.error("undecodable venue message: %s", exc)
                if kind == wire.REPLY and rid in self._pending:
                    self._pending.pop(rid).set_exception(VenueError(0, str(exc)))
                continue
            if kind == wire.EVENT:
                for listener in tuple(self._listeners):
                    try:
                        listener(message)
                    except Exception:
                        log.exception("venue event listener failed on %s", type(message).__name__)
            elif kind == wire.REPLY:
                future = self._pending.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(message)

    def _lost(self, exc: VenueDisconnected) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
        if not self._closed.done():
            self._closed.set_result(None)
