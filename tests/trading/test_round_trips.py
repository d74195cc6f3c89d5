"""Round trips counted from stored executions (trading.round_trips)."""

from __future__ import annotations

from trading.round_trips import FillRow, RoundTripCounter


def fill(event_id: int, side: str, qty: int, agent: str = "a", symbol: str = "AAPL") -> FillRow:
    return FillRow(event_id, "DU1", agent, symbol, side, qty)


def test_a_trade_counts_once_its_position_is_flat_again() -> None:
    counter = RoundTripCounter(since=0)
    counter.add_all([fill(1, "BUY", 10), fill(2, "SELL", 4)])
    assert counter.closed == 0 and counter.open_positions() == {("DU1", "a", "AAPL"): 6}
    counter.add(fill(3, "SELL", 6))
    assert counter.closed == 1 and counter.open_positions() == {}


def test_short_trades_and_flips_through_zero_count() -> None:
    counter = RoundTripCounter(since=0)
    counter.add_all([fill(1, "SELL", 5), fill(2, "BUY", 10), fill(3, "SELL", 5)])
    assert counter.closed == 2


def test_positions_are_per_agent_and_symbol() -> None:
    counter = RoundTripCounter(since=0)
    counter.add_all([fill(1, "BUY", 5, agent="a"), fill(2, "SELL", 5, agent="b")])
    assert counter.closed == 0
    counter.add_all([fill(3, "SELL", 5, agent="a"), fill(4, "BUY", 5, agent="b", symbol="MSFT")])
    assert counter.closed == 1


def test_only_trades_closed_after_the_mark_count_and_rows_fold_once() -> None:
    counter = RoundTripCounter(since=2)
    counter.add_all([fill(1, "BUY", 5), fill(2, "SELL", 5), fill(3, "BUY", 5)])
    counter.add_all([fill(3, "BUY", 5), fill(4, "SELL", 5)])
    assert counter.closed == 1 and counter.open_positions() == {}
