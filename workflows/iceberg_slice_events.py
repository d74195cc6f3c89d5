"""Slice events reaching an Iceberg run (:mod:`workflows.iceberg`), and what they do to its slices.

A slice event comes as the record its writer signed (the ``slice_record`` signal), verified
here with the writer keys the parent check returned (re-read since, when stale), and taken only
if it is about this parent. Events dedupe on event id, fills on execution id; an event may
shrink a slice (the sizer sent less), fill it, or end it, and consecutive rejects are counted
for the run to stop on.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.iceberg_state import IcebergState

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from trading.order_events import EventKind, OrderEvent
    from trading.order_state import is_duplicate_refusal
    from workflows.signed_events import SignedOrderEvent, unchecked_event, verified_event


class SliceEvents(IcebergState):
    """Takes slice events into the run's slice records."""

    def _take_slice_record(self, signed: SignedOrderEvent) -> None:
        try:
            if self._fresh is not None:
                event = verified_event(signed, self._fresh.keys)
            elif self._writers is not None:
                event = verified_event(signed, self._writers)
            elif self._signed_events is False:
                # A parent started before records were signed: it takes them as it took
                # unsigned events, which is all it was ever given.
                event = unchecked_event(signed)
            else:
                self._notes.append("slice record before the parent was checked: ignored")
                return
        except (ValueError, TypeError) as exc:
            # RecordRefused and OrderEventError included: a forged or broken record.
            self._notes.append(f"slice record refused: {exc}")
            return
        if event.parent_id != workflow.info().workflow_id or event.account != self._inp.account:
            self._notes.append(f"record {event.event_id} is not about this parent: ignored")
            return
        self._apply_slice_event(event)

    def _apply_slice_event(self, event: OrderEvent) -> None:
        if event.event_id in self._seen_events:
            return
        self._seen_events.add(event.event_id)
        record = self._by_command.get(event.command_id)
        if record is None:
            self._notes.append(f"event {event.event_id} for unknown slice {event.command_id}")
            return
        if is_duplicate_refusal(event, record.acknowledged):
            self._notes.append(
                f"slice {record.slice_no}: repeated delivery refused ({event.reason}); the order stands"
            )
            return
        if event.kind is not EventKind.REJECTED:
            record.acknowledged = True
        if event.broker_filled_qty is not None:
            record.broker_filled = max(record.broker_filled, min(event.broker_filled_qty, record.qty))
        if event.kind is EventKind.ACCEPTED and event.quantity < record.qty and not record.done:
            # The sizer may send less than asked; the rest goes in a later slice.
            record.qty = event.quantity
        fill = event.last_fill
        if fill is not None and fill.exec_id not in self._seen_execs:
            self._seen_execs.add(fill.exec_id)
            record.filled_qty += fill.qty
            record.notional += fill.price * fill.qty
            if record.filled_qty > record.qty:
                self._notes.append(f"slice {record.slice_no} overfilled: {record.filled_qty} of {record.qty}")
        if event.kind is EventKind.REJECTED:
            self._consecutive_rejects += 1
            self._notes.append(f"slice {record.slice_no} rejected: {event.reason}")
        elif fill is not None:
            self._consecutive_rejects = 0
        if event.terminal or record.filled_qty >= record.qty:
            record.done = True
            record.outcome = "filled" if record.filled_qty >= record.qty else event.kind.value
        what = f"{record.label} {event.kind.value}"
        if fill is not None:
            what += f" {fill.qty} @ {ticket.price(fill.price)}"
        self._last = f"{what} at {ticket.utc_time(event.ts)}"
        self._show()
