"""Translate a TWS placeOrder into the venue's order, or refuse it with IB's code.

Rules (each refusal names its reason in the error text, as TWS does):
- quantities are whole shares; ``100.0`` from ib_async is 100, ``0.5`` is refused;
- a price field the order type does not use is dropped: ib_async re-sends echoed values such
  as ``auxPrice 0.0`` when it modifies an order;
- combo, conditional, bracket (parentId) and untransmitted orders are refused — the paper
  venue does not model them. What-if orders are validated here like any other and then
  answered by the gateway (:mod:`paper.tws.what_if`) without reaching the venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from paper.tws.incoming import PlaceOrder
from paper.venue import messages as vm

ERR_REJECTED = 201
ERR_UNSUPPORTED_TYPE = 387


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    message: str


def _rejected(reason: str) -> Refusal:
    return Refusal(ERR_REJECTED, f"Order rejected - reason:{reason}")


MAX_QTY = Decimal(10_000_000)
"""Keeps absurd sizes away from the venue; an out-of-range quantity is refused here."""

_USES_LMT = frozenset({"LMT", "STP LMT"})
_USES_AUX = frozenset({"STP", "STP LMT", "TRAIL"})


def to_venue(msg: PlaceOrder, client_id: int) -> vm.PlaceOrder | Refusal:
    if msg.has_combo_legs:
        return _rejected("Combination orders are not supported by the paper venue")
    if msg.has_conditions:
        return _rejected("Conditional orders are not supported by the paper venue")
    if not msg.transmit:
        return _rejected("Orders with transmit=0 are not supported by the paper venue")
    if msg.parent_id:
        return _rejected("Attached (parent/child) orders are not supported by the paper venue")
    if msg.order_type not in vm.ORDER_TYPES:
        return Refusal(
            ERR_UNSUPPORTED_TYPE, "Unsupported order type for this exchange and security type."
        )
    if msg.action not in vm.ACTIONS:
        return _rejected(f"Invalid action {msg.action!r}")
    tif = msg.tif or "DAY"
    if tif not in vm.TIFS:
        return _rejected(f"Invalid time in force {tif!r}")
    qty = msg.total_qty
    if qty is None or qty != qty.to_integral_value() or qty <= 0:
        return _rejected(f"Order quantity must be a positive whole number of shares, not {qty}")
    if qty > MAX_QTY:
        return _rejected(f"Order quantity {qty} is out of range")
    lmt = msg.lmt_price if msg.order_type in _USES_LMT else None
    trailing_percent = msg.trailing_percent if msg.order_type == "TRAIL" else None
    aux = msg.aux_price if msg.order_type in _USES_AUX else None
    if msg.order_type == "TRAIL":
        if trailing_percent is not None and trailing_percent > 0:
            aux = None
        else:
            trailing_percent = None
    trail_stop = msg.trail_stop_price if msg.order_type == "TRAIL" else None
    return vm.PlaceOrder(
        client_id=client_id,
        order_id=msg.order_id,
        order=vm.OrderSpec(
            action=msg.action,
            total_qty=int(qty),
            order_type=msg.order_type,
            lmt_price=lmt,
            aux_price=aux,
            trailing_percent=trailing_percent,
            trail_stop_price=trail_stop,
            tif=tif,
            order_ref=msg.order_ref,
            outside_rth=msg.outside_rth,
        ),
        symbol=msg.contract.symbol if not msg.contract.con_id else "",
        con_id=msg.contract.con_id,
        account=msg.account,
    )
