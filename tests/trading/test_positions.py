"""Positions and P&L by average cost: worked examples, and properties over any fill sequence."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.commands import Side
from trading.positions import MONEY_PLACES, Position, PositionFill, positions_from, shown

BUY, SELL = Side.BUY, Side.SELL


def fill(side: Side, qty: int, price: str, symbol: str = "AAPL", account: str = "A") -> PositionFill:
    return PositionFill(account, symbol, side, qty, Decimal(price))


def after(*fills: PositionFill) -> Position:
    (position,) = positions_from(fills)
    return position


def test_buys_average_their_cost_and_a_sale_realizes_against_it() -> None:
    position = after(fill(BUY, 100, "10.00"), fill(BUY, 100, "12.00"), fill(SELL, 50, "15.00"))
    assert position.quantity == 150
    assert position.average_cost == Decimal("11.000000")
    assert position.realized == Decimal("200.0000")  # 50 x (15 - 11)
    assert position.unrealized(Decimal("10.50")) == Decimal("-75.0000")  # 150 x (10.5 - 11)


def test_a_short_profits_when_the_price_falls() -> None:
    position = after(fill(SELL, 10, "50.00"), fill(BUY, 4, "45.00"))
    assert position.quantity == -6
    assert position.average_cost == Decimal("50.000000")
    assert position.realized == Decimal("20.0000")
    assert position.unrealized(Decimal("40")) == Decimal("60.0000")


def test_a_fill_through_zero_closes_the_position_and_opens_the_rest_at_its_price() -> None:
    position = after(fill(BUY, 10, "100"), fill(SELL, 25, "110"))
    assert position.quantity == -15
    assert position.average_cost == Decimal("110.000000")
    assert position.realized == Decimal("100.0000")


def test_a_flat_position_keeps_its_realized_pnl_and_has_no_average_cost() -> None:
    position = after(fill(BUY, 3, "100.00"), fill(BUY, 1, "100.01"), fill(SELL, 4, "101"))
    assert position.quantity == 0
    assert position.average_cost is None
    assert position.realized == Decimal("3.9900")
    assert position.unrealized(None) == Decimal("0.0000")


def test_an_average_that_does_not_terminate_is_carried_exactly_until_shown() -> None:
    # 300.01 / 3 = 100.00333...: rounded averages would leave a residue after the last sale.
    fills = [fill(BUY, 1, "100.00"), fill(BUY, 1, "100.00"), fill(BUY, 1, "100.01")]
    fills += [fill(SELL, 1, "100.00")] * 3
    position = after(*fills)
    assert position.quantity == 0
    assert position.realized_exact == Fraction(-1, 100)


def test_positions_are_kept_per_account_and_symbol() -> None:
    positions = positions_from(
        [fill(BUY, 5, "1", "MSFT"), fill(BUY, 7, "2", "AAPL", "B"), fill(SELL, 2, "3", "MSFT")]
    )
    assert [(p.account, p.symbol, p.quantity) for p in positions] == [("A", "MSFT", 3), ("B", "AAPL", 7)]


def test_without_a_mark_an_open_position_has_no_unrealized_pnl() -> None:
    assert after(fill(BUY, 1, "5")).unrealized(None) is None


@pytest.mark.parametrize("qty,price", [(0, "1"), (-1, "1"), (1, "-1"), (1, "NaN")])
def test_a_fill_that_cannot_happen_is_refused(qty: int, price: str) -> None:
    with pytest.raises(ValueError):
        PositionFill("A", "AAPL", BUY, qty, Decimal(price))


def test_showing_rounds_half_to_even() -> None:
    assert shown(Fraction(1, 20000), MONEY_PLACES) == Decimal("0.0000")
    assert shown(Fraction(3, 20000), MONEY_PLACES) == Decimal("0.0002")
    assert shown(Fraction(-3, 20000), MONEY_PLACES) == Decimal("-0.0002")


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
fills = st.lists(
    st.builds(lambda side, qty, price: fill(side, qty, str(price)), st.sampled_from([BUY, SELL]),
              st.integers(1, 500), prices),
    max_size=40,
)  # fmt: skip


@given(fills, prices)
def test_realized_plus_unrealized_is_the_cash_the_fills_moved_plus_the_shares_at_the_mark(
    sequence: list[PositionFill], mark: Decimal
) -> None:
    cash = sum((-f.side.sign * f.qty * Fraction(f.price) for f in sequence), Fraction(0))
    shares = sum(f.side.sign * f.qty for f in sequence)
    for position in positions_from(sequence):
        assert position.quantity == shares
        assert position.realized_exact + position.unrealized_exact(mark) == cash + shares * Fraction(mark)
    if not sequence:
        assert positions_from(sequence) == []


@given(fills)
def test_the_average_cost_lies_between_the_prices_paid(sequence: list[PositionFill]) -> None:
    for position in positions_from(sequence):
        if position.quantity:
            assert position.cost_basis / position.quantity > 0
            low = min(f.price for f in sequence)
            high = max(f.price for f in sequence)
            assert low <= Fraction(position.cost_basis, position.quantity) <= high


@given(fills, prices)
def test_shown_figures_are_within_half_a_unit_of_the_exact_ones(
    sequence: list[PositionFill], mark: Decimal
) -> None:
    for position in positions_from(sequence):
        assert abs(Fraction(position.realized) - position.realized_exact) <= Fraction(MONEY_PLACES) / 2
        unrealized = position.unrealized(mark)
        assert unrealized is not None
        assert abs(Fraction(unrealized) - position.unrealized_exact(mark)) <= Fraction(MONEY_PLACES) / 2
