"""Schwab order JSON to the paper venue's order and back.

In: the body of ``POST`` / ``PUT .../orders`` as schwab-py's builders make it (prices as
strings or numbers, one EQUITY leg, SINGLE strategy), checked and turned into a venue
:class:`~paper.venue.messages.OrderSpec`. Every refusal is a 400 ``ServiceError`` naming the
field and what would be accepted. Out: the ``Order`` object ``GET .../orders`` returns.

Mapping: MARKET/LIMIT/STOP/STOP_LIMIT are the venue's MKT/LMT/STP/STP LMT; TRAILING_STOP is the
venue's TRAIL, trailing by the last price (``stopPriceLinkBasis`` LAST or absent) by an amount
(``stopPriceLinkType`` VALUE) or a percentage (PERCENT). Durations DAY, GOOD_TILL_CANCEL and
IMMEDIATE_OR_CANCEL are the venue's DAY, GTC and IOC; the venue has no fill-or-kill, so
FILL_OR_KILL is refused rather than approximated. BUY and BUY_TO_COVER buy, SELL and
SELL_SHORT sell. A session other than NORMAL lets the order work outside regular hours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from paper.schwab_api.errors import ServiceError, bad_request
from paper.venue.messages import OrderSpec

ORDER_TYPES = {
    "MARKET": "MKT",
    "LIMIT": "LMT",
    "STOP": "STP",
    "STOP_LIMIT": "STP LMT",
    "TRAILING_STOP": "TRAIL",
}
DURATIONS = {"DAY": "DAY", "GOOD_TILL_CANCEL": "GTC", "IMMEDIATE_OR_CANCEL": "IOC"}
INSTRUCTIONS = {"BUY": "BUY", "BUY_TO_COVER": "BUY", "SELL": "SELL", "SELL_SHORT": "SELL"}
SESSIONS = frozenset({"NORMAL", "AM", "PM", "SEAMLESS"})
NEEDS_PRICE = frozenset({"LIMIT", "STOP_LIMIT"})
NEEDS_STOP = frozenset({"STOP", "STOP_LIMIT"})
TRAIL_LINK_TYPES = frozenset({"VALUE", "PERCENT"})
TRAIL_BASES = frozenset({"LAST"})
ECHOED = (
    "session", "duration", "orderType", "complexOrderStrategyType", "orderStrategyType",
    "stopPriceLinkBasis", "stopPriceLinkType", "stopType", "taxLotMethod",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    """A checked order request: what the venue gets, and what ``GET`` echoes back."""

    symbol: str
    instruction: str
    quantity: int
    spec: OrderSpec
    echo: dict[str, Any]
    """The request's own fields (strings as sent, prices as numbers) for the order object."""


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad_request("Invalid order", f"{field} must be a number or a numeric string, not {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise bad_request("Invalid order", f"{field} {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise bad_request("Invalid order", f"{field} must be above zero, not {value!r}")
    return number


def _on_tick(price: Decimal, tick: Decimal, field: str, symbol: str) -> Decimal:
    if price % tick != 0:
        raise bad_request("Invalid order", f"{field} {price} is not a multiple of {symbol}'s tick {tick}")
    return price


def _choice(order: Mapping[str, Any], field: str, allowed: Any, default: str | None = None) -> str:
    value = order.get(field, default)
    if value not in allowed:
        raise bad_request("Invalid order", f"{field} {value!r} is not one of {', '.join(sorted(allowed))}")
    return str(value)


def parse_order(body: bytes, ticks: Mapping[str, Decimal]) -> ParsedOrder:
    """Check an order request; ``ticks`` maps every tradable symbol to its tick size."""
    try:
        order = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("Invalid JSON in the request body", str(exc)) from None
    if not isinstance(order, dict):
        raise bad_request("Invalid order", "the body must be a JSON object (an Order)")
    strategy = order.get("orderStrategyType", "SINGLE")
    if strategy != "SINGLE":
        raise bad_request("Invalid order", f"orderStrategyType {strategy!r}: only SINGLE orders are accepted")
    order_type = _choice(order, "orderType", ORDER_TYPES)
    duration = _choice(order, "duration", {*DURATIONS, "FILL_OR_KILL"}, "DAY")
    if duration == "FILL_OR_KILL":
        raise bad_request("Invalid order", "duration FILL_OR_KILL is not offered by the paper venue; use "
                          "IMMEDIATE_OR_CANCEL")  # fmt: skip
    session = _choice(order, "session", SESSIONS, "NORMAL")
    legs = order.get("orderLegCollection")
    if not isinstance(legs, list) or len(legs) != 1 or not isinstance(legs[0], dict):
        raise bad_request("Invalid order", "orderLegCollection must hold exactly one leg")
    leg = legs[0]
    instruction = _choice(leg, "instruction", INSTRUCTIONS)
    instrument = leg.get("instrument")
    if not isinstance(instrument, dict) or instrument.get("assetType") != "EQUITY":
        raise bad_request(
            "Invalid order", 'the leg\'s instrument must be {"assetType": "EQUITY", "symbol": ...}'
        )
    symbol = str(instrument.get("symbol", "")).upper()
    if symbol not in ticks:
        raise bad_request(
            "Invalid order", f"symbol {symbol!r} is not traded here; known: {', '.join(sorted(ticks))}"
        )
    quantity = leg.get("quantity")
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise bad_request(
            "Invalid order", f"quantity must be a whole number of shares above zero, not {quantity!r}"
        )
    tick = ticks[symbol]
    echo: dict[str, Any] = {k: order[k] for k in ECHOED if k in order}
    echo.update(session=session, duration=duration, orderType=order_type, orderStrategyType="SINGLE")
    echo.setdefault("complexOrderStrategyType", "NONE")
    lmt = aux = percent = None
    if order_type in NEEDS_PRICE:
        if "price" not in order:
            raise bad_request("Invalid order", f"a {order_type} order needs price")
        lmt = _on_tick(_decimal(order["price"], "price"), tick, "price", symbol)
        echo["price"] = float(lmt)
    elif "price" in order:
        raise bad_request("Invalid order", f"a {order_type} order takes no price")
    if order_type in NEEDS_STOP:
        if "stopPrice" not in order:
            raise bad_request("Invalid order", f"a {order_type} order needs stopPrice")
        aux = _on_tick(_decimal(order["stopPrice"], "stopPrice"), tick, "stopPrice", symbol)
        echo["stopPrice"] = float(aux)
    elif "stopPrice" in order:
        raise bad_request("Invalid order", f"a {order_type} order takes no stopPrice")
    if order_type == "TRAILING_STOP":
        basis = _choice(order, "stopPriceLinkBasis", TRAIL_BASES, "LAST")
        link = _choice(order, "stopPriceLinkType", TRAIL_LINK_TYPES)
        if "stopPriceOffset" not in order:
            raise bad_request("Invalid order", "a TRAILING_STOP order needs stopPriceOffset")
        offset = _decimal(order["stopPriceOffset"], "stopPriceOffset")
        if link == "VALUE":
            aux = _on_tick(offset, tick, "stopPriceOffset", symbol)
        else:
            if offset >= 100:
                raise bad_request("Invalid order", f"stopPriceOffset {offset} percent must be below 100")
            percent = offset
        echo.update(stopPriceLinkBasis=basis, stopPriceLinkType=link, stopPriceOffset=float(offset))
    spec = OrderSpec(
        action=INSTRUCTIONS[instruction],
        total_qty=quantity,
        order_type=ORDER_TYPES[order_type],
        lmt_price=lmt,
        aux_price=aux,
        trailing_percent=percent,
        tif=DURATIONS[duration],
        outside_rth=session != "NORMAL",
    )
    return ParsedOrder(symbol, instruction, quantity, spec, echo)


def schwab_time(epoch_s: float) -> str:
    """Schwab's timestamp form, ``2026-01-05T14:30:01+0000`` (UTC)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_schwab_time(text: str, field: str) -> float:
    """An ISO-8601 time as schwab-py sends it (``2026-01-05T14:30:00Z``, also ``.000Z`` or
    ``+0000``); a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise bad_request(
            "Invalid request", f"{field} {text!r} is not an ISO-8601 time such as 2026-01-05T14:30:00.000Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def account_number_json(number: str) -> int | str:
    """Schwab types ``accountNumber`` in an order as an integer; a paper number with letters
    stays a string."""
    return int(number) if number.isdigit() else number


def not_cancelable(order_id: int, status: str) -> ServiceError:
    return bad_request("Order not cancelable", f"order {order_id} is {status}; only a working order can be "
                       "cancelled or replaced")  # fmt: skip
