"""Commissions, cash, positions and P&L, exact to the cent (and to 1e-8 where averaged)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.venue.account import Account, order_commission
from paper.venue.engine import Venue
from paper.venue.messages import ExecutionFilter
from tests.paper.venue.support import Trader, ask, bid, quiet_venue

D = Decimal


def test_commission_is_per_share_with_a_minimum_and_a_cap() -> None:
    assert order_commission(100, D("1000")) == D("1.00")  # minimum
    assert order_commission(300, D("300")) == D("1.50")  # 0.005 per share
    assert order_commission(1000, D("500")) == D("5.00")  # per share equals the 1% cap
    assert order_commission(10, D("50")) == D("0.50")  # 1% cap below the minimum
    assert order_commission(0, D("0")) == D("0")


def test_partial_fills_of_one_order_pay_the_minimum_once() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    ask(v, "10.01", 300)
    Trader(v).place("BUY", 400, lmt_price="10.01")
    reports = v.executions_matching(ExecutionFilter())
    assert [r.commission.commission for r in reports] == [D("1.00"), D("1.00")]
    assert sum(r.commission.commission for r in reports) == order_commission(400, D("4003.00"))


def test_realized_pnl_on_a_partial_close_and_a_flip() -> None:
    a = Account("DU1", D("1000000"))
    assert a.apply_fill("AAPL", 100, D("10"), D("1")) is None
    assert a.positions["AAPL"].avg_cost() == D("10.01")
    assert a.apply_fill("AAPL", -40, D("12"), D("1")) == D("78.6")
    pos = a.positions["AAPL"]
    assert (pos.qty, pos.basis) == (60, D("600.6"))
    assert a.cash == D("999478")
    marks = {"AAPL": D("11")}
    assert a.unrealized(marks) == D("59.4")
    assert a.net_liquidation(marks) == D("1000138")
    # Sell 100 more: closes 60 (whole basis) and opens a 40-share short at 11.
    assert a.apply_fill("AAPL", -100, D("11"), D("1")) == D("58.4")
    assert (pos.qty, pos.basis, pos.avg_cost()) == (-40, D("-440"), D("11"))
    assert a.realized == D("137.0")


def test_account_values_report_the_tws_keys() -> None:
    v = quiet_venue()
    ask(v, "10.00", 100)
    bid(v, "9.98", 100)
    Trader(v).place("BUY", 100, lmt_price="10.00")
    values = {av.key: D(av.value) for av in v.account_snapshot().values}
    # Mark: after the buy the best ask is gone; the mid falls back to the last trade (10.00).
    assert values["TotalCashValue"] == D("1000000.00") - D("1000.00") - D("1.00")
    assert values["GrossPositionValue"] == D("1000.00")
    assert values["NetLiquidation"] == D("999999.00")
    assert values["UnrealizedPnL"] == D("-1.00")
    assert values["RealizedPnL"] == D("0.00")
    assert values["BuyingPower"] == (D("999999.00") - D("250.00")) * 4
    for key in (
        "AvailableFunds",
        "ExcessLiquidity",
        "EquityWithLoanValue",
        "InitMarginReq",
        "MaintMarginReq",
    ):
        assert key in values


fills = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.integers(-500, 500).filter(bool),
        st.integers(1, 100_000).map(lambda c: D(c) / 100),
        st.integers(0, 500).map(lambda c: D(c) / 100),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills, st.integers(1, 100_000), st.integers(1, 100_000))
def test_realized_plus_unrealized_equals_the_change_in_equity_exactly(
    trades: list[tuple[str, int, Decimal, Decimal]], aapl_mark: int, msft_mark: int
) -> None:
    start = D("1000000")
    a = Account("DU1", start)
    for symbol, qty, price, commission in trades:
        a.apply_fill(symbol, qty, price, commission)
    marks = {"AAPL": D(aapl_mark) / 100, "MSFT": D(msft_mark) / 100}
    assert a.realized + a.unrealized(marks) == a.net_liquidation(marks) - start
    assert a.cash == start - sum(price * qty + c for _, qty, price, c in trades)
    for symbol in ("AAPL", "MSFT"):
        expected = sum(q for s, q, _, _ in trades if s == symbol)
        held = a.positions[symbol].qty if symbol in a.positions else 0
        assert held == expected


def test_positions_report_avg_cost_market_value_and_pnl() -> None:
    v: Venue = quiet_venue()
    ask(v, "10.00", 100)
    Trader(v).place("BUY", 100, lmt_price="10.00")
    bid(v, "10.50", 100)
    ask(v, "10.52", 100)
    (pos,) = v.positions()
    assert (pos.symbol, pos.position, pos.avg_cost) == ("AAPL", 100, D("10.01"))
    assert pos.market_price == D("10.51")
    assert pos.market_value == D("1051.00")
    assert pos.unrealized_pnl == D("50.00")
