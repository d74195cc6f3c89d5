"""Translation between the floor's broker messages and ib_async's objects (the codec layer).

Rounding rules:

* Outbound prices go to ib_async as ``Decimal`` in plain notation; ib_async writes a Decimal
  field with ``str()``, so the gateway receives exactly the digits the floor decided (no binary
  float on the way out).
* Inbound prices arrive as Python floats parsed by ib_async from the gateway's decimal text.
  :func:`price` converts with ``Decimal(repr(x))``: ``repr`` gives the shortest text that
  round-trips, which is the gateway's own text for any price with at most 15 significant digits.
* Inbound quantities are floats holding whole shares; :func:`shares` rounds to the nearest int.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

from ib_async import Contract, Order, Stock, Trade
from ib_async.objects import Fill
from ib_async.util import UNSET_DOUBLE

from brokers.base import BrokerOrder, BrokerOrderStatus, Executed, OpenOrder, OrderInvalid, OrderType, Side

IB_ORDER_TYPE = {
    OrderType.MKT: "MKT",
    OrderType.LMT: "LMT",
    OrderType.STP: "STP",
    OrderType.STP_LMT: "STP LMT",
    OrderType.TRAIL: "TRAIL",
}

# order type -> (required price fields, allowed price fields)
_PRICES: dict[OrderType, tuple[frozenset[str], frozenset[str]]] = {
    OrderType.MKT: (frozenset(), frozenset()),
    OrderType.LMT: (frozenset({"limit_price"}), frozenset({"limit_price"})),
    OrderType.STP: (frozenset({"stop_price"}), frozenset({"stop_price"})),
    OrderType.STP_LMT: (frozenset({"limit_price", "stop_price"}), frozenset({"limit_price", "stop_price"})),
    OrderType.TRAIL: (frozenset(), frozenset({"stop_price", "trailing_amount", "trailing_percent"})),
}
_PRICE_FIELDS = ("limit_price", "stop_price", "trailing_amount", "trailing_percent")

_STATUS = {s.value: s for s in BrokerOrderStatus}
_STATUS["ApiPending"] = BrokerOrderStatus.PENDING_SUBMIT
_STATUS["ApiCancelled"] = BrokerOrderStatus.CANCELLED
_STATUS["ValidationError"] = BrokerOrderStatus.SUBMITTED


def validate(order: BrokerOrder) -> None:
    """Raise :class:`OrderInvalid` naming the first field that makes ``order`` unsendable."""
    if not order.order_ref or len(order.order_ref) > 128:
        raise OrderInvalid("order_ref", "must be 1-128 characters")
    if not order.symbol:
        raise OrderInvalid("symbol", "required")
    if type(order.quantity) is not int or order.quantity <= 0:
        raise OrderInvalid("quantity", f"must be a positive int, got {order.quantity!r}")
    try:
        side = Side(order.side)
        order_type = OrderType(order.order_type)
    except ValueError as exc:
        raise OrderInvalid("side/order_type", str(exc)) from None
    del side
    required, allowed = _PRICES[order_type]
    for name in _PRICE_FIELDS:
        value = getattr(order, name)
        if value is None:
            if name in required:
                raise OrderInvalid(name, f"required by order type {order_type.value}")
            continue
        if name not in allowed:
            raise OrderInvalid(name, f"not used by order type {order_type.value}")
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise OrderInvalid(name, f"must be a positive finite Decimal, got {value!r}")
    if order_type is OrderType.TRAIL and (order.trailing_amount is None) == (order.trailing_percent is None):
        raise OrderInvalid("trailing_amount", "TRAIL needs exactly one of trailing_amount, trailing_percent")


def plain(value: Decimal) -> Decimal:
    """``value`` with a non-positive exponent, so ``str()`` prints plain notation."""
    return value if value.as_tuple().exponent <= 0 else value.quantize(Decimal(1))  # type: ignore[operator]


def contract_for(order: BrokerOrder) -> Contract:
    return Stock(order.symbol, order.exchange, order.currency)


def ib_order(order: BrokerOrder, order_id: int) -> Order:
    """A fresh ib_async ``Order`` for ``order`` (validated beforehand) under ``order_id``."""
    out = Order(
        orderId=order_id,
        action=str(order.side),
        totalQuantity=order.quantity,  # an int prints as "100"
        orderType=IB_ORDER_TYPE[OrderType(order.order_type)],
        tif=str(order.tif),
        account=order.account,
        orderRef=order.order_ref,
        outsideRth=order.outside_rth,
    )
    if order.order_type is OrderType.TRAIL:
        if order.trailing_amount is not None:
            out.auxPrice = plain(order.trailing_amount)
        if order.trailing_percent is not None:
            out.trailingPercent = plain(order.trailing_percent)
        if order.stop_price is not None:
            out.trailStopPrice = plain(order.stop_price)
    else:
        if order.limit_price is not None:
            out.lmtPrice = plain(order.limit_price)
        if order.stop_price is not None:
            out.auxPrice = plain(order.stop_price)
    return out


def status(text: str) -> BrokerOrderStatus:
    """IB status string -> :class:`BrokerOrderStatus` (unknown strings count as working)."""
    return _STATUS.get(text, BrokerOrderStatus.SUBMITTED)


def price(value: float | Decimal | None) -> Decimal | None:
    """An inbound price, or None for unset/NaN/non-positive (IB's "no price")."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if math.isnan(value) or value == UNSET_DOUBLE or value <= 0 or math.isinf(value):
        return None
    return Decimal(repr(value))


def money(value: float) -> Decimal:
    """An inbound amount that may be zero or negative (commission, P&L)."""
    if math.isnan(value) or value == UNSET_DOUBLE or math.isinf(value):
        return Decimal(0)
    return Decimal(repr(value))


def shares(value: float | Decimal | None) -> int:
    if value is None or (isinstance(value, float) and (math.isnan(value) or value == UNSET_DOUBLE)):
        return 0
    return int(round(value))


def side_of_execution(text: str) -> Side:
    """IB execution side ``BOT``/``SLD`` (or an order action) -> :class:`Side`."""
    return Side.BUY if text in ("BOT", "BUY") else Side.SELL


def utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def executed(fill: Fill) -> Executed:
    """One of ib_async's fills as the floor's :class:`Executed`."""
    ex = fill.execution
    return Executed(
        order_ref=ex.orderRef,
        exec_id=ex.execId,
        account=ex.acctNumber,
        symbol=fill.contract.symbol,
        side=side_of_execution(ex.side),
        quantity=shares(ex.shares),
        price=price(ex.price) or Decimal(0),
        cum_quantity=shares(ex.cumQty),
        avg_price=price(ex.avgPrice) or Decimal(0),
        time=utc(ex.time),
        perm_id=ex.permId,
        order_id=ex.orderId,
        client_id=ex.clientId,
    )


def open_order(trade: Trade) -> OpenOrder:
    """One of ib_async's trades as the floor's :class:`OpenOrder`."""
    o, st = trade.order, trade.orderStatus
    return OpenOrder(
        order_ref=o.orderRef,
        account=o.account,
        symbol=trade.contract.symbol,
        side=side_of_execution(o.action),
        quantity=shares(o.totalQuantity),
        order_type=o.orderType,
        limit_price=price(o.lmtPrice),
        stop_price=price(o.auxPrice),
        status=status(st.status),
        filled=shares(st.filled),
        remaining=shares(st.remaining),
        client_id=o.clientId,
        order_id=o.orderId,
        perm_id=o.permId,
    )


def working_orders(trades: list[Trade]) -> list[OpenOrder]:
    """The working orders in an open-orders reply: one per order (live openOrder pushes that
    arrive during the request land in the same list), none that already ended (a report that
    crossed its own cancel or fill)."""
    latest = {(t.order.clientId, t.order.orderId, t.order.permId): t for t in trades}
    return [o for o in map(open_order, latest.values()) if not o.status.is_done]
