"""An order within the grant goes; a larger one needs a step-up; another instrument is refused."""

from __future__ import annotations

import dataclasses
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
    worst_notional_price,
)
from trading.commands import OrderType, Side, TimeInForce
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


def test_a_market_order_is_taken_at_the_far_side_of_the_book() -> None:
    assert check(MKT, Decimal("50"), max_notional=Decimal("500")) == WITHIN
    assert check(MKT, Decimal("50.01"), max_notional=Decimal("500")).reason == OVER_NOTIONAL  # type: ignore[attr-defined]


def test_a_buy_stop_below_the_ask_is_taken_at_the_ask() -> None:
    stop = dataclasses.replace(MKT, order_type=OrderType.STP, stop_price=Decimal("40"))
    assert worst_notional_price(stop, Decimal("50")) == Decimal("50")
    assert worst_notional_price(stop, None) == Decimal("40")


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
