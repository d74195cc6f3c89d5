"""Positions and P&L from fills, by the average-cost method.

A position is the signed share count of one symbol in one account (long > 0, short < 0) and
its cost basis: what the open shares cost. A fill that grows the position (or opens it) adds
``qty x price`` to the basis; a fill that shrinks it closes shares at the average cost, and the
difference between the fill's price and that average is realized P&L; a fill that crosses zero
closes the whole position and opens the rest on the other side at the fill's price.
Unrealized P&L is the open shares valued at a mark (the book's mid) less their basis.

Exact: the basis and realized P&L are kept as fractions, because an average cost is a division
(three shares bought for 100.00, 100.00 and 100.01 average 100.00333...), and a running total of
rounded averages drifts. So ``realized + unrealized`` equals, to the last digit, the cash the
fills moved plus the open shares at the mark, however many partial closes there were. Only what
is shown is rounded (:data:`MONEY_PLACES`, :data:`PRICE_PLACES`, half to even), once, at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from trading.commands import Side

MONEY_PLACES = Decimal("0.0001")
"""P&L is shown to a hundredth of a cent."""
PRICE_PLACES = Decimal("0.000001")
"""An average cost is shown to six places (brokers show four to eight)."""


@dataclass(frozen=True)
class PositionFill:
    """One execution as positions need it."""

    account: str
    symbol: str
    side: Side
    qty: int
    price: Decimal

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"fill quantity must be positive, got {self.qty}")
        if not self.price.is_finite() or self.price < 0:
            raise ValueError(f"fill price must be a finite, non-negative decimal, got {self.price}")


@dataclass(frozen=True)
class Position:
    account: str
    symbol: str
    quantity: int = 0
    """Signed: long > 0, short < 0."""
    cost_basis: Fraction = Fraction(0)
    """Signed like ``quantity``: what the open shares cost (a short's is negative: proceeds)."""
    realized_exact: Fraction = Fraction(0)
    fills: int = 0
    """How many fills were applied (a flat position with fills has traded)."""

    def apply(self, fill: PositionFill) -> Position:
        if (fill.account, fill.symbol) != (self.account, self.symbol):
            raise ValueError(f"fill for {fill.account}/{fill.symbol} applied to {self.account}/{self.symbol}")
        signed = fill.side.sign * fill.qty
        price = Fraction(fill.price)
        quantity, basis, realized = self.quantity, self.cost_basis, self.realized_exact
        if quantity == 0 or (quantity > 0) == (signed > 0):
            basis += signed * price
            quantity += signed
        else:
            closed = min(abs(signed), abs(quantity))
            # The closed shares leave at their average cost; what they fetched beyond it is realized.
            closed_basis = basis * closed / abs(quantity)
            direction = 1 if quantity > 0 else -1
            realized += direction * closed * price - closed_basis
            basis -= closed_basis
            quantity += direction * -closed
            opened = abs(signed) - closed
            if opened:
                quantity = fill.side.sign * opened
                basis = quantity * price
        return Position(self.account, self.symbol, quantity, basis, realized, self.fills + 1)

    @property
    def average_cost(self) -> Decimal | None:
        """The open shares' average cost per share (None when flat)."""
        if self.quantity == 0:
            return None
        return shown(self.cost_basis / self.quantity, PRICE_PLACES)

    @property
    def realized(self) -> Decimal:
        return shown(self.realized_exact, MONEY_PLACES)

    def unrealized_exact(self, mark: Decimal) -> Fraction:
        return self.quantity * Fraction(mark) - self.cost_basis

    def unrealized(self, mark: Decimal | None) -> Decimal | None:
        """P&L of the open shares at ``mark``; None without a mark (unless flat: zero)."""
        if self.quantity == 0:
            return Decimal(0).quantize(MONEY_PLACES)
        if mark is None:
            return None
        return shown(self.unrealized_exact(mark), MONEY_PLACES)


@dataclass
class PositionBook:
    """Every position the fills so far make, by (account, symbol)."""

    positions: dict[tuple[str, str], Position] = field(default_factory=dict)

    def apply(self, fill: PositionFill) -> Position:
        key = (fill.account, fill.symbol)
        position = self.positions.get(key) or Position(fill.account, fill.symbol)
        self.positions[key] = position = position.apply(fill)
        return position


def positions_from(fills: Iterable[PositionFill]) -> list[Position]:
    """The positions ``fills`` (in the order they happened) make, by account then symbol."""
    book = PositionBook()
    for fill in fills:
        book.apply(fill)
    return [book.positions[key] for key in sorted(book.positions)]


def shown(value: Fraction, places: Decimal) -> Decimal:
    """``value`` rounded half to even to ``places``, exactly (no binary float on the way)."""
    scaled = value / Fraction(places)
    whole = round(scaled)  # Fraction rounds half to even
    return (Decimal(whole) * places).quantize(places, rounding=ROUND_HALF_EVEN)
