from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import Side
from trading.trailing import TrailingStop, round_to_tick

TICK = Decimal("0.01")


def test_long_stop_trails_up_and_never_down() -> None:
    stop = TrailingStop(Side.BUY, TICK, Decimal("95.00"), trail_amount=Decimal("5"))
    assert stop.on_price(Decimal("100.00")) is None  # candidate 95.00 equals current
    moved = stop.on_price(Decimal("101.50"))
    assert moved is not None and moved.stop == Decimal("96.50")
    assert moved.on_price(Decimal("99")) is None
    assert moved.triggered(Decimal("96.50")) and not moved.triggered(Decimal("96.51"))


def test_short_percent_trail_rounds_away_from_price() -> None:
    stop = TrailingStop(Side.SELL, TICK, Decimal("110"), trail_percent=Decimal("3"))
    moved = stop.on_price(Decimal("100.01"))  # 100.01 * 1.03 = 103.0103 -> up to 103.02
    assert moved is not None and moved.stop == Decimal("103.02")
    assert moved.triggered(Decimal("103.02")) and not moved.triggered(Decimal("103.01"))


def test_min_step_suppresses_small_moves() -> None:
    stop = TrailingStop(Side.BUY, TICK, Decimal("95"), trail_amount=Decimal("5"), min_step=Decimal("0.10"))
    assert stop.on_price(Decimal("100.09")) is None
    moved = stop.on_price(Decimal("100.10"))
    assert moved is not None and moved.stop == Decimal("95.10")


def test_needs_exactly_one_trail() -> None:
    with pytest.raises(ValueError):
        TrailingStop(Side.BUY, TICK, Decimal("1"))
    with pytest.raises(ValueError):
        TrailingStop(Side.BUY, TICK, Decimal("1"), trail_amount=Decimal("1"), trail_percent=Decimal("1"))


def test_round_to_tick() -> None:
    assert round_to_tick(Decimal("1.234"), Decimal("0.05"), up=False) == Decimal("1.20")
    assert round_to_tick(Decimal("1.234"), Decimal("0.05"), up=True) == Decimal("1.25")
    assert round_to_tick(Decimal("1.25"), Decimal("0.05"), up=True) == Decimal("1.25")


@settings(deadline=None)
@given(
    st.sampled_from(Side),
    st.lists(
        st.decimals(min_value=Decimal("50"), max_value=Decimal("150"), places=2), min_size=1, max_size=40
    ),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10"), places=2),
)
def test_stop_is_monotone_and_at_least_the_trail_from_the_best_price(
    side: Side, prices: list[Decimal], trail: Decimal
) -> None:
    start = Decimal("1") if side is Side.BUY else Decimal("1000")
    stop = TrailingStop(side, TICK, start, trail_amount=trail)
    best = prices[0]
    for price in prices:
        best = max(best, price) if side is Side.BUY else min(best, price)
        moved = stop.on_price(price)
        if moved is not None:
            assert (moved.stop > stop.stop) if side is Side.BUY else (moved.stop < stop.stop)
            assert abs(price - moved.stop) >= trail
            assert moved.stop % TICK == 0
            stop = moved
    # The final stop is exactly where the best price puts it.
    assert stop.stop == stop.candidate(best)
