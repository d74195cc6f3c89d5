"""Cash, positions, commissions and P&L of the simulated account, in exact decimals.

Rules (they make ``realized + unrealized == cash change + position value`` hold exactly):

- **Commission** (IB fixed pricing for US stocks): per order, 0.005 USD per share, at least
  1.00 USD, at most 1% of the trade value. An order's cumulative commission after each fill is
  ``C = min(max(1.00, 0.005 * shares), 0.01 * value)`` rounded half-up to cents; each
  execution is charged the increase of ``C``.
- **Cash** moves by ``-price * qty - commission`` for a buy and ``+price * qty - commission``
  for a sell (exact cents).
- **Cost basis** is signed: a long's basis is what was paid including commissions, a short's
  is minus what was received net of commissions; ``avg_cost = basis / position`` (positive).
  An opening trade adds ``price * signed_qty + commission`` to the basis. A closing trade
  removes ``basis * closed / |position|`` (rounded half-even to 8 decimals; the whole basis
  when the position goes flat) and realizes ``-price * signed_closed - commission - removed``.
  A trade that flips the position charges its whole commission to the closing part.
- **Marks**: unrealized P&L is ``position * mark - basis``; the mark is the mid (the last
  trade when one side of the book is empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
PNL_QUANTUM = Decimal("0.00000001")
PER_SHARE = Decimal("0.005")
MINIMUM_PER_ORDER = Decimal("1.00")
MAXIMUM_RATE = Decimal("0.01")
INITIAL_MARGIN_RATE = Decimal("0.25")
LEVERAGE = 4


def order_commission(cum_shares: int, cum_value: Decimal) -> Decimal:
    """Cumulative commission of an order that has filled ``cum_shares`` worth ``cum_value``."""
    if cum_shares == 0:
        return Decimal(0)
    fee = max(MINIMUM_PER_ORDER, PER_SHARE * cum_shares)
    fee = min(fee, MAXIMUM_RATE * cum_value)
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class PositionState:
    qty: int = 0
    basis: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)

    def avg_cost(self) -> Decimal:
        if self.qty == 0:
            return Decimal(0)
        return (self.basis / self.qty).quantize(PNL_QUANTUM, rounding=ROUND_HALF_EVEN)

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.qty * mark - self.basis


@dataclass
class Account:
    account_id: str
    cash: Decimal
    positions: dict[str, PositionState] = field(default_factory=dict)
    realized: Decimal = Decimal(0)
    commissions: Decimal = Decimal(0)

    def apply_fill(self, symbol: str, signed_qty: int, price: Decimal, commission: Decimal) -> Decimal | None:
        """Book one execution; returns the realized P&L, or None if it only opened/added."""
        if signed_qty == 0:
            raise ValueError("empty fill")
        self.cash += -price * signed_qty - commission
        self.commissions += commission
        pos = self.positions.setdefault(symbol, PositionState())
        if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
            pos.basis += price * signed_qty + commission
            pos.qty += signed_qty
            return None
        closing = min(abs(signed_qty), abs(pos.qty))
        signed_closed = closing if signed_qty > 0 else -closing
        if closing == abs(pos.qty):
            removed = pos.basis
        else:
            removed = (pos.basis * closing / abs(pos.qty)).quantize(PNL_QUANTUM, rounding=ROUND_HALF_EVEN)
        realized = -price * signed_closed - commission - removed
        pos.basis -= removed
        pos.qty += signed_closed
        opening = signed_qty - signed_closed
        if opening:
            pos.basis += price * opening
            pos.qty += opening
        pos.realized += realized
        self.realized += realized
        return realized

    def gross_position_value(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((abs(p.qty) * marks[s] for s, p in self.positions.items() if p.qty), Decimal(0))

    def net_liquidation(self, marks: dict[str, Decimal]) -> Decimal:
        return self.cash + sum((p.qty * marks[s] for s, p in self.positions.items() if p.qty), Decimal(0))

    def unrealized(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((p.unrealized(marks[s]) for s, p in self.positions.items() if p.qty), Decimal(0))

    def buying_power(self, marks: dict[str, Decimal]) -> Decimal:
        """Reg T style: four times the funds not tied up by the 25% initial margin."""
        available = self.net_liquidation(marks) - INITIAL_MARGIN_RATE * self.gross_position_value(marks)
        return max(Decimal(0), available) * LEVERAGE

    def values(self, marks: dict[str, Decimal]) -> list[tuple[str, Decimal]]:
        """TWS account keys and their values (USD)."""
        nlv = self.net_liquidation(marks)
        gpv = self.gross_position_value(marks)
        margin = INITIAL_MARGIN_RATE * gpv
        available = nlv - margin
        return [
            ("NetLiquidation", nlv),
            ("TotalCashValue", self.cash),
            ("SettledCash", self.cash),
            ("CashBalance", self.cash),
            ("GrossPositionValue", gpv),
            ("EquityWithLoanValue", nlv),
            ("InitMarginReq", margin),
            ("MaintMarginReq", margin),
            ("AvailableFunds", available),
            ("ExcessLiquidity", available),
            ("BuyingPower", max(Decimal(0), available) * LEVERAGE),
            ("RealizedPnL", self.realized),
            ("UnrealizedPnL", self.unrealized(marks)),
        ]
