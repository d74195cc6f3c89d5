"""Iceberg (the Sniper, agent 4.1): work a parent order as a sequence of small slices.

Each slice is the display size (optionally jittered a few percent), priced at the near touch,
improved by a tick when the spread allows and never through the parent's limit, and sent as a
command signed by the sniper's key through the normal intake path. Slices are sent
``3 + 4 * random()`` seconds apart; a slice not filled by then is cancelled and the remainder
repriced into the next slice.

No overfill, by construction: at most one slice works at a time, and the next slice is sized
only once the previous slice is over (filled, cancelled, rejected or expired, as the broker
reports it), from the parent's quantity minus what has filled: the fills received, or, for a
slice the broker ended, what the broker said had filled if that is more (an execution racing
the cancel, still on its way). A cancel the broker has not confirmed holds the next slice back,
however long that takes; at the end the parent waits for such racing executions.

Control (amend, pause, resume, cancel) is a signed ``iceberg_*`` command through intake, which
ledgers it; the bridge passes its command id as the ``control`` signal and the workflow reads the
command back from the ledger (:mod:`activities.control`) before acting. The older direct
``pause`` / ``resume`` / ``cancel`` / ``amend`` signals change nothing (anyone who reaches
Temporal could send them); histories written before still replay them.

Slice events reach the workflow from the bridge (``orders.events`` with ``parent_id`` = this
workflow's id) as the ``slice_record`` signal: the record exactly as its writer signed it, which
the workflow verifies itself (pure Ed25519, :mod:`trading.record_signing`) with the writer keys
its first activity read from the registry, so a signal sent straight to Temporal with a made-up
record changes nothing. Events dedupe on event id, fills on execution id.

Nothing is trusted before that first activity (:mod:`activities.iceberg_parent`) has found the
parent in the ledger, accepted, signed by an unrevoked key allowed on the account, equal to the
workflow's input and paced within the worker's limits; otherwise the workflow fails having sent
nothing (so a run someone else started cannot keep the genuine one from starting). A DAY
parent's expiry is the one that check computes from the ledger, never the input's.

Outages do not fail the parent: a quote, publish or cancel activity that runs out of retries is
noted and tried again on a workflow timer, signals still honoured meanwhile. Publishes and
cancels are retried until they go through (same command id and bytes, which intake dedupes), so
no slice is left working unowned; quotes are given up after ``QUOTE_OUTAGE_LIMIT`` and the parent
ends Cancelled, saying why. A DAY parent given ``expires_at`` (the session close) sends nothing
from then on: it pulls the working slice and ends Expired with what filled.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from activities.commands import (
        CancelCommandRequest,
        CommandActivities,
        OrderCommandRequest,
    )
    from activities.control import ControlActivities, ControlLookup, LedgeredControl
    from activities.iceberg_parent import IcebergParentActivities, ParentCheck, ParentCheckRequest
    from activities.market import MarketActivities, QuoteRequest, QuoteResult

    # Named here so the data converter can resolve ``Writers`` (and its ``RecordWriter`` list)
    # when the writer keys are re-read from a task of this workflow (workflows.signed_events).
    from activities.record_writers import RecordWriter, Writers  # noqa: F401
    from trading.commands import Edge, Side, TimeInForce
    from trading.iceberg import SliceFill, backoff_after, slice_delay_ms, slice_price, slice_quantity
    from trading.order_events import EventKind, OrderEvent
    from trading.order_state import is_duplicate_refusal

    # Named here so the data converter can resolve an order event's ``last_fill`` in an
    # ``event`` signal (its class lives with the state machine).
    from trading.orders import Fill  # noqa: F401
    from trading.record_signing import WriterKey
    from workflows import search
    from workflows.iceberg_metrics import record_fill_quality
    from workflows.signed_events import (
        FreshWriters,
        SignedOrderEvent,
        unchecked_event,
        verified_event,
        writer_keys,
    )
    from workflows.slicing import (
        FillQuality,
        cancel_command_id,
        fill_quality,
        slice_command_id,
    )

MAX_CONSECUTIVE_REJECTS = 3

QUOTE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=2), maximum_attempts=5
)
PUBLISH_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=10)
"""A publish retries with the same command id, which intake dedupes; a round that runs out is
followed by another after a workflow timer (``PUBLISH_BACKOFF``), without end."""
QUOTE_BACKOFF = (timedelta(seconds=5), timedelta(seconds=60))
"""Workflow timer between quote rounds that ran out of retries: first wait, and the cap as it
doubles."""
QUOTE_OUTAGE_LIMIT = timedelta(minutes=10)
"""No usable quote for this long (a gateway reconnect takes seconds): the parent stops."""
PUBLISH_BACKOFF = (timedelta(seconds=5), timedelta(seconds=60))
"""Workflow timer between publish (order or cancel) rounds that ran out of retries."""

RECHECK_AFTER_WAIT_PATCH = "iceberg-recheck-after-wait"
"""Cancel, pause and the remaining quantity are checked again after each wait before a slice
goes out. Histories written before sent the slice regardless, and replay that way."""
AMEND_FLOOR_PATCH = "iceberg-amend-floor-working-slice"
"""An amend may not take the total below filled plus the working slice's open quantity.
Histories written before accepted such an amend (and pulled the slice), and replay that way."""
LEDGERED_CONTROL_PATCH = "iceberg-control-from-ledger"
"""Direct pause / resume / cancel / amend signals are ignored: control comes as a ledgered
command (the ``control`` signal). Histories written before applied them, and replay that way."""
CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=10)
"""Reading a control from the ledger; a refusal (not ledgered, not for this parent) is final."""
OUTAGE_RETRY_PATCH = "iceberg-retry-activity-outage"
"""A quote, publish or cancel activity that runs out of retries is tried again on a timer.
Histories written before failed the workflow there, and replay that way."""
LEDGER_CHECKED_PATCH = "iceberg-ledger-checked-parent-signed-records"
"""The parent is checked against the ledger before anything else, and slice events are taken
only as signed records (``slice_record``). Histories written before took the input on trust and
unsigned ``slice_event`` signals, and replay that way."""

CHECK_FAILS_RUN_PATCH = "iceberg-checked-pacing-and-expiry-refusal-fails"
"""The parent check also holds the pacing (interval scale, jitter, cancel confirmation timeout)
to the worker's limits and gives the expiry (from the ledger entry; the input's is ignored), and
a refused parent fails the workflow, which frees its id for the genuine start. Histories written
before used the input's expiry and ended such a parent Rejected, and replay that way."""

