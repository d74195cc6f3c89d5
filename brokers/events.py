"""What a broker reports: the frozen :data:`BrokerEvent` classes an adapter passes to the one
handler given to :meth:`brokers.base.Broker.set_event_handler`, and the order statuses and
session changes they carry.

The handler is a plain function, called on the event loop from the socket-read callback: it must
not block. ``order_ref`` is the command id that created the order; ``time`` fields are
timezone-aware UTC; prices and money are :class:`~decimal.Decimal`, quantities ``int``
(:mod:`brokers.base` says why).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.commands import Side

__all__ = [
    "BrokerEvent",
    "BrokerNotice",
    "BrokerOrderStatus",
    "CommissionReported",
    "EpochReconciled",
    "EventHandler",
    "Executed",
    "OpenOrder",
    "OrderAccepted",
    "OrderRejected",
    "OrderStatusChanged",
    "SessionChange",
    "SessionChanged",
    "SessionRole",
]


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
    execution may be reported again after a reconnect, by :meth:`~brokers.base.Broker.executions`)."""

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
