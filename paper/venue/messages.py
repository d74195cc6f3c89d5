"""Everything that crosses the venue connection, as frozen dataclasses.

A gateway talks to the venue through :class:`paper.venue.client.VenueClient`; the client sends
*requests* and receives their *replies*, and the venue pushes *events* (order updates, fills,
market data, account changes, control instructions addressed to one gateway), which
:mod:`paper.venue.events` holds.

Units and rounding, everywhere on this connection:

- prices are ``Decimal`` on the symbol's tick grid (tick 0.01 by default, so two decimals);
- quantities are ``int`` shares (lot size 1 by default);
- money (cash, commission, P&L, account values) is ``Decimal``: cash and commissions are exact
  cents; average costs and P&L carry up to 8 decimals (ROUND_HALF_EVEN), see
  :mod:`paper.venue.account`;
- times are ``int`` nanoseconds since the Unix epoch on the venue's *market clock* (real time,
  optionally scaled, see ``python -m paper.venue --time-scale``).

Order actions are IB's ``"BUY"``/``"SELL"``; execution sides are IB's ``"BOT"``/``"SLD"``;
order types ``"MKT" | "LMT" | "STP" | "STP LMT" | "TRAIL"``; time in force
``"DAY" | "GTC" | "IOC"``; order statuses ``"PreSubmitted" | "Submitted" | "Cancelled" |
"Filled" | "Inactive"``. Depth sides follow TWS ``updateMktDepth``: ``0`` = ask, ``1`` = bid.

Fields may be *appended* to these classes in later versions (always with defaults); nothing is
removed or reordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

PROTOCOL_VERSION = 1

ASK = 0
BID = 1

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
TIFS = frozenset({"DAY", "GTC", "IOC"})
ACTIONS = frozenset({"BUY", "SELL"})
ACTIVE_STATUSES = frozenset({"PreSubmitted", "Submitted"})
DONE_STATUSES = frozenset({"Cancelled", "Filled", "Inactive"})

# --- IB error codes the venue produces (named sets drive the gateway's error messages) -------

ERR_DUPLICATE_ORDER_ID = 103
"""A new order reused an order id at or below the highest that client id has used."""
ERR_MODIFY_FILLED = 104
"""Modify of an order that is already filled."""
ERR_MODIFY_MISMATCH = 105
"""Modify that changes something other than price or quantity (symbol, action, type)."""
ERR_PRICE_INCREMENT = 110
"""Price not on the symbol's tick grid."""
ERR_NO_SECURITY_DEFINITION = 200
"""Unknown symbol or conId."""
ERR_ORDER_REJECTED = 201
"""Order rejected - reason: ... (bad quantity, missing price, unknown account, buying power)."""
CODE_ORDER_CANCELLED = 202
"""Order cancelled (a successful cancel reports this code with the cancelled order)."""
ERR_CANCEL_NOT_FOUND = 10147
"""OrderId that needs to be cancelled is not found."""
ERR_CANCEL_NOT_CANCELLABLE = 10148
"""OrderId that needs to be cancelled cannot be cancelled (already filled/cancelled)."""
ERR_BAD_REQUEST = 321
"""Error validating request (malformed request on the venue connection)."""

ORDER_REJECT_CODES = frozenset(
    {
        ERR_DUPLICATE_ORDER_ID,
        ERR_MODIFY_FILLED,
        ERR_MODIFY_MISMATCH,
        ERR_PRICE_INCREMENT,
        ERR_NO_SECURITY_DEFINITION,
        ERR_ORDER_REJECTED,
    }
)
CANCEL_FAILURE_CODES = frozenset({ERR_CANCEL_NOT_FOUND, ERR_CANCEL_NOT_CANCELLABLE})


