"""OrderLifecycle: one workflow per order (workflow id = command id), driven by broker events.

Staged -> Pending -> PartiallyFilled -> Filled, or Cancelled / Rejected / Expired. The bridge
starts it with signal-with-start from ``orders.events``; each event arrives as the ``event``
signal. Kafka delivers at least once, so events dedupe on ``event_id`` and fills on the
broker's execution id. The state is the order state machine folded over the events
(:mod:`trading.order_state`), as everywhere else on the floor. A DAY order still open at the
session close is cancelled through the intake path (a signed cancel command), and its end is
then reported as Expired.

Why a command and not a direct broker cancel: the hot path owns the broker session and the
floor's order map, and every instruction to the broker is in the ledger first; a second writer
to the broker would bypass both. The cancel command is signed by ``floor-lifecycle``, so the
ledger says who cancelled and why.

After reaching a terminal state the workflow lingers for ``linger_seconds`` so a late fill
(a real venue can fill an order it has just confirmed cancelled) is still recorded here.

Events count only as records their writer signed (the ``record`` signal, verified in the
workflow with the writer keys an activity reads at its start, :mod:`workflows.signed_events`):
a forged ``filled`` sent straight to Temporal cannot end the lifecycle before the close, and a
lifecycle started by hand cancels nothing, since no genuine record about its order (one whose
account, symbol and side are the ledgered order's) ever reaches it. Records that arrive before
the keys are known wait in order and are verified then.

Nothing the lifecycle acts on comes from its input, which is anyone's to write: its workflow id
must be its order's lifecycle id (:func:`temporal.config.lifecycle_workflow_id`), or it acts on
nothing; the order's account, symbol, side, time in force and session come from its ledger
entry through an activity (:mod:`activities.lifecycle_order`), and the key that signs the cancel
from the worker's configuration. Only a DAY order the ledger holds as accepted is ever cancelled
for expiry, at the close of the session its entry was recorded in.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from activities.commands import CancelCommandRequest, CommandActivities
    from activities.lifecycle_order import LedgeredOrder, LifecycleOrderActivities, LifecycleOrderRequest

    # ``Writers`` named here so the data converter resolves it for the re-reads of a task of
    # this workflow (workflows.signed_events.FreshWriters).
    from activities.record_writers import RecordWriter, RecordWriterActivities, Writers, WritersRequest  # noqa: F401
    from config.workflow_ids import lifecycle_workflow_id
    from trading.order_events import OrderEvent
    from trading.order_state import OrderView, step

    # ``Fill`` named here so the data converter can resolve an order event's ``last_fill``.
    from trading.orders import Fill, OrderState  # noqa: F401
    from trading.record_signing import WriterKey
    from trading.session_calendar import SessionCalendar
    from workflows import search
    from workflows.signed_events import (
        FreshWriters,
        SignedOrderEvent,
        unchecked_event,
        verified_event,
        writer_keys,
    )
    from workflows.slicing import expiry_cancel_command_id

CANCEL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=10)
"""Publishing a cancel is idempotent (same command id every attempt), so retrying is safe."""

EXPIRY_CANCEL_REASON = "tif.day_expired"
CANCEL_RETRY_AFTER = timedelta(minutes=1)
RETRY_SENT_CANCEL_PATCH = "expiry-cancel-retried-after-publish"
"""Histories recorded before this wait for the order to end after a published cancel."""
"""After the cancel activity has exhausted its retries, try again this much later, for as long
as the order is open: an order past its time in force must not be left working."""
SIGNED_EVENTS_PATCH = "lifecycle-signed-records-only"
"""Events count only as signed records, and nothing is cancelled before a genuine one arrived.
Histories written before took unsigned ``event`` signals and the input's expiry on trust, and
replay that way."""
LEDGERED_ORDER_PATCH = "lifecycle-order-from-ledger"
"""The order's account, symbol, side, time in force and session come from its ledger entry and
the canceller from the worker, never from the input; a lifecycle whose workflow id is not its
order's lifecycle id acts on nothing. Histories written before took them from the input."""
FRESH_WRITERS_PATCH = "lifecycle-writer-keys-reread"
"""Records are verified with writer keys re-read when stale or when a record names an unknown
signer, so a writer key revoked while the order is open stops counting. Histories written
before used the keys read at the start."""
ORDER_READ_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=30
)
"""A read of the ledger, safe to repeat; a ledger down for minutes leaves the order uncancelled
(the broker's own DAY expiry still applies) rather than act on the input."""
WRITERS_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=30
)
"""A read of the key registry, safe to repeat."""


