from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import Side
from trading.iceberg import (
    SliceFill,
    average_price,
    fill_quality_bps,
    slice_delay_ms,
    slice_price,
    slice_quantity,
    slippage_bps,
)

TICK = Decimal("0.01")


def test_slice_price_improves_by_one_tick_when_spread_allows() -> None:
    assert slice_price(Side.BUY, Decimal("100.00"), Decimal("100.04"), TICK) == Decimal("100.01")
    assert slice_price(Side.SELL, Decimal("100.00"), Decimal("100.04"), TICK) == Decimal("100.03")
    assert slice_price(Side.BUY, Decimal("100.00"), Decimal("100.02"), TICK) == Decimal("100.01")


def test_slice_price_joins_touch_on_a_one_tick_spread() -> None:
    assert slice_price(Side.BUY, Decimal("100.00"), Decimal("100.01"), TICK) == Decimal("100.00")
    assert slice_price(Side.SELL, Decimal("100.00"), Decimal("100.01"), TICK) == Decimal("100.01")


def test_slice_price_respects_parent_limit_and_refuses_crossed_book() -> None:
    assert slice_price(Side.BUY, Decimal("100"), Decimal("100.10"), TICK, limit=Decimal("99.95")) == Decimal(
        "99.95"
    )
    assert slice_price(Side.SELL, Decimal("100"), Decimal("100.10"), TICK, limit=Decimal("100.20")) == (
        Decimal("100.20")
    )
    with pytest.raises(ValueError):
        slice_price(Side.BUY, Decimal("100"), Decimal("100"), TICK)


def test_slice_quantity_jitter_bounds_and_remaining() -> None:
    assert slice_quantity(100, 1000, 0.5) == 100
    assert slice_quantity(100, 1000, 0) == 95
    assert slice_quantity(100, 1000, Decimal("0.999999")) == 105
    assert slice_quantity(100, 30, 0.9) == 30
    assert slice_quantity(1, 10, 0) == 1
    with pytest.raises(ValueError):
        slice_quantity(100, 10, 1.0)


@settings(deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 100_000), st.floats(0, 1, exclude_max=True))
def test_slice_quantity_is_within_jitter_and_remaining(display: int, remaining: int, u: float) -> None:
    q = slice_quantity(display, remaining, u)
    assert 1 <= q <= remaining
    if q < remaining:
        assert abs(q - display) <= display * Decimal("0.05") + Decimal("0.5")


@settings(deadline=None)
@given(st.floats(0, 1, exclude_max=True))
def test_slice_delay_between_3_and_7_seconds(u: float) -> None:
    assert 3000 <= slice_delay_ms(u) < 7000


def test_fill_quality_in_bps() -> None:
    assert slippage_bps(Side.BUY, Decimal("100.05"), Decimal("100")) == Decimal("5")
    assert slippage_bps(Side.SELL, Decimal("100.05"), Decimal("100")) == Decimal("-5")
    fills = [
        SliceFill(100, Decimal("100.01"), Decimal("100")),
        SliceFill(300, Decimal("101.00"), Decimal("101")),
    ]
    # paid 100*100.01 + 300*101 = 40301, benchmark 40300 -> 1/40300 * 1e4 bps
    assert fill_quality_bps(Side.BUY, fills) == Decimal(1) * 10000 / Decimal(40300)
    assert average_price(fills) == Decimal("100.7525")
