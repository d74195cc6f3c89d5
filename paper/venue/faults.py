"""Fault injection in the market: scripted price moves (a flash crash is a negative one).

A move takes the reference price ``pct`` percent from where it is, in equal steps over its
duration; each step sweeps the liquidity the new price has left behind (filling our resting
orders there) and re-quotes around the new price. Steps are due at market times and run in
the venue's event order, between model events, so a scripted run replays exactly.

The connection faults (drop a gateway's clients, freeze or kill a gateway) are not the
market's: the venue process forwards them to the gateway they name
(:meth:`paper.venue.server.VenueServer.send_control`).
"""

from __future__ import annotations

import heapq
import math
from decimal import Decimal

from paper.venue.book import Resting
from paper.venue.matching import Matcher
from paper.venue.messages import ASK, BID
from paper.venue.state import SymbolState
from paper.venue.stops import StopTriggers

MS = 1_000_000
MAX_MOVE_STEPS = 50

Step = tuple[int, int, int, float, bool]
"""(due market time, scheduling order, symbol index, reference price in ticks, last step)."""


class PriceMoves:
    def __init__(self, matcher: Matcher, stops: StopTriggers) -> None:
        self.matcher = matcher
        self.stops = stops
        self.pending: list[Step] = []
        """A heap: the next step due first."""
        self._seq = 0

    def schedule(self, s: SymbolState, pct: Decimal, duration_ns: int, now_ns: int) -> None:
        """Plan a move of ``s`` by ``pct`` percent over ``duration_ns`` from ``now_ns`` (a zero
        duration moves in one step, due at once)."""
        mid = s.mid_ticks()
        start = mid if mid is not None else s.flow.reference
        target = start * (1.0 + float(pct) / 100.0)
        steps = max(1, min(MAX_MOVE_STEPS, duration_ns // MS))
        for k in range(1, steps + 1):
            self._seq += 1
            when = now_ns + duration_ns * k // steps
            reference = start + (target - start) * k / steps
            heapq.heappush(self.pending, (when, self._seq, s.index, reference, k == steps))

    def pop(self) -> Step:
        return heapq.heappop(self.pending)

    def apply(self, s: SymbolState, reference: float, final: bool) -> None:
        """Run one step of a move."""
        # Stops triggered by the sweep must meet the re-quoted book, not the emptied side.
        with self.stops.deferred(s):
            self._move_book(s, reference, final)

    def _move_book(self, s: SymbolState, reference: float, final: bool) -> None:
        flow = s.flow
        previous = flow.reference
        flow.move_reference(max(1.0, reference))
        # Quote on the side of the move so the mid reaches the target, not half a tick short.
        half = flow.params.spread_ticks / 2
        bid_ref = math.floor(reference - half) if reference < previous else math.ceil(reference - half)
        bid_ref = max(1, bid_ref)
        ask_ref = bid_ref + flow.params.spread_ticks
        book = s.book
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is not None and best_bid > bid_ref:
            self.matcher.model_take(s, ASK, 1 << 62, bid_ref + 1)
        if best_ask is not None and best_ask < ask_ref:
            self.matcher.model_take(s, BID, 1 << 62, ask_ref - 1)
        reach = flow.params.depth_levels
        for order in list(book.model):
            if order.side == ASK and order.price > ask_ref + reach:
                book.remove(order)
            elif order.side == BID and order.price < bid_ref - reach:
                book.remove(order)
        # On the way the book is quoted three levels deep at the usual size per level (stops
        # triggered by the move sell into it); at the end it is rebuilt to its usual depth.
        per_level = max(1, round(flow.params.orders_per_level))
        for i in range(reach if final else 3):
            bid_price, ask_price = bid_ref - i, ask_ref + i
            top_ask, top_bid = book.best_ask(), book.best_bid()
            bid_free = top_ask is None or bid_price < top_ask
            if bid_price >= 1 and bid_free and not book.size_at(BID, bid_price):
                for _ in range(per_level):
                    book.insert(Resting(BID, bid_price, flow.size()))
            if not book.size_at(ASK, ask_price) and (top_bid is None or ask_price > top_bid):
                for _ in range(per_level):
                    book.insert(Resting(ASK, ask_price, flow.size()))
