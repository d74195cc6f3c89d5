"""Momentum traders: they follow the trend of the reference price.

The trend is the reference price less its exponential moving average over
``AgentParams.momentum_memory_events`` model events. A model event is a momentum market order in the
trend's direction with probability ``momentum_fraction * min(1, |trend| / momentum_scale_ticks)``.
Their orders reinforce moves already under way (ABIDES's momentum agents, Byrd, Hybinette &
Balch 2019): runs of same-signed trades, and bursts of volatility after a move.
"""

from __future__ import annotations

import math

from paper.venue.messages import ASK, BID
from paper.venue.symbols import AgentParams


class MomentumTraders:
    __slots__ = ("average", "_weight", "_fraction", "_scale")

    def __init__(self, price_ticks: float, params: AgentParams) -> None:
        self.average = price_ticks
        self._weight = 1.0 - math.exp(-1.0 / max(params.momentum_memory_events, 1e-9))
        self._fraction = params.momentum_fraction
        self._scale = max(params.momentum_scale_ticks, 1e-9)

    def observe(self, reference: float) -> None:
        """One model event passed with the reference price at ``reference``."""
        self.average += (reference - self.average) * self._weight

    def intensity(self, reference: float) -> float:
        """Probability that the next event is a momentum market order."""
        return self._fraction * min(1.0, abs(reference - self.average) / self._scale)

    def side(self, reference: float) -> int:
        return BID if reference > self.average else ASK
