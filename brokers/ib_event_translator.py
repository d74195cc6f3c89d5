"""ib_async's callbacks to the floor's :data:`~brokers.base.BrokerEvent` messages.

Both sessions' ``IB`` objects are wired here (:meth:`EventTranslator.wire`). A report is matched
to the floor's order by ``orderRef`` (the command id), perm id or (client id, order id), folded
into the order map (:mod:`brokers.ib_orders`, whose updates are monotonic, so a late or
duplicated report from the other session changes nothing) and emitted only when it changed
something. Statuses ib_async sets on its own, without the gateway saying so, are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from ib_async import IB, Ticker, Trade
from ib_async.objects import AccountValue, CommissionReport, Fill

from brokers import ib_codes, ib_internals
from brokers import ib_convert as cv
from brokers.base import (
    BrokerEvent,
    BrokerNotice,
    BrokerOrderStatus,
    CommissionReported,
    OrderAccepted,
    OrderRejected,
)
from brokers.ib_market import MarketData
from brokers.ib_order_path import OrderPath
from brokers.ib_orders import OrderMap, OrderRecord
from brokers.ib_router import Router
from brokers.ib_session import GatewaySession

log = logging.getLogger(__name__)

_LOCAL_STATUSES = frozenset({"PendingSubmit", "PendingCancel", "ApiPending", "ValidationError"})
"""Statuses ib_async sets on its own, without the gateway saying so."""


class EventTranslator:
    def __init__(
        self,
        orders: OrderMap,
        path: OrderPath,
        market: MarketData,
        emit: Callable[[BrokerEvent], None],
    ) -> None:
        self._orders = orders
        self._path = path
        self._market = market
        self._emit = emit
        self.router: Router | None = None
        self.net_liq: dict[str, Decimal] = {}
        """NetLiquidation per account, as the broker last reported it."""
        self._late_cancelled: set[tuple[int, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def wire(self, session: GatewaySession, ib: IB) -> None:
        ib.openOrderEvent += lambda trade: self.on_trade(session, trade)
        ib.orderStatusEvent += lambda trade: self.on_trade(session, trade)
        ib.execDetailsEvent += lambda trade, fill: self.on_fill(fill)
        ib.commissionReportEvent += lambda trade, fill, report: self.on_commission(fill, report)
        ib.errorEvent += lambda req_id, code, msg, contract: self.on_error(session, req_id, code, msg)
        ib.pendingTickersEvent += lambda tickers: self.on_tickers(session, tickers)
        ib_internals.on_rt_volume(ib, lambda ticker, value: self.on_rt_volume(session, ticker, value))
        ib.accountValueEvent += self.on_account_value

    def session_up(self, session: GatewaySession) -> None:
        assert session.ib is not None
        for value in session.ib.accountValues():
            self.on_account_value(value)

    # --- orders ---------------------------------------------------------------------------

    def on_trade(self, session: GatewaySession, trade: Trade, adopt: bool = False) -> None:
        order, st = trade.order, trade.orderStatus
        if st.status in _LOCAL_STATUSES or (trade.log and trade.log[-1].errorCode):
            return
        client_id = order.clientId or st.clientId
        rec = self._orders.find(order.orderRef, client_id, order.orderId, order.permId or st.permId)
        if rec is None:
            return
        if (
            not adopt
            and order.orderId > 0
            and rec.order_id is not None
            and (client_id, order.orderId) != (rec.client_id, rec.order_id)
        ):
            self._late_duplicate(rec, client_id, order.orderId, cv.status(st.status))
            return
        if adopt and (rec.held or rec.order_id != order.orderId) and order.orderId > 0:
            self._orders.bind(rec, client_id, order.orderId, session.label)
            rec.parked = False
            if rec.held:
                rec.status = BrokerOrderStatus.PENDING_SUBMIT
        self._orders.bind_perm(rec, order.permId or st.permId)
        status = cv.status(st.status)
        if status in (BrokerOrderStatus.PRE_SUBMITTED, BrokerOrderStatus.SUBMITTED) and not rec.accepted:
            rec.accepted = True
            self._emit(
                OrderAccepted(
                    order_ref=rec.order.order_ref,
                    status=status,
                    client_id=rec.client_id or client_id,
                    order_id=rec.order_id or order.orderId,
                    perm_id=rec.perm_id,
                    time=datetime.now(UTC),
                )
            )
        filled = cv.shares(st.filled)
        avg = cv.price(st.avgFillPrice) if filled > 0 else None
        if self._orders.apply_status(rec, status, filled, avg):
            self._path.emit_status(rec)

    def _late_duplicate(
        self, rec: OrderRecord, client_id: int, order_id: int, status: BrokerOrderStatus
    ) -> None:
        """An order carrying ``rec``'s order_ref under another order id: the original of an
        order that was resent after a failover reached the broker after all (a frozen gateway
        passed it on late). The resend is the one the floor tracks; the late one is cancelled."""
        if status.is_done or (client_id, order_id) in self._late_cancelled:
            return
        session = self.router.active if self.router is not None else None
        if session is None or session.ib is None or session.config.client_id != client_id:
            return
        self._late_cancelled.add((client_id, order_id))
        session.ib.client.cancelOrder(order_id, "")
        self._emit(
            BrokerNotice(
                code=0,
                message=f"cancelled a late duplicate of {rec.order.order_ref} (order id {order_id})",
                req_id=order_id,
                session=session.label,
                time=datetime.now(UTC),
            )
        )

    def on_fill(self, fill: Fill, adopt: bool = False) -> None:
        ex = fill.execution
        if ex.execId in self._orders.seen_exec:
            return
        rec = self._orders.find(ex.orderRef, ex.clientId, ex.orderId, ex.permId)
        if rec is None and not adopt:
            return
        self._orders.seen_exec.add(ex.execId)
        executed = cv.executed(fill)
        if rec is not None:
            rec.exec_ids.add(ex.execId)
            self._orders.bind_perm(rec, ex.permId)
        self._emit(executed)
        if rec is not None and adopt:
            # A fill missed during an outage: the broker no longer lists a filled order among
            # the open ones, so its progress is taken from the execution's cumulative figures.
            cum = executed.cum_quantity
            status = BrokerOrderStatus.FILLED if cum >= rec.order.quantity else rec.status
            if self._orders.apply_status(rec, status, cum, executed.avg_price):
                self._path.emit_status(rec)

    def on_commission(self, fill: Fill, report: CommissionReport) -> None:
        exec_id = report.execId or fill.execution.execId
        if exec_id in self._orders.seen_commission:
            return
        if exec_id not in self._orders.seen_exec:
            self.on_fill(fill, adopt=True)
        self._orders.seen_commission.add(exec_id)
        pnl = cv.money(report.realizedPNL)
        self._emit(
            CommissionReported(
                exec_id=exec_id,
                order_ref=fill.execution.orderRef,
                commission=cv.money(report.commission),
                currency=report.currency,
                realized_pnl=pnl if pnl else None,
                time=datetime.now(UTC),
            )
        )

    def on_error(self, session: GatewaySession, req_id: int, code: int, message: str) -> None:
        now = datetime.now(UTC)
        if code in ib_codes.CONNECTIVITY_LOST:
            session.upstream_lost(f"gateway reported lost connectivity ({code}: {message})")
        elif code in ib_codes.CONNECTIVITY_RESTORED_DATA_LOST:
            self._restored_data_lost(session)
        elif code in ib_codes.CONNECTIVITY_RESTORED:
            session.upstream_restored()
        elif code in ib_codes.DEPTH_RESET and session.ib is not None:
            symbol = self._market.symbol_of(session.ib, req_id)
            if symbol is not None:
                self._market.mark_gap(symbol)
        rec = self._orders.by_order_id(session.config.client_id, req_id) if req_id > 0 else None
        order_codes = ib_codes.ORDER_REJECTED | ib_codes.MODIFY_REFUSED | ib_codes.CANCEL_REFUSED
        if rec is not None and code in order_codes and rec.session == session.label:
            category = ib_codes.category(code)
            still_working = rec.accepted and not rec.done
            self._emit(
                OrderRejected(
                    order_ref=rec.order.order_ref,
                    code=code,
                    reason=message,
                    category=category,
                    order_still_working=still_working,
                    time=now,
                )
            )
            if category == "order_rejected" and not rec.accepted:
                if self._orders.apply_status(rec, BrokerOrderStatus.INACTIVE, rec.filled, rec.avg_fill_price):
                    self._path.emit_status(rec)
            return
        if code in ib_codes.ORDER_CANCELLED_NOTICE and rec is not None:
            return
        self._emit(BrokerNotice(code=code, message=message, req_id=req_id, session=session.label, time=now))

    def _restored_data_lost(self, session: GatewaySession) -> None:
        """1101: the gateway is back but dropped the market data. A session that stayed active
        through it requests everything again now; one the 1100 took down does so when it is
        active again (its epoch resubscribes)."""
        ib = session.ib
        self._market.data_lost(ib)
        carrying = session.up and session.upstream_up
        session.upstream_restored()
        active = self.router.active if self.router is not None else None
        if carrying and session is active and ib is not None:
            task = asyncio.get_running_loop().create_task(self._market.resubscribe(ib))
            self._tasks.add(task)
            task.add_done_callback(self._resubscribed)

    def _resubscribed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("market data not requested again after 1101: %s", task.exception())

    # --- market and account ---------------------------------------------------------------

    def on_tickers(self, session: GatewaySession, tickers: Iterable[Ticker]) -> None:
        active = self.router.active if self.router is not None else None
        if session is active and session.conn is not None:
            self._market.on_tickers(tickers, session.conn.last_recv_ns)

    def on_rt_volume(self, session: GatewaySession, ticker: Ticker, value: str) -> None:
        active = self.router.active if self.router is not None else None
        if session is active:
            self._market.on_rt_volume(ticker, value)

    def on_account_value(self, value: AccountValue) -> None:
        if value.tag == "NetLiquidation" and value.currency in ("USD", "BASE", ""):
            try:
                self.net_liq[value.account] = Decimal(value.value)
            except ArithmeticError:
                log.warning("unparseable NetLiquidation %r", value.value)
