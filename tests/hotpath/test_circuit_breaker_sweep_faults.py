"""The breaker's cancel sweep when the gateway goes silent at the trip: the orders still open
after the acknowledgement window are cancelled again (and confirmed once a session carries
them), and an order never confirmed cancelled is reported, each a critical event. The real
paper venue and gateways; the floor's order map fed by the broker's own events."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB

from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    BrokerOrderStatus,
    OrderAccepted,
    OrderStatusChanged,
    OrderType,
    Side,
)
from brokers.ibkr import IbkrBroker, IbkrConfig
from hotpath.circuit_breaker_sweep import KIND_CANCEL_FAILED, KIND_TRIPPED, CancelSweep
from hotpath.floor_orders import FloorOrder
from tests.fixtures.paper import HOST, PaperStack
from tests.helpers import eventually
from trading.orders import Cancelled

pytestmark = pytest.mark.chaos

ACCOUNT = "DU1234567"
BOOK = 5
_client_ids = itertools.count(2300)  # apart from every other suite's ids


class Floor:
    """A broker session and the floor's map of its orders, kept by the broker's events as the
    hot path's BrokerEvents keeps it (acknowledged, then ended), telling the sweep each end."""

    def __init__(self, broker: IbkrBroker) -> None:
        self.broker = broker
        self.orders: dict[str, FloorOrder] = {}
        self.reported: list[tuple[str, str, dict[str, Any]]] = []
        self.sweep: CancelSweep | None = None
        broker.set_event_handler(self.on_event)

    def on_event(self, event: BrokerEvent) -> None:
        order = self.orders.get(getattr(event, "order_ref", ""))
        if order is None:
            return
        if isinstance(event, OrderAccepted):
            order.acknowledged(event.order_id)
        elif isinstance(event, OrderStatusChanged) and event.status is BrokerOrderStatus.CANCELLED:
            was_done = order.done
            order.end(Cancelled("broker.cancelled"))
            if order.done and not was_done and self.sweep is not None:
                self.sweep.on_done(order)

    def report(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        self.reported.append((kind, severity, dict(detail)))

    async def working_book(self) -> None:
        for _ in range(BOOK):
            ref = f"sweep-{uuid.uuid4().hex[:12]}"
            self.orders[ref] = FloorOrder(
                ref, "breaker-test", ACCOUNT, "AAPL", Side.BUY, 1, Decimal("100.00"), "DAY", None
            )
            self.broker.place(
                BrokerOrder(ref, ACCOUNT, "AAPL", Side.BUY, 1, OrderType.LMT, limit_price=Decimal("100.00"))
            )
        await eventually(
            lambda: all(o.broker_order_id is not None for o in self.orders.values()), timeout=10.0
        )


async def _floor(stack: PaperStack, *, standby: bool) -> Floor:
    broker = IbkrBroker(
        IbkrConfig(
            HOST, stack.gateway_port, stack.standby_port if standby else None, client_id=next(_client_ids)
        )
    )
    await broker.connect()
    return Floor(broker)


async def _trip(floor: Floor, stack: PaperStack, freeze_s: float, **windows: Any) -> CancelSweep:
    """Freeze the primary gateway, then (once it is silent) trip as the hot path does: the
    global cancel written, and the sweep begun, with no await between."""
    probe = IB()
    await probe.connectAsync(HOST, stack.gateway_port, next(_client_ids), timeout=10)
    try:
        await stack.acontrol("POST", "/gateways/primary/freeze", {"seconds": freeze_s})
        await eventually(lambda: _silent(probe), timeout=5.0)
    finally:
        probe.disconnect()
    sweep = floor.sweep = CancelSweep(floor.broker, floor.orders, floor.report, **windows)
    floor.broker.cancel_all()
    sweep.begin(time.perf_counter_ns(), {"symbol": "AAPL"}, "AAPL")
    return sweep


async def _silent(probe: IB) -> bool:
    """The gateway answers no request within 50 ms (it answers in about one when it speaks)."""
    try:
        await asyncio.wait_for(probe.reqCurrentTimeAsync(), 0.05)
    except TimeoutError:
        return True
    return False


async def test_orders_a_silent_gateway_left_open_are_cancelled_again_and_confirmed(
    private_paper: PaperStack,
) -> None:
    floor = await _floor(private_paper, standby=True)
    try:
        await floor.working_book()
        # The primary is silent for 3 s; the hot standby takes over within a second.
        sweep = await _trip(floor, private_paper, 3, ack_window_s=0.1, rounds=50)
        result = await sweep.settled()
        assert result is not None
        assert result.not_cancelled == () and result.cancelled == BOOK == result.open_at_trip
        assert result.rounds >= 1 and result.recancels >= 1  # the first window ran out
        assert result.to_last_ack_us is not None
        assert [(k, s) for k, s, _ in floor.reported] == [(KIND_TRIPPED, "critical")]
        assert floor.reported[0][2]["cancelled_orders"] == BOOK
        rows = (await private_paper.acontrol("GET", "/orders"))["orders"]
        assert {r["status"] for r in rows if r["order_ref"] in floor.orders} == {"Cancelled"}
    finally:
        await floor.broker.close()


async def test_an_order_never_confirmed_cancelled_is_reported_critical_each(
    private_paper: PaperStack,
) -> None:
    # No standby: the only gateway is silent for longer than the sweep waits.
    floor = await _floor(private_paper, standby=False)
    try:
        await floor.working_book()
        sweep = await _trip(floor, private_paper, 4, ack_window_s=0.2, rounds=3)
        result = await sweep.settled()
        assert result is not None
        assert set(result.not_cancelled) == set(floor.orders) and result.cancelled == 0
        assert result.to_last_ack_us is None
        failed = [d for k, s, d in floor.reported if (k, s) == (KIND_CANCEL_FAILED, "critical")]
        assert {d["command_id"] for d in failed} == set(floor.orders)
        assert all("cancel it there" in d["advice"] for d in failed)
        kind, severity, detail = floor.reported[-1]
        assert (kind, severity, detail["not_cancelled"]) == (KIND_TRIPPED, "critical", BOOK)
        # The cancels stay requested: once the gateway speaks again, the orders end.
        await eventually(lambda: all(o.done for o in floor.orders.values()), timeout=20.0)
    finally:
        await floor.broker.close()
