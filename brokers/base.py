"""The one broker interface the floor codes against, and the messages that cross it.

Every broker adapter (``brokers.ibkr`` for Interactive Brokers through ib_async, later others)
implements :class:`Broker`. The hot path holds one ``Broker`` and calls it on its critical path,
so the contract is split by cost:

* **Synchronous and cheap** (the order path): :meth:`Broker.place`, :meth:`Broker.cancel`,
  :meth:`Broker.cancel_all`, :meth:`Broker.modify`. Each encodes the request and writes it to
  the broker socket before returning (or holds it in memory while no session is up, to send it
  on reconnect). None of them awaits anything, so a caller on the event loop goes from intake
  to socket write without yielding.
* **Asynchronous** (session and queries): :meth:`Broker.connect`, :meth:`Broker.close`,
  account, order, execution and position queries, market-data subscriptions.

Everything the broker reports arrives as one of the frozen :data:`BrokerEvent` classes
(:mod:`brokers.events`), passed to the handler given to :meth:`Broker.set_event_handler`. The
handler is a plain function, called on the event loop from the socket-read callback: it must not
block; to do I/O (Kafka, Postgres, Temporal) it schedules a task or puts the event on a queue.
Market data (:mod:`brokers.market_data`) reaches the handler of each subscription the same way.

This module holds the interface, its errors and the orders it takes; every name the events and
market-data modules define is importable from here too.

Identity: ``order_ref`` is the command id that created the order. It is the idempotency key
across the floor and is sent to the broker (IB ``orderRef``), so after a reconnect the floor can
tell whether the broker already has an order before sending it again.

Money: prices, cash and commissions are :class:`~decimal.Decimal`, quantities are ``int``.
Prices arrive from the wire as text and are converted with ``Decimal(text)`` (never via a
binary float sum); see each adapter for the exact rule.

Times: ``time`` fields are timezone-aware UTC ``datetime``; latency stamps are
``time.perf_counter_ns()`` integers (``*_ns``), comparable only within one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from brokers.events import (
    BrokerEvent,
    BrokerNotice,
    BrokerOrderStatus,
    CommissionReported,
    EpochReconciled,
    EventHandler,
    Executed,
    OpenOrder,
    OrderAccepted,
    OrderRejected,
    OrderStatusChanged,
    SessionChange,
    SessionChanged,
    SessionRole,
)
from brokers.market_data import DepthLevel, DepthSnapshot, Quote, Subscription, Trade
from trading.commands import OrderType, Side, TimeInForce

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerEvent",
    "BrokerNotice",
    "BrokerOrder",
    "BrokerOrderId",
    "BrokerOrderStatus",
    "CommissionReported",
    "DepthLevel",
    "DepthSnapshot",
    "DuplicateOrderRef",
    "EpochReconciled",
    "EventHandler",
    "Executed",
    "OpenOrder",
    "OrderAccepted",
    "OrderInvalid",
    "OrderRejected",
    "OrderStatusChanged",
    "Placement",
    "Position",
    "Quote",
    "ReadOnlySession",
    "SessionChange",
    "SessionChanged",
    "SessionRole",
    "ClientIdInUse",
    "SourceAddressRefused",
    "Subscription",
    "Trade",
    "UnknownOrderRef",
    "UnknownSymbol",
    "NotConnected",
    "OrderType",
    "Side",
    "TimeInForce",
]


# --- errors ---------------------------------------------------------------------------------


class BrokerError(Exception):
    """Base of every error a broker adapter raises on purpose."""


class OrderInvalid(BrokerError, ValueError):
    """A :class:`BrokerOrder` (or a modify) that cannot be sent: ``field`` names the culprit.

    Raised synchronously by ``place``/``modify`` before anything is written or held."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DuplicateOrderRef(BrokerError):
    """``place`` was called with an ``order_ref`` this session already knows with a *different*
    order. (The same order again is not an error: ``place`` is idempotent per ``order_ref``.)"""


class UnknownOrderRef(BrokerError, KeyError):
    """``cancel``/``modify`` named an ``order_ref`` the broker session has never seen."""


class UnknownSymbol(BrokerError, LookupError):
    """The broker has no contract for this symbol (a market-data subscription or an order)."""


class ReadOnlySession(BrokerError):
    """An order call on a broker connected for market data only: it places, cancels and
    modifies nothing."""


class NotConnected(BrokerError, ConnectionError):
    """A query (not an order) needs a live session and none is up."""


class ClientIdInUse(BrokerError, ConnectionError):
    """The gateway refused the session's client id as in use (IB's error 326): another API
    client holds it, or this process's own earlier session whose end the gateway has not yet
    read (after a crash)."""

    def __init__(self, client_id: int, gateway: str) -> None:
        self.client_id = client_id
        self.gateway = gateway
        super().__init__(
            f"gateway {gateway} refused client id {client_id} as in use: stop the other client "
            f"using it, or give this process another id (FLOOR_IB_CLIENT_ID)"
        )


