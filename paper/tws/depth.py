"""The gateway's copy of one symbol's book, and the positional rows TWS clients expect.

The venue sends price-level changes; TWS ``updateMktDepth`` speaks in row positions (row 0 =
best) limited to each subscriber's ``numRows``. ib_async keeps rows in a dict keyed by
position and lists them in insertion order, so it neither shifts rows on insert nor closes the
gap on delete. Rows are therefore only ever overwritten (operation 1), appended at the end
(operation 0) or removed from the end (operation 2): a client that shifts on insert/delete
(the official EWrapper contract) and one that does not end up with the same rows.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal

from paper.venue.messages import ASK, BID, DepthSnapshot, Level, LevelChange

INSERT, UPDATE, DELETE = 0, 1, 2

Row = tuple[int, int, int, str, int]
"""(position, operation, side, price text, size)."""


class BookSide:
    """Levels of one side, best first. Keys sort ascending: bids are stored negated."""

    __slots__ = ("keys", "sign", "sizes", "texts")

    def __init__(self, side: int) -> None:
        self.sign = -1 if side == BID else 1
        self.keys: list[Decimal] = []
        self.sizes: dict[Decimal, int] = {}
        self.texts: dict[Decimal, str] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, levels: Iterable[Level]) -> None:
        self.keys = sorted(self.sign * lv.price for lv in levels if lv.size > 0)
        self.sizes = {self.sign * lv.price: lv.size for lv in levels if lv.size > 0}
        self.texts = {k: format(self.sign * k, "f") for k in self.keys}

    def row(self, index: int) -> tuple[str, int]:
        key = self.keys[index]
        return self.texts[key], self.sizes[key]

    def apply(self, price: Decimal, size: int) -> tuple[int, int, int] | None:
        """Apply one change; return (index, rows before, rows after) or None if no-op."""
        key = self.sign * price
        keys = self.keys
        before = len(keys)
        if size <= 0:
            if key not in self.sizes:
                return None
            index = bisect_left(keys, key)
            del keys[index]
            del self.sizes[key]
            del self.texts[key]
            return index, before, before - 1
        if key in self.sizes:
            self.sizes[key] = size
            return bisect_left(keys, key), before, before
        index = bisect_left(keys, key)
        keys.insert(index, key)
        self.sizes[key] = size
        self.texts[key] = format(price, "f")
        return index, before, before + 1

    def levels(self, limit: int | None = None) -> list[tuple[Decimal, int]]:
        keys = self.keys if limit is None else self.keys[:limit]
        return [(self.sign * k, self.sizes[k]) for k in keys]


class GatewayBook:
    """One symbol's book as the gateway last heard it from the venue."""

    __slots__ = ("asks", "bids", "seq", "symbol")

    def __init__(self, snapshot: DepthSnapshot) -> None:
        self.symbol = snapshot.symbol
        self.bids = BookSide(BID)
        self.asks = BookSide(ASK)
        self.load(snapshot)

    def load(self, snapshot: DepthSnapshot) -> None:
        self.seq = snapshot.seq
        self.bids.load(snapshot.bids)
        self.asks.load(snapshot.asks)

    def side(self, side: int) -> BookSide:
        return self.bids if side == BID else self.asks

    def snapshot_rows(self, num_rows: int) -> list[Row]:
        """Every visible row as an insert, asks then bids: what a new subscriber receives."""
        rows: list[Row] = []
        for side in (ASK, BID):
            book = self.side(side)
            for i in range(min(num_rows, len(book))):
                text, size = book.row(i)
                rows.append((i, INSERT, side, text, size))
        return rows


def rows_for_change(
    book: BookSide, side: int, index: int, before: int, after: int, num_rows: int
) -> list[Row]:
    """Rows a subscriber with ``num_rows`` needs after a change at ``index``.

    A size change touches one row; an insert or removal moves every row below it, so those
    are rewritten in place, the new last row appended or the old last row removed.
    """
    if index >= num_rows:
        return []
    rows: list[Row] = []
    if before == after:
        text, size = book.row(index)
        rows.append((index, UPDATE, side, text, size))
        return rows
    shown_before = min(before, num_rows)
    shown_after = min(after, num_rows)
    for i in range(index, shown_after):
        text, size = book.row(i)
        rows.append((i, UPDATE if i < shown_before else INSERT, side, text, size))
    for i in range(shown_before - 1, shown_after - 1, -1):
        rows.append((i, DELETE, side, "0", 0))
    return rows


def apply_change(book: GatewayBook, change: LevelChange) -> tuple[int, int, int] | None:
    book.seq = change.seq
    return book.side(change.side).apply(change.price, change.size)
