"""Circuit breaker wiring: one global cancel on the crashing tick, halted until re-armed."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from brokers.base import ReadOnlySession
from hotpath.circuit_breaker import CircuitBreaker, Trip
from tests.factories import risk_profile
from trading.circuit_breaker import BreakerRule
from trading.risk import TradingState


def make() -> tuple[CircuitBreaker, list[str], list[Trip]]:
    calls: list[str] = []
    trips: list[Trip] = []
    breaker = CircuitBreaker(lambda: calls.append("cancel_all"), trips.append, Decimal(10), 1_000)
    return breaker, calls, trips


def test_a_ten_percent_drop_inside_the_window_cancels_everything_once_and_halts() -> None:
    breaker, calls, trips = make()
    assert breaker.on_price("AAPL", 0, Decimal("100"), 1) is None
    assert breaker.on_price("AAPL", 500, Decimal("95"), 2) is None
    trip = breaker.on_price("AAPL", 900, Decimal("90"), 3)
    assert trip is not None and trip.symbol == "AAPL" and trip.tick_recv_ns == 3
    assert trip.cancel_written_ns >= trip.tick_recv_ns
    assert calls == ["cancel_all"] and trips == [trip]
    assert breaker.state is TradingState.HALTED and breaker.halted
    # Further crashing ticks, on any symbol, do not cancel again.
    breaker.on_price("AAPL", 950, Decimal("80"), 4)
    assert calls == ["cancel_all"]


def test_a_cancel_all_that_raises_still_halts_and_records_the_trip(caplog: pytest.LogCaptureFixture) -> None:
    """A broker that refuses the global cancel (or one of several that does) must not keep the
    trip from being ledgered and reported, nor an operator's halt from taking hold."""

    def refuse() -> None:
        raise ReadOnlySession("this IB connection is for market data only")

    trips: list[Trip] = []
    breaker = CircuitBreaker(refuse, trips.append, Decimal(10), 1_000)
    breaker.on_price("AAPL", 0, Decimal("100"), 1)
    trip = breaker.on_price("AAPL", 900, Decimal("90"), 2)
    assert trip is not None and trips == [trip] and breaker.halted and breaker.trips == 1
    assert "market data only" in caplog.text and "may still be working" in caplog.text
    breaker.arm()
    breaker.halt()
    assert breaker.halted


def test_a_slow_decline_outside_the_window_does_not_trip() -> None:
    breaker, calls, _ = make()
    for i, price in enumerate(["100", "97", "94", "91", "89"]):
        assert breaker.on_price("AAPL", i * 1_001, Decimal(price), i) is None
    assert calls == [] and breaker.state is TradingState.ACTIVE


def test_symbols_are_watched_separately() -> None:
    breaker, calls, _ = make()
    breaker.on_price("AAPL", 0, Decimal("100"), 0)
    assert breaker.on_price("MSFT", 10, Decimal("90"), 0) is None  # MSFT's first tick is its own high
    assert calls == []


def test_arming_resumes_intake_and_forgets_the_old_high() -> None:
    breaker, calls, _ = make()
    breaker.on_price("AAPL", 0, Decimal("100"), 0)
    breaker.on_price("AAPL", 10, Decimal("89"), 0)
    assert breaker.arm() is True
    assert breaker.state is TradingState.ACTIVE
    # 89 is the new reference; 85 is -4.5% from it, no trip although -15% from the old high.
    breaker.on_price("AAPL", 20, Decimal("89"), 0)
    assert breaker.on_price("AAPL", 30, Decimal("85"), 0) is None
    assert calls == ["cancel_all"]
    assert breaker.arm() is False


def test_each_accounts_rule_from_its_risk_profile_is_watched() -> None:
    breaker, calls, trips = make()
    wide = dataclasses.replace(risk_profile(), breaker=BreakerRule(Decimal(10), 1_000, {"NVDA": Decimal(15)}))
    breaker.follow({"DU1": wide})
    breaker.on_price("NVDA", 0, Decimal("100"), 0)
    assert breaker.on_price("NVDA", 10, Decimal("86"), 0) is None  # -14%: within NVDA's 15
    # A second account, watching AAPL at -5%: the floor trips when either account's rule does.
    tight = dataclasses.replace(risk_profile(), breaker=BreakerRule(Decimal(5), 1_000))
    breaker.follow({"DU1": wide, "DU2": tight})
    breaker.on_price("AAPL", 20, Decimal("100"), 0)
    trip = breaker.on_price("AAPL", 30, Decimal("95"), 0)
    assert trip is not None and calls == ["cancel_all"] and trips == [trip]
    assert (trip.signal.threshold_pct, trip.signal.window_ms) == (Decimal(5), 1_000)


def test_an_unchanged_profile_mapping_keeps_the_detectors_history() -> None:
    breaker, calls, _ = make()
    profiles = {"DU1": risk_profile()}  # no rule: the breaker's own default, -10% in 1 s
    breaker.follow(profiles)
    breaker.on_price("AAPL", 0, Decimal("100"), 0)
    breaker.follow(profiles)
    breaker.follow(dict(profiles))  # a reload with the same rules: the high of 100 stays
    assert breaker.on_price("AAPL", 10, Decimal("90"), 0) is not None
    assert calls == ["cancel_all"]
