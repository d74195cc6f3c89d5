"""Stop triggers: STP, STP LMT and TRAIL orders held by the venue until the last trade
reaches their stop, as IB holds simulated stops (``PreSubmitted`` until then).

A trailing stop ratchets with every trade that moves the price its way (never back). A
triggered STP or TRAIL becomes a market order, a STP LMT a limit order with new time priority;
its fills may trigger further stops, which the same check handles before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from paper.venue.matching import Matcher
from paper.venue.messages import OrderSpec
from paper.venue.outbox import Outbox
from paper.venue.state import SymbolState, WorkingOrder, to_ticks

STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})


def trail_amount(spec: OrderSpec, reference: int, tick: Decimal) -> int:
    """A TRAIL's distance in ticks from a price of ``reference`` ticks (at least one tick)."""
    if spec.trailing_percent is not None:
        amount = (Decimal(reference) * spec.trailing_percent / 100).to_integral_value(ROUND_HALF_UP)
        return max(1, int(amount))
    assert spec.aux_price is not None
    return to_ticks(spec.aux_price, tick)


def set_stop(wo: WorkingOrder) -> None:
    """Compute the stop (and a STP LMT's limit) in ticks from the order's prices; a TRAIL
    without an initial stop starts one trailing amount away from the last trade."""
    s = wo.sym
    spec = wo.spec
    if spec.order_type == "TRAIL":
        if spec.trail_stop_price is not None:
            wo.stop = to_ticks(spec.trail_stop_price, s.tick)
        else:
            reference = s.last if s.last is not None else s.close
            amount = trail_amount(spec, reference, s.tick)
            wo.stop = reference + amount if wo.buy else reference - amount
            wo.spec = replace(spec, trail_stop_price=s.px(wo.stop))
    else:
        assert spec.aux_price is not None
        wo.stop = to_ticks(spec.aux_price, s.tick)
        wo.limit = to_ticks(spec.lmt_price, s.tick) if spec.lmt_price is not None else None


class StopTriggers:
    def __init__(self, matcher: Matcher, outbox: Outbox) -> None:
        self.matcher = matcher
        self.outbox = outbox
        self.busy = False
        """A check is running (or held off by :meth:`deferred`): a trade inside it does not
        start another."""

    def arm(self, wo: WorkingOrder) -> None:
        """Hold ``wo`` until its stop is reached (checked at once: it may already be)."""
        s = wo.sym
        if wo not in s.stops:
            s.stops.append(wo)
        self.check(s)

    def check(self, s: SymbolState) -> None:
        """Ratchet the trailing stops and trigger every stop the last trade has reached."""
        if self.busy:
            return
        self.busy = True
        try:
            again = True
            while again:
                again = False
                last = s.last
                if last is None:
                    return
                for wo in list(s.stops):
                    if not wo.is_open or wo.stop is None:
                        continue
                    if wo.spec.order_type == "TRAIL":
                        amount = trail_amount(wo.spec, last, s.tick)
                        candidate = last + amount if wo.buy else last - amount
                        if (candidate < wo.stop) if wo.buy else (candidate > wo.stop):
                            wo.stop = candidate
                            wo.spec = replace(wo.spec, trail_stop_price=s.px(candidate))
                            self.outbox.order_changed(wo)
                    if (last >= wo.stop) if wo.buy else (last <= wo.stop):
                        s.stops.remove(wo)
                        self._trigger(wo)
                        again = True
                        break
        finally:
            self.busy = False

    @contextmanager
    def deferred(self, s: SymbolState) -> Iterator[None]:
        """Trigger nothing inside the block; check ``s``'s stops once after it (unless an
        enclosing check is running, which will)."""
        busy, self.busy = self.busy, True
        try:
            yield
        finally:
            self.busy = busy
        if s.stops and not busy:
            self.check(s)

    def _trigger(self, wo: WorkingOrder) -> None:
        wo.triggered = True
        wo.status = "Submitted"
        if wo.spec.order_type != "STP LMT":
            wo.limit = None
        self.outbox.order_changed(wo)
        self.matcher.work(wo)
