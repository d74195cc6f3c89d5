"""The Exit Manager's pacing: an exact budget, one level per held stop, nearest the market first."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.trailing_pacing import NS_PER_S, HeldModifies, HeldModify, ModifyBudget


def test_the_budget_spends_its_burst_then_refills_at_its_rate() -> None:
    budget = ModifyBudget(rate=40, burst=2)
    assert budget.take(0) and budget.take(0) and not budget.take(0)
    assert budget.wait_ns(0) == NS_PER_S // 40  # 25 ms for the next write
    assert not budget.take(NS_PER_S // 40 - 1)
    assert budget.take(NS_PER_S // 40)
    assert budget.available(10 * NS_PER_S) == 2  # never banks more than the burst


def test_a_zero_rate_is_unpaced() -> None:
    budget = ModifyBudget(rate=0, burst=1)
    assert not budget.paced and all(budget.take(0) for _ in range(1000)) and budget.wait_ns(0) == 0


@given(
    rate=st.integers(1, 200),
    burst=st.integers(1, 20),
    steps=st.lists(st.integers(0, NS_PER_S // 10), min_size=1, max_size=200),
)
def test_no_window_of_a_second_writes_more_than_the_burst_plus_the_rate(
    rate: int, burst: int, steps: list[int]
) -> None:
    budget = ModifyBudget(rate=rate, burst=burst)
    now, writes = 0, []
    for step in steps:
        now += step
        if budget.take(now):
            writes.append(now)
    for i, start in enumerate(writes):
        within = [w for w in writes[i:] if w < start + NS_PER_S]
        assert len(within) <= burst + rate


def test_a_held_stop_keeps_only_its_newest_level_and_its_oldest_tick() -> None:
    held = HeldModifies()
    held.hold(HeldModify("c1", "AAPL", Decimal("99.00"), tick_recv_ns=5))
    held.hold(HeldModify("c1", "AAPL", Decimal("99.40"), tick_recv_ns=9))
    assert len(held) == 1 and held.coalesced == 1
    [move] = held.take(5, {"AAPL": Decimal("100")})
    assert (move.stop, move.tick_recv_ns) == (Decimal("99.40"), 5)


def test_the_stops_nearest_their_market_go_first() -> None:
    held = HeldModifies()
    held.hold(HeldModify("far", "AAPL", Decimal("90.00"), 1))
    held.hold(HeldModify("near-short", "MSFT", Decimal("201.00"), 2))  # 0.5% above 200
    held.hold(HeldModify("near", "AAPL", Decimal("99.80"), 3))  # 0.2% below 100
    prices = {"AAPL": Decimal("100"), "MSFT": Decimal("200")}
    assert [m.command_id for m in held.take(2, prices)] == ["near", "near-short"]
    assert [m.command_id for m in held.take(2, prices)] == ["far"]
