"""A price-time priority limit order book on integer ticks.

Each price level keeps its orders in arrival order (a dict keyed by a book-local sequence
number: insertion order is time priority, removal is O(1)). Sorted price lists give the best
prices. Every change of a level's aggregate size is appended to :attr:`Book.changes` as
``(seq, side, price_ticks, new_size)`` for the depth feed; ``seq`` is consecutive per book.

Resting orders are either model liquidity (``owner is None``; also kept in :attr:`Book.model`
for O(1) uniform random choice) or one of ours (``owner`` is the working order).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

from paper.venue.messages import ASK, BID


class Resting:
    """One order resting in the book."""

    __slots__ = ("key", "side", "price", "qty", "owner", "idx")

    def __init__(self, side: int, price: int, qty: int, owner: Any = None) -> None:
        self.key = 0
        self.side = side
        self.price = price
        self.qty = qty
        self.owner = owner
        self.idx = -1

    def __repr__(self) -> str:
        who = "model" if self.owner is None else "ours"
        return f"Resting({'BID' if self.side == BID else 'ASK'} {self.qty}@{self.price} {who})"


class Level:
    __slots__ = ("orders", "size")

    def __init__(self) -> None:
        self.orders: dict[int, Resting] = {}
        self.size = 0


Fill = tuple[Resting, int, int]
"""(maker, quantity, price in ticks)."""


class Book:
    def __init__(self) -> None:
        self.levels: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
        # Both ascending; best ask is asks[0], best bid is bids[-1].
        self.prices: tuple[list[int], list[int]] = ([], [])
        self.model: list[Resting] = []
        self.changes: list[tuple[int, int, int, int]] = []
        self.seq = 0
        self._next_key = 0

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        bids = self.prices[BID]
        return bids[-1] if bids else None

    def best_ask(self) -> int | None:
        asks = self.prices[ASK]
        return asks[0] if asks else None

    def size_at(self, side: int, price: int) -> int:
        level = self.levels[side].get(price)
        return level.size if level else 0

    def ladder(self, side: int, rows: int | None = None) -> list[tuple[int, int]]:
        """(price, size) from the best price outwards."""
        prices = self.prices[side]
        ordered = reversed(prices) if side == BID else iter(prices)
        levels = self.levels[side]
        out: list[tuple[int, int]] = []
        for price in ordered:
            if rows is not None and len(out) >= rows:
                break
            out.append((price, levels[price].size))
        return out

    def queue_ahead(self, order: Resting) -> int:
        """Shares ahead of ``order`` at its price (its queue position in shares)."""
        ahead = 0
        for other in self.levels[order.side][order.price].orders.values():
            if other is order:
                return ahead
            ahead += other.qty
        raise KeyError("order is not in the book")

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    # ------------------------------------------------------------------ changes

    def _record(self, side: int, price: int, size: int) -> None:
        self.seq += 1
        self.changes.append((self.seq, side, price, size))

    def insert(self, order: Resting) -> None:
        """Queue ``order`` last at its price (the caller ensures it does not cross)."""
        levels = self.levels[order.side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = Level()
            insort(self.prices[order.side], order.price)
        self._next_key += 1
        order.key = self._next_key
        level.orders[order.key] = order
        level.size += order.qty
        if order.owner is None:
            order.idx = len(self.model)
            self.model.append(order)
        self._record(order.side, order.price, level.size)

    def remove(self, order: Resting) -> None:
        level = self.levels[order.side][order.price]
        del level.orders[order.key]
        level.size -= order.qty
        self._drop_if_empty(order.side, order.price, level)
        if order.owner is None:
            self._forget_model(order)
        self._record(order.side, order.price, level.size)

    def reduce(self, order: Resting, new_qty: int) -> None:
        """Lower a resting order's size in place: it keeps its queue position."""
        if not 0 < new_qty <= order.qty:
            raise ValueError(f"reduce to {new_qty} from {order.qty}")
        level = self.levels[order.side][order.price]
        level.size -= order.qty - new_qty
        order.qty = new_qty
        self._record(order.side, order.price, level.size)

    def take(self, taker_side: int, qty: int, limit: int | None) -> list[Fill]:
        """Match an incoming order of ``qty`` on ``taker_side`` against the other side, best
        price first and oldest first within a price, not beyond ``limit`` (``None``: any
        price). Removes or reduces the makers; returns the fills in execution order."""
        side = ASK if taker_side == BID else BID
        prices = self.prices[side]
        levels = self.levels[side]
        fills: list[Fill] = []
        while qty > 0 and prices:
            price = prices[0] if side == ASK else prices[-1]
            if limit is not None and (price > limit if side == ASK else price < limit):
                break
            level = levels[price]
            done: list[Resting] = []
            for maker in level.orders.values():
                take = maker.qty if maker.qty <= qty else qty
                fills.append((maker, take, price))
                qty -= take
                level.size -= take
                if take == maker.qty:
                    done.append(maker)
                else:
                    maker.qty -= take
                if qty == 0:
                    break
            for maker in done:
                del level.orders[maker.key]
                maker.qty = 0
                if maker.owner is None:
                    self._forget_model(maker)
            self._drop_if_empty(side, price, level)
            self._record(side, price, level.size)
        return fills

    def _drop_if_empty(self, side: int, price: int, level: Level) -> None:
        if level.orders:
            return
        del self.levels[side][price]
        prices = self.prices[side]
        del prices[bisect_left(prices, price)]

    def _forget_model(self, order: Resting) -> None:
        model = self.model
        last = model.pop()
        if last is not order:
            model[order.idx] = last
            last.idx = order.idx
        order.idx = -1

    def clear(self) -> None:
        for side in (ASK, BID):
            for price in list(self.prices[side]):
                level = self.levels[side][price]
                for order in list(level.orders.values()):
                    self.remove(order)
