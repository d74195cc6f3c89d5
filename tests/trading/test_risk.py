from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import OrderType, Side
from trading.fill_prices import FillRange, fill_range
from trading.risk import (
    AccountSnapshot,
    ProposedOrder,
    Refusal,
    RiskDecision,
    TradingState,
    check_order,
    check_parent,
    reduces_position,
)
from trading.sizing import RiskProfile, size_order

PROFILE = RiskProfile(
    max_trade_size=Decimal("10000"),
    max_dollar_risk=Decimal("500"),
    max_position=300,
    max_gross_exposure=Decimal("50000"),
    max_open_orders=3,
    staleness_ms=1000,
)


def snap(**kw: object) -> AccountSnapshot:
    base: dict[str, object] = dict(
        trading_state=TradingState.ACTIVE,
        position=0,
        gross_exposure=Decimal(0),
        open_orders=0,
        price_age_ms=10,
    )
    base.update(kw)
    return AccountSnapshot(**base)  # type: ignore[arg-type]


def buy(qty: int, price: str = "100", stop: str | None = "99") -> ProposedOrder:
    return ProposedOrder("AAPL", Side.BUY, qty, Decimal(price), None if stop is None else Decimal(stop))


@pytest.mark.parametrize(
    ("order", "account", "reason"),
    [
        (buy(10), snap(trading_state=TradingState.HALTED), Refusal.HALTED),
        (buy(10), snap(trading_state=TradingState.REDUCING), Refusal.REDUCING_ONLY),
        (buy(10), snap(price_age_ms=1001), Refusal.STALE_PRICE),
        (buy(101), snap(), Refusal.MAX_TRADE_SIZE),
        (buy(60, stop="90"), snap(), Refusal.MAX_DOLLAR_RISK),
        (buy(10), snap(position=295), Refusal.MAX_POSITION),
        (buy(50), snap(gross_exposure=Decimal("45001")), Refusal.MAX_GROSS_EXPOSURE),
        (buy(10), snap(open_orders=3), Refusal.MAX_OPEN_ORDERS),
    ],
)
def test_each_limit_refuses_with_its_name(
    order: ProposedOrder, account: AccountSnapshot, reason: Refusal
) -> None:
    decision = check_order(PROFILE, order, account)
    assert not decision.approved
    assert decision.reason is reason


def test_limits_are_inclusive() -> None:
    assert check_order(PROFILE, buy(100), snap()).approved  # exactly 10000 notional
    assert check_order(PROFILE, buy(50, stop="90"), snap()).approved  # exactly 500 risk
    assert check_order(PROFILE, buy(10), snap(position=290)).approved  # exactly 300 shares
    assert check_order(PROFILE, buy(10), snap(price_age_ms=1000)).approved
    assert check_order(PROFILE, buy(10), snap(open_orders=2)).approved


def test_reducing_state_lets_exits_through_and_halted_stops_everything() -> None:
    sell = ProposedOrder("AAPL", Side.SELL, 50, Decimal("100"))
    assert check_order(PROFILE, sell, snap(trading_state=TradingState.REDUCING, position=100)).approved
    flip = ProposedOrder("AAPL", Side.SELL, 150, Decimal("100"))
    assert check_order(PROFILE, flip, snap(trading_state=TradingState.REDUCING, position=100)).reason is (
        Refusal.REDUCING_ONLY
    )
    assert (
        check_order(PROFILE, sell, snap(trading_state=TradingState.HALTED, position=100)).reason
        is Refusal.HALTED
    )


def test_reducing_order_passes_position_and_exposure_limits() -> None:
    sell = ProposedOrder("AAPL", Side.SELL, 50, Decimal("100"))
    account = snap(position=400, gross_exposure=Decimal("90000"))
    assert check_order(PROFILE, sell, account).approved


def test_exit_without_stop_has_no_dollar_risk_check() -> None:
    assert check_order(PROFILE, buy(60, stop=None), snap()).approved


