"""Market makers: where the model's limit orders arrive, and how that reacts to being hit.

Liquidity arrives, as in the zero-intelligence model (:mod:`paper.venue.flow`), at power-law
distances behind a pair of reference quotes. Here those quotes belong to market makers who
remember what was taken from them:

- **impact**: a taker of ``q`` shares moves the reference price by
  ``impact_ticks * sqrt(q / order_size)`` in its direction (the square-root law of impact,
  Bouchaud et al. 2018, "Trades, Quotes and Prices"); the agent model pulls the
  reference back towards the hidden value, so an uninformed taker's impact fades;
- **widening**: the quotes' width grows by ``widen_ticks`` per order size taken (up to
  ``max_widen_ticks``), so a touch that was eaten is refilled further out;
- **skew**: the quotes shift by ``skew_ticks`` per order size taken, away from the side that
  was hit (a maker who just bought quotes lower to sell it on).

Widening and skew decay exponentially over ``maker_memory_events`` model events.
"""

from __future__ import annotations

import math

from paper.venue.messages import BID
from paper.venue.symbols import AgentParams


class MarketMakers:
    __slots__ = ("widen", "skew", "_params", "_order_size", "_spread", "_keep")

    def __init__(self, params: AgentParams, order_size: int, spread_ticks: int) -> None:
        self.widen = 0.0
        self.skew = 0.0
        self._params = params
        self._order_size = max(1, order_size)
        self._spread = spread_ticks
        self._keep = math.exp(-1.0 / max(params.maker_memory_events, 1e-9))

    def decay(self) -> None:
        """One model event passed."""
        self.widen *= self._keep
        self.skew *= self._keep

    def hit(self, taker_side: int, qty: int) -> float:
        """Record a taker of ``qty`` on ``taker_side``; returns the reference price's move."""
        p = self._params
        x = qty / self._order_size
        sign = 1.0 if taker_side == BID else -1.0
        self.widen = min(p.max_widen_ticks, self.widen + p.widen_ticks * x)
        self.skew += sign * p.skew_ticks * x
        return sign * p.impact_ticks * math.sqrt(x)

    def quotes(self, reference: float) -> tuple[int, int]:
        """The makers' bid and ask (ticks) around ``reference``."""
        centre = reference + self.skew
        half = (self._spread + self.widen) / 2
        bid = round(centre - half)
        ask = max(bid + self._spread, round(centre + half))
        return bid, ask

    def reset(self) -> None:
        self.widen = 0.0
        self.skew = 0.0
