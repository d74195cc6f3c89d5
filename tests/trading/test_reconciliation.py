"""The pure broker-vs-ledger comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.orders import OrderState
from trading.reconciliation import BrokerExecution, BrokerOpenOrder, LedgerOrder, reconcile

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)


def _order(
    cid: str, state: OrderState, qty: int = 300, fills: tuple = (), last: datetime = T0
) -> LedgerOrder:
    return LedgerOrder(
        cid,
        "DU1",
        "AAPL",
        "alpha",
        "BUY",
        qty,
        state,
        exec_ids=frozenset(e for e, _, _ in fills),
        filled_qty=sum(q for _, q, _ in fills),
        filled_notional=sum((q * p for _, q, p in fills), Decimal(0)),
        last_ts=last,
    )


def _ex(exec_id: str, ref: str, qty: int, price: str = "10", at: int = 0) -> BrokerExecution:
    return BrokerExecution(exec_id, ref, qty, Decimal(price), T0 + timedelta(seconds=at))


def test_execution_the_ledger_lacks_is_a_missed_fill_and_known_ones_are_not() -> None:
    ledger = [_order("o1", OrderState.PARTIALLY_FILLED, fills=(("x1", 100, Decimal("10")),))]
    plan = reconcile(
        ledger,
        [BrokerOpenOrder("o1", 300, 200)],
        [_ex("x1", "o1", 100), _ex("x2", "o1", 100, "10.5", at=2), _ex("x2", "o1", 100, "10.5", at=2)],
        NOW,
    )
    [missed] = plan.missed_fills
    assert (missed.exec_id, missed.qty, missed.filled_after) == ("x2", 100, 200)
    assert missed.notional_after == Decimal("2050")
    assert plan.unknown_at_broker == () and not plan.in_sync


def test_missed_fills_never_overfill_the_order() -> None:
    ledger = [_order("o1", OrderState.ACCEPTED, qty=150)]
    plan = reconcile(ledger, [], [_ex("a", "o1", 100, at=1), _ex("b", "o1", 100, at=2)], NOW)
    assert [(m.exec_id, m.qty) for m in plan.missed_fills] == [("a", 100), ("b", 50)]
    assert plan.missed_fills[-1].filled_after == 150
    assert plan.unknown_at_broker == ()  # completed by its executions
    assert any("b of 100 exceeds the 50 left" in a for a in plan.anomalies)


def test_working_order_the_broker_does_not_know_is_marked_but_accepted_one_awaits() -> None:
    ledger = [
        _order("gone", OrderState.ACCEPTED),
        _order("held", OrderState.STAGED),
        _order("open", OrderState.ACCEPTED),
        _order("fresh", OrderState.ACCEPTED, last=NOW - timedelta(seconds=1)),
    ]
    plan = reconcile(ledger, [BrokerOpenOrder("open", 300, 0), BrokerOpenOrder("manual", 5, 0)], [], NOW)
    assert plan.unknown_at_broker == ("gone",)
    assert plan.awaiting_broker == ("held",)
    assert plan.foreign_orders == ("manual",)
    assert plan.missed_fills == ()


def test_an_order_the_broker_is_known_to_have_lost_is_not_held_back_by_the_grace() -> None:
    fresh = NOW - timedelta(seconds=1)
    ledger = [
        _order("lost", OrderState.ACCEPTED, last=fresh),
        _order("fresh", OrderState.ACCEPTED, last=fresh),
        _order("done", OrderState.ACCEPTED, qty=100, last=fresh),
        _order("open", OrderState.ACCEPTED, last=fresh),
    ]
    plan = reconcile(
        ledger,
        [BrokerOpenOrder("open", 300, 0)],
        [_ex("x1", "done", 100)],
        NOW,
        gone={"lost", "done", "open"},
    )
    # Listed as lost by the adapter: ended now; executions completing it or the broker listing
    # it open still win, and an order not known lost keeps its grace (the next epoch sees it).
    assert plan.unknown_at_broker == ("lost",)


def test_in_sync_when_broker_and_ledger_agree() -> None:
    ledger = [_order("o1", OrderState.PARTIALLY_FILLED, fills=(("x1", 100, Decimal("10")),))]
    plan = reconcile(ledger, [BrokerOpenOrder("o1", 300, 100)], [_ex("x1", "o1", 100)], NOW)
    assert plan.in_sync


@given(
    qty=st.integers(1, 1000),
    recorded=st.lists(st.integers(1, 300), max_size=4),
    reported=st.lists(st.integers(1, 300), max_size=8),
)
def test_property_recorded_plus_missed_never_exceeds_quantity_and_no_exec_twice(
    qty: int, recorded: list[int], reported: list[int]
) -> None:
    fills, total = [], 0
    for i, q in enumerate(recorded):
        q = min(q, qty - total)
        if q <= 0:
            break
        fills.append((f"r{i}", q, Decimal("1")))
        total += q
    ledger = [_order("o", OrderState.PARTIALLY_FILLED, qty=qty, fills=tuple(fills))]
    execs = [_ex(f"r{i}", "o", q) for i, (_, q, _) in enumerate(fills)]
    execs += [_ex(f"n{i}", "o", q, at=i) for i, q in enumerate(reported)]
    plan = reconcile(ledger, [], execs + execs, NOW)
    ids = [m.exec_id for m in plan.missed_fills]
    assert len(ids) == len(set(ids)) and not set(ids) & {f[0] for f in fills}
    assert total + sum(m.qty for m in plan.missed_fills) <= qty