@settings(deadline=None)
@given(st.integers(-1000, 1000), st.sampled_from(Side), st.integers(1, 2000))
def test_reduces_position_means_abs_shrinks_without_flipping(position: int, side: Side, qty: int) -> None:
    after = position + side.sign * qty
    expected = abs(after) < abs(position) and (after == 0 or (after > 0) == (position > 0))
    assert reduces_position(position, side, qty) is expected
    if reduces_position(position, side, qty):
        assert position != 0 and abs(after) < abs(position)


def test_a_parent_larger_than_one_order_may_be_passes_when_the_position_allows_it() -> None:
    # 250 x 100 = 25,000 notional, far over max_trade_size and (stop 99) max_dollar_risk, and
    # the account already has max_open_orders working: none of that binds a parent.
    parent = buy(250)
    assert not check_order(PROFILE, parent, snap()).approved
    assert check_parent(PROFILE, parent, snap(open_orders=3)).approved


@pytest.mark.parametrize(
    ("order", "account", "reason"),
    [
        (buy(100), snap(trading_state=TradingState.HALTED), Refusal.HALTED),
        (buy(100), snap(trading_state=TradingState.REDUCING), Refusal.REDUCING_ONLY),
        (buy(100), snap(price_age_ms=5000), Refusal.STALE_PRICE),
        (buy(301), snap(), Refusal.MAX_POSITION),
        (buy(101), snap(position=200), Refusal.MAX_POSITION),
        (buy(200, price="300"), snap(gross_exposure=Decimal("0")), Refusal.MAX_GROSS_EXPOSURE),
    ],
)
def test_a_parent_is_refused_on_state_staleness_and_its_total_against_position_limits(
    order: ProposedOrder, account: AccountSnapshot, reason: Refusal
) -> None:
    assert check_parent(PROFILE, order, account).reason is reason


def test_a_parent_that_only_reduces_the_position_passes_position_limits_even_when_reducing() -> None:
    sell = ProposedOrder("AAPL", Side.SELL, 300, Decimal("100"))
    assert check_parent(PROFILE, sell, snap(position=300, trading_state=TradingState.REDUCING)).approved


# --- the prices an order is sized and checked at ---------------------------------------------


