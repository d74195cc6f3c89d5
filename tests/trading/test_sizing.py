from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.factories import risk_profile
from trading.commands import Side
from trading.sizing import (
    BINDING_KELLY,
    BINDING_MAX_DOLLAR_RISK,
    BINDING_MAX_TRADE_SIZE,
    NO_BANKROLL,
    NO_EDGE,
    NO_SHARE,
    STOP_WRONG_SIDE,
    ProfileInvalid,
    RiskProfile,
    kelly_fraction,
    kelly_fraction_exact,
    size_order,
)


def test_kelly_fraction_matches_the_formula_exactly() -> None:
    assert kelly_fraction(Decimal("0.6"), Decimal("1")) == Decimal("0.2")
    assert kelly_fraction(Decimal("0.55"), Decimal("1.5")) == Decimal("0.25")
    assert kelly_fraction_exact(Decimal("0.5"), Decimal("3")) == Fraction(1, 3)
    # Non-terminating: rounded toward -inf for display, never overstated.
    assert kelly_fraction(Decimal("0.5"), Decimal("3")) == Decimal("0.3333333333333333333333333333")
    assert kelly_fraction(Decimal("0.4"), Decimal("1")) == Decimal("-0.2")


def test_textbook_example_sizes_to_kelly_dollars() -> None:
    # f* = 0.25, bankroll 100k -> 25k dollars at 100 = 250 shares; stop 99 -> 250 risk.
    decision = size_order(
        risk_profile(),
        bankroll=Decimal("100000"),
        side=Side.BUY,
        entry_price=Decimal("100"),
        stop_price=Decimal("99"),
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    assert (decision.quantity, decision.binding, decision.reason) == (250, BINDING_KELLY, None)
    assert decision.kelly_dollars == 25000


def test_caps_bind_and_are_named() -> None:
    args = dict(
        bankroll=Decimal("1000000"),
        side=Side.BUY,
        entry_price=Decimal("100"),
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    by_size = size_order(risk_profile(), stop_price=Decimal("99.5"), **args)  # type: ignore[arg-type]
    assert (by_size.quantity, by_size.binding) == (500, BINDING_MAX_TRADE_SIZE)
    by_risk = size_order(risk_profile(), stop_price=Decimal("90"), **args)  # type: ignore[arg-type]
    assert (by_risk.quantity, by_risk.binding) == (100, BINDING_MAX_DOLLAR_RISK)
    requested = size_order(risk_profile(), stop_price=Decimal("99.5"), max_quantity=7, **args)  # type: ignore[arg-type]
    assert requested.quantity == 7


def test_half_kelly_halves_the_size() -> None:
    common = dict(
        bankroll=Decimal("100000"),
        side=Side.SELL,
        entry_price=Decimal("100"),
        stop_price=Decimal("101"),
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    assert size_order(risk_profile(kelly_fraction=Decimal("0.5")), **common).quantity == 125  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(p=Decimal("0.4"), b=Decimal("1")), NO_EDGE),
        (dict(p=Decimal("0.5"), b=Decimal("1")), NO_EDGE),
        (dict(stop_price=Decimal("101")), STOP_WRONG_SIDE),
        (dict(stop_price=Decimal("100")), STOP_WRONG_SIDE),
        (dict(bankroll=Decimal("0")), NO_BANKROLL),
        (dict(bankroll=Decimal("100")), NO_SHARE),
    ],
)
def test_no_trade_reasons(kw: dict[str, Decimal], reason: str) -> None:
    args: dict[str, object] = dict(
        bankroll=Decimal("100000"),
        side=Side.BUY,
        entry_price=Decimal("100"),
        stop_price=Decimal("99"),
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    args.update(kw)
    decision = size_order(risk_profile(), **args)  # type: ignore[arg-type]
    assert (decision.quantity, decision.reason) == (0, reason)


def test_profile_validation_and_json_round_trip() -> None:
    p = risk_profile(kelly_fraction=Decimal("0.25"))
    assert RiskProfile.from_json_dict(p.to_json_dict()) == p
    with pytest.raises(ProfileInvalid) as err:
        risk_profile(kelly_fraction=Decimal("1.5"))
    assert err.value.field == "kelly_fraction"
    with pytest.raises(ProfileInvalid) as err:
        risk_profile(max_open_orders=0)
    assert err.value.field == "max_open_orders"
    with pytest.raises(ProfileInvalid) as err:
        RiskProfile.from_json_dict(p.to_json_dict() | {"max_trade_size": 5})
    assert err.value.field == "max_trade_size"
    with pytest.raises(ProfileInvalid) as err:
        RiskProfile.from_json_dict(p.to_json_dict() | {"leverage": "2"})
    assert err.value.field == "leverage"


money = st.decimals(min_value=Decimal("1"), max_value=Decimal("10000000"), places=2)
price_st = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
prob = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.99"), places=3)
ratio = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("20"), places=3)
fraction_st = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1"), places=2)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    side = draw(st.sampled_from(Side))
    entry = draw(price_st)
    distance = draw(st.decimals(min_value=Decimal("0.01"), max_value=entry * 2, places=2))
    stop = entry - distance if side is Side.BUY else entry + distance
    assume(stop > 0)
    return dict(
        profile=risk_profile(
            max_trade_size=draw(money), max_dollar_risk=draw(money), kelly_fraction=draw(fraction_st)
        ),
        bankroll=draw(money),
        side=side,
        entry_price=entry,
        stop_price=stop,
        p=draw(prob),
        b=draw(ratio),
    )


