"""Broker callbacks to ledger state rows and ``orders.events`` records.

The broker calls :meth:`BrokerEvents.on_event` synchronously from its socket reader; it only
updates the in-memory order map and position book (so the next command's risk check sees the
fill at once) and queues the I/O, which :meth:`BrokerEvents.run` drains in arrival order.
Each epoch's reconciliation (:mod:`hotpath.reconciler`) is carried out here the same way, and
the epoch's ``broker.sessions`` records wait for its report.

Nothing that happened is dropped: a state row the ledger does not take (Postgres down, a lost
connection, a hung write) is tried again with capped backoff until it is written, the queue
behind it waiting so each order's rows keep their order (``order_events.write.retrying`` /
``.recovered`` ops events tell the outage); the write is idempotent (event id, execution id), so
a fill lands once however often it is tried. Only then does the record go to
:class:`~hotpath.publish.OrderEventPublisher`, which delivers it to Kafka acknowledged, retried,
in order, in the background: nothing here is awaited by intake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from brokers.base import (
    BrokerEvent,
    BrokerNotice,
    BrokerOrderStatus,
    CommissionReported,
    EpochReconciled,
    Executed,
    OrderAccepted,
    OrderRejected,
    OrderStatusChanged,
    SessionChange,
    SessionChanged,
)
from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from hotpath.intake_steps import ledger_unreachable
from hotpath.order_spans import OrderSpans
from hotpath.ports import EventProducer, HotLedger
from hotpath.publish import OrderEventPublisher
from hotpath.reconciler import Outcome, Reconciler
from hotpath.retries import Backoff, FailingStreak, until_written
from hotpath.session_metrics import SessionMetrics
from hotpath.sessions import EPOCH_CHANGES, RECONCILED_CHANGES, SESSIONS_TOPIC
from hotpath.sessions import records as session_records
from observability.telemetry import Metrics, in_trace
from trading.order_events import EventKind, OrderEvent, to_dict
from trading.orders import Cancelled, Rejected
from trading.reconciliation import ReconcileReport

log = logging.getLogger(__name__)

_SESSION_SEVERITY = {
    SessionChange.DISCONNECTED: "error",
    SessionChange.FAILED_OVER: "warning",
    SessionChange.STANDBY_DOWN: "warning",
    SessionChange.RECONNECTED: "warning",
}

_Work = tuple[str, str, Mapping[str, Any], OrderEvent | None]
"""(command_id, broker state name, detail, orders.events record or None)."""

KAFKA_ONLY = "kafka_only"
"""The state name of a record that goes to ``orders.events`` only, never to the state rows."""
WRITE_BACKOFF = Backoff(first_s=0.05, max_s=2.0, timeout_s=5.0)
WRITE_AREA = "order_events.write"
SESSION_BACKOFF = Backoff(first_s=0.05, max_s=2.0, timeout_s=10.0)
SESSION_AREA = "broker_sessions.publish"
WRITE_ADVICE = (
    "the ledger is not taking order-state rows; they are kept in memory, in order, and written "
    "when it answers: check Postgres (DATABASE_URL) and the hotpath role's grants"
)
FAILED_ADVICE = (
    "the ledger refused this order-state row (not a lost connection, so it is not tried again); "
    "fix the cause (a constraint, the hotpath role's grants) and write the record in this event by hand"
)


class BrokerEvents:
    def __init__(
        self,
        orders: dict[str, FloorOrder],
        book: AccountBook,
        ledger: HotLedger,
        producer: EventProducer,
        metrics: Metrics,
        on_done: Callable[[FloorOrder], None] | None = None,
        accounts: Sequence[str] = (),
        write_backoff: Backoff = WRITE_BACKOFF,
        publisher: OrderEventPublisher | None = None,
        spans: OrderSpans | None = None,
    ) -> None:
        self._accounts = tuple(accounts)
        self.spans = spans
        """The orders' spans at the broker (None: tracing off)."""
        self._on_done = on_done
        self._orders = orders
        self._book = book
        self._ledger = ledger
        self._producer = producer
        self._metrics = metrics
        self._session_metrics = SessionMetrics(metrics)
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
        self._write_backoff = write_backoff
        self._write_streak = FailingStreak(WRITE_AREA, self.record_ops, write_backoff, WRITE_ADVICE)
        self.publisher = publisher or OrderEventPublisher(
            producer, self.record_ops, headers_for=spans.headers_for if spans is not None else None
        )
        self._session_streak = FailingStreak(
            SESSION_AREA,
            self.record_ops,
            SESSION_BACKOFF,
            f"Kafka is not acknowledging {SESSIONS_TOPIC} records; each is sent again until it is",
        )
        self._background: set[asyncio.Task[None]] = set()
        self._session_order = asyncio.Lock()
        """Session records leave in the order of their changes (waiters queue first come)."""
        self.sessions: list[SessionChanged] = []
        self.reconciler = Reconciler(orders, book, self._accounts)
        self.reconciled: list[Outcome] = []
        self._reconciling: SessionChanged | None = None
        """The change whose epoch's reconciliation has not reported yet (its records wait)."""

    def on_event(self, event: BrokerEvent) -> None:
        self._metrics.broker_events.add(1, {"type": type(event).__name__})
        if isinstance(event, SessionChanged):
            self.sessions.append(event)
            self._session_metrics.on_change(event)
            log.warning(
                "broker session %s: %s (%s), epoch %d", event.change, event.gateway, event.cause, event.epoch
            )
            severity = _SESSION_SEVERITY.get(event.change, "info")
            self.record_ops(f"broker.{event.change.value}", severity, _detail(event))
            if event.change in EPOCH_CHANGES or event.change is SessionChange.CLOSED:
                self._unreconciled(f"{event.change.value} before it finished: {event.cause}")
            if event.change in RECONCILED_CHANGES:
                self.reconciler.epoch_started(event.epoch)
                self._reconciling = event
            else:
                self._publish_sessions(event)
            return
        if isinstance(event, EpochReconciled):
            self._epoch_reconciled(event)
            return
        if isinstance(event, BrokerNotice):
            if event.ops_kind is not None:  # one a person must act on (a broker login, say)
                self.record_ops(event.ops_kind, event.severity, _detail(event))
            return
        order_ref = getattr(event, "order_ref", None)
        order = self._orders.get(order_ref) if order_ref else None
        if order is None:
            # Not ours (another client on the account) or from before a restart: ledger only.
            if order_ref:
                self._queue.put_nowait((order_ref, _state_name(event), _detail(event), None))
            return
        was_done = order.done
        self._queue.put_nowait(self._translate(order, event))
        if order.done and not was_done and self._on_done is not None:
            self._on_done(order)

    def _epoch_reconciled(self, listing: EpochReconciled) -> None:
        self._session_metrics.on_reconciled(listing.epoch)
        outcome = self.reconciler.epoch_reconciled(listing)
        self.reconciled.append(outcome)
        for record in outcome.records:
            self.emit(record)
        for order in outcome.ended:
            if self._on_done is not None:
                self._on_done(order)
        in_sync = all(r.in_sync for r in outcome.reports.values())
        if not in_sync:
            log.warning("reconciliation of epoch %d: %s", listing.epoch, outcome.reports)
        self.record_ops(
            "broker.reconciled",
            "info" if in_sync else "warning",
            {
                "epoch": listing.epoch,
                "gateway": listing.gateway,
                **{
                    account: {
                        "missed_fills": len(r.missed_fills),
                        "unknown_at_broker": len(r.unknown_at_broker),
                        "awaiting_broker": len(r.awaiting_broker),
                        "anomalies": len(r.anomalies),
                    }
                    for account, r in outcome.reports.items()
                },
            },
        )
        change = self._reconciling
        if change is not None and change.epoch == listing.epoch:
            self._reconciling = None
            self._publish_sessions(change, outcome)

    def _unreconciled(self, why: str) -> None:
        """The epoch waiting for its reconciliation ended first: its records go out without."""
        change, self._reconciling = self._reconciling, None
        if change is not None:
            self._publish_sessions(change, error=f"reconciliation did not finish: {why}")

    def _publish_sessions(
        self, change: SessionChanged, outcome: Outcome | None = None, error: str | None = None
    ) -> None:
        self._spawn(self._publish_session(change, outcome, error))

    def emit(self, record: OrderEvent) -> None:
        """Queue a record the floor itself produced (accepted, rejected) behind the broker's, so
        one order's records reach the ledger and Kafka in the order they happened, and intake
        goes on to the next command without waiting for either."""
        self._queue.put_nowait((record.command_id, record.kind.value, {}, record))

    def publish_only(self, record: OrderEvent) -> None:
        """Queue a record for ``orders.events`` alone (an iceberg parent's or control's: no order
        at the broker, so no state row), behind the records queued before it."""
        self._queue.put_nowait((record.command_id, KAFKA_ONLY, {}, record))

    def _translate(self, order: FloorOrder, event: BrokerEvent) -> _Work:
        detail = _detail(event)
        record: OrderEvent | None = None
        if isinstance(event, OrderAccepted):
            if order.unacknowledged_since_ns is not None:
                # The first acknowledgement of an order this process wrote: the broker's answer time.
                waited_ns = time.perf_counter_ns() - order.unacknowledged_since_ns
                order.unacknowledged_since_ns = None
                traced = in_trace(order.span_context)
                self._metrics.ack_latency.record(max(0, waited_ns) / 1e9, context=traced)
            order.acknowledged(event.order_id)
            record = order.event(EventKind.SUBMITTED)
        elif isinstance(event, Executed):
            fill = order.apply_fill(event.exec_id, event.quantity, event.price)
            if fill is not None:
                self._metrics.fills.add(1, {"side": order.side.value})
                self._metrics.filled_shares.add(fill.qty, {"side": order.side.value})
                self._book.on_fill(order.account, order.symbol, order.side, fill.qty, order.command_id)
                kind = EventKind.FILLED if order.filled_qty == order.quantity else EventKind.PARTIALLY_FILLED
                if kind is EventKind.FILLED:
                    self._book.order_done(order.account, order.command_id)
                record = order.event(kind, last_fill=fill)
        elif isinstance(event, OrderStatusChanged):
            if event.status is BrokerOrderStatus.CANCELLED and not order.done:
                order.end(Cancelled("broker.cancelled"))
                self._book.order_done(order.account, order.command_id)
                record = order.event(
                    EventKind.CANCELLED,
                    reason="broker.cancelled",
                    broker_filled_qty=_broker_filled(order, event),
                )
            elif event.status is BrokerOrderStatus.INACTIVE and not order.done:
                order.end(Rejected("broker.inactive"))
                self._book.order_done(order.account, order.command_id)
                record = order.event(
                    EventKind.REJECTED,
                    reason="broker.inactive",
                    broker_filled_qty=_broker_filled(order, event),
                )
        elif isinstance(event, OrderRejected):
            if not event.order_still_working and not order.done:
                order.end(Rejected(f"broker.{event.category}"))
                self._book.order_done(order.account, order.command_id)
                record = order.event(EventKind.REJECTED, reason=f"broker.{event.category}")
        if self.spans is not None and record is not None:
            self.spans.broker_record(order, record)  # made in a later turn of the loop
        return (order.command_id, _state_name(event), detail, record)

    def record_ops(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        """Record an ops event without blocking the caller (a socket or tick callback)."""
        self._spawn(self._record_ops(kind, severity, detail))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_session(
        self, change: SessionChanged, outcome: Outcome | None, error: str | None
    ) -> None:
        async with self._session_order:
            reports = dict(outcome.reports) if outcome is not None else None
            try:
                if reports:
                    reports = await self._without_floor_orders(reports)
            except Exception:
                log.exception("foreign orders of epoch %d not checked against the ledger", change.epoch)
            for key, value in session_records(change, change.accounts or self._accounts, reports, error):
                await until_written(
                    functools.partial(self._producer.send_and_wait, SESSIONS_TOPIC, value, key=key),
                    self._session_streak,
                    SESSION_BACKOFF,
                    {"epoch": change.epoch, "change": change.change.value},
                )

    async def _without_floor_orders(self, reports: dict[str, ReconcileReport]) -> dict[str, ReconcileReport]:
        """The reports with the floor's own ended orders taken out of their foreign orders."""
        foreign = sorted({ref for r in reports.values() for ref in r.foreign_orders})
        if not foreign:
            return reports
        ours = await self._ledger.known_orders(foreign)
        return {
            account: dataclasses.replace(r, foreign_orders=[f for f in r.foreign_orders if f not in ours])
            for account, r in reports.items()
        }

    async def _record_ops(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        try:
            await self._ledger.record_ops_event(kind, severity, detail)
        except Exception:
            log.exception("ops event %s not recorded", kind)

    async def run(self) -> None:
        """Drain the queue forever: ledger state row first (retried until written), then the
        ``orders.events`` record to the publisher, which runs beside this loop.

        Commissions become ops events (``broker.commission``, with the execution id); other
        callbacks that change no order state are logged with their detail."""
        publishing = asyncio.get_running_loop().create_task(self.publisher.run(), name="orders-events")
        try:
            while True:
                work = await self._queue.get()
                try:
                    await self._write(work)
                finally:
                    self._queue.task_done()
        finally:
            publishing.cancel()

    async def _write(self, work: _Work) -> None:
        command_id, state, detail, record = work
        where = {"command_id": command_id, "state": state, "waiting": self._queue.qsize()}
        try:
            if state == "commission":
                # orders.events has no commission field; ops keeps it beside the fills.
                await until_written(
                    lambda: self._ledger.record_ops_event("broker.commission", "info", detail),
                    self._write_streak,
                    self._write_backoff,
                    where,
                    _worth_retrying,
                )
            elif record is None:
                log.info("broker %s for %s: %s", state, command_id, dict(detail))
            else:
                if state != KAFKA_ONLY:
                    await until_written(
                        lambda: self._ledger.record_order_event(record),
                        self._write_streak,
                        self._write_backoff,
                        where,
                        _worth_retrying,
                    )
                self.publisher.put(record)
        except Exception as exc:
            # The ledger refused this row outright: trying it again would hold every later
            # fill, cancel and rejection behind it for the life of the process. Ops gets the
            # whole record (to write it by hand once the cause is fixed); it is not published,
            # since orders.events carries only what the ledger holds.
            error = f"{type(exc).__name__}: {exc}"
            log.critical(
                "order state row for %s (%s) not written: %s; %s", command_id, state, error, FAILED_ADVICE
            )
            self.record_ops(
                f"{WRITE_AREA}.failed",
                "critical",
                {
                    "command_id": command_id,
                    "state": state,
                    "record": to_dict(record) if record is not None else dict(detail),
                    "error": error,
                    "advice": FAILED_ADVICE,
                },
            )

    async def drained(self) -> None:
        """Everything queued so far in the ledger and acknowledged by Kafka."""
        await self._queue.join()
        await self.publisher.drained()


def _worth_retrying(exc: BaseException) -> bool:
    """A write that failed because the ledger could not be reached (a timed-out attempt is
    retried by :func:`until_written` itself); any other error is the ledger refusing it."""
    return ledger_unreachable(exc)


def _state_name(event: BrokerEvent) -> str:
    if isinstance(event, OrderAccepted):
        return "submitted"
    if isinstance(event, Executed):
        return "execution"
    if isinstance(event, CommissionReported):
        return "commission"
    if isinstance(event, OrderRejected):
        return "broker_rejected"
    if isinstance(event, OrderStatusChanged):
        return f"status:{event.status.value}"
    return type(event).__name__


def _detail(event: BrokerEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in getattr(event, "__dataclass_fields__", {}):
        value = getattr(event, name)
        out[name] = value if isinstance(value, int | bool | type(None)) else str(value)
    return out


def _broker_filled(order: FloorOrder, event: OrderStatusChanged) -> int:
    """What the broker says had filled when it ended the order: at least what the floor has
    seen, and more while executions racing the cancel are still on their way."""
    return max(order.filled_qty, min(event.filled, order.quantity))
