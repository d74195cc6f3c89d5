"""Schwab's Trader API JSON to and from the broker interface's messages (pure, no I/O).

Orders go out as the JSON schwab-py's ``OrderBuilder`` makes, written here directly so every
price is the exact decimal text (schwab-py's builder truncates a float or Decimal price to two
places with a warning; text passes as it is). Schwab has no client order id: the floor's
``order_ref`` never travels, and an order is known by Schwab's ``orderId``.

Answers are parsed with ``parse_float=Decimal`` (:func:`loads`), so prices stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers.base import BrokerOrder, BrokerOrderStatus, OrderInvalid
from trading.commands import OrderType, Side, TimeInForce

ORDER_TYPES = {
    OrderType.MKT: "MARKET",
    OrderType.LMT: "LIMIT",
    OrderType.STP: "STOP",
    OrderType.STP_LMT: "STOP_LIMIT",
    OrderType.TRAIL: "TRAILING_STOP",
}
FLOOR_TYPES = {v: k for k, v in ORDER_TYPES.items()}
DURATIONS = {
    TimeInForce.DAY: "DAY",
    TimeInForce.GTC: "GOOD_TILL_CANCEL",
    TimeInForce.IOC: "IMMEDIATE_OR_CANCEL",
}

STATUSES: dict[str, BrokerOrderStatus] = {
    "PENDING_ACKNOWLEDGEMENT": BrokerOrderStatus.PENDING_SUBMIT,
    "NEW": BrokerOrderStatus.SUBMITTED,
    "ACCEPTED": BrokerOrderStatus.SUBMITTED,
    "QUEUED": BrokerOrderStatus.SUBMITTED,
    "AWAITING_RELEASE_TIME": BrokerOrderStatus.SUBMITTED,
    "WORKING": BrokerOrderStatus.SUBMITTED,
    "AWAITING_STOP_CONDITION": BrokerOrderStatus.PRE_SUBMITTED,
    "AWAITING_CONDITION": BrokerOrderStatus.PRE_SUBMITTED,
    "AWAITING_PARENT_ORDER": BrokerOrderStatus.PRE_SUBMITTED,
    "PENDING_ACTIVATION": BrokerOrderStatus.PRE_SUBMITTED,
    "AWAITING_MANUAL_REVIEW": BrokerOrderStatus.PRE_SUBMITTED,
    "PENDING_CANCEL": BrokerOrderStatus.PENDING_CANCEL,
    "AWAITING_UR_OUT": BrokerOrderStatus.PENDING_CANCEL,
    "PENDING_REPLACE": BrokerOrderStatus.PENDING_CANCEL,
    "CANCELED": BrokerOrderStatus.CANCELLED,
    "REPLACED": BrokerOrderStatus.CANCELLED,
    "FILLED": BrokerOrderStatus.FILLED,
    "REJECTED": BrokerOrderStatus.INACTIVE,
    "EXPIRED": BrokerOrderStatus.INACTIVE,
}
"""Schwab's order statuses (schwab-py ``Client.Order.Status``) as the floor's. ``REPLACED`` is
done for that order id only: its successor carries the order on (see ``replaced_by``)."""
OPEN_STATUSES = frozenset(s for s, floor in STATUSES.items() if not floor.is_done)


def loads(content: bytes | str) -> Any:
    """JSON with every number that has a fraction as a Decimal (exact prices)."""
    return json.loads(content, parse_float=Decimal)


def _text(price: Decimal) -> str:
    return format(price.normalize(), "f") if price == price.to_integral_value() else format(price, "f")


def instruction(side: Side, position: int, quantity: int) -> str:
    """Schwab wants the position effect in the instruction: a buy while short covers, a sell of
    more than the long position opens a short (the floor's side has no such intent)."""
    if side is Side.BUY:
        return "BUY_TO_COVER" if position < 0 else "BUY"
    return "SELL" if position >= quantity else "SELL_SHORT"


def order_spec(order: BrokerOrder, position: int = 0) -> dict[str, Any]:
    """The JSON body of a place or replace for ``order``; raises :class:`OrderInvalid` for one
    the order type cannot carry."""
    if order.quantity <= 0:
        raise OrderInvalid("quantity", f"must be > 0, got {order.quantity}")
    kind = order.order_type
    needs_limit = kind in (OrderType.LMT, OrderType.STP_LMT)
    needs_stop = kind in (OrderType.STP, OrderType.STP_LMT)
    if needs_limit != (order.limit_price is not None):
        raise OrderInvalid("limit_price", f"{'required' if needs_limit else 'not used'} for {kind}")
    if kind is not OrderType.TRAIL and needs_stop != (order.stop_price is not None):
        raise OrderInvalid("stop_price", f"{'required' if needs_stop else 'not used'} for {kind}")
    trails = (order.trailing_amount is not None) + (order.trailing_percent is not None)
    if kind is OrderType.TRAIL and trails != 1:
        raise OrderInvalid(
            "trailing_amount", "a TRAIL needs exactly one of trailing_amount, trailing_percent"
        )
    if kind is not OrderType.TRAIL and trails:
        raise OrderInvalid("trailing_amount", f"not used for {kind}")
    spec: dict[str, Any] = {
        "session": "SEAMLESS" if order.outside_rth else "NORMAL",
        "duration": DURATIONS[order.tif],
        "orderType": ORDER_TYPES[kind],
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {
                "instruction": instruction(order.side, position, order.quantity),
                "instrument": {"assetType": "EQUITY", "symbol": order.symbol},
                "quantity": order.quantity,
            }
        ],
    }
    for name, price in (("price", order.limit_price), ("stopPrice", order.stop_price)):
        if price is not None:
            if price <= 0:
                raise OrderInvalid(name, f"must be > 0, got {price}")
            spec[name] = _text(price)
    if kind is OrderType.TRAIL:
        # Schwab trails natively (no initial stop field): offset from the last price.
        spec.pop("stopPrice", None)
        percent = order.trailing_percent is not None
        offset = order.trailing_percent if percent else order.trailing_amount
        assert offset is not None
        spec |= {
            "stopPriceLinkBasis": "LAST",
            "stopPriceLinkType": "PERCENT" if percent else "VALUE",
            "stopPriceOffset": _text(offset),
            "stopType": "STANDARD",
        }
    return spec