def run(s: dict[str, object], **over: object) -> int:
    args = dict(s) | over
    prof = args.pop("profile")
    return size_order(prof, **args).quantity  # type: ignore[arg-type]


@settings(deadline=None)
@given(scenarios())
def test_size_never_exceeds_max_trade_size_or_max_dollar_risk(s: dict[str, object]) -> None:
    q = run(s)
    prof: RiskProfile = s["profile"]  # type: ignore[assignment]
    entry: Decimal = s["entry_price"]  # type: ignore[assignment]
    stop: Decimal = s["stop_price"]  # type: ignore[assignment]
    assert q >= 0
    assert q * entry <= prof.max_trade_size
    assert q * abs(entry - stop) <= prof.max_dollar_risk


@settings(deadline=None)
@given(scenarios(), prob)
def test_size_is_monotone_in_p(s: dict[str, object], other_p: Decimal) -> None:
    lo, hi = sorted((s["p"], other_p))  # type: ignore[type-var]
    assert run(s, p=lo) <= run(s, p=hi)


@settings(deadline=None)
@given(scenarios(), ratio)
def test_size_is_monotone_in_b(s: dict[str, object], other_b: Decimal) -> None:
    lo, hi = sorted((s["b"], other_b))  # type: ignore[type-var]
    assert run(s, b=lo) <= run(s, b=hi)


@settings(deadline=None)
@given(scenarios())
def test_equals_textbook_kelly_where_no_cap_binds(s: dict[str, object]) -> None:
    huge = risk_profile(
        max_trade_size=Decimal("1e15"),
        max_dollar_risk=Decimal("1e15"),
        kelly_fraction=s["profile"].kelly_fraction,  # type: ignore[attr-defined]
    )
    p: Decimal = s["p"]  # type: ignore[assignment]
    b: Decimal = s["b"]  # type: ignore[assignment]
    bankroll: Decimal = s["bankroll"]  # type: ignore[assignment]
    entry: Decimal = s["entry_price"]  # type: ignore[assignment]
    f = Fraction(p) - (1 - Fraction(p)) / Fraction(b)
    textbook = max(0, floor(f * Fraction(bankroll) * Fraction(huge.kelly_fraction) / Fraction(entry)))
    assert run(s, profile=huge) == textbook


@settings(deadline=None)
@given(scenarios())
def test_quantity_is_the_largest_that_fits(s: dict[str, object]) -> None:
    prof: RiskProfile = s["profile"]  # type: ignore[assignment]
    decision = size_order(prof, **{k: v for k, v in s.items() if k != "profile"})  # type: ignore[arg-type]
    if decision.reason is not None and decision.reason != NO_SHARE:
        return
    q = decision.quantity + 1
    entry: Decimal = s["entry_price"]  # type: ignore[assignment]
    stop: Decimal = s["stop_price"]  # type: ignore[assignment]
    fits = (
        q * entry <= prof.max_trade_size
        and q * abs(entry - stop) <= prof.max_dollar_risk
        and q * Fraction(entry) <= decision.kelly_dollars
    )
    assert not fits
