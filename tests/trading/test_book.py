from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.book import BookError, L2Book, Level, RowOp
from trading.commands import Side


def test_best_levels_mid_and_removal() -> None:
    book = L2Book("AAPL")
    assert book.mid is None
    book.set_level(Side.BUY, Decimal("99.98"), 300)
    book.set_level(Side.BUY, Decimal("99.99"), 100)
    book.set_level(Side.SELL, Decimal("100.02"), 200)
    book.set_level(Side.SELL, Decimal("100.01"), 50)
    assert book.best_bid == Level(Decimal("99.99"), 100)
    assert book.best_ask == Level(Decimal("100.01"), 50)
    assert book.mid == Decimal("100.00") and book.spread == Decimal("0.02")
    book.set_level(Side.SELL, Decimal("100.01"), 0)
    assert book.best_ask == Level(Decimal("100.02"), 200)
    assert book.bids() == (Level(Decimal("99.99"), 100), Level(Decimal("99.98"), 300))
    assert book.snapshot(depth=1).asks == (Level(Decimal("100.02"), 200),)


def test_tws_row_updates() -> None:
    book = L2Book("MSFT")
    book.apply_row(Side.SELL, 0, RowOp.INSERT, Decimal("10.02"), 5)
    book.apply_row(Side.SELL, 0, RowOp.INSERT, Decimal("10.01"), 7)
    book.apply_row(Side.SELL, 1, RowOp.UPDATE, Decimal("10.02"), 9)
    assert book.asks() == (Level(Decimal("10.01"), 7), Level(Decimal("10.02"), 9))
    book.apply_row(Side.SELL, 0, RowOp.UPDATE, Decimal("10.03"), 1)  # a row that moves price
    assert book.asks() == (Level(Decimal("10.02"), 9), Level(Decimal("10.03"), 1))
    book.apply_row(Side.SELL, 0, RowOp.DELETE, Decimal("0"), 0)
    assert book.asks() == (Level(Decimal("10.03"), 1),)
    with pytest.raises(BookError):
        book.apply_row(Side.SELL, 3, RowOp.DELETE, Decimal("0"), 0)


def test_crossed_book_is_flagged_and_bad_input_refused() -> None:
    book = L2Book("X")
    book.set_level(Side.BUY, Decimal("10"), 1)
    book.set_level(Side.SELL, Decimal("10"), 1)
    assert book.crossed
    with pytest.raises(BookError):
        book.set_level(Side.BUY, Decimal("-1"), 1)
    with pytest.raises(BookError):
        book.set_level(Side.BUY, Decimal("1"), -1)


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(Side), st.integers(1, 50), st.integers(0, 5)), max_size=80))
def test_book_matches_a_plain_dict_model(updates: list[tuple[Side, int, int]]) -> None:
    book = L2Book("X")
    model: dict[Side, dict[Decimal, int]] = {Side.BUY: {}, Side.SELL: {}}
    for side, cents, size in updates:
        price = Decimal(cents) / 100
        book.set_level(side, price, size)
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
    assert book.bids() == tuple(Level(p, s) for p, s in sorted(model[Side.BUY].items(), reverse=True))
    assert book.asks() == tuple(Level(p, s) for p, s in sorted(model[Side.SELL].items()))
