"""An order within the grant goes; a larger one needs a step-up; another instrument is refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.arming_limits import (
    NOTIONAL_UNKNOWN,
    OVER_NOTIONAL,
    OVER_QUANTITY,
    SYMBOL_NOT_ARMED,
    WITHIN,
    GrantFit,
    check_grant,
    fresh_touch,
    worst_notional_price,
)
from trading.commands import OrderType, Side, TimeInForce
from trading.depth_book import BookSnapshot
from trading.step_up import OrderTerms

LMT = OrderTerms(
    account="DU1", symbol="AAPL", side=Side.BUY, order_type=OrderType.LMT, quantity=10, tif=TimeInForce.DAY,
    limit_price=Decimal("100"),
)  # fmt: skip
MKT = dataclasses.replace(LMT, order_type=OrderType.MKT, limit_price=None)


def check(terms: OrderTerms, touch: Decimal | None = None, **limits: object) -> object:
    grant: dict[str, object] = {"symbols": None, "max_quantity": None, "max_notional": None, **limits}
    return check_grant(terms, notional_price=worst_notional_price(terms, touch), **grant)  # type: ignore[arg-type]


def test_an_unlimited_grant_takes_any_order() -> None:
    assert check(MKT) == WITHIN


def test_another_instrument_is_forbidden_not_stepped_up() -> None:
    verdict = check(LMT, symbols=frozenset({"MSFT"}))
    assert verdict.fit is GrantFit.FORBIDDEN and verdict.reason == SYMBOL_NOT_ARMED  # type: ignore[attr-defined]


def test_quantity_at_the_limit_is_within_and_one_more_needs_a_step_up() -> None:
    assert check(LMT, max_quantity=10) == WITHIN
    verdict = check(dataclasses.replace(LMT, quantity=11), max_quantity=10)
    assert verdict.fit is GrantFit.STEP_UP and verdict.reason == OVER_QUANTITY  # type: ignore[attr-defined]


def test_a_limit_through_the_market_is_taken_at_its_limit_not_the_touch() -> None:
    # BUY 10 at 100 with the ask at 90 can fill anywhere up to 100: notional 1000.
    assert check(LMT, Decimal("90"), max_notional=Decimal("1000")) == WITHIN
    verdict = check(LMT, Decimal("90"), max_notional=Decimal("999.99"))
    assert verdict.reason == OVER_NOTIONAL  # type: ignore[attr-defined]


def test_a_market_order_is_taken_at_its_protective_limit_past_the_far_side_of_the_book() -> None:
    # BUY 10 with the ask at 50 goes out as a LMT at 50.03 (5 bps up, to the cent): 500.30.
    assert check(MKT, Decimal("50"), max_notional=Decimal("500.30")) == WITHIN
    assert check(MKT, Decimal("50"), max_notional=Decimal("500.29")).reason == OVER_NOTIONAL  # type: ignore[attr-defined]
    # No collar: the ask itself.
    assert worst_notional_price(MKT, Decimal("50"), Decimal(0)) == Decimal("50")


def test_a_buy_stop_below_the_ask_is_taken_at_its_protective_limit_past_the_ask() -> None:
    stop = dataclasses.replace(MKT, order_type=OrderType.STP, stop_price=Decimal("40"))
    assert worst_notional_price(stop, Decimal("50")) == Decimal("50.03")
    # Without a book its trigger bounds nothing: the market may be far through it already.
    assert worst_notional_price(stop, None) is None


def test_a_market_order_without_a_book_needs_a_step_up_only_under_a_notional_limit() -> None:
    assert check(MKT, None, max_quantity=100) == WITHIN
    verdict = check(MKT, None, max_notional=Decimal("1000000"))
    assert verdict.fit is GrantFit.STEP_UP and verdict.reason == NOTIONAL_UNKNOWN  # type: ignore[attr-defined]


@given(
    st.integers(1, 10_000), st.decimals(Decimal("0.01"), Decimal("10000"), places=2), st.integers(1, 10**8)
)
def test_within_exactly_when_the_notional_is_at_most_the_limit(qty: int, price: Decimal, limit: int) -> None:
    terms = dataclasses.replace(LMT, quantity=qty, limit_price=price)
    verdict = check_grant(
        terms, symbols=None, max_quantity=None, max_notional=Decimal(limit), notional_price=price
    )
    assert (verdict == WITHIN) == (qty * price <= limit)


def test_a_sell_limit_is_taken_at_the_bid_it_fills_at_and_is_unknown_without_a_book() -> None:
    # 100,000 shares SELL LMT at 0.01 with the bid at 200 fill at 200: 20,000,000, not 1,000.
    sell = dataclasses.replace(LMT, side=Side.SELL, quantity=100_000, limit_price=Decimal("0.01"))
    assert worst_notional_price(sell, Decimal("200")) == Decimal("200")
    assert check(sell, Decimal("200"), max_notional=Decimal("10000")).reason == OVER_NOTIONAL  # type: ignore[attr-defined]
    assert worst_notional_price(sell, None) is None
    assert check(sell, None, max_notional=Decimal("10000")).reason == NOTIONAL_UNKNOWN  # type: ignore[attr-defined]


def test_a_buy_limit_or_stop_limit_is_bounded_by_its_limit_with_or_without_a_book() -> None:
    stop_limit = dataclasses.replace(LMT, order_type=OrderType.STP_LMT, stop_price=Decimal("95"))
    for terms in (LMT, stop_limit):
        assert worst_notional_price(terms, None) == Decimal("100")
        assert worst_notional_price(terms, Decimal("90")) == Decimal("100")


NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
MAX_AGE = timedelta(seconds=2)


def book(age: timedelta) -> BookSnapshot:
    return BookSnapshot("AAPL", 1, NOW - age, ((Decimal("189.40"), 100),), ((Decimal("189.50"), 100),))


def test_only_a_fresh_book_gives_a_touch() -> None:
    assert fresh_touch(book(MAX_AGE), Side.BUY, NOW, MAX_AGE) == Decimal("189.50")
    assert fresh_touch(book(timedelta(0)), Side.SELL, NOW, MAX_AGE) == Decimal("189.40")
    assert fresh_touch(book(MAX_AGE + timedelta(milliseconds=1)), Side.BUY, NOW, MAX_AGE) is None
    assert fresh_touch(book(-MAX_AGE - timedelta(milliseconds=1)), Side.BUY, NOW, MAX_AGE) is None
    assert fresh_touch(None, Side.BUY, NOW, MAX_AGE) is None
    empty = dataclasses.replace(book(timedelta(0)), asks=())
    assert fresh_touch(empty, Side.BUY, NOW, MAX_AGE) is None
