"""An order's state from its ``orders.events`` records: the state machine folded over them.

Whoever holds an order's records (the ledger's state rows, the OrderLifecycle workflow, the
reconciliation) derives its state with :func:`order_state` (all at once) or :func:`step` (one
record at a time); nothing else decides whether an order is open. Each record kind maps onto
the events of :mod:`trading.orders`:

=================== ==========================================================================
record kind         machine events
=================== ==========================================================================
``accepted``        none: the floor took the command; the order is STAGED
``submitted``       Submitted, Accepted (the venue acknowledged it: ACCEPTED, i.e. working)
``partially_filled`` its ``last_fill`` (from STAGED, Submitted first: a fill means the venue had it)
``filled``          its ``last_fill``, as above
``cancelled``       Cancelled (Expired when the caller's own cancel was the expiry's)
``expired``         Expired
``rejected``        Rejected (see ``ignore_repeat_refusals`` for the workflows' exception)
=================== ==========================================================================

Records arrive late, twice and out of order (Kafka redelivers, two broker sessions report the
same order, a reconciliation reports an execution again), so the fold is total:

- a record whose ``event_id`` was folded already changes nothing; a fill whose ``exec_id`` was
  counted already is not counted again;
- a record the machine does not allow in the current state changes nothing: it is stale (a
  ``submitted`` after a fill, anything but a fill after an end state);
- a terminal state wins over a later fill, and the fill is still counted (CANCELLED +fill stays
  CANCELLED until the order is complete, then FILLED: a :data:`~trading.orders.VENUE_ONLY` move).

Three reports the strict machine refuses are taken on the venue's word, each noted in
:attr:`OrderView.anomalies`: an execution beyond the order's quantity (counted; FILLED), an
execution after a rejection (counted; REJECTED until complete, then FILLED) and a ``filled``
record while the counted executions fall short of the quantity (FILLED: the venue says so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from trading.commands import Side
from trading.order_events import EventKind, OrderEvent
from trading.orders import (
    TERMINAL_STATES,
    Accepted,
    Cancelled,
    Expired,
    Fill,
    Order,
    OrderState,
    Overfill,
    Rejected,
    Submitted,
)
from trading.orders import OrderEvent as MachineEvent


def is_duplicate_refusal(event: OrderEvent, acknowledged: bool) -> bool:
    """A rejection by intake (not by the broker) of an order intake already accepted.

    A command published again (an activity retried after its first attempt got through) is
    the same command; intake may refuse the copy (as stale, say) and report that as a
    rejection under the same command id. The order it already accepted is unaffected, so the
    refusal must not end it: treating it as the end would free the next slice while this one
    still works, and could overfill. Rejections by the broker (reason ``broker.*``) are real.
    """
    return (
        acknowledged
        and event.kind is EventKind.REJECTED
        and event.last_fill is None
        and not (event.reason or "").startswith("broker.")
    )


@dataclass(frozen=True)
class OrderView:
    """One order as its records so far say: the machine's :class:`~trading.orders.Order` and
    what the fold needs to take the next record."""

    order: Order
    fills: tuple[Fill, ...] = ()
    """Every counted execution, in the order they were folded."""
    event_ids: frozenset[str] = frozenset()
    acknowledged: bool = False
    """A record other than a rejection was folded: a later floor refusal is of a repeated
    delivery (:func:`is_duplicate_refusal`)."""
    anomalies: tuple[str, ...] = ()
    """Venue reports the machine refuses, taken on the venue's word (see the module doc)."""
    record: OrderEvent | None = None
    """The latest record that set the state, or counted a fill while the order is open (the
    first record until one does)."""

    @classmethod
    def new(cls, command_id: str, side: str, quantity: int) -> OrderView:
        return cls(Order(command_id=command_id, side=Side(side), quantity=quantity))

    @property
    def command_id(self) -> str:
        return self.order.command_id

    @property
    def quantity(self) -> int:
        return self.order.quantity

    @property
    def state(self) -> OrderState:
        return self.order.state

    @property
    def terminal(self) -> bool:
        return self.order.terminal

    @property
    def filled_qty(self) -> int:
        return self.order.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self.order.avg_fill_price

    @property
    def exec_ids(self) -> frozenset[str]:
        return self.order.exec_ids

    def state_record(self) -> OrderEvent | None:
        """The record that stands for the order's state: the latest one that set it, with the
        fills counted since (a late fill after an end state) in its figures."""
        record = self.record
        if record is None or self.filled_qty <= record.filled_qty or self.filled_qty > record.quantity:
            return record
        return replace(record, filled_qty=self.filled_qty, avg_fill_price=self.avg_fill_price)


@dataclass(frozen=True)
class Step:
    """What folding one record did."""

    view: OrderView
    before: OrderState
    redelivered: bool = False
    """The record's ``event_id`` was folded already: nothing changed."""
    duplicate_refusal: bool = False
    """A floor refusal of a repeated delivery: nothing changed."""
    duplicate_exec: str | None = None
    """The record's execution was counted already (by another record): not counted again."""
    counted: Fill | None = None
    """The execution this record added."""
    anomaly: str | None = None


