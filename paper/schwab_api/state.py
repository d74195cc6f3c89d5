"""The emulator's orders: Schwab order ids over venue orders, kept current from venue events.

Every Schwab order is one venue order placed under the emulator's own venue client id
(:data:`VENUE_CLIENT_ID` unless told otherwise: two emulators over one venue need two), with
the Schwab order id as the venue order id, so the venue's per-client order-id high-water mark
is also the emulator's id counter: ids keep increasing across emulator restarts with nothing
stored here. The order is placed in the venue sub-account named as the Schwab account; its
``order_ref`` carries what the venue does not know (the Schwab account, the instruction, the
order a replace superseded, the entry time), so :meth:`OrderBook.adopt` rebuilds every order
from the venue after a restart.

Each change is also an account-activity message (the streamer's ACCT_ACTIVITY) handed to the
listeners: ``OrderAccepted``, ``ExecutionCreated`` per fill, ``OrderFillCompleted``,
``CancelAccepted`` + ``OrderUROutCompleted``, ``ChangeCreated`` (a replace's new order, naming
its parent) and ``OrderRejected``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paper.schwab_api.activity import activity_message
from paper.schwab_api.order_model import REF_PREFIX, Fill, SchwabOrder
from paper.schwab_api.orders import DURATIONS, ORDER_TYPES
from paper.venue.events import CommissionEvent, ExecutionEvent, OrderEvent, VenueEvent, VenueReset
from paper.venue.messages import Execution, OrderSpec, OrderUpdate

VENUE_CLIENT_ID = 7000
"""The venue client id of the orders an emulator places, by default (the TWS gateways'
clients use their own; this one is no TWS client's)."""
FIRST_ORDER_ID = 1_000_000_000_001
"""Schwab order ids are int64s in the trillions; the emulator's start here."""

ActivityListener = Callable[[str, str, dict[str, Any]], None]
"""``(account_number, message_type, message_data)``."""


def _echo_from_spec(spec: OrderSpec) -> dict[str, Any]:
    """The request fields of an order adopted from the venue (the original text is gone)."""
    order_type = next(k for k, v in ORDER_TYPES.items() if v == spec.order_type)
    echo: dict[str, Any] = {
        "session": "SEAMLESS" if spec.outside_rth else "NORMAL",
        "duration": next(k for k, v in DURATIONS.items() if v == spec.tif),
        "orderType": order_type,
        "complexOrderStrategyType": "NONE",
        "orderStrategyType": "SINGLE",
    }
    if spec.lmt_price is not None:
        echo["price"] = float(spec.lmt_price)
    if order_type in ("STOP", "STOP_LIMIT") and spec.aux_price is not None:
        echo["stopPrice"] = float(spec.aux_price)
    if order_type == "TRAILING_STOP":
        percent = spec.trailing_percent
        echo.update(
            stopPriceLinkBasis="LAST",
            stopPriceLinkType="PERCENT" if percent is not None else "VALUE",
            stopPriceOffset=float(percent if percent is not None else spec.aux_price or 0),
        )
    return echo


class OrderBook:
    """Every Schwab order of the emulator, by id; fed by the venue's events."""

    def __init__(self, client_id: int = VENUE_CLIENT_ID) -> None:
        self.client_id = client_id
        self.orders: dict[int, SchwabOrder] = {}
        self.listeners: list[ActivityListener] = []

    def emit(self, order: SchwabOrder, message_type: str, **detail: Any) -> None:
        data = activity_message(order, message_type, **detail)
        for listener in tuple(self.listeners):
            listener(order.account_number, message_type, data)

    @staticmethod
    def _record_fill(order: SchwabOrder, fill: Fill) -> None:
        order.fills.append(fill)

    def add(self, order: SchwabOrder) -> None:
        self.orders[order.order_id] = order

    def discard(self, order_id: int) -> None:
        self.orders.pop(order_id, None)

    def successor(self, order: SchwabOrder) -> SchwabOrder | None:
        return None if order.replaced_by is None else self.orders.get(order.replaced_by)

    # ------------------------------------------------------------------ venue events

    def on_venue_event(self, event: VenueEvent) -> None:
        if isinstance(event, OrderEvent):
            if event.update.client_id == self.client_id:
                self._on_update(event.update)
        elif isinstance(event, ExecutionEvent):
            if event.execution.client_id == self.client_id:
                self._on_execution(event.execution)
        elif isinstance(event, VenueReset):
            self._on_reset()
        elif isinstance(event, CommissionEvent):
            pass  # equities trade commission-free at Schwab: the venue's IB commission is not shown

    def _on_update(self, update: OrderUpdate) -> None:
        order = self.orders.get(update.order_id)
        if order is None:
            return
        order.filled = max(order.filled, update.filled)
        if not order.is_open:
            return  # already ended: a repeated report (after a reconnect) changes nothing
        if update.status in ("PreSubmitted", "Submitted"):
            if order.status == "PENDING_ACKNOWLEDGEMENT":
                order.status = "WORKING"
            if not order.accepted_sent:
                order.accepted_sent = True
                self.emit(order, "OrderAccepted")
            # A venue modify is never sent: the order's spec is what was placed.
        elif update.status == "Filled":
            self._close(order, "FILLED")
        elif update.status == "Cancelled":
            if order.replacing:
                self._close(order, "REPLACED")
            else:
                self._close(order, "CANCELED", "" if order.cancel_requested else "Cancelled by the venue")
                self.emit(order, "CancelAccepted")
                self.emit(order, "OrderUROutCompleted")
        elif update.status == "Inactive":
            self._close(order, "REJECTED", "Rejected by the venue")
            self.emit(order, "OrderRejected")

    def _on_execution(self, execution: Execution) -> None:
        order = self.orders.get(execution.order_id)
        if order is None or any(f.exec_id == execution.exec_id for f in order.fills):
            return
        remaining = max(order.spec.total_qty - execution.cum_qty, 0)
        fill = Fill(execution.exec_id, execution.shares, execution.price, execution.time_ns, remaining)
        self._record_fill(order, fill)
        order.filled = max(order.filled, execution.cum_qty)
        self.emit(order, "ExecutionCreated", fill=fill)
        if remaining == 0:
            self.emit(order, "OrderFillCompleted", fill=fill)

    def _on_reset(self) -> None:
        for order in self.orders.values():
            if order.is_open:
                self._close(order, "CANCELED", "The paper venue was reset")
                self.emit(order, "OrderUROutCompleted")

    @staticmethod
    def _close(order: SchwabOrder, status: str, description: str = "") -> None:
        if order.is_open:
            order.status = status
            order.closed = time.time()
            order.description = description

    # ------------------------------------------------------------------ restart

    def catch_up(self, updates: tuple[OrderUpdate, ...], executions: tuple[Execution, ...]) -> int:
        """After the venue connection came back: apply what the venue reports for the orders
        known before (fills, ends), in its order, and close every working order the venue no
        longer has (a restarted venue starts empty). Returns how many were closed so."""
        for execution in executions:
            if execution.client_id == self.client_id:
                self._on_execution(execution)
        present: set[int] = set()
        for update in updates:
            if update.client_id == self.client_id:
                present.add(update.order_id)
                self._on_update(update)
        lost = [o for o in self.orders.values() if o.is_open and o.order_id not in present]
        for order in lost:
            self._close(order, "CANCELED", "The paper venue no longer has this order (it restarted)")
            self.emit(order, "OrderUROutCompleted")
        return len(lost)

    def adopt(self, updates: tuple[OrderUpdate, ...], executions: tuple[Execution, ...]) -> int:
        """Rebuild the orders the emulator placed before a restart from the venue's open and
        completed orders and executions; returns how many."""
        adopted: set[int] = set()
        for update in updates:
            if update.client_id != self.client_id or update.order_id in self.orders:
                continue
            parts = update.order.order_ref.split("|")
            if len(parts) != 5 or parts[0] != REF_PREFIX:
                continue
            _, account, instruction, parent, entered = parts
            order = SchwabOrder(
                order_id=update.order_id,
                account_number=account,
                symbol=update.symbol,
                con_id=update.con_id,
                instruction=instruction,
                spec=update.order,
                echo=_echo_from_spec(update.order),
                entered=float(entered),
                parent_id=int(parent) if parent else None,
                accepted_sent=True,
            )
            self.orders[order.order_id] = order
            adopted.add(order.order_id)
        for order in self.orders.values():
            if order.parent_id is not None and order.parent_id in self.orders:
                self.orders[order.parent_id].replaced_by = order.order_id
                self.orders[order.parent_id].replacing = True
        for execution in executions:
            owner = self.orders.get(execution.order_id)
            if owner is not None and owner.order_id in adopted:
                remaining = max(owner.spec.total_qty - execution.cum_qty, 0)
                fill = Fill(
                    execution.exec_id, execution.shares, execution.price, execution.time_ns, remaining
                )
                self._record_fill(owner, fill)
        for update in updates:
            adopted_order = self.orders.get(update.order_id)
            if adopted_order is not None and adopted_order.order_id in adopted:
                order = adopted_order
                order.filled = update.filled
                status = {"PreSubmitted": "WORKING", "Submitted": "WORKING", "Filled": "FILLED",
                          "Inactive": "REJECTED"}.get(update.status)  # fmt: skip
                if status is None:
                    status = "REPLACED" if order.replacing else "CANCELED"
                order.status = status
                if status != "WORKING":
                    order.closed = update.time_ns / 1e9
        return len(adopted)
