"""A fill racing a cancel: the broker confirms the cancel saying 40 filled before the 40-share
execution itself arrives. The cancelled record must say so (``broker_filled_qty``), or the
Sniper would size its next slice without those shares and the parent would end over; and the
execution must still be recorded when it comes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.base import BrokerOrderStatus, Executed, OrderAccepted, OrderRejected, OrderStatusChanged
from hotpath.account import AccountBook
from hotpath.broker_events import BrokerEvents
from hotpath.floor_orders import FloorOrder
from observability.telemetry import setup
from tests.factories import enter_command
from trading.commands import Side
from trading.order_events import EventKind, OrderEvent
from trading.order_state import order_state
from trading.orders import OrderState

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _executed(ref: str, exec_id: str, qty: int) -> Executed:
    price = Decimal("189.50")
    return Executed(
        order_ref=ref, exec_id=exec_id, account="DU1", symbol="AAPL", side=Side.BUY, quantity=qty,
        price=price, cum_quantity=qty, avg_price=price, time=NOW, perm_id=9, order_id=7, client_id=1,
    )  # fmt: skip


def _cancelled(ref: str, filled: int) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_ref=ref, status=BrokerOrderStatus.CANCELLED, filled=filled, remaining=0,
        avg_fill_price=Decimal("189.50"), client_id=1, order_id=7, perm_id=9, time=NOW,
    )  # fmt: skip


def _events(order: FloorOrder) -> BrokerEvents:
    metrics = setup("race-test").metrics
    return BrokerEvents({order.command_id: order}, AccountBook(), None, None, metrics)  # type: ignore[arg-type]


def _records(events: BrokerEvents) -> list[OrderEvent]:
    """The orders.events records queued for the ledger and Kafka, in order."""
    out = []
    while not events._queue.empty():
        record = events._queue.get_nowait()[3]
        if record is not None:
            out.append(record)
    return out


def test_a_cancel_confirmed_before_its_racing_execution_carries_what_the_broker_filled() -> None:
    order = FloorOrder.from_command(enter_command("sniper", account="DU1", quantity=100), 100)
    events = _events(order)
    events.on_event(_cancelled(order.command_id, 40))
    events.on_event(_executed(order.command_id, "0001.01", 40))

    cancelled, late_fill = _records(events)
    assert (cancelled.kind, cancelled.filled_qty, cancelled.broker_filled_qty) == (EventKind.CANCELLED, 0, 40)
    assert late_fill.kind is EventKind.PARTIALLY_FILLED and late_fill.last_fill is not None
    assert (late_fill.last_fill.qty, late_fill.filled_qty) == (40, 40)


def test_a_cancel_after_every_execution_arrived_reports_the_same_fill() -> None:
    order = FloorOrder.from_command(enter_command("sniper", account="DU1", quantity=100), 100)
    events = _events(order)
    events.on_event(_executed(order.command_id, "0001.02", 30))
    events.on_event(_cancelled(order.command_id, 30))

    fill, cancelled = _records(events)
    assert fill.filled_qty == 30
    assert (cancelled.filled_qty, cancelled.broker_filled_qty) == (30, 30)


def _status(ref: str, status: BrokerOrderStatus, filled: int) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_ref=ref, status=status, filled=filled, remaining=0, avg_fill_price=None,
        client_id=1, order_id=7, perm_id=9, time=NOW,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("script", "final"),
    [
        (["ack", ("x", 40), ("cancelled", 40), ("y", 20)], OrderState.CANCELLED),
        (["ack", ("x", 30), ("inactive", 30)], OrderState.REJECTED),
        ([("x", 100), "ack"], OrderState.FILLED),
        (["ack", ("cancelled", 0), ("x", 100)], OrderState.FILLED),
        (["ack", "rejected"], OrderState.REJECTED),
        (["ack", ("x", 10)], OrderState.PARTIALLY_FILLED),
    ],
)
def test_the_order_map_agrees_with_the_fold_of_the_records_it_writes(
    script: list[str | tuple[str, int]], final: OrderState
) -> None:
    order = FloorOrder.from_command(enter_command("alpha", account="DU1", quantity=100), 100)
    events = _events(order)
    ref = order.command_id
    for step in script:
        if step == "ack":
            events.on_event(
                OrderAccepted(
                    order_ref=ref,
                    status=BrokerOrderStatus.SUBMITTED,
                    client_id=1,
                    order_id=7,
                    perm_id=9,
                    time=NOW,
                )
            )
        elif step == "rejected":
            events.on_event(
                OrderRejected(
                    order_ref=ref,
                    code=201,
                    reason="no",
                    category="order_rejected",
                    order_still_working=False,
                    time=NOW,
                )
            )
        elif step[0] in ("cancelled", "inactive"):
            status = BrokerOrderStatus.CANCELLED if step[0] == "cancelled" else BrokerOrderStatus.INACTIVE
            events.on_event(_status(ref, status, int(step[1])))
        else:
            events.on_event(_executed(ref, str(step[0]), int(step[1])))
    records = [order.event(EventKind.ACCEPTED), *_records(events)]
    view = order_state(records)
    assert view is not None
    assert order.machine.state is view.state is final
    assert (order.filled_qty, order.avg_fill_price, order.done) == (
        view.filled_qty,
        view.avg_fill_price,
        view.terminal,
    )
