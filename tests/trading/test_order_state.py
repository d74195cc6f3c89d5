"""An order's state from its ``orders.events`` records: the state machine folded over them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.order_records import History
from trading.order_events import EventKind
from trading.order_state import OrderView, order_state, step
from trading.orders import STAGE, TRANSITIONS, VENUE_ONLY, Fill, OrderState

K = EventKind
S = OrderState


def fold(h: History) -> OrderView:
    view = order_state(h.records)
    assert view is not None
    return view


def test_records_walk_the_machine_from_staged_to_filled() -> None:
    h = History(quantity=100)
    states = []
    for kind, fill in [
        (K.ACCEPTED, None),
        (K.SUBMITTED, None),
        (K.PARTIALLY_FILLED, ("x1", 40, "10.00")),
        (K.FILLED, ("x2", 60, "10.05")),
    ]:
        h.add(kind, fill)
        states.append(fold(h).state)
    assert states == [S.STAGED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED]
    view = fold(h)
    assert (view.filled_qty, view.avg_fill_price) == (100, Decimal("10.03"))
    assert view.exec_ids == {"x1", "x2"} and view.anomalies == ()
    assert view.state_record() == h.records[-1]


def test_an_execution_reported_twice_counts_once() -> None:
    h = History(quantity=100)
    h.add(K.SUBMITTED)
    first = h.add(K.PARTIALLY_FILLED, ("x1", 40, "10"))
    h.again(first)  # a reconciliation reporting the same execution
    h.records.append(first)  # Kafka redelivering the record itself
    view = fold(h)
    assert (view.state, view.filled_qty, view.fills) == (S.PARTIALLY_FILLED, 40, (first.last_fill,))
    assert view.state_record() == first


def test_a_late_fill_after_a_cancel_leaves_it_cancelled_with_the_fill_counted() -> None:
    h = History(quantity=100)
    h.add(K.SUBMITTED)
    cancelled = h.add(K.CANCELLED, reason="broker.cancelled")
    h.add(K.PARTIALLY_FILLED, ("late", 30, "10.20"))
    view = fold(h)
    assert (view.state, view.filled_qty, view.exec_ids) == (S.CANCELLED, 30, {"late"})
    assert view.order.last_transition_venue_only and view.terminal
    state = view.state_record()
    assert state is not None
    assert (state.event_id, state.kind, state.filled_qty) == (cancelled.event_id, K.CANCELLED, 30)
    assert state.avg_fill_price == Decimal("10.20")
    # The rest of the order filling after all: FILLED.
    h.add(K.FILLED, ("late-2", 70, "10.20"))
    assert fold(h).state is S.FILLED


def test_stale_records_never_move_an_order_back() -> None:
    h = History(quantity=100)
    h.add(K.ACCEPTED)
    h.add(K.PARTIALLY_FILLED, ("x1", 10, "10"))
    h.add(K.SUBMITTED)  # the acknowledgement, delivered after the fill
    h.add(K.ACCEPTED)
    assert fold(h).state is S.PARTIALLY_FILLED
    h.add(K.CANCELLED)
    h.add(K.SUBMITTED)
    assert fold(h).state is S.CANCELLED


def test_a_venue_ends_a_working_order_as_rejected() -> None:
    h = History(quantity=100)
    h.add(K.SUBMITTED)
    h.add(K.PARTIALLY_FILLED, ("x1", 10, "10"))
    h.add(K.REJECTED, reason="broker.inactive")
    view = fold(h)
    assert view.state is S.REJECTED and view.order.last_transition_venue_only


def test_a_floor_refusal_after_acceptance_ends_a_ledgered_order_but_not_a_workflows() -> None:
    h = History(quantity=100)
    h.add(K.ACCEPTED)
    h.add(K.SUBMITTED)
    refusal = h.add(K.REJECTED, reason="sentry.stale")
    before = order_state(h.records[:2])
    assert before is not None
    # The workflows take it as the refusal of a repeated delivery: the order stands.
    taken = step(before, refusal, ignore_repeat_refusals=True)
    assert taken.duplicate_refusal and taken.view.state is S.ACCEPTED
    # The ledger's rows: the floor did not send the order after all.
    assert fold(h).state is S.REJECTED
    # A broker's rejection is one either way.
    assert step(before, replace(refusal, reason="broker.inactive"), ignore_repeat_refusals=True).view.terminal


def test_a_refusal_before_anything_else_ends_the_order() -> None:
    h = History(quantity=100)
    h.add(K.REJECTED, reason="risk.max_position")
    assert fold(h).state is S.REJECTED


def test_the_expiry_cancel_ends_an_order_expired() -> None:
    h = History(quantity=100)
    h.add(K.ACCEPTED)
    view = fold(h)
    cancelled = h.add(K.CANCELLED, reason="broker.cancelled")
    assert step(view, cancelled, cancel_is_expiry=True).view.state is S.EXPIRED
    assert step(view, cancelled).view.state is S.CANCELLED


def test_reports_the_machine_refuses_are_taken_on_the_venues_word_and_noted() -> None:
    over = History(quantity=50)
    over.add(K.SUBMITTED)
    over.add(K.PARTIALLY_FILLED, ("x1", 40, "10"))
    over.records[-1] = replace(over.add(K.PARTIALLY_FILLED, ("x2", 10, "10")), kind=K.FILLED)
    over.again(over.records[-1], last_fill=Fill("x3", 5, Decimal("10")))
    view = fold(over)
    assert (view.state, view.filled_qty) == (S.FILLED, 55)
    assert view.anomalies == ("overfill: 55 filled of 50 (execution x3)",)

    after_reject = History(quantity=50)
    after_reject.add(K.SUBMITTED)
    after_reject.add(K.REJECTED, reason="broker.inactive")
    after_reject.add(K.PARTIALLY_FILLED, ("x1", 20, "10"))
    view = fold(after_reject)
    assert (view.state, view.filled_qty) == (S.REJECTED, 20)
    assert view.anomalies == ("execution x1 after REJECTED",)

    short = History(quantity=50)
    short.add(K.SUBMITTED)
    first = short.add(K.PARTIALLY_FILLED, ("x1", 20, "10"))
    short.again(first, kind=K.FILLED, filled_qty=50)  # the venue's word: complete
    view = fold(short)
    assert (view.state, view.filled_qty) == (S.FILLED, 20) and len(view.anomalies) == 1


def test_the_machine_never_moves_an_order_to_an_earlier_stage_but_by_a_venue_only_move() -> None:
    for (src, _), targets in TRANSITIONS.items():
        for dst in targets:
            if STAGE[dst] < STAGE[src]:
                assert (src, dst) in VENUE_ONLY, (src, dst)


KINDS = list(EventKind)


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from(KINDS), st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 60)),
        max_size=12,
    )
)
def test_any_history_folds_without_raising_and_keeps_its_invariants(
    steps: list[tuple[EventKind, str, int]],
) -> None:
    h = History(quantity=100)
    ended = False
    for kind, exec_id, qty in steps:
        record = h.add(kind if kind not in (K.PARTIALLY_FILLED, K.FILLED) else K.ACCEPTED, reason="broker.x")
        if kind in (K.PARTIALLY_FILLED, K.FILLED):
            filled = 100 if kind is K.FILLED else 0
            record = replace(record, kind=kind, filled_qty=filled, last_fill=Fill(exec_id, qty, Decimal(10)))
            h.records[-1] = record
    view = order_state(h.records)
    if view is None:
        return
    distinct = {r.last_fill.exec_id: r.last_fill.qty for r in reversed(h.records) if r.last_fill}
    assert view.exec_ids == set(distinct)
    for record in h.records:
        if record.kind in (K.CANCELLED, K.EXPIRED, K.FILLED):
            ended = True
    if ended:
        assert view.terminal  # nothing reopens an order a cancel, expiry or fill ended
    if view.filled_qty >= view.quantity:
        assert view.state is S.FILLED
