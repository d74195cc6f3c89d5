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
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.iceberg_control import IcebergControl
from workflows.iceberg_messages import (
    AmendRequest,
    CancelRequest,
    ControlSignal,
    IcebergInput,
    IcebergProgress,
    IcebergResult,
    IcebergStatus,
    PauseRequest,
    ProgressQuery,
    ResumeRequest,
    SliceReport,
)
from workflows.iceberg_policies import (
    CHECK_FAILS_RUN_PATCH,
    FRESH_WRITERS_PATCH,
    LEDGER_CHECKED_PATCH,
    MAX_CONSECUTIVE_REJECTS,
    PARENT_CHECK_RETRY,
    RECHECK_AFTER_WAIT_PATCH,
    failure_cause,
)
from workflows.iceberg_slice_events import SliceEvents
from workflows.iceberg_slice_work import SliceWork

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from activities.iceberg_parent import IcebergParentActivities, ParentCheck, ParentCheckRequest

    # Named here so the data converter can resolve ``Writers`` (and its ``RecordWriter`` list)
    # when the writer keys are re-read from a task of this workflow (workflows.signed_events).
    from activities.record_writers import RecordWriter, Writers  # noqa: F401
    from trading.order_events import OrderEvent

    # Named here so the data converter can resolve an order event's ``last_fill`` in an
    # ``event`` signal (its class lives with the state machine).
    from trading.orders import Fill  # noqa: F401
    from workflows.iceberg_metrics import record_fill_quality
    from workflows.signed_events import FreshWriters, SignedOrderEvent, writer_keys
    from workflows.slicing import fill_quality

__all__ = [
    "AmendRequest",
    "CancelRequest",
    "ControlSignal",
    "Iceberg",
    "IcebergInput",
    "IcebergProgress",
    "IcebergResult",
    "IcebergStatus",
    "PauseRequest",
    "ProgressQuery",
    "ResumeRequest",
    "SliceReport",
]
"""The workflow and its messages (defined in :mod:`workflows.iceberg_messages`)."""


@workflow.defn(name="Iceberg")
class Iceberg(SliceWork, SliceEvents, IcebergControl):
    """The Temporal face of the Sniper: its run, every signal and query it answers. What a run
    keeps is :class:`~workflows.iceberg_state.IcebergState`; working a slice, taking slice events
    and applying controls are the mixins' (:mod:`workflows.iceberg_slice_work`,
    :mod:`workflows.iceberg_slice_events`, :mod:`workflows.iceberg_control`)."""

    @workflow.init
    def __init__(self, inp: IcebergInput) -> None:
        super().__init__(inp)

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
            return (
                f"iceberg.parent_unchecked: the ledger could not be read ({failure_cause(exc)}); nothing sent"
            )
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

    @workflow.signal(name="slice_record")
    def on_slice_record(self, signed: SignedOrderEvent) -> None:
        """A slice event as its writer signed it; applied only if the signature verifies with
        a writer key the parent check returned (re-read since, if stale) and it is about this
        parent."""
        if self._fresh is not None and self._fresh.hold_if_stale(signed):
            return
        self._take_slice_record(signed)

    @workflow.signal(name="slice_event")
    def on_slice_event(self, event: OrderEvent) -> None:
        if self._signed_events is not False:
            # Unsigned: anyone who can reach Temporal could have sent it.
            self._notes.append(f"unsigned slice event {event.event_id} ignored")
            return
        self._apply_slice_event(event)

    @workflow.signal(name="control")
    async def control(self, req: ControlSignal) -> None:
        await self._take_control(req)

    @workflow.signal(name="pause")
    def pause(self, req: PauseRequest) -> None:
        if not self._direct_signal_ignored("pause") and self._first_time(req.request_id):
            self._pause()

    @workflow.signal(name="resume")
    def resume(self, req: ResumeRequest) -> None:
        if not self._direct_signal_ignored("resume") and self._first_time(req.request_id):
            self._resume()

    @workflow.signal(name="cancel")
    def cancel(self, req: CancelRequest) -> None:
        if not self._direct_signal_ignored("cancel") and self._first_time(req.request_id):
            self._cancel(req.reason or "trader")

    @workflow.signal(name="amend")
    def amend(self, req: AmendRequest) -> None:
        if not self._direct_signal_ignored("amend") and self._first_time(req.request_id):
            self._amend(req)

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
