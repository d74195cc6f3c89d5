"""Protective limits: where an entry's limit goes (the collar, rounded away from the touch), and
that an entry sized at it stays within Max Trade Size and Max Dollar Risk however far the book
behind the touch would have taken a market order.

The venue model here is the property's own: a market order (or a triggered stop) takes the touch
and then any price beyond it, as deep as the book goes; a limit takes the touch and then prices
up to its limit, never past it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trading.commands import OrderType, Side
from trading.fill_prices import fill_range
from trading.protective_limits import (
    CollarInvalid,
    collar_price,
    limit_offset,
    protective_limit,
    sent_type,
)
from trading.risk import AccountSnapshot, ProposedOrder, TradingState, check_order
from trading.sizing import RiskProfile, size_order

CENT = Decimal("0.01")
BPS = Decimal(5)


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: Decimal(n) * CENT)


@pytest.mark.parametrize(
    ("side", "price", "bps", "limit"),
    [
        # 140.44 x 1.0005 = 140.51022: up to the next cent for a BUY.
        (Side.BUY, "140.44", "5", "140.52"),
        # 140.44 x 0.9995 = 140.36978: down to the cent below for a SELL.
        (Side.SELL, "140.44", "5", "140.36"),
        # Exactly on the grid: no rounding either way.
        (Side.BUY, "100.00", "5", "100.05"),
        (Side.SELL, "100.00", "5", "99.95"),
        # Less than a cent of collar still moves a whole cent away from the touch.
        (Side.BUY, "10.00", "5", "10.01"),
        (Side.SELL, "10.00", "5", "9.99"),
        # No collar: the touch itself.
        (Side.BUY, "140.44", "0", "140.44"),
        (Side.SELL, "140.44", "0", "140.44"),
        # A fraction of a basis point.
        (Side.BUY, "200.00", "2.5", "200.05"),
        # A SELL limit never goes below one tick.
        (Side.SELL, "0.01", "5", "0.01"),
    ],
)
def test_the_collar_rounds_away_from_the_touch(side: Side, price: str, bps: str, limit: str) -> None:
    assert collar_price(side, Decimal(price), Decimal(bps), CENT) == Decimal(limit)


@pytest.mark.parametrize("bps", ["-1", "10000", "NaN", "Infinity"])
def test_a_collar_outside_zero_to_ten_thousand_bps_is_refused(bps: str) -> None:
    with pytest.raises(CollarInvalid):
        collar_price(Side.BUY, Decimal("100"), Decimal(bps), CENT)


@given(side=st.sampled_from(Side), price=cents(1, 10_000_000), bps=cents(0, 99_999))
def test_the_limit_is_on_the_grid_never_inside_the_collar_and_less_than_a_tick_beyond_it(
    side: Side, price: Decimal, bps: Decimal
) -> None:
    limit = collar_price(side, price, bps, CENT)
    exact = price * (10_000 + side.sign * bps) / 10_000
    assert limit % CENT == 0
    if side is Side.BUY:
        assert exact <= limit < exact + CENT
    else:
        assert limit == CENT or exact - CENT < limit <= exact


def test_which_entries_get_a_limit_and_what_they_are_sent_as() -> None:
    ask, trigger = Decimal("100.00"), Decimal("101.00")

    def limit(side: Side, order_type: OrderType, stop: Decimal | None, touch: Decimal | None) -> object:
        return protective_limit(side, order_type, stop=stop, touch=touch, collar_bps=BPS, tick=CENT)

    assert limit(Side.BUY, OrderType.MKT, None, ask) == Decimal("100.05")
    # A stop goes live at its trigger...
    assert limit(Side.BUY, OrderType.STP, trigger, ask) == Decimal("101.06")
    # ...or at the touch when the market is already through it.
    assert limit(Side.BUY, OrderType.STP, Decimal("99"), ask) == Decimal("100.05")
    assert limit(Side.SELL, OrderType.TRAIL, Decimal("99"), Decimal("99.90")) == Decimal("98.95")
    assert limit(Side.SELL, OrderType.TRAIL, Decimal("101"), Decimal("99.90")) == Decimal("99.85")
    # Without a quote a stop is taken at its trigger; a market order has no price at all.
    assert limit(Side.BUY, OrderType.STP, trigger, None) == Decimal("101.06")
    assert limit(Side.BUY, OrderType.MKT, None, None) is None
    # Orders that carry their own limit are sent as signed.
    assert limit(Side.BUY, OrderType.LMT, None, ask) is None
    assert limit(Side.BUY, OrderType.STP_LMT, trigger, ask) is None
    assert sent_type(OrderType.MKT, Decimal(1)) is OrderType.LMT
    assert sent_type(OrderType.STP, Decimal(1)) is OrderType.STP_LMT
    assert sent_type(OrderType.TRAIL, Decimal(1)) is OrderType.STP_LMT
    assert sent_type(OrderType.MKT, None) is OrderType.MKT
    assert limit_offset(Decimal("101.00"), Decimal("101.06")) == Decimal("0.06")


def test_the_loops_entry_sized_at_the_touch_filled_past_max_trade_size_and_at_its_limit_cannot() -> None:
    """The 200-trade loop's entry: ask 140.44, Max Trade Size 50,000: sized at the touch it was
    356 shares, and filled at 140.449466 on average ($50,000.01). Sized at its protective
    limit it is 355, and no fill up to the limit takes it past the cap."""
    profile = _profile(max_trade_size=Decimal(50_000))
    ask, stop = Decimal("140.44"), Decimal("139.00")
    at_touch = fill_range(Side.BUY, OrderType.MKT, limit=None, stop=None, touch=ask)
    assert at_touch is not None
    before = size_order(profile, bankroll=Decimal(10**7), side=Side.BUY, entry_price=at_touch,
                        stop_price=stop, p=Decimal("0.55"), b=Decimal("1.5"))  # fmt: skip
    assert before.quantity == 356 and before.quantity * Decimal("140.449466") > profile.max_trade_size
    limit = protective_limit(Side.BUY, OrderType.MKT, stop=None, touch=ask, collar_bps=BPS, tick=CENT)
    assert limit == Decimal("140.52")
    fills = fill_range(Side.BUY, OrderType.MKT, limit=None, stop=None, touch=ask, protective_limit=limit)
    assert fills is not None and (fills.low, fills.high) == (ask, limit)
    after = size_order(profile, bankroll=Decimal(10**7), side=Side.BUY, entry_price=fills,
                       stop_price=stop, p=Decimal("0.55"), b=Decimal("1.5"))  # fmt: skip
    assert after.quantity == 355 and after.quantity * limit <= profile.max_trade_size


def _profile(**limits: Decimal) -> RiskProfile:
    values: dict[str, object] = dict(
        max_trade_size=Decimal(50_000), max_dollar_risk=Decimal(1_000_000), max_position=10**9,
        max_gross_exposure=Decimal("1e15"), max_open_orders=1000, staleness_ms=1000,
    )  # fmt: skip
    values.update(limits)
    return RiskProfile(**values)  # type: ignore[arg-type]


@settings(deadline=None, max_examples=400)
@given(
    side=st.sampled_from(Side),
    order_type=st.sampled_from((OrderType.MKT, OrderType.STP, OrderType.TRAIL)),
    bid=cents(100, 50_000),
    spread=cents(1, 50),
    trigger_offset=st.integers(-200, 200),
    edge_distance=cents(1, 5_000),
    bps=cents(0, 5_000),
    max_trade_size=cents(10_000, 10_000_000),
    max_dollar_risk=cents(100, 1_000_000),
    walk=cents(0, 100_000),
)
def test_an_entry_sent_at_its_protective_limit_stays_within_the_limits_however_deep_the_book_walk(
    side: Side,
    order_type: OrderType,
    bid: Decimal,
    spread: Decimal,
    trigger_offset: int,
    edge_distance: Decimal,
    bps: Decimal,
    max_trade_size: Decimal,
    max_dollar_risk: Decimal,
    walk: Decimal,
) -> None:
    ask = bid + spread
    touch = ask if side is Side.BUY else bid
    stop = None if order_type is OrderType.MKT else touch + trigger_offset * CENT
    assume(stop is None or stop > 0)
    limit = protective_limit(side, order_type, stop=stop, touch=touch, collar_bps=bps, tick=CENT)
    assert limit is not None
    live = touch if stop is None else (max(stop, touch) if side is Side.BUY else min(stop, touch))
    edge_stop = live - side.sign * edge_distance
    assume(edge_stop > 0)
    fills = fill_range(side, order_type, limit=None, stop=stop, touch=touch, protective_limit=limit)
    assert fills is not None
    profile = _profile(max_trade_size=max_trade_size, max_dollar_risk=max_dollar_risk)
    size = size_order(profile, bankroll=Decimal(10**9), side=side, entry_price=fills, stop_price=edge_stop,
                      p=Decimal("0.55"), b=Decimal("1.5"))  # fmt: skip
    if size.reason is not None:
        return
    order = ProposedOrder.over("X", side, size.quantity, fills, edge_stop)
    assert check_order(profile, order, AccountSnapshot(TradingState.ACTIVE, 0, Decimal(0), 0, 0)).approved
    # The venue: the touch, then as deep as the book goes, but a limit stops the walk at it.
    walked = live + side.sign * walk
    deepest = min(walked, limit) if side is Side.BUY else max(walked, limit)
    for price in (live, deepest):
        assert size.quantity * price <= max_trade_size
        assert size.quantity * (price - edge_stop) * side.sign <= max_dollar_risk