@pytest.mark.parametrize(
    ("side", "order_type", "limit", "stop", "touch", "low", "high"),
    [
        # A limit away from the market rests and trades at its own price.
        (Side.BUY, OrderType.LMT, "189", None, "189.50", "189", "189"),
        (Side.SELL, OrderType.LMT, "190", None, "189.40", "190", "190"),
        # A limit through the market takes the touch, and the book behind it up to its limit.
        (Side.BUY, OrderType.LMT, "250", None, "200", "200", "250"),
        (Side.SELL, OrderType.LMT, "10", None, "200", "10", "200"),
        # A buy stop above the market fills at its trigger or higher, never at today's ask ...
        (Side.BUY, OrderType.STP, None, "195", "189.50", "195", "195"),
        # ... and once the market is through the trigger, at the ask.
        (Side.BUY, OrderType.STP, None, "195", "196.10", "196.10", "196.10"),
        # A sell stop below the market fills at its trigger or lower.
        (Side.SELL, OrderType.STP, None, "185", "189.40", "185", "185"),
        (Side.SELL, OrderType.STP, None, "185", "184.20", "184.20", "184.20"),
        # A stop-limit is a limit met at the trigger (or at the touch once through it).
        (Side.BUY, OrderType.STP_LMT, "197", "195", "189.50", "195", "197"),
        (Side.BUY, OrderType.STP_LMT, "194", "195", "189.50", "194", "194"),
        (Side.SELL, OrderType.STP_LMT, "180", "185", "184.20", "180", "184.20"),
        # A TRAIL at the stop it is sent with.
        (Side.BUY, OrderType.TRAIL, None, "300", "200", "300", "300"),
        # MKT: the touch.
        (Side.BUY, OrderType.MKT, None, None, "189.50", "189.50", "189.50"),
        # No quote: the limit, the trigger, both for a stop-limit.
        (Side.BUY, OrderType.LMT, "190", None, None, "190", "190"),
        (Side.BUY, OrderType.STP, None, "195", None, "195", "195"),
        (Side.BUY, OrderType.STP_LMT, "194", "195", None, "194", "194"),
        (Side.SELL, OrderType.STP_LMT, "190", "185", None, "190", "190"),
    ],
)
def test_fill_range_holds_every_price_the_order_can_fill_at(
    side: Side, order_type: OrderType, limit: str | None, stop: str | None, touch: str | None,
    low: str, high: str,
) -> None:  # fmt: skip
    def dec(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    fills = fill_range(side, order_type, limit=dec(limit), stop=dec(stop), touch=dec(touch))
    assert fills == FillRange(Decimal(low), Decimal(high))


def test_without_a_quote_a_market_order_or_a_trail_without_its_stop_has_no_price() -> None:
    assert fill_range(Side.SELL, OrderType.MKT, limit=None, stop=None, touch=None) is None
    assert fill_range(Side.BUY, OrderType.TRAIL, limit=None, stop=None, touch=Decimal("200")) is None


def test_the_stop_must_be_on_the_losing_side_of_every_fill_and_the_loss_is_taken_at_the_worst() -> None:
    """The issue's SELL LMT 10.00 with the bid at 200: the stop at 10.20 is above the limit but
    below the bid the order really fills at."""
    through = FillRange(Decimal("10"), Decimal("200"))
    assert not through.stop_on_losing_side(Side.SELL, Decimal("10.20"))
    assert through.stop_on_losing_side(Side.SELL, Decimal("200.01"))
    assert through.loss_per_share(Side.SELL, Decimal("205")) == Decimal("195")  # at the limit
    assert through.notional_price == Decimal("200")
    assert not through.stop_on_losing_side(Side.BUY, Decimal("10"))  # equal is not a loss
    assert through.loss_per_share(Side.BUY, Decimal("9")) == Decimal("191")  # at the limit's end


def test_the_risk_gate_refuses_a_stop_on_the_wrong_side_of_any_fill() -> None:
    through = FillRange(Decimal("10"), Decimal("200"))
    sell = ProposedOrder.over("AAPL", Side.SELL, 1, through, Decimal("10.20"))
    assert check_order(PROFILE, sell, snap()).reason is Refusal.STOP_WRONG_SIDE
    # Notional at the highest fill: 51 x 200 is over 10,000 although 51 x 10 is not.
    wide = ProposedOrder.over("AAPL", Side.SELL, 51, through, None)
    assert check_order(PROFILE, wide, snap()).reason is Refusal.MAX_TRADE_SIZE


def test_a_buy_stop_above_the_market_is_sized_within_max_dollar_risk_at_its_trigger() -> None:
    """The case the rule exists for: sized at the ask, 1,111 shares would lose 11,110 at the stop."""
    profile = RiskProfile(
        max_trade_size=Decimal("1000000"),
        max_dollar_risk=Decimal("5000"),
        max_position=100_000,
        max_gross_exposure=Decimal("10000000"),
        max_open_orders=10,
        staleness_ms=5_000,
    )
    price = fill_range(Side.BUY, OrderType.STP, limit=None, stop=Decimal("195"), touch=Decimal("189.50"))
    assert price is not None
    size = size_order(
        profile,
        bankroll=Decimal("1000000"),
        side=Side.BUY,
        entry_price=price,
        stop_price=Decimal("185"),
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    assert size.quantity * (Decimal("195") - Decimal("185")) <= profile.max_dollar_risk
    assert size.quantity == 500


# --- exits, and the working orders on an order's side ---------------------------------------


def exit_sell(qty: int) -> ProposedOrder:
    return ProposedOrder("AAPL", Side.SELL, qty, Decimal("100"), None, reduce_only=True)


@pytest.mark.parametrize(
    ("position", "working_sells", "qty", "approved"),
    [
        (100, 0, 100, True),  # closes the position
        (100, 0, 40, True),  # reduces it
        (0, 0, 10, False),  # from flat it would open a short
        (100, 0, 150, False),  # it would flip long 100 to short 50
        (100, 60, 40, True),  # with the working exits it closes the position exactly
        (100, 60, 50, False),  # ... one more share and it would go short
        (100, 100, 1, False),  # the working exits already close it
        (-100, 0, 10, False),  # a sell never reduces a short
    ],
)
def test_an_exit_only_ever_shrinks_the_position_counting_the_working_exits(
    position: int, working_sells: int, qty: int, approved: bool
) -> None:
    account = snap(position=position, working_sell_qty=working_sells, exiting_sell_qty=working_sells)
    decision = check_order(PROFILE, exit_sell(qty), account)
    assert decision.approved is approved
    if not approved:
        assert decision.reason is Refusal.EXIT_EXCEEDS_POSITION


def test_an_exit_of_a_position_grown_past_max_trade_size_is_not_refused_for_its_size() -> None:
    """Two 90-share entries at 100 (each within Max Trade Size 10,000), and the price doubled:
    the whole position is worth 36,000. A desk must be able to get out in one order, whatever
    its notional; an exit has no stop of its own, so Max Dollar Risk does not speak either."""
    grown = ProposedOrder("AAPL", Side.SELL, 180, Decimal("200"), None, reduce_only=True)
    assert check_order(PROFILE, grown, snap(position=180)).approved
    # The exemption is the exit's: the same sell as an entry (short) is refused for its size...
    entry = ProposedOrder("AAPL", Side.SELL, 180, Decimal("200"), Decimal("210"))
    assert check_order(PROFILE, entry, snap(position=0)).reason is Refusal.MAX_TRADE_SIZE
    # ...and an exit larger than the position is still refused before any size is looked at.
    over = ProposedOrder("AAPL", Side.SELL, 181, Decimal("200"), None, reduce_only=True)
    assert check_order(PROFILE, over, snap(position=180)).reason is Refusal.EXIT_EXCEEDS_POSITION
    # A halted floor refuses it like any order.
    halted = snap(position=180, trading_state=TradingState.HALTED)
    assert check_order(PROFILE, grown, halted).reason is Refusal.HALTED


def test_working_entries_do_not_stop_an_exit() -> None:
    """A resting sell to open (an entry, above the market) does not stop a long from being
    closed; the position limit is what speaks about entries."""
    assert check_order(PROFILE, exit_sell(100), snap(position=100, working_sell_qty=300)).approved
    # If every sell filled the account would end short 301, over the limit of 300: the limit says no.
    over = check_order(PROFILE, exit_sell(100), snap(position=100, working_sell_qty=301))
    assert over.reason is Refusal.MAX_POSITION
    # ... but working exits do.
    assert not check_order(
        PROFILE, exit_sell(100), snap(position=100, working_sell_qty=60, exiting_sell_qty=60)
    ).approved


def test_reducing_only_counts_the_working_orders_on_the_orders_side() -> None:
    """Against a long 100 three 100-share sells would each reduce it on their own."""
    reducing = snap(trading_state=TradingState.REDUCING, position=100)
    sell = ProposedOrder("AAPL", Side.SELL, 100, Decimal("100"))
    assert check_order(PROFILE, sell, reducing).approved
    refused = check_order(
        PROFILE, sell, snap(trading_state=TradingState.REDUCING, position=100, working_sell_qty=100)
    )
    assert refused.reason is Refusal.REDUCING_ONLY
    # Working buys do not make a sell any less reducing.
    assert check_order(
        PROFILE, sell, snap(trading_state=TradingState.REDUCING, position=100, working_buy_qty=50)
    ).approved


def test_the_position_limit_counts_the_working_orders_on_the_orders_side() -> None:
    assert check_order(PROFILE, buy(10), snap(position=200, working_buy_qty=90)).approved  # ends at 300
    refused = check_order(PROFILE, buy(10), snap(position=200, working_buy_qty=91))
    assert refused.reason is Refusal.MAX_POSITION
    # Working sells would shrink the position, but may never fill: they do not make room.
    assert (
        check_order(PROFILE, buy(10), snap(position=295, working_sell_qty=100)).reason is Refusal.MAX_POSITION
    )
    # An iceberg parent is held to the same rule.
    assert (
        check_parent(PROFILE, buy(100), snap(position=150, working_buy_qty=60)).reason is Refusal.MAX_POSITION
    )


# --- manual orders: the trader's quantity, refused (never resized) beyond the limits ----------


def manual(qty: int, side: Side, fills: FillRange, stop_loss: str | None) -> ProposedOrder:
    stop = None if stop_loss is None else Decimal(stop_loss)
    return ProposedOrder.over("AAPL", side, qty, fills, stop, unprotected=stop is None)


def test_a_manual_order_without_a_stop_loss_risks_its_whole_notional() -> None:
    at_100 = FillRange.at(Decimal("100"))
    # 5 x 100 = 500 = Max Dollar Risk exactly: allowed; one share more is not.
    assert check_order(PROFILE, manual(5, Side.BUY, at_100, None), snap()).approved
    assert check_order(PROFILE, manual(6, Side.BUY, at_100, None), snap()) == RiskDecision.refuse(
        Refusal.MAX_DOLLAR_RISK
    )
    # A short without a stop: its notional too, never nothing.
    assert check_order(PROFILE, manual(6, Side.SELL, at_100, None), snap()).reason is Refusal.MAX_DOLLAR_RISK


def test_a_manual_order_with_a_stop_loss_risks_the_worst_fill_to_it() -> None:
    # A BUY limit through the ask fills anywhere in [99, 101]: the loss is taken at 101.
    fills = FillRange(Decimal("99"), Decimal("101"))
    assert check_order(PROFILE, manual(50, Side.BUY, fills, "91"), snap()).approved  # 50 x 10 = 500
    too_far = manual(50, Side.BUY, fills, "90.99")
    assert check_order(PROFILE, too_far, snap()).reason is Refusal.MAX_DOLLAR_RISK
    # A SELL's worst fill is the lowest: 50 x (109 - 99) = 500.
    assert check_order(PROFILE, manual(50, Side.SELL, fills, "109"), snap()).approved
    too_far = manual(50, Side.SELL, fills, "109.01")
    assert check_order(PROFILE, too_far, snap()).reason is Refusal.MAX_DOLLAR_RISK
    # A stop loss inside the fills bounds nothing.
    assert check_order(PROFILE, manual(1, Side.BUY, fills, "100"), snap()).reason is Refusal.STOP_WRONG_SIDE


def test_a_manual_orders_notional_is_checked_at_its_highest_fill() -> None:
    fills = FillRange(Decimal("99"), Decimal("101"))
    assert check_order(PROFILE, manual(99, Side.BUY, fills, "96"), snap()).approved  # 99 x 101 = 9999
    # 100 x 99 would be within Max Trade Size; 100 x 101 is not.
    assert check_order(PROFILE, manual(100, Side.BUY, fills, "96"), snap()).reason is Refusal.MAX_TRADE_SIZE


@given(
    qty=st.integers(1, 1000),
    low=st.decimals(Decimal("1"), Decimal("500"), places=2),
    spread=st.decimals(Decimal("0"), Decimal("5"), places=2),
    stop_loss=st.one_of(st.none(), st.decimals(Decimal("0.01"), Decimal("0.99"), places=2)),
    side=st.sampled_from(Side),
)
def test_a_manual_order_passes_exactly_when_both_limits_hold_at_the_worst_fill(
    qty: int, low: Decimal, spread: Decimal, stop_loss: Decimal | None, side: Side
) -> None:
    fills = FillRange(low, low + spread)
    if stop_loss is not None and side is Side.SELL:
        stop_loss = fills.high + stop_loss  # a sell's stop above every fill
    elif stop_loss is not None:
        stop_loss = fills.low * stop_loss  # a buy's below every fill
    order = ProposedOrder.over("AAPL", side, qty, fills, stop_loss, unprotected=stop_loss is None)
    roomy = snap()
    profile = RiskProfile(
        max_trade_size=Decimal("10000"), max_dollar_risk=Decimal("500"), max_position=10**6,
        max_gross_exposure=Decimal(10**9), max_open_orders=3, staleness_ms=1000,
    )  # fmt: skip
    notional = qty * fills.high
    loss = notional if stop_loss is None else qty * fills.loss_per_share(side, stop_loss)
    within = notional <= profile.max_trade_size and loss <= profile.max_dollar_risk
    assert check_order(profile, order, roomy).approved == within
