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

Everything the broker reports arrives as one of the frozen :data:`BrokerEvent` classes, passed
to the handler given to :meth:`Broker.set_event_handler`. The handler is a plain function,
called on the event loop from the socket-read callback: it must not block; to do I/O
(Kafka, Postgres, Temporal) it schedules a task or puts the event on a queue.

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

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

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


class BrokerOrderStatus(enum.StrEnum):
    """The broker's order status, normalised from IB's status strings."""

    PENDING_SUBMIT = "PendingSubmit"
    """Written to the socket, not yet acknowledged."""
    PRE_SUBMITTED = "PreSubmitted"
    """Accepted, held by the broker until triggered (stops, trailing stops)."""
    SUBMITTED = "Submitted"
    """Accepted and working at the venue."""
    PENDING_CANCEL = "PendingCancel"
    CANCELLED = "Cancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"
    """Rejected or expired by the broker."""
    HELD = "Held"
    """Held by the floor while no session is up; not at the broker yet."""

    @property
    def is_done(self) -> bool:
        return self in (BrokerOrderStatus.CANCELLED, BrokerOrderStatus.FILLED, BrokerOrderStatus.INACTIVE)


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderAccepted:
    """The broker acknowledged the order for the first time in this session (IB ``PreSubmitted``
    or ``Submitted``). Emitted once per order_ref and session epoch, and again with the new
    ``order_id`` when the broker replaced the order by one of a new id (Schwab's replace is a
    cancel and a new order): the floor's ``order_ref`` stays, its broker id follows."""

    order_ref: str
    status: BrokerOrderStatus
    client_id: int
    order_id: int
    perm_id: int
    time: datetime


@dataclass(frozen=True)
class OrderStatusChanged:
    """Any change of an order's status or fill progress as the broker reports it.

    ``avg_fill_price`` is None until something filled. ``filled + remaining`` equals the order
    quantity while the order lives."""

    order_ref: str
    status: BrokerOrderStatus
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    client_id: int
    order_id: int
    perm_id: int
    time: datetime


@dataclass(frozen=True)
class Executed:
    """One fill. ``exec_id`` is the broker's and is unique: consumers dedupe on it (the same
    execution may be reported again after a reconnect, by :meth:`Broker.executions`)."""

    order_ref: str
    exec_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    cum_quantity: int
    avg_price: Decimal
    time: datetime
    perm_id: int
    order_id: int
    client_id: int


@dataclass(frozen=True)
class CommissionReported:
    """The commission of one execution (reported after its :class:`Executed`)."""

    exec_id: str
    order_ref: str
    commission: Decimal
    currency: str
    realized_pnl: Decimal | None
    time: datetime


@dataclass(frozen=True)
class OrderRejected:
    """The broker refused an order, a modify or a cancel.

    ``code`` is the broker's numeric code (IB error code); ``category`` names the set it falls
    in (see ``brokers.ib_codes``, e.g. ``"order_rejected"``, ``"cancel_refused"``,
    ``"modify_refused"``). ``order_still_working`` is True when the refusal concerns a modify
    or cancel and the original order is still live at the broker."""

    order_ref: str
    code: int
    reason: str
    category: str
    order_still_working: bool
    time: datetime


@dataclass(frozen=True)
class BrokerNotice:
    """A broker message that is not about one of our orders (farm status, pacing, market-data
    errors). ``req_id`` is the request it belongs to, -1 for session-wide."""

    code: int
    message: str
    req_id: int
    session: str
    time: datetime
    ops_kind: str | None = None
    """Set when the notice needs a person (e.g. ``schwab.login_required``): the hot path
    records it as an ops event of this kind."""
    severity: str = "info"


class SessionChange(enum.StrEnum):
    CONNECTED = "connected"
    """First connection of this broker object (``connect()``)."""
    DISCONNECTED = "disconnected"
    """The active session went down and no standby could take over: orders are held."""
    RECONNECTED = "reconnected"
    """A session is up again after DISCONNECTED; held orders are being sent."""
    FAILED_OVER = "failed_over"
    """The active session went down and the hot standby took over without a gap."""
    STANDBY_DOWN = "standby_down"
    """The standby session went down (the active one is unaffected); it reconnects by itself."""
    STANDBY_UP = "standby_up"
    CLOSED = "closed"
    """``close()`` was called."""