class SourceAddressRefused(BrokerError, ConnectionError):
    """The gateway closed the connection of a socket bound to ``source_address``: the address
    is not among its trusted IPs (IB Gateway's "Trusted IPs"), or cannot be bound locally."""

    def __init__(self, source_address: str, gateway: str, detail: str) -> None:
        super().__init__(f"gateway {gateway} refused source address {source_address}: {detail}")
        self.source_address = source_address
        self.gateway = gateway
        self.detail = detail


# --- orders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerOrder:
    """One order as the broker should see it, already sized and risk-checked.

    Price fields an ``order_type`` does not use must be ``None`` (``place`` raises
    :class:`OrderInvalid` otherwise), following :mod:`trading.commands`:
    ``MKT`` none; ``LMT`` limit_price; ``STP`` stop_price; ``STP_LMT`` both;
    ``TRAIL`` exactly one of trailing_amount / trailing_percent, stop_price optional (the
    initial stop). Prices are sent to the broker as ``float(price)`` because the TWS wire
    format is decimal text produced from a float; a price with at most 8 fractional digits
    survives that round trip exactly.
    """

    order_ref: str
    """The command id: the idempotency key, sent as IB ``orderRef``."""
    account: str
    symbol: str
    side: Side
    quantity: int
    """Shares, > 0."""
    order_type: OrderType
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    exchange: str = "SMART"
    currency: str = "USD"
    outside_rth: bool = False


@dataclass(frozen=True)
class Placement:
    """What :meth:`Broker.place` did with an order.

    ``sent`` is True when the order was written to a broker socket inside the call; then
    ``write_ns`` is the ``time.perf_counter_ns()`` taken immediately after the socket write
    and ``order_id``/``client_id`` are the broker's per-session ids. (``write_ns`` is 0 if the
    broker's client-side pacing throttle queued the write: IB allows 50 messages/s per client;
    :meth:`Broker.last_write_ns` reports the write once it happened.) ``sent`` is False when no
    session was up and the order is held in memory, to be sent (once) on reconnect; then
    ``write_ns`` is 0 and ``order_id`` is None. ``duplicate`` is True when the order_ref was
    already known and nothing new was written (idempotent resend).
    """

    order_ref: str
    sent: bool
    write_ns: int = 0
    session: str = ""
    """Which gateway session took it, e.g. ``"primary 127.0.0.1:4002"``."""
    client_id: int | None = None
    order_id: int | None = None
    duplicate: bool = False


BrokerOrderId = Placement
"""Older name of :class:`Placement`, kept so code written against it keeps working."""


@dataclass(frozen=True)
class Position:
    account: str
    symbol: str
    quantity: int
    """Signed: negative is short."""
    avg_cost: Decimal


# --- the interface --------------------------------------------------------------------------


