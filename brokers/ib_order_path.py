"""The order path: place, cancel, cancel all and modify, written to the active session's socket.

Synchronous, as :class:`brokers.base.Broker` requires: each call encodes and writes before it
returns, or holds the order (or the cancel, or the modify) while no session carries orders, for
the next epoch's reconciliation to send. Orders are encoded by :mod:`brokers.ib_encode`
(ib_async's own bytes, faster) and written through ib_async's client, so its pacing throttle
(IB allows 50 messages/s per client) still applies; only the circuit breaker's global cancel
overtakes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Client

from brokers import ib_convert as cv
from brokers import ib_internals
from brokers.base import (
    BrokerEvent,
    BrokerOrder,
    BrokerOrderStatus,
    DuplicateOrderRef,
    OpenOrder,
    OrderInvalid,
    OrderStatusChanged,
    Placement,
    UnknownOrderRef,
)
from brokers.ib_encode import PlaceOrderEncoder
from brokers.ib_orders import OrderMap, OrderRecord
from brokers.ib_router import Router
from brokers.ib_session import GatewaySession
from brokers.ib_transport import OrderWriteHook

_GLOBAL_CANCEL = b"58\x001\x00"
"""reqGlobalCancel at server version 178: id 58, version 1 (what ib_async's own sends)."""


def _written(session: GatewaySession, send: Callable[[IB], None]) -> int:
    """Run ``send`` on the session's ``IB``; the ``perf_counter_ns()`` of the resulting socket
    write, or 0 when ib_async's pacing throttle queued the message instead."""
    ib, conn = session.ib, session.conn
    assert ib is not None and conn is not None
    before = conn.numMsgSent
    send(ib)
    return conn.last_write_ns if conn.numMsgSent > before else 0


class OrderPath:
    def __init__(self, orders: OrderMap, emit: Callable[[BrokerEvent], None]) -> None:
        self._orders = orders
        self._emit = emit
        self.router: Router | None = None
        """Set once the router exists (it needs this path's write hook to build its sessions)."""
        self.next_order_id = 0
        self.global_cancel_pending = False
        self.last_cancel_all_ns = 0
        self._encoders: dict[int, PlaceOrderEncoder] = {}

    def _usable(self) -> GatewaySession | None:
        return self.router.usable() if self.router is not None else None

    @property
    def _epoch(self) -> int:
        return self.router.epoch if self.router is not None else 0

    # --- the Broker calls -----------------------------------------------------------------

    def place(self, order: BrokerOrder) -> Placement:
        rec = self._orders.get(order.order_ref)
        if rec is not None:
            if rec.original != order:
                raise DuplicateOrderRef(f"order_ref {order.order_ref!r} is already used by a different order")
            if rec.parked and rec.held and not rec.cancel_requested:
                # Adopted unacknowledged and not found at the broker: released, sent now (or at
                # the next epoch, like any held order).
                rec.parked = False
                session = self._usable()
                if session is not None:
                    self.send(rec, session)
                return self._placement(rec)
            return self._placement(rec, duplicate=True)
        cv.validate(order)
        rec = self._orders.add(order)
        session = self._usable()
        if session is not None:
            self.send(rec, session)
        return self._placement(rec)

    def adopt(
        self,
        order: BrokerOrder,
        filled: int = 0,
        *,
        acknowledged: bool = True,
        listed: OpenOrder | None = None,
    ) -> None:
        """An order an earlier process placed: known from now on, never sent by itself. The
        next epoch's reconciliation binds it to the broker's order id (``listed``, this
        session's listing of it: bound now); one the broker lists nowhere is reported lost if
        it was acknowledged, else it stays held (parked) until :meth:`place` releases it."""
        if self._orders.get(order.order_ref) is not None:
            return
        cv.validate(order)
        rec = self._orders.add(order)
        rec.filled = max(0, min(filled, order.quantity))
        if acknowledged:
            rec.status = BrokerOrderStatus.SUBMITTED
            rec.accepted = True
        else:
            rec.parked = True
        session = self._usable()
        if listed is not None and session is not None and listed.client_id == session.config.client_id:
            self._orders.bind(rec, listed.client_id, listed.order_id, session.label)
            self._orders.bind_perm(rec, listed.perm_id)
            rec.status, rec.accepted, rec.parked = BrokerOrderStatus.SUBMITTED, True, False
            rec.filled = max(rec.filled, listed.filled)

    def cancel(self, order_ref: str) -> int:
        rec = self._orders.get(order_ref)
        if rec is None:
            raise UnknownOrderRef(order_ref)
        if rec.done:
            return 0
        if rec.held:
            rec.cancel_requested = True
            self.cancel_locally(rec)
            return 0
        session = self._usable()
        if session is None or rec.order_id is None:
            # No session, or an adopted order not bound to its broker order id yet: the
            # reconciliation that binds it sends the cancel.
            rec.cancel_requested = True
            return 0
        assert rec.order_id is not None
        order_id = rec.order_id
        # Requested until the order ends: a cancel swallowed by a gateway that dies or freezes
        # before answering is written again by the next epoch's reconciliation (a cancel of an
        # order the broker already ended is answered 161/10148, harmless).
        rec.cancel_requested = True
        try:
            return _written(session, lambda ib: ib.client.cancelOrder(order_id, ""))
        except ConnectionError:
            return 0

    def cancel_all(self) -> int:
        session = self._usable()
        written: int | None = None
        if session is not None:
            try:
                written = self.last_cancel_all_ns = self.global_cancel_now(session)
            except ConnectionError:
                written = None
        for rec in self._orders.held():
            rec.cancel_requested = True
            self.cancel_locally(rec)
        if written is None:
            return self._cancel_all_later()
        return written

    def global_cancel_now(self, session: GatewaySession) -> int:
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
        unsent = ib_internals.take_queued_orders(client)
        conn.sendMsg(ib_internals.framed(client, _GLOBAL_CANCEL))
        written = conn.last_write_ns
        for order_id in unsent:
            rec = self._orders.by_order_id(session.config.client_id, order_id)
            # A queued modify of a working order is moot: the global cancel covers that order.
            if rec is not None and not rec.accepted:
                self.cancel_locally(rec)
        return written

    def _cancel_all_later(self) -> int:
        # Only what is live now: an order placed after this call must survive the reconnect.
        self.global_cancel_pending = True
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
        if rec.held:
            return 0
        if rec.order_id is None:
            rec.modify_pending = True  # an adopted order: sent once reconciliation binds it
            return 0
        session = self._usable()
        if session is None:
            rec.modify_pending = True
            return 0
        order_id = rec.order_id
        return _written(session, lambda ib: ib.client.sendMsg(self.encoder(ib.client).encode(new, order_id)))

    def last_write_ns(self, order_ref: str) -> int:
        rec = self._orders.get(order_ref)
        return rec.write_ns if rec is not None else 0

    # --- writing --------------------------------------------------------------------------

    def send(self, rec: OrderRecord, session: GatewaySession) -> None:
        """Write ``rec`` as a new order under the next order id (once per call)."""
        ib = session.ib
        assert ib is not None
        client = ib.client
        client.updateReqId(self.next_order_id)
        try:
            order_id = client.getReqId()
        except ConnectionError:
            return
        self.next_order_id = order_id + 1
        self._orders.bind(rec, session.config.client_id, order_id, session.label)
        rec.status = BrokerOrderStatus.PENDING_SUBMIT
        rec.accepted = False
        rec.sent_count += 1
        rec.sent_epoch = self._epoch
        try:
            # ib_async's placeOrder would also work; this writes the identical bytes faster
            # (brokers.ib_encode). ib_async learns the trade from the broker's openOrder reply.
            client.sendMsg(self.encoder(client).encode(rec.order, order_id))
        except ConnectionError:
            rec.status = BrokerOrderStatus.HELD
            rec.sent_count -= 1

    def send_modify(self, rec: OrderRecord, ib: IB) -> None:
        assert rec.order_id is not None
        ib.client.sendMsg(self.encoder(ib.client).encode(rec.order, rec.order_id))

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

    def encoder(self, client: Client) -> PlaceOrderEncoder:
        version = client.serverVersion()
        encoder = self._encoders.get(version)
        if encoder is None:
            encoder = self._encoders[version] = PlaceOrderEncoder(version)
            encoder.warm()
        return encoder

    def write_hook(self, client_id: int) -> OrderWriteHook:
        by_id = self._orders.by_order_id

        def hook(order_id: int, write_ns: int) -> None:
            rec = by_id(client_id, order_id)
            if rec is not None:
                rec.write_ns = write_ns

        return hook

    def session_up(self, session: GatewaySession) -> None:
        """A session connected: its templates built now, not on the first order; the next
        order id at least the gateway's."""
        assert session.ib is not None
        self.encoder(session.ib.client)
        self.sync_order_id(session.ib.client)

    def sync_order_id(self, client: Client) -> None:
        self.next_order_id = max(self.next_order_id, ib_internals.next_request_id(client))

    # --- local outcomes -------------------------------------------------------------------

    def cancel_locally(self, rec: OrderRecord) -> None:
        """Mark an order the broker never had cancelled, and say so."""
        if self._orders.apply_status(rec, BrokerOrderStatus.CANCELLED, rec.filled, rec.avg_fill_price):
            self.emit_status(rec)

    def emit_status(self, rec: OrderRecord) -> None:
        self._emit(status_event(rec))


def status_event(rec: OrderRecord) -> OrderStatusChanged:
    return OrderStatusChanged(
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
