from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.circuit_breaker import CrashDetector


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
