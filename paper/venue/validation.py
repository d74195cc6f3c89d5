"""Order validation: what a new order or a modify must satisfy before the venue takes it,
and the buying-power check.

Each check is a pure function of its arguments; a refusal raises :class:`OrderRefused` with
IB's error code and text, and the venue then changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from paper.venue.messages import (
    ACTIONS,
    ERR_MODIFY_FILLED,
    ERR_MODIFY_MISMATCH,
    ERR_ORDER_REJECTED,
    ERR_PRICE_INCREMENT,
    ORDER_TYPES,
    TIFS,
    OrderSpec,
    PlaceOrder,
)
from paper.venue.state import WorkingOrder

NO_DEFINITION = "No security definition has been found for the request"


class OrderRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rejected(reason: str) -> OrderRefused:
    """IB's 201, "Order rejected - reason:..."."""
    return OrderRefused(ERR_ORDER_REJECTED, f"Order rejected - reason:{reason}")


def check_order(spec: OrderSpec, tick: Decimal, lot: int) -> None:
    """Refuse an order the venue cannot work for a symbol of ``tick`` and ``lot`` size."""
    for value in (spec.lmt_price, spec.aux_price, spec.trailing_percent, spec.trail_stop_price):
        if value is not None and not value.is_finite():
            raise rejected(f"Invalid price {value}")
    if spec.action not in ACTIONS:
        raise rejected(f"Invalid action {spec.action!r}")
    if spec.order_type not in ORDER_TYPES:
        raise rejected(f"Unsupported order type {spec.order_type!r}")
    if spec.tif not in TIFS:
        raise rejected(f"Unsupported time in force {spec.tif!r}")
    if spec.total_qty <= 0 or spec.total_qty % lot:
        raise rejected(f"Invalid order quantity {spec.total_qty} (lot size {lot})")
    needs_limit = spec.order_type in ("LMT", "STP LMT")
    needs_aux = spec.order_type in ("STP", "STP LMT")
    if needs_limit and (spec.lmt_price is None or spec.lmt_price <= 0):
        raise rejected("A limit price is required")
    if needs_aux and (spec.aux_price is None or spec.aux_price <= 0):
        raise rejected("A stop price is required")
    if spec.order_type == "TRAIL":
        if spec.trailing_percent is not None:
            if not 0 < spec.trailing_percent < 100:
                raise rejected("Trailing percent must be between 0 and 100")
        elif spec.aux_price is None or spec.aux_price <= 0:
            raise rejected("A trailing amount or percent is required")
    prices: Iterable[Decimal | None] = (
        spec.lmt_price if needs_limit else None,
        spec.aux_price if spec.order_type != "TRAIL" or spec.trailing_percent is None else None,
        spec.trail_stop_price,
    )
    for price in prices:
        if price is None:
            continue
        if not price.is_finite() or price <= 0 or price % tick != 0:
            raise OrderRefused(
                ERR_PRICE_INCREMENT,
                f"The price does not conform to the minimum price variation ({tick}).",
            )


def check_modify(wo: WorkingOrder, req: PlaceOrder) -> None:
    """Refuse a modify of ``wo``: only an open order's price and quantity may change, and
    never to a quantity at or below what has filled."""
    if wo.status == "Filled":
        raise OrderRefused(ERR_MODIFY_FILLED, "Unable to modify this order as it is already filled")
    if not wo.is_open:
        raise rejected(f"Order is no longer active ({wo.status})")
    new = req.order
    old = wo.spec
    s = wo.sym
    other_symbol = req.symbol and req.symbol.upper() != s.symbol
    if other_symbol or (req.con_id and req.con_id != s.contract.con_id):
        raise OrderRefused(ERR_MODIFY_MISMATCH, "Order being modified does not match original order")
    if new.action != old.action or new.order_type != old.order_type:
        raise OrderRefused(ERR_MODIFY_MISMATCH, "Order being modified does not match original order")
    check_order(new, s.tick, s.lot)
    if new.total_qty <= wo.filled:
        raise rejected(f"Quantity {new.total_qty} not above filled {wo.filled}")


def check_buying_power(spec: OrderSpec, mark: Decimal, power: Decimal) -> None:
    """Refuse an order worth more than ``power``: its limit (or stop) price times its size,
    or the symbol's ``mark`` for a market or trailing order."""
    reference = spec.lmt_price or spec.aux_price if spec.order_type != "TRAIL" else None
    value = spec.total_qty * (reference if reference is not None else mark)
    if value > power:
        raise rejected(f"Insufficient buying power ({value} > {power:.2f})")