FRESH_WRITERS_PATCH = "iceberg-writer-keys-reread"
"""Slice records are verified with writer keys re-read when stale or when a record names an
unknown signer (:class:`workflows.signed_events.FreshWriters`), so a writer key revoked while
the parent works stops counting. Histories written before used the keys read at the start."""

PARENT_CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=30
)
"""A read of the ledger, safe to repeat; a ledger down for minutes ends the parent Rejected
(nothing sent) rather than start it unchecked."""


class IcebergStatus(enum.StrEnum):
    WORKING = "Working"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    """The session closed (``expires_at``) before the parent filled."""


@dataclass(frozen=True)
class IcebergInput:
    account: str
    symbol: str
    side: Side
    total_qty: int
    display_qty: int
    edge: Edge
    """The parent's claimed edge; each slice carries it to the sizer (which may size it down)."""
    limit_price: Decimal | None = None
    agent_id: str = "sniper"
    tif: TimeInForce = TimeInForce.DAY
    jitter: Decimal = Decimal(0)
    """Move each slice's size by up to this fraction of the display size (0.05: ±5 %)."""
    cancel_confirm_timeout_s: float = 30.0
    """Re-send a slice cancel the broker has not confirmed after this long; also how long the
    finished parent waits for executions the broker reported filled but has not yet sent."""
    interval_scale: Decimal = Decimal(1)
    """Multiplies the 3-7 s interval. 1 in production; a venue whose market clock runs N times
    faster than real time is matched with 1/N, so both run on the same time base."""
    expires_at: datetime | None = None
    """When a DAY parent stops sending slices (the session close, set by the bridge); None for
    GTC and for inputs written before this field existed."""


@dataclass(frozen=True)
class PauseRequest:
    request_id: str = ""


@dataclass(frozen=True)
class ResumeRequest:
    request_id: str = ""


@dataclass(frozen=True)
class CancelRequest:
    request_id: str = ""
    reason: str = "trader"


@dataclass(frozen=True)
class ControlSignal:
    """A control command for this parent was ledgered: its command id (nothing else is taken
    from the signal)."""

    command_id: str


@dataclass(frozen=True)
class AmendRequest:
    request_id: str
    total_qty: int | None = None
    display_qty: int | None = None
    limit_price: Decimal | None = None