def step(
    view: OrderView,
    record: OrderEvent,
    *,
    cancel_is_expiry: bool = False,
    ignore_repeat_refusals: bool = False,
) -> Step:
    """Fold one record into ``view``.

    ``cancel_is_expiry``: the caller cancelled the order for its time in force, so the venue's
    ``cancelled`` ends it EXPIRED. ``ignore_repeat_refusals``: a floor refusal after any other
    record of the order is taken as a refusal of a repeated delivery (:func:`is_duplicate_refusal`)
    and changes nothing. The workflows read records that way and their recorded histories
    depend on it; the ledger's rows do not, because the floor's own ``rejected`` after its
    ``accepted`` is how it records an order it did not send after all (intake's late risk check,
    recovery's refusal of an unledgered or unverified entry), and that order is over."""
    if record.command_id != view.command_id:
        raise ValueError(f"record {record.event_id} is for order {record.command_id}, not {view.command_id}")
    before = view.state
    if record.event_id in view.event_ids:
        return Step(view, before, redelivered=True)
    view = replace(view, event_ids=view.event_ids | {record.event_id})
    if ignore_repeat_refusals and is_duplicate_refusal(record, view.acknowledged):
        return Step(view, before, duplicate_refusal=True)
    if record.kind is not EventKind.REJECTED:
        view = replace(view, acknowledged=True)
    order = view.order
    anomalies: list[str] = []
    duplicate_exec: str | None = None
    counted: Fill | None = None
    fill = record.last_fill
    if fill is not None:
        if fill.exec_id in order.exec_ids:
            duplicate_exec = fill.exec_id
        else:
            order, note = take_fill(order, fill)
            counted = fill
            if note is not None:
                anomalies.append(note)
    order = _apply_kind(order, record, cancel_is_expiry)
    short = record.kind is EventKind.FILLED and order.state is not OrderState.FILLED
    if short and before not in TERMINAL_STATES:
        anomalies.append(
            f"filled record {record.event_id} with {order.filled_qty} of {order.quantity} counted: filled"
        )
        order = replace(order, state=OrderState.FILLED)
    # A late fill after an end state is counted, but the record that ended the order stays the
    # one that stands for its state.
    moved = order.state is not before or (counted is not None and not order.terminal)
    view = replace(
        view,
        order=order,
        fills=view.fills + ((counted,) if counted is not None else ()),
        anomalies=view.anomalies + tuple(anomalies),
        record=record if moved or view.record is None else view.record,
    )
    anomaly = "; ".join(anomalies) or None
    return Step(view, before, duplicate_exec=duplicate_exec, counted=counted, anomaly=anomaly)


def take_fill(order: Order, fill: Fill) -> tuple[Order, str | None]:
    """Count an execution the order has not counted yet; with a note when the machine refuses
    it and it is taken on the venue's word (an overfill, a fill after a rejection).

    From STAGED the order is Submitted first: an execution means the venue had the order."""
    if order.state is OrderState.STAGED:
        order = order.apply(Submitted())
    if order.can_apply(fill):
        try:
            return order.apply(fill), None
        except Overfill:
            pass
    filled = order.filled_qty + fill.qty
    counted = replace(
        order,
        filled_qty=filled,
        filled_notional=order.filled_notional + fill.qty * fill.price,
        exec_ids=order.exec_ids | {fill.exec_id},
    )
    if filled > order.quantity:
        note = f"overfill: {filled} filled of {order.quantity} (execution {fill.exec_id})"
    else:
        note = f"execution {fill.exec_id} after {order.state.value}"
    if filled >= order.quantity:
        counted = replace(counted, state=OrderState.FILLED)
    return counted, note


def _apply_kind(order: Order, record: OrderEvent, cancel_is_expiry: bool) -> Order:
    kind = record.kind
    events: list[MachineEvent]
    if kind is EventKind.SUBMITTED:
        events = [Submitted(record.broker_order_id), Accepted()]
    elif kind is EventKind.CANCELLED:
        events = [Expired() if cancel_is_expiry else Cancelled(record.reason)]
    elif kind is EventKind.EXPIRED:
        events = [Expired()]
    elif kind is EventKind.REJECTED:
        events = [Rejected(record.reason or "")]
    else:
        # accepted: the order is STAGED; fills: counted above.
        events = []
    for event in events:
        if order.can_apply(event):
            order = order.apply(event)
    return order


def order_state(records: Iterable[OrderEvent], *, quantity: int | None = None) -> OrderView | None:
    """The order's state from all its records, in the order they were written; None without
    any. ``quantity``: the order's, if the caller knows it better than the records."""
    view: OrderView | None = None
    for record in records:
        if view is None:
            view = OrderView.new(record.command_id, record.side, quantity or record.quantity)
        view = step(view, record).view
    return view
