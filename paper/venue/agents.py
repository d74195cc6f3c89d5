"""The agent order-flow model: noise, informed, momentum and market-making populations.

Agent-based in the manner of ABIDES (Byrd, Hybinette & Balch 2019: value, noise, momentum and
market-maker agents), but as one seeded random process per symbol with no I/O, a drop-in for
the zero-intelligence model of :mod:`paper.venue.flow` whose clock, order sizes, limit-order
distances and cancellations it keeps. What it adds, each part in its own module:

- a **value** with stochastic volatility (:mod:`paper.venue.value`);
- the **reference price** (where liquidity arrives, moved by scripted faults) moves with the
  value as it was ``foresight_events`` events ago (news made public) and with every taker
  (impact, :mod:`paper.venue.market_maker`): a ``permanent_impact`` share of an uninformed
  taker's is long-lived, fading only as the market discovers the value (over
  ``discovery_events``), the rest fades over ``impact_memory_events``; an informed taker's
  fades as the news it traded on is made public (it told the market early, not twice);
- **informed traders** take liquidity towards the value when it is beyond the book's best
  price (:mod:`paper.venue.informed`): a resting order at the touch is taken when the price
  is about to move through it (adverse selection);
- **momentum traders** take liquidity along the trend (:mod:`paper.venue.momentum`);
- **noise traders** take liquidity in long-memory runs of meta-orders
  (:mod:`paper.venue.noise`);
- **market makers** quote around the reference price, widening and skewing after being hit
  (:mod:`paper.venue.market_maker`); stale quotes inside theirs are cancelled first.

Every event is one of: a cancellation, an informed, momentum or noise market order (each taking
at most the best queue, as in the zero-intelligence model), or a limit order. Takers of ours
count too: the matcher reports every aggressive trade (:meth:`AgentFlow.on_take`), so a large
order of ours moves the market and widens it as a model order would.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from paper.venue.book import Book, Resting
from paper.venue.flow import CANCEL, LIMIT, MARKET, NS_PER_SECOND, Action, FlowModel
from paper.venue.informed import InformedTraders
from paper.venue.market_maker import MarketMakers
from paper.venue.messages import ASK, BID
from paper.venue.momentum import MomentumTraders
from paper.venue.noise import NoiseTraders
from paper.venue.symbols import AgentParams, FlowParams
from paper.venue.value import ValuePath

NAME = "agents"


class AgentFlow(FlowModel):
    name = NAME

    def __init__(
        self,
        params: FlowParams,
        agents: AgentParams,
        seed: int,
        symbol: str,
        price_ticks: int,
        lot: int,
        start_ns: int,
    ) -> None:
        self.agents = agents
        self.makers = MarketMakers(agents, params.order_size, params.spread_ticks)
        super().__init__(params, seed, symbol, price_ticks, lot, start_ns)
        sigma_per_sqrt_s = self._sigma_per_sqrt_ns * math.sqrt(NS_PER_SECOND)
        self.hidden = ValuePath(float(price_ticks), sigma_per_sqrt_s, agents)
        self.impact = 0.0
        """The transient part of the takers' impact on the reference price, in ticks."""
        self.lasting = 0.0
        """The long-lived part of uninformed takers' impact (``permanent_impact``), in ticks:
        a pricing error the market corrects only as it learns the value (price discovery,
        over ``discovery_events``); kept forever, it would let the reference wander away from
        the value for good and informed traders would lean on one side for hours."""
        self.revealed = 0.0
        """Impact of informed takers: news told early, which fades as the news is made public
        (or the reference would move twice for it)."""
        self._informed_taking = False
        self.public = float(price_ticks)
        """The value as the market knows it (``foresight_events`` ago)."""
        self._permanent = agents.permanent_impact
        self._noise_fraction = agents.noise_fraction
        self.informed = InformedTraders(agents)
        self.momentum = MomentumTraders(float(price_ticks), agents)
        self.noise = NoiseTraders(agents.meta_orders, agents.meta_tail)
        self._impact_keep = math.exp(-1.0 / max(agents.impact_memory_events, 1e-9))
        self._revealed_keep = math.exp(-1.0 / max(agents.foresight_events, 1))
        self._lasting_keep = math.exp(-1.0 / max(agents.discovery_events, 1e-9))
        self._informed_size = agents.informed_size
        self._touch_share = agents.touch_share
        self._touch_size = agents.touch_size

    # ------------------------------------------------------------------ state

    def move_reference(self, price_ticks: float) -> None:
        """A scripted move takes the value with it: nobody trades the price back."""
        self.reference = price_ticks
        self.hidden.jump_to(price_ticks)
        self.public = price_ticks
        self.impact = 0.0
        self.lasting = 0.0
        self.revealed = 0.0
        self.momentum.average = price_ticks
        self.makers.reset()

    def reference_quotes(self) -> tuple[int, int]:
        return self.makers.quotes(self.reference)

    def on_take(self, taker_side: int, qty: int) -> None:
        if qty > 0:
            move = self.makers.hit(taker_side, qty)
            if self._informed_taking:
                self.revealed += move
            else:
                self.impact += move * (1.0 - self._permanent)
                self.lasting += move * self._permanent
            self.reference = max(1.0, self.reference + move)
        self._informed_taking = False

    # ------------------------------------------------------------------ events

    def step(self, book: Book) -> Action:
        now = self.next_ns
        rng = self.rng
        self._informed_taking = False
        dt_s = (now - self.last_ns) / NS_PER_SECOND
        self.last_ns = now
        hidden = self.hidden
        # News becomes public: the reference moves by the value's move of foresight_events
        # ago; the transient part of the impact fades; the long-lived part (the makers cannot
        # tell an informed taker from a noise one) fades only as the market discovers the
        # value, so the reference stays within a few ticks of the value.
        public = hidden.advance(dt_s, rng)
        fading = (
            self.impact * (1.0 - self._impact_keep)
            + self.revealed * (1.0 - self._revealed_keep)
            + self.lasting * (1.0 - self._lasting_keep)
        )
        self.impact *= self._impact_keep
        self.revealed *= self._revealed_keep
        self.lasting *= self._lasting_keep
        reference = self.reference + (public - self.public) - fading
        self.reference = reference = reference if reference > 1.0 else 1.0
        self.public = public
        self.makers.decay()
        self.momentum.observe(self.reference)
        self._schedule(now)

        bid_ref, ask_ref = self.makers.quotes(reference)
        mispricing = InformedTraders.edge(hidden.value, book.best_bid(), book.best_ask(), bid_ref, ask_ref)
        informed = self.informed.intensity(mispricing)
        momentum = self.momentum.intensity(reference)
        params = self.params
        noise = self._noise_fraction
        takers = informed + momentum + noise
        n = len(book.model)
        u = rng.random()
        cancel_share = (1.0 - takers) * n / (n + self.target_orders) if takers < 1.0 else 0.0
        if n and u < cancel_share:
            return (CANCEL, BID, 0, 0, self._pick_stale(book, bid_ref, ask_ref))
        u -= cancel_share
        if u < informed:
            self._informed_taking = True
            qty = self._sized(self._informed_size)
            return (MARKET, InformedTraders.side(mispricing), 0, qty, None)
        u -= informed
        if u < momentum:
            return (MARKET, self.momentum.side(reference), 0, self.size(), None)
        u -= momentum
        if u < noise:
            return (MARKET, self.noise.side(rng), 0, self.size(), None)
        side = BID if rng.random() < 0.5 else ASK
        if rng.random() < self._touch_share:
            price = self._touch_price(book, side, bid_ref, ask_ref)
            return (LIMIT, side, price, self._sized(self._touch_size), None)
        i = bisect_right(self._distance_cdf, rng.random())
        if i >= params.depth_levels:
            i = params.depth_levels - 1
        price = bid_ref - i if side == BID else ask_ref + i
        return (LIMIT, side, price if price > 1 else 1, self.size(), None)

    def _touch_price(self, book: Book, side: int, bid_ref: int, ask_ref: int) -> int:
        """A maker's quote: at its reference quote, or closer to the other side's best price
        if the book's spread is wider than the makers' (a gap left by a taker is closed from
        the other side, so the mid moves with the taker)."""
        spread = self.params.spread_ticks
        if side == BID:
            ask = book.best_ask()
            return max(1, bid_ref if ask is None else max(bid_ref, ask - spread))
        bid = book.best_bid()
        return max(1, ask_ref if bid is None else min(ask_ref, bid + spread))

    def _sized(self, multiple: float) -> int:
        lots = math.ceil(self.rng.expovariate(1.0) * self.params.order_size * multiple / self.lot)
        return max(1, lots) * self.lot

    def _pick_stale(self, book: Book, bid_ref: int, ask_ref: int) -> Resting:
        """A resting model order to cancel: quotes inside the makers' (they were pulled when
        the makers widened or moved) and quotes far from them go ``stale_cancel_factor`` times
        faster than the rest."""
        model = book.model
        rng = self.rng
        factor = self.params.stale_cancel_factor
        reach = self.params.depth_levels
        while True:
            order = model[int(rng.random() * len(model))]
            if order.side == BID:
                stale = order.price > bid_ref or order.price < bid_ref - reach
            else:
                stale = order.price < ask_ref or order.price > ask_ref + reach
            if factor <= 1.0 or stale or rng.random() * factor < 1.0:
                return order
