"""What-if orders: the margin and commission an order would cost, without placing it.

TWS answers ``whatIf=1`` with an openOrder carrying the account's margin before, the change
and after, and the commission. The figures follow the paper venue's own account rules
(:mod:`paper.venue.account`): initial and maintenance margin are ``INITIAL_MARGIN_RATE`` of
the gross position value at the mark (the mid; the last trade or the close when a side is
empty), and the commission is the venue's fixed-rate schedule on the order's value at its
limit (or stop) price, at the mark for market orders. Equity changes by minus the commission
(the trade itself is at the mark). Money is Decimal, rounded half-up to cents for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from paper.venue.account import INITIAL_MARGIN_RATE, order_commission
from paper.venue.messages import OrderSpec, Tick

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class WhatIf:
    init_margin_before: Decimal
    maint_margin_before: Decimal
    equity_before: Decimal
    init_margin_change: Decimal
    maint_margin_change: Decimal
    equity_change: Decimal
    commission: Decimal
    currency: str = "USD"

    def fields(self) -> list[str]:
        """openOrder fields 87-100: margins before/change/after, commission, min, max,
        currency, warning text."""
        money = [
            self.init_margin_before, self.maint_margin_before, self.equity_before,
            self.init_margin_change, self.maint_margin_change, self.equity_change,
            self.init_margin_before + self.init_margin_change,
            self.maint_margin_before + self.maint_margin_change,
            self.equity_before + self.equity_change,
        ]  # fmt: skip
        text = [format(v.quantize(CENT, rounding=ROUND_HALF_UP), "f") for v in money]
        commission = format(self.commission, "f")
        return [*text, commission, commission, commission, self.currency, ""]


def mark_of(tick: Tick) -> Decimal:
    if tick.bid is not None and tick.ask is not None:
        return (tick.bid + tick.ask) / 2
    return tick.last if tick.last is not None else tick.close


def estimate(
    spec: OrderSpec, tick: Tick, position: int, account_values: dict[str, Decimal]
) -> WhatIf:
    mark = mark_of(tick)
    price = spec.lmt_price if spec.order_type in ("LMT", "STP LMT") else None
    if price is None and spec.order_type == "STP":
        price = spec.aux_price
    price = price if price is not None else mark
    signed = spec.total_qty if spec.action == "BUY" else -spec.total_qty
    gross_change = (abs(position + signed) - abs(position)) * mark
    margin_change = INITIAL_MARGIN_RATE * gross_change
    commission = order_commission(spec.total_qty, spec.total_qty * price)
    return WhatIf(
        init_margin_before=account_values.get("InitMarginReq", Decimal(0)),
        maint_margin_before=account_values.get("MaintMarginReq", Decimal(0)),
        equity_before=account_values.get("EquityWithLoanValue", Decimal(0)),
        init_margin_change=margin_change,
        maint_margin_change=margin_change,
        equity_change=-commission,
        commission=commission,
    )
