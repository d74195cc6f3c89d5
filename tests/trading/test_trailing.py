from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import Side
from trading.trailing import TrailingStop, entry_bound, round_to_tick

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


CENTS = st.integers(min_value=100, max_value=100_000).map(lambda c: Decimal(c) / 100)


@settings(max_examples=300)
@given(
    order_side=st.sampled_from(list(Side)),
    start=CENTS,
    edge_gap=st.integers(min_value=1, max_value=2_000).map(lambda c: Decimal(c) / 100),
    quantity=st.integers(min_value=1, max_value=5_000),
    slack=st.integers(min_value=0, max_value=10_000).map(Decimal),
    trail=st.integers(min_value=1, max_value=500).map(lambda c: Decimal(c) / 100),
    path=st.lists(st.integers(min_value=-300, max_value=300), min_size=1, max_size=40),
)
def test_an_entrys_trailing_stop_never_carries_it_past_max_trade_size_or_through_its_protective_stop(
    order_side: Side,
    start: Decimal,
    edge_gap: Decimal,
    quantity: int,
    slack: Decimal,
    trail: Decimal,
    path: list[int],
) -> None:
    """Sized at its starting stop (notional within Max Trade Size, the edge's stop on the far
    side), an entry stays so however the price runs: notional at the stop within the limit, the
    stop short of the edge's stop, and the loss to it no larger than sized."""
    edge = start + edge_gap if order_side is Side.SELL else start - edge_gap
    if edge <= 0:
        return
    max_trade_size = quantity * start + slack  # the sizing approved the starting stop
    position_side = Side.BUY if order_side is Side.SELL else Side.SELL
    bound = entry_bound(order_side, quantity, edge, max_trade_size, TICK)
    stop = TrailingStop(position_side, TICK, start, trail_amount=trail, bound=bound)
    sized_loss = quantity * abs(edge - start)
    price = start + trail if order_side is Side.SELL else start - trail
    for step in path:
        price = max(price + Decimal(step) / 10, TICK)
        stop = stop.on_price(price) or stop
        assert quantity * stop.stop <= max_trade_size
        assert stop.stop < edge if order_side is Side.SELL else stop.stop > edge
        assert quantity * abs(edge - stop.stop) <= sized_loss


def test_the_reviewed_case_a_sell_entry_trailing_a_rally_stops_at_max_trade_size() -> None:
    """SELL TRAIL 1 below a bid of 100, edge stop 101, sized at its stop 99: 500 shares. The
    price runs to 110: unbounded, the stop would follow to 109 (54,500 of notional)."""
    bound = entry_bound(Side.SELL, 500, Decimal("101"), Decimal("50000"), TICK)
    assert bound == Decimal("100.00")
    stop = TrailingStop(Side.BUY, TICK, Decimal("99"), trail_amount=Decimal("1"), bound=bound)
    moved = stop.on_price(Decimal("110"))
    assert moved is not None and moved.stop == Decimal("100.00")
    assert moved.on_price(Decimal("120")) is None


def test_a_manual_sell_entry_without_a_stop_loss_trails_no_further_than_its_notional_cap() -> None:
    """No protective stop: the whole notional is the risk, and the caller's cap (the lesser of
    Max Trade Size and Max Dollar Risk) alone bounds a SELL entry's rising stop."""
    bound = entry_bound(Side.SELL, 100, None, Decimal("5000"), TICK)
    assert bound == Decimal("50.00")
    stop = TrailingStop(Side.BUY, TICK, Decimal("45"), trail_amount=Decimal("1"), bound=bound)
    moved = stop.on_price(Decimal("60"))
    assert moved is not None and moved.stop == Decimal("50.00") and 100 * moved.stop <= 5000


def test_a_manual_buy_entry_without_a_stop_loss_may_trail_all_the_way_down() -> None:
    """A BUY entry's stop only falls, and its notional (its whole risk) with it."""
    assert entry_bound(Side.BUY, 100, None, Decimal("5000"), TICK) == TICK
