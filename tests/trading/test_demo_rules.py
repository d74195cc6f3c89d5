"""The demo brain's rules: signals, entries priced so the floor takes them, every order type and
both sides over a seeded run, and the caps-binding share honoured."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from trading.commands import OrderType, Side
from trading.demo_rules import (
    BREAKOUT,
    ENTRY_ORDER_TYPES,
    MEAN_REVERSION,
    MOMENTUM,
    EntryChooser,
    Phase,
    Position,
    PriceWindow,
    Quote,
    signal,
)
from trading.fill_prices import fill_range
from trading.sizing import kelly_fraction_exact


def window_of(*mids: str) -> PriceWindow:
    window = PriceWindow(len(mids) - 1)
    for mid in mids:
        window.add(Decimal(mid))
    return window


def test_each_rule_signals_as_named() -> None:
    up = window_of("100", "100", "100", "101")
    down = window_of("100", "100", "100", "99")
    flat = window_of("100", "100", "100", "100")
    assert signal(MEAN_REVERSION, up) is Side.SELL and signal(MEAN_REVERSION, down) is Side.BUY
    assert signal(MOMENTUM, up) is Side.BUY and signal(MOMENTUM, down) is Side.SELL
    assert signal(BREAKOUT, up) is Side.BUY and signal(BREAKOUT, down) is Side.SELL
    assert {signal(rule, flat) for rule in (MEAN_REVERSION, MOMENTUM, BREAKOUT)} == {None}
    assert signal(MOMENTUM, PriceWindow(5)) is None  # not enough prices yet


def test_a_seeded_run_uses_every_order_type_both_sides_and_the_binding_share() -> None:
    rng = random.Random(3)
    chooser = EntryChooser(rng, Decimal("0.3"))
    quote = Quote("AAPL", Decimal("189.50"), Decimal("189.52"))
    plans = [chooser.plan(quote, Side.BUY if rng.random() < 0.5 else Side.SELL) for _ in range(100)]

    assert {p.order_type for p in plans} == set(ENTRY_ORDER_TYPES)
    assert {(p.order_type, p.side) for p in plans} == {(t, s) for t in ENTRY_ORDER_TYPES for s in Side}
    assert sum(p.caps_binding for p in plans) == 30
    assert {p.trail_exit for p in plans} == {True, False}
    for plan in plans:
        f = kelly_fraction_exact(plan.edge.p, plan.edge.b)
        # A small claim Kelly sizes, or one (60 %+ of the bankroll) that the caps must bind.
        assert (f > Decimal("0.5")) if plan.caps_binding else (0 < f <= Decimal("0.01"))
        # The edge's stop is on the losing side of every price the order can fill at.
        touch = quote.ask if plan.side is Side.BUY else quote.bid
        trail_stop = touch + plan.side.sign * (plan.trail_amount or 0)
        stop = trail_stop if plan.order_type is OrderType.TRAIL else plan.stop_price
        fills = fill_range(plan.side, plan.order_type, limit=plan.limit_price, stop=stop, touch=touch)
        assert fills is not None and fills.stop_on_losing_side(plan.side, plan.edge.stop_price), plan


@pytest.mark.parametrize("share", [Decimal("0"), Decimal("0.25"), Decimal("1")])
def test_the_caps_binding_share_is_honoured(share: Decimal) -> None:
    chooser = EntryChooser(random.Random(0), share)
    assert sum(chooser.next_caps_binding() for _ in range(200)) == int(share * 200)


def test_a_position_goes_flat_entering_in_exiting_flat() -> None:
    chooser = EntryChooser(random.Random(1), Decimal("0"))
    plan = chooser.plan(Quote("AAPL", Decimal("100"), Decimal("100.02")), Side.BUY)
    pos = Position("AAPL")
    pos.entering(plan, "e1", 0.0)
    pos.entry_filled(7)
    pos.entry_ended(1.0)
    assert (pos.phase, pos.quantity, pos.exit_side) == (Phase.IN, 7, Side.SELL)
    pos.exiting("x1", 2.0)
    pos.exit_filled_to(3)
    assert pos.exit_ended(3.0) is False and (pos.phase, pos.quantity) == (Phase.IN, 4)
    pos.exiting("x2", 4.0)
    pos.exit_filled_to(4)
    assert pos.exit_ended(5.0) is True and pos.phase is Phase.FLAT


def test_an_entry_that_never_filled_leaves_the_position_flat() -> None:
    plan = EntryChooser(random.Random(1), Decimal("0")).plan(
        Quote("AAPL", Decimal("100"), Decimal("100.02")), Side.SELL
    )
    pos = Position("AAPL")
    pos.entering(plan, "e1", 0.0)
    pos.entry_ended(1.0)
    assert pos.phase is Phase.FLAT and pos.entry_id is None


def test_a_position_left_behind_is_adopted_and_exited_without_an_entry() -> None:
    pos = Position("AAPL")
    pos.adopt(Side.SELL, 12, 0.0)
    assert (pos.phase, pos.side, pos.quantity, pos.exit_side, pos.entry) == (
        Phase.IN,
        Side.SELL,
        12,
        Side.BUY,
        None,
    )
    pos.exiting("x1", 1.0)
    pos.exit_filled_to(12)
    assert pos.exit_ended(2.0) is True and pos.phase is Phase.FLAT


def test_entries_can_be_limited_to_order_types_with_a_bounded_fill() -> None:
    bounded = (OrderType.LMT, OrderType.STP_LMT)
    chooser = EntryChooser(random.Random(2), Decimal("0.5"), bounded)
    assert {chooser.next_order_type() for _ in range(20)} == set(bounded)