class SessionRole(enum.StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"


@dataclass(frozen=True)
class SessionChanged:
    """A change of broker connectivity; the hot path forwards these to the BrokerSession
    workflow, which records the epoch and reconciles after every reconnect or failover.

    ``epoch`` increases by one every time the session that carries orders changes (failover,
    reconnect), so the workflow can order the changes and run one reconciliation per epoch.
    ``gateway`` is ``host:port`` of the session concerned (for FAILED_OVER: the new active one;
    ``previous_gateway`` the one that failed)."""

    change: SessionChange
    gateway: str
    role: SessionRole
    cause: str
    epoch: int
    time: datetime
    previous_gateway: str | None = None
    held_orders: int = 0
    """Orders held in memory at the moment of the change (sent on reconnect)."""
    accounts: tuple[str, ...] = ()
    """The accounts this session serves when the floor has more than one broker connection
    (:mod:`brokers.by_account`); empty: every account the floor serves."""


@dataclass(frozen=True)
class OpenOrder:
    """An order the broker reports as open (for reconciliation)."""

    order_ref: str
    account: str
    symbol: str
    side: Side
    quantity: int
    order_type: str
    """The broker's order type string, e.g. ``LMT`` or ``STP LMT``."""
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: BrokerOrderStatus
    filled: int
    remaining: int
    client_id: int
    order_id: int
    perm_id: int


@dataclass(frozen=True)
class EpochReconciled:
    """What the broker listed when the session of epoch ``epoch`` was reconciled, after the
    adapter brought its own orders in line (held orders sent, missed executions reported as
    :class:`Executed`): the snapshot the owner of the ledger compares with its view of every
    order (missed fills of orders the adapter does not know, orders the broker no longer
    has, foreign orders). Emitted once per epoch, before orders flow again."""

    epoch: int
    gateway: str
    open_orders: tuple[OpenOrder, ...]
    """Every client's orders the broker lists as working on the account."""
    executions: tuple[Executed, ...]
    """Every execution the broker reports for this client (today's, at IB)."""
    time: datetime
    lost: tuple[str, ...] = ()
    """The ``order_ref`` of every order the broker had acknowledged and, asked at this epoch,
    lists nowhere (neither open, completed nor executed): it ended while the floor could not
    hear. The adapter never sends it again and does not end it itself; the owner of the ledger
    does, by its rules (:func:`trading.reconciliation.reconcile`, ``gone``)."""
    accounts: tuple[str, ...] = ()
    """The accounts this listing covers (as :attr:`SessionChanged.accounts`); empty: all. The
    orders of other accounts are another connection's to reconcile."""


@dataclass(frozen=True)
class Position:
    account: str
    symbol: str
    quantity: int
    """Signed: negative is short."""
    avg_cost: Decimal


@dataclass(frozen=True)
class Quote:
    """Level 1 after a tick batch. Missing sides are None. ``recv_ns`` is the
    ``time.perf_counter_ns()`` when the socket data carrying the tick arrived."""

    symbol: str
    bid: Decimal | None
    bid_size: int | None
    ask: Decimal | None
    ask_size: int | None
    last: Decimal | None
    last_size: int | None
    time: datetime
    recv_ns: int


@dataclass(frozen=True)
class DepthLevel:
    price: Decimal
    size: int


@dataclass(frozen=True)
class DepthSnapshot:
    """The whole L2 book of a symbol after a depth update batch, best level first."""

    symbol: str
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]
    time: datetime
    recv_ns: int
    gap: bool = False
    """The feed had a gap before this book (the session carrying it changed, the gateway lost
    its market data, or reset the book): updates may have been missed, so whoever kept a copy
    replaces it with this one and tells its own readers."""


@dataclass(frozen=True)
class Trade:
    """One trade on the venue's tape (anyone's, not only ours), in the venue's order."""

    symbol: str
    price: Decimal
    size: int
    time: datetime
    """The venue's time of the trade."""
    venue_volume: int | None = None
    """The symbol's session volume at the venue after this trade, when the broker says
    (IB's RTVolume does): it grows with every trade, so it tells a trade seen twice from a
    new one, and a jump bigger than ``size`` tells trades were missed."""


@dataclass(frozen=True)
class Subscription:
    """Handle of a market-data subscription; pass it to :meth:`Broker.unsubscribe`."""

    kind: str
    """``"quotes"``, ``"depth"`` or ``"trades"``."""
    symbol: str
    key: int = field(default=0)


BrokerEvent = (
    OrderAccepted
    | OrderStatusChanged
    | Executed
    | CommissionReported
    | OrderRejected
    | BrokerNotice
    | SessionChanged
    | EpochReconciled
)
EventHandler = Callable[[BrokerEvent], None]


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
        order at once when it is this session's client's."""
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