@dataclass
class SliceRecord:
    slice_no: int
    command_id: str
    qty: int
    price: Decimal
    mid_at_send: Decimal
    sent_at: datetime
    filled_qty: int = 0
    notional: Decimal = Decimal(0)
    done: bool = False
    outcome: str = "working"
    cancel_attempts: int = 0
    acknowledged: bool = False
    """Intake accepted it (or the broker reported on it): it exists, whatever comes later."""
    broker_filled: int = 0
    """What the broker said had filled when it ended the slice; above ``filled_qty`` until the
    executions racing the cancel arrive."""
    label: str = ""
    """``slice 7 of 12``, as the Temporal UI's summaries name it (the plan when it was sent)."""

    @property
    def committed(self) -> int:
        """Shares this slice has taken, counting fills still on their way."""
        return max(self.filled_qty, self.broker_filled)

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled_qty if self.filled_qty else None


@dataclass(frozen=True)
class SliceReport:
    slice_no: int
    command_id: str
    qty: int
    price: Decimal
    mid_at_send: Decimal
    sent_at: datetime
    filled_qty: int
    avg_price: Decimal | None
    outcome: str


@dataclass(frozen=True)
class ProgressQuery:
    """Empty today; a place for options without changing the query's signature."""


@dataclass(frozen=True)
class IcebergProgress:
    status: IcebergStatus
    total_qty: int
    display_qty: int
    limit_price: Decimal | None
    filled_qty: int
    working_qty: int
    slices_sent: int
    avg_fill_price: Decimal | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IcebergResult:
    status: IcebergStatus
    account: str
    symbol: str
    side: Side
    total_qty: int
    filled_qty: int
    started_at: datetime
    finished_at: datetime
    slices: list[SliceReport]
    quality: FillQuality | None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    """Why the parent ended short of its total (None when it completed)."""