@dataclass(frozen=True)
class Fill:
    exec_id: str
    quantity: int
    price: Decimal
    time: datetime


@dataclass(frozen=True)
class SchwabOrder:
    """What the floor reads of one order object of ``GET …/orders``."""

    order_id: int
    account: str
    status: str
    symbol: str
    side: Side
    quantity: int
    filled: int
    remaining: int
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    fills: tuple[Fill, ...]
    entered: datetime | None
    replaced_by: int | None = None

    @property
    def floor_status(self) -> BrokerOrderStatus:
        return STATUSES.get(self.status, BrokerOrderStatus.SUBMITTED)

    @property
    def avg_price(self) -> Decimal | None:
        qty = sum(f.quantity for f in self.fills)
        return sum((f.price * f.quantity for f in self.fills), Decimal(0)) / qty if qty else None


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    raw = text.replace("Z", "+00:00")
    if len(raw) >= 5 and raw[-5] in "+-" and raw[-3] != ":":
        raw = f"{raw[:-2]}:{raw[-2:]}"  # Schwab's +0000
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _qty(value: object) -> int:
    return int(Decimal(str(value))) if value is not None else 0


def _price(value: object) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def parse_order(raw: Mapping[str, Any]) -> SchwabOrder:
    """One order object (parsed by :func:`loads`). Executions get the id
    ``"<orderId>.<n>"`` from their place in ``orderActivityCollection`` (Schwab gives REST
    executions no id of their own; the list only grows, so the place is stable)."""
    order_id = int(raw["orderId"])
    legs = raw.get("orderLegCollection") or [{}]
    leg = legs[0]
    side = Side.BUY if str(leg.get("instruction", "BUY")).startswith("BUY") else Side.SELL
    fills: list[Fill] = []
    n = 0
    for activity in raw.get("orderActivityCollection") or ():
        if activity.get("activityType") != "EXECUTION":
            continue
        for execution in activity.get("executionLegs") or ():
            n += 1
            when = parse_time(execution.get("time")) or datetime.now(UTC)
            fills.append(
                Fill(
                    f"{order_id}.{n}", _qty(execution.get("quantity")), Decimal(str(execution["price"])), when
                )
            )
    successors = raw.get("replacingOrderCollection") or ()
    replaced_by = int(successors[-1]["orderId"]) if successors and "orderId" in successors[-1] else None
    quantity = _qty(raw.get("quantity"))
    filled = _qty(raw.get("filledQuantity"))
    return SchwabOrder(
        order_id=order_id,
        account=str(raw.get("accountNumber", "")),
        status=str(raw.get("status", "UNKNOWN")),
        symbol=str((leg.get("instrument") or {}).get("symbol", "")),
        side=side,
        quantity=quantity,
        filled=filled,
        remaining=_qty(raw["remainingQuantity"]) if "remainingQuantity" in raw else quantity - filled,
        order_type=str(raw.get("orderType", "")),
        limit_price=_price(raw.get("price")),
        stop_price=_price(raw.get("stopPrice")),
        fills=tuple(fills),
        entered=parse_time(raw.get("enteredTime")),
        replaced_by=replaced_by,
    )


def matches(order: BrokerOrder, listed: SchwabOrder) -> bool:
    """``listed`` may be ``order`` (placed by a request whose answer never came): Schwab keeps
    no client id, so the fields are all there is to go by."""
    return (
        listed.symbol == order.symbol
        and listed.side is order.side
        and listed.quantity == order.quantity
        and listed.order_type == ORDER_TYPES[order.order_type]
        and listed.limit_price == order.limit_price
        and (order.order_type is OrderType.TRAIL or listed.stop_price == order.stop_price)
    )


def same_order(a: BrokerOrder, b: BrokerOrder) -> bool:
    """Two of the floor's orders Schwab could not tell apart (every field but the order_ref)."""
    return replace(a, order_ref=b.order_ref) == b


def error_text(status: int, content: bytes) -> str:
    """Schwab's ``ServiceError`` (``{"message", "errors"}``) or market data's ``{"errors":
    [{"detail"}]}`` as one line; the raw body when it is neither."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        return f"HTTP {status}: {content[:200]!r}"
    if not isinstance(body, dict):
        return f"HTTP {status}: {body}"
    message = body.get("message") or body.get("error_description") or body.get("error") or ""
    errors = body.get("errors") or []
    parts = [str(e.get("detail", e)) if isinstance(e, dict) else str(e) for e in errors]
    text = "; ".join(p for p in (str(message), *parts) if p)
    return f"HTTP {status}: {text or 'no detail'}"