class LifecycleState(enum.StrEnum):
    STAGED = "Staged"
    PENDING = "Pending"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"


TERMINAL = frozenset(
    {LifecycleState.FILLED, LifecycleState.CANCELLED, LifecycleState.REJECTED, LifecycleState.EXPIRED}
)
_LIFECYCLE_STATE = {
    OrderState.STAGED: LifecycleState.STAGED,
    OrderState.PENDING: LifecycleState.PENDING,
    OrderState.ACCEPTED: LifecycleState.PENDING,
    OrderState.PENDING_CANCEL: LifecycleState.PENDING,
    OrderState.PARTIALLY_FILLED: LifecycleState.PARTIALLY_FILLED,
    OrderState.FILLED: LifecycleState.FILLED,
    OrderState.CANCELLED: LifecycleState.CANCELLED,
    OrderState.REJECTED: LifecycleState.REJECTED,
    OrderState.EXPIRED: LifecycleState.EXPIRED,
}
"""The workflow's names for the order's states (its search attribute and query show these):
the order is Pending from the venue's acknowledgement until its first fill."""


def lifecycle_state(state: OrderState) -> LifecycleState:
    return _LIFECYCLE_STATE[state]


@dataclass(frozen=True)
class LifecycleInput:
    command_id: str
    account: str
    symbol: str
    agent_id: str
    side: str
    quantity: int
    parent_id: str | None = None
    tif: str = "DAY"
    expires_at: datetime | None = None
    """When a DAY order must be gone (the session close); None: no time limit here. Only
    histories written before the order was read from the ledger act on it."""
    canceller_agent_id: str = "floor-lifecycle"
    """Whose key signs the expiry cancel; likewise only in such histories (the worker's
    configuration names it now)."""
    linger_seconds: float = 300.0


@dataclass(frozen=True)
class HistoryEntry:
    ts: datetime
    what: str
    """The event kind, or a workflow action such as ``cancel_requested``."""
    state: LifecycleState
    event_id: str | None = None
    filled_qty: int = 0
    note: str | None = None


@dataclass(frozen=True)
class LifecycleView:
    command_id: str
    state: LifecycleState
    quantity: int
    filled_qty: int
    avg_fill_price: Decimal | None
    history: list[HistoryEntry] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryQuery:
    """Empty today; a place for filters without changing the query's signature."""


