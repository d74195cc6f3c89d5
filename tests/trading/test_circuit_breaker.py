from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import risk_profile
from trading.circuit_breaker import DEFAULT_RULE, BreakerRule, CrashDetector, RuleInvalid, symbol_rules
from trading.sizing import ProfileInvalid, RiskProfile


def test_ten_percent_drop_within_window_trips_at_exactly_ten_percent() -> None:
    d = CrashDetector(Decimal("10"), window_ms=1000)
    assert d.on_tick(0, Decimal("100")) is None
    assert d.on_tick(100, Decimal("95")) is None
    assert d.on_tick(200, Decimal("90.01")) is None
    signal = d.on_tick(300, Decimal("90"))
    assert signal is not None
    assert (signal.reference_high, signal.price, signal.drop_pct) == (
        Decimal("100"),
        Decimal("90"),
        Decimal(10),
    )
    assert d.tripped is signal
    assert d.on_tick(400, Decimal("50")) is None  # stays tripped, reports once


def test_slow_decline_outside_the_window_does_not_trip() -> None:
    d = CrashDetector(Decimal("10"), window_ms=1000)
    price = Decimal("100")
    for i in range(40):
        assert d.on_tick(i * 500, price) is None
        price *= Decimal("0.97")  # -3% every half second: never -10% within one second
    assert d.tripped is None


def test_rearm_clears_history() -> None:
    d = CrashDetector(Decimal("5"), window_ms=1000)
    d.on_tick(0, Decimal("100"))
    assert d.on_tick(1, Decimal("94")) is not None
    d.rearm()
    assert d.tripped is None
    assert d.on_tick(2, Decimal("94")) is None
    assert d.on_tick(3, Decimal("93")) is None


def test_out_of_order_tick_is_taken_at_the_newest_time() -> None:
    d = CrashDetector(Decimal("10"), window_ms=1000)
    d.on_tick(5000, Decimal("100"))
    assert d.on_tick(4000, Decimal("89")) is not None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        CrashDetector(Decimal("0"), 1000)
    with pytest.raises(ValueError):
        CrashDetector(Decimal("10"), 0)


ticks = st.lists(
    st.tuples(st.integers(0, 300), st.decimals(min_value=Decimal("50"), max_value=Decimal("150"), places=1)),
    max_size=60,
)


@settings(deadline=None)
@given(ticks, st.sampled_from([Decimal("5"), Decimal("10"), Decimal("20")]), st.integers(1, 2000))
def test_matches_brute_force_rolling_high(
    steps: list[tuple[int, Decimal]], pct: Decimal, window: int
) -> None:
    d = CrashDetector(pct, window)
    history: list[tuple[int, Decimal]] = []
    t = 0
    for gap, price in steps:
        t += gap
        expected = any(ts >= t - window and price <= p * (1 - pct / 100) for ts, p in history)
        got = d.on_tick(t, price)
        assert (got is not None) == expected
        if got is not None:
            assert got.reference_high == max(p for ts, p in history if ts >= t - window)
            return
        history.append((t, price))


# The rule as written in trading.circuit_breaker's docstring: -9.9% never trips, -10% does,
# and one tick is enough.

highs = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("5000.00"), places=2)
windows = st.integers(1, 120_000)


@settings(deadline=None)
@given(highs, windows, st.lists(st.tuples(st.integers(0, 50), st.integers(0, 990)), max_size=40))
def test_no_fall_short_of_ten_percent_ever_trips(
    high: Decimal, window: int, steps: list[tuple[int, int]]
) -> None:
    d = CrashDetector(Decimal(10), window)
    assert d.on_tick(0, high) is None
    t = 0
    for gap, per_mille in steps:
        t += gap
        # Anywhere from the high down to -9.9% of it, in any order, as often as it likes.
        assert d.on_tick(t, high * (1000 - Decimal(per_mille) / 10) / 1000) is None
    assert d.on_tick(t, high * Decimal("0.901")) is None
    assert d.tripped is None