@workflow.defn(name="Iceberg")
class Iceberg:
    @workflow.init
    def __init__(self, inp: IcebergInput) -> None:
        self._inp = inp
        self._total = inp.total_qty
        self._display = inp.display_qty
        self._limit = inp.limit_price
        self._slices: list[SliceRecord] = []
        self._by_command: dict[str, SliceRecord] = {}
        self._seen_events: set[str] = set()
        self._seen_execs: set[str] = set()
        self._seen_requests: set[str] = set()
        self._paused = False
        self._cancel_reason: str | None = None
        self._status = IcebergStatus.WORKING
        self._notes: list[str] = []
        self._consecutive_rejects = 0
        self._expires_at = inp.expires_at
        self._expired = False
        self._end_reason: str | None = None
        self._writers: dict[str, WriterKey] | None = None
        """Keys whose signed slice records count; None until the parent check passed."""
        self._signed_events: bool | None = None
        """Whether slice events must come signed (None: not known before run starts)."""
        self._fresh: FreshWriters | None = None
        """Re-reads the writer keys before they vouch for a record (runs under the patch)."""
        self._fresh_task: asyncio.Task[None] | None = None
        self._last: str | None = None
        """The last slice event or control, as the UI's current details show it."""

    @workflow.run
    async def run(self, inp: IcebergInput) -> IcebergResult:
        started = workflow.now()
        self._validate_input(inp)
        self._signed_events = workflow.patched(LEDGER_CHECKED_PATCH)
        if self._signed_events:
            fail_refused = workflow.patched(CHECK_FAILS_RUN_PATCH)
            refused = await self._check_parent(inp, fail_refused)
            if refused is not None and fail_refused:
                # Failed, not completed: Temporal lets the genuine start take this id after a
                # failed run (the bridge starts with ALLOW_DUPLICATE_FAILED_ONLY).
                self._status = IcebergStatus.REJECTED
                self._end_reason = refused
                self._notes.append(refused)
                raise ApplicationError(refused, type="IcebergRefused", non_retryable=True)
            if refused is None and self._writers is not None and workflow.patched(FRESH_WRITERS_PATCH):
                self._fresh = FreshWriters(self._writers, workflow.now())
                # A task of the workflow's own (deterministic) loop; it ends with the workflow.
                self._fresh_task = asyncio.create_task(
                    self._fresh.keep_fresh(self._take_slice_record, self._notes.append)
                )
            if refused is not None:
                self._status = IcebergStatus.REJECTED
                self._end_reason = refused
                self._notes.append(refused)
                self._publish_search_attributes()
                return self._result(inp, started)
        self._publish_search_attributes()
        while self._committed < self._total and self._cancel_reason is None:
            await self._wait(lambda: not self._paused or self._cancel_reason is not None, summary="paused")
            if self._cancel_reason is not None or self._session_closed():
                break
            if self._committed >= self._total and workflow.patched(RECHECK_AFTER_WAIT_PATCH):
                # Amended down to what has filled while paused: nothing is left to send.
                break
            if self._consecutive_rejects >= MAX_CONSECUTIVE_REJECTS:
                self._status = IcebergStatus.REJECTED
                self._end_reason = f"stopped after {MAX_CONSECUTIVE_REJECTS} rejected slices in a row"
                self._notes.append(self._end_reason)
                break
            await self._work_one_slice()
            if self._session_closed():
                break
        if self._filled < self._committed:
            # Executions that raced a cancel: the broker has reported them filled, so the parent
            # waits for them rather than end short (or send a slice that would overfill).
            try:
                await workflow.wait_condition(
                    lambda: self._filled >= self._committed,
                    timeout=timedelta(seconds=self._inp.cancel_confirm_timeout_s),
                    timeout_summary=(
                        f"wait {ticket.duration(self._inp.cancel_confirm_timeout_s)} for the"
                        f" {self._committed - self._filled} shares the broker reported filled"
                    ),
                )
            except TimeoutError:
                self._notes.append(
                    f"{self._committed - self._filled} shares the broker reported filled never arrived"
                    " as executions; reconciliation will record them"
                )
        if self._status is not IcebergStatus.REJECTED:
            if self._filled >= self._total:
                self._status = IcebergStatus.COMPLETED
                self._end_reason = None
            elif self._expired and self._cancel_reason is None:
                self._status = IcebergStatus.EXPIRED
                self._end_reason = (
                    f"expired at the session close {self._expires_at:%Y-%m-%d %H:%M} UTC"
                    f" with {self._filled} of {self._total} filled"
                )
                self._notes.append(self._end_reason)
            else:
                self._status = IcebergStatus.CANCELLED
                self._end_reason = self._end_reason or f"cancelled: {self._cancel_reason}"
        self._publish_search_attributes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result(inp, started)

    async def _check_parent(self, inp: IcebergInput, checked_expiry: bool) -> str | None:
        """None if the ledger holds this parent as accepted and genuine; else why not."""
        try:
            check: ParentCheck = await workflow.execute_activity_method(
                IcebergParentActivities.check_iceberg_parent,
                ParentCheckRequest(
                    account=inp.account,
                    symbol=inp.symbol,
                    side=inp.side.value,
                    total_qty=inp.total_qty,
                    display_qty=inp.display_qty,
                    limit_price=inp.limit_price,
                    tif=inp.tif.value,
                    edge=inp.edge,
                    agent_id=inp.agent_id,
                    interval_scale=inp.interval_scale,
                    jitter=inp.jitter,
                    cancel_confirm_timeout_s=inp.cancel_confirm_timeout_s,
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=PARENT_CHECK_RETRY,
                summary="check the parent in the ledger",
            )
        except ActivityError as exc:
            return f"iceberg.parent_unchecked: the ledger could not be read ({_cause(exc)}); nothing sent"
        if check.reason is not None:
            return f"{check.reason}: {check.detail}"
        self._writers = writer_keys(check.writers)
        if checked_expiry:
            # The input's expiry is anyone's to write (None would work a DAY parent past the close).
            self._expires_at = check.expires_at
        return None

    def _result(self, inp: IcebergInput, started: datetime) -> IcebergResult:
        quality = fill_quality(inp.side, self._slice_fills())
        record_fill_quality(quality, inp.symbol, inp.side.value)
        return IcebergResult(
            status=self._status,
            account=inp.account,
            symbol=inp.symbol,
            side=inp.side,
            total_qty=self._total,
            filled_qty=self._filled,
            started_at=started,
            finished_at=workflow.now(),
            slices=[self._report(s) for s in self._slices],
            quality=quality,
            notes=list(self._notes),
            reason=self._end_reason,
        )

    async def _work_one_slice(self) -> None:
        inp = self._inp
        quote = await self._quote()
        if quote is None or self._session_closed():
            # Cancelled, paused, amended to nothing or closed while quotes were missing: the
            # caller sorts it out (no history reached here: such code failed the workflow).
            return
        # Signals may have landed while the quote was fetched.
        remaining = self._total - self._committed
        if remaining <= 0:
            # No patch needed: code without this check raised here, so no history went on.
            return
        if (self._cancel_reason is not None or self._paused) and workflow.patched(RECHECK_AFTER_WAIT_PATCH):
            # The caller ends or waits for the resume, then prices afresh from a new quote.
            return
        rng = workflow.random()
        qty = slice_quantity(self._display, remaining, rng.random(), inp.jitter)
        slice_no = len(self._slices) + 1
        unsent = self._total - self._committed - self._working_open - qty
        record = SliceRecord(
            slice_no=slice_no,
            command_id=slice_command_id(workflow.info().workflow_id, slice_no),
            qty=qty,
            price=slice_price(inp.side, quote.bid, quote.ask, quote.tick, self._limit),
            mid_at_send=(quote.bid + quote.ask) / 2,
            sent_at=workflow.now(),
            label=ticket.slice_label(slice_no, ticket.slices_planned(slice_no, unsent, self._display)),
        )
        self._slices.append(record)
        self._by_command[record.command_id] = record
        self._last = f"{record.label} sent at {ticket.utc_time(record.sent_at)}"
        self._show()
        await self._publish(
            CommandActivities.publish_order,
            OrderCommandRequest(
                command_id=record.command_id,
                parent_id=workflow.info().workflow_id,
                agent_id=inp.agent_id,
                account=inp.account,
                symbol=inp.symbol,
                side=inp.side.value,
                quantity=record.qty,
                limit_price=record.price,
                tif=inp.tif.value,
                edge=inp.edge,
                issued_at=record.sent_at,
            ),
            f"slice {record.slice_no}",
            lambda: record.acknowledged or record.done,
            ticket.slice_order(record.label, inp.side.value, record.qty, inp.symbol, record.price),
        )
        delay_ms = slice_delay_ms(rng.random()) * inp.interval_scale
        next_send = record.sent_at + timedelta(milliseconds=float(delay_ms))
        await self._wait(
            lambda: record.done or self._must_pull(record),
            next_send,
            f"{record.label} works until {ticket.utc_time(next_send)}, then its rest is repriced",
        )
        if not record.done:
            await self._cancel_slice(record)
        if self._committed < self._total and self._cancel_reason is None and not self._session_closed():
            # A slice that filled early still waits out its interval before the next one.
            await self._wait(
                lambda: self._cancel_reason is not None,
                next_send,
                f"pace: slice {slice_no + 1} not before {ticket.utc_time(next_send)}",
            )

    async def _wait(
        self, done: Callable[[], bool], until: datetime | None = None, summary: str = "wait"
    ) -> None:
        """Until ``done()``, ``until`` passes or the session closes, whichever comes first;
        ``summary`` names the wait in the UI's timeline."""
        deadline = until
        if self._expires_at is not None:
            if self._session_closed():
                return
            deadline = self._expires_at if deadline is None else min(deadline, self._expires_at)
        if deadline is None:
            await workflow.wait_condition(done)
            return
        if deadline != until and self._expires_at is not None:
            summary = f"{summary}: {ticket.expiry_timer(self._expires_at)}"
        try:
            await workflow.wait_condition(done, timeout=self._until(deadline), timeout_summary=summary)
        except TimeoutError:
            pass

    def _session_closed(self) -> bool:
        """The parent's expiry has passed (never, without one); remembered once seen."""
        if self._expires_at is not None and not self._expired and workflow.now() >= self._expires_at:
            self._expired = True
        return self._expired

    async def _quote(self) -> QuoteResult | None:
        """The touch, waiting out a quote gap on a workflow timer. None: the wait was cut short
        (cancel, pause, amend to nothing, the close), or the gap outlasted QUOTE_OUTAGE_LIMIT
        and the parent is being stopped."""
        symbol = self._inp.symbol
        gap_since: datetime | None = None
        failed_rounds = 0
        while True:
            try:
                quote = await workflow.execute_activity_method(
                    MarketActivities.get_quote,
                    QuoteRequest(symbol=symbol),
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=QUOTE_RETRY,
                    summary=f"quote {symbol} for slice {len(self._slices) + 1}",
                )
            except ActivityError as exc:
                if isinstance(exc.cause, CancelledError) or not workflow.patched(OUTAGE_RETRY_PATCH):
                    raise
                now = workflow.now()
                if gap_since is None:
                    gap_since = now
                    self._notes.append(f"no quote for {symbol} ({_cause(exc)}); retrying")
                gap = now - gap_since
                if gap >= QUOTE_OUTAGE_LIMIT:
                    self._end_reason = (
                        f"no usable quote for {symbol} for {int(gap.total_seconds())} s; stopped"
                    )
                    self._notes.append(self._end_reason)
                    self._cancel_reason = "no quote"
                    return None
                wait = backoff_after(failed_rounds, *QUOTE_BACKOFF)
                failed_rounds += 1
                retry_at = min(now + wait, gap_since + QUOTE_OUTAGE_LIMIT)
                asking = f"no quote for {symbol}: ask again at {ticket.utc_time(retry_at)}"
                await self._wait(self._quote_not_needed, retry_at, asking)
                if self._quote_not_needed() or self._session_closed():
                    return None
                continue
            if gap_since is not None:
                gap = workflow.now() - gap_since
                self._notes.append(f"quotes for {symbol} back after {int(gap.total_seconds())} s")
            return quote

    def _quote_not_needed(self) -> bool:
        return self._cancel_reason is not None or self._paused or self._committed >= self._total

    async def _publish(
        self,
        activity: Callable[[CommandActivities, Any], Awaitable[Any]],
        request: OrderCommandRequest | CancelCommandRequest,
        what: str,
        through: Callable[[], bool],
        summary: str,
    ) -> None:
        """Publish ``request`` until intake has it, or ``through()`` shows it already does. Each
        round sends the same command id and bytes, which intake dedupes, so retrying cannot
        add an order; giving up could leave a slice working that nothing would ever pull."""
        failed_rounds = 0
        while True:
            try:
                await workflow.execute_activity_method(
                    activity,
                    request,
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=PUBLISH_RETRY,
                    summary=summary,
                )
            except ActivityError as exc:
                if isinstance(exc.cause, CancelledError) or not workflow.patched(OUTAGE_RETRY_PATCH):
                    raise
                if failed_rounds == 0:
                    self._notes.append(
                        f"{what}: {request.command_id} not published ({_cause(exc)}); retrying"
                    )
                wait = backoff_after(failed_rounds, *PUBLISH_BACKOFF)
                failed_rounds += 1
                try:
                    again = f"{what}: publish again after {ticket.duration(wait.total_seconds())}"
                    await workflow.wait_condition(through, timeout=wait, timeout_summary=again)
                except TimeoutError:
                    continue
            if failed_rounds:
                self._notes.append(
                    f"{what}: {request.command_id} through after {failed_rounds} failed rounds"
                )
            return

    def _must_pull(self, record: SliceRecord) -> bool:
        """Cancel the working slice early: the iceberg was cancelled or amended below it."""
        return (
            self._cancel_reason is not None or self._committed + (record.qty - record.committed) > self._total
        )

    async def _cancel_slice(self, record: SliceRecord) -> None:
        while not record.done:
            record.cancel_attempts += 1
            if self._cancel_reason is not None:
                reason = "sniper.cancel"
            elif self._session_closed():
                reason = "sniper.expired"
            else:
                reason = "sniper.reprice"
            await self._publish(
                CommandActivities.publish_cancel,
                CancelCommandRequest(
                    command_id=cancel_command_id(record.command_id, record.cancel_attempts),
                    target_command_id=record.command_id,
                    agent_id=self._inp.agent_id,
                    account=self._inp.account,
                    symbol=self._inp.symbol,
                    reason=reason,
                    issued_at=workflow.now(),
                ),
                f"slice {record.slice_no} cancel",
                lambda: record.done,
                f"cancel {record.label} ({reason}, attempt {record.cancel_attempts})",
            )
            try:
                await workflow.wait_condition(
                    lambda: record.done,
                    timeout=timedelta(seconds=self._inp.cancel_confirm_timeout_s),
                    timeout_summary=(
                        f"{record.label} cancel confirmation"
                        f" ({ticket.duration(self._inp.cancel_confirm_timeout_s)},"
                        f" attempt {record.cancel_attempts})"
                    ),
                )
            except TimeoutError:
                self._notes.append(
                    f"slice {record.slice_no}: cancel not confirmed after "
                    f"{self._inp.cancel_confirm_timeout_s} s (attempt {record.cancel_attempts})"
                )

    @staticmethod
    def _until(when: datetime) -> float:
        return max(0.0, (when - workflow.now()).total_seconds())

    @property
    def _filled(self) -> int:
        return sum(s.filled_qty for s in self._slices)

    @property
    def _committed(self) -> int:
        """Filled, plus what the broker reported filled on ended slices whose executions are
        still on their way: what the next slice is sized against, so nothing overfills."""
        return sum(s.committed for s in self._slices)

    @property
    def _working_open(self) -> int:
        """Shares the working slice (if any) may still fill: asked for, not yet taken."""
        return sum(max(0, s.qty - s.committed) for s in self._slices if not s.done)

    def _slice_fills(self) -> list[SliceFill]:
        return [
            SliceFill(qty=s.filled_qty, price=s.notional / s.filled_qty, mid=s.mid_at_send)
            for s in self._slices
            if s.filled_qty
        ]

    @workflow.signal(name="slice_record")
    def on_slice_record(self, signed: SignedOrderEvent) -> None:
        """A slice event as its writer signed it; applied only if the signature verifies with
        a writer key the parent check returned (re-read since, if stale) and it is about this
        parent."""
        if self._fresh is not None and self._fresh.hold_if_stale(signed):
            return
        self._take_slice_record(signed)

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

    @workflow.signal(name="slice_event")
    def on_slice_event(self, event: OrderEvent) -> None:
        if self._signed_events is not False:
            # Unsigned: anyone who can reach Temporal could have sent it.
            self._notes.append(f"unsigned slice event {event.event_id} ignored")
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

    @workflow.signal(name="control")
    async def control(self, req: ControlSignal) -> None:
        seen = f"control:{req.command_id}"
        if not self._first_time(seen):
            return
        try:
            ledgered = await workflow.execute_activity_method(
                ControlActivities.read_control,
                ControlLookup(command_id=req.command_id, parent_id=workflow.info().workflow_id),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=CONTROL_RETRY,
                summary=f"read control {req.command_id} from the ledger",
            )
        except ActivityError as exc:
            self._notes.append(f"control {req.command_id} not applied: {_cause(exc)}")
            # The same control delivered again (the bridge redelivers) is read afresh: the
            # ledger may have been unreachable this time.
            self._seen_requests.discard(seen)
            return
        self._apply_control(ledgered)

    def _apply_control(self, c: LedgeredControl) -> None:
        self._notes.append(f"{c.kind} {c.command_id} by {c.agent_id}")
        if c.kind == "iceberg_pause":
            self._pause()
        elif c.kind == "iceberg_resume":
            self._resume()
        elif c.kind == "iceberg_cancel":
            self._cancel(c.reason or c.agent_id)
        elif c.kind == "iceberg_amend":
            self._amend(AmendRequest(c.command_id, c.total_qty, c.display_qty, c.limit_price))
        self._last = f"{c.kind.removeprefix('iceberg_')} by {c.agent_id} at {ticket.utc_time(workflow.now())}"
        self._show()

    def _direct_signal_ignored(self, name: str) -> bool:
        """A control signal sent straight to Temporal: no authority, so no effect (new runs)."""
        if not workflow.patched(LEDGERED_CONTROL_PATCH):
            return False
        note = f"direct {name} signal ignored: send a signed iceberg_{name} command through intake"
        if note not in self._notes:
            self._notes.append(note)
        return True

    @workflow.signal(name="pause")
    def pause(self, req: PauseRequest) -> None:
        if not self._direct_signal_ignored("pause") and self._first_time(req.request_id):
            self._pause()

    def _pause(self) -> None:
        if self._cancel_reason is None:
            self._paused = True
            self._status = IcebergStatus.PAUSED
            self._publish_search_attributes()

    @workflow.signal(name="resume")
    def resume(self, req: ResumeRequest) -> None:
        if not self._direct_signal_ignored("resume") and self._first_time(req.request_id):
            self._resume()

    def _resume(self) -> None:
        if self._cancel_reason is None:
            self._paused = False
            self._status = IcebergStatus.WORKING
            self._publish_search_attributes()

    @workflow.signal(name="cancel")
    def cancel(self, req: CancelRequest) -> None:
        if not self._direct_signal_ignored("cancel") and self._first_time(req.request_id):
            self._cancel(req.reason or "trader")

    def _cancel(self, reason: str) -> None:
        if self._cancel_reason is None:
            self._cancel_reason = reason
            self._notes.append(f"cancel requested: {self._cancel_reason}")

    @workflow.signal(name="amend")
    def amend(self, req: AmendRequest) -> None:
        if not self._direct_signal_ignored("amend") and self._first_time(req.request_id):
            self._amend(req)

    def _amend(self, req: AmendRequest) -> None:
        problem = self._amend_problem(req)
        if problem:
            self._notes.append(f"amend {req.request_id} refused: {problem}")
            return
        if req.total_qty is not None:
            self._total = req.total_qty
        if req.display_qty is not None:
            self._display = req.display_qty
        if req.limit_price is not None:
            self._limit = req.limit_price
        self._notes.append(f"amend {req.request_id} applied")

    def _amend_problem(self, req: AmendRequest) -> str | None:
        if req.total_qty is not None and req.total_qty < self._committed:
            return f"total {req.total_qty} is below the {self._committed} already filled"
        if req.total_qty is not None and req.total_qty <= 0:
            return "total must be positive"
        working = self._working_open
        floor = self._committed + working
        if req.total_qty is not None and req.total_qty < floor and workflow.patched(AMEND_FLOOR_PATCH):
            # The working slice may fill whole while its cancel is on the way, so a total below
            # this could end overfilled.
            return (
                f"total {req.total_qty} is below the {self._committed} filled plus the {working}"
                f" still working; the smallest total accepted now is {floor}"
            )
        if req.display_qty is not None and req.display_qty <= 0:
            return "display size must be positive"
        if req.limit_price is not None and req.limit_price <= 0:
            return "limit must be positive"
        return None

    @workflow.query(name="progress")
    def progress(self, _: ProgressQuery) -> IcebergProgress:
        working = sum(s.qty - s.filled_qty for s in self._slices if not s.done)
        filled = self._filled
        notional = sum((s.notional for s in self._slices), Decimal(0))
        return IcebergProgress(
            status=self._status,
            total_qty=self._total,
            display_qty=self._display,
            limit_price=self._limit,
            filled_qty=filled,
            working_qty=working,
            slices_sent=len(self._slices),
            avg_fill_price=notional / filled if filled else None,
            notes=list(self._notes),
        )

    def _first_time(self, request_id: str) -> bool:
        if not request_id:
            return True
        if request_id in self._seen_requests:
            return False
        self._seen_requests.add(request_id)
        return True

    def _validate_input(self, inp: IcebergInput) -> None:
        problems = []
        if inp.total_qty <= 0 or inp.display_qty <= 0:
            problems.append("quantities must be positive")
        if inp.limit_price is not None and inp.limit_price <= 0:
            problems.append("limit must be positive")
        if inp.interval_scale <= 0:
            problems.append("interval scale must be positive")
        if problems:
            raise ApplicationError(
                "invalid iceberg: " + ", ".join(problems), type="InvalidIceberg", non_retryable=True
            )

    def _report(self, s: SliceRecord) -> SliceReport:
        return SliceReport(
            slice_no=s.slice_no,
            command_id=s.command_id,
            qty=s.qty,
            price=s.price,
            mid_at_send=s.mid_at_send,
            sent_at=s.sent_at,
            filled_qty=s.filled_qty,
            avg_price=s.avg_price,
            outcome=s.outcome,
        )

    def _publish_search_attributes(self) -> None:
        workflow.upsert_search_attributes(
            [
                search.SYMBOL.value_set(self._inp.symbol),
                search.ACCOUNT.value_set(self._inp.account),
                search.AGENT.value_set(self._inp.agent_id),
                search.STATE.value_set(self._status.value),
            ]
        )
        # The status changed: so did the ticket.
        self._show()

    def _show(self) -> None:
        """The parent's ticket as the Temporal UI shows it (current details)."""
        working = next((s for s in self._slices if not s.done), None)
        filled = self._filled
        notional = sum((s.notional for s in self._slices), Decimal(0))
        lines = ticket.iceberg_details(
            status=self._status.value,
            side=self._inp.side.value,
            symbol=self._inp.symbol,
            account=self._inp.account,
            total=self._total,
            display=self._display,
            limit=self._limit,
            filled=filled,
            avg=notional / filled if filled else None,
            working=(
                f"{working.label}: {working.filled_qty} of {working.qty} @ {ticket.price(working.price)}"
                if working is not None
                else None
            ),
            expires_at=self._expires_at,
            last=self._last,
        )
        if self._notes:
            lines += f"\nnote: {self._notes[-1]}"
        workflow.set_current_details(lines)


def _cause(exc: ActivityError) -> str:
    return str(exc.cause) if exc.cause is not None else str(exc)
