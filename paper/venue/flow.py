"""Zero-intelligence order flow in the spirit of Cont, Stoikov and Talreja (2010),
"A stochastic model for order book dynamics", Operations Research 58(3).

The model, per symbol (parameters in :class:`paper.venue.symbols.FlowParams`):

- A *reference price* ``r`` (in ticks, a float) follows geometric Brownian motion with the
  symbol's ``volatility``. It anchors where liquidity arrives so the simulated price wanders
  like a stock instead of drifting wherever the book happens to thin out. The reference quotes
  are ``bid_ref = round(r - spread_ticks / 2)`` and ``ask_ref = bid_ref + spread_ticks``.
- Events form a Poisson process of intensity ``event_rate`` in market time. Each event is
  * a **limit order** (the share of events left after market orders and cancellations) on
    a random side at distance ``i`` ticks behind the reference quote, ``i`` drawn
    with probability proportional to ``(i + 1) ** -alpha`` (CST's power-law arrival rate
    ``lambda(i)``); a limit order that crosses the book trades first, as on a real exchange;
  * a **market order** (probability ``market_fraction``) on a random side, taking at most
    the best queue (CST's market orders hit the best quote);
  * a **cancellation** of one resting model order. CST cancel each order at rate ``theta(i)``;
    here the cancellation share of events grows with the number of resting model orders
    ``n`` as ``n / (n + target)`` (``target = 2 * depth_levels * orders_per_level``), which holds
    the book near ``target`` orders, and the order cancelled is drawn with weight
    ``w(d) = 1`` within ``depth_levels`` of the reference price and ``stale_cancel_factor``
    beyond it (stale quotes left behind by a moving price go first).
- Order sizes are exponential with mean ``order_size`` shares, rounded up to whole lots.

Everything random comes from one ``random.Random`` per symbol seeded from ``(seed, symbol)``;
the model reads only its own state and the book, so a seed and the sequence of our orders
determine every event.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import replace
from itertools import accumulate

from paper.venue.book import Book, Resting
from paper.venue.messages import ASK, BID
from paper.venue.symbols import FlowParams

NS_PER_SECOND = 1_000_000_000
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600

LIMIT = 0
MARKET = 1
CANCEL = 2

NEVER = 2**63 - 1
"""The market time of an event that never comes (a model with a zero event rate)."""

Action = tuple[int, int, int, int, Resting | None]
"""(kind, side, price in ticks, quantity, order to cancel)."""


class FlowModel:
    """The zero-intelligence model (``FLOOR_PAPER_FLOW=zi``); the agent model extends it."""

    name = "zi"

    def __init__(self, params: FlowParams, seed: int, symbol: str, price_ticks: int, lot: int, start_ns: int):
        self.params = params
        self.lot = lot
        self.rng = random.Random(f"{seed}:{symbol}")
        self.reference = float(price_ticks)
        self.last_ns = start_ns
        self.next_ns = start_ns
        self.target_orders = max(1, round(2 * params.depth_levels * params.orders_per_level))
        self._sigma_per_sqrt_ns = params.volatility / math.sqrt(TRADING_SECONDS_PER_YEAR * NS_PER_SECOND)
        weights = [(i + 1) ** -params.alpha for i in range(params.depth_levels)]
        total = sum(weights)
        self._distance_cdf = [w / total for w in accumulate(weights)]
        self._schedule(start_ns)

    # ------------------------------------------------------------------ clock

    def _schedule(self, now_ns: int) -> None:
        rate = self.params.event_rate
        if rate <= 0:
            self.next_ns = NEVER
            return
        gap = self.rng.expovariate(rate) * NS_PER_SECOND
        self.next_ns = now_ns + max(1, int(gap))

    def set_rate(self, rate: float, now_ns: int) -> None:
        """Change the event rate from ``now_ns`` on (memoryless, so simply redraw the gap)."""
        self.params = replace(self.params, event_rate=rate)
        self._schedule(now_ns)

    def move_reference(self, price_ticks: float) -> None:
        self.reference = price_ticks

    def reference_quotes(self) -> tuple[int, int]:
        bid = round(self.reference - self.params.spread_ticks / 2)
        return bid, bid + self.params.spread_ticks

    def on_take(self, taker_side: int, qty: int) -> None:
        """A taker (the model's or ours) traded ``qty`` on ``taker_side``: nobody here minds."""

    # ------------------------------------------------------------------ events

    def size(self) -> int:
        lots = math.ceil(self.rng.expovariate(1.0) * self.params.order_size / self.lot)
        return max(1, lots) * self.lot

    def step(self, book: Book) -> Action:
        """The event due at ``next_ns`` (the caller executes it), and schedule the next one."""
        now = self.next_ns
        rng = self.rng
        dt = now - self.last_ns
        self.last_ns = now
        if dt > 0 and self._sigma_per_sqrt_ns > 0:
            s = self._sigma_per_sqrt_ns * math.sqrt(dt)
            self.reference *= math.exp(s * rng.gauss(0.0, 1.0) - 0.5 * s * s)
        self._schedule(now)

        n = len(book.model)
        u = rng.random()
        cancel_share = (1.0 - self.params.market_fraction) * n / (n + self.target_orders)
        side = BID if rng.random() < 0.5 else ASK
        if n and u < cancel_share:
            return (CANCEL, side, 0, 0, self._pick_cancel(book))
        if u < cancel_share + self.params.market_fraction:
            return (MARKET, side, 0, self.size(), None)
        i = bisect_right(self._distance_cdf, rng.random())
        i = min(i, self.params.depth_levels - 1)
        bid_ref, ask_ref = self.reference_quotes()
        price = bid_ref - i if side == BID else ask_ref + i
        return (LIMIT, side, max(1, price), self.size(), None)

    def _pick_cancel(self, book: Book) -> Resting:
        model = book.model
        rng = self.rng
        factor = self.params.stale_cancel_factor
        reach = self.params.depth_levels
        reference = self.reference
        # Rejection sampling: weight 1 near the reference, ``factor`` beyond ``reach``.
        while True:
            order = model[int(rng.random() * len(model))]
            if factor <= 1.0 or abs(order.price - reference) > reach or rng.random() * factor < 1.0:
                return order

    def initial_orders(self) -> list[tuple[int, int, int]]:
        """(side, price, qty) that seed the book: about ``orders_per_level`` per level."""
        out = []
        bid_ref, ask_ref = self.reference_quotes()
        per_level = max(1, round(self.params.orders_per_level))
        for i in range(self.params.depth_levels):
            for _ in range(per_level):
                if bid_ref - i >= 1:
                    out.append((BID, bid_ref - i, self.size()))
                out.append((ASK, ask_ref + i, self.size()))
        return out