@runtime_checkable
class Broker(Protocol):
    """One broker account's connection, with failover and reconnect inside.

    Lifecycle: construct, :meth:`set_event_handler`, ``await connect()``, use, ``await
    close()``. Orders placed before ``connect()`` finishes or while every session is down are
    held and sent once a session is up (the ledger already has them as accepted-not-sent).
    """

    name: str
    """Short adapter name, e.g. ``"ibkr"``."""

    def set_event_handler(self, handler: EventHandler) -> None:
        """Register the single handler for every :data:`BrokerEvent` (replaces any earlier one).

        Called synchronously on the event loop; exceptions it raises are logged and swallowed
        so one bad consumer cannot stop the broker session."""
        ...

    async def connect(self) -> None:
        """Connect the primary (and the hot standby, if configured) and synchronise open
        orders and executions. Raises :class:`SourceAddressRefused` when the gateway refuses
        our source address, ``ConnectionError`` when no gateway can be reached. Emits
        :class:`SessionChanged` ``CONNECTED``."""
        ...

    async def close(self) -> None:
        """Disconnect every session and stop reconnecting. Held orders stay unsent (they are
        in the ledger). Emits ``CLOSED``."""
        ...

    @property
    def connected(self) -> bool:
        """True when orders would be written to a socket now (not held)."""
        ...

    # --- order path: synchronous, no awaits ---------------------------------------------

    def place(self, order: BrokerOrder) -> Placement:
        """Send a new order; returns after the socket write (or after holding it).

        Idempotent per ``order_ref``: placing an order_ref this broker already has (sent,
        held, or found at the broker after a reconnect) writes nothing and returns
        ``Placement(duplicate=True)``. Raises :class:`OrderInvalid` for an order that cannot be
        expressed (wrong prices for its type, quantity <= 0) and :class:`DuplicateOrderRef` if
        the order_ref is known with different order fields."""
        ...

    def cancel(self, order_ref: str) -> int:
        """Request cancellation; returns the ``perf_counter_ns()`` of the socket write (0 when
        nothing was written: held order, or no session up — then the cancel is sent on
        reconnect). The outcome arrives as :class:`OrderStatusChanged`
        (``CANCELLED``) or :class:`OrderRejected` (category ``cancel_refused``). A held order is
        cancelled locally (never sent) with an ``OrderStatusChanged(CANCELLED)``. Raises
        :class:`UnknownOrderRef`."""
        ...

    def cancel_all(self) -> int:
        """Global cancel: every open order of every client on the account (IB
        ``reqGlobalCancel``), plus every held order. Written before returning; this is what
        the circuit breaker calls. Returns the ``perf_counter_ns()`` of the socket write (0 when
        no session is up: then it is sent first thing on reconnect)."""
        ...

    def adopt(
        self,
        order: BrokerOrder,
        filled: int = 0,
        *,
        acknowledged: bool = True,
        listed: OpenOrder | None = None,
        broker_order_id: int | None = None,
        sent_after: datetime | None = None,
    ) -> None:
        """Know an order an earlier process of the floor placed, by its ``order_ref``, so
        :meth:`cancel`, :meth:`modify` and the events of this session reach it. Never sends
        it by itself. Call it before :meth:`connect`; an order_ref already known is left as
        it is. ``filled`` is what the floor has recorded as filled.

        ``acknowledged``: the broker acknowledged it (it may still be working there). The next
        reconciliation binds it to the broker's order if the broker lists it (open or
        completed), or else reports it in :attr:`EpochReconciled.lost`.

        Not ``acknowledged``: ledgered, perhaps written to the broker before the process
        stopped, never heard of. If the broker has it, the next reconciliation binds it and it
        is reported like any order the broker acknowledges; if not, it is held unsent until
        :meth:`place` of the same order sends it or :meth:`cancel` ends it locally.

        ``listed``: the order as :meth:`open_orders` lists it now, for one adopted after
        :meth:`connect` (found at the broker, not in the floor's records): bound to that broker
        order at once when it is this session's client's.

        ``broker_order_id``: the broker's id of the order as the floor last recorded it, for a
        broker that keeps no client order id (Schwab): the order is bound to that id (and, at
        Schwab, followed through the replaces since), not looked for by its fields, which an
        earlier order with the same fields also has. A broker matching by ``order_ref`` (IB)
        ignores it.

        ``sent_after``: when the floor ledgered it (it reached the broker after that, if at
        all): a broker that finds an order without an id by its fields (Schwab) looks only at
        orders entered since, not at an identical one the floor placed and ended before."""
        ...

    def modify(
        self,
        order_ref: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_amount: Decimal | None = None,
        trailing_percent: Decimal | None = None,
    ) -> int:
        """Change a working order in place (same broker order id); fields left None keep their
        value. Returns the ``perf_counter_ns()`` of the socket write (0 if held). A modify of a
        held order changes what will be sent. Raises :class:`UnknownOrderRef`,
        :class:`OrderInvalid` (a price the order type does not use, or the order is done)."""
        ...

    def last_write_ns(self, order_ref: str) -> int:
        """``perf_counter_ns()`` right after the latest socket write for this order (place,
        modify or cancel), 0 if nothing was written yet. Costs one dict lookup."""
        ...

    # --- queries: async --------------------------------------------------------------------

    async def net_liquidation(self, account: str) -> Decimal:
        """The account's net liquidation value as last reported by the broker (the bankroll
        for the Kelly sizer). Raises :class:`NotConnected` if never reported."""
        ...

    async def open_orders(self) -> list[OpenOrder]:
        """Open orders at the broker, asked fresh from the active session."""
        ...

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        """Executions at the broker (optionally only those at or after ``since``), asked
        fresh from the active session; for reconciliation."""
        ...

    async def positions(self) -> list[Position]: ...

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription:
        """Stream L1 for ``symbol``; ``handler`` runs on the event loop for every tick batch.
        Survives failover and reconnect (resubscribed automatically)."""
        ...

    async def subscribe_depth(
        self, symbol: str, handler: Callable[[DepthSnapshot], None], rows: int = 10
    ) -> Subscription:
        """Stream L2 for ``symbol``; ``handler`` gets the full book after every update batch.
        Survives failover and reconnect."""
        ...

    async def subscribe_trades(self, symbol: str, handler: Callable[[Trade], None]) -> Subscription:
        """Stream every trade of ``symbol`` (the tape), one call per trade in the venue's order;
        ``handler`` runs on the event loop and must not block. Only trades from now on; the
        ones made while no session is up are not recovered. Survives failover and reconnect."""
        ...

    async def unsubscribe(self, subscription: Subscription) -> None: ...