@workflow.defn(name="OrderLifecycle")
class OrderLifecycle:
    @workflow.init
    def __init__(self, inp: LifecycleInput) -> None:
        # Input in the constructor: signal-with-start runs the signal handler before run().
        self._inp = inp
        self._seen_events: set[str] = set()
        self._history: list[HistoryEntry] = []
        self._anomalies: list[str] = []
        # The order as the records taken so far say (trading.order_state).
        try:
            self._view = OrderView.new(inp.command_id, inp.side, inp.quantity)
        except ValueError:
            # The input is anyone's to write; no genuine record matches a side or quantity
            # like this one's, so nothing will be applied to this stand-in.
            self._view = OrderView.new(inp.command_id, "BUY", 1)
            self._anomalies.append(f"input side {inp.side!r} quantity {inp.quantity} is no order")
        self._expiry_cancel_sent = False
        self._cancel_attempts = 0
        self._retry_cancel_at: datetime | None = None
        self._signed: bool | None = None
        """Whether events must come signed (None: not known yet, so events wait)."""
        self._writers: dict[str, WriterKey] | None = None
        self._waiting: list[SignedOrderEvent | OrderEvent] = []
        """Events that arrived before it was known how to take them, in arrival order."""
        self._genuine_since: datetime | None = None
        """When the first genuine record about this order was written (signed events only)."""
        self._from_ledger = False
        """Whether the order is as its ledger entry says (``self._order``), not as the input says."""
        self._order: LedgeredOrder | None = None
        """The order as the ledger holds it; None (with ``_from_ledger``): nothing to act on."""
        self._fresh: FreshWriters | None = None
        self._fresh_task: asyncio.Task[None] | None = None
        self._last: str | None = None
        """The last thing that happened to the order, as the UI's current details show it."""

    @workflow.run
    async def run(self, inp: LifecycleInput) -> LifecycleView:
        signed = workflow.patched(SIGNED_EVENTS_PATCH)
        if signed:
            # Events arriving meanwhile keep waiting: none is taken before the keys are known.
            self._writers = writer_keys(await self._record_writers())
        if signed and workflow.patched(LEDGERED_ORDER_PATCH):
            self._from_ledger = True
            self._order = await self._ledgered_order(inp)
        if self._from_ledger and self._writers is not None and workflow.patched(FRESH_WRITERS_PATCH):
            self._fresh = FreshWriters(self._writers, workflow.now())
            # A task of the workflow's own (deterministic) loop; it ends with the workflow.
            self._fresh_task = asyncio.create_task(self._fresh.keep_fresh(self._take, self._anomalies.append))
        self._signed = signed
        waiting, self._waiting = self._waiting, []
        for item in waiting:
            self._take(item)
        self._publish_search_attributes()
        self._show()
        while not self._terminal:
            due = self._expiry_due()
            timeout = None if due is None else max(0.0, (due - workflow.now()).total_seconds())
            try:
                await workflow.wait_condition(
                    lambda: self._terminal, timeout=timeout, timeout_summary=self._expiry_summary(due)
                )
            except TimeoutError:
                if self._signed and self._genuine_since is None:
                    # Started by hand, or no genuine record has come: there is no order to cancel.
                    self._anomalies.append("no signed record of this order by its expiry: nothing cancelled")
                    break
                if self._from_ledger and (self._order is None or self._order.tif != "DAY"):
                    # Unreachable (no expiry without a DAY entry); kept so no path cancels one.
                    break
                await self._cancel_for_expiry()
        # Late fills after a terminal state are still recorded while we linger.
        self._show()
        await workflow.sleep(
            timedelta(seconds=inp.linger_seconds), summary=ticket.linger_timer(inp.linger_seconds)
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.history(HistoryQuery())

    @workflow.signal(name="record")
    def on_record(self, signed: SignedOrderEvent) -> None:
        """An event as its writer signed it (what the bridge sends)."""
        if self._fresh is not None and self._fresh.hold_if_stale(signed):
            return
        self._take(signed)

    @workflow.signal(name="event")
    def on_event(self, event: OrderEvent) -> None:
        """An unsigned event: counts only in a lifecycle started before records were signed."""
        self._take(event)

    def _take(self, item: SignedOrderEvent | OrderEvent) -> None:
        self._take_one(item)
        self._show()

    def _take_one(self, item: SignedOrderEvent | OrderEvent) -> None:
        if self._signed is None:
            self._waiting.append(item)
            return
        if isinstance(item, OrderEvent):
            if self._signed:
                self._anomalies.append(f"unsigned event {item.event_id} ignored")
            else:
                self._apply(item)
            return
        writers = self._fresh.keys if self._fresh is not None else self._writers
        try:
            event = verified_event(item, writers) if writers is not None else unchecked_event(item)
        except (ValueError, TypeError) as exc:
            # RecordRefused and OrderEventError included: a forged or broken record.
            self._anomalies.append(f"record refused: {exc}")
            return
        if self._signed:
            inp = self._require_input()
            # The ledgered order if there is one; else the input's (a refused order's records
            # still end its lifecycle, though nothing of the input is ever acted on).
            order = self._order or inp
            if (event.account, event.symbol, event.side) != (order.account, order.symbol, order.side):
                self._anomalies.append(f"record {event.event_id} is about another order: ignored")
                return
            if self._genuine_since is None and event.command_id == inp.command_id:
                self._genuine_since = event.ts
        self._apply(event)

    async def _ledgered_order(self, inp: LifecycleInput) -> LedgeredOrder | None:
        """The order as the ledger holds it, if this workflow is its lifecycle; else None (noted)."""
        own_id = lifecycle_workflow_id(inp.command_id)
        if workflow.info().workflow_id != own_id:
            self._anomalies.append(
                f"workflow id {workflow.info().workflow_id!r} is not order {inp.command_id}'s"
                f" lifecycle ({own_id!r}): it acts on nothing"
            )
            return None
        try:
            order = await workflow.execute_activity_method(
                LifecycleOrderActivities.lifecycle_order,
                LifecycleOrderRequest(inp.command_id),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=ORDER_READ_RETRY,
                summary=f"read order {inp.command_id} from the ledger",
            )
        except ActivityError as exc:
            self._anomalies.append(f"order not read from the ledger ({exc.cause or exc}): nothing cancelled")
            return None
        if not order.ok:
            self._anomalies.append(
                f"order not in the ledger as accepted ({order.problem}): nothing cancelled"
            )
            return None
        return order

    async def _record_writers(self) -> list[RecordWriter]:
        try:
            answer = await workflow.execute_activity_method(
                RecordWriterActivities.record_writers,
                WritersRequest(),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=WRITERS_RETRY,
                summary="read the record writers' keys",
            )
        except ActivityError as exc:
            # Without the keys no record verifies: the lifecycle records nothing and cancels
            # nothing (the ledger still has every event).
            self._anomalies.append(f"writer keys not read ({exc.cause or exc}): no record can count")
            return []
        return list(answer.writers)

    @workflow.query(name="history")
    def history(self, _: HistoryQuery) -> LifecycleView:
        inp = self._require_input()
        return LifecycleView(
            command_id=inp.command_id,
            state=self._state,
            quantity=inp.quantity,
            filled_qty=self._filled_qty,
            avg_fill_price=self._avg_price,
            history=list(self._history),
            anomalies=list(self._anomalies),
        )

    @property
    def _state(self) -> LifecycleState:
        return lifecycle_state(self._view.state)

    @property
    def _terminal(self) -> bool:
        return self._state in TERMINAL

    @property
    def _filled_qty(self) -> int:
        return self._view.filled_qty

    @property
    def _avg_price(self) -> Decimal | None:
        return self._view.avg_fill_price

    def _require_input(self) -> LifecycleInput:
        return self._inp

    def _apply(self, event: OrderEvent) -> None:
        inp = self._require_input()
        if event.event_id in self._seen_events:
            return
        self._seen_events.add(event.event_id)
        if event.command_id != inp.command_id:
            self._anomalies.append(f"event {event.event_id} is for order {event.command_id}")
            return
        before = self._state
        taken = step(
            self._view, event, cancel_is_expiry=self._expiry_cancel_sent, ignore_repeat_refusals=True
        )
        self._view = taken.view
        if taken.duplicate_refusal:
            self._history.append(
                HistoryEntry(
                    ts=event.ts,
                    what=event.kind.value,
                    state=self._state,
                    event_id=event.event_id,
                    filled_qty=self._filled_qty,
                    note=f"refusal of a repeated delivery ignored ({event.reason})",
                )
            )
            return
        note: str | None = None
        if taken.duplicate_exec is not None:
            note = f"duplicate execution {taken.duplicate_exec} ignored"
        elif taken.counted is not None and before in TERMINAL:
            note = f"late fill after {before}"
        if taken.anomaly is not None:
            self._anomalies.append(taken.anomaly)
        if event.reason:
            note = f"{note}; {event.reason}" if note else event.reason
        self._history.append(
            HistoryEntry(
                ts=event.ts,
                what=event.kind.value,
                state=self._state,
                event_id=event.event_id,
                filled_qty=self._filled_qty,
                note=note,
            )
        )
        if self._state != before:
            self._publish_search_attributes()
        counted = taken.counted
        self._last = ticket.order_event_line(
            event.kind.value, event.ts, (counted.qty, counted.price) if counted is not None else None, note
        )

    def _expiry_due(self) -> datetime | None:
        """When the wait for the order's end times out: its expiry, or after a cancel was sent
        the time to send another."""
        inp = self._require_input()
        return self._retry_cancel_at if self._expiry_cancel_sent else self._expires_at(inp)

    def _expiry_summary(self, due: datetime | None) -> str | None:
        if due is None:
            return None
        if self._expiry_cancel_sent:
            return ticket.cancel_retry_timer(due, self._cancel_attempts)
        return ticket.expiry_timer(due)

    def _show(self) -> None:
        """The order's ticket as the Temporal UI shows it (current details)."""
        inp = self._require_input()
        order = self._order
        side, symbol, account, tif = (
            (order.side, order.symbol, order.account, order.tif)
            if order is not None
            else (inp.side, inp.symbol, inp.account, inp.tif)
        )
        expires_at = self._expires_at(inp) if self._signed is not None and tif == "DAY" else None
        workflow.set_current_details(
            ticket.lifecycle_details(
                state=self._state.value,
                side=side,
                symbol=symbol,
                account=account,
                agent_id=inp.agent_id,
                tif=tif,
                quantity=self._view.quantity,
                filled=self._filled_qty,
                avg=self._avg_price,
                last=self._last,
                expires_at=expires_at,
                anomalies=len(self._anomalies),
            )
        )

    def _expires_at(self, inp: LifecycleInput) -> datetime | None:
        """The input's expiry; with signed events, never before the close of the session of the
        first genuine record (an input is anyone's to write); with the ledgered order, its
        session's close if it is a DAY order, else never."""
        if self._from_ledger:
            return self._order.expires_at if self._order is not None and self._order.tif == "DAY" else None
        if not self._signed or inp.expires_at is None or self._genuine_since is None:
            return inp.expires_at
        return max(inp.expires_at, SessionCalendar().close_after(self._genuine_since))

    async def _cancel_for_expiry(self) -> None:
        inp = self._require_input()
        self._expiry_cancel_sent = True
        self._retry_cancel_at = None
        self._cancel_attempts += 1
        self._history.append(
            HistoryEntry(
                ts=workflow.now(),
                what="cancel_requested",
                state=self._state,
                filled_qty=self._filled_qty,
                note=EXPIRY_CANCEL_REASON,
            )
        )
        self._last = f"expiry cancel {self._cancel_attempts} requested at {ticket.utc_time(workflow.now())}"
        self._show()
        try:
            await self._publish_cancel(inp)
        except ActivityError as exc:
            self._retry_cancel_at = workflow.now() + CANCEL_RETRY_AFTER
            self._anomalies.append(
                f"expiry cancel attempt {self._cancel_attempts} failed: {exc.cause or exc}"
            )
            self._show()
            return
        if workflow.patched(RETRY_SENT_CANCEL_PATCH):
            # Published is not done: intake may refuse the cancel, or the broker never confirm
            # it. If the order is still open a while later, send another (under a new id).
            self._retry_cancel_at = workflow.now() + CANCEL_RETRY_AFTER

    async def _publish_cancel(self, inp: LifecycleInput) -> None:
        order = self._order
        if self._from_ledger and order is None:
            return  # unreachable: without a ledgered order there is no expiry
        agent, account, symbol = (
            (order.canceller_agent_id, order.account, order.symbol)
            if order is not None
            else (inp.canceller_agent_id, inp.account, inp.symbol)
        )
        await workflow.execute_activity_method(
            CommandActivities.publish_cancel,
            CancelCommandRequest(
                command_id=expiry_cancel_command_id(inp.command_id, self._cancel_attempts),
                target_command_id=inp.command_id,
                agent_id=agent,
                account=account,
                symbol=symbol,
                reason=EXPIRY_CANCEL_REASON,
                issued_at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=CANCEL_RETRY,
            summary=f"cancel {inp.command_id} for DAY expiry (attempt {self._cancel_attempts})",
        )

    def _publish_search_attributes(self) -> None:
        inp = self._require_input()
        workflow.upsert_search_attributes(
            [
                search.SYMBOL.value_set(inp.symbol),
                search.ACCOUNT.value_set(inp.account),
                search.AGENT.value_set(inp.agent_id),
                search.STATE.value_set(self._state.value),
            ]
        )
