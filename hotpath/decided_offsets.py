"""The command consumer's offsets, committed only once each record's decision is durable.

Kafka redelivers everything past a group's committed offset to whoever consumes next, so that
offset is the hot path's promise: every command before it is decided, in the ledger (an
accepted entry) or as a recorded refusal. aiokafka's auto-commit breaks the promise: it commits
what was *handed out* every five seconds, so a record held through a ledger outage would be
committed, and lost by a process killed before deciding it.

Intake marks a record once it is decided (:meth:`DecidedOffsets.decided`); a background task
commits the newest mark per partition. The order path never waits for the commit: a record is
marked after its broker write, and the commit is a Kafka round trip of its own, coalesced
with whatever was decided meanwhile. A commit that fails is retried with the next mark, or
after a pause; at worst a restart re-reads a few decided records, which the ledger recognises
as duplicate deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition

log = logging.getLogger(__name__)

RETRY_S = 1.0
"""Pause after a failed commit before trying again (nothing newer may come meanwhile)."""
COMMIT_EVERY_S = 0.05
"""At most one commit per this interval: a steady stream of commands costs the broker twenty
commits a second, not one per command; a restart re-reads at most this much decided."""


class Committer(Protocol):
    async def commit(self, offsets: dict[TopicPartition, int]) -> Any: ...


class DecidedOffsets:
    def __init__(self, consumer: Committer) -> None:
        self._consumer = consumer
        self._pending: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        """Set at every mark (for :meth:`until_decided`)."""

    async def until_decided(self, handed: Mapping[TopicPartition, int], timeout_s: float) -> bool:
        """Wait until every record before ``handed[tp]`` (the offset after the last record the
        consumer handed out of ``tp``) is decided; False if some are not within ``timeout_s``.
        The command loop decides several records at once, so a record handed out is not yet
        decided: a partition about to be revoked must wait for this before its last commit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._progress.clear()  # before the look: a mark made after it wakes the wait
            if self._covers(handed):
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)

    def _covers(self, handed: Mapping[TopicPartition, int]) -> bool:
        return all(self._pending.get(tp, self._committed.get(tp, -1)) >= at for tp, at in handed.items())

    def decided(self, topic: str, partition: int, offset: int) -> None:
        """The record at ``offset`` is decided durably (as is every one before it: the command
        loop marks records in their order, even when it decides several at once): the group
        may resume after it."""
        self._pending[TopicPartition(topic, partition)] = offset + 1
        self._wake.set()
        self._progress.set()

    @property
    def committed(self) -> dict[TopicPartition, int]:
        """What this process committed so far, per partition (the next offset to read)."""
        return dict(self._committed)

    async def run(self) -> None:
        """Commit the newest decided offsets until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if await self.flush():
                await asyncio.sleep(COMMIT_EVERY_S)
            else:
                await asyncio.sleep(RETRY_S)
                self._wake.set()

    async def flush(self) -> bool:
        """Commit what is decided and not committed yet; False if the commit failed (kept)."""
        offsets = {tp: at for tp, at in self._pending.items() if self._committed.get(tp) != at}
        if not offsets:
            return True
        try:
            await self._consumer.commit(offsets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Nothing is lost: the records stay uncommitted, so a restart re-reads them and the
            # ledger answers each as a duplicate delivery. A partition taken away by a rebalance
            # is its new owner's to commit.
            log.warning("could not commit decided offsets %s (%s); retrying", _fmt(offsets), exc)
            assignment = getattr(self._consumer, "assignment", None)
            if assignment is not None:
                owned = assignment()
                for tp in [tp for tp in self._pending if tp not in owned]:
                    del self._pending[tp]
            return False
        self._committed.update(offsets)
        return True

    async def close(self) -> None:
        """The last commit, as the process stops (best effort)."""
        with contextlib.suppress(Exception):
            await self.flush()


def _fmt(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{at}" for tp, at in sorted(offsets.items()))
