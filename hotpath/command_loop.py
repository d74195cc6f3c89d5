"""The hot path's command loop: each ``agent.commands`` record decided in turn, durably, and
its offset committed only then.

A record is handed to :meth:`hotpath.intake.Intake.handle`, which returns once the command is
in the ledger (an entry or a recorded refusal) and raises only when the ledger cannot be
reached: then the record, and intake with it, is held and retried with backoff until Postgres
answers (``/health`` shows it as ``intake_held``), so a command is never skipped, and never
committed before it is decided (:mod:`hotpath.decided_offsets`).

"In turn" is the order of decisions, not of commits. An order that passed its checks lets the
next record be decided while its write-ahead commit is in flight (:mod:`hotpath.overlap` says
which commands may, and why that decides as one at a time would); the entries that queue
meanwhile are committed together (:mod:`hotpath.group_commit`). Under a burst a slow commit
then delays the records behind it by its own length once, not once each, and every record a
fetch brought is taken in one turn of the event loop, so aiokafka (which fetches a partition
again only once everything it buffered was handed out) fetches the next records at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from bus.assigned_consumer import AssignedConsumer
from bus.topics import AGENT_COMMANDS
from hotpath import overlap
from hotpath.decided_offsets import DecidedOffsets
from hotpath.intake import Intake
from hotpath.intake_steps import ledger_unreachable
from hotpath.refusals import INTERNAL_ERROR, failure_detail

log = logging.getLogger("hotpath")

LEDGER_RETRY_FIRST_S = 0.1
LEDGER_RETRY_MAX_S = 5.0


def command_consumer(bootstrap: str, group_id: str, fetch_max_wait_ms: int) -> AIOKafkaConsumer:
    """The ``agent.commands`` consumer: every partition, assigned by the hot path itself (it is
    the only reader of the topic under its group id), resumed at the group's committed offsets.
    Joining the group instead would make a hot path restarted after ``kill -9`` wait for the
    dead member's session to time out before reading anything, and commands waiting meanwhile
    would age past the sentry's window. No auto-commit: that would commit records handed out
    but not yet decided (one held through a ledger outage, say), which a process killed then
    would never decide. :class:`~hotpath.decided_offsets.DecidedOffsets` commits decided ones."""
    return AssignedConsumer(
        AGENT_COMMANDS,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


@dataclass
class IntakeHold:
    """The record intake is holding until the ledger answers, if any (shown on ``/health``)."""

    source: str | None = None
    since: float | None = None
    """``time.time()`` of the first failed attempt."""
    attempts: int = 0

    def as_dict(self) -> dict[str, Any] | None:
        if self.source is None:
            return None
        return {"source": self.source, "since": self.since, "attempts": self.attempts}


OVERLAP_MAX = 64
"""Records in flight at once (released, their commits or broker writes not yet done): past it
the loop waits for the oldest before taking another, so a ledger that stalls holds a bounded
number of decided commands in memory, not the whole topic."""


async def consume_commands(
    intake: Intake, cmd_consumer: Any, offsets: DecidedOffsets | None = None, hold: IntakeHold | None = None
) -> None:
    """Decide each record in turn; its offset is marked for commit only once it is decided
    durably, after the broker write for an order (the commit itself runs in the background),
    and in the records' order.

    A plain order that passed its checks releases the loop while its ledger commit is in flight
    (:mod:`hotpath.overlap`), so the next record is decided meanwhile and its entry committed in
    the same or the next transaction (:mod:`hotpath.group_commit`): under a burst the records
    no longer queue one commit each behind a slow one. A record whose first attempt fails (the
    ledger unreachable) stops the loop taking new records; once every record before it has
    ended it is decided again, held and retried as before (:func:`decide`)."""
    pipeline = _Pipeline(intake, offsets, hold or IntakeHold())
    try:
        async for record in cmd_consumer:
            await pipeline.admit(record)
        await pipeline.finish()
    finally:
        await pipeline.cancel()


class _Pipeline:
    def __init__(self, intake: Intake, offsets: DecidedOffsets | None, hold: IntakeHold) -> None:
        self._intake = intake
        self._offsets = offsets
        self._hold = hold
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: asyncio.Task[None] | None = None
        """The newest record's task: the next one marks its offset only after it."""
        self._last_gate: asyncio.Future[None] | None = None
        """Resolved once the newest record released the loop or was handled: the next one
        starts deciding only then."""
        self._room = asyncio.Semaphore(OVERLAP_MAX)
        self._failing = 0
        self._clear = asyncio.Event()
        """Set while no record waits for its retry: only then is a new record taken."""
        self._clear.set()

    async def admit(self, record: Any) -> None:
        """Start deciding ``record`` once the record before it released the loop or was handled.

        Nothing here waits while records are buffered and all goes well: every record a fetch
        brought is handed to a task at once, and those tasks decide one after another within
        the same turn of the event loop, each as soon as the one before it released. A task
        per record started and awaited in turn would cost the loop two turns per record, and
        on a busy process a turn is what a record waits for."""
        await self._clear.wait()  # no new record while one waits for its retry
        await self._room.acquire()
        source = f"{record.topic}[{record.partition}]@{record.offset}"
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        place = overlap.Overlap([t for t in self._tasks if not t.done()], gate)
        task = asyncio.create_task(
            self._decide(record, source, place, self._last, self._last_gate), name=f"intake {source}"
        )
        self._tasks.add(task)
        self._last, self._last_gate = task, gate
        task.add_done_callback(functools.partial(self._ended, gate))

    def _ended(self, gate: asyncio.Future[None], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._room.release()
        if not gate.done():
            gate.set_result(None)

    async def _decide(
        self,
        record: Any,
        source: str,
        place: overlap.Overlap,
        before: asyncio.Task[None] | None,
        before_gate: asyncio.Future[None] | None,
    ) -> None:
        overlap.CURRENT.set(place)  # this task's own context: the record's place in the loop
        if before_gate is not None and not before_gate.done():
            await before_gate  # the record before it released the loop, or was handled
        failure: BaseException | None = None
        try:
            await self._intake.handle(
                record.value,
                produce_ts_ms=record.timestamp,
                source=source,
                headers=getattr(record, "headers", None),  # its trace context (a stand-in has none)
            )
        except Exception as exc:
            failure = exc
            self._failing += 1
            self._clear.clear()
        if before is not None and not before.done():
            # Offsets are marked in the records' order, and a retry runs only after every
            # record before it has ended (the ledger then has what one at a time would have).
            await asyncio.wait([before])
        if failure is not None:
            try:
                await decide(self._intake, record, source, self._hold, failed=failure)
            finally:
                self._failing -= 1
                if not self._failing:
                    self._clear.set()
        if self._offsets is not None:
            self._offsets.decided(record.topic, record.partition, record.offset)

    async def finish(self) -> None:
        """Wait for every record taken to be decided (the records ran out)."""
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def decide(
    intake: Intake, record: Any, source: str, hold: IntakeHold, *, failed: BaseException | None = None
) -> None:
    """Returns once the record is decided and recorded. Intake records its own failures as
    ``intake.internal_error``; one that escapes even that is a critical ops event. A ledger
    that cannot be reached, or that refuses even that ops event, holds the record, retried
    with backoff until it is decided. ``failed``: how a first attempt already ended."""
    try:
        await _decide_held(intake, record, source, hold, failed)
    finally:
        hold.source = hold.since = None
        hold.attempts = 0


async def _decide_held(
    intake: Intake, record: Any, source: str, hold: IntakeHold, failed: BaseException | None
) -> None:
    delay = LEDGER_RETRY_FIRST_S
    while True:
        try:
            try:
                if failed is not None:
                    first, failed = failed, None
                    raise first
                await intake.handle(
                    record.value,
                    produce_ts_ms=record.timestamp,
                    source=source,
                    headers=getattr(record, "headers", None),
                )
            except Exception as exc:
                if not ledger_unreachable(exc):
                    # Intake records its own failures; this one escaped even that.
                    log.exception("intake failed on %s and could not record it", source)
                    detail = {"source": source, **failure_detail(exc)}
                    await intake.ledger.record_ops_event(INTERNAL_ERROR, "critical", detail)
                    return
                raise
        except Exception as exc:
            # Nothing can be decided without the ledger, so nothing after this record either:
            # hold it (and intake, and its offset) until Postgres answers again, rather than lose it.
            # A failure that could not even be recorded is held the same way: marking the record
            # decided would commit a command with no ledger entry and no refusal.
            if ledger_unreachable(exc):
                log.error("ledger unreachable on %s (%s); retrying in %.1f s", source, exc, delay)
            else:
                log.exception(
                    "could not record the failure on %s; holding it and retrying in %.1f s "
                    "(check the hot path's log and Postgres: the ledger refuses its ops events)",
                    source,
                    delay,
                )
            if hold.source is None:
                hold.source, hold.since = source, time.time()
            hold.attempts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, LEDGER_RETRY_MAX_S)
            continue
        return