@settings(deadline=None)
@given(highs, windows, st.integers(0, 120_000))
def test_exactly_ten_percent_within_the_window_trips_on_that_one_tick(
    high: Decimal, window: int, at: int
) -> None:
    d = CrashDetector(Decimal(10), window)
    assert d.on_tick(0, high) is None
    assert d.on_tick(at, high * Decimal("0.95")) is None or at > window
    signal = d.on_tick(min(at, window), high * Decimal("0.9"))
    if at <= window:
        assert signal is not None and signal.drop_pct == Decimal(10)
        assert (signal.reference_high, signal.threshold_pct, signal.window_ms) == (high, Decimal(10), window)


@settings(deadline=None)
@given(
    highs,
    st.lists(st.integers(901, 1000), min_size=1, max_size=30),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.90"), places=2),
)
def test_a_single_bad_tick_trips_whatever_came_before(
    high: Decimal, before: list[int], fraction: Decimal
) -> None:
    """One print at -10% or lower halts the floor: no second tick is waited for."""
    d = CrashDetector(Decimal(10), 60_000)
    d.on_tick(0, high)
    for i, per_mille in enumerate(before, start=1):
        assert d.on_tick(i, high * per_mille / 1000) is None
    assert d.on_tick(len(before) + 1, high * fraction) is not None


def test_a_rule_sets_a_threshold_per_symbol_and_one_for_every_other() -> None:
    rule = BreakerRule(Decimal(10), 1_000, {"NVDA": Decimal(15)})
    assert rule.for_symbol("NVDA") == (Decimal(15), 1_000)
    assert rule.for_symbol("AAPL") == (Decimal(10), 1_000)
    assert BreakerRule.from_json_dict(rule.to_json_dict()) == rule
    assert BreakerRule.from_json_dict({}) == DEFAULT_RULE == BreakerRule(Decimal(10), 60_000)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"drop_pct": "0"}, "drop_pct"),
        ({"drop_pct": "100"}, "drop_pct"),
        ({"drop_pct": 10}, "drop_pct"),
        ({"window_ms": 0}, "window_ms"),
        ({"symbols": {"NVDA": "150"}}, "symbols.NVDA"),
        ({"symbols": {"nvda": "15"}}, "symbols"),
        ({"trip_on": "anything"}, "trip_on"),
    ],
)
def test_a_rule_outside_its_domain_is_refused_naming_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        BreakerRule.from_json_dict(data)
    assert caught.value.field == field


def test_a_risk_profile_carries_its_rule_and_reads_back_without_one() -> None:
    plain = risk_profile()
    assert "breaker" not in plain.to_json_dict()  # profiles signed before the rule read the same
    ruled = dataclasses.replace(plain, breaker=BreakerRule(Decimal(12), 5_000, {"TSLA": Decimal(20)}))
    assert RiskProfile.from_json_dict(ruled.to_json_dict()) == ruled
    with pytest.raises(ProfileInvalid) as caught:
        RiskProfile.from_json_dict({**plain.to_json_dict(), "breaker": {"drop_pct": "-1"}})
    assert caught.value.field == "breaker.drop_pct"


rules = st.one_of(
    st.none(),
    st.builds(
        BreakerRule,
        st.sampled_from([Decimal(5), Decimal(10), Decimal(15)]),
        st.sampled_from([500, 1_000, 60_000]),
        st.dictionaries(
            st.sampled_from(["AAPL", "MSFT"]), st.sampled_from([Decimal(8), Decimal(20)]), max_size=2
        ),
    ),
)


@settings(deadline=None)
@given(st.lists(rules, max_size=4), ticks)
def test_the_floor_trips_exactly_when_one_accounts_rule_would(
    accounts: list[BreakerRule | None], steps: list[tuple[int, Decimal]]
) -> None:
    each = [CrashDetector(*(rule or DEFAULT_RULE).for_symbol("AAPL")) for rule in accounts] or [
        CrashDetector(*DEFAULT_RULE.for_symbol("AAPL"))
    ]
    merged = [CrashDetector(*rule) for rule in symbol_rules("AAPL", accounts)]
    t = 0
    for gap, price in steps:
        t += gap
        alone = [d.on_tick(t, price) is not None for d in each]
        together = [d.on_tick(t, price) is not None for d in merged]
        assert any(alone) == any(together)
        if any(alone):
            return
