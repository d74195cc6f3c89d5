from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import Side
from trading.orders import (
    TERMINAL_STATES,
    TRANSITIONS,
    VENUE_ONLY,
    Accepted,
    Cancelled,
    CancelRejected,
    CancelRequested,
    DuplicateExecution,
    Expired,
    Fill,
    InvalidTransition,
    Order,
    OrderEvent,
    OrderState,
    Overfill,
    Rejected,
    Submitted,
)


def new(qty: int = 100) -> Order:
    return Order(command_id="cmd-1", side=Side.BUY, quantity=qty)


def test_happy_path_staged_to_filled_with_average_price() -> None:
    order = new().apply(Submitted(broker_order_id=7)).apply(Accepted())
    assert (order.state, order.broker_order_id) == (OrderState.ACCEPTED, 7)
    order = order.apply(Fill("e1", 40, Decimal("10.00")))
    assert (order.state, order.filled_qty, order.remaining) == (OrderState.PARTIALLY_FILLED, 40, 60)
    order = order.apply(Fill("e2", 60, Decimal("10.05")))
    assert order.state is OrderState.FILLED and order.terminal
    assert order.avg_fill_price == Decimal("10.03")


def test_apply_returns_a_new_order_and_leaves_the_old_one() -> None:
    staged = new()
    pending = staged.apply(Submitted())
    assert staged.state is OrderState.STAGED and pending.state is OrderState.PENDING


def test_duplicate_execution_raises() -> None:
    order = new().apply(Submitted()).apply(Fill("e1", 10, Decimal("1")))
    with pytest.raises(DuplicateExecution):
        order.apply(Fill("e1", 10, Decimal("1")))


def test_overfill_raises() -> None:
    with pytest.raises(Overfill):
        new(10).apply(Submitted()).apply(Fill("e1", 11, Decimal("1")))


@pytest.mark.parametrize(
    ("order", "event"),
    [
        (new(), Accepted()),
        (new(), Fill("e", 1, Decimal(1))),
        (new().apply(Submitted()).apply(Rejected("x")), Accepted()),
        (new().apply(Submitted()).apply(Accepted()).apply(Fill("e", 100, Decimal(1))), CancelRequested()),
        (new().apply(Submitted()).apply(Accepted()), CancelRejected()),
    ],
)
def test_invalid_transitions_raise(order: Order, event: OrderEvent) -> None:
    with pytest.raises(InvalidTransition):
        order.apply(event)


def test_failed_cancel_returns_to_working_and_is_venue_only() -> None:
    order = new().apply(Submitted()).apply(Accepted()).apply(CancelRequested())
    back = order.apply(CancelRejected("too late"))
    assert back.state is OrderState.ACCEPTED and back.last_transition_venue_only
    partial = (
        new().apply(Submitted()).apply(Accepted()).apply(Fill("e1", 5, Decimal(1))).apply(CancelRequested())
    )
    assert partial.apply(CancelRejected()).state is OrderState.PARTIALLY_FILLED


def test_late_fill_after_cancel_is_venue_only() -> None:
    cancelled = new().apply(Submitted()).apply(Accepted()).apply(CancelRequested()).apply(Cancelled("user"))
    assert not cancelled.last_transition_venue_only
    partly = cancelled.apply(Fill("late-1", 30, Decimal(1)))
    assert (
        partly.state is OrderState.CANCELLED and partly.filled_qty == 30 and partly.last_transition_venue_only
    )
    done = partly.apply(Fill("late-2", 70, Decimal(1)))
    assert done.state is OrderState.FILLED and done.last_transition_venue_only


def test_transition_table_targets_and_venue_only_are_consistent() -> None:
    reachable = {(src, dst) for (src, _), dsts in TRANSITIONS.items() for dst in dsts}
    assert VENUE_ONLY <= reachable
    for src, _ in TRANSITIONS:
        if src in TERMINAL_STATES:
            assert src in (OrderState.CANCELLED, OrderState.EXPIRED)  # only late fills leave an end state


def events_st() -> st.SearchStrategy[OrderEvent]:
    return st.one_of(
        st.builds(Submitted),
        st.builds(Accepted),
        st.builds(Rejected, st.just("r")),
        st.builds(
            Fill,
            st.text("abcdef", min_size=1, max_size=3),
            st.integers(1, 40),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999"), places=2),
        ),
        st.builds(CancelRequested),
        st.builds(CancelRejected),
        st.builds(Cancelled),
        st.builds(Expired),
    )


@settings(deadline=None)
@given(st.lists(events_st(), max_size=30))
def test_any_event_sequence_keeps_invariants(events: list[OrderEvent]) -> None:
    order = new(100)
    seen: set[str] = set()
    for event in events:
        allowed = TRANSITIONS.get((order.state, type(event)))
        try:
            after = order.apply(event)
        except InvalidTransition:
            assert allowed is None
            continue
        except DuplicateExecution:
            assert isinstance(event, Fill) and event.exec_id in seen
            continue
        except Overfill:
            assert isinstance(event, Fill) and order.filled_qty + event.qty > order.quantity
            continue
        assert allowed is not None and after.state in allowed
        assert after.last_transition_venue_only == ((order.state, after.state) in VENUE_ONLY)
        if isinstance(event, Fill):
            seen.add(event.exec_id)
            assert after.filled_qty == order.filled_qty + event.qty
        assert 0 <= after.filled_qty <= after.quantity
        assert (after.state is OrderState.FILLED) == (after.filled_qty == after.quantity)
        assert after.exec_ids == frozenset(seen)
        order = after


def test_a_venue_ending_a_working_order_is_venue_only_and_a_held_order_expires() -> None:
    working = new().apply(Submitted()).apply(Accepted())
    for order in (working, working.apply(Fill("e1", 5, Decimal(1))), working.apply(CancelRequested())):
        ended = order.apply(Rejected("broker.inactive"))
        assert ended.state is OrderState.REJECTED and ended.last_transition_venue_only
    expired = new().apply(Expired())
    assert expired.state is OrderState.EXPIRED and not expired.last_transition_venue_only
    with pytest.raises(InvalidTransition):
        new().apply(Submitted()).apply(Rejected("x")).apply(Fill("late", 1, Decimal(1)))
