"""Informed traders: they see the hidden value and take liquidity towards it.

The reference price (where liquidity arrives) follows the hidden value with a lag
(:mod:`paper.venue.agents`), so the value is the reference price's next move seen in advance.
They trade against the book, not against the makers' reference quotes: their edge is how far
the value is beyond the book's best ask (they buy) or below its best bid (they sell), zero
inside the spread (:meth:`InformedTraders.edge`). The book follows the reference only as fast
as the makers' orders arrive, so after a move the two can differ by several ticks; an edge
measured against the reference would have them sell below the value into a book still
catching up with it, and their fills would be followed by the price moving their way, not
against the resting orders they took. When the edge ``m`` is at least
``informed_threshold_ticks``, a model event is an informed market order with probability
``informed_fraction * min(1, |m| / informed_scale_ticks)``; its size is exponential with mean
``informed_size`` model orders.

This is the adverse selection of Glosten & Milgrom (1985) and Kyle (1985): a resting order is
more likely to be filled when the price is about to move through it, so passive fills are
followed, on average, by the price moving against them.
"""

from __future__ import annotations

from paper.venue.messages import ASK, BID
from paper.venue.symbols import AgentParams


class InformedTraders:
    __slots__ = ("_fraction", "_threshold", "_scale")

    def __init__(self, params: AgentParams) -> None:
        self._fraction = params.informed_fraction
        self._threshold = params.informed_threshold_ticks
        self._scale = max(params.informed_scale_ticks, 1e-9)

    def intensity(self, mispricing: float) -> float:
        """Probability that the next event is an informed market order."""
        gap = abs(mispricing)
        if gap < self._threshold:
            return 0.0
        return self._fraction * min(1.0, gap / self._scale)

    @staticmethod
    def edge(value: float, bid: int | None, ask: int | None, bid_ref: int, ask_ref: int) -> float:
        """How far the value is beyond the price an informed order would trade at: above the
        book's best ask (positive: buy) or below its best bid (negative: sell); zero inside
        the spread. A side of the book that is empty counts at the makers' quote."""
        if ask is None:
            ask = ask_ref
        if value > ask:
            return value - ask
        if bid is None:
            bid = bid_ref
        if value < bid:
            return value - bid
        return 0.0

    @staticmethod
    def side(mispricing: float) -> int:
        return BID if mispricing > 0 else ASK
