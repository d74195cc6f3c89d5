"""The floor's own map of the orders it sent, and their ``orders.events`` records.

``ib_async`` forgets its orders on disconnect; the floor does not. Each :class:`FloorOrder`
holds the order's state in the state machine (:mod:`trading.orders`), fed the broker's
acknowledgement, executions (deduplicated on the broker's execution id) and end, and produces
the :class:`~trading.order_events.OrderEvent` for each change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from opentelemetry.trace import SpanContext

from trading.commands import Command, CommandKind, Side
from trading.iceberg_parents import CONTROL
from trading.order_events import EventKind, OrderEvent
from trading.order_state import take_fill
from trading.orders import Accepted, Cancelled, Fill, Order, OrderState, Rejected, Submitted


@dataclass
class FloorOrder:
    command_id: str
    agent_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    limit_price: Decimal | None
    tif: str | None
    parent_id: str | None
    broker_order_id: int | None = None
    exec_ids: set[str] = field(default_factory=set)
    """Every execution the broker reported for the order, counted or not (one beyond the
    order's quantity is not)."""
    reduce_only: bool = False
    """An ``exit``: it may only shrink the position (see :func:`trading.risk.check_order`)."""
    accepted_at: datetime | None = None
    """When the floor took it (its command's signed issue time): the session a DAY order ends with."""
    stop_loss: Decimal | None = None
    """An entry's protective stop (its edge's stop, or a manual entry's ``stop_loss``): where
    the position it opens is stopped out (:mod:`hotpath.protective_stops`)."""
    unacknowledged_since_ns: int | None = None
    """``perf_counter_ns()`` of this process's socket write of the order until the broker's first
    acknowledgement, which measures its latency from it; None after that, and for an order an
    earlier process wrote."""
    machine: Order = field(init=False)
    """The order in the state machine; STAGED until the broker acknowledges it."""
    span_context: SpanContext | None = field(default=None, compare=False)
    """Its command's ``hotpath.intake`` span, once this process wrote it to the broker: the
    broker's acknowledgement and fills are spans under it, and its ``orders.events`` records
    carry it (:mod:`hotpath.order_spans`). None: tracing off, or written by an earlier process."""
    sent_wall_ns: int | None = field(default=None, compare=False)
    """``time_ns`` of the socket write until the first acknowledgement (its span's start)."""

    def __post_init__(self) -> None:
        self.machine = Order(command_id=self.command_id, side=self.side, quantity=self.quantity)

    @classmethod
    def from_command(cls, command: Command, quantity: int, limit_price: Decimal | None = None) -> FloorOrder:
        """The order for ``command`` sized at ``quantity``; ``limit_price``: the protective limit
        it was sent with (:mod:`trading.protective_limits`), else the command's own limit."""
        assert command.symbol is not None and command.side is not None
        return cls(
            command_id=command.command_id,
            agent_id=command.agent_id,
            account=command.account,
            symbol=command.symbol,
            side=command.side,
            quantity=quantity,
            limit_price=command.limit_price if limit_price is None else limit_price,
            tif=command.tif.value if command.tif is not None else None,
            parent_id=command.parent_id,
            reduce_only=command.kind is CommandKind.EXIT,
            accepted_at=command.issued_at,
            stop_loss=command.edge.stop_price if command.edge is not None else command.stop_loss,
        )

    @property
    def protective(self) -> bool:
        """A stop the floor placed itself to protect a position (signed by its control key)."""
        return self.reduce_only and self.agent_id == CONTROL

    @property
    def filled_qty(self) -> int:
        return self.machine.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Quantity-weighted average of the fills, exact (a Decimal quotient at 28 digits)."""
        return self.machine.avg_fill_price

    @property
    def done(self) -> bool:
        """Filled, cancelled, rejected or expired: nothing more goes to the broker for it."""
        return self.machine.terminal

    def acknowledged(self, broker_order_id: int) -> None:
        """The broker took the order and it is working (an acknowledgement that arrives after
        a fill or the end changes only the broker order id)."""
        self.broker_order_id = broker_order_id
        if self.machine.state is OrderState.STAGED:
            self.machine = self.machine.apply(Submitted(broker_order_id))
        if self.machine.state is OrderState.PENDING:
            self.machine = self.machine.apply(Accepted())

    def apply_fill(self, exec_id: str, qty: int, price: Decimal) -> Fill | None:
        """Record one execution; None if it was already applied (a re-reported execution).
        Nothing fills beyond the order's quantity; a fill after the order's end still counts
        (a venue fills what it has just cancelled or reported inactive)."""
        if exec_id in self.exec_ids:
            return None
        self.exec_ids.add(exec_id)
        qty = min(qty, self.quantity - self.filled_qty)
        if qty <= 0:
            return None
        fill = Fill(exec_id, qty, price)
        self.machine, _ = take_fill(self.machine, fill)
        return fill

    def end(self, event: Cancelled | Rejected) -> None:
        """The order is over (the broker cancelled or rejected it, or the floor did not send it
        after all); an order already over stays as it ended."""
        if self.machine.can_apply(event):
            self.machine = self.machine.apply(event)

    def event(
        self,
        kind: EventKind,
        *,
        reason: str | None = None,
        last_fill: Fill | None = None,
        broker_filled_qty: int | None = None,
    ) -> OrderEvent:
        return OrderEvent(
            event_id=uuid.uuid4().hex,
            command_id=self.command_id,
            parent_id=self.parent_id,
            kind=kind,
            account=self.account,
            symbol=self.symbol,
            agent_id=self.agent_id,
            side=self.side.value,
            quantity=self.quantity,
            filled_qty=self.filled_qty,
            avg_fill_price=self.avg_fill_price,
            last_fill=last_fill,
            reason=reason,
            ts=datetime.now(UTC),
            limit_price=self.limit_price,
            tif=self.tif,
            broker_order_id=self.broker_order_id,
            broker_filled_qty=broker_filled_qty,
        )


def refusal_event(command: Command, reason: str, quantity: int | None = None) -> OrderEvent | None:
    """The ``rejected`` record of a command the floor refused, or None for a command that names
    no order (cancel, cancel_all): those are answered in the ledger and the security log only.

    The record schema requires a positive quantity; a command refused before it was sized
    carries its requested bound, or 1 when it named none (``filled_qty`` is 0 either way).
    """
    if command.symbol is None or command.side is None:
        return None
    qty = quantity or command.quantity or 1
    order = FloorOrder.from_command(command, qty)
    return order.event(EventKind.REJECTED, reason=reason)
