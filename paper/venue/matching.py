"""Matching: orders against a symbol's book in price-time priority, and what a fill does.

The model's orders (one :class:`~paper.venue.flow.FlowModel` step at a time) and ours meet
the same book (:meth:`paper.venue.book.Book.take`); every aggressive trade but a scripted
move's sweep is reported to the model (``on_take``), whose market makers may react to it. A
fill of one of ours updates the order, the account and the :class:`~paper.venue.outbox.Outbox`;
an order that has nothing left, or that cannot rest (market, IOC), ends here. Trades may
trigger stops: after each match that traded, :attr:`Matcher.on_trade` runs (the venue wires
the stop triggers to it).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from paper.venue.account import Account, order_commission
from paper.venue.book import Resting
from paper.venue.flow import CANCEL, MARKET
from paper.venue.messages import BID
from paper.venue.outbox import Outbox
from paper.venue.state import SymbolState, WorkingOrder

ADDED = 1
REMOVED = 2
"""Execution liquidity: our order rested and was taken (added), or took (removed)."""


def _no_stops(s: SymbolState) -> None:
    return None


class Matcher:
    def __init__(
        self,
        accounts: dict[str, Account],
        outbox: Outbox,
        open_orders: dict[int, WorkingOrder],
        commission_free: frozenset[str] = frozenset(),
    ) -> None:
        self.accounts = accounts
        """Every account by id: a fill goes to its order's."""
        self.commission_free = commission_free
        """Accounts charged no commission (the paper Schwab API's: Schwab charges none on stocks)."""
        self.outbox = outbox
        self.open = open_orders
        self.on_trade: Callable[[SymbolState], None] = _no_stops

    def model_event(self, s: SymbolState) -> None:
        """Run the order-flow model's next event against the book."""
        kind, side, price, qty, order = s.flow.step(s.book)
        book = s.book
        if kind == CANCEL:
            assert order is not None
            book.remove(order)
        elif kind == MARKET:
            # As in CST, a market order consumes (part of) the best queue only; the book is
            # walked by limit orders priced through it and by scripted moves.
            best = book.best_ask() if side == BID else book.best_bid()
            if best is not None:
                qty = min(qty, book.size_at(1 - side, best))
                s.flow.on_take(side, qty - self.model_take(s, side, qty, best))
        else:
            opposite = book.best_ask() if side == BID else book.best_bid()
            if opposite is not None and (price >= opposite if side == BID else price <= opposite):
                left = self.model_take(s, side, qty, price)
                s.flow.on_take(side, qty - left)
                qty = left
            if qty > 0:
                book.insert(Resting(side, price, qty))

    def model_take(self, s: SymbolState, side: int, qty: int, limit: int | None) -> int:
        """Someone else's order of ``qty`` on ``side`` takes the book up to ``limit``; returns
        what is left of it."""
        fills = s.book.take(side, qty, limit)
        for maker, q, price in fills:
            qty -= q
            s.record_trade(price, q, self.outbox.now())
            if maker.owner is not None:
                self._fill(maker.owner, q, price, ADDED)
        if fills and s.stops:
            self.on_trade(s)
        return qty

    def work(self, wo: WorkingOrder) -> None:
        """Execute a live (non-stop or triggered) order against the book; rest or end it."""
        if wo.limit is None:
            self._take(wo, None)
            if wo.is_open and wo.remaining > 0:
                # No liquidity left on the other side: a market order does not wait.
                self.finish(wo, "Cancelled")
            return
        self._take(wo, wo.limit)
        if not wo.is_open or wo.remaining == 0:
            return
        if wo.spec.tif == "IOC":
            self.finish(wo, "Cancelled")
            return
        wo.resting = Resting(wo.side, wo.limit, wo.remaining, wo)
        wo.sym.book.insert(wo.resting)

    def finish(self, wo: WorkingOrder, status: str) -> None:
        """End ``wo`` with ``status``: out of the book, off the stop list, no longer open."""
        if wo.resting is not None:
            if wo.resting.qty:
                wo.sym.book.remove(wo.resting)
            wo.resting = None
        if wo in wo.sym.stops:
            wo.sym.stops.remove(wo)
        wo.status = status
        wo.ended_ns = self.outbox.now()
        self.open.pop(wo.perm_id, None)
        self.outbox.order_changed(wo)

    def _take(self, wo: WorkingOrder, limit: int | None) -> None:
        s = wo.sym
        fills = s.book.take(wo.side, wo.remaining, limit)
        for maker, q, price in fills:
            s.record_trade(price, q, self.outbox.now())
            if maker.owner is not None:
                self._fill(maker.owner, q, price, ADDED)
            self._fill(wo, q, price, REMOVED)
        if fills:
            # Our takers move the model's market as its own do (zero intelligence ignores it).
            s.flow.on_take(wo.side, sum(q for _, q, _ in fills))
            if s.stops:
                self.on_trade(s)

    def _fill(self, wo: WorkingOrder, qty: int, price: int, liquidity: int) -> None:
        s = wo.sym
        wo.filled += qty
        wo.cum_value += qty * price
        wo.last_fill = price
        if wo.resting is not None and wo.resting.qty == 0:
            wo.resting = None
        price_d = s.px(price)
        total_commission = order_commission(wo.filled, wo.cum_value * s.tick)
        if wo.account in self.commission_free:
            total_commission = Decimal(0)
        commission = total_commission - wo.commission
        wo.commission = total_commission
        account = self.accounts[wo.account]
        realized = account.apply_fill(s.symbol, qty if wo.buy else -qty, price_d, commission)
        self.outbox.executed(wo, qty, price_d, liquidity, commission, realized)
        if wo.remaining == 0:
            self.finish(wo, "Filled")
        else:
            self.outbox.order_changed(wo)
