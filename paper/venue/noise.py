"""Noise traders who split their orders: the signs of their market orders have long memory.

Each noise trader works a *meta-order*: a random side kept for a Pareto-distributed number of
child market orders, ``P(L >= l) = l ** -meta_tail``. ``AgentParams.meta_orders`` such
meta-orders run at once; each child order comes from one of them, picked at random, and a
finished one is replaced by a fresh one. Lillo, Mike & Farmer (2005), "Theory for long memory
in supply and demand", show that this makes the autocorrelation of trade signs decay as
``lag ** -(meta_tail - 1)``: with a tail exponent of 1.5, the ``lag ** -0.5`` that Lillo &
Farmer (2004), "The long memory of the efficient market", measured on the LSE.

The sides are independent of any price: this flow is uninformed. Its price impact (through the
market makers, :mod:`paper.venue.market_maker`) is transient because the reference price
returns to the value (:mod:`paper.venue.agents`).
"""

from __future__ import annotations

import random

from paper.venue.messages import ASK, BID

MAX_CHILDREN = 2_000
"""A meta-order's length is capped (the Pareto tail is unbounded in mean for tails <= 1)."""


class NoiseTraders:
    __slots__ = ("sides", "left", "_tail")

    def __init__(self, meta_orders: int, tail: float) -> None:
        n = max(1, meta_orders)
        self.sides = [BID] * n
        self.left = [0] * n
        self._tail = tail

    def side(self, rng: random.Random) -> int:
        """The side of the next noise market order."""
        k = int(rng.random() * len(self.left))
        if self.left[k] <= 0:
            self.sides[k] = BID if rng.random() < 0.5 else ASK
            # Inverse transform of the Pareto law on l >= 1 (1 - u is in (0, 1]).
            self.left[k] = min(MAX_CHILDREN, int((1.0 - rng.random()) ** (-1.0 / self._tail)))
        self.left[k] -= 1
        return self.sides[k]
