"""Trailing-stop arithmetic for the Exit Manager.

A trailing stop protects a position: for a long position it sits ``trail`` below the best
price seen and only ever rises; for a short it sits ``trail`` above and only ever falls. The
trail is an absolute amount or a percentage of the price.

Rounding: a candidate stop is placed on the tick grid *away from the price* (down for a long,
up for a short), so the distance to the price is never less than the trail. The stop moves only
when the candidate beats the current stop by at least ``min_step`` (default one tick), so a
jittering price does not spray the broker with one-tick modifications.

An entry's trailing stop is bounded (:func:`entry_bound`). An entry TRAIL opens a position
when its stop triggers, and it was sized at the stop it was sent with; a stop that later moves
changes the price the position opens at. Each move is therefore capped so that the order, at
its stop, stays what the sizing approved:

* notional (quantity x stop) within Max Trade Size: this binds a SELL entry, whose stop rises
  with the price (a BUY entry's stop only falls, and its notional with it);
* the stop strictly on the entry side of the edge's protective stop (below it for a SELL entry,
  above for a BUY), on the tick grid: a stop that moved past it would open the position already
  through its stop.

A manual entry (no edge) is bounded the same way by its ``stop_loss``; without one its whole
notional is its risk, so the notional cap is the lesser of Max Trade Size and Max Dollar Risk,
and a BUY entry's stop (which only falls) has no protective stop to stay above.

The loss to the edge's stop (Max Dollar Risk) needs no cap of its own: the stop only ever moves
toward the edge's stop, so the loss per share only shrinks. Once at its bound the stop stays
there. An exit's trailing stop (reduce-only) is not bounded: it only ever shrinks a position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.commands import Side


def round_to_tick(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """Snap to a multiple of ``tick`` (up or down); exact Decimal."""
    if tick <= 0:
        raise ValueError(f"tick must be positive, got {tick}")
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return steps * tick


@dataclass(frozen=True)
class TrailingStop:
    position_side: Side
    """BUY for a long position (the stop sells below), SELL for a short (stop buys above)."""
    tick: Decimal
    stop: Decimal
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None
    min_step: Decimal | None = None
    """Smallest improvement that moves the stop; None means one tick."""
    bound: Decimal | None = None
    """How far the stop may go (:func:`entry_bound`): a long's stop never rises above it, a
    short's never falls below it. None: unbounded (an exit's stop)."""

    def __post_init__(self) -> None:
        if (self.trail_amount is None) == (self.trail_percent is None):
            raise ValueError("exactly one of trail_amount, trail_percent is required")
        if self.trail_amount is not None and self.trail_amount <= 0:
            raise ValueError("trail_amount must be positive")
        if self.trail_percent is not None and not 0 < self.trail_percent < 100:
            raise ValueError("trail_percent must be in (0, 100)")

    def candidate(self, price: Decimal) -> Decimal:
        """Where the stop would sit if ``price`` were the best price so far."""
        distance = (
            self.trail_amount if self.trail_amount is not None else price * self.trail_percent / 100  # type: ignore[operator]
        )
        if self.position_side is Side.BUY:
            return round_to_tick(price - distance, self.tick, up=False)
        return round_to_tick(price + distance, self.tick, up=True)

    def on_price(self, price: Decimal) -> TrailingStop | None:
        """The stop moved by this price, or None if it stays (it never moves backward)."""
        step = self.min_step if self.min_step is not None else self.tick
        new = self.candidate(price)
        if self.bound is not None:
            new = min(new, self.bound) if self.position_side is Side.BUY else max(new, self.bound)
        if self.position_side is Side.BUY:
            moved = new - self.stop >= step
        else:
            moved = self.stop - new >= step
        if not moved or new <= 0:
            return None
        return replace(self, stop=new)

    def triggered(self, price: Decimal) -> bool:
        """True when ``price`` has reached the stop."""
        if self.position_side is Side.BUY:
            return price <= self.stop
        return price >= self.stop


def entry_bound(
    order_side: Side, quantity: int, edge_stop: Decimal | None, max_trade_size: Decimal, tick: Decimal
) -> Decimal:
    """The farthest an entry's trailing stop may move (see the module's notes): for a SELL
    entry the highest stop, for a BUY entry the lowest, on the tick grid. ``edge_stop`` is the
    protective stop (None: a manual entry without one; pass the lesser of Max Trade Size and Max
    Dollar Risk as ``max_trade_size`` then)."""
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    if order_side is Side.SELL:
        notional_cap = round_to_tick(max_trade_size / quantity, tick, up=False)
        if edge_stop is None:
            return notional_cap
        below_edge = round_to_tick(edge_stop, tick, up=False)
        if below_edge == edge_stop:
            below_edge -= tick
        return min(notional_cap, below_edge)
    if edge_stop is None:
        return tick  # a BUY entry's stop only falls, and its notional with it
    above_edge = round_to_tick(edge_stop, tick, up=True)
    return above_edge + tick if above_edge == edge_stop else above_edge
