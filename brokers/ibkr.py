"""Interactive Brokers through ib_async: the :class:`~brokers.base.Broker` the hot path uses.

Layers: :mod:`brokers.ib_transport` (bound, timestamped socket) -> ib_async (codec) ->
:mod:`brokers.ib_session` (one kept-alive session per gateway) and :mod:`brokers.ib_orders`
(the floor's own order map) -> this facade.

Two sessions run at all times, one per gateway (primary and hot standby), with the same client
id by default: IB ties an order to the client id that placed it, so the standby can see, modify
and cancel what the primary placed. One session is *active* and carries orders. When it goes
down (socket closed, or a missed heartbeat) the other takes over at once (``FAILED_OVER``); when
both are down orders are held in memory (``DISCONNECTED``) and sent when one is back
(``RECONNECTED``). The floor does not fail back: the session that took over stays active.

Every change of active session opens a new epoch that starts with a reconciliation, during
which new orders are held: the new session's open orders and executions are asked fresh (the
executions after the open orders are in), then, per live order of the floor's map:

* at the broker (open, or with executions): adopted, matched by ``orderRef`` = command id;
  executions the floor had not seen are reported (``Executed``, ``CommissionReported``, and the
  status from the execution's cumulative quantity); a cancel or modify asked meanwhile goes out;
* not at the broker but acknowledged earlier: it ended while the floor could not hear it, and is
  marked cancelled, never sent again;
* not at the broker and never acknowledged (held, or written to a session that died first):
  sent now, exactly once; if the original surfaces later anyway (a frozen gateway passing it
  on), that late copy is cancelled;
* a ``cancel_all`` asked while disconnected goes out first, covering only what was live then.

Then orders flow again. Orders are encoded by :mod:`brokers.ib_encode` (ib_async's own bytes,
faster) and written through ib_async's client, so its pacing throttle still applies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Client, ExecutionFilter, Ticker, Trade
from ib_async.objects import AccountValue, CommissionReport, Fill

from brokers import ib_codes
from brokers import ib_convert as cv
from brokers.base import (
    BrokerEvent,
    BrokerNotice,
    BrokerOrder,
    BrokerOrderStatus,
    CommissionReported,
    DepthSnapshot,
    DuplicateOrderRef,
    EventHandler,
    Executed,
    NotConnected,
    OpenOrder,
    OrderAccepted,
    OrderInvalid,
    OrderRejected,
    OrderStatusChanged,
    Placement,
    Position,
    Quote,
    SessionChange,
    SessionChanged,
    SessionRole,
    SourceAddressRefused,
    Subscription,
    UnknownOrderRef,
)
from brokers.ib_encode import PlaceOrderEncoder
from brokers.ib_market import MarketData
from brokers.ib_orders import OrderMap, OrderRecord
from brokers.ib_session import GatewaySession, SessionConfig, call_safely, compact_trade_logs
from config.settings import FloorSettings

log = logging.getLogger(__name__)

_PLACE_ORDER = "3\0"
_GLOBAL_CANCEL = b"58\x001\x00"
"""reqGlobalCancel at server version 178: id 58, version 1 (what ib_async's own sends)."""

_LOCAL_STATUSES = frozenset({"PendingSubmit", "PendingCancel", "ApiPending", "ValidationError"})
"""Statuses ib_async sets on its own, without the gateway saying so."""


@dataclass(frozen=True)
class IbkrConfig:
    host: str
    port: int
    standby_port: int | None = None
    standby_host: str | None = None
    client_id: int = 1
    standby_client_id: int | None = None
    """Defaults to ``client_id`` so the standby may manage the primary's orders."""
    source_address: str | None = None
    connect_timeout: float = 4.0
    heartbeat_interval: float = 0.25
    heartbeat_timeout: float = 0.5
    reconcile_timeout: float = 4.0
    max_requests_per_s: int = 45

    @classmethod
    def from_settings(cls, settings: FloorSettings, **overrides: Any) -> IbkrConfig:
        """The gateways, client id, source address and pacing the floor's settings name."""
        values: dict[str, Any] = {
            "host": settings.ib_gateway_host,
            "port": settings.ib_port,
            "standby_port": settings.ib_standby_port,
            "client_id": settings.ib_client_id,
            "source_address": settings.ib_source_address,
            "max_requests_per_s": settings.ib_max_requests_per_s,
        }
        values.update(overrides)
        return cls(**values)

    def sessions(self) -> list[SessionConfig]:
        common = {
            "source_address": self.source_address,
            "connect_timeout": self.connect_timeout,
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeat_timeout": self.heartbeat_timeout,
            "max_requests_per_s": self.max_requests_per_s,
        }
        out = [SessionConfig(self.host, self.port, self.client_id, SessionRole.PRIMARY, **common)]  # type: ignore[arg-type]
        if self.standby_port is not None:
            cid = self.client_id if self.standby_client_id is None else self.standby_client_id
            host = self.standby_host or self.host
            out.append(SessionConfig(host, self.standby_port, cid, SessionRole.STANDBY, **common))  # type: ignore[arg-type]
        return out


def _drop(_: BrokerEvent) -> None:
    pass


def _written(session: GatewaySession, send: Callable[[IB], None]) -> int:
    """Run ``send`` on the session's ``IB``; the ``perf_counter_ns()`` of the resulting socket
    write, or 0 when ib_async's pacing throttle queued the message instead."""
    ib, conn = session.ib, session.conn
    assert ib is not None and conn is not None
    before = conn.numMsgSent
    send(ib)
    return conn.last_write_ns if conn.numMsgSent > before else 0


class IbkrBroker:
    """The ib_async adapter; see the module docstring and :class:`brokers.base.Broker`."""

    name = "ibkr"

    def __init__(self, config: IbkrConfig) -> None:
        compact_trade_logs()
        self.config = config
        self._orders = OrderMap()
        self._handler: EventHandler = _drop
        self._sessions = [
            GatewaySession(sc, self, self._write_hook(sc.client_id)) for sc in config.sessions()
        ]
        self._active: GatewaySession | None = None
        self._ready = False
        self._ready_event = asyncio.Event()
        self._epoch = 0
        self._ever_active = False
        self._closing = False
        self._starting = False
        self._next_order_id = 0
        self._global_cancel_pending = False
        self._late_cancelled: set[tuple[int, int]] = set()
        self._reported_down: set[str] = set()
        self._reconcile_task: asyncio.Task[None] | None = None
        self._encoders: dict[int, PlaceOrderEncoder] = {}
        self._market = MarketData()
        self._net_liq: dict[str, Decimal] = {}
        self.last_cancel_all_ns = 0

    # --- lifecycle ------------------------------------------------------------------------

    def set_event_handler(self, handler: EventHandler) -> None:
        self._handler = handler

    @property
    def connected(self) -> bool:
        return self._ready and self._active is not None and self._active.up

    async def wait_connected(self) -> None:
        """Return once orders are written to a socket again (not held)."""
        while not self.connected:
            await self._ready_event.wait()

    @property
    def active_gateway(self) -> str | None:
        return self._active.gateway if self._active is not None else None

    @property
    def epoch(self) -> int:
        return self._epoch

    async def connect(self) -> None:
        self._starting = True
        firsts = [s.start() for s in self._sessions]
        errors: list[BaseException] = []
        # The primary gets the first chance to be active; the standby only if it cannot connect.
        for fut in firsts:
            try:
                await fut
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)
            else:
                break
        else:
            refused = [e for e in errors if isinstance(e, SourceAddressRefused)]
            await self.close(emit=False)
            if refused:
                raise refused[0]
            raise ConnectionError(f"no IB gateway reachable: {'; '.join(map(str, errors))}")
        self._starting = False
        up = [s for s in self._sessions if s.up]
        if up:
            self._activate(up[0], SessionChange.CONNECTED, "connected", None)
            for other in up[1:]:
                self._session_event(SessionChange.STANDBY_UP, other, "connected")
        await asyncio.wait_for(
            self._ready_event.wait(), self.config.reconcile_timeout + self.config.connect_timeout
        )

    async def close(self, emit: bool = True) -> None:
        self._closing = True
        self._ready = False
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        previous = self._active
        for s in self._sessions:
            await s.close()
        self._active = None
        if emit and previous is not None:
            self._session_event(SessionChange.CLOSED, previous, "close() called")

    # --- order path: synchronous ----------------------------------------------------------

    def place(self, order: BrokerOrder) -> Placement:
        rec = self._orders.get(order.order_ref)
        if rec is not None:
            if rec.original != order:
                raise DuplicateOrderRef(f"order_ref {order.order_ref!r} is already used by a different order")
            return self._placement(rec, duplicate=True)
        cv.validate(order)
        rec = self._orders.add(order)
        session = self._active
        if self._ready and session is not None and session.up:
            self._send(rec, session)
        return self._placement(rec)

    def cancel(self, order_ref: str) -> int:
        rec = self._orders.get(order_ref)
        if rec is None:
            raise UnknownOrderRef(order_ref)
        if rec.done:
            return 0
        if rec.held:
            rec.cancel_requested = True
            self._cancel_locally(rec)
            return 0
        session = self._active
        if not (self._ready and session is not None and session.up and session.ib is not None):
            rec.cancel_requested = True
            return 0
        assert rec.order_id is not None
        order_id = rec.order_id
        try:
            return _written(session, lambda ib: ib.client.cancelOrder(order_id, ""))
        except ConnectionError:
            rec.cancel_requested = True
            return 0

    def cancel_all(self) -> int:
        session = self._active
        written: int | None = None
        if self._ready and session is not None and session.up and session.ib is not None:
            try:
                written = self.last_cancel_all_ns = self._global_cancel_now(session)
            except ConnectionError:
                written = None
        for rec in self._orders.held():
            rec.cancel_requested = True
            self._cancel_locally(rec)
        if written is None:
            return self._cancel_all_later()
        return written

    def _global_cancel_now(self, session: GatewaySession) -> int:
        """Write ``reqGlobalCancel`` at once, ahead of ib_async's pacing queue.

        The circuit breaker cannot wait up to a second behind the throttle. New orders still
        waiting in that queue would reach the broker after the cancel and survive it, so they
        are taken out and cancelled here, unsent; everything else in the queue keeps its place.
        """
        ib, conn = session.ib, session.conn
        assert ib is not None and conn is not None
        client = ib.client
        if not client.isConnected():
            raise ConnectionError("not connected")
        unsent: list[int] = []
        if client._msgQ:
            kept = [m for m in client._msgQ if not m.startswith(_PLACE_ORDER)]
            unsent = [int(m[2 : m.index("\0", 2)]) for m in client._msgQ if m.startswith(_PLACE_ORDER)]
            client._msgQ.clear()
            client._msgQ.extend(kept)
        conn.sendMsg(client._prefix(_GLOBAL_CANCEL))
        written = conn.last_write_ns
        for order_id in unsent:
            rec = self._orders.by_order_id(session.config.client_id, order_id)
            # A queued modify of a working order is moot: the global cancel covers that order.
            if rec is not None and not rec.accepted:
                self._cancel_locally(rec)
        return written

    def _cancel_all_later(self) -> int:
        # Only what is live now: an order placed after this call must survive the reconnect.
        self._global_cancel_pending = True
        for rec in self._orders.live():
            rec.cancel_requested = True
        return 0

    def modify(
        self,
        order_ref: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_amount: Decimal | None = None,
        trailing_percent: Decimal | None = None,
    ) -> int:
        rec = self._orders.get(order_ref)
        if rec is None:
            raise UnknownOrderRef(order_ref)
        if rec.done:
            raise OrderInvalid("order_ref", f"order {order_ref} is {rec.status.value}; nothing to modify")
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("quantity", quantity),
                ("limit_price", limit_price),
                ("stop_price", stop_price),
                ("trailing_amount", trailing_amount),
                ("trailing_percent", trailing_percent),
            )
            if v is not None
        }
        new = dataclasses.replace(rec.order, **changes)
        cv.validate(new)
        rec.order = new
        session = self._active
        if rec.held or rec.order_id is None:
            return 0
        if not (self._ready and session is not None and session.up and session.ib is not None):
            rec.modify_pending = True
            return 0
        order_id = rec.order_id
        return _written(session, lambda ib: ib.client.sendMsg(self._encoder(ib.client).encode(new, order_id)))

    def last_write_ns(self, order_ref: str) -> int:
        rec = self._orders.get(order_ref)
        return rec.write_ns if rec is not None else 0

    def _send(self, rec: OrderRecord, session: GatewaySession) -> None:
        ib = session.ib
        assert ib is not None
        client = ib.client
        client.updateReqId(self._next_order_id)
        try:
            order_id = client.getReqId()
        except ConnectionError:
            return
        self._next_order_id = order_id + 1
        self._orders.bind(rec, session.config.client_id, order_id, session.label)
        rec.status = BrokerOrderStatus.PENDING_SUBMIT
        rec.accepted = False
        rec.sent_count += 1
        rec.sent_epoch = self._epoch
        try:
            # ib_async's placeOrder would also work; this writes the identical bytes faster
            # (brokers.ib_encode). ib_async learns the trade from the broker's openOrder reply.
            client.sendMsg(self._encoder(client).encode(rec.order, order_id))
        except ConnectionError:
            rec.status = BrokerOrderStatus.HELD
            rec.sent_count -= 1

    def _placement(self, rec: OrderRecord, duplicate: bool = False) -> Placement:
        sent = not rec.held
        return Placement(
            order_ref=rec.order.order_ref,
            sent=sent,
            write_ns=rec.write_ns if sent else 0,
            session=rec.session,
            client_id=rec.client_id if sent else None,
            order_id=rec.order_id if sent else None,
            duplicate=duplicate,
        )

    def _encoder(self, client: Client) -> PlaceOrderEncoder:
        version = client.serverVersion()
        encoder = self._encoders.get(version)
        if encoder is None:
            encoder = self._encoders[version] = PlaceOrderEncoder(version)
            encoder.warm()
        return encoder

    def _write_hook(self, client_id: int) -> Callable[[int, int], None]:
        by_id = self._orders.by_order_id

        def hook(order_id: int, write_ns: int) -> None:
            rec = by_id(client_id, order_id)
            if rec is not None:
                rec.write_ns = write_ns

        return hook

    # --- sessions (SessionListener) -------------------------------------------------------

    def wire(self, session: GatewaySession, ib: IB) -> None:
        ib.openOrderEvent += lambda trade: self._on_trade(session, trade)
        ib.orderStatusEvent += lambda trade: self._on_trade(session, trade)
        ib.execDetailsEvent += lambda trade, fill: self._on_fill(fill)
        ib.commissionReportEvent += lambda trade, fill, report: self._on_commission(fill, report)
        ib.errorEvent += lambda req_id, code, msg, contract: self._on_error(session, req_id, code, msg)
        ib.pendingTickersEvent += lambda tickers: self._on_tickers(session, tickers)
        ib.accountValueEvent += self._on_account_value

    def session_up(self, session: GatewaySession) -> None:
        assert session.ib is not None
        self._encoder(session.ib.client)  # templates built now, not on the first order
        self._next_order_id = max(self._next_order_id, session.ib.client._reqIdSeq)
        for value in session.ib.accountValues():
            self._on_account_value(value)
        if self._closing or self._starting:
            return
        if self._active is None:
            change = SessionChange.RECONNECTED if self._ever_active else SessionChange.CONNECTED
            self._activate(session, change, "connected", None)
        else:
            self._reported_down.discard(session.label)
            self._session_event(SessionChange.STANDBY_UP, session, "connected")

    def session_down(self, session: GatewaySession, cause: str) -> None:
        if self._closing or self._starting:
            return
        if session is not self._active:
            self._reported_down.add(session.label)
            self._session_event(SessionChange.STANDBY_DOWN, session, cause)
            return
        self._active = None
        self._ready = False
        self._ready_event.clear()
        other = next((s for s in self._sessions if s is not session and s.up), None)
        if other is not None:
            self._activate(other, SessionChange.FAILED_OVER, cause, session)
        else:
            self._session_event(SessionChange.DISCONNECTED, session, cause)

    def session_failed(self, session: GatewaySession, error: BaseException) -> None:
        log.info("%s: connection attempt failed: %s", session.label, error)
        if self._closing or self._starting or session is self._active or self._active is None:
            return
        if session.label not in self._reported_down:
            # A standby that never came up (or cannot come back) is news once, not per retry.
            self._reported_down.add(session.label)
            self._session_event(SessionChange.STANDBY_DOWN, session, f"cannot connect: {error}")

    def _activate(
        self, session: GatewaySession, change: SessionChange, cause: str, previous: GatewaySession | None
    ) -> None:
        self._active = session
        self._reported_down.discard(session.label)
        self._ever_active = True
        self._epoch += 1
        self._ready = False
        self._session_event(change, session, cause, previous)
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        self._reconcile_task = asyncio.get_running_loop().create_task(self._reconcile(session, self._epoch))

    def _session_event(
        self,
        change: SessionChange,
        session: GatewaySession,
        cause: str,
        previous: GatewaySession | None = None,
    ) -> None:
        self._emit(
            SessionChanged(
                change=change,
                gateway=session.gateway,
                role=session.role,
                cause=cause,
                epoch=self._epoch,
                time=datetime.now(UTC),
                previous_gateway=previous.gateway if previous is not None else None,
                held_orders=len(self._orders.held()),
            )
        )

    async def _reconcile(self, session: GatewaySession, epoch: int) -> None:
        ib = session.ib
        assert ib is not None
        timeout = self.config.reconcile_timeout
        try:
            open_trades = await asyncio.wait_for(ib.reqOpenOrdersAsync(), timeout)
            try:
                completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), timeout)
            except TimeoutError:
                completed = []
            # Executions only after the open orders are in, so fills attach to known orders.
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter()), timeout)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("%s: reconciliation failed (%s); the session is restarted", session.label, exc)
            session.kill(f"reconciliation failed: {exc}")
            return
        if epoch != self._epoch or session is not self._active:
            return
        at_broker: set[str] = set()
        for trade in [*open_trades, *completed]:
            if trade.order.orderRef:
                at_broker.add(trade.order.orderRef)
            self._on_trade(session, trade, adopt=True)
        for fill in fills:
            at_broker.add(fill.execution.orderRef)
            self._on_fill(fill, adopt=True)
            stored = ib.wrapper.fills.get(fill.execution.execId)
            if stored is not None and stored.commissionReport.execId:
                self._on_commission(stored, stored.commissionReport)
        self._next_order_id = max(self._next_order_id, ib.client._reqIdSeq)
        cancelling_all = self._global_cancel_pending
        self._global_cancel_pending = False
        if cancelling_all:
            self.last_cancel_all_ns = self._global_cancel_now(session)
        for rec in self._orders.live():
            self._settle(rec, rec.order.order_ref in at_broker, session, cancelling_all)
        self._ready = True
        self._ready_event.set()
        try:
            await self._market.resubscribe(ib)
        except Exception:  # noqa: BLE001 - orders must flow even if market data cannot resume
            log.exception("%s: market data resubscription failed", session.label)

    def _settle(
        self, rec: OrderRecord, at_broker: bool, session: GatewaySession, cancelling_all: bool
    ) -> None:
        """Bring one live order in line with what the new session's broker view says."""
        ib = session.ib
        assert ib is not None
        if at_broker:
            if rec.cancel_requested and not cancelling_all and rec.order_id is not None:
                ib.client.cancelOrder(rec.order_id, "")
            elif rec.modify_pending and rec.order_id is not None:
                rec.modify_pending = False
                ib.client.sendMsg(self._encoder(ib.client).encode(rec.order, rec.order_id))
            return
        if rec.accepted:
            # The broker had it and now lists it neither open nor filled: it was cancelled or
            # expired while the floor could not hear it. Never send it again.
            self._cancel_locally(rec)
            return
        if rec.cancel_requested:
            self._cancel_locally(rec)
            return
        if rec.held or rec.sent_epoch < self._epoch:
            # Held, or written to a session that died before the broker acknowledged it and
            # the broker does not have it: lost in flight. Sent now, once.
            self._send(rec, session)

    # --- inbound: orders ------------------------------------------------------------------

    def _on_trade(self, session: GatewaySession, trade: Trade, adopt: bool = False) -> None:
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
            self._emit_status(rec)

    def _late_duplicate(
        self, rec: OrderRecord, client_id: int, order_id: int, status: BrokerOrderStatus
    ) -> None:
        """An order carrying ``rec``'s order_ref under another order id: the original of an
        order that was resent after a failover reached the broker after all (a frozen gateway
        passed it on late). The resend is the one the floor tracks; the late one is cancelled."""
        if status.is_done or (client_id, order_id) in self._late_cancelled:
            return
        session = self._active
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

    def _cancel_locally(self, rec: OrderRecord) -> None:
        """Mark an order the broker never had (or no longer has) cancelled, and say so."""
        if self._orders.apply_status(rec, BrokerOrderStatus.CANCELLED, rec.filled, rec.avg_fill_price):
            self._emit_status(rec)

    def _emit_status(self, rec: OrderRecord) -> None:
        self._emit(
            OrderStatusChanged(
                order_ref=rec.order.order_ref,
                status=rec.status,
                filled=rec.filled,
                remaining=rec.remaining,
                avg_fill_price=rec.avg_fill_price,
                client_id=rec.client_id or 0,
                order_id=rec.order_id or 0,
                perm_id=rec.perm_id,
                time=datetime.now(UTC),
            )
        )

    def _on_fill(self, fill: Fill, adopt: bool = False) -> None:
        ex = fill.execution
        if ex.execId in self._orders.seen_exec:
            return
        rec = self._orders.find(ex.orderRef, ex.clientId, ex.orderId, ex.permId)
        if rec is None and not adopt:
            return
        self._orders.seen_exec.add(ex.execId)
        executed = self._executed(fill)
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
                self._emit_status(rec)

    def _executed(self, fill: Fill) -> Executed:
        ex = fill.execution
        return Executed(
            order_ref=ex.orderRef,
            exec_id=ex.execId,
            account=ex.acctNumber,
            symbol=fill.contract.symbol,
            side=cv.side_of_execution(ex.side),
            quantity=cv.shares(ex.shares),
            price=cv.price(ex.price) or Decimal(0),
            cum_quantity=cv.shares(ex.cumQty),
            avg_price=cv.price(ex.avgPrice) or Decimal(0),
            time=cv.utc(ex.time),
            perm_id=ex.permId,
            order_id=ex.orderId,
            client_id=ex.clientId,
        )

    def _on_commission(self, fill: Fill, report: CommissionReport) -> None:
        exec_id = report.execId or fill.execution.execId
        if exec_id in self._orders.seen_commission:
            return
        if exec_id not in self._orders.seen_exec:
            self._on_fill(fill, adopt=True)
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

    def _on_error(self, session: GatewaySession, req_id: int, code: int, message: str) -> None:
        now = datetime.now(UTC)
        if code in ib_codes.CONNECTIVITY_LOST:
            session.kill(f"gateway reported lost connectivity ({code}: {message})")
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
                    self._emit_status(rec)
            return
        if code in ib_codes.ORDER_CANCELLED_NOTICE and rec is not None:
            return
        self._emit(BrokerNotice(code=code, message=message, req_id=req_id, session=session.label, time=now))

    def _on_tickers(self, session: GatewaySession, tickers: Iterable[Ticker]) -> None:
        if session is self._active and session.conn is not None:
            self._market.on_tickers(tickers, session.conn.last_recv_ns)

    def _on_account_value(self, value: AccountValue) -> None:
        if value.tag == "NetLiquidation" and value.currency in ("USD", "BASE", ""):
            try:
                self._net_liq[value.account] = Decimal(value.value)
            except ArithmeticError:
                log.warning("unparseable NetLiquidation %r", value.value)

    def _emit(self, event: BrokerEvent) -> None:
        call_safely(self._handler, event)

    # --- queries --------------------------------------------------------------------------

    def _ib(self) -> IB:
        session = self._active
        if session is None or not session.up or session.ib is None:
            raise NotConnected("no IB gateway session is up")
        return session.ib

    async def net_liquidation(self, account: str) -> Decimal:
        if account in self._net_liq:
            return self._net_liq[account]
        ib = self._ib()
        for value in await ib.accountSummaryAsync(account):
            self._on_account_value(value)
        if account not in self._net_liq:
            raise NotConnected(f"the broker has not reported NetLiquidation for {account}")
        return self._net_liq[account]

    async def open_orders(self) -> list[OpenOrder]:
        """Working orders of every client on the account, asked fresh from the active session."""
        trades = await self._ib().reqAllOpenOrdersAsync()
        # Live openOrder pushes that arrive during the request land in the same reply list.
        latest = {(t.order.clientId, t.order.orderId, t.order.permId): t for t in trades}
        out = []
        for t in latest.values():
            o, st = t.order, t.orderStatus
            if cv.status(st.status).is_done:
                continue  # a report that crossed its own cancel or fill
            filled = cv.shares(st.filled)
            out.append(
                OpenOrder(
                    order_ref=o.orderRef,
                    account=o.account,
                    symbol=t.contract.symbol,
                    side=cv.side_of_execution(o.action),
                    quantity=cv.shares(o.totalQuantity),
                    order_type=o.orderType,
                    limit_price=cv.price(o.lmtPrice),
                    stop_price=cv.price(o.auxPrice),
                    status=cv.status(st.status),
                    filled=filled,
                    remaining=cv.shares(st.remaining),
                    client_id=o.clientId,
                    order_id=o.orderId,
                    perm_id=o.permId,
                )
            )
        return out

    async def executions(self, since: datetime | None = None) -> list[Executed]:
        fills = await self._ib().reqExecutionsAsync(ExecutionFilter())
        out = [self._executed(f) for f in fills]
        return [e for e in out if since is None or e.time >= since]

    async def positions(self) -> list[Position]:
        ib = self._ib()
        # The request's own list also collects the streamed updates that arrive while it is
        # open (a fill's position push), so one symbol can appear twice; ib_async's position
        # map, refreshed by the request, holds exactly one entry per account and contract.
        await ib.reqPositionsAsync()
        return [
            Position(
                account=p.account,
                symbol=p.contract.symbol,
                quantity=cv.shares(p.position),
                avg_cost=cv.money(p.avgCost),
            )
            for p in ib.positions()
        ]

    # --- market data ---------------------------------------------------------------------

    async def subscribe_quotes(self, symbol: str, handler: Callable[[Quote], None]) -> Subscription:
        return await self._market.subscribe_quotes(symbol, handler, self._md_ib())

    async def subscribe_depth(
        self, symbol: str, handler: Callable[[DepthSnapshot], None], rows: int = 10
    ) -> Subscription:
        return await self._market.subscribe_depth(symbol, handler, rows, self._md_ib())

    async def unsubscribe(self, subscription: Subscription) -> None:
        self._market.unsubscribe(subscription, self._md_ib())

    def _md_ib(self) -> IB | None:
        session = self._active
        return session.ib if self.connected and session is not None else None
