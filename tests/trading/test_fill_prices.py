"""Sizing holds whatever the order: for every price an order can fill at given the touch, the
quantity the sizer and the risk gate let through keeps notional within Max Trade Size and the
loss to the stop within Max Dollar Risk, or the order is refused.

The fills are those of a small venue model written here on its own terms (a limit through the
market walks the book from the touch to its limit, a resting limit trades at its price, a stop
becomes live when the market reaches its trigger, a TRAIL is the stop order actually sent), so
the property does not take :mod:`trading.fill_prices` on trust."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hotpath.exit_manager import DEFAULT_TICK, ExitManager
from tests.factories import risk_profile
from trading.commands import OrderType, Side
from trading.fill_prices import STOP_WRONG_SIDE, FillRange, fill_range
from trading.risk import AccountSnapshot, ProposedOrder, Refusal, TradingState, check_order
from trading.sizing import RiskProfile, SizeDecision, size_order

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Case:
    side: Side
    order_type: OrderType
    bid: Decimal
    ask: Decimal
    limit: Decimal | None
    trigger: Decimal | None
    """STP / STP_LMT trigger; a TRAIL's stop_price when the command names one."""
    trail: Decimal | None
    trail_percent: Decimal | None
    edge_stop: Decimal
    profile: RiskProfile
    bankroll: Decimal
    walk: Decimal
    """Where in [0, 1] of the way from the touch to the limit a book walk ends."""

    @property
    def touch(self) -> Decimal:
        return self.ask if self.side is Side.BUY else self.bid


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda n: Decimal(n) * CENT)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    side = draw(st.sampled_from(Side))
    order_type = draw(st.sampled_from(OrderType))
    bid = draw(cents(100, 50_000))
    ask = bid + draw(cents(1, 50))
    touch = ask if side is Side.BUY else bid
    # Prices from far through the market to far away from it, on the cent grid.
    near = cents(1, int(touch * 3 / CENT))
    limit = draw(near) if order_type in (OrderType.LMT, OrderType.STP_LMT) else None
    trigger = draw(near) if order_type in (OrderType.STP, OrderType.STP_LMT) else None
    trail: Decimal | None = None
    trail_percent: Decimal | None = None
    if order_type is OrderType.TRAIL:
        if draw(st.booleans()):
            trail = draw(cents(1, int(touch / CENT) - 1))
        else:
            trail_percent = draw(cents(1, 9_999))  # (0, 100)
        trigger = draw(st.none() | near)
    return Case(
        side=side,
        order_type=order_type,
        bid=bid,
        ask=ask,
        limit=limit,
        trigger=trigger,
        trail=trail,
        trail_percent=trail_percent,
        edge_stop=draw(near),
        profile=RiskProfile(
            max_trade_size=draw(cents(10_000, 10_000_000)),
            max_dollar_risk=draw(cents(100, 1_000_000)),
            max_position=10**9,
            max_gross_exposure=Decimal("1e15"),
            max_open_orders=1000,
            staleness_ms=1000,
        ),
        bankroll=draw(cents(100_000, 100_000_000)),
        walk=Decimal(draw(st.integers(0, 100))) / 100,
    )


def sent_stop(case: Case) -> Decimal | None:
    """The stop trigger the broker gets: a TRAIL without one goes out one trail from the touch
    (what the hot path sends: hotpath.exit_manager)."""
    if case.order_type is not OrderType.TRAIL or case.trigger is not None:
        return case.trigger
    exits = ExitManager(lambda ref, stop: 0)
    trail, percent = case.trail, case.trail_percent
    return exits.initial_stop(case.side, case.touch, trail_amount=trail, trail_percent=percent)


def venue_fills(case: Case, stop: Decimal | None) -> list[Decimal]:
    """Prices the order can fill at in the venue model, given the touch."""
    buy = case.side is Side.BUY
    touch = case.touch
    order_type = OrderType.STP if case.order_type is OrderType.TRAIL else case.order_type
    if order_type in (OrderType.STP, OrderType.STP_LMT):
        assert stop is not None
        through = touch >= stop if buy else touch <= stop
        # Live at once when the market is already through the trigger; else when it gets there
        # (moving a tick at a time, so the touch is then the trigger).
        touch = touch if through else stop
        if order_type is OrderType.STP:
            return [touch]
    if order_type is OrderType.MKT:
        return [touch]
    limit = case.limit
    assert limit is not None
    marketable = limit >= touch if buy else limit <= touch
    if not marketable:
        return [limit]  # rests; a resting order trades at its own price
    # Takes the touch, then walks the book toward the limit, at most to the limit.
    end = (touch + (limit - touch) * case.walk).quantize(CENT)
    return [touch, end, limit]


