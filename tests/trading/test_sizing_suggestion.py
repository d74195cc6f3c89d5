from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.factories import risk_profile
from trading.commands import OrderType, Side, TimeInForce
from trading.fill_prices import FillRange, fill_range
from trading.sizing import BINDING_KELLY, BINDING_MAX_DOLLAR_RISK, NO_EDGE, STOP_WRONG_SIDE
from trading.sizing_suggestion import (
    NO_BANKROLL_YET,
    NO_PRICE,
    NO_STOP,
    STALE_BANKROLL,
    STALE_BANKROLL_S,
    EdgeInvalid,
    suggest,
)
from trading.step_up import OrderTerms

BIG = risk_profile(max_trade_size=Decimal("1000000"), max_dollar_risk=Decimal("1000000"))


def terms(**fields: object) -> OrderTerms:
    base: dict[str, object] = {
        "account": "DU1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.LMT,
        "quantity": 1,
        "tif": TimeInForce.DAY,
        "limit_price": Decimal("4"),
        "stop_loss": Decimal("3"),
    }
    return OrderTerms(**{**base, **fields})  # type: ignore[arg-type]


def test_kelly_dollars_that_buy_a_whole_number_of_shares_are_not_lost_to_binary_rounding() -> None:
    # f* = 0.7 - 0.3 = 0.4 exactly; in binary floating point 0.39999999999999997, and
    # 0.4 x 1000 / 4 would floor to 99 shares instead of 100.
    s = suggest(BIG, terms(), FillRange.at(Decimal("4")), bankroll=Decimal("1000"), p=Decimal("0.7"))
    assert (s.quantity, s.binding, s.kelly_fraction) == (100, BINDING_KELLY, Decimal("0.4"))


def test_the_profiles_kelly_multiplier_scales_the_suggestion_but_not_the_reported_fraction() -> None:
    half = dataclasses.replace(BIG, kelly_fraction=Decimal("0.5"))
    s = suggest(half, terms(), FillRange.at(Decimal("4")), bankroll=Decimal("1000"), p=Decimal("0.7"))
    assert (s.quantity, s.kelly_fraction) == (50, Decimal("0.4"))
    # The payoff enters f* = p - (1 - p) / b: b = 3 gives 0.7 - 0.1 = 0.6.
    s = suggest(
        BIG, terms(), FillRange.at(Decimal("4")), bankroll=Decimal("1000"), p=Decimal("0.7"), b=Decimal(3)
    )
    assert (s.quantity, s.kelly_fraction) == (150, Decimal("0.6"))


def test_max_trade_size_is_in_shares_at_the_highest_fill_and_caps_the_suggestion() -> None:
    profile = risk_profile(max_trade_size=Decimal("1000"), max_dollar_risk=Decimal("1000000"))
    # A BUY limit through the market fills anywhere from the ask (100) to its limit (101):
    # notional is taken at 101, so 1000 / 101 = 9.9 -> 9 shares, not 10.
    through = terms(limit_price=Decimal("101"), stop_loss=Decimal("90"))
    fills = fill_range(Side.BUY, OrderType.LMT, limit=Decimal("101"), stop=None, touch=Decimal("100"))
    s = suggest(profile, through, fills, bankroll=Decimal("1000000"), p=Decimal("0.9"))
    assert (s.quantity, s.max_trade_size, s.binding) == (9, 9, "max_trade_size")


def test_the_loss_to_the_stop_loss_bounds_it_by_max_dollar_risk() -> None:
    profile = risk_profile(max_trade_size=Decimal("1000000"), max_dollar_risk=Decimal("250"))
    s = suggest(profile, terms(), FillRange.at(Decimal("4")), bankroll=Decimal("1000000"), p=Decimal("0.9"))
    assert (s.quantity, s.binding) == (250, BINDING_MAX_DOLLAR_RISK)


def test_each_reason_for_no_trade_is_named_and_max_trade_size_is_still_shown() -> None:
    at4 = FillRange.at(Decimal("4"))
    no_edge = suggest(BIG, terms(), at4, bankroll=Decimal("1000"), p=Decimal("0.4"))
    assert (no_edge.quantity, no_edge.binding, no_edge.kelly_fraction) == (0, NO_EDGE, Decimal("-0.2"))
    no_stop = suggest(BIG, terms(stop_loss=None), at4, bankroll=Decimal("1000"), p=Decimal("0.7"))
    assert (no_stop.quantity, no_stop.binding, no_stop.max_trade_size) == (0, NO_STOP, 250000)
    unreported = suggest(BIG, terms(), at4, bankroll=None, p=Decimal("0.7"))
    assert (unreported.quantity, unreported.binding) == (0, NO_BANKROLL_YET)
    wrong_side = suggest(BIG, terms(stop_loss=Decimal("5")), at4, bankroll=Decimal("1000"), p=Decimal("0.7"))
    assert (wrong_side.quantity, wrong_side.binding) == (0, STOP_WRONG_SIDE)
    unpriced = suggest(
        BIG, terms(order_type=OrderType.MKT, limit_price=None), None, bankroll=Decimal(1), p=Decimal("0.7")
    )
    assert (unpriced.quantity, unpriced.max_trade_size, unpriced.binding) == (0, 0, NO_PRICE)


def test_a_bankroll_not_confirmed_lately_is_not_sized_with_and_its_age_is_said() -> None:
    at4 = FillRange.at(Decimal("4"))
    bound = timedelta(seconds=STALE_BANKROLL_S)
    edge = suggest(BIG, terms(), at4, bankroll=Decimal("1000"), p=Decimal("0.7"), bankroll_age=bound)
    assert (edge.quantity, edge.binding) == (100, BINDING_KELLY)
    late = bound + timedelta(milliseconds=1)
    stale = suggest(BIG, terms(), at4, bankroll=Decimal("1000"), p=Decimal("0.7"), bankroll_age=late)
    assert (stale.quantity, stale.binding, stale.max_trade_size) == (0, STALE_BANKROLL, 250000)
    assert f"{late.total_seconds():.1f} s ago" in stale.detail


@pytest.mark.parametrize(
    ("p", "b", "field"),
    [("1", None, "winProbability"), ("0", None, "winProbability"), ("0.6", "0", "payoff")],
)
def test_an_edge_outside_its_domain_names_the_argument(p: str, b: str | None, field: str) -> None:
    with pytest.raises(EdgeInvalid) as raised:
        suggest(
            BIG,
            terms(),
            FillRange.at(Decimal("4")),
            bankroll=Decimal(1),
            p=Decimal(p),
            b=None if b is None else Decimal(b),
        )
    assert raised.value.field == field
