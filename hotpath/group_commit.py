"""Group commit for the hot path's ledger appends: entries that queue while a commit is in
flight are committed together, in the order they were submitted, in one transaction.

An append with nothing ahead of it is written at once, by its caller, exactly as a single
append always was (one statement, committed when it returns): a quiet floor pays nothing for
the queue. An append that finds a commit in flight waits, with whatever else arrives meanwhile,
and the whole queue goes in the next transaction (:func:`ledger.append.append_entries`: one
round trip, one flush of Postgres' write-ahead log for all of them). Under a burst the ledger
then costs one commit per *batch* instead of one per command, and a stalled commit holds the
commands behind it only until it ends, not for one stall each.

What the write-ahead rule needs holds for every entry: each caller awaits the commit of the
transaction that holds its own entry, and learns only then that it is in. The chain's order is
the submission order (the queue is FIFO and committed in order, one transaction at a time),
which is intake's decision order.

Failures keep their meaning per entry. When the database refuses one entry of a group (a
replay, a revoked signer), none is written and each is appended again alone, in order, so each
caller gets its own answer. When the connection is lost mid-commit every entry of the group
may or may not be in, alike: each caller gets the error (and intake's retry settles each by its
signature, as for a single append).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from ledger.append import AppendEntry, GroupRefused, LedgerRecord

log = logging.getLogger(__name__)


@dataclass
class GroupStats:
    """How the appends went: one commit each, or several together (on ``/stats``)."""

    single: int = 0
    """Appends written alone, at once."""
    groups: int = 0
    """Transactions that committed several queued entries."""
    grouped: int = 0
    """Entries committed in those transactions."""
    largest: int = 0
    """The most entries one transaction committed."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    refused_groups: int = 0
    """Groups the database refused an entry of, appended again one at a time."""


@dataclass
class _Waiting:
    entry: AppendEntry
    done: asyncio.Future[LedgerRecord]


class GroupCommit:
    def __init__(
        self,
        append_one: Callable[[AppendEntry], Awaitable[LedgerRecord]],
        append_many: Callable[[Sequence[AppendEntry]], Awaitable[list[LedgerRecord]]],
    ) -> None:
        """``append_one`` commits one entry; ``append_many`` several in one transaction, or none
        (raising :class:`~ledger.append.GroupRefused` when the database refused one of them)."""
        self._one = append_one
        self._many = append_many
        self._queue: list[_Waiting] = []
        self._busy = False
        """A commit is in flight (its caller's, or the drain task's)."""
        self._drain_task: asyncio.Task[None] | None = None
        self.stats = GroupStats()

    async def append(self, entry: AppendEntry) -> LedgerRecord:
        """Commit ``entry`` after every entry submitted before it; return once the transaction
        holding it has committed. The entry is queued before this first awaits anything, so
        the order of calls is the order in the chain."""
        if not self._busy:
            self._busy = True
            try:
                record = await self._one(entry)
            finally:
                self._busy = False
                self._kick()
            self.stats.single += 1
            return record
        waiting = _Waiting(entry, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        return await waiting.done

    def _kick(self) -> None:
        """Commit what queued meanwhile, in the background (its callers wait on it, not the
        caller whose commit just ended, which goes on to the broker)."""
        if self._queue and not self._busy:
            self._busy = True
            self._drain_task = asyncio.get_running_loop().create_task(self._drain(), name="ledger-group")

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit(batch)
        finally:
            self._busy = False
            self._drain_task = None
            # Whatever a cancelled drain left queued still needs a commit: fail it loudly.
            for waiting in self._queue:
                if not waiting.done.done():
                    waiting.done.set_exception(asyncio.CancelledError("the ledger's group commit stopped"))
            self._queue = []

    async def _commit(self, batch: list[_Waiting]) -> None:
        live = [w for w in batch if not w.done.cancelled()]
        if not live:
            return
        if len(live) == 1:
            await self._settle_alone(live[0])
            self.stats.single += 1
            return
        try:
            records = await self._many([w.entry for w in live])
        except GroupRefused as exc:
            # None written: each alone, in order, so each caller gets its own answer.
            log.warning("ledger refused one of %d grouped entries (%s); each alone", len(live), exc.cause)
            self.stats.refused_groups += 1
            for waiting in live:
                await self._settle_alone(waiting)
            return
        except BaseException as exc:
            # Lost connection, say: every entry alike may or may not be in; each caller decides.
            for waiting in live:
                _fail(waiting, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.stats.groups += 1
        self.stats.grouped += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        for waiting, record in zip(live, records, strict=True):
            if not waiting.done.done():
                waiting.done.set_result(record)

    async def _settle_alone(self, waiting: _Waiting) -> None:
        try:
            record = await self._one(waiting.entry)
        except BaseException as exc:
            _fail(waiting, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not waiting.done.done():
            waiting.done.set_result(record)

    async def close(self) -> None:
        """Wait for the commit in flight, if any (what is queued behind it is committed too)."""
        task = self._drain_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)


def _fail(waiting: _Waiting, exc: BaseException) -> None:
    if not waiting.done.done():
        waiting.done.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
