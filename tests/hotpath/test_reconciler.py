"""The floor's one reconciler (the hot path's broker adapter and ``hotpath.reconciler``) against
the real paper gateways, Postgres ledger and Kafka: a fill the ledger missed is recorded once
and reaches the account book, an order the broker no longer has is marked and leaves the book,
the epoch's signed ``broker.sessions`` record carries the report, and a second epoch finds
nothing left to do."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    BrokerOrderStatus,
    Executed,
    OrderAccepted,
    OrderStatusChanged,
    OrderType,
    SessionChange,
    SessionChanged,
    Side,
)
from brokers.ibkr import IbkrBroker, IbkrConfig
from bus.kafka import start_producer
from bus.signed_records import SigningProducer
from bus.topics import BROKER_SESSIONS, ORDERS_EVENTS
from hotpath.account import AccountBook, LastPrice
from hotpath.broker_events import BrokerEvents
from hotpath.floor_orders import FloorOrder
from hotpath.ledger_store import LedgerStore
from hotpath.reconciler import Outcome
from hotpath.recovery import restored_order
from ledger.order_events import order_history, order_state, record_order_event
from observability.telemetry import setup
from temporal.session_records import decode as decode_session
from tests.brokers.conftest import HOST, kill_gateway, own_stack, restart_gateway  # noqa: F401
from tests.factories import order_event
from tests.fixtures.hotpath import RecordWriters, read_until
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from trading.order_events import EventKind, OrderEvent, decode
from trading.reconciliation import UNKNOWN_AT_BROKER, ReconcileReport
from workflows.broker_session import Change

ACCOUNT = "DU1234567"
_client_ids = itertools.count(1800)  # apart from every other suite's ids


@pytest.fixture
async def producer(kafka_bootstrap: str, record_writers: RecordWriters) -> AsyncIterator[SigningProducer]:
    """Signs as the hot path does (``floor-hotpath``)."""
    p: AIOKafkaProducer = await start_producer(kafka_bootstrap, "reconcile-test")
    yield SigningProducer(p, record_writers.hotpath)
    await p.stop()


class HotPathSide:
    """The hot path's half as ``hotpath.main`` wires it: its order map, account book and
    broker-event handling, draining into the real ledger and Kafka."""

    def __init__(self, pool: asyncpg.Pool, producer: SigningProducer) -> None:
        self.orders: dict[str, FloorOrder] = {}
        self.book = AccountBook()
        self.events = BrokerEvents(
            self.orders, self.book, LedgerStore(pool), producer, setup("reconcile-test").metrics,
            accounts=[ACCOUNT],
        )  # fmt: skip
        self._task = asyncio.create_task(self.events.run())

    def track(self, order: FloorOrder) -> None:
        self.orders[order.command_id] = order
        self.book.order_working(order)

    async def reconciled(self, count: int) -> Outcome:
        """The ``count``-th epoch reconciled, once its records are in the ledger and on Kafka."""
        await eventually(lambda: len(self.events.reconciled) >= count, timeout=20)
        await self.events.drained()
        return self.events.reconciled[count - 1]

    async def reconciled_epoch(self, epoch: int) -> Outcome:
        def of_epoch() -> Outcome | None:
            return next((o for o in self.events.reconciled if _report_of(o).epoch == epoch), None)

        outcome = await eventually(of_epoch, timeout=20)
        await self.events.drained()
        return outcome

    async def stop(self) -> None:
        await self.events.drained()
        self._task.cancel()


def _submitted(cid: str, qty: int, ts: datetime, broker_order_id: int) -> OrderEvent:
    return order_event(
        cid, 0, EventKind.SUBMITTED, event_id=f"{cid}-submitted", account=ACCOUNT, symbol="AAPL",
        quantity=qty, ts=ts, tif="DAY", broker_order_id=broker_order_id,
    )  # fmt: skip


async def _hot_path_adapter(port: int, client_id: int, side: HotPathSide) -> IbkrBroker:
    broker = IbkrBroker(IbkrConfig(host=HOST, port=port, client_id=client_id))
    broker.set_event_handler(side.events.on_event)
    await broker.connect()
    return broker


async def _adapter_with_standby(stack: PaperStack, side: HotPathSide) -> tuple[IbkrBroker, list[BrokerEvent]]:
    """The hot path's adapter on ``stack``'s primary and standby, its events handled by ``side``
    and kept in the list returned."""
    broker = IbkrBroker(IbkrConfig(HOST, stack.gateway_port, stack.standby_port, client_id=next(_client_ids)))
    seen: list[BrokerEvent] = []

    def on_event(event: BrokerEvent) -> None:
        seen.append(event)
        side.events.on_event(event)

    broker.set_event_handler(on_event)
    await broker.connect()
    return broker, seen


def _report_of(outcome: Outcome) -> ReconcileReport:
    return outcome.reports[ACCOUNT]


async def test_missed_fill_is_recorded_once_and_a_lost_order_is_marked(
    paper: PaperStack, ledger_pool: asyncpg.Pool, producer: SigningProducer, kafka_bootstrap: str
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    filled_cid, lost_cid = f"rec-{uuid.uuid4().hex[:10]}", f"rec-{uuid.uuid4().hex[:10]}"
    client_id = next(_client_ids)
    executions: list[Executed] = []

    def on_event(event: BrokerEvent) -> None:
        if isinstance(event, Executed) and event.order_ref == filled_cid:
            executions.append(event)

    # A hot path places an order and stops before anything it heard reached the ledger.
    before = IbkrBroker(IbkrConfig(host=HOST, port=paper.gateway_port, client_id=client_id))
    before.set_event_handler(on_event)
    await before.connect()
    try:
        placed = before.place(BrokerOrder(filled_cid, ACCOUNT, "AAPL", Side.BUY, 7, OrderType.MKT))
        await eventually(lambda: sum(e.quantity for e in executions) == 7, timeout=20)
    finally:
        await before.close()
    assert placed.order_id is not None
    # The ledger heard of both orders' submission and of no fill: the fill happened while
    # the floor could not hear, and the second order is no longer at the broker at all.
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    for n, cid in enumerate((filled_cid, lost_cid)):
        await record_order_event(ledger_pool, _submitted(cid, 7, long_ago, placed.order_id + 10_000 * n))

    # Meanwhile someone else trades the account: another API client's resting order.
    manual = IbkrBroker(IbkrConfig(host=HOST, port=paper.gateway_port, client_id=next(_client_ids)))
    await manual.connect()
    manual_ref = f"manual-{uuid.uuid4().hex[:8]}"
    manual.place(
        BrokerOrder(manual_ref, ACCOUNT, "AAPL", Side.BUY, 1, OrderType.LMT, limit_price=Decimal("1.00"))
    )

    async def manual_working() -> bool:
        return any(o.order_ref == manual_ref for o in await manual.open_orders())

    await eventually(manual_working)  # type: ignore[arg-type]

    # The hot path starts again: its map back from the ledger, then the broker connects.
    side = HotPathSide(ledger_pool, producer)
    for cid in (filled_cid, lost_cid):
        state = await order_state(ledger_pool, cid)
        assert state is not None
        order = restored_order(state, await order_history(ledger_pool, cid))
        order.accepted_at = state.ts
        side.track(order)
    hot = await _hot_path_adapter(paper.gateway_port, client_id, side)
    try:
        report = _report_of(await side.reconciled(1))

        exec_ids = sorted(e.exec_id for e in executions)
        assert sorted(report.missed_fills) == exec_ids
        assert lost_cid in report.unknown_at_broker and filled_cid not in report.unknown_at_broker
        state = await order_state(ledger_pool, filled_cid)
        assert state is not None and state.kind is EventKind.FILLED and state.filled_qty == 7
        lost = await order_state(ledger_pool, lost_cid)
        assert lost is not None and lost.kind is EventKind.CANCELLED and lost.reason == UNKNOWN_AT_BROKER
        published = await read_until(
            kafka_bootstrap, ORDERS_EVENTS, lambda v: f"reconcile-{lost_cid}".encode() in v
        )
        ours = [decode(v) for v in published if filled_cid.encode() in v or lost_cid.encode() in v]
        assert {e.last_fill.exec_id for e in ours if e.last_fill} == set(exec_ids)
        assert report.last_exec_time is not None and report.last_exec_time >= since
        assert manual_ref in report.foreign_orders and filled_cid not in report.foreign_orders
        # The hot path's own account book has the fill and neither order working any more.
        assert side.book.position(ACCOUNT, "AAPL") == 7
        assert side.book.open_orders(ACCOUNT) == 0
    finally:
        await hot.close()

    # A later epoch (the hot path reconnects) finds nothing left to do.
    hot = await _hot_path_adapter(paper.gateway_port, client_id, side)
    try:
        again = _report_of(await side.reconciled(2))
        assert not set(again.missed_fills) & set(exec_ids)
        assert lost_cid not in again.unknown_at_broker
        assert filled_cid not in again.foreign_orders
        rows = [e for e in await order_history(ledger_pool, filled_cid) if e.last_fill is not None]
        assert sorted(e.last_fill.exec_id for e in rows if e.last_fill) == exec_ids
        assert side.book.position(ACCOUNT, "AAPL") == 7
    finally:
        await hot.close()
        await side.stop()
        manual.cancel(manual_ref)
        await manual.close()


async def test_a_fill_missed_during_an_outage_reaches_the_account_book_and_the_epochs_record(
    own_stack: PaperStack,  # noqa: F811 - the fixture imported above
    ledger_pool: asyncpg.Pool,
    producer: SigningProducer,
    kafka_bootstrap: str,
) -> None:
    side = HotPathSide(ledger_pool, producer)
    broker, seen = await _adapter_with_standby(own_stack, side)
    try:
        await eventually(lambda: any(isinstance(e, SessionChanged) and e.change is SessionChange.STANDBY_UP
                                     for e in seen))  # fmt: skip
        status = await own_stack.acontrol("GET", "/status")
        bid = Decimal(next(s for s in status["symbols"] if s["symbol"] == "AAPL")["bid"])
        cid = f"out-{uuid.uuid4().hex[:10]}"
        command_order = FloorOrder(
            cid, "alpha", ACCOUNT, "AAPL", Side.BUY, 5, bid - Decimal("1.00"), "DAY", None,
            accepted_at=datetime.now(UTC) - timedelta(minutes=1),
        )  # fmt: skip
        side.track(command_order)  # as intake does before the broker call
        broker.place(
            BrokerOrder(cid, ACCOUNT, "AAPL", Side.BUY, 5, OrderType.LMT, limit_price=bid - Decimal("1.00"))
        )
        await eventually(lambda: any(isinstance(e, OrderAccepted) and e.order_ref == cid for e in seen))
        side.book.on_quote("AAPL", LastPrice(bid, bid + Decimal("0.01"), None, time.perf_counter_ns()))
        exposure_before = side.book.gross_exposure(ACCOUNT)

        kill_gateway(own_stack, "primary")
        kill_gateway(own_stack, "standby")
        await eventually(lambda: any(isinstance(e, SessionChanged) and e.change is SessionChange.DISCONNECTED
                                     for e in seen))  # fmt: skip
        # The market falls through the resting buy while the floor sees nothing.
        await own_stack.acontrol("POST", "/symbols/AAPL/move", {"pct": -5, "ms": 50})

        async def filled_at_venue() -> bool:
            return (await own_stack.acontrol("GET", "/status"))["open_orders"] == 0

        await eventually(filled_at_venue)  # type: ignore[arg-type]
        assert side.book.position(ACCOUNT, "AAPL") == 0

        await asyncio.to_thread(restart_gateway, own_stack, "primary")
        reconnected = await eventually(
            lambda: next((e for e in seen if isinstance(e, SessionChanged)
                          and e.change is SessionChange.RECONNECTED), None),
            timeout=15,
        )  # fmt: skip
        outcome = await side.reconciled_epoch(reconnected.epoch)
        # The hot path's own book: the position and its exposure, and the order no longer working.
        assert side.book.position(ACCOUNT, "AAPL") == 5
        assert side.book.gross_exposure(ACCOUNT) > exposure_before
        assert side.book.open_orders(ACCOUNT) == 0
        state = await order_state(ledger_pool, cid)
        assert state is not None and state.kind is EventKind.FILLED and state.filled_qty == 5
        # The reconnect's signed broker.sessions record carries the report that found the fill.
        fills = {f.exec_id for f in seen if isinstance(f, Executed) and f.order_ref == cid}
        assert set(_report_of(outcome).missed_fills) == fills

        def reconnect_record(raw: bytes) -> bool:
            try:
                account, change = decode_session(raw)
            except ValueError:
                return False
            return (
                account == ACCOUNT and change.change is Change.RECONNECTED and change.ts == reconnected.time
            )

        published = await read_until(kafka_bootstrap, BROKER_SESSIONS, reconnect_record)
        _, change = decode_session(published[-1])
        assert change.reconcile is not None and set(change.reconcile.missed_fills) == fills
        assert change.reconcile.epoch == reconnected.epoch
        # Every epoch of this connection that starts with a reconciliation went out with its
        # report, or (the failover, when its standby died while it reconciled) saying why not.
        ours = {e.time for e in seen if isinstance(e, SessionChanged)}
        epochs = [
            c for a, c in map(decode_session, filter(_decodes, published)) if a == ACCOUNT and c.ts in ours
        ]
        assert {c.change for c in epochs} >= {Change.CONNECTED, Change.DISCONNECTED, Change.RECONNECTED}
        for c in epochs:
            if c.change is Change.DISCONNECTED:
                assert c.reconcile is None and c.reconcile_error is None
            else:
                assert (c.reconcile is None) == bool(c.reconcile_error)
    finally:
        await broker.close()
        await side.stop()


async def test_an_order_lost_at_the_broker_in_a_running_process_is_ended_by_the_reconciler_once(
    own_stack: PaperStack,  # noqa: F811 - the fixture imported above
    ledger_pool: asyncpg.Pool,
    producer: SigningProducer,
) -> None:
    side = HotPathSide(ledger_pool, producer)
    broker, seen = await _adapter_with_standby(own_stack, side)

    def session(change: SessionChange) -> SessionChanged | None:
        return next((e for e in seen if isinstance(e, SessionChanged) and e.change is change), None)

    try:
        await eventually(lambda: session(SessionChange.STANDBY_UP))
        bid, _ = await own_stack.quote("AAPL")
        cid = f"lost-{uuid.uuid4().hex[:10]}"
        limit = bid - Decimal("1.00")
        # Accepted just now: the grace period would hold it back if the hot path had to guess.
        side.track(FloorOrder(cid, "alpha", ACCOUNT, "AAPL", Side.BUY, 5, limit, "DAY", None,
                              accepted_at=datetime.now(UTC)))  # fmt: skip
        broker.place(BrokerOrder(cid, ACCOUNT, "AAPL", Side.BUY, 5, OrderType.LMT, limit_price=limit))
        await eventually(lambda: any(isinstance(e, OrderAccepted) and e.order_ref == cid for e in seen))

        kill_gateway(own_stack, "primary")
        kill_gateway(own_stack, "standby")
        await eventually(lambda: session(SessionChange.DISCONNECTED))
        # The venue starts over while the floor hears nothing: the order is gone, listed
        # neither open nor completed nor executed.
        await own_stack.acontrol("POST", "/reset", {"seed": 7})

        await asyncio.to_thread(restart_gateway, own_stack, "primary")
        reconnected = await eventually(lambda: session(SessionChange.RECONNECTED), timeout=15)
        outcome = await side.reconciled_epoch(reconnected.epoch)
        # The hot path's reconciler ends it, by its rules, as its own signed record; the adapter
        # did not end it with a status of its own.
        assert cid in _report_of(outcome).unknown_at_broker
        assert [o.command_id for o in outcome.ended] == [cid]
        state = await order_state(ledger_pool, cid)
        assert state is not None and state.kind is EventKind.CANCELLED and state.reason == UNKNOWN_AT_BROKER
        assert not [e for e in seen if isinstance(e, OrderStatusChanged) and e.order_ref == cid
                    and e.status is BrokerOrderStatus.CANCELLED]  # fmt: skip
        assert side.orders[cid].done and side.book.open_orders(ACCOUNT) == 0
        # Never sent again, neither at this epoch nor later.
        assert len([e for e in seen if isinstance(e, OrderAccepted) and e.order_ref == cid]) == 1
        assert cid not in {o.order_ref for o in await broker.open_orders()}
        assert broker.cancel(cid) == 0  # the adapter's map knows it is over
    finally:
        await broker.close()
        await side.stop()


def _decodes(raw: bytes) -> bool:
    try:
        decode_session(raw)
    except ValueError:
        return False
    return True