# =============================================================================================
# Shared records
# =============================================================================================


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """A tradable symbol. ``exchange`` is the routing exchange ("SMART")."""

    symbol: str
    con_id: int
    exchange: str
    primary_exchange: str
    currency: str
    tick_size: Decimal
    lot_size: int
    long_name: str
    sec_type: str = "STK"


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What a client asked for (the order "snapshot" of TWS ``openOrder``).

    For ``TRAIL`` orders ``aux_price`` is the trailing *amount* (IB's convention) unless
    ``trailing_percent`` is set; ``trail_stop_price`` is the initial stop (the venue computes
    it from the last price when absent). For ``STP`` and ``STP LMT`` ``aux_price`` is the stop
    price; ``lmt_price`` is the limit for ``LMT`` and ``STP LMT``.
    """

    action: str
    total_qty: int
    order_type: str
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    trailing_percent: Decimal | None = None
    trail_stop_price: Decimal | None = None
    tif: str = "DAY"
    order_ref: str = ""
    outside_rth: bool = False


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """State of one order after a change; the gateway turns it into openOrder + orderStatus.

    ``order`` reflects the latest accepted modification; for a triggered/moved ``TRAIL`` the
    current stop is in ``order.trail_stop_price``. ``why_held`` is "" unless the venue holds
    the order. ``last_fill_price`` is ``None`` until the first fill.
    """

    account: str
    client_id: int
    order_id: int
    perm_id: int
    symbol: str
    con_id: int
    order: OrderSpec
    status: str
    filled: int
    remaining: int
    avg_fill_price: Decimal | None
    last_fill_price: Decimal | None
    time_ns: int
    why_held: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of one of our orders. ``exec_id`` is unique for the venue's lifetime."""

    exec_id: str
    perm_id: int
    client_id: int
    order_id: int
    account: str
    symbol: str
    con_id: int
    side: str
    shares: int
    price: Decimal
    time_ns: int
    cum_qty: int
    avg_price: Decimal
    order_ref: str
    exchange: str = "ISLAND"
    liquidity: int = 0
    """IB ``lastLiquidity``: 1 added, 2 removed."""


@dataclass(frozen=True, slots=True)
class CommissionReport:
    """Commission for one execution; ``realized_pnl`` is ``None`` for an opening trade."""

    exec_id: str
    commission: Decimal
    currency: str
    realized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    execution: Execution
    commission: CommissionReport


@dataclass(frozen=True, slots=True)
class Position:
    """``avg_cost`` includes commissions, per share; ``market_price`` is the mid (last if none)."""

    account: str
    symbol: str
    con_id: int
    position: int
    avg_cost: Decimal
    market_price: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One TWS account value (``key`` such as NetLiquidation; ``value`` as TWS text)."""

    key: str
    value: str
    currency: str


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    account: str
    values: tuple[AccountValue, ...]
    time_ns: int


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    size: int


@dataclass(frozen=True, slots=True)
class LevelChange:
    """The aggregate size at one price changed; ``size == 0`` means the level is gone.

    ``seq`` increases by one for every change of that symbol's book; a gap means lost data
    (re-subscribe to get a fresh snapshot).
    """

    seq: int
    side: int
    price: Decimal
    size: int


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The full book of one symbol after change ``seq``: bids best (highest) first, asks best
    (lowest) first. Positional TWS rows are indexes into these lists."""

    symbol: str
    seq: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time_ns: int


@dataclass(frozen=True, slots=True)
class Tick:
    """L1 snapshot of one symbol. Prices ``None`` when that side is empty / nothing traded."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: Decimal
    time_ns: int


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """IB ``ExecutionFilter``: ``None``/"" fields match everything; ``since_ns`` inclusive."""

    client_id: int | None = None
    account: str = ""
    since_ns: int | None = None
    symbol: str = ""
    side: str = ""


@dataclass(frozen=True, slots=True)
class Print:
    """One trade on a symbol's tape. ``seq`` counts the symbol's prints since the venue started
    (or was reset); ``volume`` is the symbol's session volume after this print and ``vwap`` the
    session's volume-weighted average price (both start again at a session close)."""

    seq: int
    price: Decimal
    size: int
    time_ns: int
    volume: int
    vwap: Decimal


# =============================================================================================
# Requests (gateway -> venue) and their replies
# =============================================================================================


@dataclass(frozen=True, slots=True)
class Hello:
    gateway: str
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Welcome:
    accounts: tuple[str, ...]
    seed: int
    time_scale: float
    time_ns: int
    protocol: int = PROTOCOL_VERSION
    sub_accounts: tuple[str, ...] = ()
    """Accounts no gateway serves (see ``VenueConfig.sub_accounts``): a connection that trades
    for one names it in each order."""


@dataclass(frozen=True, slots=True)
class ContractRequest:
    symbol: str = ""
    con_id: int = 0


@dataclass(frozen=True, slots=True)
class ContractsRequest:
    pass


@dataclass(frozen=True, slots=True)
class ContractList:
    contracts: tuple[ContractInfo, ...]


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """New order, or modify of the open order with the same (client_id, order_id).

    ``symbol`` or ``con_id`` names the contract. ``account`` "" means the default account.
    A modify may change only prices (lmt/aux/trailing) and ``total_qty`` (and tif/order_ref/
    outside_rth); a price change or size increase loses queue priority, a size decrease keeps
    it.
    """

    client_id: int
    order_id: int
    order: OrderSpec
    symbol: str = ""
    con_id: int = 0
    account: str = ""


@dataclass(frozen=True, slots=True)
class OrderAck:
    """Accepted. ``update`` is the order's state right after acceptance (it may already be
    partly or fully filled); the same state is also broadcast as an :class:`OrderEvent`."""

    perm_id: int
    update: OrderUpdate


@dataclass(frozen=True, slots=True)
class OrderReject:
    """Refused with an IB error code (see ``ORDER_REJECT_CODES``); nothing changed at the
    venue (a refused modify leaves the original order working)."""

    client_id: int
    order_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_id: int
    order_id: int


@dataclass(frozen=True, slots=True)
class CancelResult:
    """``code`` 202 on success (``update`` is the Cancelled state); 10147 / 10148 otherwise
    (``update`` is the order's unchanged state for 10148, ``None`` for 10147)."""

    client_id: int
    order_id: int
    code: int
    message: str
    update: OrderUpdate | None

    @property
    def ok(self) -> bool:
        return self.code == CODE_ORDER_CANCELLED


@dataclass(frozen=True, slots=True)
class GlobalCancel:
    account: str = ""


@dataclass(frozen=True, slots=True)
class GlobalCancelResult:
    cancelled: int


@dataclass(frozen=True, slots=True)
class OpenOrdersRequest:
    """``client_id`` None: every open order of the account (the master client's view)."""

    client_id: int | None = None


@dataclass(frozen=True, slots=True)
class OrderList:
    orders: tuple[OrderUpdate, ...]


@dataclass(frozen=True, slots=True)
class CompletedOrdersRequest:
    """Orders that ended (Filled, Cancelled, Inactive) since the last reset, oldest first, for
    ``client_id`` or all of them for ``None`` (TWS ``reqCompletedOrders``)."""

    client_id: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutionsRequest:
    filter: ExecutionFilter = field(default_factory=ExecutionFilter)


@dataclass(frozen=True, slots=True)
class ExecutionList:
    reports: tuple[ExecutionReport, ...]


@dataclass(frozen=True, slots=True)
class PositionsRequest:
    account: str = ""


@dataclass(frozen=True, slots=True)
class PositionList:
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class AccountValuesRequest:
    account: str = ""


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    """Subscribe (``subscribe=True``) or unsubscribe L1 for ``symbol`` on this connection.
    Idempotent; the reply is the current :class:`Tick`."""

    symbol: str
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class DepthRequest:
    """Subscribe/unsubscribe L2 for ``symbol`` on this connection. Idempotent; the reply to a
    subscribe is the full :class:`DepthSnapshot` (to an unsubscribe, too, for symmetry)."""

    symbol: str
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class NextIdRequest:
    client_id: int


@dataclass(frozen=True, slots=True)
class NextId:
    """One above the highest order id ``client_id`` ever used at this venue (at least 1)."""

    client_id: int
    next_id: int


@dataclass(frozen=True, slots=True)
class TimeRequest:
    pass


@dataclass(frozen=True, slots=True)
class VenueTime:
    time_ns: int


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A request the venue could not serve (unknown symbol: 200; malformed: 321)."""

    code: int
    message: str


Request = (
    Hello
    | ContractRequest
    | ContractsRequest
    | PlaceOrder
    | CancelOrder
    | GlobalCancel
    | OpenOrdersRequest
    | CompletedOrdersRequest
    | ExecutionsRequest
    | PositionsRequest
    | AccountValuesRequest
    | MarketDataRequest
    | DepthRequest
    | NextIdRequest
    | TimeRequest
)

Reply = (
    Welcome
    | ContractInfo
    | ContractList
    | OrderAck
    | OrderReject
    | CancelResult
    | GlobalCancelResult
    | OrderList
    | ExecutionList
    | PositionList
    | AccountSnapshot
    | Tick
    | DepthSnapshot
    | NextId
    | VenueTime
    | RequestFailed
)
