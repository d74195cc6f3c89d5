"""Reconciliation at the start of every epoch: the adapter's order map against the new session.

New orders are held meanwhile. The new session's open orders, completed orders and executions
are asked fresh (the executions after the open orders are in, so fills attach to known orders),
then, per live order of the floor's map:

* at the broker (open, or with executions): adopted, matched by ``orderRef`` = command id;
  executions the floor had not seen are reported (``Executed``, ``CommissionReported``, and the
  status from the execution's cumulative quantity); a cancel or modify asked meanwhile goes out;
* not at the broker but acknowledged earlier: it ended while the floor could not hear it. It is
  marked over in the map, never sent again, and reported as lost in the listing: ending it (its
  record, the account book) is the hot path's reconciler's decision (:mod:`hotpath.reconciler`);
* not at the broker and never acknowledged (held, or written to a session that died first):
  sent now, exactly once; if the original surfaces later anyway (a frozen gateway passing it
  on), that late copy is cancelled (:mod:`brokers.ib_event_translator`); an order adopted from
  an earlier process without an acknowledgement stays held until the floor releases it;
* a ``cancel_all`` asked while disconnected goes out first, covering only what was live then.

Then what the broker listed is reported as :class:`~brokers.base.EpochReconciled`, for the
owner of the ledger to compare with its own view (:mod:`trading.reconciliation`), and orders
flow again. A read-only (market-data) adapter has no orders and skips all of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from ib_async import ExecutionFilter

from brokers import ib_convert as cv
from brokers.base import BrokerEvent, EpochReconciled
from brokers.ib_event_translator import EventTranslator
from brokers.ib_market import MarketData
from brokers.ib_order_path import OrderPath
from brokers.ib_orders import OrderMap, OrderRecord
from brokers.ib_router import Router
from brokers.ib_session import GatewaySession

log = logging.getLogger(__name__)


class EpochReconciler:
    def __init__(
        self,
        orders: OrderMap,
        path: OrderPath,
        translator: EventTranslator,
        market: MarketData,
        emit: Callable[[BrokerEvent], None],
        timeout: float,
        readonly: bool = False,
    ) -> None:
        self._orders = orders
        self._path = path
        self._translator = translator
        self._market = market
        self._emit = emit
        self._timeout = timeout
        self._readonly = readonly
        self.router: Router | None = None

    async def run(self, session: GatewaySession, epoch: int) -> None:
        router = self.router
        assert router is not None
        ib = session.ib
        assert ib is not None
        if self._readonly:
            router.mark_ready()
            await self._resubscribe(session)
            return
        timeout = self._timeout
        try:
            open_trades = await asyncio.wait_for(ib.reqOpenOrdersAsync(), timeout)
            try:
                completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), timeout)
            except TimeoutError:
                completed = []
            # Executions only after the open orders are in, so fills attach to known orders.
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter()), timeout)
            # Every client's working orders, for the listing: the floor's placed under another
            # client id are not foreign, and another client's are reported as foreign.
            try:
                listed = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), timeout)
            except TimeoutError:
                listed = open_trades
        except (TimeoutError, ConnectionError) as exc:
            log.warning("%s: reconciliation failed (%s); the session is restarted", session.label, exc)
            session.kill(f"reconciliation failed: {exc}")
            return
        if not router.is_current(session, epoch):
            return
        at_broker: set[str] = set()
        for trade in [*open_trades, *completed]:
            if trade.order.orderRef:
                at_broker.add(trade.order.orderRef)
            self._translator.on_trade(session, trade, adopt=True)
        for fill in fills:
            at_broker.add(fill.execution.orderRef)
            self._translator.on_fill(fill, adopt=True)
            stored = ib.wrapper.fills.get(fill.execution.execId)
            if stored is not None and stored.commissionReport.execId:
                self._translator.on_commission(stored, stored.commissionReport)
        self._path.sync_order_id(ib.client)
        cancelling_all = self._path.global_cancel_pending
        self._path.global_cancel_pending = False
        if cancelling_all:
            self._path.last_cancel_all_ns = self._path.global_cancel_now(session)
        lost: list[str] = []
        for rec in self._orders.live():
            self._settle(rec, rec.order.order_ref in at_broker, session, cancelling_all, epoch)
            if rec.lost:
                lost.append(rec.order.order_ref)
        self._emit(
            EpochReconciled(
                epoch=epoch,
                gateway=session.gateway,
                open_orders=tuple(cv.working_orders(listed)),
                executions=tuple(cv.executed(f) for f in fills),
                time=datetime.now(UTC),
                lost=tuple(lost),
            )
        )
        router.mark_ready()
        await self._resubscribe(session)

    async def _resubscribe(self, session: GatewaySession) -> None:
        assert session.ib is not None
        try:
            await self._market.resubscribe(session.ib)
        except Exception:  # noqa: BLE001 - orders must flow even if market data cannot resume
            log.exception("%s: market data resubscription failed", session.label)

    def _settle(
        self, rec: OrderRecord, at_broker: bool, session: GatewaySession, cancelling_all: bool, epoch: int
    ) -> None:
        """Bring one live order in line with what the new session's broker view says."""
        ib = session.ib
        assert ib is not None
        if at_broker:
            if rec.cancel_requested and not cancelling_all and rec.order_id is not None:
                ib.client.cancelOrder(rec.order_id, "")
            elif rec.modify_pending and rec.order_id is not None:
                rec.modify_pending = False
                self._path.send_modify(rec, ib)
            return
        if rec.accepted:
            # The broker had it and now lists it neither open nor filled: it was cancelled or
            # expired while the floor could not hear it. Never send it again; whether and how
            # it ends is the hot path's reconciler's call (its grace, executions completing it).
            self._orders.mark_lost(rec)
            return
        if rec.cancel_requested:
            self._path.cancel_locally(rec)
            return
        if rec.parked:
            return  # the floor has yet to decide whether it goes out (Broker.place releases it)
        if rec.held or rec.sent_epoch < epoch:
            # Held, or written to a session that died before the broker acknowledged it and
            # the broker does not have it: lost in flight. Sent now, once.
            self._path.send(rec, session)
