"""Informed traders: they see the hidden value and take liquidity towards it.

The reference price (where liquidity arrives) follows the hidden value with a lag
(:mod:`paper.venue.agents`), so the value is the reference price's next move seen in advance.
When the mispricing ``m = value - quote centre`` is at least ``informed_threshold_ticks``, a
model event is an informed market order with probability
``informed_fraction * min(1, |m| / informed_scale_ticks)``, buying if the value is above and
selling if below; its size is exponential with mean ``informed_size`` model orders.

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
    def side(mispricing: float) -> int:
        return BID if mispricing > 0 else ASK