@settings(deadline=None, max_examples=400)
@given(cases())
def test_no_fill_the_order_can_get_exceeds_max_trade_size_or_max_dollar_risk(case: Case) -> None:
    stop = sent_stop(case)
    assume(stop is None or stop > 0)  # a trail as wide as the price: refused before sizing
    fills = fill_range(case.side, case.order_type, limit=case.limit, stop=stop, touch=case.touch)
    assert fills is not None
    size = size_order(
        case.profile,
        bankroll=case.bankroll,
        side=case.side,
        entry_price=fills,
        stop_price=case.edge_stop,
        p=Decimal("0.55"),
        b=Decimal("1.5"),
    )
    if size.reason is not None:
        return  # refused: no order
    account = AccountSnapshot(TradingState.ACTIVE, 0, Decimal(0), 0, 0)
    order = ProposedOrder.over("X", case.side, size.quantity, fills, case.edge_stop)
    decision = check_order(case.profile, order, account)
    assert decision.approved, decision.reason  # the sizer's quantity is one the gate passes
    for price in venue_fills(case, stop):
        loss = (price - case.edge_stop) * case.side.sign
        assert loss > 0, f"the stop {case.edge_stop} is not a loss at the fill {price}"
        assert size.quantity * price <= case.profile.max_trade_size
        assert size.quantity * loss <= case.profile.max_dollar_risk


@settings(deadline=None, max_examples=400)
@given(cases(), st.integers(1, 10**6))
def test_the_gate_refuses_any_quantity_some_fill_would_take_past_a_limit(case: Case, quantity: int) -> None:
    """The gate on its own (an exit, a slice with its quantity given): whatever the quantity, it
    passes only what holds at every fill."""
    stop = sent_stop(case)
    assume(stop is None or stop > 0)
    fills = fill_range(case.side, case.order_type, limit=case.limit, stop=stop, touch=case.touch)
    assert fills is not None
    account = AccountSnapshot(TradingState.ACTIVE, 0, Decimal(0), 0, 0)
    order = ProposedOrder.over("X", case.side, quantity, fills, case.edge_stop)
    decision = check_order(case.profile, order, account)
    prices = venue_fills(case, stop)
    if any((price - case.edge_stop) * case.side.sign <= 0 for price in prices):
        assert decision.reason is Refusal.STOP_WRONG_SIDE
        assert decision.reason.value == STOP_WRONG_SIDE
        return
    worst_notional = max(quantity * price for price in prices)
    worst_loss = max(quantity * (price - case.edge_stop) * case.side.sign for price in prices)
    fits = worst_notional <= case.profile.max_trade_size and worst_loss <= case.profile.max_dollar_risk
    assert decision.approved is fits, decision.reason


def test_the_issues_sell_limit_through_the_bid_is_refused_not_sized_at_its_limit() -> None:
    """Paper profile, bid 200: a SELL LMT 10.00 with the edge's stop at 10.20 was sized as if it
    filled at 10 (5,000 shares) and filled at the bid, 1,000,000 notional."""
    fills = fill_range(Side.SELL, OrderType.LMT, limit=Decimal("10.00"), stop=None, touch=Decimal("200"))
    assert fills is not None
    size = _paper_size(Side.SELL, fills, stop=Decimal("10.20"))
    assert (size.quantity, size.reason) == (0, STOP_WRONG_SIDE)


def test_the_issues_trail_is_sized_at_the_stop_it_is_sent_with() -> None:
    """Ask 200, trail 100, edge stop 199: sized at the touch it was 250 shares sent as STP 300,
    a loss of 25,250 at the stop (25x Max Dollar Risk)."""
    stop = ExitManager(lambda ref, s: 0).initial_stop(
        Side.BUY, Decimal("200"), trail_amount=Decimal("100"), trail_percent=None, tick=DEFAULT_TICK
    )
    assert stop == Decimal("300.00")
    fills = fill_range(Side.BUY, OrderType.TRAIL, limit=None, stop=stop, touch=Decimal("200"))
    assert fills is not None
    size = _paper_size(Side.BUY, fills, stop=Decimal("199"))
    assert size.quantity == 9  # floor(1,000 / 101)
    assert size.quantity * (stop - Decimal("199")) <= Decimal("1000")


PAPER_PROFILE = risk_profile(max_position=100_000, max_gross_exposure=Decimal("10000000"), staleness_ms=5_000)
"""The issue's paper profile: Max Trade Size 50,000, Max Dollar Risk 1,000 (the factory's)."""


def _paper_size(side: Side, fills: FillRange, *, stop: Decimal) -> SizeDecision:
    return size_order(
        PAPER_PROFILE, bankroll=Decimal("1000000"), side=side, entry_price=fills, stop_price=stop,
        p=Decimal("0.55"), b=Decimal("1.5"),
    )  # fmt: skip
