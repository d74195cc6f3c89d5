"""Working one slice of an Iceberg run (:mod:`workflows.iceberg`): quote, size, price, publish,
wait out its interval, and pull what is left of it.

A slice is sized from the parent's total minus what has filled or is committed, so nothing
overfills; priced at the near touch, never through the limit; published as a command signed by
the sniper's key through intake, and sent again with the same command id until intake has it.
It works ``3 + 4 * random()`` seconds (times the interval scale), and is cancelled then, or at
once when the parent is cancelled or amended below it, until the broker confirms the cancel.
Quote gaps and publish failures wait on workflow timers (the outage limits are in
:mod:`workflows.iceberg_policies`); every wait ends at the parent's expiry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

from workflows.iceberg_policies import (
    OUTAGE_RETRY_PATCH,
    PUBLISH_BACKOFF,
    PUBLISH_RETRY,
    QUOTE_BACKOFF,
    QUOTE_OUTAGE_LIMIT,
    QUOTE_RETRY,
    RECHECK_AFTER_WAIT_PATCH,
    failure_cause,
)
from workflows.iceberg_state import IcebergState, SliceRecord

with workflow.unsafe.imports_passed_through():
    # By its full name: ``from workflows import ticket`` would load it inside the sandbox,
    # where its time zones are restricted proxies.
    import workflows.ticket as ticket
    from activities.commands import (
        CancelCommandRequest,
        CommandActivities,
        OrderCommandRequest,
    )
    from activities.market import MarketActivities, QuoteRequest, QuoteResult
    from trading.iceberg import backoff_after, slice_delay_ms, slice_price, slice_quantity
    from workflows.slicing import cancel_command_id, slice_command_id


class SliceWork(IcebergState):
    """Sends the run's slices one at a time, each until it is over."""

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
                    self._notes.append(f"no quote for {symbol} ({failure_cause(exc)}); retrying")
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
                        f"{what}: {request.command_id} not published ({failure_cause(exc)}); retrying"
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
