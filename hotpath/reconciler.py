"""The floor's one reconciler: at every broker epoch, what the broker lists against the orders
the floor holds, carried out on the hot path's order map and account book.

The hot path owns the broker connection, so it owns reconciliation. When a session starts an
epoch (connect, reconnect, failover) the broker adapter holds new orders, brings its own order
map in line with the broker (adopting what the broker has, sending held orders once, reporting
missed executions, see :mod:`brokers.ib_reconcile`) and then reports what the broker listed
(:class:`~brokers.base.EpochReconciled`). This module compares that listing with the floor's
orders as they stood when the epoch began (the ledger's view: restored from it at start, every
change written to it since) by the rules of :mod:`trading.reconciliation`, per account:

* a missed fill not yet applied is applied to the order and the account book and recorded as a
  fill with reason ``reconcile.missed_fill`` (event id from the execution id, so the ledger
  refuses it twice); one the adapter already reported is only listed;
* an order the broker no longer knows that is still live is ended in the book and recorded as
  ``cancelled`` with reason ``reconcile.unknown_at_broker``; this is the one place that decides
  so, also for an order the adapter found lost within a running process (it only stops sending
  it and lists it as lost, which the grace period does not hold back);
* awaiting and foreign orders and anomalies are reported.

The records go the hot path's normal way (ledger row, then ``orders.events`` signed by
``floor-hotpath``); the per-account :class:`~trading.reconciliation.ReconcileReport` travels in
the epoch's signed ``broker.sessions`` record to the BrokerSession workflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from brokers.base import EpochReconciled
from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from trading.order_events import EventKind, OrderEvent
from trading.orders import Cancelled
from trading.reconciliation import (
    DEFAULT_GRACE,
    MISSED_FILL,
    UNKNOWN_AT_BROKER,
    BrokerExecution,
    BrokerOpenOrder,
    LedgerOrder,
    ReconcileReport,
    reconcile,
)


@dataclass(frozen=True)
class Outcome:
    """What one epoch's reconciliation did: records to write, orders it ended, reports."""

    records: tuple[OrderEvent, ...]
    ended: tuple[FloorOrder, ...]
    reports: dict[str, ReconcileReport]
    """By account, for every account the hot path serves or holds orders of. Their foreign
    orders are those not in the hot path's map: some may be the floor's, ended before it
    started (the caller asks the ledger)."""


class Reconciler:
    def __init__(
        self,
        orders: dict[str, FloorOrder],
        book: AccountBook,
        accounts: Sequence[str] = (),
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        self._orders = orders
        self._book = book
        self._accounts = tuple(accounts)
        self._grace = grace
        self._baseline: dict[int, list[LedgerOrder]] = {}

    def epoch_started(self, epoch: int) -> None:
        """Remember the floor's live orders as they stand now, before the broker is asked."""
        self._baseline = {epoch: [_view(o) for o in self._orders.values() if not o.done]}

    def epoch_reconciled(self, listing: EpochReconciled) -> Outcome:
        baseline = self._baseline.pop(listing.epoch, None)
        if baseline is None:
            baseline = [_view(o) for o in self._orders.values() if not o.done]
        if listing.accounts:
            # One of several broker connections: the other accounts' orders are not in its listing.
            baseline = [o for o in baseline if o.account in listing.accounts]
        # Orders that ended before the epoch are the floor's too: their executions are known.
        known = {o.command_id for o in baseline}
        for ref in dict.fromkeys(e.order_ref for e in listing.executions):
            order = self._orders.get(ref)
            if (
                order is not None
                and ref not in known
                and (not listing.accounts or order.account in listing.accounts)
            ):
                baseline.append(_view(order))
        as_of = listing.time
        served = listing.accounts or self._accounts
        accounts = dict.fromkeys([*served, *(o.account for o in baseline)])
        records: list[OrderEvent] = []
        ended: list[FloorOrder] = []
        reports: dict[str, ReconcileReport] = {}
        for account in accounts:
            executions = [e for e in listing.executions if e.account == account]
            plan = reconcile(
                [o for o in baseline if o.account == account],
                [
                    BrokerOpenOrder(o.order_ref, o.quantity, o.filled)
                    for o in listing.open_orders
                    if o.account == account
                ],
                [BrokerExecution(e.exec_id, e.order_ref, e.quantity, e.price, e.time) for e in executions],
                as_of,
                self._grace,
                gone=listing.lost,
            )
            for missed in plan.missed_fills:
                order = self._orders[missed.command_id]
                fill = order.apply_fill(missed.exec_id, missed.qty, missed.price)
                if fill is None:
                    continue  # the adapter reported it already, and it was recorded then
                self._book.on_fill(order.account, order.symbol, order.side, fill.qty, order.command_id)
                kind = EventKind.FILLED if order.filled_qty == order.quantity else EventKind.PARTIALLY_FILLED
                if kind is EventKind.FILLED:
                    self._book.order_done(order.account, order.command_id)
                    ended.append(order)
                event = order.event(kind, last_fill=fill, reason=MISSED_FILL)
                event_id = f"reconcile-{missed.exec_id}"
                records.append(dataclasses.replace(event, event_id=event_id, ts=missed.time))
            for command_id in plan.unknown_at_broker:
                order = self._orders[command_id]
                if order.done:
                    continue  # ended meanwhile (the adapter heard of it), and recorded then
                order.end(Cancelled(UNKNOWN_AT_BROKER))
                self._book.order_done(order.account, order.command_id)
                ended.append(order)
                event = order.event(EventKind.CANCELLED, reason=UNKNOWN_AT_BROKER)
                event_id = f"reconcile-{command_id}-e{listing.epoch}"
                records.append(dataclasses.replace(event, event_id=event_id))
            last_exec = max((e.time for e in executions), default=None)
            reports[account] = ReconcileReport.of(account, listing.epoch, as_of, plan, last_exec)
        return Outcome(tuple(records), tuple(ended), reports)


def _view(order: FloorOrder) -> LedgerOrder:
    return LedgerOrder(
        command_id=order.command_id,
        account=order.account,
        symbol=order.symbol,
        agent_id=order.agent_id,
        side=order.side.value,
        quantity=order.quantity,
        state=order.machine.state,
        exec_ids=frozenset(order.exec_ids),
        filled_qty=order.filled_qty,
        filled_notional=order.machine.filled_notional,
        last_ts=order.accepted_at or datetime.min.replace(tzinfo=UTC),
        parent_id=order.parent_id,
        limit_price=order.limit_price,
        tif=order.tif,
    )
