"""An order's state from its stored rows: the fold of :mod:`trading.order_state`, on Postgres."""

from __future__ import annotations

import dataclasses

import asyncpg

from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from hotpath.recovery import restore_orders
from ledger.iceberg_parents import slice_states
from ledger.order_events import open_orders, order_history, order_state, record_order_event
from tests.fixtures.order_records import History
from trading.order_events import EventKind
from trading.order_state import order_state as fold

K = EventKind


async def store(db: asyncpg.Connection, h: History) -> None:
    for record in h.records:
        assert await record_order_event(db, record)


def cancelled_then_late_fill(command_id: str = "cmd-late") -> History:
    h = History(command_id, quantity=100)
    h.add(K.ACCEPTED)
    h.add(K.SUBMITTED)
    h.add(K.CANCELLED, reason="broker.cancelled")
    h.add(K.PARTIALLY_FILLED, ("late-x", 30, "189.40"))  # crossed the cancel on the wire
    return h


async def test_a_cancelled_order_with_a_late_fill_stays_cancelled_and_is_not_open(
    db: asyncpg.Connection,
) -> None:
    await store(db, cancelled_then_late_fill())

    state = await order_state(db, "cmd-late")
    assert state is not None and state.kind is K.CANCELLED and state.reason == "broker.cancelled"
    assert state.filled_qty == 30  # the fill is recorded
    # What start-up recovery and the broker-session reconciliation list as open:
    assert await open_orders(db) == [] and await open_orders(db, "DU1") == []
    orders: dict[str, FloorOrder] = {}
    book = AccountBook()
    restored = await restore_orders(db, orders, book)
    assert "cmd-late" not in orders and book.open_orders("DU1") == 0 and restored.working == 0


async def test_open_orders_are_the_histories_whose_fold_is_not_terminal(db: asyncpg.Connection) -> None:
    histories = [cancelled_then_late_fill("late")]
    working = History("working")
    working.add(K.ACCEPTED)
    working.add(K.SUBMITTED)
    working.add(K.PARTIALLY_FILLED, ("w1", 10, "10"))
    held = History("held")
    held.add(K.ACCEPTED)
    refused = History("refused")
    refused.add(K.REJECTED, reason="risk.max_position")
    repeated = History("repeated")
    repeated.add(K.ACCEPTED)
    repeated.add(K.SUBMITTED)
    repeated.add(K.REJECTED, reason="risk.max_position")  # not sent after all: over
    inactive = History("inactive")
    inactive.add(K.SUBMITTED)
    inactive.add(K.PARTIALLY_FILLED, ("i1", 10, "10"))
    inactive.add(K.REJECTED, reason="broker.inactive")
    filled = History("filled", quantity=10)
    filled.add(K.SUBMITTED)
    filled.add(K.FILLED, ("f1", 10, "10"))
    other = History("other-account", account="DU2")
    other.add(K.SUBMITTED)
    histories += [working, held, refused, repeated, inactive, filled, other]
    for h in histories:
        await store(db, h)

    expected = []
    for h in histories:
        view = fold(h.records)
        assert view is not None
        assert await order_state(db, h.command_id) == view.state_record()
        assert await order_history(db, h.command_id) == h.records
        record = view.state_record()
        assert record is not None
        if not view.terminal:
            expected.append(record)
    opened = await open_orders(db)
    assert {e.command_id for e in opened} == {"working", "held", "other-account"}
    assert sorted(opened, key=lambda e: e.command_id) == sorted(expected, key=lambda e: e.command_id)
    assert [e.command_id for e in await open_orders(db, "DU2")] == ["other-account"]


async def test_an_icebergs_slices_are_their_rows_folded_like_every_order(db: asyncpg.Connection) -> None:
    late = cancelled_then_late_fill("slice-late")
    working = History("slice-working", quantity=100)
    working.add(K.ACCEPTED)
    working.add(K.SUBMITTED)
    working.add(K.PARTIALLY_FILLED, ("w-x", 40, "189.40"))
    unsent = History("slice-unsent", quantity=100)
    unsent.add(K.ACCEPTED)
    unsent.add(K.REJECTED, reason="risk.max_open_orders")  # ledgered, then not sent after all
    histories = (late, working, unsent)
    for h in histories:
        for record in h.records:
            assert await record_order_event(db, dataclasses.replace(record, parent_id="iceberg-p"))

    states = {s.command_id: s for s in await slice_states(db, "iceberg-p")}

    assert {cid: (s.ended, s.filled_qty, s.taken) for cid, s in states.items()} == {
        "slice-late": (True, 30, 30),  # cancelled stays cancelled; its late fill counts
        "slice-working": (False, 40, 100),
        "slice-unsent": (True, 0, 0),
    }
    for h in histories:
        view = fold(h.records)
        assert view is not None and states[h.command_id].ended == view.terminal
