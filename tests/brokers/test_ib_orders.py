"""The floor's own order map: monotonic status folding across duplicated session reports."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from brokers.base import BrokerOrder, BrokerOrderStatus, OrderType, Side
from brokers.ib_orders import ORDER_STATE, OrderMap
from trading.orders import STAGE, TRANSITIONS, VENUE_ONLY

S = BrokerOrderStatus


def _order(ref: str = "cmd-1") -> BrokerOrder:
    return BrokerOrder(ref, "DU100", "AAPL", Side.BUY, 100, OrderType.LMT, limit_price=Decimal("10"))


def test_lookup_by_ref_order_id_and_perm_id() -> None:
    m = OrderMap()
    rec = m.add(_order())
    m.bind(rec, 7, 42, "primary")
    m.bind_perm(rec, 9001)
    assert m.find(order_ref="cmd-1") is rec
    assert m.find(client_id=7, order_id=42) is rec
    assert m.find(perm_id=9001) is rec
    m.bind(rec, 7, 43, "standby")
    assert m.by_order_id(7, 42) is None and m.by_order_id(7, 43) is rec


def test_done_order_ignores_a_stale_working_report() -> None:
    m = OrderMap()
    rec = m.add(_order())
    assert m.apply_status(rec, S.FILLED, 100, Decimal("10"))
    assert not m.apply_status(rec, S.SUBMITTED, 40, Decimal("10"))
    assert (rec.status, rec.filled, rec.remaining) == (S.FILLED, 100, 0)


def test_duplicate_report_changes_nothing() -> None:
    m = OrderMap()
    rec = m.add(_order())
    assert m.apply_status(rec, S.SUBMITTED, 30, Decimal("10.5"))
    assert not m.apply_status(rec, S.SUBMITTED, 30, Decimal("10.5"))


def test_late_fill_after_cancel_is_applied() -> None:
    m = OrderMap()
    rec = m.add(_order())
    m.apply_status(rec, S.CANCELLED, 20, Decimal("10"))
    assert m.apply_status(rec, S.FILLED, 100, Decimal("10"))
    assert rec.status is S.FILLED


reports = st.lists(
    st.tuples(
        st.sampled_from([S.PRE_SUBMITTED, S.SUBMITTED, S.CANCELLED, S.FILLED, S.INACTIVE]),
        st.integers(0, 100),
    ),
    max_size=20,
)


@given(reports)
def test_filled_never_decreases_and_done_never_reopens(seq: list[tuple[BrokerOrderStatus, int]]) -> None:
    m = OrderMap()
    rec = m.add(_order())
    was_done = False
    last_filled = 0
    for status, filled in seq:
        m.apply_status(rec, status, filled, None)
        assert rec.filled >= last_filled
        if was_done:
            assert rec.done
        was_done, last_filled = rec.done, rec.filled


def test_a_lost_order_is_over_in_the_map_and_only_a_late_fill_changes_it() -> None:
    m = OrderMap()
    rec = m.add(_order())
    m.apply_status(rec, S.SUBMITTED, 0, None)
    m.mark_lost(rec)
    assert rec.lost and rec.done and m.live() == [] and rec.remaining == 0
    assert not m.apply_status(rec, S.SUBMITTED, 0, None)
    assert m.apply_status(rec, S.FILLED, 100, Decimal("10"))


def test_held_lists_arrival_order_without_cancelled() -> None:
    m = OrderMap()
    a, b, c = m.add(_order("a")), m.add(_order("b")), m.add(_order("c"))
    b.cancel_requested = True
    assert [r.order.order_ref for r in m.held()] == ["a", "c"]
    assert a.held and c.held


def test_the_adapter_takes_a_status_report_when_the_state_machine_moves_forward() -> None:
    """Its statuses are the machine's states: a report of an earlier stage is stale, and every
    forward move of the machine's table (short of the venue-only ones) is taken."""
    for before, after in itertools.product(ORDER_STATE, repeat=2):
        if before.is_done:
            continue
        m = OrderMap()
        rec = m.add(_order())
        rec.status = before
        taken = m.apply_status(rec, after, 0, None) or rec.status is after
        src, dst = ORDER_STATE[before], ORDER_STATE[after]
        assert taken == (STAGE[dst] >= STAGE[src]), (before, after)
        moves = {d for (s, _), targets in TRANSITIONS.items() if s is src for d in targets}
        if dst in moves and (src, dst) not in VENUE_ONLY:
            assert taken, (before, after)
