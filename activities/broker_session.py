"""The BrokerSession workflow's reconciliation activity: fetch, compare, record.

Open orders first, then executions since the last one seen (the order ``ib_async`` itself
needs so that fills attach to known orders); the ledger's open orders plus every order those
executions name; :func:`activities.reconcile.reconcile` decides. A missed fill becomes an
``orders.events`` record (and a ledger state row) whose event id derives from the execution
id, and an order unknown at the broker a ``cancelled`` record with reason
``reconcile.unknown_at_broker`` whose event id derives from the order and the epoch. Running
the activity twice therefore records nothing twice: the ledger refuses a second row for an
execution id and consumers dedupe on event and execution ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from temporalio import activity

from activities.reconcile import BrokerExecution, BrokerOpenOrder, LedgerOrder, MissedFill, reconcile
from brokers.base import Executed, OpenOrder
from bus.topics import ORDERS_EVENTS
from ledger.db import Db
from ledger.order_events import open_orders as ledger_open_orders
from ledger.order_events import order_history, record_order_event
from trading.order_events import EventKind, OrderEvent, encode
from trading.order_state import order_state
from trading.orders import Fill

UNKNOWN_AT_BROKER = "reconcile.unknown_at_broker"


@dataclass(frozen=True)
class ReconcileRequest:
    account: str
    epoch: int
    since: datetime | None = None
    """Executions before this were reconciled already (None: ask for all the broker has)."""


@dataclass(frozen=True)
class ReconcileReport:
    account: str
    epoch: int
    as_of: datetime
    missed_fills: list[str] = field(default_factory=list)
    """Execution ids recorded by this reconciliation."""
    unknown_at_broker: list[str] = field(default_factory=list)
    awaiting_broker: list[str] = field(default_factory=list)
    foreign_orders: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    last_exec_time: datetime | None = None

    @property
    def in_sync(self) -> bool:
        return not (self.missed_fills or self.unknown_at_broker or self.anomalies)


class BrokerView(Protocol):
    """The read side of :class:`brokers.base.Broker` that reconciliation needs."""

    async def open_orders(self) -> list[OpenOrder]: ...

    async def executions(self, since: datetime | None = None) -> list[Executed]: ...


class EventSink(Protocol):
    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> object: ...


class BrokerSessionActivities:
    def __init__(self, broker: BrokerView, db: Db, sink: EventSink) -> None:
        self._broker = broker
        self._db = db
        self._sink = sink

    @activity.defn(name="reconcile_account")
    async def reconcile_account(self, req: ReconcileRequest) -> ReconcileReport:
        as_of = datetime.now(UTC)
        broker_open = [o for o in await self._broker.open_orders() if o.account == req.account]
        executions = [e for e in await self._broker.executions(req.since) if e.account == req.account]
        ledger = await self._ledger_orders(req.account, {e.order_ref for e in executions})
        plan = reconcile(
            ledger,
            [BrokerOpenOrder(o.order_ref, o.quantity, o.filled) for o in broker_open],
            [BrokerExecution(e.exec_id, e.order_ref, e.quantity, e.price, e.time) for e in executions],
            as_of,
        )
        by_id = {o.command_id: o for o in ledger}
        for missed in plan.missed_fills:
            await self._record(_fill_event(by_id[missed.command_id], missed))
        for command_id in plan.unknown_at_broker:
            extra = [m for m in plan.missed_fills if m.command_id == command_id]
            await self._record(_unknown_event(by_id[command_id], extra, req.epoch, as_of))
        return ReconcileReport(
            account=req.account,
            epoch=req.epoch,
            as_of=as_of,
            missed_fills=[m.exec_id for m in plan.missed_fills],
            unknown_at_broker=list(plan.unknown_at_broker),
            awaiting_broker=list(plan.awaiting_broker),
            foreign_orders=list(plan.foreign_orders),
            anomalies=list(plan.anomalies),
            last_exec_time=max((e.time for e in executions), default=req.since),
        )

    async def _ledger_orders(self, account: str, executed_refs: set[str]) -> list[LedgerOrder]:
        latest = {e.command_id: e for e in await ledger_open_orders(self._db, account)}
        orders = []
        for command_id in sorted(set(latest) | executed_refs):
            history = await order_history(self._db, command_id)
            if history:
                orders.append(_ledger_order(history))
        return orders

    async def _record(self, event: OrderEvent) -> None:
        # Ledger row first (idempotent on event and execution id), then the record for consumers.
        await record_order_event(self._db, event)
        await self._sink.send_and_wait(ORDERS_EVENTS, encode(event), key=event.key)


def _ledger_order(history: Sequence[OrderEvent]) -> LedgerOrder:
    last = history[-1]
    view = order_state(history)
    assert view is not None
    return LedgerOrder(
        command_id=last.command_id,
        account=last.account,
        symbol=last.symbol,
        agent_id=last.agent_id,
        side=last.side,
        quantity=last.quantity,
        state=view.state,
        exec_fills=tuple((f.exec_id, f.qty, f.price) for f in view.fills),
        last_ts=max(e.ts for e in history),
        parent_id=last.parent_id,
        limit_price=last.limit_price,
        tif=last.tif,
    )


def _fill_event(order: LedgerOrder, missed: MissedFill) -> OrderEvent:
    complete = missed.filled_after >= order.quantity
    return OrderEvent(
        event_id=f"reconcile-{missed.exec_id}",
        command_id=order.command_id,
        parent_id=order.parent_id,
        kind=EventKind.FILLED if complete else EventKind.PARTIALLY_FILLED,
        account=order.account,
        symbol=order.symbol,
        agent_id=order.agent_id,
        side=order.side,
        quantity=order.quantity,
        filled_qty=missed.filled_after,
        avg_fill_price=missed.notional_after / missed.filled_after,
        last_fill=Fill(missed.exec_id, missed.qty, missed.price),
        reason="reconcile.missed_fill",
        ts=missed.time,
        limit_price=order.limit_price,
        tif=order.tif,
    )


def _unknown_event(order: LedgerOrder, missed: list[MissedFill], epoch: int, as_of: datetime) -> OrderEvent:
    filled = missed[-1].filled_after if missed else order.filled_qty
    notional = (
        missed[-1].notional_after if missed else sum((q * p for _, q, p in order.exec_fills), Decimal(0))
    )
    return OrderEvent(
        event_id=f"reconcile-{order.command_id}-e{epoch}",
        command_id=order.command_id,
        parent_id=order.parent_id,
        kind=EventKind.CANCELLED,
        account=order.account,
        symbol=order.symbol,
        agent_id=order.agent_id,
        side=order.side,
        quantity=order.quantity,
        filled_qty=filled,
        avg_fill_price=notional / filled if filled else None,
        last_fill=None,
        reason=UNKNOWN_AT_BROKER,
        ts=as_of,
        limit_price=order.limit_price,
        tif=order.tif,
    )
