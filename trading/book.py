"""Level-2 order book for one symbol: price levels per side, best bid/ask, mid.

Two ways to update, matching the two ways venues publish depth:

* :meth:`L2Book.set_level` — price-keyed: the size now resting at a price (0 removes it).
* :meth:`L2Book.apply_row` — row-keyed, the TWS ``updateMktDepth`` shape: insert / update /
  delete the row at a position (0 = best) of one side.

Levels are kept sorted best-first, so best bid/ask are O(1) and a depth update is
O(log n + n) over the few dozen levels a book shows. Prices are Decimals, sizes ints.
``mid`` is exact: ``(bid + ask) / 2`` of two Decimals terminates.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal

from trading.commands import Side


class BookError(ValueError):
    pass


class RowOp(enum.IntEnum):
    """TWS depth operation codes."""

    INSERT = 0
    UPDATE = 1
    DELETE = 2


@dataclass(frozen=True)
class Level:
    price: Decimal
    size: int


@dataclass(frozen=True)
class BookSnapshot:
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class _Side:
    """One side, best first. Keys are stored negated for bids so both sides sort ascending."""

    def __init__(self, descending: bool) -> None:
        self._sign = -1 if descending else 1
        self._keys: list[Decimal] = []
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self._keys)

    def set(self, price: Decimal, size: int) -> None:
        key = price * self._sign
        i = bisect_left(self._keys, key)
        present = i < len(self._keys) and self._keys[i] == key
        if size == 0:
            if present:
                del self._keys[i]
                del self._sizes[i]
        elif present:
            self._sizes[i] = size
        else:
            self._keys.insert(i, key)
            self._sizes.insert(i, size)

    def row(self, position: int) -> Level:
        return Level(self._keys[position] * self._sign, self._sizes[position])

    def delete_row(self, position: int) -> None:
        del self._keys[position]
        del self._sizes[position]

    def best(self) -> Level | None:
        return self.row(0) if self._keys else None

    def levels(self, depth: int | None) -> tuple[Level, ...]:
        n = len(self._keys) if depth is None else min(depth, len(self._keys))
        return tuple(self.row(i) for i in range(n))

    def clear(self) -> None:
        self._keys.clear()
        self._sizes.clear()


class L2Book:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)

    def _side(self, side: Side) -> _Side:
        return self._bids if side is Side.BUY else self._asks

    def set_level(self, side: Side, price: Decimal, size: int) -> None:
        """Set the size resting at ``price`` on ``side`` (BUY = bids); size 0 removes the level."""
        if price <= 0:
            raise BookError(f"price must be positive, got {price}")
        if type(size) is not int or size < 0:
            raise BookError(f"size must be a non-negative integer, got {size!r}")
        self._side(side).set(price, size)

    def apply_row(self, side: Side, position: int, op: RowOp, price: Decimal, size: int) -> None:
        """TWS-style row update. Rows are kept sorted by price, so an insert or an update that
        moves a row's price lands where its price belongs rather than at ``position``."""
        book_side = self._side(side)
        if op is RowOp.DELETE:
            if not 0 <= position < len(book_side):
                raise BookError(f"delete of row {position}, side has {len(book_side)} rows")
            book_side.delete_row(position)
        elif op is RowOp.UPDATE:
            if not 0 <= position < len(book_side):
                raise BookError(f"update of row {position}, side has {len(book_side)} rows")
            old = book_side.row(position)
            if old.price != price:
                book_side.delete_row(position)
            self.set_level(side, price, size)
        else:
            self.set_level(side, price, size)

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()

    @property
    def best_bid(self) -> Level | None:
        return self._bids.best()

    @property
    def best_ask(self) -> Level | None:
        return self._asks.best()

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) / 2

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask.price - bid.price

    @property
    def crossed(self) -> bool:
        """Bid at or above ask: a transient state feeds produce; don't price off it."""
        spread = self.spread
        return spread is not None and spread <= 0

    def bids(self, depth: int | None = None) -> tuple[Level, ...]:
        return self._bids.levels(depth)

    def asks(self, depth: int | None = None) -> tuple[Level, ...]:
        return self._asks.levels(depth)

    def snapshot(self, depth: int | None = None) -> BookSnapshot:
        return BookSnapshot(self.symbol, self.bids(depth), self.asks(depth))
